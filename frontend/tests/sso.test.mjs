// Single sign-on (issue #24) against a real, OpenID-certified provider: `oidc-provider`,
// run in this process on loopback under the host name `localhost`, so its redirect back to
// Tessera (on 127.0.0.1) is a cross-site navigation, as with a real identity provider.
// Driven in Chromium through the provider's own sign-in and consent pages.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';
import { startTessera, launchBrowser, freePort, signIn, screenshot, listenOnLocalhost } from './helpers.mjs';

const CLIENT_SECRET = 'sso-test-client-secret-0123456789';
// What the provider says about each account; tests change it between sign-ins.
const accounts = {
  alice: { email: 'alice@corp.example', email_verified: true, groups: ['engineering', 'tessera-admins'] },
  bob: { email: 'bob@corp.example', email_verified: true, groups: ['engineering'] },
  mallory: { email: 'mallory@corp.example', email_verified: false, groups: [] },
  carol: { email: 'carol@corp.example', email_verified: true, groups: [7, 8] },
};

let providerPort;
let idp; // the running provider
let server;
let browser;

/** Starts the provider on `providerPort` with a fresh RSA signing key named `kid`. */
async function startProvider(kid, callback) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' };
  const issuer = `http://localhost:${providerPort}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'tessera',
      client_secret: CLIENT_SECRET,
      redirect_uris: [callback],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: [jwk] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
    // Claims in the ID token itself, where Tessera reads them.
    conformIdTokenClaims: false,
    findAccount: async (_ctx, id) => ({
      accountId: id,
      claims: async () => ({ sub: id, ...(accounts[id] || { email: `${id}@corp.example` }) }),
    }),
    cookies: { keys: ['sso-test-cookie-key'] },
    pkce: { required: () => true },
  });
  const stop = await listenOnLocalhost(providerPort, provider.callback());
  return { issuer, stop };
}

before(async () => {
  providerPort = await freePort();
  const port = await freePort();
  const tesseraUrl = `http://127.0.0.1:${port}`;
  idp = await startProvider('key-1', `${tesseraUrl}/api/v2/auth/oidc/callback`);
  server = await startTessera({
    TESSERA_BIND: `127.0.0.1:${port}`,
    TESSERA_PUBLIC_URL: tesseraUrl,
    TESSERA_OIDC_ISSUER: idp.issuer,
    TESSERA_OIDC_CLIENT_ID: 'tessera',
    TESSERA_OIDC_CLIENT_SECRET: CLIENT_SECRET,
    TESSERA_OIDC_SCOPES: 'openid email groups',
    TESSERA_OIDC_ADMIN_GROUPS: 'tessera-admins',
  });
  assert.equal(server.cli(['team', 'add', 'eng', '--allow', 'read:tasks execute:mcp', '--group', 'engineering']).status, 0);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await idp?.stop();
});

/** A fresh browser (own cookies) that does not reach for the provider's web fonts. */
async function freshPage() {
  const context = await browser.newContext({ baseURL: server.url });
  await context.route(/fonts\.googleapis\.com/, (r) => r.abort());
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  return page;
}

/** Clicks "Sign in with SSO" and signs in as `login` on the provider's pages. */
async function ssoSignIn(page, login, startAt = '/') {
  await page.goto(startAt);
  await page.getByRole('link', { name: 'Sign in with SSO' }).click();
  await page.locator('input[name=login]').fill(login);
  await page.locator('input[name=password]').fill('any password');
  await page.locator('button[type=submit]').click();
  // The provider asks for consent the first time this account meets the client.
  const consent = page.getByRole('button', { name: 'Continue' });
  await Promise.race([
    consent.click().catch(() => {}),
    page.waitForURL((u) => u.origin === server.url),
  ]);
  await page.waitForURL((u) => u.origin === server.url);
}

async function me(page) {
  return page.evaluate(async () => {
    const res = await fetch('/api/v2/auth/me');
    return { status: res.status, body: await res.json() };
  });
}

test('the first sign-in makes the account, joins the team its group maps to and returns where it began', async () => {
  const page = await freshPage();
  try {
    await ssoSignIn(page, 'alice', '/#/tokens/new');
    await page.getByRole('heading', { level: 1, name: 'New token' }).waitFor();
    await screenshot(page, 'sso-signed-in');
    const who = await me(page);
    assert.equal(who.status, 200);
    assert.equal(who.body.user.email, 'alice@corp.example');
    assert.equal(who.body.user.is_admin, true, 'tessera-admins is an administrator group');
    const team = server.cli(['team', 'show', 'eng']);
    assert.match(team.stdout, /alice@corp\.example/);
  } finally {
    await page.context().close();
  }
});

test('groups and admin status are refreshed at every sign-in, and a lost team narrows tokens at once', async () => {
  accounts.bob.groups = ['engineering'];
  let page = await freshPage();
  let secret;
  try {
    await ssoSignIn(page, 'bob');
    await page.getByRole('heading', { level: 1, name: 'Your tokens' }).waitFor();
    assert.equal((await me(page)).body.user.is_admin, false);
    const issued = await page.evaluate(async () => {
      const who = await (await fetch('/api/v2/auth/me')).json();
      const res = await fetch('/api/v2/tokens', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': who.csrf_token },
        body: JSON.stringify({ name: 'bob-sso', scopes: ['read:tasks'], expires_in_days: 1 }),
      });
      return { status: res.status, body: await res.json() };
    });
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    secret = issued.body.token;
    // Beyond the team's allowance: refused, naming the scope.
    const refused = await page.evaluate(async () => {
      const who = await (await fetch('/api/v2/auth/me')).json();
      const res = await fetch('/api/v2/tokens', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': who.csrf_token },
        body: JSON.stringify({ name: 'too-much', scopes: ['write:tasks'], expires_in_days: 1 }),
      });
      return { status: res.status, body: await res.json() };
    });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error, 'scope_not_allowed');
  } finally {
    await page.context().close();
  }

  // The everyone team is narrowed, then bob leaves `engineering` at the provider.
  assert.equal(server.cli(['team', 'allow', 'everyone', 'execute:mcp']).status, 0);
  accounts.bob.groups = [];
  page = await freshPage();
  try {
    await ssoSignIn(page, 'bob');
    await page.getByRole('heading', { level: 1, name: 'Your tokens' }).waitFor();
    assert.doesNotMatch(server.cli(['team', 'show', 'eng']).stdout, /bob@corp\.example/);
    const res = await fetch(`${server.url}/api/v2/tokens/validate`, { method: 'POST', headers: { Authorization: `Bearer ${secret}` } });
    // Its only scope is gone: revoked, as a token left with nothing is.
    assert.equal(res.status, 401);
  } finally {
    await page.context().close();
  }
});

test('an unverified email or an unreadable groups claim is refused with a reason and no session', async () => {
  for (const [login, reason] of [['mallory', /has not verified your email/], ['carol', /groups Tessera cannot read/]]) {
    const page = await freshPage();
    try {
      await ssoSignIn(page, login);
      await page.getByRole('alert').getByText(reason).waitFor();
      await page.getByRole('heading', { level: 1, name: 'Sign in to Tessera' }).waitFor();
      assert.equal((await me(page)).status, 401);
    } finally {
      await page.context().close();
    }
  }
});

test('a key rotated at the provider is fetched again and sign-in goes on working', async () => {
  const callback = `${server.url}/api/v2/auth/oidc/callback`;
  await idp.stop();
  idp = await startProvider('key-2', callback);
  const page = await freshPage();
  try {
    await ssoSignIn(page, 'alice');
    await page.getByRole('heading', { level: 1, name: 'Your tokens' }).waitFor();
    assert.equal((await me(page)).body.user.email, 'alice@corp.example');
  } finally {
    await page.context().close();
  }
});

test('a provider that is down gives a clear error and password sign-in still works', async () => {
  server.addUser('local@example.com');
  await idp.stop();
  // Tessera trusts the provider's discovery document for one second.
  await new Promise((r) => setTimeout(r, 1100));
  const page = await freshPage();
  try {
    await page.goto('/');
    await page.getByRole('link', { name: 'Sign in with SSO' }).click();
    await page.getByRole('alert').getByText(/identity provider could not be reached/).waitFor();
    assert.doesNotMatch(page.url(), /sso_error/, 'the reason is shown once, not kept in the address');
    await signIn(page, 'local@example.com');
  } finally {
    await page.context().close();
    idp = await startProvider('key-3', `${server.url}/api/v2/auth/oidc/callback`);
  }
});

test('with password sign-in off the page offers SSO only and the API refuses passwords', async () => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const ssoOnly = await startTessera({
    TESSERA_BIND: `127.0.0.1:${port}`,
    TESSERA_PUBLIC_URL: url,
    TESSERA_OIDC_ISSUER: idp.issuer,
    TESSERA_OIDC_CLIENT_ID: 'tessera',
    TESSERA_OIDC_CLIENT_SECRET: CLIENT_SECRET,
    TESSERA_PASSWORD_LOGIN: 'off',
  });
  try {
    ssoOnly.addUser('breakglass@example.com');
    const context = await browser.newContext({ baseURL: url });
    const page = await context.newPage();
    await page.goto('/');
    await page.getByRole('link', { name: 'Sign in with SSO' }).waitFor();
    assert.equal(await page.getByLabel('Password').count(), 0);
    await context.close();
    const res = await fetch(`${url}/api/v2/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email: 'breakglass@example.com', password: 'correct horse battery staple' }),
    });
    assert.equal(res.status, 403);
    assert.equal((await res.json()).error, 'password_login_disabled');
  } finally {
    await ssoOnly.stop();
  }
});
