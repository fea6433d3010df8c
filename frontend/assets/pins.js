// Pinned tool definitions (issue #26) on the Servers page: the tools a server holds until an
// administrator approves them (a changed definition, or a new tool under "new tools: hold"),
// each with the server's diff of the pinned and the served definition, and an Approve
// button. The server computes the diff; this view only shows it.

import { api } from './api.js';
import { h, replace, announce, time } from './dom.js';

/** The new-tool policies, as the server names them. */
export const NEW_TOOLS = [
  ['allow', 'allow: new tools are pinned and served at once'],
  ['hold', 'hold: new tools are hidden and refused until approved'],
];

/** Fills `where` with server `s`'s held tools; `after` runs once one is approved. */
export async function loadHeld(s, where, ui, after) {
  if (s.direct) return;
  try {
    const full = await api('GET', `/servers/${encodeURIComponent(s.name)}`);
    const held = full.held_tools || [];
    replace(where, held.length
      ? h('div', { class: 'notice warning held-tools', role: 'region', 'aria-label': `Held tools of ${s.name}` },
        h('p', {}, h('strong', {}, `${held.length} tool(s) held`),
          ': hidden from tools/list and refused (tool_changed) until approved. Approving pins the served definition.'),
        held.map((t) => heldTool(s, t, ui, after)))
      : null);
  } catch (e) {
    ui.handle(e, where);
  }
}

/** One held tool: why, since when, the diff, and its Approve button. */
function heldTool(s, t, ui, after) {
  const status = h('span', { class: 'hint', role: 'status' });
  const approve = h('button', { type: 'button', class: 'button primary', dataset: { action: 'approve' } }, `Approve ${t.name}`);
  approve.addEventListener('click', async () => {
    approve.disabled = true;
    try {
      await api('POST', `/servers/${encodeURIComponent(s.name)}/tools/${encodeURIComponent(t.name)}/approve`);
      announce(`Approved ${t.name}`);
      await after();
    } catch (e) {
      approve.disabled = false;
      if (!ui.handle(e)) status.textContent = e.message;
    }
  });
  const why = t.reason === 'new' ? 'new tool (this server holds new tools)' : 'its definition changed upstream';
  return h('div', { class: 'held-tool', dataset: { tool: t.name } },
    h('p', {}, h('code', {}, t.name), ` — ${why}`, t.held_at ? [' · since ', time(t.held_at)] : null),
    h('pre', { class: 'config diff', 'aria-label': `Diff of ${t.name}: - pinned, + served` }, diffLines(t.diff)),
    h('div', { class: 'actions' }, approve, ' ', status));
}

/** The server's line diff, each line marked for its colour (`- ` pinned, `+ ` served). */
function diffLines(diff) {
  return diff.split('\n').filter((l) => l !== '').map((l) => {
    const kind = l.startsWith('+ ') ? 'added' : l.startsWith('- ') ? 'removed' : 'same';
    return h('span', { class: `diff-${kind}` }, l);
  });
}
