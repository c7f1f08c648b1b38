// @ts-check
// Runs all tests: `cargo test --workspace --no-fail-fast` (native, rustup toolchain),
// then every test/**/*.test.ts uvu suite under tsx, one process per file, against
// each Node backend (TEST_BACKEND=wasm, then TEST_BACKEND=native; a TEST_BACKEND set
// in the environment runs that one only), then the suites that are not
// *.node.test.ts in headless Chromium against the browser build
// (scripts/browser-test.mjs; TEST_BACKEND=browser runs only those for `ts`).
// Chromium is installed with apt-get where missing on Debian as root; elsewhere
// the browser part is skipped, counted neither as passed nor as failed.
// Before the TypeScript suites, the servers the S3 and Kafka suites start are
// installed once into .tools/ (scripts/servers.mjs: versitygw built with Go,
// Kafka's jars from Maven Central), and skipped when already there.
// Expects a built dist/.
// Usage: node scripts/test.mjs [rust] [ts] [browser]   (default: all three)
// Ends with exactly one line `N passed, M failed`; exit code 1 on any failure.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { browserSuites, runBrowserSuites } from './browser-test.mjs';
import { ensureKafka, ensureVersitygw } from './servers.mjs';
import { rustupCargo } from './toolchain.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const parts = new Set(process.argv.slice(2).length ? process.argv.slice(2) : ['rust', 'ts', 'browser']);
const backends = process.env.TEST_BACKEND ? [process.env.TEST_BACKEND] : ['wasm', 'native'];
if (backends[0] === 'browser' && parts.delete('ts')) parts.add('browser');
let passed = 0;
let failed = 0;

/**
 * Runs a command, streaming its output through; resolves to its exit code and plain stdout.
 * @param {string} cmd @param {string[]} args @returns {Promise<{ code: number | null, out: string }>}
 */
function tee(cmd, args, env = process.env) {
  console.log(`$ ${env.TEST_BACKEND ? `TEST_BACKEND=${env.TEST_BACKEND} ` : ''}${[cmd, ...args].join(' ')}`);
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, env, stdio: ['inherit', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      out += chunk;
    });
    child.on('error', (e) => console.error(`${cmd}: ${e.message}`));
    child.on('close', (code) => resolve({ code, out: out.replace(/\x1b\[[0-9;]*m/g, '') }));
  });
}

/** Adds one failure when a run failed but reported none (build error, crash, missing summary). */
function count(/** @type {number} */ ok, /** @type {number} */ bad, /** @type {number | null} */ code) {
  passed += ok;
  failed += bad || (code === 0 ? 0 : 1);
}

if (parts.has('rust')) {
  const { code, out } = await tee(rustupCargo(), ['test', '--workspace', '--no-fail-fast']);
  let ok = 0, bad = 0;
  for (const m of out.matchAll(/test result: \w+\. (\d+) passed; (\d+) failed/g)) {
    ok += Number(m[1]);
    bad += Number(m[2]);
  }
  count(ok, bad, code);
}

if (parts.has('ts')) {
  // Installed here, in one place and timed, rather than inside the first suite that needs them.
  for (const [what, ensure] of /** @type {const} */ ([['versitygw', ensureVersitygw], ['kafka', ensureKafka]])) {
    const t0 = performance.now();
    const r = ensure();
    console.log(`${what}: ${r.ok ? 'ready' : r.reason} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }
  const dir = path.join(root, 'test');
  const suites = (fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }) : [])
    .map(String).filter((f) => f.endsWith('.test.ts')).sort();
  // Suites that choose their backends themselves say so (`@keystate-test once`): one run.
  const once = (/** @type {string} */ s) => fs.readFileSync(path.join(dir, s), 'utf8').includes('@keystate-test once');
  const runs = backends.filter((b) => b !== 'browser').flatMap((b, i) => suites.filter((s) => i === 0 || !once(s)).map((s) => [b, s]));
  for (const [backend, suite] of runs) {
    const { code, out } = await tee(process.execPath, ['--import', 'tsx', path.join('test', suite)], { ...process.env, TEST_BACKEND: backend });
    // uvu's summary: "Total: N / Passed: N / Skipped: N / Duration: ..."; no summary means it crashed.
    const total = Number(out.match(/Total:\s+(\d+)/)?.[1] ?? 0);
    const ok = Number(out.match(/Passed:\s+(\d+)/)?.[1] ?? 0);
    count(ok, total - ok, out.includes('Total:') ? code : code || 1);
  }
}

if (parts.has('browser')) {
  const r = await runBrowserSuites(browserSuites());
  if ('skipped' in r) {
    console.log(`\nbrowser tests SKIPPED (counted neither as passed nor as failed): ${r.skipped}`);
  } else {
    for (const s of r.results) count(s.passed, s.total - s.passed, s.error ? 1 : 0);
  }
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
