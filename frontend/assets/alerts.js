// Alerts (issue #17): #/webhooks (register, delivery log, delete), a token's "activity needing
// attention" card, and #/users (administrators: per-user rate limits). The views get the
// app's page helpers as `ui` ({ page, notice, handle, me }) rather than importing app.js.

import { api } from './api.js';
import { h, replace, announce, time } from './dom.js';

/** Every event kind, as the server names them. */
const EVENTS = [
  ['token.expiring', 'expires in 7 days, and in 1 day'],
  ['token.revoked', 'revoked'],
  ['token.rotated', 'rotated'],
  ['token.grace_ending', 'a rotation grace period ends within an hour'],
  ['token.rate_limited', 'first rate-limit refusal of an hour'],
  ['token.auth_failures', 'a burst of failed authentications'],
  ['token.new_network', 'used from a new network'],
  ['token.narrowed', 'narrowed: its owner\'s allowance shrank'],
  ['server.tool_changed', 'a server\'s tool changed and is held until approved (administrators, every user)'],
];

/** Describes one alert event for people. */
function describe(e) {
  const d = e.details || {};
  switch (e.kind) {
    case 'token.expiring': return `Expires within ${d.notice_days} day${d.notice_days === 1 ? '' : 's'}`;
    case 'token.revoked': return d.reason ? `Revoked: ${d.reason}` : 'Revoked';
    case 'token.rotated': return 'Rotated; the old secret works until the grace period ends';
    case 'token.grace_ending': return 'The rotation grace period ends soon';
    case 'token.rate_limited': return `Hit the ${d.limit_scope === 'user' ? "account's shared" : "token's"} rate limit (${d.limit_per_hour}/h)`;
    case 'token.auth_failures': return `${d.failures} failed authentications within ${Math.round((d.window_seconds || 300) / 60)} minutes`;
    case 'token.new_network': return `First use from ${d.network}`;
    case 'token.narrowed': return `Narrowed to its owner's allowance; removed: ${(d.removed || []).join(' ')}`;
    case 'server.tool_changed': return `Tool ${d.tool} of ${d.server} is held until approved (${d.reason})`;
    default: return e.kind;
  }
}

/** The token page's card: the same events its webhooks receive. */
export function alertsCard(t, ui) {
  const body = h('div', { id: 'alerts-body', 'aria-live': 'polite' }, h('p', { class: 'loading' }, 'Loading alerts…'));
  (async () => {
    try {
      const events = await api('GET', `/tokens/${t.id}/alerts`);
      replace(body, events.length
        ? h('ul', { class: 'alerts', id: 'token-alerts' }, events.map((e) => h('li', { dataset: { kind: e.kind } },
          time(e.at), ' ', h('code', {}, e.kind), ' — ', describe(e))))
        : h('p', { class: 'muted' }, 'Nothing needs attention.'));
    } catch (e) {
      ui.handle(e, body);
    }
  })();
  return h('section', { class: 'card wide', 'aria-labelledby': 'alerts-h' },
    h('h2', { id: 'alerts-h' }, 'Activity needing attention'),
    h('p', { class: 'hint' }, h('a', { href: '#/webhooks' }, 'Send these to a webhook')),
    body);
}

/** #/webhooks: the caller's webhooks (an admin's: everyone's), an add form and delivery logs. */
export async function viewWebhooks(ui) {
  const list = h('div', { id: 'webhook-list', 'aria-live': 'polite' }, h('p', { class: 'loading' }, 'Loading webhooks…'));
  const secretSlot = h('div', { id: 'webhook-secret' });
  ui.page('Alert webhooks',
    h('p', { class: 'crumbs' }, h('a', { href: '#/tokens' }, '← Your tokens')),
    h('p', {}, 'Tessera POSTs a signed JSON message to each webhook when one of its events happens to your tokens. ',
      'Each message carries Tessera-Timestamp and Tessera-Signature (v1=hex HMAC-SHA256 of "timestamp.body"); ',
      'its "text" field makes it a valid Slack message.'),
    addForm(ui, secretSlot, () => load()),
    secretSlot,
    h('h2', {}, 'Registered'),
    list);

  async function load() {
    try {
      const hooks = await api('GET', '/webhooks');
      replace(list, hooks.length
        ? hooks.map((w) => webhookCard(w, ui, load))
        : h('p', { class: 'empty' }, 'No webhooks yet.'));
    } catch (e) {
      ui.handle(e, list);
    }
  }
  await load();
}

function addForm(ui, secretSlot, reload) {
  const url = h('input', { id: 'webhook-url', name: 'url', type: 'url', required: true, placeholder: 'https://hooks.example.com/tessera', autocomplete: 'off' });
  const boxes = EVENTS.map(([kind, label]) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', name: 'events', value: kind, checked: true }), ' ', h('code', {}, kind), ` (${label})`));
  const everyone = ui.me.is_admin
    ? h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'all_users', id: 'webhook-all-users' }), " Every user's tokens (administrators)")
    : null;
  const error = h('p', { class: 'field-error', id: 'webhook-error', role: 'alert', hidden: true });
  const form = h('form', { class: 'card', id: 'webhook-form', novalidate: true },
    h('h2', {}, 'Add a webhook'),
    h('div', { class: 'field' }, h('label', { for: 'webhook-url' }, 'URL'), url),
    h('fieldset', { class: 'field' }, h('legend', {}, 'Events'), boxes),
    everyone,
    error,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'button primary', id: 'webhook-add' }, 'Add webhook')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    const events = [...form.querySelectorAll('input[name=events]:checked')].map((b) => b.value);
    const body = { url: url.value.trim(), events };
    if (everyone && form.querySelector('#webhook-all-users').checked) body.all_users = true;
    try {
      const created = await api('POST', '/webhooks', body);
      form.reset();
      replace(secretSlot, h('div', { class: 'notice success', role: 'status' },
        h('p', {}, 'Webhook added. Its signing secret is shown only now: copy it into your receiver.'),
        h('code', { id: 'webhook-secret-value', class: 'secret' }, created.secret)));
      announce('Webhook added');
      await reload();
    } catch (e) {
      if (!ui.handle(e)) {
        error.textContent = e.message;
        error.hidden = false;
      }
    }
  });
  return form;
}

function webhookCard(w, ui, reload) {
  const log = h('div', { class: 'delivery-log' });
  const show = h('button', { type: 'button', class: 'button secondary', dataset: { action: 'deliveries' } }, 'Delivery log');
  show.addEventListener('click', () => deliveries(w, log, ui));
  const del = h('button', { type: 'button', class: 'button danger', dataset: { action: 'delete' } }, 'Delete');
  del.addEventListener('click', async () => {
    if (!window.confirm(`Delete the webhook to ${w.url}?`)) return;
    try {
      await api('DELETE', `/webhooks/${w.id}`);
      announce('Webhook deleted');
      await reload();
    } catch (e) {
      ui.handle(e, log);
    }
  });
  return h('section', { class: 'card webhook', dataset: { webhookId: w.id } },
    h('h3', {}, h('code', {}, w.url)),
    h('p', { class: 'hint' }, w.all_users ? "Every user's tokens · " : '', w.events.join(', '), ' · added ', time(w.created_at)),
    h('div', { class: 'actions' }, show, del),
    log);
}

async function deliveries(w, where, ui) {
  replace(where, h('p', { class: 'loading' }, 'Loading deliveries…'));
  try {
    const items = await api('GET', `/webhooks/${w.id}/deliveries`);
    replace(where, items.length
      ? h('table', { class: 'compact deliveries' },
        h('thead', {}, h('tr', {}, ['Event', 'Token', 'State', 'Attempts', 'Last answer', 'Updated'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, items.map((d) => h('tr', { dataset: { state: d.state } },
          h('td', {}, h('code', {}, d.kind)),
          h('td', {}, h('a', { href: `#/tokens/${d.token_id}` }, 'token')),
          h('td', {}, h('span', { class: `badge delivery-${d.state}` }, d.state)),
          h('td', {}, String(d.attempts)),
          h('td', {}, d.last_status ? String(d.last_status) : (d.last_error || '—')),
          h('td', {}, time(d.updated_at))))))
      : h('p', { class: 'muted' }, 'Nothing delivered yet.'));
  } catch (e) {
    ui.handle(e, where);
  }
}

/** #/users (administrators): each account's shared rate limit. */
export async function viewUsers(ui) {
  const list = h('div', { id: 'user-list', 'aria-live': 'polite' }, h('p', { class: 'loading' }, 'Loading accounts…'));
  ui.page('Accounts',
    h('p', { class: 'crumbs' }, h('a', { href: '#/tokens' }, '← Your tokens')),
    h('p', {}, "A user's rate limit is shared by all of their tokens, on top of each token's own. Leave it empty for none. ",
      'Deactivating an account ends its sessions and revokes every token and grant it holds, at once.'),
    list);
  let users;
  try {
    users = await api('GET', '/users');
  } catch (e) {
    ui.handle(e, list);
    return;
  }
  replace(list, h('table', { class: 'compact', id: 'users' },
    h('thead', {}, h('tr', {}, ['Email', 'Admin', 'Requests per hour (all tokens)', 'Account'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, users.map((u) => userRow(u, ui)))));
}

/** Deactivate (every token and grant revoked at once, sessions ended) or reactivate an account. */
function activeCell(u, ui) {
  const cell = h('td', {});
  const render = (user) => {
    const label = user.active ? `Deactivate ${user.email}` : `Reactivate ${user.email}`;
    const button = h('button', { type: 'button', class: user.active ? 'button danger' : 'button secondary', 'aria-label': label },
      user.active ? 'Deactivate' : 'Reactivate');
    button.addEventListener('click', async () => {
      if (user.active && !window.confirm(`Deactivate ${user.email}? Their sessions end and every token and grant they hold is revoked now; reactivating does not bring them back.`)) return;
      try {
        render(await api('PATCH', `/users/${user.id}`, { active: !user.active }));
        announce(user.active ? `${user.email} deactivated` : `${user.email} reactivated`);
      } catch (e) {
        if (!ui.handle(e)) replace(cell, e.message);
      }
    });
    replace(cell, h('span', { class: user.active ? 'badge status-active' : 'badge status-revoked' }, user.active ? 'active' : 'deactivated'), ' ', button);
  };
  render(u);
  return cell;
}

function userRow(u, ui) {
  const input = h('input', { type: 'number', min: 1, max: 1000000, value: u.rate_limit_per_hour ?? '', 'aria-label': `Rate limit of ${u.email}`, placeholder: 'none' });
  const status = h('span', { class: 'hint', role: 'status' });
  const save = h('button', { type: 'submit', class: 'button secondary' }, 'Save');
  const form = h('form', { class: 'inline' }, input, ' ', save, ' ', status);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const raw = input.value.trim();
    try {
      const updated = await api('PATCH', `/users/${u.id}`, { rate_limit_per_hour: raw === '' ? null : Number(raw) });
      status.textContent = updated.rate_limit_per_hour ? `Saved: ${updated.rate_limit_per_hour}/h` : 'Saved: no limit';
    } catch (e) {
      if (!ui.handle(e)) status.textContent = e.message;
    }
  });
  return h('tr', { dataset: { userId: u.id } }, h('td', {}, u.email), h('td', {}, u.is_admin ? 'yes' : 'no'), h('td', {}, form), activeCell(u, ui));
}
