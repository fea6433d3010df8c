// Interoperability (issue 5): real MCP clients talk to `/mcp` with a Tessera bearer token —
// initialize → tools/list → tools/call — and a revoked token is refused. The clients: the
// official TypeScript SDK (in process), the MCP Inspector CLI and the official Python SDK
// (both as child processes, exactly as a user would run them).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startTessera, apiSession, uniqueEmail, ROOT, TARGET_DIR } from './helpers.mjs';

const run = promisify(execFile);
const INSPECTOR = path.join(ROOT, 'frontend/node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js');
const PYTHON = path.join(TARGET_DIR, 'interop-venv/bin/python');
const PY_CLIENT = path.join(ROOT, 'interop/python/mcp_client.py');

const SCOPES = ['read:tasks', 'write:tasks', 'execute:mcp'];

let server;
let call;
let home;

before(async () => {
  server = await startTessera();
  const email = server.addUser(uniqueEmail('interop'));
  call = await apiSession(server, email);
  // The Inspector keeps a catalog under $HOME; give it a throwaway one.
  home = mkdtempSync(path.join(tmpdir(), 'tessera-inspector-'));
});

after(async () => {
  await server?.stop();
  if (home) rmSync(home, { recursive: true, force: true });
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

/** Runs the MCP Inspector CLI against /mcp; resolves to its exit code, stdout and stderr. */
async function inspector(secret, ...args) {
  const argv = [INSPECTOR, '--cli', `${server.url}/mcp`, '--transport', 'http', '--header', `Authorization: Bearer ${secret}`, ...args];
  try {
    const { stdout, stderr } = await run(process.execPath, argv, { env: { ...process.env, HOME: home }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    return { code: err.code ?? 1, stdout: err.stdout ?? '', stderr: err.stderr ?? String(err) };
  }
}

test('the MCP Inspector CLI lists tools and calls them with a bearer token', async () => {
  const t = await mint('inspector');

  const listed = await inspector(t.token, '--method', 'tools/list', '--strict');
  assert.equal(listed.code, 0, listed.stderr);
  const names = JSON.parse(listed.stdout).tools.map((x) => x.name);
  for (const n of ['whoami', 'list_tasks', 'create_task']) assert.ok(names.includes(n), `${n} in ${names.join(', ')}`);
  assert.ok(!names.includes('set_context'), 'tools outside the token\'s scopes are not listed');

  const who = await inspector(t.token, '--method', 'tools/call', '--tool-name', 'whoami');
  assert.equal(who.code, 0, who.stderr);
  assert.equal(JSON.parse(who.stdout).structuredContent.token_id, t.id);

  const created = await inspector(t.token, '--method', 'tools/call', '--tool-name', 'create_task', '--tool-arg', 'title=from the inspector');
  assert.equal(created.code, 0, created.stderr);
  const task = JSON.parse(created.stdout);
  assert.ok(!task.isError, created.stdout);
  assert.equal(task.structuredContent.title, 'from the inspector');
});

test('the MCP Inspector CLI is refused with a revoked token', async () => {
  const t = await mint('revoked inspector');
  await call('DELETE', `/tokens/${t.id}`, { reason: 'interop test' });
  // On a 401 the Inspector starts OAuth discovery from our WWW-Authenticate challenge;
  // --stored-auth-only makes it give up instead of waiting for a browser.
  const listed = await inspector(t.token, '--stored-auth-only', '--method', 'tools/list');
  assert.notEqual(listed.code, 0, `revoked token listed tools: ${listed.stdout}`);
  const { error } = JSON.parse(listed.stderr);
  assert.equal(error.code, 'auth_required', listed.stderr);
  assert.match(error.message, /the token has been revoked/);
});

/** Runs the Python SDK client (interop/python/mcp_client.py); the token goes in its environment. */
async function pythonClient(secret, version) {
  const env = { ...process.env, TESSERA_TOKEN: secret };
  try {
    const args = [PY_CLIENT, `${server.url}/mcp`, ...(version ? [version] : [])];
    const { stdout } = await run(PYTHON, args, { env, timeout: 60_000 });
    return { code: 0, out: JSON.parse(stdout) };
  } catch (err) {
    if (err.code === 'ENOENT') throw new Error(`${PYTHON} is missing: run scripts/install-deps test`);
    return { code: err.code, out: err.stdout ? JSON.parse(err.stdout) : { error: String(err.stderr || err) } };
  }
}

test('the MCP Python SDK client initializes, lists tools and calls them with a bearer token', async () => {
  const t = await mint('python sdk');
  const { code, out } = await pythonClient(t.token);
  assert.equal(code, 0, JSON.stringify(out));
  assert.equal(out.server, 'tessera');
  assert.equal(out.protocol_version, '2025-11-25');
  for (const n of ['whoami', 'list_tasks', 'create_task']) assert.ok(out.tools.includes(n), `${n} in ${out.tools}`);
  assert.equal(out.whoami.is_error, false);
  assert.equal(out.whoami.structured.token_id, t.id);
  assert.equal(out.create_task.is_error, false);
  assert.equal(out.create_task.structured.title, 'from the Python SDK');
});

test('the MCP Python SDK client pinned to 2026-07-28 lists and calls tools without initialize', async () => {
  const t = await mint('python sdk 2026');
  const { code, out } = await pythonClient(t.token, '2026-07-28');
  assert.equal(code, 0, JSON.stringify(out));
  assert.equal(out.protocol_version, '2026-07-28');
  for (const n of ['whoami', 'list_tasks', 'create_task']) assert.ok(out.tools.includes(n), `${n} in ${out.tools}`);
  assert.equal(out.whoami.is_error, false);
  assert.equal(out.whoami.structured.token_id, t.id);
  assert.equal(out.create_task.structured.title, 'from the Python SDK');
});

test('the MCP Python SDK client is refused with a revoked token', async () => {
  const t = await mint('revoked python sdk');
  await call('DELETE', `/tokens/${t.id}`, { reason: 'interop test' });
  const { code, out } = await pythonClient(t.token);
  assert.equal(code, 1, `revoked token was accepted: ${JSON.stringify(out)}`);
  assert.ok(out.error, JSON.stringify(out));
});
