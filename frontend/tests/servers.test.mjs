// The Servers page (issue #14): an administrator registers the FastMCP notes upstream
// (interop/upstreams/notes_server.py) through the UI with a write-only header, hides a tool,
// and mints a token for one tool in the token form; the gateway then lists exactly that tool.
// A direct server (issue #15): its credential dialog, rotation with a grace, declared tools,
// and the explicit move.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startTessera, launchBrowser, openPage, signIn, createToken, screenshot, apiSession, startNotes } from './helpers.mjs';

const UPSTREAM_KEY = 'k-servers-page-456';
const admin = 'ada-servers@example.com';

let server;
let browser;
let call;
let notes;
let notesPort;

before(async () => {
  ({ child: notes, port: notesPort } = await startNotes());
  server = await startTessera();
  server.addUser(admin, undefined, { admin: true });
  server.addUser('plain-servers@example.com');
  browser = await launchBrowser();
  call = await apiSession(server, admin);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  notes?.kill('SIGTERM');
});

async function toolNames(secret) {
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp/notes`), {
    requestInit: { headers: { Authorization: `Bearer ${secret}` } },
  });
  const client = new Client({ name: 'tessera-servers-page-test', version: '0.0.0' });
  await client.connect(transport);
  try {
    return (await client.listTools()).tools.map((x) => x.name).sort();
  } finally {
    await client.close();
  }
}

test('a server added on the Servers page, with a hidden tool, gives a one-tool token exactly that tool', async () => {
  const { page, problems } = await openPage(browser, server);
  try {
    await signIn(page, admin);
    await page.getByRole('link', { name: 'Servers' }).click();
    await page.getByRole('heading', { level: 1, name: 'MCP servers' }).waitFor();
    const form = page.locator('#server-form');
    await form.getByLabel('Name').fill('notes');
    await form.getByLabel('URL').fill(`http://127.0.0.1:${notesPort}/mcp`);
    await form.getByLabel('Description').fill('FastMCP notes');
    await form.getByRole('button', { name: 'Add header' }).click();
    await form.getByLabel('Header name').fill('X-Upstream-Key');
    await form.getByLabel('Header value').fill(UPSTREAM_KEY);
    await form.getByRole('button', { name: 'Add server' }).click();
    const card = page.locator('section.server[data-server="notes"]');
    await card.waitFor();
    await card.locator('tr[data-tool="add_note"]').waitFor();
    assert.equal(await page.locator('#server-warning').isHidden(), true);
    assert.match(await card.textContent(), /x-upstream-key/i);
    assert.ok(!(await page.content()).includes(UPSTREAM_KEY), 'a header value is never shown back');

    // Tools are known at once: Tessera listed them when the server was added, before any client did.
    const hideRow = card.locator('tr[data-tool="list_notes"]');
    await hideRow.getByLabel('Class of list_notes').selectOption('hidden');
    await hideRow.getByText('Saved: hidden').waitFor();
    await screenshot(page, 'servers-page');

    await page.goto('/#/tokens/new');
    const notesGroup = page.locator('.tool-scopes[data-server="notes"]');
    await notesGroup.waitFor();
    assert.equal(await notesGroup.locator('input[value="call:notes/list_notes"]').count(), 0, 'hidden tools are not offered');
    const { secret } = await createToken(page, { name: 'one tool', scopes: ['call:notes/add_note'] });
    assert.deepEqual(await toolNames(secret), ['add_note']);

    const seen = await (await fetch(`http://127.0.0.1:${notesPort}/seen-headers`)).json();
    assert.ok(seen.length > 0 && seen.every((hd) => hd['x-upstream-key'] === UPSTREAM_KEY && !hd.authorization), JSON.stringify(seen));
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

test('a server that cannot be reached is still added, with a warning that its tools are not known yet', async () => {
  const { page, problems } = await openPage(browser, server);
  try {
    await signIn(page, admin);
    await page.goto('/#/servers');
    const form = page.locator('#server-form');
    await form.getByLabel('Name').fill('later');
    await form.getByLabel('URL').fill('http://127.0.0.1:9/mcp');
    await form.getByRole('button', { name: 'Add server' }).click();
    await page.locator('section.server[data-server="later"]').waitFor();
    const warning = page.locator('#server-warning');
    await warning.waitFor();
    assert.match(await warning.textContent(), /could not list the server's tools.*learnt when a client first lists them/);
    assert.equal((await call('GET', '/servers')).filter((s) => s.name === 'later').length, 1);
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

test('editing keeps the header values unless replaced, and removing asks first', async () => {
  await call('POST', '/servers', { name: 'spare', url: 'http://127.0.0.1:9/mcp', headers: { Authorization: 'Bearer upstream-secret' } });
  const { page, problems } = await openPage(browser, server);
  try {
    await signIn(page, admin);
    await page.goto('/#/servers');
    const card = page.locator('section.server[data-server="spare"]');
    await card.getByRole('button', { name: 'Edit' }).click();
    await card.getByLabel('Description').fill('kept headers');
    await card.getByRole('button', { name: 'Save server' }).click();
    await card.getByText('kept headers').waitFor();
    const [kept] = (await call('GET', '/servers')).filter((s) => s.name === 'spare');
    assert.deepEqual(kept.headers, ['authorization']);
    assert.ok(!(await page.content()).includes('upstream-secret'));

    let asked = null;
    page.once('dialog', (d) => { asked = d.message(); d.dismiss(); });
    await card.getByRole('button', { name: 'Remove' }).click();
    assert.match(asked, /Remove the server spare/);
    assert.equal((await call('GET', '/servers')).filter((s) => s.name === 'spare').length, 1);
    page.once('dialog', (d) => d.accept());
    await card.getByRole('button', { name: 'Remove' }).click();
    await card.waitFor({ state: 'detached' });
    assert.equal((await call('GET', '/servers')).filter((s) => s.name === 'spare').length, 0);
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

/** `POST /oauth/introspect` as a direct server: the JSON answer (or the status when not 200). */
async function introspect(clientId, secret, token) {
  const res = await fetch(`${server.url}/oauth/introspect`, {
    method: 'POST',
    headers: { Authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` },
    body: new URLSearchParams({ token }),
  });
  return res.ok ? res.json() : { status: res.status };
}

test('a direct server added on the page shows its credential once, rotates with a grace, lists declared tools and moves only when told', async () => {
  const { page, problems } = await openPage(browser, server);
  try {
    await signIn(page, admin);
    await page.goto('/#/servers');
    const form = page.locator('#server-form');
    await form.getByLabel('Name').fill('straight');
    await form.getByLabel('URL').fill('https://straight.example.com/mcp');
    await form.getByLabel(/Checks tokens itself/).check();
    assert.equal(await form.getByRole('button', { name: 'Add header' }).isVisible(), false, 'a direct server takes no headers');
    await form.getByRole('button', { name: 'Add server' }).click();
    const dialog = page.locator('dialog.secret-dialog');
    await dialog.waitFor();
    const firstId = await page.locator('#client-id').inputValue();
    const first = await page.locator('#client-secret').inputValue();
    assert.match(first, /^tss_/);
    const reader = await call('POST', '/tokens', { name: 'straight reader', scopes: ['read:straight'], expires_in_days: 1 });
    assert.equal((await introspect(firstId, first, reader.token)).active, true);
    await page.locator('#credential-done').click();
    await dialog.waitFor({ state: 'detached' });
    assert.ok(!(await page.content()).includes(first), 'the secret leaves the page with its dialog');

    const card = page.locator('section.server[data-server="straight"]');
    await card.getByText('No tools declared').waitFor();
    await card.getByLabel(/Old pair works for/).fill('600');
    await card.getByRole('button', { name: 'Rotate credentials' }).click();
    await dialog.waitFor();
    const secondId = await page.locator('#client-id').inputValue();
    const second = await page.locator('#client-secret').inputValue();
    await page.locator('#credential-done').click();
    await dialog.waitFor({ state: 'detached' });
    assert.notEqual(second, first);
    assert.equal((await introspect(firstId, first, reader.token)).active, true, 'the old pair works during the grace');
    assert.equal((await introspect(secondId, second, reader.token)).active, true);

    assert.equal(server.cli(['server', 'tool', 'straight', 'list_notes', '--access', 'read']).status, 0);
    await page.reload();
    await card.locator('tr[data-tool="list_notes"]').waitFor();
    await screenshot(page, 'servers-direct');

    await card.getByRole('button', { name: 'Edit' }).click();
    await card.getByLabel('URL').fill('https://straight2.example.com/mcp');
    await card.getByRole('button', { name: 'Save server' }).click();
    await card.getByRole('alert').getByText(/audience/).waitFor();
    await card.getByLabel(/tokens issued for the old address/).check();
    await card.getByRole('button', { name: 'Save server' }).click();
    await card.getByText('https://straight2.example.com/mcp').first().waitFor();
    assert.equal((await introspect(secondId, second, reader.token)).active, false, 'the old token named the old URL');
    // The browser logs the refused move (409) itself; nothing else may show up.
    assert.deepEqual(problems.filter((p) => !/status of 409/.test(p)), []);
  } finally {
    await page.close();
  }
});

test('the Servers link is for administrators only', async () => {
  const { page } = await openPage(browser, server);
  try {
    await signIn(page, 'plain-servers@example.com');
    assert.equal(await page.locator('#servers-link').count(), 0);
  } finally {
    await page.close();
  }
});
