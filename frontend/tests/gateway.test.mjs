// The gateway (issue 14): Tessera in front of an MCP server no one on this team wrote
// (@modelcontextprotocol/server-everything, Streamable HTTP with sessions and SSE answers),
// registered with the CLI and driven through `/mcp/every` by the official TypeScript SDK
// client with Tessera tokens of different scopes; and a small FastMCP 4 server
// (interop/upstreams/notes_server.py) that records the raw headers it received. The official
// Python SDK (interop/python/gateway_client.py) and the MCP Inspector CLI go through it too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, ElicitRequestSchema, LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { startTessera, apiSession, uniqueEmail, ROOT, freePort, startEverything, startNotes, PYTHON } from './helpers.mjs';

const PY_CLIENT = path.join(ROOT, 'interop/python/gateway_client.py');
const INSPECTOR = path.join(ROOT, 'frontend/node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js');
const run = promisify(execFile);
const UPSTREAM_KEY = 'k-gw-upstream-123';

let server;
let call;
let upstream;
let upstreamPort;
let notes;
let notesPort;
let home;

async function startUpstream() {
  ({ child: upstream, port: upstreamPort } = await startEverything());
}

before(async () => {
  // The Inspector keeps a catalog under $HOME; give it a throwaway one.
  home = mkdtempSync(path.join(tmpdir(), 'tessera-gw-inspector-'));
  await Promise.all([startUpstream(), (async () => { ({ child: notes, port: notesPort } = await startNotes()); })()]);
  server = await startTessera();
  const email = server.addUser(uniqueEmail('gateway'), undefined, { admin: true });
  call = await apiSession(server, email);
  const added = server.cli(['server', 'add', 'every', '--url', `http://127.0.0.1:${upstreamPort}/mcp`]);
  assert.equal(added.status, 0, added.stderr);
  await call('POST', '/servers', {
    name: 'notes', url: `http://127.0.0.1:${notesPort}/mcp`, headers: { 'X-Upstream-Key': UPSTREAM_KEY },
  });
});

after(async () => {
  await server?.stop();
  upstream?.kill('SIGTERM');
  notes?.kill('SIGTERM');
  if (home) rmSync(home, { recursive: true, force: true });
});

const mint = (scopes) => call('POST', '/tokens', { name: `gw ${scopes.join(' ')}`, scopes, expires_in_days: 1 });

async function connect(secret, name = 'every', extraHeaders = {}, setup = () => {}, capabilities = {}) {
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp/${name}`), {
    requestInit: { headers: { Authorization: `Bearer ${secret}`, ...extraHeaders } },
  });
  const client = new Client({ name: 'tessera-gateway-test', version: '0.0.0' }, { capabilities });
  setup(client);
  await client.connect(transport);
  return { client, transport };
}

async function toolNames(scopes, name = 'every') {
  const t = await mint(scopes);
  const { client } = await connect(t.token, name);
  try {
    return (await client.listTools()).tools.map((x) => x.name).sort();
  } finally {
    await client.close();
  }
}

/** initialize by hand: the session id and the secret, for raw requests. */
async function rawSession(secret) {
  const res = await post(secret, null, {
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '0' } },
  });
  assert.equal(res.status, 200);
  await res.text();
  return res.headers.get('mcp-session-id');
}

function post(secret, session, body, path = '/mcp/every') {
  const headers = {
    Authorization: `Bearer ${secret}`, 'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream', 'MCP-Protocol-Version': '2025-11-25',
  };
  if (session) headers['Mcp-Session-Id'] = session;
  return fetch(`${server.url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
}

test('the tools pinned at add (read through rmcp) are the ones the gateway then serves: nothing is held', async () => {
  const all = await toolNames(['write:every']);
  assert.ok(all.length > 5, all.join());
  const every = await call('GET', '/servers/every');
  assert.deepEqual(every.held_tools, [], 'a pin that differed from the served definition would hold the tool');
  const tools = await call('GET', '/servers/every/tools');
  assert.ok(tools.every((t) => t.pinned && t.held === null), JSON.stringify(tools.filter((t) => !t.pinned || t.held)));
});

test('read, write and call scopes each see exactly the tools they may call', async () => {
  const all = await toolNames(['write:every']);
  const read = await toolNames(['read:every']);
  assert.ok(all.includes('gzip-file-as-resource'), all.join());
  assert.ok(read.includes('echo') && !read.includes('gzip-file-as-resource'), read.join());
  assert.ok(read.length < all.length);
  assert.deepEqual(await toolNames(['call:every/get-sum']), ['get-sum']);
});

test('the SDK client calls a read-only tool through the gateway', async () => {
  const t = await mint(['read:every', 'execute:mcp']);
  const { client } = await connect(t.token);
  try {
    await client.listTools();
    const result = await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } });
    assert.match(result.content.map((c) => c.text).join(''), /5/);
  } finally {
    await client.close();
  }
});

test('progress notifications of a long call arrive through the gateway as they are sent, not at the end', async () => {
  const t = await mint(['read:every', 'execute:mcp']);
  const { client } = await connect(t.token);
  try {
    // Listing first, as clients do: a tool the gateway has not seen listed yet counts as
    // write-class (the conservative default) until its readOnlyHint is known.
    await client.listTools();
    const progress = [];
    const at = [];
    const result = await client.callTool(
      { name: 'trigger-long-running-operation', arguments: { duration: 0.6, steps: 3 } },
      undefined,
      { onprogress: (p) => { progress.push(`${p.progress}/${p.total}`); at.push(Date.now()); } },
    );
    assert.deepEqual(progress, ['1/3', '2/3', '3/3']);
    // The upstream sends them 200 ms apart; a gateway that buffered the answer would hand
    // all three over at once.
    assert.ok(at[2] - at[0] >= 150, `progress came ${at[2] - at[0]} ms apart`);
    assert.match(result.content.map((c) => c.text).join(''), /completed/);
  } finally {
    await client.close();
  }
});

test('a sampling request from the upstream reaches the client and its answer goes back', async () => {
  const t = await mint(['write:every', 'execute:mcp']);
  let asked;
  const { client } = await connect(t.token, 'every', {}, (c) => {
    c.setRequestHandler(CreateMessageRequestSchema, async (req) => {
      asked = req.params.messages[0].content.text;
      return { model: 'client-side-model', role: 'assistant', content: { type: 'text', text: 'sampled through Tessera' } };
    });
  }, { sampling: {} });
  try {
    assert.ok((await client.listTools()).tools.some((x) => x.name === 'trigger-sampling-request'));
    const result = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'hello upstream', maxTokens: 5 } });
    assert.match(asked, /hello upstream/);
    assert.match(result.content.map((c) => c.text).join(''), /sampled through Tessera/);
  } finally {
    await client.close();
  }
});

test('an elicitation request from the upstream reaches the client and its answer goes back', async () => {
  const t = await mint(['write:every', 'execute:mcp']);
  let message;
  const { client } = await connect(t.token, 'every', {}, (c) => {
    c.setRequestHandler(ElicitRequestSchema, async (req) => {
      message = req.params.message;
      return { action: 'accept', content: { name: 'Ada Lovelace', check: true } };
    });
  }, { elicitation: {} });
  try {
    const result = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
    assert.match(message, /provide inputs/);
    assert.match(result.content.map((c) => c.text).join(''), /Ada Lovelace/);
  } finally {
    await client.close();
  }
});

test('notifications the upstream sends on the session\'s GET stream reach the client', async () => {
  const t = await mint(['write:every', 'execute:mcp']);
  const logs = [];
  const { client } = await connect(t.token, 'every', {}, (c) => {
    c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => { logs.push(n.params.data); });
  });
  try {
    // The tool starts a per-session log feed (one message at once, then one every 5 s),
    // sent outside any request: only the GET stream can carry it.
    await client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
    const deadline = Date.now() + 8_000;
    while (logs.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(logs.length > 0, 'no notifications/message arrived');
    assert.match(logs[0], /message - SessionId /);
    await client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
  } finally {
    await client.close();
  }
});

test('resources need read:every and are read through the gateway', async () => {
  const reader = await mint(['read:every']);
  const { client } = await connect(reader.token);
  try {
    const { resources } = await client.listResources();
    assert.ok(resources.length > 0);
    const read = await client.readResource({ uri: resources[0].uri });
    assert.equal(read.contents[0].uri, resources[0].uri);
  } finally {
    await client.close();
  }
  const caller = await mint(['call:every/get-sum']);
  const session = await rawSession(caller.token);
  const res = await post(caller.token, session, { jsonrpc: '2.0', id: 9, method: 'resources/list', params: {} });
  assert.equal(res.status, 403);
  assert.match(res.headers.get('www-authenticate'), /scope="read:every"/);
});

test('a write tool with a read scope is 403 naming write:every', async () => {
  const t = await mint(['read:every', 'execute:mcp']);
  const session = await rawSession(t.token);
  const res = await post(t.token, session, {
    jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'toggle-simulated-logging', arguments: {} },
  });
  assert.equal(res.status, 403);
  assert.match(res.headers.get('www-authenticate'), /scope="write:every"/);
  assert.equal((await res.json()).error, 'insufficient_scope');
});

test('a session belongs to the token that opened it', async () => {
  const a = await mint(['read:every']);
  const b = await mint(['read:every']);
  const session = await rawSession(a.token);
  const mine = await post(a.token, session, { jsonrpc: '2.0', id: 3, method: 'tools/list', params: {} });
  assert.equal(mine.status, 200);
  await mine.text();
  const theirs = await post(b.token, session, { jsonrpc: '2.0', id: 3, method: 'tools/list', params: {} });
  assert.equal(theirs.status, 404);
});

test('revoking the token ends its open notification stream', { timeout: 15_000 }, async () => {
  const t = await mint(['read:every']);
  const session = await rawSession(t.token);
  const initialized = await post(t.token, session, { jsonrpc: '2.0', method: 'notifications/initialized' });
  await initialized.text();
  const stream = await fetch(`${server.url}/mcp/every`, {
    headers: {
      Authorization: `Bearer ${t.token}`, Accept: 'text/event-stream',
      'Mcp-Session-Id': session, 'MCP-Protocol-Version': '2025-11-25',
    },
  });
  assert.equal(stream.status, 200);
  assert.match(stream.headers.get('content-type'), /text\/event-stream/);
  const reader = stream.body.getReader();
  await call('DELETE', `/tokens/${t.id}`, { reason: 'gateway test' });
  // The stream ends (the test's timeout is the bound); whatever was pending may come first.
  for (;;) {
    const { done } = await reader.read().catch(() => ({ done: true }));
    if (done) break;
  }
  const refused = await post(t.token, session, { jsonrpc: '2.0', id: 5, method: 'ping' });
  assert.equal(refused.status, 401);
});

test('a hidden tool disappears from every list and cannot be called', async () => {
  const hide = server.cli(['server', 'tool', 'every', 'echo', '--access', 'hidden']);
  assert.equal(hide.status, 0, hide.stderr);
  assert.ok(!(await toolNames(['write:every'])).includes('echo'));
  const t = await mint(['write:every', 'execute:mcp']);
  const { client } = await connect(t.token);
  try {
    await assert.rejects(client.callTool({ name: 'echo', arguments: { message: 'hi' } }), /Unknown tool/);
  } finally {
    await client.close();
  }
});

test('an upstream that is down is 502 upstream_unavailable with Retry-After', async () => {
  await call('POST', '/servers', { name: 'down', url: `http://127.0.0.1:${await freePort()}/mcp` });
  const t = await mint(['read:down']);
  const res = await post(t.token, null, { jsonrpc: '2.0', id: 7, method: 'ping' }, '/mcp/down');
  assert.equal(res.status, 502);
  assert.ok(res.headers.get('retry-after'));
  assert.equal((await res.json()).error.data.error, 'upstream_unavailable');
});

test('FastMCP: read sees the read-only tool, write sees both', async () => {
  assert.deepEqual(await toolNames(['read:notes'], 'notes'), ['list_notes']);
  assert.deepEqual(await toolNames(['write:notes'], 'notes'), ['add_note', 'list_notes']);
});

test('FastMCP: the upstream gets its configured header, never the client\'s Authorization or Cookie', async () => {
  const t = await mint(['write:notes', 'execute:mcp']);
  const { client } = await connect(t.token, 'notes', { Cookie: 'tessera_session=client-cookie' });
  try {
    await client.listTools();
    const added = await client.callTool({ name: 'add_note', arguments: { text: 'through the gateway' } });
    assert.match(added.content.map((c) => c.text).join(''), /added note/);
  } finally {
    await client.close();
  }
  const seen = await (await fetch(`http://127.0.0.1:${notesPort}/seen-headers`)).json();
  assert.ok(seen.length >= 2, JSON.stringify(seen));
  for (const headers of seen) {
    assert.equal(headers.authorization, undefined, JSON.stringify(headers));
    assert.equal(headers.cookie, undefined, JSON.stringify(headers));
    assert.equal(headers['x-upstream-key'], UPSTREAM_KEY);
  }
});

/** Runs the official Python SDK (interop/python/gateway_client.py); the token goes in its environment. */
async function pythonClient(secret, name, tool, args, pin) {
  try {
    const { stdout } = await run(PYTHON, [PY_CLIENT, `${server.url}/mcp/${name}`, tool, JSON.stringify(args)], {
      env: { ...process.env, TESSERA_TOKEN: secret, ...(pin ? { MCP_PIN: pin } : {}) }, timeout: 60_000,
    });
    return { code: 0, out: JSON.parse(stdout) };
  } catch (err) {
    return { code: err.code, out: err.stdout ? JSON.parse(err.stdout) : { error: String(err.stderr || err) } };
  }
}

test('the Python SDK lists and calls the FastMCP upstream\'s tools through the gateway', async () => {
  const t = await mint(['write:notes', 'execute:mcp']);
  const { code, out } = await pythonClient(t.token, 'notes', 'add_note', { text: 'from the Python SDK' });
  assert.equal(code, 0, JSON.stringify(out));
  assert.deepEqual(out.tools, ['add_note', 'list_notes']);
  assert.equal(out.call.is_error, false, JSON.stringify(out));
  assert.match(out.call.text, /added note \d+/);
});

test('the Python SDK with a read scope sees and calls only the read-only tool', async () => {
  const t = await mint(['read:notes', 'execute:mcp']);
  const { code, out } = await pythonClient(t.token, 'notes', 'list_notes', {});
  assert.equal(code, 0, JSON.stringify(out));
  assert.deepEqual(out.tools, ['list_notes']);
  assert.equal(out.call.is_error, false, JSON.stringify(out));
});

test('the Python SDK pinned to 2026-07-28 goes through the gateway to a FastMCP upstream that speaks it', async () => {
  const t = await mint(['read:notes', 'execute:mcp']);
  const { code, out } = await pythonClient(t.token, 'notes', 'list_notes', {}, '2026-07-28');
  assert.equal(code, 0, JSON.stringify(out));
  assert.equal(out.protocol_version, '2026-07-28');
  assert.deepEqual(out.tools, ['list_notes']);
  assert.equal(out.call.is_error, false, JSON.stringify(out));
});

/** Runs the MCP Inspector CLI against /mcp/{name}; resolves to its exit code, stdout and stderr. */
async function inspector(secret, name, ...args) {
  const argv = [INSPECTOR, '--cli', `${server.url}/mcp/${name}`, '--transport', 'http', '--header', `Authorization: Bearer ${secret}`, ...args];
  try {
    const { stdout, stderr } = await run(process.execPath, argv, { env: { ...process.env, HOME: home }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    return { code: err.code ?? 1, stdout: err.stdout ?? '', stderr: err.stderr ?? String(err) };
  }
}

test('the MCP Inspector CLI lists and calls server-everything\'s tools through the gateway', async () => {
  const t = await mint(['call:every/get-sum', 'execute:mcp']);
  const listed = await inspector(t.token, 'every', '--method', 'tools/list');
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual(JSON.parse(listed.stdout).tools.map((x) => x.name), ['get-sum']);
  const summed = await inspector(t.token, 'every', '--method', 'tools/call', '--tool-name', 'get-sum', '--tool-arg', 'a=2', '--tool-arg', 'b=40');
  assert.equal(summed.code, 0, summed.stderr);
  const result = JSON.parse(summed.stdout);
  assert.ok(!result.isError, summed.stdout);
  assert.match(result.content.map((c) => c.text).join(), /42/);
});

test('a 2026-07-28 client in front of a 2025-era upstream gets a JSON-RPC error naming both versions', async () => {
  const t = await mint(['read:every']);
  const res = await fetch(`${server.url}/mcp/every`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${t.token}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream',
      'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'tools/list',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list', params: {} }),
  });
  assert.equal(res.status, 400);
  const body = await res.json();
  assert.equal(body.id, 7);
  assert.equal(body.error.code, -32602);
  assert.match(body.error.message, /2026-07-28/);
  assert.match(body.error.message, /2025-11-25/);
  assert.deepEqual(body.error.data, { requested: '2026-07-28', supported: ['2025-11-25'] });
});
