// Connected accounts, header mode (issue #25): a person whose server takes their own credential
// is sent by the official TypeScript SDK's error (URLElicitationRequiredError, -32042) to the
// connect page, connects there in Chromium, and then reaches the upstream as themselves. The
// upstream is Tessera's own /mcp, whose whoami says whose credential arrived.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startTessera, launchBrowser, openPage, signIn, apiSession, screenshot } from './helpers.mjs';

const person = 'pat-connect@example.com';
const upstreamIdentity = 'pat-upstream@example.com';
let server;
let browser;

before(async () => {
  server = await startTessera();
  server.addUser(person);
  server.addUser(upstreamIdentity);
  const add = server.cli(['server', 'add', 'mine', '--url', `${server.url}/mcp`,
    '--user-auth', 'header', '--user-header', 'Authorization', '--user-header-prefix', 'Bearer ']);
  assert.equal(add.status, 0, add.stderr);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function mcpClient(secret) {
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp/mine`), {
    requestInit: { headers: { Authorization: `Bearer ${secret}` } },
  });
  const client = new Client({ name: 'tessera-connections-test', version: '0.0.0' });
  await client.connect(transport);
  return client;
}

test('an unconnected person gets the connect URL, connects on the page, then acts upstream as themselves', async () => {
  const pat = await apiSession(server, person);
  const clientToken = await pat('POST', '/tokens', { name: 'pat mine', scopes: ['write:mine', 'execute:mcp'], expires_in_days: 1 });
  const upstream = await apiSession(server, upstreamIdentity);
  const upstreamToken = await upstream('POST', '/tokens', { name: 'upstream', scopes: ['read:tasks', 'execute:mcp'], expires_in_days: 1 });
  const upstreamUser = (await upstream('GET', '/auth/me')).user.id;

  const refused = await mcpClient(clientToken.token).then(() => null, (e) => e);
  assert.ok(refused, 'not connected: refused');
  assert.equal(refused.code, -32042, String(refused));
  const url = refused.data.elicitations[0].url;
  assert.equal(url, `${server.url}/#/connections/mine`);

  const { page, problems } = await openPage(browser, server);
  try {
    await signIn(page, person);
    await page.goto(url);
    const card = page.locator('section.connection[data-server="mine"]');
    await card.getByText('Not connected').waitFor();
    await card.getByLabel('Your authorization for mine').fill(upstreamToken.token);
    await card.getByRole('button', { name: 'Connect' }).click();
    await card.getByText(/^Connected/).waitFor();
    await screenshot(page, 'connections-page');
    assert.equal(await page.content().then((html) => html.includes(upstreamToken.token)), false, 'never shown again');
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }

  const client = await mcpClient(clientToken.token);
  try {
    const who = await client.callTool({ name: 'whoami', arguments: {} });
    assert.equal(JSON.parse(who.content[0].text).sub, upstreamUser);
  } finally {
    await client.close();
  }
});
