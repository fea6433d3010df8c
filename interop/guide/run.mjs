#!/usr/bin/env node
// Runs one of the token guide's examples exactly as the guide prints them (the files next to
// this one are copied from it), against a Tessera server: only the guide's base URL
// (`http://localhost:8000`) and token placeholders are substituted.
//
//   TESSERA_TOKEN=<secret> node interop/guide/run.mjs curl|python|javascript <base url>
//
// Prints the JSON the example received on stdout and exits 0; exits 1 with the reason on
// stderr otherwise. `python` runs the interop venv's Python (`scripts/install-deps test`; set
// PYTHON to use another one with httpx); the guide's snippet uses top-level `await` and
// prints a Python dict, so a small harness allows the one and converts the other to JSON.
// The JavaScript example only defines `mcpClient`; the harness appends the call a user would
// write: `await mcpClient.initialize()`.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const GUIDE_BASE = 'http://localhost:8000';
const TOKEN_PLACEHOLDERS = ['YOUR_JWT_TOKEN_HERE', 'YOUR_TOKEN'];

const PYTHON_HARNESS = `
import ast, asyncio, contextlib, io, json, sys
code = compile(sys.stdin.read(), "client.py", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
printed = io.StringIO()
async def main():
    with contextlib.redirect_stdout(printed):
        pending = eval(code, {"__name__": "__main__"})
        if pending is not None:
            await pending
asyncio.run(main())
print(json.dumps(ast.literal_eval(printed.getvalue().strip())))
`;

const EXAMPLES = {
  curl: { file: 'test-auth.sh', run: (source) => spawnSync('bash', ['-e'], { input: source, encoding: 'utf8' }) },
  python: {
    file: 'client.py',
    run: (source) => {
      const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR) : path.join(ROOT, 'target');
      const python = process.env.PYTHON || path.join(targetDir, 'interop-venv/bin/python');
      return spawnSync(python, ['-c', PYTHON_HARNESS], { input: source, encoding: 'utf8' });
    },
  },
  javascript: {
    file: 'client.ts',
    run: (source) => spawnSync(process.execPath, ['--input-type=module'], {
      input: `${source}\nconsole.log(JSON.stringify(await mcpClient.initialize()));\n`,
      encoding: 'utf8',
    }),
  },
};

function fail(message) {
  process.stderr.write(`run.mjs: ${message}\n`);
  process.exit(1);
}

/** The example's text with the guide's base URL and token placeholder replaced. */
function substitute(source, base, token) {
  if (!source.includes(GUIDE_BASE)) fail(`the example no longer contains ${GUIDE_BASE}`);
  const placeholder = TOKEN_PLACEHOLDERS.find((p) => source.includes(p));
  if (!placeholder) fail(`the example contains none of ${TOKEN_PLACEHOLDERS.join(', ')}`);
  return source.replaceAll(GUIDE_BASE, base.replace(/\/+$/, '')).replaceAll(placeholder, token);
}

const [kind, base] = process.argv.slice(2);
const example = EXAMPLES[kind];
const token = process.env.TESSERA_TOKEN;
if (!example || !base || !token) fail('usage: TESSERA_TOKEN=<secret> node run.mjs curl|python|javascript <base url>');

const source = substitute(readFileSync(path.join(HERE, example.file), 'utf8'), base, token);
const result = example.run(source);
if (result.error) fail(`${kind}: ${result.error.message}`);
if (result.status !== 0) fail(`${kind} exited with ${result.status}: ${result.stderr}`);
let answer;
try {
  answer = JSON.parse(result.stdout);
} catch {
  fail(`${kind} printed no JSON: ${result.stdout}`);
}
process.stdout.write(`${JSON.stringify(answer)}\n`);
