// Managing tokens: the list, rotation, revocation, editing and the usage chart.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  startTessera, launchBrowser, openPage, signIn, screenshot, validate, mcpCall, apiSession,
} from './helpers.mjs';

let server;
let browser;
let call;
const email = 'linus@example.com';
const open = [];

before(async () => {
  server = await startTessera();
  server.addUser(email);
  browser = await launchBrowser();
  call = await apiSession(server, email);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => {})));
});

async function session(opts) {
  const s = await openPage(browser, server, opts);
  open.push(s.context);
  await signIn(s.page, email);
  return s;
}

const issue = (name, scopes = ['read:tasks', 'execute:mcp'], extra = {}) =>
  call('POST', '/tokens', { name, scopes, expires_in_days: 30, ...extra });

test('the list shows each token with status, scopes and limits, filters by status and name, and pages', async () => {
  for (let i = 0; i < 21; i += 1) await issue(`bulk ${String(i).padStart(2, '0')}`);
  await issue('soon gone', ['read:context'], { expires_in_days: 3, rate_limit_per_hour: 60 });
  const dead = await issue('dead one');
  await call('DELETE', `/tokens/${dead.id}`, { reason: 'test' });
  const { page, problems } = await session();
  const row = (name) => page.locator('tbody tr', { has: page.getByRole('link', { name, exact: true }) });
  await row('soon gone').waitFor();
  assert.equal((await row('soon gone').locator('td[data-label=Status]').textContent()).trim(), 'expiring soon');
  assert.equal((await row('soon gone').locator('td[data-label="Rate limit"]').textContent()).trim(), '60/h');
  assert.equal((await row('soon gone').locator('td[data-label=Scopes]').textContent()).trim(), 'read:context');
  assert.equal((await row('dead one').locator('td[data-label=Status]').textContent()).trim(), 'revoked');
  assert.equal(await page.locator('tbody tr').count(), 20, 'first page of 20');
  await screenshot(page, 'tokens-list');

  await page.getByRole('link', { name: 'Next page →' }).click();
  await row('bulk 00').waitFor();
  assert.equal(await page.locator('tbody tr').count(), 3, 'second page holds the rest');
  await page.getByRole('link', { name: '← Previous page' }).click();
  await row('dead one').waitFor();

  await page.getByLabel('Status').selectOption('revoked');
  await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1);
  await row('dead one').waitFor();

  await page.getByLabel('Status').selectOption('all');
  await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 20);
  await page.getByLabel('Search by name').fill('soon');
  await page.getByLabel('Search by name').press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1);
  await row('soon gone').waitFor();
  assert.deepEqual(problems, []);
});

test('the list and a token page are readable at 360 px wide (dark scheme)', async () => {
  const t = await issue('narrow screen', ['write:tasks', 'execute:mcp']);
  const { page } = await session({ width: 360, height: 740, colorScheme: 'dark' });
  await page.goto('/#/tokens');
  await page.getByRole('link', { name: 'narrow screen', exact: true }).waitFor();
  const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(await overflow() <= 0, 'no horizontal scrolling on the list');
  await screenshot(page, 'tokens-list-360-dark');
  await page.goto(`/#/tokens/${t.id}`);
  await page.locator('#effective-scopes').waitFor();
  assert.ok(await overflow() <= 0, 'no horizontal scrolling on the detail');
  await screenshot(page, 'token-detail-360-dark');
});

test('rotating shows a new secret once; the old token stops after the grace, not before', async () => {
  const first = await issue('rotate me');
  const { page } = await session();
  await page.goto(`/#/tokens/${first.id}`);
  // Rotate with no grace: the old secret stops at once.
  await page.getByLabel('Grace period for the old token').selectOption('0');
  await page.getByRole('button', { name: 'Rotate token' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByText('This is the only time this token is shown').waitFor();
  const second = await page.locator('#secret').inputValue();
  assert.notEqual(second, first.token);
  await screenshot(page, 'rotate-dialog');
  await dialog.getByRole('button', { name: /I have saved it/ }).click();
  // Hidden dialogs count too: the secret must be gone from the DOM, not just invisible.
  await page.locator('dialog.secret-dialog').waitFor({ state: 'detached' });
  await page.getByRole('heading', { level: 1, name: /rotate me/ }).waitFor();
  const html = await page.content();
  const at = html.indexOf(second);
  assert.ok(at < 0, `secret still on the page: …${html.slice(Math.max(0, at - 300), at + 40)}…`);
  const old = await validate(server, first.token);
  assert.equal(old.status, 401);
  assert.equal(old.body.error, 'rotated');
  assert.equal((await validate(server, second)).status, 200);

  // Rotate again with a 5-minute grace: the replaced secret keeps working inside it.
  await page.getByLabel('Grace period for the old token').selectOption('300');
  await page.getByRole('button', { name: 'Rotate token' }).click();
  const third = await page.locator('#secret').inputValue();
  await page.getByRole('dialog').getByRole('button', { name: /I have saved it/ }).click();
  await page.locator('dialog.secret-dialog').waitFor({ state: 'detached' });
  await page.getByRole('heading', { level: 1, name: /rotate me/ }).waitFor();
  assert.equal((await validate(server, second)).status, 200, 'still valid during the grace');
  assert.equal((await validate(server, third)).status, 200);
  await page.locator('dt', { hasText: 'Replaces' }).waitFor();
});

test('revoking asks for confirmation, records the reason and removes the token from the active list', async () => {
  const t = await issue('revoke me');
  const { page } = await session();
  await page.goto(`/#/tokens/${t.id}`);
  await page.getByRole('button', { name: 'Revoke token…' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByText('This cannot be undone').waitFor();
  await dialog.getByLabel('Reason (optional)').fill('laptop lost');
  await screenshot(page, 'revoke-confirm');
  await dialog.getByRole('button', { name: 'Revoke now' }).click();
  await page.getByText('“revoke me” is revoked.').waitFor();
  await page.getByLabel('Status').selectOption('active');
  await page.waitForFunction(() => !document.querySelector('[aria-busy=true]') && location.hash.includes('status=active'));
  await page.locator('#token-results').filter({ hasNot: page.getByRole('link', { name: 'revoke me', exact: true }) }).waitFor();
  assert.equal(await page.getByRole('link', { name: 'revoke me', exact: true }).count(), 0);
  const v = await validate(server, t.token);
  assert.equal(v.status, 401);
  assert.equal(v.body.error, 'revoked');
  await page.goto(`/#/tokens/${t.id}`);
  await page.locator('dd', { hasText: 'laptop lost' }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Rotate token' }).count(), 0, 'no actions on a revoked token');
  const activity = page.getByRole('region', { name: 'Activity' });
  await activity.locator('#activity code', { hasText: 'token.revoke' }).waitFor();
  const actions = await activity.locator('#activity tbody code').allTextContents();
  assert.deepEqual(actions.slice(-1), ['token.revoke']);
  assert.ok(actions.includes('token.issue'), `activity: ${actions}`);
});

test('editing renames, sets a limit and narrows scopes, which the validator sees at once', async () => {
  // As the create form sends it: write:tasks with the read:tasks it implies.
  const t = await issue('edit me', ['read:tasks', 'write:tasks', 'read:context', 'execute:mcp']);
  const { page } = await session();
  await page.goto(`/#/tokens/${t.id}`);
  const form = page.locator('#edit-form');
  await form.getByLabel('Name').fill('edited');
  await form.getByLabel('Rate limit (requests per hour)').fill('42');
  await form.locator('input[value="write:tasks"]').uncheck();
  await form.locator('input[value="read:context"]').uncheck();
  await form.getByRole('button', { name: 'Save changes' }).click();
  await page.getByText('Saved.').waitFor().catch(async (e) => {
    await screenshot(page, 'edit-failed');
    throw new Error(`${e.message}\n${await page.locator('#edit-form').innerText()}`);
  });
  await page.getByRole('heading', { level: 1, name: /edited/ }).waitFor();
  const { body } = await validate(server, t.token);
  assert.equal(body.rate_limit_per_hour, 42);
  assert.ok(body.scopes.includes('read:tasks'));
  assert.ok(!body.scopes.includes('write:tasks') && !body.scopes.includes('read:context'), body.scopes.join(' '));
});

test('editing a token the CLI granted mcp:admin keeps mcp:admin (the picker does not offer it)', async (t) => {
  // Only administrators may hold mcp:admin; demoting afterwards keeps the other tests as they were.
  assert.equal(server.cli(['user', 'promote', email]).status, 0);
  t.after(() => server.cli(['user', 'demote', email]));
  const r = server.cli(['token', 'issue', '--user', email, '--name', 'ops', '--scopes', 'mcp:admin read:tasks']);
  assert.equal(r.status, 0, r.stderr);
  const id = r.stderr.match(/issued token ([0-9a-f-]{36})/)[1];
  const { page } = await session();
  await page.goto(`/#/tokens/${id}`);
  const form = page.locator('#edit-form');
  await form.getByLabel('Name').fill('ops renamed');
  await form.getByRole('button', { name: 'Save changes' }).click();
  await page.getByText('Saved.').waitFor();
  const row = await call('GET', `/tokens/${id}`);
  assert.equal(row.name, 'ops renamed');
  assert.deepEqual([...row.scopes].sort(), ['mcp:admin', 'read:tasks']);
});

test('the usage chart shows requests by outcome and the top tools after MCP calls', async () => {
  const t = await issue('busy', ['read:tasks', 'execute:mcp']);
  const init = await mcpCall(server, t.token, 'initialize', {
    protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'ui-test', version: '1' },
  });
  assert.equal(init.status, 200, JSON.stringify(init.body));
  await mcpCall(server, t.token, 'tools/list', {}, 2);
  for (let i = 0; i < 3; i += 1) {
    const r = await mcpCall(server, t.token, 'tools/call', { name: 'whoami', arguments: {} }, 10 + i);
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  // A call beyond the token's scopes is denied.
  await mcpCall(server, t.token, 'tools/call', { name: 'tasks_create', arguments: { title: 'x' } }, 20);
  const { page, problems } = await session();
  // Usage is flushed to the database about once a second.
  await page.goto(`/#/tokens/${t.id}`);
  let found = false;
  for (let i = 0; i < 20 && !found; i += 1) {
    await page.locator('#usage-body .stats, #usage-body .notice').first().waitFor();
    found = (await page.locator('#top-tools').count()) > 0;
    if (!found) {
      await page.waitForTimeout(500);
      await page.getByRole('button', { name: 'Last 24 hours' }).click(); // fetches the report again
    }
  }
  assert.ok(found, 'usage appeared');
  await page.locator('#top-tools code', { hasText: 'whoami' }).waitFor();
  assert.ok(await page.locator('svg.chart rect').count() >= 1, 'bars drawn');
  assert.match(await page.locator('svg.chart title').first().textContent(), /[1-9]\d* requests/);
  await screenshot(page, 'usage-24h');
  await page.getByRole('button', { name: 'Last 7 days' }).click();
  await page.locator('[data-range="7d"][aria-pressed=true]').waitFor();
  await page.locator('svg.chart').waitFor();
  assert.deepEqual(problems, []);
});
