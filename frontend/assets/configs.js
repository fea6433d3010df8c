// Ready-to-paste client configurations for a freshly shown secret.

const PROTOCOL = '2025-06-18';

/** The MCP endpoint a token is for: its audience, else this origin's `/mcp`. */
export function mcpUrl(token) {
  const aud = Array.isArray(token?.audience) ? token.audience.find((a) => /^https?:\/\//.test(a)) : null;
  return aud || `${window.location.origin}/mcp`;
}

const shellQuote = (s) => `'${String(s).replaceAll("'", "'\\''")}'`;

/** The tabs of the secret dialog: `{id, label, file, text}`. */
export function clientConfigs(url, secret, name = 'tessera') {
  const auth = `Bearer ${secret}`;
  const key = 'tessera';
  const cursor = { mcpServers: { [key]: { url, headers: { Authorization: auth } } } };
  const vscode = { servers: { [key]: { type: 'http', url, headers: { Authorization: auth } } } };
  const init = {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'curl', version: '1.0.0' } },
  };
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
      text: `claude mcp add --transport http ${key} ${shellQuote(url)} \\\n  --header ${shellQuote(`Authorization: ${auth}`)}\n`,
    },
    {
      id: 'curl',
      label: 'curl',
      file: 'shell: MCP initialize',
      text:
        `curl -sS -X POST ${shellQuote(url)} \\\n` +
        `  -H ${shellQuote(`Authorization: ${auth}`)} \\\n` +
        `  -H 'Content-Type: application/json' \\\n` +
        `  -H 'Accept: application/json, text/event-stream' \\\n` +
        `  -H 'MCP-Protocol-Version: ${PROTOCOL}' \\\n` +
        `  -d ${shellQuote(JSON.stringify(init))}\n`,
    },
  ].map((c) => ({ ...c, name }));
}
