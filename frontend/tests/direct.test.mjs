// Direct servers (issue 15): a FastMCP 4 server no one on this team wrote checks Tessera tokens
// itself with its stock `IntrospectionTokenVerifier` (interop/upstreams/direct_server.py, the
// docs/direct-servers.md's three lines), registered with `tessera server add --direct`; the official Python SDK
// client (interop/python/gateway_client.py) calls its tool with Tessera tokens.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { startTessera, apiSession, uniqueEmail, ROOT, freePort, startUpstreamProcess, PYTHON } from './helpers.mjs';

const DIRECT = path.join(ROOT, 'interop/upstreams/direct_server.py');
const PY_CLIENT = path.join(ROOT, 'interop/python/gateway_client.py');
const run = promisify(execFile);

let server;
let call;
let notes;
let notesUrl;

/** Starts the FastMCP server with the credential `tessera server add --direct` printed;
 * `advertise` (its registered name) wraps its verifier in RemoteAuthProvider (docs/direct-servers.md's
 * OAuth variant). */
async function startDirect(port, clientId, clientSecret, advertise = '') {
  const env = {
    ...process.env, TESSERA_URL: server.url, TESSERA_CLIENT_ID: clientId, TESSERA_CLIENT_SECRET: clientSecret,
    TESSERA_ADVERTISE: advertise,
  };
  const url = `http://127.0.0.1:${port}/mcp`;
  return startUpstreamProcess('direct server', PYTHON, [DIRECT, String(port)], {
    env,
    // Without a token FastMCP answers 401: it is listening.
    ready: async () => (await fetch(url, { method: 'POST' })).status === 401,
  });
}

/** Registers a direct server named `name` at a free port; its URL and credential. */
async function addDirect(name) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/mcp`;
  const added = server.cli(['server', 'add', name, '--url', url, '--direct']);
  assert.equal(added.status, 0, added.stderr);
  const clientId = added.stdout.match(/client id:\s+(\S+)/)[1];
  const clientSecret = added.stdout.match(/client secret:\s+(\S+)/)[1];
  return { port, url, clientId, clientSecret, stdout: added.stdout };
}

before(async () => {
  server = await startTessera();
  const email = server.addUser(uniqueEmail('direct'), undefined, { admin: true });
  call = await apiSession(server, email);
  const added = await addDirect('notes');
  notesUrl = added.url;
  assert.match(added.stdout, new RegExp(`introspection endpoint: ${server.url}/oauth/introspect`));
  // Another direct server, for "a token for another server is refused".
  assert.equal(server.cli(['server', 'add', 'other', '--url', `http://127.0.0.1:${await freePort()}/mcp`, '--direct']).status, 0);
  notes = await startDirect(added.port, added.clientId, added.clientSecret);
});

let advertised;

after(async () => {
  notes?.kill('SIGTERM');
  advertised?.kill('SIGTERM');
  await server?.stop();
});

const mint = (scopes) => call('POST', '/tokens', { name: `direct ${scopes.join(' ')}`, scopes, expires_in_days: 1 });

/** The Python SDK client against the direct server: its JSON answer, or `{error}` if refused. */
async function listNotes(secret) {
  try {
    const { stdout } = await run(PYTHON, [PY_CLIENT, notesUrl, 'list_notes'], {
      env: { ...process.env, TESSERA_TOKEN: secret }, timeout: 60_000,
    });
    return JSON.parse(stdout);
  } catch (e) {
    if (e.code === 1 && e.stdout) return JSON.parse(e.stdout);
    throw e;
  }
}

/** What a direct server (`notes` unless `url` says) answers a bare `initialize` with
 * `secret`: status and challenge. */
async function rawInitialize(secret, url = notesUrl) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { Authorization: `Bearer ${secret}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
    body: JSON.stringify({
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '0' } },
    }),
  });
  await res.text();
  return { status: res.status, challenge: res.headers.get('www-authenticate') };
}

/** The SDK client fails and the server's answer is 401 invalid_token. */
async function assertRefused(secret) {
  const refused = await listNotes(secret);
  assert.ok(refused.error, JSON.stringify(refused));
  const raw = await rawInitialize(secret);
  assert.equal(raw.status, 401);
  assert.match(raw.challenge, /invalid_token/);
}

test('docs/direct-servers.md quotes the direct server\'s lines verbatim', () => {
  const source = readFileSync(DIRECT, 'utf8');
  const lines = source.split('# --- the lines a team adds (quoted in docs/direct-servers.md) ---\n')[1].split('# --- end ---')[0];
  assert.ok(readFileSync(path.join(ROOT, 'docs/direct-servers.md'), 'utf8').includes(lines), `docs/direct-servers.md lacks:\n${lines}`);
});

test('a token with read:notes calls the direct server\'s tool, and revoking it refuses the next call', async () => {
  const t = await mint(['read:notes']);
  const ok = await listNotes(t.token);
  assert.equal(ok.error, undefined, JSON.stringify(ok));
  assert.deepEqual(ok.tools, ['list_notes']);
  assert.equal(ok.call.is_error, false);
  assert.match(ok.call.text, /first note/);
  await call('DELETE', `/tokens/${t.id}`, { reason: 'direct test' });
  await assertRefused(t.token);
});

test('a token for another server is refused by the direct server', async () => {
  const t = await mint(['read:other']);
  await assertRefused(t.token);
});

test('a token with write:notes works: write brings read', async () => {
  const t = await mint(['write:notes']);
  const ok = await listNotes(t.token);
  assert.equal(ok.error, undefined, JSON.stringify(ok));
  assert.match(ok.call.text, /first note/);
});

test('wrapped in RemoteAuthProvider, the direct server names Tessera as its authorization server and still takes its tokens', async () => {
  const added = await addDirect('wiki');
  advertised = await startDirect(added.port, added.clientId, added.clientSecret, 'wiki');
  const refused = await fetch(added.url, { method: 'POST' });
  assert.equal(refused.status, 401);
  const metadataUrl = refused.headers.get('www-authenticate').match(/resource_metadata="([^"]+)"/)[1];
  const doc = await (await fetch(metadataUrl)).json();
  // The resource it advertises is the URL registered with Tessera: the audience of its tokens.
  assert.equal(doc.resource, added.url);
  assert.deepEqual(doc.authorization_servers.map((u) => u.replace(/\/$/, '')), [server.url]);
  assert.deepEqual(doc.scopes_supported, ['read:wiki', 'write:wiki']);
  const t = await mint(['read:wiki']);
  assert.equal((await rawInitialize(t.token, added.url)).status, 200);
  const other = await mint(['read:notes']);
  assert.equal((await rawInitialize(other.token, added.url)).status, 401);
});
