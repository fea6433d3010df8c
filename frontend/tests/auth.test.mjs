// Signing in and out, and the UI's security headers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTessera, launchBrowser, openPage, signIn, screenshot, PASSWORD } from './helpers.mjs';

let server;
let browser;
const email = 'ada@example.com';

before(async () => {
  server = await startTessera();
  server.addUser(email);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('the UI is served with a strict CSP, no-referrer and nosniff on every response', async () => {
  for (const p of ['/', '/assets/app.js', '/assets/app.css', '/assets/missing.js']) {
    const res = await fetch(`${server.url}${p}`);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'/, p);
    assert.doesNotMatch(csp, /unsafe-inline/, p);
    assert.match(csp, /frame-ancestors 'none'/, p);
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer', p);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', p);
  }
  const api = await fetch(`${server.url}/api/v2/auth/me`);
  assert.equal(api.status, 401, 'the API still answers under /api');
});

test('signing in with a wrong password says so and stays on the sign-in page', async () => {
  const { page, context, problems } = await openPage(browser, server);
  await page.goto('/');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'Wrong email or password.' }).waitFor();
  assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Sign in to Tessera');
  await screenshot(page, 'signin-wrong-password');
  assert.deepEqual(problems.filter((p) => !p.includes('401')), []);
  await context.close();
});

test('too many failed sign-ins show the throttling message with the wait', async () => {
  const { page, context } = await openPage(browser, server, { width: 360, height: 740 });
  await page.goto('/');
  const victim = 'nobody@example.com';
  let text = '';
  for (let i = 0; i < 8 && !text.includes('Too many'); i += 1) {
    await page.getByLabel('Email').fill(victim);
    await page.getByLabel('Password').fill(`guess ${i}`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').waitFor();
    await page.waitForFunction(() => !document.querySelector('button[type=submit]').disabled);
    text = await page.getByRole('alert').textContent();
  }
  assert.match(text, /Too many failed sign-in attempts\. Try again in \d+ (seconds|minutes)\./);
  await screenshot(page, 'signin-throttled-360');
  await context.close();
});

test('signing in shows the token list, and signing out returns to the sign-in page', async () => {
  const { page, context, problems } = await openPage(browser, server);
  await signIn(page, email, PASSWORD);
  await page.getByText('You have no tokens yet').waitFor();
  assert.equal(await page.locator('#account-email').textContent(), email);
  await screenshot(page, 'tokens-empty');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { level: 1, name: 'Sign in to Tessera' }).waitFor();
  await page.getByText('You are signed out.').waitFor();
  await page.reload();
  await page.getByRole('heading', { level: 1, name: 'Sign in to Tessera' }).waitFor();
  assert.deepEqual(problems.filter((p) => !p.includes('401')), []);
  await context.close();
});
