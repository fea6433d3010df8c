// The Teams page (issue #24, in part): an administrator makes a team, adds a member, and
// narrows its allowance; the member's token loses the scope at once, and their token form
// then offers only what the team allows.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTessera, launchBrowser, openPage, signIn, apiSession, screenshot } from './helpers.mjs';

const admin = 'ada-teams@example.com';
const member = 'bo-teams@example.com';
let server;
let browser;

before(async () => {
  server = await startTessera();
  server.addUser(admin, undefined, { admin: true });
  server.addUser(member);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('an admin narrows a team on the Teams page and the member\'s token loses the scope at once', async () => {
  const bo = await apiSession(server, member);
  const { id, token } = await bo('POST', '/tokens', { name: 'bo', scopes: ['read:tasks', 'write:tasks', 'execute:mcp'], expires_in_days: 1 });

  const { page, problems } = await openPage(browser, server);
  try {
    await signIn(page, admin);
    await page.getByRole('link', { name: 'Teams' }).click();
    await page.getByRole('heading', { level: 1, name: 'Teams' }).waitFor();
    assert.match(await page.locator('section.team[data-team="everyone"]').textContent(), /every scope/);

    const form = page.locator('#team-form');
    await form.getByLabel('Name').fill('writers');
    await form.getByLabel('Allowance (space-separated scopes)').fill('read:tasks write:tasks execute:mcp');
    await form.getByRole('button', { name: 'Add team' }).click();
    const card = page.locator('section.team[data-team="writers"]');
    await card.waitFor();
    await card.getByLabel('Email to add to writers').fill(member);
    await card.getByRole('button', { name: 'Add member' }).click();
    await card.locator(`li[data-member="${member}"]`).waitFor();

    await card.getByLabel('Allowance of writers').fill('read:tasks execute:mcp');
    await card.getByRole('button', { name: 'Save allowance' }).click();
    // In the status line (the screen-reader announcement holds the same words for a moment).
    await page.locator('#team-status').getByText('Team writers now allows execute:mcp read:tasks · 1 token(s) narrowed').waitFor();
    await screenshot(page, 'teams-page');

    const bad = page.locator('section.team[data-team="writers"]');
    await bad.getByLabel('Allowance of writers').fill('mcp:admin');
    await bad.getByRole('button', { name: 'Save allowance' }).click();
    await bad.getByRole('alert').getByText(/mcp:admin is never in an allowance/).waitFor();
    assert.deepEqual(problems.filter((p) => !/status of 400/.test(p)), []);
  } finally {
    await page.close();
  }

  // The token still works, without write:tasks; the member's form no longer offers it.
  const check = await fetch(`${server.url}/api/v2/tokens/validate`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
  const valid = await check.json();
  assert.equal(check.status, 200, JSON.stringify(valid));
  assert.ok(!valid.scopes.includes('write:tasks') && valid.scopes.includes('read:tasks'), valid.scopes.join(' '));
  assert.deepEqual((await bo('GET', `/tokens/${id}`)).scopes, ['execute:mcp', 'read:tasks']);
  const { page: form, problems: formProblems } = await openPage(browser, server);
  try {
    await signIn(form, member);
    await form.goto('/#/tokens/new');
    await form.locator('input[type=checkbox][value="read:tasks"]').waitFor();
    assert.equal(await form.locator('input[type=checkbox][value="write:tasks"]').count(), 0);
    assert.deepEqual(formProblems, []);
  } finally {
    await form.close();
  }
});
