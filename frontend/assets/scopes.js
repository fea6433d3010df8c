// The scope catalog and its inheritance rules, as in tessera-core (`crates/core/src/scope.rs`).

/** Groups shown in the forms, in order. */
export const GROUPS = [
  { resource: 'tasks', label: 'Tasks', read: 'read:tasks', write: 'write:tasks', hint: 'List and read tasks / create, update, complete and delete them.' },
  { resource: 'context', label: 'Context', read: 'read:context', write: 'write:context', hint: 'Read / write shared context entries.' },
  { resource: 'agents', label: 'Agents', read: 'read:agents', write: 'write:agents', hint: 'List / register and update agents.' },
  { resource: 'tokens', label: 'Tokens (API)', read: 'read:tokens', write: 'write:tokens', hint: 'Use this token with the REST API to list / mint, rotate and revoke tokens.' },
];

/** Stand-alone scopes. */
export const SINGLES = [
  { scope: 'execute:mcp', label: 'MCP execution', hint: 'Call MCP tools (tools/call). Without it a token can only list.' },
];

export const CATALOG = [...GROUPS.flatMap((g) => [g.read, g.write]), ...SINGLES.map((s) => s.scope)];

/** `write:X` ⇒ `read:X`, plus the derived `mcp:*` scopes; sorted. */
export function effectiveScopes(granted) {
  const out = new Set(['mcp:access']);
  for (const s of granted) {
    if (s === 'mcp:admin') {
      for (const c of CATALOG) out.add(c);
      ['mcp:read', 'mcp:write', 'mcp:execute', 'mcp:admin'].forEach((x) => out.add(x));
      continue;
    }
    out.add(s);
    const [action, resource] = s.split(':');
    if (action === 'write') {
      out.add(`read:${resource}`);
      out.add('mcp:write');
      out.add('mcp:read');
    } else if (action === 'read') {
      out.add('mcp:read');
    } else if (s === 'execute:mcp') {
      out.add('mcp:execute');
    }
  }
  return [...out].sort();
}

/** Drops `read:X` when `write:X` is present: what the form sends. */
export function minimalScopes(selected) {
  const set = new Set(selected);
  return [...set].filter((s) => !(s.startsWith('read:') && set.has(`write:${s.slice(5)}`)));
}
