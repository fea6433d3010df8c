// Alerts in the UI (issue #17): adding a webhook (secret shown once), its delivery log, the
// token page's "activity needing attention", the expiring mark, and per-user limits.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startTessera, launchBrowser, openPage, signIn, screenshot, apiSession } from './helpers.mjs';

let server;
let browser;
let call;
let receiver;
let received = [];
const admin = 'grace@example.com';

before(async () => {
  // Loopback receivers allowed; the dispatcher and scanner run fast.
  process.env.TESSERA_WEBHOOKS_ALLOW_LOCAL = '1';
  process.env.TESSERA_ALERT_DISPATCH_INTERVAL_MS = '100';
  process.env.TESSERA_ALERT_SCAN_INTERVAL_MS = '200';
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => { received.push({ headers: req.headers, body: JSON.parse(body) }); res.writeHead(204).end(); });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  server = await startTessera();
  server.addUser(admin, undefined, { admin: true });
  server.addUser('limited@example.com');
  browser = await launchBrowser();
  call = await apiSession(server, admin);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  receiver?.close();
});

test('a webhook added in the UI receives a revocation, shown in its delivery log and on the token page', async () => {
  const { page, context, problems } = await openPage(browser, server);
  try {
    await signIn(page, admin);
    await page.getByRole('link', { name: 'Alert webhooks' }).click();
    await page.getByLabel('URL').fill(`http://127.0.0.1:${receiver.address().port}/hook`);
    await page.getByRole('button', { name: 'Add webhook' }).click();
    const secret = (await page.locator('#webhook-secret-value').textContent()).trim();
    assert.match(secret, /^whsec_/);
    await page.locator('section.webhook').waitFor();

    const soon = await call('POST', '/tokens', { name: 'soon gone', scopes: ['read:tasks'], expires_in_days: 3 });
    const doomed = await call('POST', '/tokens', { name: 'doomed', scopes: ['read:tasks'], expires_in_days: 30 });
    await call('DELETE', `/tokens/${doomed.id}`, { reason: 'leaked' });
    while (!received.some((r) => r.body.type === 'token.revoked')) await new Promise((r) => setTimeout(r, 50));
    const delivery = received.find((r) => r.body.type === 'token.revoked');
    assert.equal(delivery.body.token.id, doomed.id);
    assert.match(delivery.headers['tessera-signature'], /^v1=[0-9a-f]{64}$/);

    await page.getByRole('button', { name: 'Delivery log' }).click();
    const logRow = page.locator('table.deliveries tbody tr', { hasText: 'token.revoked' });
    await logRow.waitFor();
    assert.match(await logRow.textContent(), /delivered/);
    await screenshot(page, 'webhooks');

    await page.goto(`/#/tokens/${doomed.id}`);
    const alert = page.locator('#token-alerts li[data-kind="token.revoked"]');
    await alert.waitFor();
    assert.match(await alert.textContent(), /Revoked: leaked/);

    await page.goto('/#/tokens');
    const row = page.locator('tbody tr', { has: page.getByRole('link', { name: 'soon gone', exact: true }) });
    assert.equal((await row.locator('td[data-label=Status]').textContent()).trim(), 'expiring soon');
    assert.ok(soon.id);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('an administrator sets a user\'s shared rate limit on the accounts page', async () => {
  const { page, context, problems } = await openPage(browser, server);
  try {
    await signIn(page, admin);
    await page.getByRole('link', { name: 'Accounts' }).click();
    await page.getByLabel('Rate limit of limited@example.com').fill('500');
    const row = page.locator('tr', { hasText: 'limited@example.com' });
    await row.getByRole('button', { name: 'Save' }).click();
    await row.getByText('Saved: 500/h').waitFor();
    const users = await call('GET', '/users');
    assert.equal(users.find((u) => u.email === 'limited@example.com').rate_limit_per_hour, 500);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('an administrator deactivates an account on the accounts page: its token stops at once, and reactivating brings it back to sign-in only', async () => {
  const email = 'leaver-accounts@example.com';
  server.addUser(email);
  const leaver = await apiSession(server, email);
  const { token } = await leaver('POST', '/tokens', { name: 'leaving', scopes: ['read:tasks'], expires_in_days: 1 });
  const validate = async () => (await fetch(`${server.url}/api/v2/tokens/validate`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } })).status;
  assert.equal(await validate(), 200);
  const { page, context, problems } = await openPage(browser, server);
  try {
    await signIn(page, admin);
    await page.getByRole('link', { name: 'Accounts' }).click();
    const row = page.locator('tr', { hasText: email });
    page.once('dialog', (d) => d.accept());
    await row.getByRole('button', { name: `Deactivate ${email}` }).click();
    await row.getByText('deactivated').waitFor();
    assert.equal(await validate(), 401, 'the token stops at once');
    await assert.rejects(leaver('GET', '/tokens'), /401/, 'the session ended');
    await assert.rejects(apiSession(server, email), /login failed: 401/, 'sign-in refused');
    await row.getByRole('button', { name: `Reactivate ${email}` }).click();
    await row.getByText('active', { exact: true }).waitFor();
    await apiSession(server, email);
    assert.equal(await validate(), 401, 'reactivating brings no token back');
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});
