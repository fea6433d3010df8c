// #/teams (administrators, issue #24): teams and their allowances, which bound the scopes their
// members may hold. `everyone` bounds people in no team. Shrinking an allowance narrows the
// members' tokens at once; the page says how many.
// The view gets the app's page helpers as `ui` ({ page, notice, handle, me }).

import { api } from './api.js';
import { h, replace, announce } from './dom.js';

const scopesOf = (text) => text.split(/\s+/).filter(Boolean);
const describe = (t) => (t.allowance === null ? 'every scope' : t.allowance.length ? t.allowance.join(' ') : 'nothing');
const narrowedNote = (t) => (t.tokens_narrowed ? ` · ${t.tokens_narrowed} token(s) narrowed` : '');

/** #/teams: the teams, a form to add one, and each team's allowance and members. */
export async function viewTeams(ui) {
  const list = h('div', { id: 'team-list', 'aria-live': 'polite' }, h('p', { class: 'loading' }, 'Loading teams…'));
  const status = h('p', { id: 'team-status', role: 'status', class: 'notice info', hidden: true });
  ui.page('Teams',
    h('p', { class: 'crumbs' }, h('a', { href: '#/tokens' }, '← Your tokens')),
    h('p', {}, 'A team\'s allowance is the most its members may hold: write:S brings read:S and every call:S/TOOL. ',
      'A person in several teams may hold the union; someone in no team is bound by everyone. Administrators are not bound. ',
      'Narrowing an allowance takes the scopes outside it out of the members\' tokens at once.'),
    addForm(ui, () => load()),
    status,
    h('h2', {}, 'Teams'),
    list);

  function say(text) {
    status.textContent = text;
    status.hidden = false;
    announce(text);
  }

  async function load() {
    try {
      const teams = await api('GET', '/teams');
      replace(list, teams.map((t) => teamCard(t, ui, load, say)));
    } catch (e) {
      ui.handle(e, list);
    }
  }
  await load();
}

function addForm(ui, reload) {
  const name = h('input', { id: 'team-name', type: 'text', required: true, maxlength: '100', autocomplete: 'off' });
  const allow = h('input', { id: 'team-allowance', type: 'text', placeholder: 'read:tasks execute:mcp', autocomplete: 'off' });
  const error = h('p', { class: 'field-error', role: 'alert', hidden: true });
  const form = h('form', { class: 'card', id: 'team-form', novalidate: true },
    h('h2', {}, 'Add a team'),
    h('div', { class: 'field' }, h('label', { for: name.id }, 'Name'), name),
    h('div', { class: 'field' }, h('label', { for: allow.id }, 'Allowance (space-separated scopes)'), allow),
    error,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'button primary' }, 'Add team')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    try {
      await api('POST', '/teams', { name: name.value.trim(), allowance: scopesOf(allow.value) });
      form.reset();
      announce('Team added');
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

function teamCard(t, ui, reload, say) {
  const builtIn = t.name === 'everyone';
  const allow = h('input', { type: 'text', value: t.allowance === null ? '' : t.allowance.join(' '), 'aria-label': `Allowance of ${t.name}`, autocomplete: 'off' });
  const email = h('input', { type: 'email', 'aria-label': `Email to add to ${t.name}`, placeholder: 'ada@example.com', autocomplete: 'off' });
  const error = h('p', { class: 'field-error', role: 'alert', hidden: true });
  const act = (fn) => async (ev) => {
    ev?.preventDefault();
    error.hidden = true;
    try {
      await fn();
      await reload();
    } catch (e) {
      if (!ui.handle(e)) {
        error.textContent = e.message;
        error.hidden = false;
      }
    }
  };
  const saveAllowance = act(async () => {
    const after = await api('PATCH', `/teams/${encodeURIComponent(t.name)}`, { allowance: scopesOf(allow.value) });
    say(`Team ${t.name} now allows ${describe(after)}${narrowedNote(after)}`);
  });
  const addMember = act(async () => {
    const after = await api('PUT', `/teams/${encodeURIComponent(t.name)}/members/${encodeURIComponent(email.value.trim())}`);
    say(`${email.value.trim()} joined ${t.name}${narrowedNote(after)}`);
  });
  const members = builtIn
    ? h('p', { class: 'hint' }, 'Everyone in no team.')
    : h('ul', { class: 'members' }, t.members.map((m) => h('li', { dataset: { member: m } }, m, ' ',
      h('button', { type: 'button', class: 'button secondary', onclick: act(async () => {
        const after = await api('DELETE', `/teams/${encodeURIComponent(t.name)}/members/${encodeURIComponent(m)}`);
        say(`${m} left ${t.name}${narrowedNote(after)}`);
      }) }, `Remove ${m}`))));
  return h('section', { class: 'card team', dataset: { team: t.name } },
    h('h3', {}, t.name),
    h('p', { class: 'allowance' }, 'Allows: ', h('code', {}, describe(t))),
    t.groups.length ? h('p', { class: 'hint' }, 'Identity-provider groups: ', t.groups.join(', ')) : null,
    h('form', { class: 'inline', onsubmit: saveAllowance }, allow, ' ',
      h('button', { type: 'submit', class: 'button secondary' }, 'Save allowance')),
    members,
    builtIn ? null : h('form', { class: 'inline', onsubmit: addMember }, email, ' ',
      h('button', { type: 'submit', class: 'button secondary' }, 'Add member')),
    error,
    builtIn ? null : h('div', { class: 'actions' }, h('button', { type: 'button', class: 'button danger', onclick: act(async () => {
      if (!window.confirm(`Remove the team ${t.name}? Its members fall back to their other teams, or to everyone.`)) return;
      await api('DELETE', `/teams/${encodeURIComponent(t.name)}`);
      say(`Team ${t.name} removed`);
    }) }, 'Remove team')));
}
