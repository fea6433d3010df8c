// #/connections (issue #25): the servers whose users bring their own credential, and the
// signed-in person's connection to each. #/connections/NAME?for=ID is the connect URL the
// gateway hands a client whose person has not connected: the page opens on that server. A
// `header` server takes a value, sent once and never shown again; an `oauth` server sends the
// browser to the upstream's own sign-in, which comes back here with ?connected=1 or
// ?error=CODE. Administrators also see who is connected to what (never the secrets).
// The view gets the app's page helpers as `ui` ({ page, notice, handle, me }).

import { api } from './api.js';
import { h, replace, announce, time } from './dom.js';

/** Sentences for the codes the OAuth connect flow comes back with. */
const FLOW_ERRORS = {
  signed_out: 'Sign in first, then connect.',
  another_account: 'This link was made for another account. Sign in as the person it names to connect.',
  not_found: 'There is no such server.',
  not_oauth_server: 'This server does not connect through a sign-in at the upstream.',
  expired: 'The connection took too long or was started in another browser. Start again.',
  denied: 'The upstream did not grant access (it was refused or cancelled there).',
  invalid_response: 'The upstream answered something Tessera cannot use. Start again, or ask an administrator.',
  upstream_unreachable: 'The upstream’s sign-in cannot be reached right now. Try again later.',
  not_oauth: 'The upstream does not say where its sign-in is (no OAuth metadata). Ask an administrator.',
  address_refused: 'The upstream’s sign-in is at an address Tessera may not call. Ask an administrator.',
  rejected: 'The upstream’s sign-in refused Tessera. Ask an administrator to check its client registration.',
  no_client: 'Tessera has no way to identify itself at the upstream. An administrator must register a client there.',
};

/** #/connections[/NAME][?for=ID|connected=1|error=CODE]. */
export async function viewConnections(ui, focus, params = new URLSearchParams()) {
  const list = h('div', { id: 'connection-list', 'aria-live': 'polite' }, h('p', { class: 'loading' }, 'Loading connections…'));
  const everyone = h('div', { id: 'connected-people' });
  ui.page('Connections',
    h('p', { class: 'crumbs' }, h('a', { href: '#/tokens' }, '← Your tokens')),
    h('p', {}, 'Some servers act upstream as you: each person connects their own credential (a personal access token, an API key, ',
      'or an account they sign in to at the upstream). Tessera keeps it encrypted, sends it only with your calls to that server, and never shows it.'),
    flowNotice(ui, focus, params),
    list,
    everyone);

  async function load() {
    try {
      const view = await api('GET', '/connections');
      if (!view.connections.length) {
        replace(list, ui.notice('info', 'No server asks its users for their own credential.'));
      } else {
        const stranger = params.get('for') && params.get('for') !== ui.me.id;
        replace(list, view.connections.map((c) => card(c, ui, load, c.server === focus && !stranger)));
      }
      if (focus && !view.connections.some((c) => c.server === focus)) {
        list.prepend(ui.notice('error', `The server ${focus} does not take a credential of yours.`));
      }
      if (view.everyone) replace(everyone, people(view.everyone));
    } catch (e) {
      ui.handle(e, list);
    }
  }
  await load();
  document.querySelector(`section.connection.focused :is(input, [data-action=connect])`)?.focus();
}

function flowNotice(ui, focus, params) {
  const forId = params.get('for');
  if (forId && forId !== ui.me.id) return ui.notice('error', FLOW_ERRORS.another_account);
  if (params.get('connected')) return ui.notice('success', `Connected to ${focus}.`);
  const code = params.get('error');
  if (code) return ui.notice('error', FLOW_ERRORS[code] || `Connecting failed (${code}).`);
  return null;
}

function card(c, ui, reload, focused) {
  if (c.kind === 'oauth') return oauthCard(c, ui, reload, focused);
  const value = h('input', { type: 'password', autocomplete: 'off', 'aria-label': `Your ${c.header} for ${c.server}`, required: true });
  const error = h('p', { class: 'field-error', role: 'alert', hidden: true });
  const form = h('form', { novalidate: true },
    h('div', { class: 'field' }, h('label', {}, `Your ${c.header}`), value),
    error,
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'button primary' }, c.connected_at ? 'Replace' : 'Connect'),
      c.connected_at ? h('button', { type: 'button', class: 'button secondary', 'data-action': 'disconnect' }, 'Disconnect') : null));
  const act = async (fn, done) => {
    error.hidden = true;
    try {
      await fn();
      announce(done);
      await reload();
    } catch (e) {
      if (!ui.handle(e)) {
        error.textContent = e.message;
        error.hidden = false;
      }
    }
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!value.value.trim()) {
      error.textContent = `Enter your ${c.header} for ${c.server}.`;
      error.hidden = false;
      value.focus();
      return;
    }
    const secret = value.value;
    value.value = '';
    act(() => api('PUT', `/connections/${encodeURIComponent(c.server)}`, { value: secret }), `Connected to ${c.server}`);
  });
  form.querySelector('[data-action=disconnect]')?.addEventListener('click', () => {
    act(() => api('DELETE', `/connections/${encodeURIComponent(c.server)}`), `Disconnected from ${c.server}`);
  });
  return h('section', { class: `card connection${focused ? ' focused' : ''}`, 'data-server': c.server },
    h('h2', {}, c.server),
    h('p', { class: 'connection-state' }, c.connected_at ? ['Connected ', time(c.connected_at)] : 'Not connected'),
    form);
}

/** An OAuth server: Connect goes to the upstream's sign-in (a page load, not a fetch). */
function oauthCard(c, ui, reload, focused) {
  const error = h('p', { class: 'field-error', role: 'alert', hidden: true });
  const start = `${c.start_url}?for=${encodeURIComponent(ui.me.id)}`;
  const disconnect = c.connected_at
    ? h('button', { type: 'button', class: 'button secondary', 'data-action': 'disconnect' }, 'Disconnect')
    : null;
  disconnect?.addEventListener('click', async () => {
    error.hidden = true;
    try {
      await api('DELETE', `/connections/${encodeURIComponent(c.server)}`);
      announce(`Disconnected from ${c.server}`);
      await reload();
    } catch (e) {
      if (!ui.handle(e)) {
        error.textContent = e.message;
        error.hidden = false;
      }
    }
  });
  const state = c.connected_at
    ? ['Connected ', time(c.connected_at), c.identity ? ` as ${c.identity}` : '']
    : 'Not connected';
  return h('section', { class: `card connection${focused ? ' focused' : ''}`, 'data-server': c.server },
    h('h2', {}, c.server),
    h('p', { class: 'connection-state' }, state),
    h('p', { class: 'hint' }, 'You sign in at the upstream itself; Tessera never sees your password there.'),
    error,
    h('div', { class: 'actions' },
      h('a', { href: start, class: 'button primary', 'data-action': 'connect' }, c.connected_at ? 'Reconnect' : 'Connect'),
      disconnect));
}

function people(rows) {
  if (!rows.length) return null;
  return h('section', { class: 'card' },
    h('h2', {}, 'Who is connected (administrators)'),
    h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, h('th', {}, 'Server'), h('th', {}, 'Person'), h('th', {}, 'Upstream identity'), h('th', {}, 'Since'))),
      h('tbody', {}, rows.map((r) => h('tr', {}, h('td', {}, r.server), h('td', {}, r.email), h('td', {}, r.identity || '—'),
        h('td', {}, time(r.connected_at))))))));
}
