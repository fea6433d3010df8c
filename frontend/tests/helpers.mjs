// Test support: a real `tessera serve` (with its own managed PostgreSQL) and Debian's
// Chromium driven by playwright-core. No browser is ever downloaded.

import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const TARGET_DIR = process.env.CARGO_TARGET_DIR ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR) : path.join(ROOT, 'target');
const BIN = path.join(TARGET_DIR, 'debug', 'tessera');
export const SCREENSHOTS = path.join(ROOT, 'test-output', 'screenshots');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const PASSWORD = 'correct horse battery staple';

/** A free loopback port (the OS picks it; closed again before it is used). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const EVERYTHING = path.join(ROOT, 'frontend/node_modules/@modelcontextprotocol/server-everything/dist/index.js');
const PRELOAD = path.join(ROOT, 'frontend/tests/loopback-preload.cjs');

const NOTES = path.join(ROOT, 'interop/upstreams/notes_server.py');
/** The interop venv's Python (made by `scripts/install-deps test`). */
export const PYTHON = path.join(TARGET_DIR, 'interop-venv/bin/python');

/**
 * Spawns a test upstream and resolves to its child process once `ready(log)` (given the tail
 * of its stderr) resolves true; fails with that tail if it exits first or takes too long.
 */
export async function startUpstreamProcess(name, command, args, { env = process.env, ready, timeoutMs = 30_000 }) {
  const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => { log = (log + d).slice(-5000); });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await ready(log).catch(() => false)) return child;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${name} did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * `@modelcontextprotocol/server-everything` in Streamable HTTP mode on a free loopback port;
 * resolves once it listens to `{ child, port, url }` (`url` is its MCP endpoint).
 */
export async function startEverything() {
  const port = await freePort();
  const child = await startUpstreamProcess('server-everything', process.execPath, [EVERYTHING, 'streamableHttp'], {
    env: { ...process.env, PORT: String(port), NODE_OPTIONS: `--require ${PRELOAD}` },
    ready: async (log) => log.includes('listening'),
    timeoutMs: 20_000,
  });
  return { child, port, url: `http://127.0.0.1:${port}/mcp` };
}

/**
 * The small FastMCP upstream (interop/upstreams/notes_server.py, which records the headers it
 * got at `/seen-headers`) on a free loopback port; resolves to `{ child, port }`.
 */
export async function startNotes() {
  const port = await freePort();
  const child = await startUpstreamProcess('notes server', PYTHON, [NOTES, String(port)], {
    ready: async () => (await fetch(`http://127.0.0.1:${port}/seen-headers`)).ok,
  });
  return { child, port };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// A timer that does not keep the test process alive once everything else is done.
const unrefSleep = (ms) => new Promise((r) => setTimeout(r, ms).unref());

/** Starts `tessera serve` on a free port with a fresh data dir (and `extraEnv`); resolves once /ready answers. */
export async function startTessera(extraEnv = {}) {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-ui-'));
  // A caller that must know the address first (to register it elsewhere) passes TESSERA_BIND.
  const port = extraEnv.TESSERA_BIND ? Number(extraEnv.TESSERA_BIND.split(':').pop()) : await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = { ...process.env, TESSERA_DATA_DIR: dataDir, TESSERA_BIND: `127.0.0.1:${port}`, TESSERA_PUBLIC_URL: url, RUST_LOG: process.env.RUST_LOG || 'warn', ...extraEnv };
  delete env.DATABASE_URL;
  const child = spawn(BIN, ['serve'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => { log = (log + d).slice(-20_000); });
  let exited = null;
  child.on('exit', (code, signal) => { exited = { code, signal }; });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) throw new Error(`tessera serve exited early (${JSON.stringify(exited)}):\n${log}`);
    try {
      const res = await fetch(`${url}/ready`);
      if (res.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      throw new Error(`tessera serve not ready within 60 s:\n${log}`);
    }
    await sleep(200);
  }
  return {
    url,
    env,
    dataDir,
    log: () => log,
    /** `tessera user add` against the running cluster (`{ admin: true }`: an administrator). */
    addUser(email, password = PASSWORD, { admin = false } = {}) {
      const args = ['user', 'add', '--email', email, '--password-stdin', ...(admin ? ['--admin'] : [])];
      const r = spawnSync(BIN, args, { env, input: `${password}\n`, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`user add failed: ${r.stderr}`);
      return email;
    },
    /** Any `tessera` CLI command against the running cluster; returns { status, stdout, stderr }. */
    cli(args) {
      return spawnSync(BIN, args, { env, encoding: 'utf8' });
    },
    /** SIGTERM, then wait for the server (and its PostgreSQL) to stop. */
    async stop() {
      if (!exited) {
        const done = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([done, unrefSleep(20_000)]);
        if (!exited) child.kill('SIGKILL');
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Serves `handler` on `port` of both loopback addresses (`localhost` may resolve to either),
 * as the stand-ins for another site do; resolves to a `stop()`.
 */
export async function listenOnLocalhost(port, handler) {
  const listeners = [];
  for (const host of ['127.0.0.1', '::1']) {
    const s = http.createServer(handler);
    const ok = await new Promise((resolve) => {
      s.once('error', () => resolve(false));
      s.listen(port, host, () => resolve(true));
    });
    if (ok) listeners.push(s);
  }
  return async () => {
    await Promise.all(listeners.map((s) => new Promise((r) => { s.closeAllConnections(); s.close(r); })));
  };
}

/** Debian's Chromium, headless; Playwright gives each launch a fresh temporary profile dir. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/**
 * A fresh browser context (own cookies) and page on `server`, recording every request the
 * page makes in `requests` (to check that nothing leaves the origin).
 */
export async function openPage(browser, server, { width = 1280, height = 900, colorScheme = 'light' } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, baseURL: server.url, colorScheme });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const requests = [];
  const problems = [];
  context.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // The 401 of `/auth/me` before signing in is expected; anything else is a problem.
    if (m.type() === 'error' && !/status of 401/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  return { context, page, requests, problems };
}

/** Signs in through the form and waits for the token list. */
export async function signIn(page, email, password = PASSWORD) {
  await page.goto('/');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Your tokens' }).waitFor();
}

/** Fills and submits the create form; returns the secret shown in the dialog. */
export async function createToken(page, { name, scopes = ['read:tasks', 'execute:mcp'], days } = {}) {
  await page.goto('/#/tokens/new');
  await page.getByLabel('Name', { exact: true }).fill(name);
  for (const s of scopes) await page.locator(`input[type=checkbox][value="${s}"]`).check();
  if (days !== undefined) await page.getByLabel('Expires in (days)').fill(String(days));
  await page.getByRole('button', { name: 'Create token' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  return { dialog, secret: await page.locator('#secret').inputValue() };
}

export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** `POST /api/v2/tokens/validate` with `secret` as bearer: `{status, body}`. */
export async function validate(server, secret) {
  const res = await fetch(`${server.url}/api/v2/tokens/validate`, { method: 'POST', headers: { Authorization: `Bearer ${secret}` } });
  return { status: res.status, body: await res.json() };
}

/** One MCP JSON-RPC call with `secret`: `{status, body}`. */
export async function mcpCall(server, secret, method, params = {}, id = 1) {
  const res = await fetch(`${server.url}/mcp`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${secret}`,
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      'MCP-Protocol-Version': '2025-06-18',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id, method, params }),
  });
  const text = await res.text();
  let body = text;
  try { body = JSON.parse(text); } catch { /* SSE or plain text */ }
  return { status: res.status, body };
}

export const uniqueEmail = (tag) => `${tag}-${Date.now()}-${Math.random().toString(36).slice(2, 7)}@example.com`;

/** Signs in over the REST API (as the UI does) for fast test setup: `call(method, path, body)`. */
export async function apiSession(server, email, password = PASSWORD) {
  const res = await fetch(`${server.url}/api/v2/auth/login`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ email, password }),
  });
  if (!res.ok) throw new Error(`login failed: ${res.status} ${await res.text()}`);
  const { csrf_token: csrf } = await res.json();
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  return async function call(method, path, body) {
    const headers = { Cookie: cookie, 'X-CSRF-Token': csrf };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch(`${server.url}/api/v2${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
}
