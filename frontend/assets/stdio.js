// stdio servers on the Servers page (issue #26): programs Tessera runs itself and speaks MCP
// to over stdin and stdout. The add form's stdio fields and a card's summary. Environment
// values are write-only, like header values: the server answers their names only.

import { h } from './dom.js';

/** One environment row: a name and a write-only value. */
function envRow() {
  const row = h('div', { class: 'env-row check' },
    h('input', { type: 'text', class: 'env-name', 'aria-label': 'Variable name', placeholder: 'MEMORY_FILE_PATH', autocomplete: 'off' }),
    h('input', { type: 'password', class: 'env-value', 'aria-label': 'Variable value', placeholder: 'value ({user_dir} allowed)', autocomplete: 'new-password' }),
    h('button', { type: 'button', class: 'button secondary', onclick: () => row.remove() }, 'Remove variable'));
  return row;
}

/**
 * The stdio part of the add form: a switch and, when on, the command, its environment and
 * the per-user mode. `hideWhenOn` are the HTTP-only parts (URL, headers, direct) it hides.
 * Returns the switch, the fields, and `command()`: the API's `command` object, or null when
 * the switch is off.
 */
export function stdioFields(idp, hideWhenOn) {
  const on = h('input', { type: 'checkbox', id: `${idp}-stdio`, name: 'stdio' });
  const line = h('input', { id: `${idp}-command`, name: 'command', type: 'text', placeholder: 'npx -y @modelcontextprotocol/server-memory', autocomplete: 'off' });
  const rows = h('div', { class: 'env-rows' });
  const perUser = h('input', { type: 'checkbox', id: `${idp}-per-user`, name: 'per_user' });
  const fields = h('fieldset', { class: 'field stdio-fields', hidden: true },
    h('legend', {}, 'stdio server'),
    h('div', { class: 'field' }, h('label', { for: line.id }, 'Command'), line,
      h('p', { class: 'hint' }, 'Split like a shell would (quotes respected), but no shell runs it. The program gets an empty environment but PATH, its own HOME and the variables below.')),
    h('p', { class: 'hint' }, 'Environment values are stored encrypted and never shown again.'),
    rows,
    h('button', { type: 'button', class: 'button secondary', onclick: () => rows.append(envRow()) }, 'Add variable'),
    h('div', { class: 'check server-flag' }, perUser,
      h('label', { for: perUser.id }, 'One process per user, each with its own home directory ({user_dir} in arguments and values)')));
  const toggle = () => {
    fields.hidden = !on.checked;
    for (const part of hideWhenOn) if (part) part.hidden = on.checked;
  };
  on.addEventListener('change', toggle);
  const box = h('div', { class: 'check server-flag' }, on,
    h('label', { for: on.id }, 'Run it here as a stdio server: Tessera starts the program and serves it through the gateway'));
  return {
    box,
    fields,
    reset() { on.checked = false; line.value = ''; perUser.checked = false; rows.replaceChildren(); toggle(); },
    command() {
      if (!on.checked) return null;
      const env = {};
      for (const row of rows.querySelectorAll('.env-row')) {
        const n = row.querySelector('.env-name').value.trim();
        if (n) env[n] = row.querySelector('.env-value').value;
      }
      return { line: line.value.trim(), env, per_user: perUser.checked };
    },
  };
}

/** A stdio server card's heading and summary line. */
export function stdioSummary(s) {
  return {
    heading: h('h3', {}, h('code', {}, `/mcp/${s.name}`), ' ', h('span', { class: 'badge' }, 'stdio'), ' ', h('code', {}, s.command.line)),
    hint: ['Environment: ', s.command.env.length ? s.command.env.join(', ') : 'none',
      s.command.per_user ? ' · one process per user' : ' · one shared process'],
  };
}
