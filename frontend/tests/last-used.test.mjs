// "Last used" right after a use (issue #27): usage is written to the database once a second,
// so a token used a moment ago read "never". Here the flush is an hour away, so only the
// instance's unwritten counters can tell the page: the list and the token page say "just now".
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startTessera, launchBrowser, openPage, signIn, apiSession } from './helpers.mjs';

const user = 'lu-last-used@example.com';
let server;
let browser;

before(async () => {
  server = await startTessera({ TESSERA_USAGE_FLUSH_INTERVAL_MS: '3600000' });
  server.addUser(user);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('a token used a second ago reads "just now" in the list and on its page, never "never"', async () => {
  const call = await apiSession(server, user);
  const { id, token } = await call('POST', '/tokens', { name: 'fresh', scopes: ['read:tasks', 'execute:mcp'], expires_in_days: 1 });
  const unused = await call('POST', '/tokens', { name: 'idle', scopes: ['read:tasks'], expires_in_days: 1 });
  const client = new Client({ name: 'tessera-last-used-test', version: '0.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  }));
  await client.listTools();
  await client.close();

  const { page, problems } = await openPage(browser, server);
  try {
    await signIn(page, user);
    const row = page.locator(`tr[data-token-id="${id}"] td[data-label="Last used"]`);
    assert.equal((await row.textContent()).trim(), 'just now');
    const idle = page.locator(`tr[data-token-id="${unused.id}"] td[data-label="Last used"]`);
    assert.equal((await idle.textContent()).trim(), 'never');
    await page.goto(`/#/tokens/${id}`);
    const detail = page.locator('dt:text-is("Last used") + dd');
    await detail.waitFor();
    assert.match(await detail.textContent(), /^just now from 127\.0\.0\.1$/);
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});
