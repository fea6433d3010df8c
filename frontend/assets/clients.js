// #/clients (administrators, issue #13): the OAuth clients that registered (RFC 7591) or
// identified themselves by a metadata document (CIMD), with their grants in force. Grants
// themselves are tokens: each one's page says "via OAuth — <client>".

import { api } from './api.js';
import { h, replace, time } from './dom.js';

const KINDS = { dynamic: 'dynamic', metadata_document: 'CIMD' };

/** #/clients: the registered OAuth clients, newest first. */
export async function viewClients(ui) {
  const list = h('div', { id: 'client-list', 'aria-live': 'polite' }, h('p', { class: 'loading' }, 'Loading OAuth clients…'));
  ui.page('OAuth clients',
    h('p', { class: 'crumbs' }, h('a', { href: '#/tokens' }, '← Your tokens')),
    h('p', {}, 'Applications that asked people for access through Tessera\'s authorization server: registered ',
      'dynamically, or identified by a Client ID Metadata Document (CIMD, the client id is its URL). A grant is a token: ',
      'revoke it on its token page.'),
    list);
  let clients;
  try {
    clients = await api('GET', '/oauth/clients');
  } catch (e) {
    ui.handle(e, list);
    return;
  }
  replace(list, clients.length
    ? h('table', { class: 'compact', id: 'oauth-clients' },
      h('thead', {}, h('tr', {}, ['Client', 'Kind', 'Redirect hosts', 'Active grants', 'Registered'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, clients.map(clientRow)))
    : h('p', { class: 'empty' }, 'No OAuth client has registered yet.'));
}

function clientRow(c) {
  return h('tr', { dataset: { clientId: c.client_id } },
    h('th', { scope: 'row' }, c.client_name || c.client_id, c.client_name ? h('div', { class: 'hint' }, h('code', {}, c.client_id)) : null),
    h('td', { class: 'client-kind' }, KINDS[c.kind] ?? c.kind),
    h('td', { class: 'client-hosts' }, hosts(c.redirect_uris).join(', ')),
    h('td', { class: 'client-grants' }, String(c.active_grants)),
    h('td', {}, time(c.created_at)));
}

/** The distinct hosts (with port) of the redirect URIs: where codes may be sent. */
function hosts(uris) {
  const seen = new Set();
  for (const u of uris) {
    try { seen.add(new URL(u).host); } catch { seen.add(u); }
  }
  return [...seen];
}
