// Connected accounts (issue #25): a person whose server takes their own credential is sent by
// the official TypeScript SDK's error (URLElicitationRequiredError, -32042) to the connect page,
// connects there in Chromium, and then reaches the upstream as themselves. Header mode: the
// upstream is Tessera's own /mcp, whose whoami says whose credential arrived. OAuth mode: the
// upstream is a second Tessera at another site (`localhost`), whose own sign-in and consent
// pages the person goes through; the return to the gateway is a cross-site navigation. And an
// upstream whose authorization server is another product: a FastMCP server accepting only JWT
// access tokens that `oidc-provider` issues for it (RFC 8707), with Tessera registered there
// dynamically (RFC 7591).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startTessera, launchBrowser, openPage, signIn, apiSession, screenshot, freePort, startUpstreamProcess, listenOnLocalhost, PASSWORD, PYTHON, ROOT } from './helpers.mjs';

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

async function mcpClient(secret, name = 'mine') {
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp/${name}`), {
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
  assert.match(url, new RegExp(`^${server.url.replaceAll('.', '\\.')}/#/connections/mine\\?for=[0-9a-f-]{36}$`));

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

test('an OAuth upstream: the person signs in at the upstream itself, comes back connected, and acts there as themselves', async () => {
  const port = await freePort();
  const upstreamSite = `http://localhost:${port}`;
  const upstream = await startTessera({ TESSERA_BIND: `127.0.0.1:${port}`, TESSERA_PUBLIC_URL: upstreamSite });
  try {
    const upstreamPerson = upstream.addUser('pat-at-upstream@example.com');
    const add = server.cli(['server', 'add', 'acct', '--url', `${upstreamSite}/mcp`, '--user-auth', 'oauth']);
    assert.equal(add.status, 0, add.stderr);
    const pat = await apiSession(server, person);
    const clientToken = await pat('POST', '/tokens', { name: 'pat acct', scopes: ['write:acct', 'execute:mcp'], expires_in_days: 1 });
    const refused = await mcpClient(clientToken.token, 'acct').then(() => null, (e) => e);
    assert.equal(refused?.code, -32042, String(refused));

    const { page, problems } = await openPage(browser, server);
    try {
      await signIn(page, person);
      await page.goto(refused.data.elicitations[0].url);
      const card = page.locator('section.connection[data-server="acct"]');
      await card.getByText('Not connected').waitFor();
      await card.getByRole('link', { name: 'Connect' }).click();
      // At the upstream (another site): its own sign-in, then its consent page.
      await page.waitForURL(`${upstreamSite}/**`);
      await page.getByLabel('Email').fill(upstreamPerson);
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('button', { name: 'Allow' }).click();
      // Back at the gateway, connected.
      await page.waitForURL(`${server.url}/#/connections/acct?connected=1`);
      await page.getByText('Connected to acct.').waitFor();
      await card.getByText(/^Connected .* as /).waitFor();
      await screenshot(page, 'connections-oauth');
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }

    const upstreamId = (await (await apiSession(upstream, upstreamPerson))('GET', '/auth/me')).user.id;
    const client = await mcpClient(clientToken.token, 'acct');
    try {
      const who = await client.callTool({ name: 'whoami', arguments: {} });
      assert.equal(JSON.parse(who.content[0].text).sub, upstreamId);
    } finally {
      await client.close();
    }
  } finally {
    await upstream.stop();
  }
});

test('a connect link made for another person says so and offers no Connect', async () => {
  const { page } = await openPage(browser, server);
  try {
    await signIn(page, person);
    await page.goto(`${server.url}/#/connections/mine?for=00000000-0000-7000-8000-000000000000`);
    await page.getByText('This link was made for another account.').waitFor();
    assert.equal(await page.locator('section.connection.focused').count(), 0);
  } finally {
    await page.close();
  }
});

/** `oidc-provider` as the authorization server of `resource`: dynamic registration, PKCE,
 * revocation, and JWT access tokens bound to the resource (RFC 8707). Listens on `localhost`. */
async function startAuthorizationServer(port) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const issuer = `http://localhost:${port}`;
  const provider = new Provider(issuer, {
    jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'as-1', use: 'sig', alg: 'RS256' }] },
    features: {
      registration: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => ({
          scope: 'notes', audience: resource, accessTokenTTL: 3600, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    scopes: ['openid', 'offline_access', 'notes'],
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
    cookies: { keys: ['connections-test-cookie-key'] },
    pkce: { required: () => true },
  });
  const stop = await listenOnLocalhost(port, provider.callback());
  return { issuer, stop };
}

test('an upstream whose authorization server is another product (FastMCP + oidc-provider): connect, act as yourself, disconnect', async () => {
  const as = await startAuthorizationServer(await freePort());
  const port = await freePort();
  const fastmcp = await startUpstreamProcess('account server', PYTHON,
    [path.join(ROOT, 'interop/upstreams/account_server.py'), String(port), as.issuer], {
      ready: async () => (await fetch(`http://127.0.0.1:${port}/mcp`, { method: 'POST' })).status === 401,
    });
  try {
    const add = server.cli(['server', 'add', 'notes-acct', '--url', `http://localhost:${port}/mcp`, '--user-auth', 'oauth']);
    assert.equal(add.status, 0, add.stderr);
    const pat = await apiSession(server, person);
    const clientToken = await pat('POST', '/tokens', { name: 'pat notes-acct', scopes: ['write:notes-acct', 'execute:mcp'], expires_in_days: 1 });

    const { context, page, problems } = await openPage(browser, server);
    // The provider's pages reach for web fonts; nothing leaves the machine.
    await context.route(/fonts\.googleapis\.com/, (r) => r.abort());
    try {
      await signIn(page, person);
      await page.goto('/#/connections/notes-acct');
      const card = page.locator('section.connection[data-server="notes-acct"]');
      await card.getByRole('link', { name: 'Connect' }).click();
      await page.waitForURL(`${as.issuer}/**`);
      await page.locator('input[name=login]').fill('pat-at-notes');
      await page.locator('input[name=password]').fill('any password');
      await page.locator('button[type=submit]').click();
      await page.getByRole('button', { name: 'Continue' }).click();
      await page.waitForURL(`${server.url}/#/connections/notes-acct?connected=1`);
      await card.getByText(/^Connected .* as pat-at-notes/).waitFor();
      // The font requests aborted above fail on the provider's pages; nothing else may.
      assert.deepEqual(problems.filter((p) => !p.includes('net::ERR_FAILED')), []);
    } finally {
      await page.close();
    }

    const client = await mcpClient(clientToken.token, 'notes-acct');
    try {
      const who = await client.callTool({ name: 'whoami', arguments: {} });
      assert.equal(JSON.parse(who.content[0].text).sub, 'pat-at-notes', JSON.stringify(who));
    } finally {
      await client.close();
    }

    await pat('DELETE', '/connections/notes-acct');
    const refused = await mcpClient(clientToken.token, 'notes-acct').then(() => null, (e) => e);
    assert.equal(refused?.code, -32042, 'disconnected: asked to connect again');
  } finally {
    fastmcp.kill('SIGTERM');
    await as.stop();
  }
});
