// Ready-to-paste client configurations for a freshly shown secret.

const PROTOCOL = '2025-06-18';

/** Granted scopes that only the built-in server at `/mcp` serves. */
const BUILT_IN_SCOPE = /^(read|write):(tasks|context|agents|tokens)$|^mcp:admin$/;

/**
 * The MCP endpoints a token reaches, each `{key, url}`: every gateway server (`…/mcp/NAME`)
 * and direct server in its audience, and the built-in `…/mcp` only when the token holds a
 * built-in scope (or reaches nothing else). A token for one gateway server so never points
 * a client at the built-in server.
 */
export function mcpEndpoints(token) {
  const auds = (Array.isArray(token?.audience) ? token.audience : []).filter((a) => /^https?:\/\//.test(a));
  const scopes = Array.isArray(token?.scopes) ? token.scopes : [];
  // The built-in resource is the one every gateway audience extends with `/NAME`.
  const builtIn = auds.find((a) => auds.some((b) => b.startsWith(`${a}/`))) ??
    auds.find((a) => a === `${globalThis.location?.origin}/mcp`) ?? null;
  const others = auds.filter((a) => a !== builtIn).map((url) => {
    const gateway = builtIn && url.startsWith(`${builtIn}/`);
    const name = gateway ? url.slice(builtIn.length + 1) : new URL(url).hostname.split('.')[0];
    return { key: `tessera-${name}`, url };
  });
  if (others.length === 0 || scopes.some((s) => BUILT_IN_SCOPE.test(s))) {
    others.unshift({ key: 'tessera', url: builtIn ?? `${globalThis.location?.origin}/mcp` });
  }
  return others;
}

const shellQuote = (s) => `'${String(s).replaceAll("'", "'\\''")}'`;

/** The tabs of the secret dialog: `{id, label, file, text}`, each with one block per endpoint. */
export function clientConfigs(endpoints, secret, name = 'tessera') {
  const auth = `Bearer ${secret}`;
  const each = (f) => Object.fromEntries(endpoints.map((e) => [e.key, f(e.url)]));
  const cursor = { mcpServers: each((url) => ({ url, headers: { Authorization: auth } })) };
  const vscode = { servers: each((url) => ({ type: 'http', url, headers: { Authorization: auth } })) };
  const init = {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'curl', version: '1.0.0' } },
  };
  const claude = ({ key, url }) =>
    `claude mcp add --transport http ${key} ${shellQuote(url)} \\\n  --header ${shellQuote(`Authorization: ${auth}`)}\n`;
  const curl = ({ url }) =>
    `curl -sS -X POST ${shellQuote(url)} \\\n` +
    `  -H ${shellQuote(`Authorization: ${auth}`)} \\\n` +
    `  -H 'Content-Type: application/json' \\\n` +
    `  -H 'Accept: application/json, text/event-stream' \\\n` +
    `  -H 'MCP-Protocol-Version: ${PROTOCOL}' \\\n` +
    `  -d ${shellQuote(JSON.stringify(init))}\n`;
  return [
    {
      id: 'cursor',
      label: 'Cursor',
      file: '.cursor/mcp.json',
      text: `${JSON.stringify(cursor, null, 2)}\n`,
    },
    {
      id: 'vscode',
      label: 'VS Code',
      file: '.vscode/mcp.json',
      text: `${JSON.stringify(vscode, null, 2)}\n`,
    },
    {
      id: 'claude',
      label: 'Claude Code',
      file: 'shell',
      text: endpoints.map(claude).join('\n'),
    },
    {
      id: 'curl',
      label: 'curl',
      file: 'shell: MCP initialize',
      text: endpoints.map(curl).join('\n'),
    },
  ].map((c) => ({ ...c, name }));
}
