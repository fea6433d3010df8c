// What the server decides, the UI shows as the server says it: the bounds of every field
// (GET /api/v2/limits), effective scopes, who may rotate, and what a revocation takes along.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  startTessera, launchBrowser, openPage, signIn, screenshot, validate, apiSession,
} from './helpers.mjs';

let server;
let browser;
let call;
let limits;
const email = 'ada@example.com';
const adminEmail = 'grace@example.com';
const open = [];

before(async () => {
  server = await startTessera();
  server.addUser(email);
  server.addUser(adminEmail, undefined, { admin: true });
  browser = await launchBrowser();
  call = await apiSession(server, email);
  const res = await fetch(`${server.url}/api/v2/limits`);
  assert.equal(res.status, 200, 'the limits need no sign-in');
  limits = await res.json();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => {})));
});

async function session(who = email) {
  const s = await openPage(browser, server);
  open.push(s.context);
  await signIn(s.page, who);
  return s;
}

const issue = (name, scopes = ['read:tasks', 'execute:mcp'], extra = {}) =>
  call('POST', '/tokens', { name, scopes, expires_in_days: 30, ...extra });

/** The hint text wired to a control by aria-describedby. */
const hintOf = (control) => control.evaluate((el) => document.getElementById(`${el.id}-hint`)?.textContent ?? '');

test('the forms take their bounds, hints and messages from /api/v2/limits', async () => {
  const L = limits;
  const { page, problems } = await session();
  await page.goto('/#/tokens/new');
  const name = page.getByLabel('Name', { exact: true });
  const description = page.getByLabel('Description (optional)');
  const days = page.getByLabel('Expires in (days)');
  const rate = page.getByLabel('Rate limit (requests per hour, optional)');
  assert.equal(await name.getAttribute('maxlength'), String(L.name_max_chars));
  assert.match(await hintOf(name), new RegExp(`1 to ${L.name_max_chars} characters`));
  assert.equal(await description.getAttribute('maxlength'), String(L.description_max_chars));
  assert.equal(await hintOf(description), `Up to ${L.description_max_chars} characters.`);
  assert.equal(await days.getAttribute('min'), String(L.lifetime_min_days));
  assert.equal(await days.getAttribute('max'), String(L.lifetime_max_days));
  assert.equal(await days.inputValue(), String(L.lifetime_default_days));
  assert.equal(await hintOf(days), `${L.lifetime_min_days} to ${L.lifetime_max_days} days.`);
  assert.equal(await rate.getAttribute('min'), String(L.rate_limit_min));
  assert.equal(await rate.getAttribute('max'), String(L.rate_limit_max));
  assert.equal(await hintOf(rate), `Empty for unlimited; ${L.rate_limit_min} to ${L.rate_limit_max}.`);
  const offered = await page.locator('#create-form input[type=checkbox][name=scope]').evaluateAll((els) => els.map((e) => e.value));
  assert.deepEqual([...offered].sort(), [...L.grantable_scopes].sort(), 'the picker offers exactly the grantable scopes');

  // Client-side messages quote the same bounds.
  await name.fill('too fast');
  await page.locator('input[type=checkbox][value="read:tasks"]').check();
  await rate.fill(String(L.rate_limit_max + 1));
  await days.fill(String(L.lifetime_max_days + 1));
  await page.getByRole('button', { name: 'Create token' }).click();
  await page.locator('[data-field="rate_limit_per_hour"] .field-error')
    .filter({ hasText: `between ${L.rate_limit_min} and ${L.rate_limit_max} requests per hour` }).waitFor();
  await page.locator('[data-field="expires_in_days"] .field-error')
    .filter({ hasText: `between ${L.lifetime_min_days} and ${L.lifetime_max_days} days` }).waitFor();

  // The token page: edit form, longest rotation grace, revocation reason.
  const t = await issue('bounded');
  await page.goto(`/#/tokens/${t.id}`);
  const edit = page.locator('#edit-form');
  await edit.waitFor();
  assert.equal(await edit.getByLabel('Name').getAttribute('maxlength'), String(L.name_max_chars));
  assert.equal(await edit.getByLabel('Rate limit (requests per hour)').getAttribute('max'), String(L.rate_limit_max));
  const graces = await page.locator('#grace option').evaluateAll((els) => els.map((e) => Number(e.value)));
  assert.equal(Math.max(...graces), L.grace_max_seconds, `grace choices ${graces}`);
  await page.getByRole('button', { name: 'Revoke token…' }).click();
  const dialog = page.getByRole('dialog');
  assert.equal(await dialog.getByLabel('Reason (optional)').getAttribute('maxlength'), String(L.reason_max_chars));
  await dialog.getByText(`Up to ${L.reason_max_chars} characters.`).waitFor();
  assert.deepEqual(problems, []);
});

test('the token page lists the effective scopes the API computed for the token', async () => {
  const t = await issue('inherits', ['write:context', 'execute:mcp']);
  const fromApi = await call('GET', `/tokens/${t.id}`);
  assert.ok(fromApi.effective_scopes.length > fromApi.scopes.length, 'the API expands the grant');
  const { page } = await session();
  await page.goto(`/#/tokens/${t.id}`);
  await page.locator('#effective-scopes li').first().waitFor();
  const shown = await page.locator('#effective-scopes li code').allTextContents();
  assert.deepEqual(shown, fromApi.effective_scopes);
  const implied = await page.locator('#effective-scopes code.derived').allTextContents();
  assert.deepEqual(implied, fromApi.effective_scopes.filter((s) => !fromApi.scopes.includes(s)));
});

test("an admin on another user's token can edit and revoke it but is offered no Rotate", async () => {
  const t = await issue('not yours to rotate');
  const admin = await apiSession(server, adminEmail);
  await assert.rejects(admin('POST', `/tokens/${t.id}/rotate`, {}), /403.*not_owner/, 'the server refuses it');
  const { page, problems } = await session(adminEmail);
  await page.goto(`/#/tokens/${t.id}`);
  await page.getByRole('heading', { level: 1, name: /not yours to rotate/ }).waitFor();
  await page.locator('#rotate-refused').getByText('Only the owner can rotate it').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Rotate token' }).count(), 0);
  assert.equal(await page.locator('#grace').count(), 0);
  await page.locator('#edit-form').getByRole('button', { name: 'Save changes' }).waitFor();
  await page.getByRole('button', { name: 'Revoke token…' }).waitFor();
  await screenshot(page, 'admin-other-users-token');

  // The owner still rotates their own token.
  const owner = await session();
  await owner.page.goto(`/#/tokens/${t.id}`);
  await owner.page.getByRole('button', { name: 'Rotate token' }).waitFor();
  assert.equal(await owner.page.locator('#rotate-refused').count(), 0);
  assert.deepEqual(problems, []);
});

test('a minted token links the token that minted it, and revoking the minter says and does it for both', async () => {
  const minter = await issue('ci minter', ['write:tokens', 'read:tasks']);
  const res = await fetch(`${server.url}/api/v2/tokens`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${minter.token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'ci job', scopes: ['read:tasks'], expires_in_days: 1 }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  const minted = await res.json();
  assert.equal(minted.minted_by, minter.id);

  const { page, problems } = await session();
  await page.goto(`/#/tokens/${minted.id}`);
  const link = page.locator('dt', { hasText: 'Minted by' }).locator('xpath=following-sibling::dd[1]').getByRole('link');
  assert.equal(await link.textContent(), minter.id);
  await link.click();
  await page.getByRole('heading', { level: 1, name: /ci minter/ }).waitFor();

  await page.getByRole('button', { name: 'Revoke token…' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByText('Every token this token minted through the API').waitFor();
  await screenshot(page, 'revoke-confirm-minted');
  await dialog.getByRole('button', { name: 'Revoke now' }).click();
  await page.getByText('“ci minter” is revoked.').waitFor();
  const v = await validate(server, minted.token);
  assert.equal(v.status, 401, 'the minted token went with its minter');
  assert.deepEqual(problems, []);
});
