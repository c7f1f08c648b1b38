// @ts-check
// Headless Chromium for the tests: Debian's `chromium` driven by playwright-core
// (never a downloaded browser), a static file server on 127.0.0.1, and a page
// runner that forwards the page's console. Used by scripts/browser-test.mjs (the
// TS suites in a browser) and test/packaging.node.test.ts (bundled pages).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

/** The browser binary: $CHROMIUM_PATH, else Debian's chromium. */
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

// No GPU, no sandbox (root in a container), and nothing that reaches the network by itself.
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** @type {{ ok: true } | { ok: false, reason: string } | undefined} */
let checked;

/**
 * Makes sure Chromium is there: on Debian as root, `apt-get install -y chromium`
 * when it is missing (once per process). Elsewhere, says why the browser tests
 * are skipped.
 * @returns {{ ok: true } | { ok: false, reason: string }}
 */
export function ensureChromium() {
  if (checked) return checked;
  if (fs.existsSync(CHROMIUM)) return (checked = { ok: true });
  const debianRoot = fs.existsSync('/etc/debian_version') && process.getuid?.() === 0 && fs.existsSync('/usr/bin/apt-get');
  if (!debianRoot || process.env.CHROMIUM_PATH) {
    return (checked = { ok: false, reason: `no Chromium at ${CHROMIUM}; the tests install it only on Debian as root (apt-get install chromium). Set CHROMIUM_PATH to a Chromium or Chrome binary to run them` });
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (/** @type {string[]} */ ...args) => {
    console.log(`$ apt-get ${args.join(' ')}`);
    return spawnSync('apt-get', args, { stdio: ['ignore', 'inherit', 'inherit'], env }).status === 0;
  };
  const t0 = performance.now();
  // The package lists may be missing or stale on a fresh machine: update and retry once.
  const installed = apt('install', '-y', 'chromium')
    || (apt('update') && apt('install', '-y', 'chromium'));
  if (!installed || !fs.existsSync(CHROMIUM)) return (checked = { ok: false, reason: 'apt-get install chromium failed' });
  console.log(`installed chromium in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return (checked = { ok: true });
}

/**
 * Launches Chromium with a fresh profile directory (a persistent context, as a
 * user's browser: OPFS and IndexedDB live on disk and survive reloads).
 * `close()` ends the browser and removes the profile.
 */
export async function launch() {
  const { chromium } = await import('playwright-core');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ks-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    timeout: 60_000,
  });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

const TYPES = /** @type {Record<string, string>} */ ({
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.css': 'text/css',
});

/**
 * Serves files on 127.0.0.1 at a free port: `mounts` maps URL prefixes ('/',
 * '/wasm/') to directories, longest prefix first. Unknown paths get a 404 (no
 * HTML fallback), except that `fallback` (a file) answers every miss with 200,
 * as a single-page-app server would. `requests` records every path asked for.
 * @param {Record<string, string>} mounts
 * @param {{ fallback?: string }} [opts]
 */
export async function serve(mounts, opts = {}) {
  const prefixes = Object.keys(mounts).sort((a, b) => b.length - a.length);
  /** @type {string[]} */
  const requests = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const pathname = decodeURIComponent(url.pathname);
    requests.push(pathname);
    const prefix = prefixes.find((p) => pathname.startsWith(p));
    // new URL() has already resolved any '..' in the path.
    let file = prefix === undefined ? undefined : path.join(path.resolve(mounts[prefix]), pathname.slice(prefix.length));
    if (file && fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    if (!file || !fs.existsSync(file)) file = opts.fallback;
    if (!file) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-store' });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    // Chromium keeps sockets open (keep-alive, preconnects): close them, or close() waits minutes.
    close: () => new Promise((resolve) => {
      server.close(() => resolve(undefined));
      server.closeAllConnections();
    }),
  };
}
