#!/usr/bin/env node
// @ts-check
// Runs the TypeScript suites (test/*.test.ts, not *.node.test.ts) in headless
// Chromium against the browser build (TEST_BACKEND=browser: dist/index.browser.js,
// which fetches the wasm from its URL). Each suite is bundled with esbuild
// (platform browser, so the package's `browser` conditions apply), served on
// 127.0.0.1 with dist/wasm/ at /wasm/ beside the bundles (where the browser
// entry's `new URL('./wasm/...', import.meta.url)` points), test/ at /test/ and
// dist/ at /dist/ (fixtures), and run in its own page; uvu's report comes back
// through the console. test/_*.peer.ts are bundled too, for suites to load into
// other pages, frames and workers (`/?suite=_x.peer`, `/_x.peer.js`).
// Expects a built dist/. Usage: node scripts/browser-test.mjs [test/x.test.ts ...]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureChromium, launch, serve } from './browser.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SUITE_TIMEOUT_MS = 180_000;

/** Every suite that can run in a browser, as paths relative to the root. */
export function browserSuites() {
  const dir = path.join(root, 'test');
  return fs.readdirSync(dir, { recursive: true }).map(String)
    .filter((f) => f.endsWith('.test.ts') && !f.endsWith('.node.test.ts')).sort()
    .map((f) => path.join('test', f));
}

/** Helpers that suites load into other pages, frames and workers (test/_*.peer.ts), bundled beside the suites. */
function peers() {
  return fs.readdirSync(path.join(root, 'test')).filter((f) => /^_.*\.peer\.ts$/.test(f)).sort().map((f) => path.join('test', f));
}

/** @type {import('esbuild').Plugin} */
const nodeOnly = {
  name: 'node-only',
  setup(build) {
    // test/_backend.ts loads the Node entry and node:fs only when it runs in Node:
    // leave those dynamic imports unbundled (a static one would fail, as it should).
    build.onResolve({ filter: /^node:/ }, (a) => (a.kind === 'dynamic-import' ? { path: a.path, external: true } : undefined));
    build.onResolve({ filter: /\/dist\/index\.js$/ }, (a) => (a.kind === 'dynamic-import' ? { path: a.path, external: true } : undefined));
  },
};

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>keystate tests</title>
<link rel="icon" href="data:,">
<script>globalThis.TEST_BACKEND = 'browser';</script>
<script type="module">
  const suite = new URLSearchParams(location.search).get('suite');
  import('./' + suite + '.js').catch((e) => console.error('keystate-test: the suite failed to load: ' + (e && e.stack || e)));
</script>
`;

const strip = (/** @type {string} */ s) => s.replace(/\x1b\[[0-9;]*m/g, '');

/**
 * @typedef {{ suite: string, total: number, passed: number, error?: string }} SuiteResult
 * @param {string[]} suites paths relative to the root
 * @param {{ write?: (s: string) => void }} [opts]
 * @returns {Promise<{ skipped: string } | { results: SuiteResult[] }>}
 */
export async function runBrowserSuites(suites, { write = (s) => void process.stdout.write(s) } = {}) {
  const chromium = ensureChromium();
  if ('reason' in chromium) return { skipped: chromium.reason };
  const esbuild = await import('esbuild');
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ks-browser-test-'));
  /** @type {SuiteResult[]} */
  const results = [];
  try {
    const t0 = performance.now();
    await esbuild.build({
      absWorkingDir: root,
      entryPoints: [...suites, ...peers()].map((s) => ({ in: s, out: path.basename(s, '.ts') })),
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      outdir: out,
      sourcemap: 'inline',
      logLevel: 'warning',
      plugins: [nodeOnly],
    });
    fs.writeFileSync(path.join(out, 'index.html'), PAGE);
    write(`bundled ${suites.length} suites for the browser in ${Math.round(performance.now() - t0)} ms\n`);

    const server = await serve({ '/': out, '/wasm/': path.join(root, 'dist', 'wasm'), '/test/': path.join(root, 'test'), '/dist/': path.join(root, 'dist') });
    const browser = await launch();
    try {
      for (const suite of suites) {
        const name = path.basename(suite, '.ts');
        write(`\n$ chromium ${suite} (TEST_BACKEND=browser)\n`);
        results.push(await runSuite(browser.context, `${server.url}/?suite=${encodeURIComponent(name)}`, suite, write));
      }
    } finally {
      await browser.close();
      await server.close();
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
  return { results };
}

/**
 * @param {import('playwright-core').BrowserContext} context
 * @param {string} url @param {string} suite @param {(s: string) => void} write
 * @returns {Promise<SuiteResult>}
 */
async function runSuite(context, url, suite, write) {
  const page = await context.newPage();
  let text = '';
  /** @type {string | undefined} */
  let error;
  try {
    const finished = new Promise((resolve) => {
      page.on('console', (msg) => {
        // uvu writes its report in pieces (a dot per test) with console.log; print
        // those as they are, as its Node output would be, and other messages as lines.
        const s = msg.type() === 'log' ? msg.text() : `[${msg.type()}] ${msg.text()}\n`;
        text += s;
        write(s);
        if (s.includes('Duration:')) resolve(undefined);
        if (s.includes('keystate-test: the suite failed to load')) resolve((error = 'the suite failed to load'));
      });
      page.on('pageerror', (e) => {
        write(`[pageerror] ${e.stack ?? e.message}\n`);
        text += e.message;
      });
      page.on('crash', () => resolve((error = 'the page crashed')));
    });
    await page.goto(url);
    let timer;
    const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve((error = `no report after ${SUITE_TIMEOUT_MS / 1000} s`)), SUITE_TIMEOUT_MS)));
    await Promise.race([finished, timeout]);
    clearTimeout(timer);
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
  } finally {
    await page.close().catch(() => {});
  }
  const plain = strip(text);
  const total = Number(plain.match(/Total:\s+(\d+)/)?.[1] ?? 0);
  const passed = Number(plain.match(/Passed:\s+(\d+)/)?.[1] ?? 0);
  if (!plain.includes('Total:')) error ??= 'no uvu summary';
  if (error) write(`\n${suite}: ${error}\n`);
  return { suite, total, passed, error };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const r = await runBrowserSuites(args.length ? args : browserSuites());
  if ('skipped' in r) {
    console.log(`browser tests skipped: ${r.skipped}`);
  } else {
    const passed = r.results.reduce((n, s) => n + s.passed, 0);
    const failed = r.results.reduce((n, s) => n + (s.total - s.passed) + (s.error && s.total === s.passed ? 1 : 0), 0);
    console.log(`\nbrowser: ${passed} tests passed, ${failed} failed`);
    process.exitCode = failed ? 1 : 0;
  }
}
