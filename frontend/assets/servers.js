// #/servers (administrators, issues #14, #15): the upstream MCP servers served at /mcp/{name},
// and direct servers (they check tokens themselves by introspection at /oauth/introspect).
// Add, edit and remove them, and set each tool's class. Header values are write-only: the
// server answers their names only, so the edit form can replace headers but never shows them.
// A direct server's client secret is shown once, in a dialog that forgets it on close.
// Held tools (pinned definitions, issue #26) and their approval are in pins.js.
// The views get the app's page helpers as `ui` ({ page, notice, handle, me }).

import { api } from './api.js';
import { h, replace, announce, time } from './dom.js';
import { loadLimits } from './limits.js';
import { NEW_TOOLS, loadHeld } from './pins.js';
import { stdioFields, stdioSummary } from './stdio.js';

const CLASSES = [
  ['read', 'read: listed and callable with read:S'],
  ['write', 'write: needs write:S or call:S/TOOL'],
  ['hidden', 'hidden: never listed, never callable'],
];

/** #/servers: the registered servers and a form to add one. */
export async function viewServers(ui) {
  const list = h('div', { id: 'server-list', 'aria-live': 'polite' }, h('p', { class: 'loading' }, 'Loading servers…'));
  ui.page('MCP servers',
    h('p', { class: 'crumbs' }, h('a', { href: '#/tokens' }, '← Your tokens')),
    h('p', {}, 'Tessera serves each registered server at /mcp/NAME. Tokens reach it with read:NAME (read-only tools), ',
      'write:NAME (every tool) or call:NAME/TOOL (one tool). Tessera asks a server for its tools when it is added, and learns changes whenever a client lists them. ',
      'A direct server is not served here: it checks tokens itself by asking Tessera (introspection).'),
    serverForm(ui, null, () => load()),
    h('h2', {}, 'Registered'),
    list);

  async function load() {
    try {
      const servers = await api('GET', '/servers');
      replace(list, servers.length
        ? servers.map((s) => serverCard(s, ui, load))
        : h('p', { class: 'empty' }, 'No servers yet.'));
      // The token form's scope list comes from the limits: keep it in step with the registry.
      await loadLimits();
    } catch (e) {
      ui.handle(e, list);
    }
  }
  await load();
}

/** One header row: a name and a write-only value. */
function headerRow(name = '') {
  const row = h('div', { class: 'header-row check' },
    h('input', { type: 'text', class: 'header-name', 'aria-label': 'Header name', placeholder: 'Authorization', value: name, autocomplete: 'off' }),
    h('input', { type: 'password', class: 'header-value', 'aria-label': 'Header value', placeholder: name ? 'new value (required to keep it)' : 'value', autocomplete: 'new-password' }),
    h('button', { type: 'button', class: 'button secondary', onclick: () => row.remove() }, 'Remove header'));
  return row;
}

/** The add form (`existing` null) or the edit form of `existing`. */
function serverForm(ui, existing, reload) {
  const idp = existing ? `server-${existing.name}` : 'server';
  const name = existing ? null : h('input', { id: `${idp}-name`, name: 'name', type: 'text', required: true, pattern: '[a-z0-9-]{1,32}', placeholder: 'notes', autocomplete: 'off' });
  const url = h('input', { id: `${idp}-url`, name: 'url', type: 'url', required: true, value: existing?.url ?? '', placeholder: 'https://mcp.example.com/mcp', autocomplete: 'off' });
  const description = h('input', { id: `${idp}-description`, name: 'description', type: 'text', value: existing?.description ?? '', autocomplete: 'off' });
  const rows = h('div', { class: 'header-rows' });
  const headerBox = h('fieldset', { class: 'field' },
    h('legend', {}, 'Headers sent upstream'),
    h('p', { class: 'hint' }, existing
      ? 'Values are never shown. Leave "replace headers" unticked to keep the current ones.'
      : 'For the upstream\'s own credentials. Values are stored encrypted and never shown again.'),
    rows,
    h('button', { type: 'button', class: 'button secondary', onclick: () => rows.append(headerRow()) }, 'Add header'));
  // A direct server is never called by Tessera: it takes no headers.
  const direct = existing ? null : h('input', { type: 'checkbox', id: `${idp}-direct`, name: 'direct' });
  direct?.addEventListener('change', () => { headerBox.hidden = direct.checked; });
  if (existing?.direct) headerBox.hidden = true;
  // Pinning (issue #26): what a tool first listed after the first listing gets.
  const newTools = existing?.direct ? null : h('select', { id: `${idp}-new-tools`, name: 'new_tools' },
    NEW_TOOLS.map(([value, label]) => h('option', { value, selected: (existing?.new_tools ?? 'allow') === value }, label)));
  direct?.addEventListener('change', () => { newTools.disabled = direct.checked; });
  // Its URL is its tokens' audience: moving it is explicit.
  const invalidate = existing?.direct ? h('input', { type: 'checkbox', id: `${idp}-invalidate` }) : null;
  let replaceBox = null;
  if (existing) {
    replaceBox = h('input', { type: 'checkbox', id: `${idp}-replace-headers` });
    headerBox.insertBefore(h('div', { class: 'check' }, replaceBox,
      h('label', { for: replaceBox.id }, 'Replace headers (current: ', existing.headers.length ? existing.headers.join(', ') : 'none', ')')), rows);
    for (const n of existing.headers) rows.append(headerRow(n));
  }
  // Connected accounts (issue #25): asked once, at registration.
  const personal = existing ? null : userAuthBox(idp);
  direct?.addEventListener('change', () => { personal.box.hidden = direct.checked; });
  // A stdio server (issue #26) has a command instead of a URL, headers, direct mode or users' own credentials.
  const urlField = existing?.command ? null : h('div', { class: 'field' }, h('label', { for: url.id }, 'URL'), url);
  const directField = direct ? h('div', { class: 'check server-flag' }, direct,
    h('label', { for: direct.id }, 'Checks tokens itself (direct): Tessera does not proxy it, its tokens carry its address as audience, and it gets introspection credentials')) : null;
  const stdio = existing ? null : stdioFields(idp, [urlField, directField, headerBox, personal?.box]);
  if (existing?.command) headerBox.hidden = true;
  const error = h('p', { class: 'field-error', role: 'alert', hidden: true });
  const warning = h('p', { class: 'notice warning', id: `${idp}-warning`, role: 'status', hidden: true });
  const form = h('form', { class: existing ? 'server-edit' : 'card', id: existing ? null : 'server-form', novalidate: true },
    existing ? null : h('h2', {}, 'Add a server'),
    name ? h('div', { class: 'field' }, h('label', { for: name.id }, 'Name'), name) : null,
    stdio?.box,
    urlField,
    stdio?.fields,
    h('div', { class: 'field' }, h('label', { for: description.id }, 'Description'), description),
    newTools ? h('div', { class: 'field' }, h('label', { for: newTools.id }, 'New tools'), newTools) : null,
    directField,
    invalidate ? h('div', { class: 'check server-flag' }, invalidate,
      h('label', { for: invalidate.id }, 'If the address changes: tokens issued for the old address stop working for this server (their holders need new ones)')) : null,
    headerBox,
    personal?.box,
    error,
    warning,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'button primary' }, existing ? 'Save server' : 'Add server')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    warning.hidden = true;
    const headers = {};
    for (const row of rows.querySelectorAll('.header-row')) {
      const n = row.querySelector('.header-name').value.trim();
      if (n) headers[n] = row.querySelector('.header-value').value;
    }
    const desc = description.value.trim();
    try {
      if (existing) {
        const body = { description: desc || null };
        if (!existing.command) body.url = url.value.trim();
        if (newTools) body.new_tools = newTools.value;
        if (replaceBox.checked && !existing.direct) body.headers = headers;
        if (invalidate?.checked) body.invalidate_tokens = true;
        const saved = await api('PATCH', `/servers/${encodeURIComponent(existing.name)}`, body);
        announce(saved.tokens_invalidated === undefined
          ? 'Server saved'
          : `Server moved: ${saved.tokens_invalidated} token(s) naming the old URL no longer work for it`);
      } else {
        const isDirect = direct.checked;
        const command = stdio.command();
        const userAuth = isDirect || command ? null : personal.value();
        const added = await api('POST', '/servers', command
          ? { name: name.value.trim(), description: desc || null, command, new_tools: newTools.value }
          : {
            name: name.value.trim(), url: url.value.trim(), description: desc || null, headers: isDirect ? {} : headers, direct: isDirect,
            ...(isDirect ? {} : { new_tools: newTools.value }),
            ...(userAuth ? { user_auth: userAuth } : {}),
          });
        form.reset();
        stdio.reset();
        personal.reset();
        headerBox.hidden = false;
        personal.box.hidden = false;
        replace(rows);
        if (added.warning) {
          // Registered all the same: say why its tools are not known yet, where the admin looks.
          warning.textContent = `Server ${added.name} added, but ${added.warning}. Its tools will be learnt when a client first lists them.`;
          warning.hidden = false;
        }
        announce(added.tools_discovered === undefined ? 'Server added' : `Server added with ${added.tools_discovered} tool(s)`);
        if (added.credentials) showCredential(added.name, added.credentials, 'Direct server added');
      }
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

const USER_AUTH = [['', 'No: every call uses the headers above'], ['header', 'Yes: each person enters their own value for a header'],
  ['oauth', 'Yes: each person signs in at the upstream (OAuth)']];

/** "Users' own credential": none, a header each person fills, or OAuth at the upstream. */
function userAuthBox(idp) {
  const input = (id, attrs = {}) => h('input', { id: `${idp}-${id}`, type: 'text', autocomplete: 'off', ...attrs });
  const kind = h('select', { id: `${idp}-user-auth` }, USER_AUTH.map(([value, label]) => h('option', { value }, label)));
  const header = input('user-header', { placeholder: 'X-Api-Key' });
  const prefix = input('user-prefix', { placeholder: 'Bearer ' });
  const clientId = input('client-id');
  const clientSecret = input('client-secret', { type: 'password' });
  const scope = input('scope', { placeholder: 'what the upstream asks for' });
  const field = (label, el) => h('div', { class: 'field' }, h('label', { for: el.id }, label), el);
  const headerFields = h('div', { hidden: true }, field('Header', header), field('Prefix (optional)', prefix));
  const oauthFields = h('div', { hidden: true },
    h('p', { class: 'hint' }, 'Tessera finds the upstream’s sign-in from its OAuth metadata and registers itself there, unless you give a client registered there.'),
    field('Client id (optional)', clientId), field('Client secret (optional)', clientSecret), field('Scopes (optional)', scope));
  const sync = () => { headerFields.hidden = kind.value !== 'header'; oauthFields.hidden = kind.value !== 'oauth'; };
  kind.addEventListener('change', sync);
  const box = h('fieldset', { class: 'field' }, h('legend', {}, 'Do users bring their own credential?'),
    field('Users connect', kind), headerFields, oauthFields);
  const opt = (el) => el.value.trim() || undefined;
  return {
    box,
    reset: sync,
    value() {
      if (kind.value === 'header') return { kind: 'header', header: header.value.trim(), prefix: prefix.value };
      if (kind.value === 'oauth') return { kind: 'oauth', client_id: opt(clientId), client_secret: opt(clientSecret), scope: opt(scope) };
      return null;
    },
  };
}

function serverCard(s, ui, reload) {
  const tools = h('div', { class: 'server-tools' }, h('p', { class: 'loading' }, 'Loading tools…'));
  const editSlot = h('div', {});
  const edit = h('button', { type: 'button', class: 'button secondary', dataset: { action: 'edit' } }, 'Edit');
  edit.addEventListener('click', () => {
    if (editSlot.firstChild) replace(editSlot);
    else replace(editSlot, serverForm(ui, s, reload));
  });
  const del = h('button', { type: 'button', class: 'button danger', dataset: { action: 'remove' } }, 'Remove');
  del.addEventListener('click', async () => {
    if (!window.confirm(`Remove the server ${s.name}? Tokens keep their scopes, but /mcp/${s.name} stops answering.`)) return;
    try {
      await api('DELETE', `/servers/${encodeURIComponent(s.name)}`);
      announce('Server removed');
      await reload();
    } catch (e) {
      ui.handle(e, tools);
    }
  });
  const held = h('div', { class: 'server-held', 'aria-live': 'polite' });
  const refresh = async () => { await loadHeld(s, held, ui, refresh); await loadTools(s, tools, ui); };
  loadHeld(s, held, ui, refresh);
  loadTools(s, tools, ui);
  const stdio = s.command ? stdioSummary(s) : null;
  return h('section', { class: 'card server', dataset: { server: s.name, direct: String(s.direct), kind: s.command ? 'stdio' : (s.direct ? 'direct' : 'http') } },
    stdio ? stdio.heading : s.direct
      ? h('h3', {}, h('code', {}, s.name), ' ', h('span', { class: 'badge' }, 'direct'), ' ', h('code', {}, s.url))
      : h('h3', {}, h('code', {}, `/mcp/${s.name}`), ' → ', h('code', {}, s.url)),
    s.description ? h('p', {}, s.description) : null,
    h('p', { class: 'hint' },
      stdio ? stdio.hint
        : s.direct ? ['Checks tokens itself at ', h('code', {}, `${location.origin}/oauth/introspect`), '; tokens name ', h('code', {}, s.resource), ' in aud']
        : ['Headers: ', s.headers.length ? s.headers.join(', ') : 'none', userAuthHint(s.user_auth)],
      ' · scopes ', s.scopes.join(', '), ', call:', s.name, '/TOOL',
      s.direct ? '' : ` · new tools: ${s.new_tools}`, ' · added ', time(s.created_at)),
    h('div', { class: 'actions' }, edit, s.direct ? rotateForm(s, ui) : null, del),
    editSlot,
    held,
    tools);
}

function userAuthHint(a) {
  if (!a) return '';
  if (a.kind === 'oauth') return ` · each user signs in at the upstream${a.issuer ? ` (${a.issuer})` : ''}`;
  return ` · each user brings their own ${a.header}`;
}

/** A direct server's "rotate credentials" control: the old pair keeps working for the grace. */
function rotateForm(s, ui) {
  const grace = h('input', { type: 'number', id: `server-${s.name}-grace`, min: '0', max: '2592000', step: '1', value: '3600', class: 'narrow' });
  const status = h('span', { class: 'hint', role: 'status' });
  const button = h('button', { type: 'button', class: 'button secondary' }, 'Rotate credentials');
  button.addEventListener('click', async () => {
    try {
      const c = await api('POST', `/servers/${encodeURIComponent(s.name)}/credentials`, { grace_seconds: Number(grace.value || 0) });
      status.textContent = '';
      showCredential(s.name, c, 'New introspection credentials');
    } catch (e) {
      if (!ui.handle(e)) status.textContent = e.message;
    }
  });
  return h('span', { class: 'rotate-credentials' },
    h('label', { for: grace.id }, 'Old pair works for (seconds) '), grace, ' ', button, ' ', status);
}

/**
 * A direct server's introspection client id and secret, shown once in a modal dialog;
 * closing it clears every copy of the secret from the page.
 */
function showCredential(name, credentials, title) {
  const endpoint = `${location.origin}/oauth/introspect`;
  const id = h('input', { id: 'client-id', type: 'text', readonly: true, value: credentials.client_id, class: 'secret', autocomplete: 'off' });
  const secret = h('input', { id: 'client-secret', type: 'text', readonly: true, value: credentials.client_secret, class: 'secret', spellcheck: 'false', autocomplete: 'off' });
  const close = h('button', { type: 'button', class: 'button primary', id: 'credential-done' }, 'I have saved it — close');
  const dialog = h('dialog', { class: 'secret-dialog', 'aria-labelledby': 'credential-title', 'aria-describedby': 'credential-once' },
    h('h2', { id: 'credential-title' }, `${title}: ${name}`),
    h('p', { id: 'credential-once', class: 'notice warning' },
      'This is the only time this client secret is shown. Tessera keeps only a hash of it: put it in the server\'s configuration now.'),
    h('p', { class: 'hint' }, 'Introspection endpoint: ', h('code', {}, endpoint)),
    h('div', { class: 'field' }, h('label', { for: id.id }, 'Client id'), id),
    h('div', { class: 'field' }, h('label', { for: secret.id }, 'Client secret'), secret),
    h('div', { class: 'actions' }, close));
  let closed = false;
  const discard = () => {
    if (closed) return;
    closed = true;
    secret.value = '';
    credentials.client_secret = undefined;
    dialog.remove();
    announce('The credential dialog is closed; the secret is no longer on this page.');
  };
  // As with token secrets: discard at once, not in the close event's later task.
  close.addEventListener('click', () => { dialog.close(); discard(); });
  dialog.addEventListener('close', discard);
  document.body.append(dialog);
  dialog.showModal();
  secret.focus();
}

async function loadTools(s, where, ui) {
  try {
    const list = await api('GET', `/servers/${encodeURIComponent(s.name)}/tools`);
    const none = s.direct
      ? ['No tools declared. Tessera never calls a direct server, so it knows its tools only if told: ',
        h('code', {}, `tessera server tool ${s.name} TOOL --access read|write`), '. read:', s.name, ' and write:', s.name, ' work without.']
      : 'No tools known yet: they appear once a client lists them through Tessera.';
    replace(where, list.length
      ? h('table', { class: 'compact tools' },
        h('thead', {}, h('tr', {}, ['Tool', 'Upstream hint', 'Class', 'Scope'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, list.map((t) => toolRow(s, t, ui))))
      : h('p', { class: 'muted' }, none));
  } catch (e) {
    ui.handle(e, where);
  }
}

function toolRow(s, t, ui) {
  const status = h('span', { class: 'hint', role: 'status' });
  const select = h('select', { 'aria-label': `Class of ${t.name}` },
    h('option', { value: '', selected: !t.access_override }, `automatic (${hintClass(t)})`),
    CLASSES.map(([value, label]) => h('option', { value, selected: t.access_override === value }, label)));
  select.addEventListener('change', async () => {
    try {
      const after = await api('PATCH', `/servers/${encodeURIComponent(s.name)}/tools`, { tools: { [t.name]: select.value || null } });
      const mine = after.find((x) => x.name === t.name);
      status.textContent = `Saved: ${mine?.access ?? select.value}`;
      await loadLimits();
    } catch (e) {
      if (!ui.handle(e)) status.textContent = e.message;
    }
  });
  return h('tr', { dataset: { tool: t.name } },
    h('th', { scope: 'row' }, h('code', {}, t.name), t.held ? [' ', h('span', { class: 'badge' }, 'held')] : null,
      t.description ? h('div', { class: 'hint' }, t.description) : null),
    h('td', {}, t.read_only_hint === true ? 'read-only' : t.read_only_hint === false ? 'writes' : '—'),
    h('td', {}, select, ' ', status),
    h('td', {}, h('code', {}, t.scope)));
}

/** The class a tool gets without an override: read when the upstream says read-only. */
const hintClass = (t) => (t.read_only_hint === true ? 'read' : 'write');
