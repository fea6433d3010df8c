// #/connections (issue #25, header mode): the servers whose users bring their own credential,
// and the signed-in person's connection to each. #/connections/NAME is the connect URL the
// gateway hands a client whose person has not connected: the page opens with that server's
// form. A value is sent once and never shown again. Administrators also see who is connected
// to what (never the secrets).
// The view gets the app's page helpers as `ui` ({ page, notice, handle, me }).

import { api } from './api.js';
import { h, replace, announce, time } from './dom.js';

/** #/connections[/NAME]. */
export async function viewConnections(ui, focus) {
  const list = h('div', { id: 'connection-list', 'aria-live': 'polite' }, h('p', { class: 'loading' }, 'Loading connections…'));
  const everyone = h('div', { id: 'connected-people' });
  ui.page('Connections',
    h('p', { class: 'crumbs' }, h('a', { href: '#/tokens' }, '← Your tokens')),
    h('p', {}, 'Some servers act upstream as you: each person connects their own credential (a personal access token, an API key). ',
      'Tessera keeps it encrypted, sends it only with your calls to that server, and never shows it again.'),
    list,
    everyone);

  async function load() {
    try {
      const view = await api('GET', '/connections');
      if (!view.connections.length) {
        replace(list, ui.notice('info', 'No server asks its users for their own credential.'));
      } else {
        replace(list, view.connections.map((c) => card(c, ui, load, c.server === focus)));
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
  document.querySelector(`section.connection[data-server="${CSS.escape(focus || '')}"] input`)?.focus();
}

function card(c, ui, reload, focused) {
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

function people(rows) {
  if (!rows.length) return null;
  return h('section', { class: 'card' },
    h('h2', {}, 'Who is connected (administrators)'),
    h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, h('th', {}, 'Server'), h('th', {}, 'Person'), h('th', {}, 'Since'))),
      h('tbody', {}, rows.map((r) => h('tr', {}, h('td', {}, r.server), h('td', {}, r.email), h('td', {}, time(r.connected_at))))))));
}
