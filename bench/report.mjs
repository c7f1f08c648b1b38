// @ts-check
// Formatting of benchmark results: table rows for the terminal and
// docs/BENCHMARKS.md.
import { cases } from './catalog.mjs';

/** @typedef {import('./catalog.mjs').Result} Result */
/** @typedef {ReturnType<typeof import('./lib.mjs').environment>} Env */

/** 3 significant digits without exponents (toPrecision writes 1234 as "1.23e+3"). */
const sig = (/** @type {number} */ v) => (Math.abs(v) >= 999.5 ? Math.round(v).toLocaleString('en-US') : v.toPrecision(3));

/** 3 significant digits, with k/M for large numbers (thresholds where rounding would reach the next unit). */
export function num(/** @type {number} */ x) {
  const a = Math.abs(x);
  if (a >= 999_500) return `${sig(x / 1e6)} M`;
  if (a >= 9_999.5) return `${sig(x / 1e3)} k`;
  if (a >= 100) return String(Math.round(x));
  if (a === 0) return '0';
  return x.toPrecision(a >= 1 ? 3 : 2);
}

/** Ratios: "0.512×", "3.10×", "113,997×". */
export function ratio(/** @type {number} */ x) {
  return x >= 100 ? `${Math.round(x).toLocaleString('en-US')}×` : `${x.toPrecision(3)}×`;
}

/** Markdown table text: `<` would open an HTML tag (Map<string, number>). */
const md = (/** @type {string} */ s) => s.replace(/</g, '&lt;').replace(/\|/g, '\\|');

/**
 * The target column of a row: text and whether it is met ('' when the issues set none). A native
 * row takes the case's native target where it has one (which may compare with `wasm`, the wasm row
 * of the same run), else the wasm one.
 */
function target(/** @type {string} */ name, /** @type {string} */ backend, /** @type {Result} */ r, /** @type {Result | undefined} */ wasm) {
  const c = cases.find((x) => x.name === name);
  const t = backend === 'native' && c?.native !== undefined ? c.native : c?.target;
  return t ? { text: t.text, met: t.met(r, wasm) ? 'yes' : 'no' } : { text: '—', met: '' };
}

const COLS = [28, 7, 10, 10, 12, 12, 6];

/** The terminal table's header. */
export function header() {
  const h = ['case', 'backend', 'keystate', 'baseline', 'unit', 'ratio', 'met?'];
  return `${h.map((x, i) => x.padEnd(COLS[i])).join(' ')}\n${'-'.repeat(COLS.reduce((a, b) => a + b + 1, 0))}`;
}

/** One terminal row, printed as soon as a case is done on a backend. */
export function row(/** @type {string} */ name, /** @type {string} */ backend, /** @type {Result} */ r, /** @type {Result | undefined} */ wasm) {
  const cells = [name, backend, num(r.keystate), num(r.baseline), r.unit, ratio(r.ratio), target(name, backend, r, wasm).met || '-'];
  return cells.map((x, i) => x.padEnd(COLS[i])).join(' ');
}

/** @typedef {{ env: Env, results: Record<string, Record<string, Result>> }} Doc */

/** Every (case, backend, result, wasm result) of a run, case by case in catalog order. */
function rowsOf(/** @type {Doc} */ doc) {
  const backends = Object.keys(doc.results);
  return cases.flatMap((c) =>
    backends.filter((b) => doc.results[b][c.name]).map((b) => ({ name: c.name, backend: b, r: doc.results[b][c.name], wasm: doc.results.wasm?.[c.name] })),
  );
}

/** Extra fields of a result, for the "how it is measured" section. */
function extras(/** @type {Result} */ r) {
  const main = new Set(['keystate', 'baseline', 'ratio', 'unit', 'baselineName']);
  return Object.entries(r)
    .filter(([k]) => !main.has(k))
    .map(([k, v]) => `\`${k}\` ${typeof v !== 'number' ? v : Number.isInteger(v) ? v.toLocaleString('en-US') : num(v)}`)
    .join(', ');
}

const gib = (/** @type {number} */ b) => `${(b / 2 ** 30).toFixed(0)} GiB`;

/** A value with its unit, for prose tables: "692 k ops/s", "17.0 MB", "650 ns". */
function withUnit(/** @type {number} */ x, /** @type {string} */ unit) {
  if (unit === 'bytes') return x >= 999_500 ? `${sig(x / 1e6)} MB` : x >= 999.5 ? `${sig(x / 1e3)} kB` : `${Math.round(x)} B`;
  if (unit === 'ms' && x < 0.01) return `${num(x * 1e6)} ns`;
  if (unit === 'ms' && x < 1) return `${num(x * 1e3)} µs`;
  if (unit === 'ns' && x >= 1000) return `${num(x / 1000)} µs`;
  if (unit === 'bytes/entry') return `${num(x)} B/entry`;
  return `${num(x)} ${unit}`;
}

/**
 * The README's table of the main ratios (every case but the memcpy floor), a row per backend.
 * @param {Doc} doc
 */
export function readmeTable(doc) {
  const rows = rowsOf(doc)
    .filter(({ name }) => name !== 'export_vs_memcpy')
    .map(({ name, backend, r, wasm }) => {
      const c = cases.find((x) => x.name === name);
      const t = target(name, backend, r, wasm);
      return `| ${c?.label ?? name} | ${backend} | ${withUnit(r.keystate, r.unit)} | ${withUnit(r.baseline, r.unit)} (${md(r.baselineName)}) | **${ratio(r.ratio)}** | ${t.text === '—' ? '' : `${t.text} ${t.met === 'yes' ? '✓' : '✗'}`} |`;
    });
  return [
    `| 1M keys | backend | keystate | plain JS | ratio | target (issues 4, 9) |`,
    '|---|---|---:|---:|---:|---|',
    ...rows,
  ].join('\n');
}

/**
 * docs/BENCHMARKS.md from a full run.
 * @param {Doc} doc @param {{ commit: string, seconds: number }} meta
 */
export function markdown(doc, meta) {
  const { env } = doc;
  const rows = rowsOf(doc);
  const met = rows.filter((x) => target(x.name, x.backend, x.r, x.wasm).met === 'yes').length;
  const withTarget = rows.filter((x) => target(x.name, x.backend, x.r, x.wasm).met !== '').length;
  const names = [...new Set(rows.map((x) => x.name))];
  const lines = [
    '# Benchmarks',
    '',
    '<!-- Generated by `npm run bench` (bench/run.mjs) from bench/results.json: edits are overwritten. -->',
    '',
    `keystate ${env.keystateVersion}${meta.commit ? ` (${meta.commit})` : ''} against plain JavaScript baselines, measured in the same process on the same data,`,
    `on each Node backend (${Object.keys(doc.results).join(', ')}) in the same run.`,
    `Every ratio reads **higher is better for keystate** (times and bytes: baseline / keystate; rates: keystate / baseline).`,
    `${met} of ${withTarget} targets met.`,
    '',
    `- Command: \`npm run bench\` (${Math.round(meta.seconds)} s); a short run: \`npm run bench -- --quick\``,
    `- Date: ${env.date}`,
    `- Machine: ${env.cpu}, ${env.cores} cores, ${gib(env.memory)}, ${env.os}`,
    `- Node ${env.node}, V8 ${env.v8}; wasm ${env.wasmBytes.toLocaleString('en-US')} bytes`,
    '- Each case runs in its own process per backend (`KEYSTATE_BACKEND`); keystate and its baseline alternate (A B A B ...)',
    '  after a warm-up round, with a full GC before each measurement, and the median is reported. The machine is shared:',
    '  expect noise of 10-20%.',
    '',
    '| case | backend | keystate | baseline | unit | ratio | target | met? | baseline is |',
    '|---|---|---:|---:|---|---:|---|---|---|',
    ...rows.map(({ name, backend, r, wasm }) => {
      const t = target(name, backend, r, wasm);
      return `| ${name} | ${backend} | ${num(r.keystate)} | ${num(r.baseline)} | ${r.unit} | ${ratio(r.ratio)} | ${t.text} | ${t.met} | ${md(r.baselineName)} |`;
    }),
    '',
    'Targets are those of issue 4 (wasm): numbers get/set ≥ 0.5× a Map, objects ≥ 0.25×, a snapshot ≥ 1000× faster than',
    'structuredClone, a full export ≥ 3× v8.serialize, an incremental checkpoint of 1% of the keys ≤ 2% of the bytes',
    'and ≤ 5% of the time of a full one, ≤ 0.4× the Map\'s bytes per entry, write p99 during an export ≤ 1.5× without,',
    'pinned bytes ≤ 1.2× the bytes rewritten under a snapshot; and of issue 9: on wasm an event-loop stall ≤ 10 ms while an',
    'export is drained; on native a full export ≥ 3× v8.serialize, a restore ≥ 8× v8.deserialize, get/set at least the',
    'wasm backend\'s, bytes per entry no more than wasm\'s, and under periodic checkpointing the writer\'s worst gap ≤ 1.2×',
    'and its throughput ≥ 0.9× those with none.',
    '',
    '## How it is measured',
    '',
    ...names.flatMap((n) => {
      const c = cases.find((x) => x.name === n);
      const also = rows.filter((x) => x.name === n).map((x) => `${x.backend}: ${extras(x.r)}`);
      return [`### ${n}`, '', c?.how ?? '', '', ...also.map((a) => `Also measured on ${a}.`), ''];
    }),
  ];
  return `${lines.join('\n')}`;
}

/** The README's side-by-side of the backends: what each costs, from the same run. @param {Doc} doc */
export function backendsTable(doc) {
  const w = doc.results.wasm ?? {};
  const n = doc.results.native ?? {};
  /** @type {[string, string, (r: Result) => string][]} */
  const rows = [
    ['empty_call', 'one empty call into the backend', (r) => withUnit(r.keystate, r.unit)],
    ['value_get_number', 'get a number', (r) => `${withUnit(r.keystate, r.unit)} (${ratio(r.ratio)} a Map)`],
    ['value_set_number', 'set a number', (r) => `${withUnit(r.keystate, r.unit)} (${ratio(r.ratio)} a Map)`],
    ['memory_per_entry_1m', 'memory per entry', (r) => withUnit(r.keystate, r.unit)],
    ['checkpoint_full_1m', 'full checkpoint export', (r) => `${withUnit(r.keystate, r.unit)} (${ratio(r.ratio)} v8.serialize)`],
    ['restore_full_1m', 'restore', (r) => `${withUnit(r.keystate, r.unit)} (${ratio(r.ratio)} v8.deserialize)`],
    ['export_stall_1m', 'longest event-loop stall while an export is drained', (r) => withUnit(r.keystate, r.unit)],
    ['checkpointing_writer_1m', "writer's worst gap under periodic checkpoints, vs none", (r) => `${withUnit(r.keystate, r.unit)} vs ${withUnit(r.baseline, r.unit)}; throughput ${ratio(Number(r.throughput_ratio))}`],
  ];
  const cell = (/** @type {Result | undefined} */ r, /** @type {(r: Result) => string} */ f) => (r ? f(r) : '—');
  return [
    '| 1M keys | wasm | native |',
    '|---|---:|---:|',
    ...rows.filter(([k]) => w[k] || n[k]).map(([k, label, f]) => `| ${label} | ${cell(w[k], f)} | ${cell(n[k], f)} |`),
  ].join('\n');
}
