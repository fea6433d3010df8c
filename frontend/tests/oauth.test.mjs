// The official MCP TypeScript SDK's OAuth support against Tessera's authorization server:
// discovery → dynamic registration → authorize → consent (Chromium) → token → tools; then
// a refresh; then the person revokes the grant in the web UI and the client is cut off. The
// same client also connects to a gateway server (`/mcp/every`, in front of
// @modelcontextprotocol/server-everything) with a grant narrowed to one tool on the consent page.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { startTessera, launchBrowser, openPage, signIn, uniqueEmail, screenshot, apiSession, PASSWORD, ROOT, TARGET_DIR, startEverything } from './helpers.mjs';

const REDIRECT = 'http://127.0.0.1:33418/callback';
const CLIENT_NAME = 'SDK Test Client';

let server;
let browser;
let certDir;
let docServer;
let docUrl;
let everything;

/** server-everything on a free loopback port; resolves to its URL. */
async function startUpstream() {
  const started = await startEverything();
  everything = started.child;
  return started.url;
}

/** A throwaway CA and a 127.0.0.1 certificate it signed (openssl), for the metadata document. */
function makeCerts(dir) {
  const run = (args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=tessera test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
  run(['req', ...ec, '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=127.0.0.1']);
  writeFileSync(path.join(dir, 'leaf.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
  run(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'leaf.pem',
    '-days', '1', '-extfile', 'leaf.ext']);
}

before(async () => {
  // The Client ID Metadata Document is served over https on a loopback port; the server
  // trusts the throwaway CA and may fetch from loopback (development settings).
  certDir = mkdtempSync(path.join(tmpdir(), 'tessera-cimd-'));
  makeCerts(certDir);
  docServer = createServer({ key: readFileSync(path.join(certDir, 'leaf.key')), cert: readFileSync(path.join(certDir, 'leaf.pem')) },
    (req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({
        client_id: docUrl,
        client_name: CIMD_CLIENT_NAME,
        redirect_uris: [REDIRECT],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      }));
    });
  await new Promise((resolve) => docServer.listen(0, '127.0.0.1', resolve));
  docUrl = `https://127.0.0.1:${docServer.address().port}/client.json`;
  process.env.TESSERA_OAUTH_ALLOW_LOCAL_CLIENTS = '1';
  process.env.TESSERA_OAUTH_EXTRA_CA_FILE = path.join(certDir, 'ca.pem');
  const [everythingUrl] = await Promise.all([startUpstream(), (async () => { server = await startTessera(); })()]);
  browser = await launchBrowser();
  // A gateway server whose `echo` the admin marked read-only, so `read:every` covers it.
  for (const args of [['server', 'add', 'every', '--url', everythingUrl, '--description', 'Everything test server'],
    ['server', 'tool', 'every', 'echo', '--access', 'read']]) {
    const out = server.cli(args);
    assert.equal(out.status, 0, out.stderr);
  }
});

after(async () => {
  await browser?.close();
  await server?.stop();
  everything?.kill('SIGTERM');
  docServer?.close();
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

const CIMD_CLIENT_NAME = 'CIMD Test Client';

/** An in-memory `OAuthClientProvider`, as a native MCP client would keep one. */
class MemoryProvider {
  constructor() {
    this.saved = {};
    this.authorizationUrl = null;
  }
  get redirectUrl() { return REDIRECT; }
  get clientMetadata() {
    return {
      client_name: CLIENT_NAME,
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() { return 'state-123'; }
  clientInformation() { return this.saved.client; }
  saveClientInformation(info) { this.saved.client = info; }
  tokens() { return this.saved.tokens; }
  saveTokens(tokens) { this.saved.tokens = tokens; }
  redirectToAuthorization(url) { this.authorizationUrl = url; }
  saveCodeVerifier(v) { this.saved.verifier = v; }
  codeVerifier() { return this.saved.verifier; }
  saveDiscoveryState(s) { this.saved.discovery = s; }
  discoveryState() { return this.saved.discovery; }
  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'tokens') delete this.saved.tokens;
    if (scope === 'all' || scope === 'client') delete this.saved.client;
  }
}

function connect(provider, endpoint = '/mcp') {
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}${endpoint}`), { authProvider: provider });
  const client = new Client({ name: 'tessera-oauth-test', version: '0.0.0' });
  return { client, transport };
}

const textOf = (result) => result.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n');

/**
 * Opens `authorizationUrl` in a fresh page and signs `email` in, which lands on the consent
 * page; `callback` resolves to the URL the client's redirect URI is sent to (caught, never
 * fetched).
 */
async function signInToConsent(authorizationUrl, email) {
  const { page, context } = await openPage(browser, server);
  const callback = new Promise((resolve) => {
    page.route(`${REDIRECT}**`, (route) => {
      resolve(route.request().url());
      route.fulfill({ status: 200, contentType: 'text/plain', body: 'done' });
    });
  });
  await page.goto(authorizationUrl);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  return { page, context, callback };
}

test('the TypeScript SDK connects with OAuth, refreshes, and is cut off when the grant is revoked in the UI', async () => {
  const email = server.addUser(uniqueEmail('oauth'));
  const provider = new MemoryProvider();

  // 1. The first connection finds no token: discovery, registration, then a redirect.
  const first = connect(provider);
  await assert.rejects(first.client.connect(first.transport), UnauthorizedError);
  assert.ok(provider.saved.client?.client_id, 'registered dynamically');
  assert.ok(provider.authorizationUrl, 'sent to the authorization endpoint');

  // 2. The person signs in and approves in the browser; the redirect is caught.
  const { page, callback } = await signInToConsent(provider.authorizationUrl.href, email);
  await page.getByRole('heading', { level: 1, name: `Allow “${CLIENT_NAME}” to use Tessera?` }).waitFor();
  assert.match(await page.locator('#consent-origin').textContent(), /registered dynamically/);
  assert.equal(await page.locator('input[name=scope][value="mcp:admin"]').count(), 0);
  // The 401 asked for `mcp:access`: the client is offered reading and calling tools, ticked,
  // writing unticked, each scope with what it allows, and no token management.
  assert.equal(await page.locator('input[name=scope][value="write:tokens"]').count(), 0);
  assert.equal(await page.locator('input[name=scope][value="read:tasks"]').isChecked(), true);
  assert.equal(await page.locator('input[name=scope][value="execute:mcp"]').isChecked(), true);
  assert.equal(await page.locator('input[name=scope][value="write:agents"]').isChecked(), false);
  const writeAgents = page.locator('li', { has: page.locator('input[name=scope][value="write:agents"]') });
  assert.match(await writeAgents.textContent(), /register and update agents/);
  await screenshot(page, 'oauth-consent');
  await page.getByRole('button', { name: 'Allow' }).click();
  const back = new URL(await callback);
  assert.equal(back.searchParams.get('state'), 'state-123');
  assert.equal(back.searchParams.get('iss'), server.url);
  await first.transport.finishAuth(back.searchParams.get('code'));
  assert.ok(provider.saved.tokens?.access_token);
  assert.ok(!provider.saved.tokens.scope.split(' ').some((s) => s.startsWith('write:')), provider.saved.tokens.scope);
  assert.ok(provider.saved.tokens.scope.split(' ').includes('execute:mcp'), provider.saved.tokens.scope);

  // 3. Connected: tools/list and whoami.
  const second = connect(provider);
  await second.client.connect(second.transport);
  const { tools } = await second.client.listTools();
  assert.ok(tools.some((t) => t.name === 'whoami'));
  const who = await second.client.callTool({ name: 'whoami', arguments: {} });
  assert.ok(!who.isError, textOf(who));
  await second.client.close();

  // 4. An access token the server refuses is refreshed with the (rotated) refresh token.
  const firstRefresh = provider.saved.tokens.refresh_token;
  provider.saved.tokens = { ...provider.saved.tokens, access_token: 'not-a-token' };
  const third = connect(provider);
  await third.client.connect(third.transport);
  await third.client.listTools();
  assert.notEqual(provider.saved.tokens.refresh_token, firstRefresh, 'refresh token rotated');
  await third.client.close();

  // 5. The CLI lists the grant, marked; in the token list of the UI, revoking it cuts the
  // client off.
  const listed = server.cli(['token', 'list']);
  assert.equal(listed.status, 0, listed.stderr);
  assert.match(listed.stdout, new RegExp(`via OAuth — ${CLIENT_NAME}`));
  await page.unrouteAll({ behavior: 'ignoreErrors' });
  await page.goto(`${server.url}/#/tokens`);
  const mark = page.getByText(`via OAuth — ${CLIENT_NAME}`);
  await mark.waitFor();
  await page.getByRole('link', { name: CLIENT_NAME, exact: true }).click();
  await page.getByRole('button', { name: 'Revoke token…' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Revoke now' }).click();
  await page.getByText(`“${CLIENT_NAME}” is revoked.`).waitFor();
  const fourth = connect(provider);
  await assert.rejects(async () => {
    await fourth.client.connect(fourth.transport);
    await fourth.client.listTools();
  });
  await fourth.client.close().catch(() => {});
});

test('the TypeScript SDK connects with OAuth to a gateway server, narrowed to one tool on the consent page', async () => {
  const email = server.addUser(uniqueEmail('oauth-gw'));
  // A client of its own name: the clients page test below tells the first test's client,
  // whose grant is revoked, by its name.
  const provider = new MemoryProvider();
  Object.defineProperty(provider, 'clientMetadata', { value: { ...provider.clientMetadata, client_name: 'Gateway Test Client' } });
  const resource = `${server.url}/mcp/every`;

  // The 401 of /mcp/every points at that server's own metadata, which names Tessera.
  const first = connect(provider, '/mcp/every');
  await assert.rejects(first.client.connect(first.transport), UnauthorizedError);
  assert.equal(provider.authorizationUrl.searchParams.get('resource'), resource);

  const { page, context, callback } = await signInToConsent(provider.authorizationUrl.href, email);
  await page.getByRole('heading', { level: 2, name: 'Server “every”' }).waitFor();
  assert.match(await page.locator('#consent-server').textContent(), /Everything test server/);
  assert.match(await page.locator('#consent-tools').textContent(), /echo\s*read-only/);
  assert.ok(await page.locator('input[name=scope][value="read:every"]').isChecked());
  assert.equal(await page.locator('input[name=scope][value="read:tasks"]').count(), 0);
  // Narrowed from the whole server to its one tool.
  await page.locator('input[name=scope][value="read:every"]').uncheck();
  await page.locator('input[name=scope][value="call:every/echo"]').check();
  await screenshot(page, 'oauth-consent-gateway');
  await page.getByRole('button', { name: 'Allow' }).click();
  const back = new URL(await callback);
  await context.close();
  await first.transport.finishAuth(back.searchParams.get('code'));
  assert.deepEqual(provider.saved.tokens.scope.split(' ').sort(), ['call:every/echo', 'execute:mcp']);

  const second = connect(provider, '/mcp/every');
  await second.client.connect(second.transport);
  const { tools } = await second.client.listTools();
  assert.deepEqual(tools.map((t) => t.name), ['echo']);
  const echoed = await second.client.callTool({ name: 'echo', arguments: { message: 'through the gateway' } });
  assert.match(textOf(echoed), /through the gateway/);
  await second.client.close();

  // Bound to /mcp/every: Tessera's own /mcp refuses it.
  const own = await fetch(`${server.url}/mcp`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${provider.saved.tokens.access_token}`, 'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  });
  assert.equal(own.status, 401);
});

/** The same client, identified by its metadata document instead of registering. */
class DocumentProvider extends MemoryProvider {
  get clientMetadataUrl() { return docUrl; }
  get clientMetadata() { return { ...super.clientMetadata, client_name: CIMD_CLIENT_NAME }; }
}

test('the TypeScript SDK connects with a Client ID Metadata Document instead of registering', async () => {
  const email = server.addUser(uniqueEmail('cimd'));
  const provider = new DocumentProvider();
  const first = connect(provider);
  await assert.rejects(first.client.connect(first.transport), UnauthorizedError);
  assert.equal(provider.saved.client?.client_id, docUrl, 'the document URL is the client id');

  const { page, callback } = await signInToConsent(provider.authorizationUrl.href, email);
  await page.getByRole('heading', { level: 1, name: `Allow “${CIMD_CLIENT_NAME}” to use Tessera?` }).waitFor();
  assert.equal((await page.locator('#consent-origin').textContent()).trim(), '127.0.0.1');
  await page.getByRole('button', { name: 'Allow' }).click();
  const back = new URL(await callback);
  assert.equal(back.searchParams.get('iss'), server.url);
  await first.transport.finishAuth(back.searchParams.get('code'));

  const second = connect(provider);
  await second.client.connect(second.transport);
  const who = await second.client.callTool({ name: 'whoami', arguments: {} });
  assert.ok(!who.isError, textOf(who));
  await second.client.close();
});

test('authorizing the same client again replaces its grant: after it lost its tokens, and on a step-up whose call then gets its answer', async () => {
  const email = server.addUser(uniqueEmail('oauth-again'));
  const name = 'Returning Client';
  const provider = new MemoryProvider();
  Object.defineProperty(provider, 'clientMetadata', { value: { ...provider.clientMetadata, client_name: name } });
  /** Approves `url` in the browser (ticking `tick` too); says whether the page named a grant it replaces. */
  const approve = async (url, tick = []) => {
    const { page, context, callback } = await signInToConsent(url, email);
    await page.getByRole('heading', { level: 1, name: `Allow “${name}” to use Tessera?` }).waitFor();
    const replaces = await page.locator('#consent-replaces').count() === 1;
    if (replaces) await screenshot(page, 'oauth-consent-replaces');
    for (const s of tick) await page.locator(`input[name=scope][value="${s}"]`).check();
    await page.getByRole('button', { name: 'Allow' }).click();
    const back = new URL(await callback);
    await context.close();
    return { code: back.searchParams.get('code'), replaces };
  };
  const authorize = async (tick) => {
    const first = connect(provider);
    await assert.rejects(first.client.connect(first.transport), UnauthorizedError);
    const { code, replaces } = await approve(provider.authorizationUrl.href, tick);
    await first.transport.finishAuth(code);
    return replaces;
  };

  assert.equal(await authorize(), false, 'a first grant replaces nothing');
  // A reinstall: the client lost its tokens and authorizes again.
  provider.invalidateCredentials('tokens');
  assert.equal(await authorize(), true, 'the consent page says the earlier grant is replaced');

  // Step-up: creating a task needs write:tasks, which the grant lacks. A client without a
  // refresh token (this SDK refreshes instead when it has one) is refused with 403
  // insufficient_scope, goes back to the authorization endpoint asking for write:tasks, and
  // the same call, made again on the same connection, gets its answer.
  delete provider.saved.tokens.refresh_token;
  const session = connect(provider);
  await session.client.connect(session.transport);
  const asked = provider.authorizationUrl.href;
  const call = { name: 'create_task', arguments: { title: 'after the step-up' } };
  await assert.rejects(session.client.callTool(call), UnauthorizedError);
  assert.notEqual(provider.authorizationUrl.href, asked, 'sent to authorize again');
  assert.match(provider.authorizationUrl.searchParams.get('scope'), /write:tasks/);
  // The consent page offers what the replaced grant held beside what the challenge named, ticked.
  const { code, replaces } = await approve(provider.authorizationUrl.href);
  assert.ok(replaces, 'the step-up consent names the grant it replaces');
  await session.transport.finishAuth(code);
  const created = await session.client.callTool(call);
  assert.ok(!created.isError, textOf(created));
  assert.match(textOf(created), /after the step-up/);
  await session.client.close();

  // Exactly one grant in force, the last; the token list shows the client's grants together.
  const api = await apiSession(server, email);
  const mine = (await api('GET', '/tokens?limit=100')).items.filter((t) => t.oauth_client?.name === name);
  assert.equal(mine.length, 3);
  const active = mine.filter((t) => t.status === 'active');
  assert.equal(active.length, 1, JSON.stringify(mine.map((t) => [t.status, t.scopes])));
  assert.ok(active[0].scopes.includes('write:tasks') && active[0].scopes.includes('execute:mcp'), active[0].scopes.join(' '));
  assert.ok(mine.filter((t) => t.status === 'revoked').every((t) => t.revoke_reason === 'replaced by a new grant to the same client'));
  const { page } = await openPage(browser, server);
  try {
    await signIn(page, email);
    const group = page.locator(`tr.grant-group[data-client="${provider.saved.client.client_id}"]`);
    // The list loads after the heading shows.
    await group.first().waitFor();
    assert.equal(await group.count(), 1);
    assert.match(await group.textContent(), /Granted to Returning Client through OAuth · 3 grants/);
    const following = await page.locator('table.tokens tbody tr').evaluateAll((rows) => rows.map((r) => r.className || r.dataset.tokenId));
    const at = following.indexOf('grant-group');
    assert.deepEqual(new Set(following.slice(at + 1, at + 4)), new Set(mine.map((t) => t.id)), 'its three grants follow it');
  } finally {
    await page.close();
  }
});

const PYTHON = path.join(TARGET_DIR, 'interop-venv/bin/python');
const PY_OAUTH_CLIENT = path.join(ROOT, 'interop/python/mcp_oauth_client.py');

/** Signs in and approves `authorizationUrl` in a fresh page; resolves to the redirect's URL. */
async function approveInBrowser(authorizationUrl, email, clientName) {
  const { page, context, callback } = await signInToConsent(authorizationUrl, email);
  await page.getByRole('heading', { level: 1, name: `Allow “${clientName}” to use Tessera?` }).waitFor();
  await page.getByRole('button', { name: 'Allow' }).click();
  const url = new URL(await callback);
  await context.close();
  return url;
}

test('the Python SDK OAuthClientProvider connects with a Client ID Metadata Document', async () => {
  const email = server.addUser(uniqueEmail('py-cimd'));
  const child = spawn(PYTHON, [PY_OAUTH_CLIENT, `${server.url}/mcp`, docUrl, REDIRECT], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-5000); });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  let buffered = '';
  const lines = [];
  let authorize;
  const authorizeSeen = new Promise((resolve) => { authorize = resolve; });
  child.stdout.on('data', (d) => {
    buffered += d;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      lines.push(line);
      const msg = JSON.parse(line);
      if (msg.authorize) authorize(msg.authorize);
      if (msg.error) authorize(null);
    }
  });
  const url = await Promise.race([authorizeSeen, exited.then(() => null)]);
  assert.ok(url, `no authorization URL: ${lines.join('\n')} ${stderr}`);
  const back = await approveInBrowser(url, email, CIMD_CLIENT_NAME);
  child.stdin.write(`${JSON.stringify(Object.fromEntries(back.searchParams))}\n`);
  const code = await exited;
  const out = JSON.parse(lines.at(-1));
  assert.equal(code, 0, `${JSON.stringify(out)} ${stderr}`);
  assert.equal(out.client_id, docUrl);
  assert.ok(out.tools.includes('whoami'), out.tools.join(', '));
  assert.equal(out.whoami.is_error, false);
});

test('administrators see the OAuth clients with their kind, redirect hosts and grants in force', async () => {
  // The clients and grants the tests above made: the SDK's dynamic client (its grant revoked)
  // and the metadata-document client (granted to the TypeScript and the Python SDK).
  const admin = server.addUser(uniqueEmail('oauth-admin'), PASSWORD, { admin: true });
  const { page, problems } = await openPage(browser, server);
  try {
    await signIn(page, admin);
    await page.locator('#clients-link').click();
    await page.getByRole('heading', { level: 1, name: 'OAuth clients' }).waitFor();
    const listed = await (await page.request.get(`${server.url}/api/v2/oauth/clients`)).json();
    const cimd = listed.find((c) => c.client_id === docUrl);
    const row = page.locator(`tr[data-client-id="${docUrl}"]`);
    assert.equal((await row.locator('.client-kind').textContent()).trim(), 'CIMD');
    assert.equal((await row.locator('.client-hosts').textContent()).trim(), new URL(REDIRECT).host);
    assert.equal(Number(await row.locator('.client-grants').textContent()), cimd.active_grants);
    assert.ok(cimd.active_grants >= 1, JSON.stringify(cimd));
    const dynamic = page.getByRole('row').filter({ hasText: CLIENT_NAME }).filter({ hasText: 'dynamic' }).first();
    assert.equal(Number(await dynamic.locator('.client-grants').textContent()), 0, 'its grant was revoked');
    await screenshot(page, 'oauth-clients');
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});
