// stdio servers on the Servers page (issue #26): an administrator adds a program Tessera runs
// itself (the probe script of the Rust tests) with a write-only environment value; the card
// shows its kind, command and variable names, never the value; and the official TypeScript
// SDK client, with a token minted in the UI, calls it through /mcp/NAME.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ROOT, startTessera, launchBrowser, openPage, signIn, createToken, screenshot } from './helpers.mjs';

const PROBE = path.join(ROOT, 'crates/tessera/tests/fixtures/stdio-probe.mjs');
const SECRET_VALUE = 'stdio-ui-secret-314';
const admin = 'ada-stdio@example.com';

let server;
let browser;

before(async () => {
  server = await startTessera();
  server.addUser(admin, undefined, { admin: true });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('a stdio server added on the Servers page is shown as stdio without its environment values and serves an SDK client', async () => {
  const { page, problems } = await openPage(browser, server);
  try {
    await signIn(page, admin);
    await page.goto('/#/servers');
    const form = page.locator('#server-form');
    await form.getByLabel('Name').fill('probe');
    await form.getByLabel('Run it here as a stdio server').check();
    assert.equal(await form.getByLabel('URL').isHidden(), true, 'a stdio server has no URL');
    await form.getByLabel('Command').fill(`node ${PROBE}`);
    await form.getByRole('button', { name: 'Add variable' }).click();
    await form.getByLabel('Variable name').fill('PROBE_KEY');
    await form.getByLabel('Variable value').fill(SECRET_VALUE);
    await form.getByRole('button', { name: 'Add server' }).click();

    const card = page.locator('section.server[data-server="probe"]');
    await card.waitFor();
    assert.equal(await card.getAttribute('data-kind'), 'stdio');
    await card.locator('tr[data-tool="env"]').waitFor();
    const shown = await card.textContent();
    assert.match(shown, /stdio/);
    assert.match(shown, /stdio-probe\.mjs/);
    assert.match(shown, /PROBE_KEY/);
    assert.ok(!(await page.content()).includes(SECRET_VALUE), 'an environment value is never shown back');
    await screenshot(page, 'servers-stdio');

    const { secret } = await createToken(page, { name: 'stdio probe', scopes: ['read:probe', 'execute:mcp'] });
    const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp/probe`), {
      requestInit: { headers: { Authorization: `Bearer ${secret}` } },
    });
    const client = new Client({ name: 'tessera-stdio-ui-test', version: '0.0.0' });
    await client.connect(transport);
    try {
      assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), ['env', 'hang', 'pid', 'progress']);
      const env = JSON.parse((await client.callTool({ name: 'env', arguments: {} })).content[0].text);
      assert.equal(env.PROBE_KEY, SECRET_VALUE, 'the child got its declared value');
      assert.deepEqual(Object.keys(env).sort(), ['HOME', 'PATH', 'PROBE_KEY']);
    } finally {
      await client.close();
    }
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});
