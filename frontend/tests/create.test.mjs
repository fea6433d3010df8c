// Creating a token: the form's rules, the secret shown once, configs that work.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  startTessera, launchBrowser, openPage, signIn, createToken, screenshot, validate, mcpCall,
} from './helpers.mjs';

let server;
let browser;
const email = 'grace@example.com';
const allRequests = [];
const open = [];

before(async () => {
  server = await startTessera();
  server.addUser(email);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

// Every test's browser context is closed even when the test fails.
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => {})));
});

async function session(opts) {
  const s = await openPage(browser, server, opts);
  open.push(s.context);
  s.page.on('request', (r) => allRequests.push(r.url()));
  await signIn(s.page, email);
  return s;
}

test('a new token is shown once with configs holding the MCP URL and the secret; reload never shows it', async () => {
  const { page, context, problems } = await session();
  const { dialog, secret } = await createToken(page, { name: 'laptop cursor', scopes: ['write:tasks', 'execute:mcp'] });
  assert.match(secret, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a JWT');
  await dialog.getByText('This is the only time this token is shown').waitFor();
  const mcp = `${server.url}/mcp`;
  assert.equal(await page.locator('#mcp-url').textContent(), mcp);
  await screenshot(page, 'secret-dialog');

  // Copy the token itself, then each client's configuration, through the clipboard.
  await dialog.getByRole('button', { name: 'Copy token' }).click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
  const expectations = {
    Cursor: (t) => { const j = JSON.parse(t); assert.equal(j.mcpServers.tessera.url, mcp); assert.equal(j.mcpServers.tessera.headers.Authorization, `Bearer ${secret}`); },
    'VS Code': (t) => { const j = JSON.parse(t); assert.equal(j.servers.tessera.type, 'http'); assert.equal(j.servers.tessera.url, mcp); assert.equal(j.servers.tessera.headers.Authorization, `Bearer ${secret}`); },
    'Claude Code': (t) => { assert.match(t, /^claude mcp add --transport http tessera /); assert.ok(t.includes(mcp)); assert.ok(t.includes(`Authorization: Bearer ${secret}`)); },
    curl: (t) => {
      assert.ok(t.includes(mcp));
      assert.ok(t.includes(`Authorization: Bearer ${secret}`));
      assert.ok(t.includes("Accept: application/json, text/event-stream"));
      assert.ok(t.includes('"method":"initialize"'));
    },
  };
  for (const [label, check] of Object.entries(expectations)) {
    await dialog.getByRole('tab', { name: label, exact: true }).click();
    await dialog.getByRole('button', { name: `Copy ${label} configuration` }).click();
    await dialog.getByRole('tabpanel').getByText('Copied.').waitFor();
    check(await page.evaluate(() => navigator.clipboard.readText()));
  }
  await screenshot(page, 'secret-dialog-curl-tab');

  // Closing discards the secret; the detail page and a reload never show it.
  await dialog.getByRole('button', { name: /I have saved it/ }).click();
  // Hidden dialogs count too: the secret must be gone from the DOM, not just invisible.
  await page.locator('dialog.secret-dialog').waitFor({ state: 'detached' });
  await page.getByRole('heading', { level: 1, name: /laptop cursor/ }).waitFor();
  assert.equal(await page.locator('dialog').count(), 0);
  assert.ok(!(await page.content()).includes(secret), 'secret gone after closing');
  await page.reload();
  await page.getByRole('heading', { level: 1, name: /laptop cursor/ }).waitFor();
  assert.ok(!(await page.content()).includes(secret), 'secret never shown again');
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  assert.ok(!stored.includes(secret), 'nothing kept in web storage');
  await screenshot(page, 'token-detail');
  assert.deepEqual(problems, []);
  await context.close();
});

test('the minted token really works: /api/v2/tokens/validate accepts it with the chosen scopes', async () => {
  const { page, context } = await session();
  const { secret } = await createToken(page, { name: 'validate me', scopes: ['write:context'] });
  const { status, body } = await validate(server, secret);
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(body.active, true);
  assert.equal(body.name, 'validate me');
  assert.ok(body.scopes.includes('write:context') && body.scopes.includes('read:context'), body.scopes.join(' '));
  // And the curl tab's request is a working MCP initialize.
  const init = await mcpCall(server, secret, 'initialize', {
    protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'ui-test', version: '1' },
  });
  assert.equal(init.status, 200, JSON.stringify(init.body));
  await context.close();
});

test('choosing write:X checks and locks read:X and says it is included', async () => {
  const { page, context } = await session();
  await page.goto('/#/tokens/new');
  const read = page.locator('input[value="read:agents"]');
  const write = page.locator('input[value="write:agents"]');
  assert.equal(await read.isChecked(), false);
  await write.check();
  assert.equal(await read.isChecked(), true);
  assert.equal(await read.isDisabled(), true);
  await page.locator('#implied-agents').filter({ hasText: 'included by write:agents' }).waitFor();
  await screenshot(page, 'create-form-write-implies-read');
  await write.uncheck();
  assert.equal(await read.isDisabled(), false);
  assert.equal(await page.locator('#implied-agents').isVisible(), false);
  await context.close();
});

test('an invalid expiry is refused at its field before anything is sent', async () => {
  const { page, context } = await session({ width: 360, height: 800 });
  await page.goto('/#/tokens/new');
  await page.getByLabel('Name', { exact: true }).fill('too long');
  await page.locator('input[value="read:tasks"]').check();
  const posts = [];
  page.on('request', (r) => { if (r.method() === 'POST') posts.push(r.url()); });
  for (const bad of ['400', '0', '2.5']) {
    await page.getByLabel('Expires in (days)').fill(bad);
    await page.getByRole('button', { name: 'Create token' }).click();
    const err = page.locator('[data-field="expires_in_days"] .field-error');
    await err.filter({ hasText: /between 1 and 365|whole number/ }).waitFor();
    assert.equal(await page.getByLabel('Expires in (days)').getAttribute('aria-invalid'), 'true');
  }
  assert.deepEqual(posts, []);
  await page.getByRole('button', { name: '90 days' }).click();
  const state = await page.evaluate(() => ({
    value: document.querySelector('input[name=expires_in_days]').value,
    pressed: document.querySelector('[data-days="90"]').getAttribute('aria-pressed'),
    active: document.activeElement.outerHTML.slice(0, 120),
    dialogs: document.querySelectorAll('dialog').length,
  }));
  assert.equal(state.value, '90', JSON.stringify(state));
  await page.locator('#expiry-date').filter({ hasText: /^Expires on / }).waitFor();
  await page.getByLabel('Expires in (days)').fill('0');
  await page.getByRole('button', { name: 'Create token' }).click();
  // Last: a full-page screenshot at this width can leave later clicks off target.
  await screenshot(page, 'create-invalid-expiry-360');
  await context.close();
});

test("the server's refusal is shown next to the field it concerns", async () => {
  const { page, context } = await session();
  await page.goto('/#/tokens/new');
  await page.getByLabel('Name', { exact: true }).fill('sneaky');
  // A scope the client does not know slips past client-side checks (as from an older page).
  const box = page.locator('input[value="read:tasks"]');
  await box.check();
  await box.evaluate((el) => { el.value = 'write:everything'; });
  await page.getByRole('button', { name: 'Create token' }).click();
  const err = page.locator('[data-field="scopes"] .field-error');
  await err.filter({ hasText: 'unknown scope(s) write:everything' }).waitFor();
  assert.equal(await page.getByRole('dialog').count(), 0);
  await screenshot(page, 'create-server-error-at-field');
  await context.close();
});

test('a token can be created with the keyboard alone', async () => {
  const { page, context } = await session();
  const focusIs = (sel) => page.evaluate((s) => document.activeElement?.matches(s) ?? false, sel);
  async function tabTo(sel, max = 40) {
    for (let i = 0; i < max; i += 1) {
      if (await focusIs(sel)) return;
      await page.keyboard.press('Tab');
    }
    throw new Error(`Tab never reached ${sel}`);
  }
  await tabTo('#new-token');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { level: 1, name: 'New token' }).waitFor();
  await tabTo('input[name=name]');
  await page.keyboard.type('keyboard only');
  await tabTo('input[value="write:tasks"]');
  await page.keyboard.press('Space');
  await tabTo('input[value="execute:mcp"]');
  await page.keyboard.press('Space');
  await tabTo('button[data-days="7"]');
  await page.keyboard.press('Enter');
  await tabTo('input[name=rate_limit_per_hour]');
  await page.keyboard.type('120');
  await page.keyboard.press('Enter'); // submits the form
  await page.getByRole('dialog').waitFor();
  assert.ok(await focusIs('#secret'), 'focus moves into the dialog');
  const secret = await page.locator('#secret').inputValue();
  await tabTo('#secret-done');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { level: 1, name: /keyboard only/ }).waitFor();
  const { body } = await validate(server, secret);
  assert.equal(body.rate_limit_per_hour, 120);
  assert.ok(body.scopes.includes('read:tasks') && body.scopes.includes('execute:mcp'));
  const days = (new Date(body.expires_at) - Date.now()) / 86_400_000;
  assert.ok(days > 6.9 && days <= 7.01, `expires in ${days} days`);
  await context.close();
});

test('no request of these pages leaves the origin', () => {
  assert.ok(allRequests.length > 20, `recorded ${allRequests.length} requests`);
  const foreign = allRequests.filter((u) => new URL(u).origin !== server.url);
  assert.deepEqual(foreign, []);
});

test('a token for one gateway server points every client snippet at that server; one for several gets a block each', async () => {
  const added = server.cli(['server', 'add', 'files', '--url', 'http://127.0.0.1:9/mcp']);
  assert.equal(added.status, 0, added.stderr);
  const { page } = await session();
  const files = `${server.url}/mcp/files`;
  const builtIn = `${server.url}/mcp`;
  const copied = async (dialog, label) => {
    await dialog.getByRole('tab', { name: label, exact: true }).click();
    await dialog.getByRole('button', { name: `Copy ${label} configuration` }).click();
    await dialog.getByRole('tabpanel').getByText('Copied.').waitFor();
    return page.evaluate(() => navigator.clipboard.readText());
  };

  let { dialog } = await createToken(page, { name: 'files only', scopes: ['read:files', 'execute:mcp'] });
  assert.equal(await page.locator('#mcp-url').textContent(), files);
  const cursor = JSON.parse(await copied(dialog, 'Cursor'));
  assert.deepEqual(Object.values(cursor.mcpServers).map((s) => s.url), [files]);
  for (const label of ['VS Code', 'Claude Code', 'curl']) {
    const text = await copied(dialog, label);
    assert.ok(text.includes(files), `${label}: ${text}`);
    assert.ok(!text.includes(`'${builtIn}'`) && !text.includes(`"${builtIn}"`), `${label} names no bare /mcp: ${text}`);
  }
  await dialog.getByRole('button', { name: /I have saved it/ }).click();
  await page.getByRole('heading', { level: 1, name: /files only/ }).waitFor();

  ({ dialog } = await createToken(page, { name: 'files and tasks', scopes: ['read:files', 'read:tasks', 'execute:mcp'] }));
  const both = JSON.parse(await copied(dialog, 'VS Code'));
  assert.deepEqual(Object.values(both.servers).map((s) => s.url).sort(), [builtIn, files].sort());
  const claude = await copied(dialog, 'Claude Code');
  assert.equal(claude.match(/claude mcp add/g).length, 2, claude);
  assert.deepEqual(await page.locator('.mcp-url').allTextContents(), [builtIn, files]);
});
