// The token guide Tessera grew from works as written (issue 17): its curl command, its
// Python (httpx) and JavaScript (fetch) examples — copied verbatim into interop/guide/, only
// the base URL and token substituted by interop/guide/run.mjs — and its client config URL,
// against a real `tessera serve`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startTessera, apiSession, uniqueEmail, ROOT, TARGET_DIR } from './helpers.mjs';

const run = promisify(execFile);
const RUNNER = path.join(ROOT, 'interop/guide/run.mjs');
const PYTHON = path.join(TARGET_DIR, 'interop-venv/bin/python');

let server;
let call;

before(async () => {
  server = await startTessera();
  call = await apiSession(server, server.addUser(uniqueEmail('guide')));
});

after(async () => {
  await server?.stop();
});

/** A token as the guide's Quick Start makes one: `execute:mcp` plus data scopes. */
const mint = (name) => call('POST', '/tokens/', { name, scopes: ['execute:mcp', 'read:tasks', 'write:tasks'], expires_in_days: 1 });

/** Runs one guide example through the runner; resolves to the JSON it received. */
async function example(kind, secret) {
  const env = { ...process.env, TESSERA_TOKEN: secret, PYTHON };
  const { stdout } = await run(process.execPath, [RUNNER, kind, server.url], { env, timeout: 60_000 });
  return JSON.parse(stdout);
}

/** What the guide's "Expected response" promises (Tessera has tools, not resources). */
function assertGuideInitializeAnswer(answer) {
  assert.equal(answer.jsonrpc, '2.0', JSON.stringify(answer));
  assert.equal(answer.id, 1, JSON.stringify(answer));
  assert.equal(answer.result?.protocolVersion, '2025-06-18', JSON.stringify(answer));
  assert.equal(typeof answer.result.capabilities.tools, 'object', JSON.stringify(answer));
}

test("the guide's curl command initializes at /mcp/initialize", async () => {
  const t = await mint('guide curl');
  assertGuideInitializeAnswer(await example('curl', t.token));
});

test("the guide's Python httpx example initializes at /mcp/initialize", async () => {
  const t = await mint('guide python');
  assertGuideInitializeAnswer(await example('python', t.token));
});

test("the guide's JavaScript fetch example initializes at /mcp/initialize", async () => {
  const t = await mint('guide javascript');
  assertGuideInitializeAnswer(await example('javascript', t.token));
});

test("the guide's examples with a revoked token get Tessera's 401 answer", async () => {
  const t = await mint('guide revoked');
  await call('DELETE', `/tokens/${t.id}/`, { reason: 'guide test' });
  const answer = await example('curl', t.token);
  assert.equal(answer.error, 'revoked', JSON.stringify(answer));
});

test("an MCP client configured with the guide's URL (/mcp/ and its headers) lists tools", async () => {
  const t = await mint('guide client config');
  // The guide's Cursor and VS Code configs: `"url": ".../mcp/"` with these two headers.
  const headers = { Accept: 'application/json, text/event-stream', Authorization: `Bearer ${t.token}` };
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp/`), { requestInit: { headers } });
  const client = new Client({ name: 'guide-config', version: '0.0.0' });
  await client.connect(transport);
  try {
    const { tools } = await client.listTools();
    assert.ok(tools.some((x) => x.name === 'list_tasks'), tools.map((x) => x.name).join(', '));
  } finally {
    await client.close();
  }
});
