// Interoperability (issue 5): the official TypeScript MCP SDK client talks to `/mcp` with a
// Tessera bearer token — initialize → tools/list → tools/call — and a revoked token is refused.
// The MCP Inspector CLI is not exercised here: @modelcontextprotocol/inspector pulls in vite,
// react, ink and native keyring binaries (@napi-rs/keyring), far too heavy for this suite.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startTessera, apiSession, uniqueEmail } from './helpers.mjs';

const SCOPES = ['read:tasks', 'write:tasks', 'execute:mcp'];

let server;
let call;

before(async () => {
  server = await startTessera();
  const email = server.addUser(uniqueEmail('interop'));
  call = await apiSession(server, email);
});

after(async () => {
  await server?.stop();
});

const mint = (name) => call('POST', '/tokens', { name, scopes: SCOPES, expires_in_days: 1 });

function sdkClient(secret) {
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${secret}` } },
  });
  const client = new Client({ name: 'tessera-interop-test', version: '0.0.0' });
  return { client, transport };
}

const textOf = (result) => result.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n');

test('the MCP TypeScript SDK client initializes, lists tools and calls them with a bearer token', async () => {
  const t = await mint('sdk client');
  const { client, transport } = sdkClient(t.token);
  await client.connect(transport);
  try {
    assert.ok(client.getServerVersion(), 'initialize returned server info');

    const { tools } = await client.listTools();
    const names = tools.map((x) => x.name);
    for (const n of ['whoami', 'list_tasks']) assert.ok(names.includes(n), `${n} in ${names.join(', ')}`);

    const who = await client.callTool({ name: 'whoami', arguments: {} });
    assert.ok(!who.isError, textOf(who));
    assert.match(textOf(who), new RegExp(t.id));

    const created = await client.callTool({ name: 'create_task', arguments: { title: 'x' } });
    assert.ok(!created.isError, textOf(created));
  } finally {
    await client.close();
  }
});

test('the SDK client is refused (401) with a revoked token', async () => {
  const t = await mint('revoked sdk client');
  await call('DELETE', `/tokens/${t.id}`, { reason: 'interop test' });
  const { client, transport } = sdkClient(t.token);
  await assert.rejects(client.connect(transport), (err) => {
    assert.equal(err.code, 401, String(err?.message ?? err));
    assert.match(err.message, /revoked/);
    return true;
  });
  await client.close().catch(() => {});
});
