// @ts-check
// Runs every benchmark case, each in its own child process (bench/case.mjs),
// prints a table as it goes and writes the results.
//
//   npm run bench                 1M entries: bench/results.json, docs/BENCHMARKS.md and the
//                                 table between the bench markers in README.md
//   npm run bench -- --quick      100k entries, fewer repetitions: bench/results-quick.json only
//   --out DIR                     write the files into DIR instead (the smoke test's temp dir)
//   --only a,b                    just these cases; writes nothing unless --out is given
//   --backends wasm,native        the backends to run every case on (default both; native only
//                                 where its addon loads). Rows are per backend, same run.
//
// Exit code 1 if a case fails; then nothing is written, so a good results.json
// is never replaced by a partial one.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cases, caseNamed } from './catalog.mjs';
import { commit, environment, root } from './lib.mjs';
import { backendsTable, header, markdown, readmeTable, row } from './report.mjs';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    only: { type: 'string' },
    backends: { type: 'string', default: 'wasm,native' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log('usage: node bench/run.mjs [--quick] [--out DIR] [--only case,case] [--backends wasm,native]');
  process.exit(0);
}
const quick = values.quick ?? false;
const names = values.only ? values.only.split(',').map((n) => caseNamed(n.trim()).name) : cases.map((c) => c.name);
const out = values.out ? path.resolve(values.out) : null;

/** True when keystate's Node entry can load `backend` here. */
function loads(/** @type {string} */ backend) {
  const probe = `import('./dist/index.js').then((k) => k.StateStore.create({ backend: '${backend}' })).then(() => process.exit(0), () => process.exit(1))`;
  return spawnSync(process.execPath, ['--input-type=module', '-e', probe], { cwd: root }).status === 0;
}

const wanted = /** @type {string[]} */ (values.backends ?? '').split(',').map((b) => b.trim()).filter(Boolean);
const backends = wanted.filter((b) => {
  if (b !== 'wasm' && b !== 'native') throw new Error(`unknown backend ${b}: wasm or native`);
  if (loads(b)) return true;
  console.log(`the ${b} backend does not load here: its rows are left out`);
  return false;
});

/**
 * Runs one case on one backend in a child; resolves to its parsed result. stderr passes through.
 * @param {string} name @param {string} backend @returns {Promise<Record<string, unknown>>}
 */
function runCase(name, backend) {
  const args = ['--expose-gc', path.join(root, 'bench', 'case.mjs'), name, ...(quick ? ['--quick'] : [])];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: root,
      env: { ...process.env, KEYSTATE_BACKEND: backend },
      stdio: ['ignore', 'pipe', 'inherit'],
      timeout: (quick ? 3 : 20) * 60_000,
    });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0) return reject(new Error(`${name}: exit ${code ?? signal}`));
      try {
        resolve(JSON.parse(stdout.trim().split('\n').pop() ?? ''));
      } catch {
        reject(new Error(`${name}: no JSON result in ${JSON.stringify(stdout.slice(-200))}`));
      }
    });
  });
}

/** The contract of results.json: numeric, finite keystate/baseline/ratio, unit and baseline named. */
function check(/** @type {string} */ name, /** @type {Record<string, unknown>} */ r) {
  for (const k of ['keystate', 'baseline', 'ratio']) {
    if (typeof r[k] !== 'number' || !Number.isFinite(r[k])) throw new Error(`${name}: ${k} is ${r[k]}, not a finite number`);
  }
  for (const k of ['unit', 'baselineName']) {
    if (typeof r[k] !== 'string' || !r[k]) throw new Error(`${name}: ${k} is missing`);
  }
  return /** @type {import('./catalog.mjs').Result} */ (r);
}

const started = performance.now();
console.log(`keystate benchmarks${quick ? ' (quick)' : ''}: ${names.length} cases on ${backends.join(' and ')}, one process each\n`);
console.log(header());
/** @type {Record<string, Record<string, import('./catalog.mjs').Result>>} */ const results = Object.fromEntries(backends.map((b) => [b, {}]));
const failed = [];
for (const name of names) {
  for (const backend of backends) {
    try {
      const r = await runCase(name, backend);
      if (typeof r.skipped === 'string') {
        console.log(`${name.padEnd(28)} ${backend.padEnd(7)} skipped: ${r.skipped}`);
        continue;
      }
      results[backend][name] = check(name, r);
      console.log(row(name, backend, results[backend][name], results.wasm?.[name]));
    } catch (e) {
      failed.push(`${name} (${backend})`);
      console.log(`${name.padEnd(28)} ${backend.padEnd(7)} FAILED: ${/** @type {Error} */ (e).message}`);
    }
  }
}
const seconds = (performance.now() - started) / 1000;
const rows = backends.reduce((n, b) => n + Object.keys(results[b]).length, 0);
console.log(`\n${rows} rows in ${seconds.toFixed(0)} s${failed.length ? `; FAILED: ${failed.join(', ')}` : ''}`);
if (failed.length) process.exit(1);

/** Writes through a temporary file and a rename: a reader never sees half a file. */
function write(/** @type {string} */ file, /** @type {string} */ text) {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
  console.log(`wrote ${path.relative(process.cwd(), file) || file}`);
}

if (values.only && !out) process.exit(0);
const doc = { env: environment(quick), results };
const json = `${JSON.stringify(doc, null, 2)}\n`;
if (quick) {
  write(path.join(out ?? path.join(root, 'bench'), 'results-quick.json'), json);
} else {
  write(path.join(out ?? path.join(root, 'bench'), 'results.json'), json);
  write(path.join(out ?? path.join(root, 'docs'), 'BENCHMARKS.md'), markdown(doc, { commit: commit(), seconds }));
  if (!out) updateReadme(readmeTable(doc), backendsTable(doc));
}

/** Replaces the README's tables between their markers, so the numbers there are always the committed run's. */
function updateReadme(/** @type {string} */ table, /** @type {string} */ backends) {
  const file = path.join(root, 'README.md');
  let text = readFileSync(file, 'utf8');
  for (const [name, t] of [['bench', table], ['backends', backends]]) {
    const re = new RegExp(`(<!-- ${name}:start[^>]*-->\\n)[\\s\\S]*?(<!-- ${name}:end -->)`);
    if (!re.test(text)) console.log(`README.md has no ${name} markers: that table is not updated`);
    else text = text.replace(re, (_, a, b) => `${a}${t}\n${b}`);
  }
  write(file, text);
}
