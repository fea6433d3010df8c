// How scopes are presented: labels and hints per resource, and the layout of the scope
// picker. Which scopes exist comes from the server (`grantable_scopes` of
// `GET /api/v2/limits`), and so do a token's effective scopes (`effective_scopes`).

/** Labels and hints of the resources with a read/write pair, by resource. */
const GROUP_TEXT = {
  tasks: { label: 'Tasks', hint: 'List and read tasks / create, update, complete and delete them.' },
  context: { label: 'Context', hint: 'Read / write shared context entries.' },
  agents: { label: 'Agents', hint: 'List / register and update agents.' },
  tokens: { label: 'Tokens (API)', hint: 'Use this token with the REST API to list / mint, rotate and revoke tokens.' },
};

/** Labels and hints of stand-alone scopes, by scope. */
const SINGLE_TEXT = {
  'execute:mcp': { label: 'MCP execution', hint: 'Call MCP tools (tools/call). Without it a token can only list.' },
};

/** `tasks` → `Tasks`: the label of a resource the UI has no text for. */
const titleCase = (s) => s.charAt(0).toUpperCase() + s.slice(1);

/**
 * Lays out the grantable scopes for the picker: `{groups, singles}`. A resource granted
 * both as `read:X` and `write:X` becomes a group `{resource, label, hint, read, write}`
 * (the picker ticks read when write is ticked); every other scope a single
 * `{scope, label, hint}`. Groups come first, each list in the server's order.
 */
export function scopeLayout(grantable) {
  const all = new Set(grantable);
  const groups = [];
  const singles = [];
  for (const scope of grantable) {
    const [action, resource] = scope.split(':');
    const paired = resource && all.has(`read:${resource}`) && all.has(`write:${resource}`);
    if (paired && action === 'read') {
      const text = GROUP_TEXT[resource] ?? { label: titleCase(resource), hint: '' };
      groups.push({ resource, ...text, read: scope, write: `write:${resource}` });
    } else if (!(paired && action === 'write')) {
      singles.push({ scope, ...(SINGLE_TEXT[scope] ?? { label: scope, hint: '' }) });
    }
  }
  return { groups, singles };
}

/** What each built-in scope lets a grant do, one line each, for the consent page. */
const BUILTIN_SCOPE_TEXT = {
  'read:tasks': 'list and read tasks',
  'write:tasks': 'create, update, complete and delete tasks',
  'read:context': 'read shared context entries',
  'write:context': 'write shared context entries',
  'read:agents': 'list agents',
  'write:agents': 'register and update agents',
  'read:tokens': 'list your tokens through the REST API',
  'write:tokens': 'mint, rotate and revoke your tokens through the REST API',
  'execute:mcp': 'call tools (without it, tools can only be listed)',
};

/** The description of a built-in scope (`''` for one the UI has no text for). */
export function builtinScopeText(scope) {
  return BUILTIN_SCOPE_TEXT[scope] ?? '';
}
