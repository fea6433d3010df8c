// The OAuth consent page (#/oauth/consent?<the /oauth/authorize query>): who is asking,
// where it comes from, for which server (a registered one: its description and tools with their
// class), which scopes (requested ones pre-ticked, narrower ones offered), how long and how fast; then
// Allow or Deny. The server re-checks the whole request on both calls and says where the
// browser goes next (the client's redirect URI with a code, or with access_denied).

import { api } from './api.js';
import { h, replace, newId, time } from './dom.js';
import { limits } from './limits.js';
import { builtinScopeText } from './scopes.js';

/** The authorize query carried in the hash (everything after the first `?`). */
function authorizeQuery() {
  const hash = location.hash;
  const at = hash.indexOf('?');
  return at < 0 ? '' : hash.slice(at + 1);
}

/**
 * A short gloss after a scope's checkbox: for a server scope, which tools it lets the
 * application call; for a built-in one, what it lets the application do.
 */
function scopeHint(scope, server) {
  if (!server) {
    const text = builtinScopeText(scope);
    return text ? h('span', { class: 'hint' }, ` — ${text}`) : null;
  }
  const [kind, rest] = scope.split(':');
  const text = {
    read: 'list its tools and call the read-only ones',
    write: 'call every tool it shows',
    execute: 'needed to call any tool at all',
  }[kind];
  if (kind === 'call') return h('span', { class: 'hint' }, ` — only the tool ${rest.split('/')[1]}`);
  return text ? h('span', { class: 'hint' }, ` — ${text}`) : null;
}

/** Which registered server the application asks for, and its tools with their access class. */
function serverCard(server) {
  const how = server.direct
    ? 'This server checks Tessera tokens itself.'
    : `Tessera serves this server at /mcp/${server.name} and checks every call.`;
  const tools = server.tools.length
    ? h('ul', { class: 'scope-list', id: 'consent-tools' }, server.tools.map((t) => h('li', {},
      h('code', {}, t.name), ' ', h('span', { class: 'badge' }, t.access === 'read' ? 'read-only' : 'write'),
      t.description ? h('span', { class: 'hint' }, ` — ${t.description}`) : null)))
    : h('p', { class: 'hint' }, 'Tessera has not seen this server\'s tools yet.');
  return h('section', { id: 'consent-server', 'aria-label': 'Server' },
    h('h2', {}, `Server “${server.name}”`),
    server.description ? h('p', {}, server.description) : null,
    h('p', { class: 'hint' }, how),
    tools);
}

/**
 * Renders the consent page into `main` with the app's helpers:
 * `{ page, notice, field, handle }` (same look, same error handling as the token views).
 */
export async function viewConsent({ page, notice, field, handle }) {
  const request = authorizeQuery();
  const heading = page('Connect an application');
  const body = h('div', { 'aria-busy': 'true' }, h('p', { class: 'loading' }, 'Checking the request…'));
  heading.after(body);
  let req;
  try {
    req = await api('GET', `/oauth/consent?${new URLSearchParams({ request })}`);
  } catch (e) {
    if (!handle(e)) replace(body, notice('error', `This authorization request can't be accepted: ${e.message}`));
    return;
  }
  body.removeAttribute('aria-busy');
  heading.textContent = `Allow “${req.client_name}” to use Tessera?`;
  document.title = `${heading.textContent} · Tessera`;
  const L = limits();

  // The server offers the requested scopes (pre-ticked) and narrower ones (unticked): the
  // read of a write, one tool of a server instead of all of it.
  const requested = new Set(req.scopes);
  const boxes = (req.offered || req.scopes).map((scope) => {
    const id = newId('scope');
    const box = h('input', { type: 'checkbox', id, name: 'scope', value: scope, checked: requested.has(scope) });
    return h('li', {}, box, ' ', h('label', { for: id }, h('code', {}, scope), scopeHint(scope, req.server)));
  });
  const days = h('input', {
    name: 'expires_in_days', type: 'number', inputmode: 'numeric', required: true,
    min: String(L.lifetime_min_days), max: String(L.lifetime_max_days), value: String(L.lifetime_default_days),
  });
  const rate = h('input', {
    name: 'rate_limit_per_hour', type: 'number', inputmode: 'numeric',
    min: String(L.rate_limit_min), max: String(L.rate_limit_max), placeholder: 'unlimited',
  });
  const error = h('div', { class: 'form-error', 'aria-live': 'assertive' });
  // A second consent to the same client for the same resource replaces the grant in force
  // (a client that lost its tokens, or asks for more), unless the person keeps both.
  const previous = req.active_grants || [];
  const keep = h('input', { type: 'checkbox', id: 'consent-keep', name: 'keep_previous' });
  const replaces = previous.length ? h('div', { class: 'notice info', id: 'consent-replaces', role: 'status' },
    h('p', {}, `You already granted “${req.client_name}” access here (`,
      previous.map((g, i) => [i ? '; ' : '', 'since ', time(g.created_at, { withTime: false }), ': ', h('code', {}, g.scopes.join(' '))]),
      `). Allowing replaces ${previous.length === 1 ? 'that grant' : 'those grants'}, so one stays in force.`),
    h('div', { class: 'check' }, keep, h('label', { for: keep.id }, 'Keep the earlier grant too'))) : null;
  const allow = h('button', { type: 'submit', class: 'button primary', id: 'consent-allow' }, 'Allow');
  const deny = h('button', { type: 'button', class: 'button secondary', id: 'consent-deny' }, 'Deny');
  const form = h('form', { class: 'card', novalidate: true, id: 'consent-form' },
    h('dl', { class: 'meta' },
      h('dt', {}, 'Application'), h('dd', { id: 'consent-client' }, req.client_name),
      h('dt', {}, 'Comes from'), h('dd', { id: 'consent-origin' }, req.client_origin),
      h('dt', {}, 'Sends you back to'), h('dd', {}, h('code', {}, req.redirect_host)),
      h('dt', {}, 'For'), h('dd', { id: 'consent-resource' }, h('code', {}, req.resource))),
    req.server ? serverCard(req.server) : null,
    h('fieldset', {},
      h('legend', {}, 'It may'),
      h('p', { class: 'hint' }, 'Untick anything it should not do. It gets only what stays ticked.'),
      h('ul', { class: 'scope-list' }, boxes)),
    field('Lifetime (days)', days, { hint: `${L.lifetime_min_days}–${L.lifetime_max_days} days; the application is cut off after that.` }),
    field('Rate limit (requests per hour)', rate, { hint: 'Leave empty for no limit.' }),
    replaces,
    error,
    h('p', { class: 'hint' }, 'The grant appears in your token list, where you can narrow or revoke it at any time.'),
    h('div', { class: 'actions' }, allow, deny));
  replace(body, form);

  async function decide(approve) {
    replace(error);
    const decision = { request, approve };
    if (approve) {
      decision.scopes = [...form.querySelectorAll('input[name=scope]:checked')].map((b) => b.value);
      if (!decision.scopes.length) {
        replace(error, notice('error', 'Tick at least one scope, or choose Deny.'));
        return;
      }
      decision.expires_in_days = Number.parseInt(days.value, 10);
      if (rate.value.trim()) decision.rate_limit_per_hour = Number.parseInt(rate.value, 10);
      if (keep.checked) decision.keep_previous = true;
    }
    allow.disabled = true;
    deny.disabled = true;
    try {
      const next = await api('POST', '/oauth/consent', decision);
      location.assign(next.redirect_to);
    } catch (e) {
      allow.disabled = false;
      deny.disabled = false;
      if (!handle(e)) replace(error, notice('error', e.message));
    }
  }
  form.addEventListener('submit', (ev) => { ev.preventDefault(); decide(true); });
  deny.addEventListener('click', () => decide(false));
}
