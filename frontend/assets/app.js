// Tessera's web UI: sign in, list, create, inspect, edit, rotate and revoke tokens.
// Hash routes: #/tokens (list), #/tokens/new (create), #/tokens/<id> (detail),
// #/oauth/consent?<authorize query> (OAuth consent, consent.js); #/servers (servers.js);
// #/clients (OAuth clients, clients.js); #/teams (teams and allowances, teams.js);
// #/connections[/NAME] (your own credentials for servers that take one, connections.js);
// #/webhooks and #/users live in alerts.js.

import { api, ApiError, setCsrf } from './api.js';
import { h, replace, announce, newId, time, formatDate, lastUsed } from './dom.js';
import { scopeLayout } from './scopes.js';
import { limits, loadLimits } from './limits.js';
import { clientConfigs, mcpEndpoints } from './configs.js';
import { usageChart } from './chart.js';
import { alertsCard, viewWebhooks, viewUsers } from './alerts.js';
import { viewServers } from './servers.js';
import { viewClients } from './clients.js';
import { viewTeams } from './teams.js';
import { viewConnections } from './connections.js';
import { viewConsent } from './consent.js';

const main = document.getElementById('main');
const EXPIRING_SOON_DAYS = 7;
const PAGE_SIZE = 20;
const DAY_MS = 86_400_000;

let me = null;
let flash = null; // a message shown once on the next page
let methods = { password: true, sso: false }; // ways of signing in this server offers

// Why single sign-on sent the browser back (`?sso_error=CODE`): codes only, so a crafted
// link cannot put words of its own on the sign-in page.
const SSO_ERRORS = {
  provider_unreachable: 'The identity provider could not be reached. Try again later, or sign in with your password.',
  denied: 'The identity provider did not sign you in.',
  expired: 'That sign-in took too long or was started elsewhere. Start again.',
  invalid_response: 'The identity provider\'s answer could not be checked. Start again.',
  invalid_token: 'The identity provider\'s ID token was not valid for Tessera.',
  email_unverified: 'Your identity provider has not verified your email address.',
  no_email: 'Your identity provider did not share an email address.',
  groups_claim: 'Your identity provider sent groups Tessera cannot read. Ask an administrator.',
  account_disabled: 'This account is deactivated.',
  account_conflict: 'Another sign-in is already linked to this email address. Ask an administrator.',
};

// ---------- session ----------

/** Loads the server's limits and the session (in parallel), then shows the page. */
async function boot() {
  document.getElementById('sign-out').addEventListener('click', signOut);
  const bounds = loadLimits().then(() => null, (e) => e);
  const offered = api('GET', '/auth/methods').then((m) => { methods = m; }, () => {});
  const ssoError = new URLSearchParams(location.search).get('sso_error');
  if (ssoError) {
    flash = { kind: 'error', text: SSO_ERRORS[ssoError] || 'Single sign-on failed. Start again.' };
    history.replaceState(null, '', `/${location.hash}`);
  }
  try {
    const who = await api('GET', '/auth/me');
    signedIn(who.user, who.csrf_token);
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401) flash = { kind: 'error', text: e.message };
  }
  await offered;
  const failed = await bounds;
  if (failed) {
    viewUnavailable(failed);
    return;
  }
  window.addEventListener('hashchange', route);
  route();
}

/** Every form takes its bounds from the server: without them, offer a reload instead. */
function viewUnavailable(e) {
  const reload = h('button', { type: 'button', class: 'button primary' }, 'Reload');
  reload.addEventListener('click', () => location.reload());
  page('Tessera is unavailable',
    notice('error', `The token limits could not be loaded from the server: ${e.message}`),
    h('div', { class: 'actions' }, reload));
}

function signedIn(user, csrf) {
  me = user;
  setCsrf(csrf);
  document.getElementById('account-email').textContent = user.email;
  document.getElementById('account').hidden = false;
}

function signedOut(message) {
  me = null;
  setCsrf(null);
  document.getElementById('account').hidden = true;
  document.getElementById('account-email').textContent = '';
  if (message) flash = { kind: 'info', text: message };
}

async function signOut() {
  try {
    await api('POST', '/auth/logout');
  } catch {
    // The session is gone either way.
  }
  signedOut('You are signed out.');
  if (location.hash === '#/tokens') route();
  else location.hash = '#/tokens';
}

/** Handles a failed call: a lost session sends the person back to sign in. */
function handle(e, where) {
  if (e instanceof ApiError && e.status === 401) {
    signedOut('Your session ended. Sign in again.');
    route();
    return true;
  }
  if (where) replace(where, notice('error', e.message || String(e)));
  return false;
}

// ---------- routing ----------

function route() {
  const hash = location.hash || '#/tokens';
  if (!me) return viewSignIn();
  const [path, query] = hash.slice(1).split('?');
  const params = new URLSearchParams(query || '');
  const parts = path.split('/').filter(Boolean);
  const ui = { page, notice, handle, me };
  if (parts.length === 1 && parts[0] === 'webhooks') return viewWebhooks(ui);
  if (parts.length === 1 && parts[0] === 'users' && me.is_admin) return viewUsers(ui);
  if (parts.length === 1 && parts[0] === 'servers' && me.is_admin) return viewServers(ui);
  if (parts.length === 1 && parts[0] === 'clients' && me.is_admin) return viewClients(ui);
  if (parts.length === 1 && parts[0] === 'teams' && me.is_admin) return viewTeams(ui);
  if (parts[0] === 'connections' && parts.length <= 2) return viewConnections(ui, parts[1], params);
  if (path === '/oauth/consent') return viewConsent({ page, notice, field, handle });
  if (parts[0] !== 'tokens' || parts.length > 2) {
    location.replace('#/tokens');
    return undefined;
  }
  if (parts.length === 1) return viewList(params);
  if (parts[1] === 'new') return viewCreate();
  return viewDetail(parts[1]);
}

function page(title, ...content) {
  document.title = `${title} · Tessera`;
  const heading = h('h1', { tabindex: '-1' }, title);
  const shown = flash ? notice(flash.kind, flash.text) : null;
  flash = null;
  replace(main, heading, shown, ...content);
  heading.focus({ preventScroll: true });
  window.scrollTo(0, 0);
  return heading;
}

function notice(kind, text) {
  return h('p', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}

// ---------- sign in ----------

function viewSignIn() {
  const sso = methods.sso ? ssoButton() : null;
  if (!methods.password) {
    page('Sign in to Tessera', h('p', { class: 'lead' }, 'Scoped tokens for your MCP servers.'),
      h('div', { class: 'card narrow' }, sso));
    sso?.focus();
    return;
  }
  const error = h('div', { id: 'signin-error', class: 'form-error', 'aria-live': 'assertive' });
  const email = h('input', { id: 'email', name: 'email', type: 'email', autocomplete: 'username', required: true, autofocus: true });
  const password = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', class: 'button primary' }, 'Sign in');
  const form = h('form', { class: 'card narrow', novalidate: true, 'aria-describedby': 'signin-error' },
    sso ? h('div', { class: 'actions sso' }, sso) : null,
    sso ? h('p', { class: 'hint' }, 'Or with your Tessera password:') : null,
    field('Email', email),
    field('Password', password),
    error,
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    replace(error);
    if (!email.value.trim() || !password.value) {
      replace(error, notice('error', 'Enter your email and password.'));
      (email.value.trim() ? password : email).focus();
      return;
    }
    submit.disabled = true;
    try {
      const res = await api('POST', '/auth/login', { email: email.value.trim(), password: password.value });
      password.value = '';
      signedIn(res.user, res.csrf_token);
      // Registered servers' scopes are listed to signed-in callers only.
      await loadLimits().catch(() => {});
      announce(`Signed in as ${res.user.email}`);
      route();
    } catch (e) {
      let text = e.message;
      if (e.status === 401) text = 'Wrong email or password.';
      else if (e.status === 429) {
        const wait = e.retryAfter ? ` Try again in ${duration(e.retryAfter)}.` : ' Try again later.';
        text = `Too many failed sign-in attempts.${wait}`;
      }
      replace(error, notice('error', text));
      password.value = '';
      password.focus();
    } finally {
      submit.disabled = false;
    }
  });
  page('Sign in to Tessera', h('p', { class: 'lead' }, 'Scoped tokens for your MCP servers.'), form);
  email.focus();
}

/** A link that starts single sign-on and brings the person back to the page they asked for. */
function ssoButton() {
  const back = location.hash && location.hash.startsWith('#/') ? location.hash : '#/tokens';
  const href = `/api/v2/auth/oidc/login?return_to=${encodeURIComponent(back)}`;
  return h('a', { id: 'sso-sign-in', class: 'button primary', href }, 'Sign in with SSO');
}

function duration(seconds) {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const m = Math.ceil(seconds / 60);
  return `${m} minutes`;
}

// ---------- list ----------

function displayStatus(t, now = Date.now()) {
  if (t.status === 'active' && new Date(t.expires_at).getTime() - now < EXPIRING_SOON_DAYS * DAY_MS) {
    return { key: 'expiring', label: 'expiring soon' };
  }
  return { key: t.status, label: t.status };
}

function badge(t) {
  const s = displayStatus(t);
  return h('span', { class: `badge status-${s.key}` }, s.label);
}

async function viewList(params) {
  const status = params.get('status') || 'all';
  const q = params.get('q') || '';
  const cursors = (params.get('pages') || '').split(',').filter(Boolean); // cursors of earlier pages
  const cursor = params.get('cursor') || '';

  const statusSel = h('select', { id: 'filter-status', name: 'status' },
    [['all', 'All'], ['active', 'Active'], ['expired', 'Expired'], ['revoked', 'Revoked']]
      .map(([v, l]) => h('option', { value: v, selected: v === status }, l)));
  const search = h('input', { id: 'filter-q', name: 'q', type: 'search', value: q, placeholder: 'Name contains…', autocomplete: 'off' });
  const filters = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter tokens' },
    field('Status', statusSel),
    field('Search by name', search),
    h('button', { type: 'submit', class: 'button secondary' }, 'Filter'));
  const go = () => {
    const p = new URLSearchParams();
    if (statusSel.value !== 'all') p.set('status', statusSel.value);
    if (search.value.trim()) p.set('q', search.value.trim());
    location.hash = `#/tokens${p.size ? `?${p}` : ''}`;
  };
  filters.addEventListener('submit', (ev) => { ev.preventDefault(); go(); });
  statusSel.addEventListener('change', go);

  const results = h('div', { id: 'token-results', 'aria-live': 'polite', 'aria-busy': 'true' }, h('p', { class: 'loading' }, 'Loading tokens…'));
  page('Your tokens',
    h('div', { class: 'toolbar' },
      h('a', { href: '#/webhooks', class: 'button secondary', id: 'webhooks-link' }, 'Alert webhooks'), ' ',
      h('a', { href: '#/connections', class: 'button secondary', id: 'connections-link' }, 'Connections'), ' ',
      me.is_admin ? [h('a', { href: '#/users', class: 'button secondary', id: 'users-link' }, 'Accounts'), ' ',
        h('a', { href: '#/servers', class: 'button secondary', id: 'servers-link' }, 'Servers'), ' ',
        h('a', { href: '#/teams', class: 'button secondary', id: 'teams-link' }, 'Teams'), ' ',
        h('a', { href: '#/clients', class: 'button secondary', id: 'clients-link' }, 'OAuth clients'), ' '] : null,
      h('a', { href: '#/tokens/new', class: 'button primary', id: 'new-token' }, 'New token')),
    filters,
    results);

  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (status !== 'all') query.set('status', status);
  if (q) query.set('q', q);
  if (cursor) query.set('cursor', cursor);
  let pageData;
  try {
    pageData = await api('GET', `/tokens?${query}`);
  } catch (e) {
    results.removeAttribute('aria-busy');
    handle(e, results);
    return;
  }
  results.removeAttribute('aria-busy');
  if (!pageData.items.length) {
    replace(results, h('p', { class: 'empty' },
      q || status !== 'all' ? 'No token matches these filters.' : 'You have no tokens yet. Create one to connect an MCP client.'));
    return;
  }
  const row = (t) => h('tr', { dataset: { tokenId: t.id } },
    h('th', { scope: 'row', 'data-label': 'Name' }, h('a', { href: `#/tokens/${t.id}` }, t.name), viaOAuth(t)),
    h('td', { 'data-label': 'Status' }, badge(t)),
    h('td', { 'data-label': 'Scopes' }, h('span', { class: 'scopes' }, t.scopes.join(' '))),
    h('td', { 'data-label': 'Created' }, time(t.created_at, { withTime: false })),
    h('td', { 'data-label': 'Expires' }, time(t.expires_at, { withTime: false })),
    h('td', { 'data-label': 'Last used' }, lastUsed(t.last_used_at)),
    h('td', { 'data-label': 'Rate limit' }, t.rate_limit_per_hour ? `${t.rate_limit_per_hour}/h` : h('span', { class: 'muted' }, 'unlimited')));
  const rows = groupGrants(pageData.items).flatMap((g) => (g.client
    ? [h('tr', { class: 'grant-group', dataset: { client: g.client.id } },
      h('th', { scope: 'rowgroup', colspan: '7' }, `Granted to ${g.client.name || g.client.id} through OAuth`,
        h('span', { class: 'muted' }, ` · ${g.tokens.length} grant${g.tokens.length === 1 ? '' : 's'}`))),
    ...g.tokens.map(row)]
    : g.tokens.map(row)));
  const table = h('table', { class: 'tokens' },
    h('caption', { class: 'visually-hidden' }, 'Your tokens, newest first, each OAuth client\'s grants together'),
    h('thead', {}, h('tr', {}, ['Name', 'Status', 'Scopes', 'Created', 'Expires', 'Last used', 'Rate limit'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows));

  const nav = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  const base = new URLSearchParams();
  if (status !== 'all') base.set('status', status);
  if (q) base.set('q', q);
  if (cursors.length || cursor) {
    const prev = new URLSearchParams(base);
    const earlier = cursors.slice(0, -1);
    const prevCursor = cursors.at(-1);
    if (prevCursor && prevCursor !== '-') prev.set('cursor', prevCursor);
    if (earlier.length) prev.set('pages', earlier.join(','));
    nav.append(h('a', { class: 'button secondary', href: `#/tokens${prev.size ? `?${prev}` : ''}`, rel: 'prev' }, '← Previous page'));
  }
  if (pageData.next_cursor) {
    const next = new URLSearchParams(base);
    next.set('cursor', pageData.next_cursor);
    next.set('pages', [...cursors, cursor || '-'].join(','));
    nav.append(h('a', { class: 'button secondary', href: `#/tokens?${next}`, rel: 'next', id: 'next-page' }, 'Next page →'));
  }
  replace(results, h('div', { class: 'table-wrap' }, table), nav.childNodes.length ? nav : null);
}

/**
 * A page of tokens in order, each OAuth client's grants gathered where its newest one is:
 * `[{ client: null, tokens: [t] }, { client: {id, name}, tokens: [g1, g2] }, ...]`.
 */
function groupGrants(items) {
  const groups = [];
  const byClient = new Map();
  for (const t of items) {
    const id = t.oauth_client?.id;
    if (!id) groups.push({ client: null, tokens: [t] });
    else if (byClient.has(id)) byClient.get(id).tokens.push(t);
    else {
      const g = { client: t.oauth_client, tokens: [t] };
      byClient.set(id, g);
      groups.push(g);
    }
  }
  return groups;
}

/** "via OAuth — <client>" for a grant made on the consent page, else nothing. */
function viaOAuth(t) {
  if (!t.oauth_client) return null;
  return h('span', { class: 'via-oauth' }, ` via OAuth — ${t.oauth_client.name || t.oauth_client.id}`);
}

// ---------- forms ----------

/** A labelled control with its hint and error slot, wired with aria-describedby. */
function field(label, control, { hint, id } = {}) {
  const cid = control.id || id || newId('f');
  control.id = cid;
  const hintEl = hint ? h('p', { class: 'hint', id: `${cid}-hint` }, hint) : null;
  const err = h('p', { class: 'field-error', id: `${cid}-error`, hidden: true });
  control.setAttribute('aria-describedby', [hintEl?.id, err.id].filter(Boolean).join(' '));
  return h('div', { class: 'field', dataset: { field: control.name || cid } }, h('label', { for: cid }, label), control, hintEl, err);
}

function setFieldError(form, name, message) {
  const wrap = form.querySelector(`[data-field="${name}"]`);
  if (!wrap) return false;
  const err = wrap.querySelector(':scope > .field-error');
  err.textContent = message;
  err.hidden = false;
  wrap.classList.add('invalid');
  wrap.querySelectorAll('input, select, textarea').forEach((c) => c.setAttribute('aria-invalid', 'true'));
  return true;
}

function clearErrors(form) {
  form.querySelectorAll('.field-error').forEach((e) => { e.textContent = ''; e.hidden = true; });
  form.querySelectorAll('.invalid').forEach((e) => e.classList.remove('invalid'));
  form.querySelectorAll('[aria-invalid]').forEach((c) => c.removeAttribute('aria-invalid'));
  const top = form.querySelector('.form-error');
  if (top) replace(top);
}

function focusFirstError(form) {
  const bad = form.querySelector('.invalid input:not([disabled]), .invalid select, .invalid textarea, .invalid button');
  bad?.focus();
}

/** Server error codes and the field they concern. */
const FIELD_OF_CODE = {
  invalid_name: 'name',
  invalid_description: 'description',
  invalid_scopes: 'scopes',
  unknown_scope: 'scopes',
  admin_scope_forbidden: 'scopes',
  scope_exceeds_credential: 'scopes',
  scope_widening: 'scopes',
  invalid_expiry: 'expires_in_days',
  expiry_extension: 'expires_at',
  expiry_in_past: 'expires_at',
  invalid_rate_limit: 'rate_limit_per_hour',
  rate_limit_exceeds_credential: 'rate_limit_per_hour',
  invalid_reason: 'reason',
  invalid_grace: 'grace_seconds',
};

/** Server error codes whose own message is less helpful than ours. */
const MESSAGE_OF_CODE = {
  not_owner: 'Only the owner of this token can rotate it (nobody receives a working secret for another person); revoke it instead.',
  rate_limit_exceeds_credential: 'This rate limit is looser than the one of the token making the change.',
};

function showServerError(form, e) {
  if (handle(e)) return;
  const name = FIELD_OF_CODE[e.code];
  const text = MESSAGE_OF_CODE[e.code] ?? e.message;
  if (!(name && setFieldError(form, name, text))) {
    const top = form.querySelector('.form-error');
    replace(top, notice('error', text));
  }
  focusFirstError(form);
}

// Client-side checks only spare a round trip: the bounds are the server's (`limits()`),
// and the server checks everything again.

function checkName(v) {
  const n = v.trim();
  const max = limits().name_max_chars;
  if (n.length < 1 || [...n].length > max) return `Name must be 1 to ${max} characters.`;
  return null;
}

function checkDescription(v) {
  const max = limits().description_max_chars;
  return [...v].length > max ? `Description must be at most ${max} characters.` : null;
}

function checkReason(v) {
  const max = limits().reason_max_chars;
  return [...v].length > max ? `Reason must be at most ${max} characters.` : null;
}

function checkRateLimit(v) {
  const { rate_limit_min: min, rate_limit_max: max } = limits();
  if (v.trim() === '') return null;
  if (!/^\d+$/.test(v.trim())) return 'Rate limit must be a whole number of requests per hour, or empty for unlimited.';
  const n = Number(v);
  if (n < min || n > max) return `Rate limit must be between ${min} and ${max} requests per hour (empty: unlimited).`;
  return null;
}

function checkDays(v) {
  const { lifetime_min_days: min, lifetime_max_days: max } = limits();
  if (!/^\d+$/.test(v.trim())) return `Expiry must be a whole number of days between ${min} and ${max}.`;
  const n = Number(v);
  if (n < min || n > max) return `Expiry must be between ${min} and ${max} days.`;
  return null;
}

/** The rate limit input, bounded by the server's limits. */
function rateInput(value) {
  const { rate_limit_min: min, rate_limit_max: max } = limits();
  return h('input', { name: 'rate_limit_per_hour', type: 'number', min: String(min), max: String(max), step: '1', inputmode: 'numeric', placeholder: 'unlimited', value });
}

/** The hint of the rate limit input. */
function rateHint() {
  const { rate_limit_min: min, rate_limit_max: max } = limits();
  return `Empty for unlimited; ${min} to ${max}.`;
}

/** Every scope the picker offers: the grantable ones and `call:S/TOOL` per callable tool. */
function offeredScopes() {
  const L = limits();
  return [...L.grantable_scopes, ...(L.servers ?? []).flatMap((sv) => sv.tools.map((tool) => `call:${sv.name}/${tool}`))];
}

/**
 * Scope checkboxes grouped by resource: checking `write:X` checks and locks `read:X`
 * ("included by write:X"). `allowed` limits the choices (narrowing an existing token).
 */
function scopePicker(selected, { allowed = offeredScopes(), legend = 'Scopes' } = {}) {
  const layout = scopeLayout(limits().grantable_scopes);
  const boxes = new Map();
  const notes = new Map();
  const box = (scope) => {
    const input = h('input', {
      type: 'checkbox', name: 'scope', value: scope, id: `scope-${scope.replace(/[:/]/g, '-')}`,
      checked: selected.includes(scope), disabled: !allowed.includes(scope),
    });
    boxes.set(scope, input);
    return input;
  };
  // A registered server's group also offers `call:S/TOOL` for each of its callable tools.
  const serverTools = new Map((limits().servers ?? []).map((s) => [s.name, s.tools]));
  const toolBoxes = (resource) => {
    const tools = serverTools.get(resource) ?? [];
    if (!tools.length) return null;
    return h('div', { class: 'tool-scopes', dataset: { server: resource } },
      h('p', { class: 'hint' }, 'Or just these tools:'),
      tools.map((tool) => {
        const input = box(`call:${resource}/${tool}`);
        return h('div', { class: 'check' }, input, h('label', { for: input.id }, h('code', {}, input.value)));
      }));
  };
  const groups = layout.groups.map((g) => {
    const note = h('span', { class: 'implied-note', id: `implied-${g.resource}`, hidden: true }, `included by ${g.write}`);
    notes.set(g.read, note);
    const read = box(g.read);
    const write = box(g.write);
    return h('fieldset', { class: 'scope-group' },
      h('legend', {}, g.label),
      g.hint ? h('p', { class: 'hint' }, g.hint) : null,
      h('div', { class: 'check' }, read, h('label', { for: read.id }, h('code', {}, g.read)), note),
      h('div', { class: 'check' }, write, h('label', { for: write.id }, h('code', {}, g.write), h('span', { class: 'muted' }, ` (includes ${g.read})`))),
      toolBoxes(g.resource));
  });
  const singles = layout.singles.map((s) => {
    const input = box(s.scope);
    return h('fieldset', { class: 'scope-group' },
      h('legend', {}, s.label),
      s.hint ? h('p', { class: 'hint' }, s.hint) : null,
      h('div', { class: 'check' }, input, h('label', { for: input.id }, h('code', {}, s.scope))));
  });
  const sync = () => {
    for (const g of layout.groups) {
      const read = boxes.get(g.read);
      const write = boxes.get(g.write);
      const implied = write.checked;
      if (implied) read.checked = true;
      else if (!allowed.includes(g.read)) read.checked = false;
      read.disabled = implied || !allowed.includes(g.read);
      read.dataset.implied = implied ? 'true' : 'false';
      notes.get(g.read).hidden = !implied;
      read.closest('.check').classList.toggle('implied', implied);
    }
  };
  const err = h('p', { class: 'field-error', id: 'scopes-error', hidden: true });
  const wrap = h('fieldset', { class: 'field scopes-field', dataset: { field: 'scopes' }, 'aria-describedby': 'scopes-error' },
    h('legend', {}, legend), h('div', { class: 'scope-grid' }, groups, singles), err);
  wrap.addEventListener('change', sync);
  sync();
  return {
    el: wrap,
    values: () => [...boxes.values()].filter((b) => b.checked).map((b) => b.value),
  };
}

// ---------- create ----------

/** Expiry presets in days: a few usual lifetimes and the server's default and longest. */
function lifetimePresets() {
  const { lifetime_min_days: min, lifetime_max_days: max, lifetime_default_days: dflt } = limits();
  return [...new Set([7, 30, 90, dflt, max])].filter((d) => d >= min && d <= max).sort((a, b) => a - b);
}

function viewCreate() {
  const L = limits();
  const name = h('input', { name: 'name', type: 'text', maxlength: String(L.name_max_chars), required: true, autocomplete: 'off' });
  const description = h('textarea', { name: 'description', rows: '2', maxlength: String(L.description_max_chars) });
  const days = h('input', {
    name: 'expires_in_days', type: 'number', min: String(L.lifetime_min_days), max: String(L.lifetime_max_days), step: '1',
    value: String(L.lifetime_default_days), required: true, inputmode: 'numeric',
  });
  const rate = rateInput();
  const resulting = h('p', { class: 'hint', id: 'expiry-date', 'aria-live': 'polite' });
  const presets = h('div', { class: 'presets', role: 'group', 'aria-label': 'Expiry presets' },
    lifetimePresets().map((d) => h('button', { type: 'button', class: 'chip', dataset: { days: String(d) }, 'aria-pressed': String(d === L.lifetime_default_days) }, `${d} day${d === 1 ? '' : 's'}`)));
  const showDate = () => {
    const bad = checkDays(days.value);
    resulting.textContent = bad ? '' : `Expires on ${formatDate(new Date(Date.now() + Number(days.value) * DAY_MS))}.`;
    presets.querySelectorAll('button').forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.days === days.value.trim())));
  };
  presets.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-days]');
    if (!b) return;
    days.value = b.dataset.days;
    showDate();
  });
  days.addEventListener('input', showDate);
  const scopes = scopePicker([], { legend: 'Scopes (choose at least one)' });
  const submit = h('button', { type: 'submit', class: 'button primary' }, 'Create token');
  const daysField = field('Expires in (days)', days, { hint: `${L.lifetime_min_days} to ${L.lifetime_max_days} days.` });
  daysField.append(presets, resulting);
  const form = h('form', { class: 'card', novalidate: true, id: 'create-form' },
    field('Name', name, { hint: `Where it is used, e.g. "laptop – Cursor". 1 to ${L.name_max_chars} characters.` }),
    field('Description (optional)', description, { hint: `Up to ${L.description_max_chars} characters.` }),
    scopes.el,
    daysField,
    field('Rate limit (requests per hour, optional)', rate, { hint: rateHint() }),
    h('div', { class: 'form-error', 'aria-live': 'assertive' }),
    h('div', { class: 'actions' }, submit, h('a', { href: '#/tokens', class: 'button secondary' }, 'Cancel')));
  showDate();

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const errors = [
      ['name', checkName(name.value)],
      ['description', checkDescription(description.value)],
      ['scopes', scopes.values().length ? null : 'Choose at least one scope.'],
      ['expires_in_days', checkDays(days.value)],
      ['rate_limit_per_hour', checkRateLimit(rate.value)],
    ].filter(([, m]) => m);
    if (errors.length) {
      errors.forEach(([f, m]) => setFieldError(form, f, m));
      announce(`${errors.length} field${errors.length > 1 ? 's need' : ' needs'} attention.`);
      focusFirstError(form);
      return;
    }
    const body = {
      name: name.value.trim(),
      scopes: scopes.values(),
      expires_in_days: Number(days.value),
    };
    if (description.value.trim()) body.description = description.value.trim();
    if (rate.value.trim()) body.rate_limit_per_hour = Number(rate.value);
    submit.disabled = true;
    try {
      const issued = await api('POST', '/tokens', body);
      showSecret(issued, { title: 'Token created', after: () => { location.hash = `#/tokens/${issued.id}`; } });
    } catch (e) {
      showServerError(form, e);
    } finally {
      submit.disabled = false;
    }
  });
  page('New token', form);
}

// ---------- the secret, once ----------

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h('textarea', { class: 'visually-hidden', readonly: true });
    area.value = text;
    document.body.append(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    area.remove();
    return ok;
  }
}

function copyButton(label, getText, describedBy) {
  const status = h('span', { class: 'copy-status', 'aria-live': 'polite' });
  const button = h('button', { type: 'button', class: 'button secondary copy', 'aria-describedby': describedBy }, label);
  button.addEventListener('click', async () => {
    const ok = await copyText(getText());
    status.textContent = ok ? 'Copied.' : 'Copy failed: select the text and copy it by hand.';
  });
  return h('span', { class: 'copy-wrap' }, button, status);
}

/**
 * Shows a new secret in a modal dialog that says it is shown once. Closing removes the
 * dialog and every copy of the secret from the page; `after` runs then.
 */
function showSecret(issued, { title, after }) {
  let secret = issued.token;
  const endpoints = mcpEndpoints(issued);
  const configs = clientConfigs(endpoints, secret);
  const secretBox = h('input', { id: 'secret', type: 'text', readonly: true, value: secret, class: 'secret', spellcheck: 'false', autocomplete: 'off' });
  secretBox.addEventListener('focus', () => secretBox.select());

  const tabs = h('div', { role: 'tablist', 'aria-label': 'Client configuration', class: 'tabs' });
  const panels = [];
  configs.forEach((c, i) => {
    const tabId = `tab-${c.id}`;
    const panelId = `panel-${c.id}`;
    const tab = h('button', {
      type: 'button', role: 'tab', id: tabId, 'aria-controls': panelId,
      'aria-selected': String(i === 0), tabindex: i === 0 ? '0' : '-1', dataset: { client: c.id },
    }, c.label);
    tabs.append(tab);
    const code = h('pre', { class: 'config', id: `config-${c.id}`, tabindex: '0' }, h('code', {}, c.text));
    panels.push(h('div', { role: 'tabpanel', id: panelId, 'aria-labelledby': tabId, hidden: i !== 0, class: 'panel' },
      h('p', { class: 'hint' }, c.file),
      code,
      copyButton(`Copy ${c.label} configuration`, () => c.text)));
  });
  const select = (tab) => {
    tabs.querySelectorAll('[role=tab]').forEach((t) => {
      const on = t === tab;
      t.setAttribute('aria-selected', String(on));
      t.tabIndex = on ? 0 : -1;
      document.getElementById(t.getAttribute('aria-controls')).hidden = !on;
    });
    tab.focus();
  };
  tabs.addEventListener('click', (ev) => { const t = ev.target.closest('[role=tab]'); if (t) select(t); });
  tabs.addEventListener('keydown', (ev) => {
    const all = [...tabs.querySelectorAll('[role=tab]')];
    const i = all.indexOf(document.activeElement);
    if (i < 0) return;
    const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: all.length - 1 }[ev.key];
    if (to === undefined) return;
    ev.preventDefault();
    select(all[(to + all.length) % all.length]);
  });

  const close = h('button', { type: 'button', class: 'button primary', id: 'secret-done' }, 'I have saved it — close');
  const dialog = h('dialog', { class: 'secret-dialog', 'aria-labelledby': 'secret-title', 'aria-describedby': 'secret-once' },
    h('h2', { id: 'secret-title' }, title),
    h('p', { id: 'secret-once', class: 'notice warning' },
      'This is the only time this token is shown. Tessera keeps only a hash of it: copy it now. If you lose it, rotate or create a new token.'),
    h('div', { class: 'field' },
      h('label', { for: 'secret' }, `Token “${issued.name}”`),
      h('div', { class: 'secret-row' }, secretBox, copyButton('Copy token', () => secret, 'secret-once'))),
    h('h3', {}, 'Connect a client'),
    h('p', { class: 'hint' }, endpoints.length === 1 ? 'MCP endpoint: ' : 'MCP endpoints: ',
      ...endpoints.flatMap((e, i) => [i ? ', ' : '', h('code', { class: 'mcp-url', id: i ? undefined : 'mcp-url' }, e.url)])),
    tabs,
    panels,
    h('div', { class: 'actions' }, close));

  let closed = false;
  const discard = () => {
    if (closed) return;
    closed = true;
    // Forget the secret: clear every node that held it, then drop the dialog.
    secret = '';
    secretBox.value = '';
    dialog.querySelectorAll('pre, code').forEach((n) => { n.textContent = ''; });
    dialog.remove();
    issued.token = undefined;
    announce('The token dialog is closed; the secret is no longer on this page.');
    after?.();
  };
  // Discard at once on the button: the dialog's close event only fires in a later task, and
  // until then the hidden dialog would still hold the secret.
  close.addEventListener('click', () => { dialog.close(); discard(); });
  dialog.addEventListener('close', discard);
  document.body.append(dialog);
  dialog.showModal();
  secretBox.focus();
}

// ---------- detail ----------

const USAGE_RANGES = [
  { id: '24h', label: 'Last 24 hours', span: DAY_MS, granularity: 'hour' },
  { id: '7d', label: 'Last 7 days', span: 7 * DAY_MS, granularity: 'day' },
  { id: '30d', label: 'Last 30 days', span: 30 * DAY_MS, granularity: 'day' },
];

async function viewDetail(id) {
  // A placeholder that keeps any pending flash message for the real page.
  const holder = h('div', { 'aria-busy': 'true' }, h('p', { class: 'loading' }, 'Loading token…'));
  replace(main, holder);
  let t;
  try {
    t = await api('GET', `/tokens/${encodeURIComponent(id)}`);
  } catch (e) {
    const body = h('div', {});
    page('Token', body);
    if (e.status === 404 || e.status === 400) {
      replace(body, notice('error', 'No such token (it may belong to someone else).'), h('a', { href: '#/tokens' }, 'Back to your tokens'));
    } else handle(e, body);
    return;
  }
  const heading = page(t.name,
    h('p', { class: 'crumbs' }, h('a', { href: '#/tokens' }, '← Your tokens')),
    h('div', { class: 'detail-grid' },
      metadataCard(t),
      scopesCard(t),
      usageCard(t),
      alertsCard(t, { page, notice, handle, me }),
      activityCard(t),
      t.status === 'active' ? actionsCard(t) : null));
  heading.append(' ', badge(t));
}

function metadataCard(t) {
  const row = (k, v) => [h('dt', {}, k), h('dd', {}, v)];
  const link = (tid) => h('a', { href: `#/tokens/${tid}` }, h('code', {}, tid));
  return h('section', { class: 'card', 'aria-labelledby': 'meta-h' },
    h('h2', { id: 'meta-h' }, 'Details'),
    h('dl', { class: 'meta' },
      row('Id', h('code', {}, t.id)),
      row('Description', t.description || h('span', { class: 'muted' }, 'none')),
      row('Status', badge(t)),
      row('Created', time(t.created_at)),
      row('Expires', time(t.expires_at)),
      row('Last used', [lastUsed(t.last_used_at), t.last_used_at && t.last_used_from ? ` from ${t.last_used_from}` : '']),
      row('Rate limit', t.rate_limit_per_hour ? `${t.rate_limit_per_hour} requests per hour` : 'unlimited'),
      row('Audience', (t.audience || []).map((a) => h('code', {}, a))),
      t.oauth_client ? row('Granted to', viaOAuth(t)) : null,
      t.minted_by ? row('Minted by', link(t.minted_by)) : null,
      t.rotated_from ? row('Replaces', link(t.rotated_from)) : null,
      t.replaced_by ? row('Replaced by', link(t.replaced_by)) : null,
      t.revoked_at ? row(t.status === 'rotated' || t.replaced_by ? 'Rotated' : 'Revoked', time(t.revoked_at)) : null,
      t.revocation_effective_at && t.revocation_effective_at !== t.revoked_at ? row('Stops working', time(t.revocation_effective_at)) : null,
      t.revoke_reason ? row('Reason', t.revoke_reason) : null));
}

/** Granted and effective scopes; the effective ones are the server's (`effective_scopes`). */
function scopesCard(t) {
  const granted = new Set(t.scopes);
  return h('section', { class: 'card', 'aria-labelledby': 'scopes-h' },
    h('h2', { id: 'scopes-h' }, 'Scopes'),
    h('p', {}, 'Granted: ', t.scopes.map((s) => [h('code', { class: 'scope' }, s), ' '])),
    h('p', { class: 'hint' }, 'Effective (with inheritance):'),
    h('ul', { class: 'scope-list', id: 'effective-scopes' },
      t.effective_scopes.map((s) => h('li', {}, h('code', { class: granted.has(s) ? 'scope' : 'scope derived' }, s),
        granted.has(s) ? '' : h('span', { class: 'muted' }, ' implied')))));
}

function usageCard(t) {
  const body = h('div', { id: 'usage-body', 'aria-live': 'polite' });
  const buttons = USAGE_RANGES.map((r) => h('button', { type: 'button', class: 'chip', 'aria-pressed': 'false', dataset: { range: r.id } }, r.label));
  const load = async (r) => {
    buttons.forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.range === r.id)));
    replace(body, h('p', { class: 'loading' }, 'Loading usage…'));
    const to = new Date();
    const from = new Date(to.getTime() - r.span);
    const q = new URLSearchParams({ from: from.toISOString(), to: to.toISOString(), granularity: r.granularity });
    try {
      const u = await api('GET', `/tokens/${t.id}/usage?${q}`);
      replace(body, usageReport(u, r));
    } catch (e) {
      handle(e, body);
    }
  };
  buttons.forEach((b, i) => b.addEventListener('click', () => load(USAGE_RANGES[i])));
  load(USAGE_RANGES[0]);
  return h('section', { class: 'card wide', 'aria-labelledby': 'usage-h' },
    h('h2', { id: 'usage-h' }, 'Usage'),
    h('div', { class: 'presets', role: 'group', 'aria-label': 'Usage period' }, buttons),
    body);
}

function usageReport(u, r) {
  const totals = u.totals;
  const stat = (label, v, cls) => h('div', { class: `stat ${cls || ''}` }, h('span', { class: 'stat-value' }, String(v)), h('span', { class: 'stat-label' }, label));
  const top = u.methods.slice(0, 8);
  return h('div', {},
    h('div', { class: 'stats' },
      stat('requests', totals.requests),
      stat('succeeded', totals.ok, 'ok'),
      stat('errors', totals.error, 'error'),
      stat('denied', totals.denied, 'denied')),
    usageChart(u.series, { hourly: u.granularity === 'hour', title: `Requests, ${r.label.toLowerCase()}` }),
    h('div', { class: 'two-col' },
      h('div', {},
        h('h3', {}, 'Top tools and methods'),
        top.length
          ? h('table', { class: 'compact', id: 'top-tools' },
            h('thead', {}, h('tr', {}, ['Method / tool', 'Requests', 'OK', 'Denied'].map((c) => h('th', { scope: 'col' }, c)))),
            h('tbody', {}, top.map((m) => h('tr', {}, h('th', { scope: 'row' }, h('code', {}, m.method)),
              h('td', {}, String(m.requests)), h('td', {}, String(m.ok)), h('td', {}, String(m.denied))))))
          : h('p', { class: 'muted' }, 'No requests in this period.')),
      h('div', {},
        h('h3', {}, 'Denials'),
        h('dl', { class: 'meta', id: 'denials' },
          h('dt', {}, '401 unauthenticated'), h('dd', {}, String(u.denials['401'] ?? 0)),
          h('dt', {}, '403 missing scope'), h('dd', {}, String(u.denials['403'] ?? 0)),
          h('dt', {}, '429 rate limited'), h('dd', {}, String(u.denials['429'] ?? 0))))));
}

function activityCard(t) {
  const body = h('div', { id: 'activity-body', 'aria-live': 'polite' }, h('p', { class: 'loading' }, 'Loading activity…'));
  (async () => {
    try {
      const a = await api('GET', `/tokens/${t.id}/audit?limit=200`);
      replace(body, a.items.length
        ? h('table', { class: 'compact', id: 'activity' },
          h('thead', {}, h('tr', {}, ['Time', 'Action', 'From'].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, a.items.map((e) => h('tr', {},
            h('td', {}, time(e.at)),
            h('td', {}, h('code', {}, e.action)),
            h('td', {}, e.ip || h('span', { class: 'muted' }, 'unknown'))))))
        : h('p', { class: 'muted' }, 'No activity recorded.'));
    } catch (e) {
      handle(e, body);
    }
  })();
  return h('section', { class: 'card wide', 'aria-labelledby': 'activity-h' },
    h('h2', { id: 'activity-h' }, 'Activity'),
    body);
}

/** Edit, rotate and revoke; only the owner rotates (an admin sees others' tokens too). */
function actionsCard(t) {
  return h('section', { class: 'card wide', 'aria-labelledby': 'actions-h' },
    h('h2', { id: 'actions-h' }, 'Change this token'),
    editForm(t),
    h('div', { class: 'danger-zone' }, t.user_id === me.id ? rotateForm(t) : rotateRefused(), revokeForm(t)));
}

/** In place of the rotate form on someone else's token: the server refuses (`not_owner`). */
function rotateRefused() {
  return h('div', { class: 'subform', id: 'rotate-refused' },
    h('h3', {}, 'Rotate'),
    h('p', { class: 'hint' }, 'This token belongs to someone else. Only the owner can rotate it (a new secret would act as them); revoke it instead.'));
}

function isoDate(d) {
  return new Date(d).toISOString().slice(0, 10);
}

function editForm(t) {
  const L = limits();
  const name = h('input', { name: 'name', type: 'text', value: t.name, maxlength: String(L.name_max_chars), required: true });
  const description = h('textarea', { name: 'description', rows: '2', maxlength: String(L.description_max_chars) });
  description.value = t.description || '';
  const rate = rateInput(t.rate_limit_per_hour ?? '');
  const expiry = h('input', { name: 'expires_at', type: 'date', value: isoDate(t.expires_at), min: isoDate(Date.now() + DAY_MS), max: isoDate(t.expires_at) });
  // Only what is granted can stay; anything else would widen the token.
  const scopes = scopePicker(t.scopes, { allowed: t.scopes, legend: 'Scopes (uncheck to narrow; widening needs a new token)' });
  const submit = h('button', { type: 'submit', class: 'button primary' }, 'Save changes');
  const form = h('form', { class: 'subform', novalidate: true, id: 'edit-form', 'aria-labelledby': 'edit-h' },
    h('h3', { id: 'edit-h' }, 'Edit'),
    field('Name', name),
    field('Description', description, { hint: `Up to ${L.description_max_chars} characters.` }),
    field('Rate limit (requests per hour)', rate, { hint: rateHint() }),
    field('Expires on', expiry, { hint: 'Can only be moved earlier.' }),
    scopes.el,
    h('div', { class: 'form-error', 'aria-live': 'assertive' }),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    // Granted scopes the picker does not offer (mcp:admin from the CLI) are kept as they are.
    const offered = new Set(offeredScopes());
    const kept = t.scopes.filter((s) => !offered.has(s));
    const errors = [
      ['name', checkName(name.value)],
      ['description', checkDescription(description.value)],
      ['rate_limit_per_hour', checkRateLimit(rate.value)],
      ['scopes', kept.length || scopes.values().some((s) => t.scopes.includes(s)) ? null : 'Keep at least one scope (or revoke the token).'],
    ];
    const patch = {};
    if (name.value.trim() !== t.name) patch.name = name.value.trim();
    if (description.value.trim() !== (t.description || '')) patch.description = description.value.trim() || null;
    const newRate = rate.value.trim() === '' ? null : Number(rate.value);
    if (newRate !== (t.rate_limit_per_hour ?? null)) patch.rate_limit_per_hour = newRate;
    if (expiry.value && expiry.value !== isoDate(t.expires_at)) {
      const current = new Date(t.expires_at);
      const picked = new Date(`${expiry.value}T${current.toISOString().slice(11)}`);
      if (Number.isNaN(picked.getTime()) || picked >= current) errors.push(['expires_at', 'Expiry can only be moved earlier.']);
      else if (picked <= new Date()) errors.push(['expires_at', 'The new expiry must be in the future; revoke the token to end it now.']);
      else patch.expires_at = picked.toISOString();
    }
    // An implied read:X that was never granted on its own is not sent (it would widen).
    const chosen = [...kept, ...scopes.values().filter((s) => t.scopes.includes(s) && offered.has(s))];
    const before = new Set(t.scopes);
    if (chosen.length !== before.size || chosen.some((s) => !before.has(s))) patch.scopes = chosen;
    const bad = errors.filter(([, m]) => m);
    if (bad.length) {
      bad.forEach(([f, m]) => setFieldError(form, f, m));
      focusFirstError(form);
      return;
    }
    if (!Object.keys(patch).length) {
      replace(form.querySelector('.form-error'), notice('info', 'Nothing changed.'));
      return;
    }
    submit.disabled = true;
    try {
      await api('PATCH', `/tokens/${t.id}`, patch);
      flash = { kind: 'success', text: 'Saved.' };
      route();
    } catch (e) {
      showServerError(form, e);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

/** `3600` → `1 hour`: a grace period as the rotate form names it. */
function graceLabel(seconds) {
  if (seconds === 0) return 'none: the old token stops now';
  const [n, unit] = seconds % 3600 === 0 ? [seconds / 3600, 'hour'] : seconds % 60 === 0 ? [seconds / 60, 'minute'] : [seconds, 'second'];
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

/** Grace choices: none, a few usual ones, and the server's longest; 1 hour preselected when allowed. */
function graceChoices() {
  const max = limits().grace_max_seconds;
  return [...new Set([0, 300, 3600, 21600, max])].filter((s) => s >= 0 && s <= max).sort((a, b) => a - b);
}

function rotateForm(t) {
  const choices = graceChoices();
  const preset = choices.includes(3600) ? 3600 : choices.at(-1);
  const grace = h('select', { name: 'grace_seconds', id: 'grace' },
    choices.map((v) => h('option', { value: String(v), selected: v === preset }, graceLabel(v))));
  const submit = h('button', { type: 'submit', class: 'button secondary', id: 'rotate' }, 'Rotate token');
  const form = h('form', { class: 'subform', novalidate: true, id: 'rotate-form', 'aria-labelledby': 'rotate-h' },
    h('h3', { id: 'rotate-h' }, 'Rotate'),
    h('p', { class: 'hint' }, 'Makes a new secret with the same name, scopes and limit. The old one keeps working during the grace period so you can switch clients over.'),
    field('Grace period for the old token', grace),
    h('div', { class: 'form-error', 'aria-live': 'assertive' }),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    submit.disabled = true;
    try {
      const issued = await api('POST', `/tokens/${t.id}/rotate`, { grace_seconds: Number(grace.value) });
      showSecret(issued, { title: 'Token rotated: here is the new secret', after: () => { location.hash = `#/tokens/${issued.id}`; } });
    } catch (e) {
      showServerError(form, e);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function revokeForm(t) {
  const open = h('button', { type: 'button', class: 'button danger', id: 'revoke' }, 'Revoke token…');
  const reasonMax = limits().reason_max_chars;
  const reason = h('textarea', { name: 'reason', rows: '2', maxlength: String(reasonMax), id: 'revoke-reason' });
  const confirm = h('button', { type: 'submit', class: 'button danger', id: 'revoke-confirm' }, 'Revoke now');
  const cancel = h('button', { type: 'button', class: 'button secondary' }, 'Cancel');
  const form = h('form', { method: 'dialog', novalidate: true },
    h('h2', { id: 'revoke-title' }, `Revoke “${t.name}”?`),
    h('div', { id: 'revoke-desc' },
      h('p', {}, 'Every client using this token is refused from now on. This cannot be undone.'),
      h('p', { id: 'revoke-minted' }, 'Every token this token minted through the API (and any token those minted) is revoked with it.')),
    field('Reason (optional)', reason, { hint: `Kept in the audit log. Up to ${reasonMax} characters.` }),
    h('div', { class: 'form-error', 'aria-live': 'assertive' }),
    h('div', { class: 'actions' }, confirm, cancel));
  const dialog = h('dialog', { class: 'confirm-dialog', 'aria-labelledby': 'revoke-title', 'aria-describedby': 'revoke-desc' }, form);
  open.addEventListener('click', () => {
    if (!dialog.isConnected) document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
  cancel.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => dialog.remove());
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const tooLong = checkReason(reason.value);
    if (tooLong) {
      setFieldError(form, 'reason', tooLong);
      return;
    }
    confirm.disabled = true;
    try {
      const body = reason.value.trim() ? { reason: reason.value.trim() } : undefined;
      await api('DELETE', `/tokens/${t.id}`, body);
      dialog.close();
      flash = { kind: 'success', text: `“${t.name}” is revoked.` };
      location.hash = '#/tokens';
    } catch (e) {
      showServerError(form, e);
    } finally {
      confirm.disabled = false;
    }
  });
  return h('div', { class: 'subform' },
    h('h3', {}, 'Revoke'),
    h('p', { class: 'hint' }, 'Stops the token at once, on every Tessera instance, together with every token it minted.'),
    h('div', { class: 'actions' }, open));
}

boot();
