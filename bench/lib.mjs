// @ts-check
// Helpers shared by the benchmark cases and the profile: the data set (the
// same keys and values for keystate and its baseline), interleaved
// repetitions, statistics, and a description of the machine.
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));

/** Entries in a full run, and in a `--quick` run (the CI smoke test). */
export const sizes = { full: 1_000_000, quick: 100_000 };

/** `user-000042`: 11 ASCII bytes for every key of a 1M run, as in the issue. */
export function keyOf(/** @type {number} */ i) {
  return `user-${String(i).padStart(6, '0')}`;
}

/** The n keys, built once per process and shared by keystate and the baseline. */
export function makeKeys(/** @type {number} */ n) {
  return Array.from({ length: n }, (_, i) => keyOf(i));
}

/** The small structured value of the object cases. */
export function makeObject(/** @type {number} */ i, /** @type {number} */ round = 0) {
  return { id: i, name: `name-${i}`, score: (i * 7 + round) % 1000, active: (i + round) % 3 !== 0 };
}

/** Seeded PRNG (mulberry32): every run touches the same keys in the same order. */
export function rng(/** @type {number} */ seed) {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seeded permutation of 0..n-1: random access order, and distinct keys when sliced. */
export function permutation(/** @type {number} */ n, seed = 42) {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const r = rng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/** Median of a non-empty list. */
export function median(/** @type {number[]} */ xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The p-quantile (0..1) of an ascending typed array, nearest rank. */
export function quantile(/** @type {Float64Array} */ sorted, /** @type {number} */ p) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

/** A full collection, twice so that weak and finalized objects go too. Needs --expose-gc. */
export function gc() {
  const g = /** @type {(() => void) | undefined} */ (globalThis.gc);
  if (!g) throw new Error('run with node --expose-gc');
  g();
  g();
}

/** Milliseconds since `t0` (performance.now()). */
export const since = (/** @type {number} */ t0) => performance.now() - t0;

/** Time V8's helper threads get to finish a forced GC's work (sweeping, freeing). */
const SETTLE_MS = 25;

/**
 * Runs `a` and `b` alternately (A B A B ...) `reps` times after one warm-up
 * round each, with a GC before every measurement so that one side's garbage
 * is not collected on the other's clock, then a pause of `SETTLE_MS`: the
 * GC's concurrent work would otherwise take the second core from whatever
 * runs next on it (the native backend's export thread: a full export of
 * 1M keys took 8-27 ms straight after `gc()`, 7-13 ms 10-100 ms later,
 * `v8.serialize` the same either way). The machine is shared and noisy:
 * alternating puts both sides under the same noise, the median drops outliers.
 * Each function returns its measurement (a number) or an object of them.
 * @template {number | Record<string, number>} T
 * @param {number} reps @param {() => T | Promise<T>} a @param {() => T | Promise<T>} b
 * @returns {Promise<{ a: T, b: T }>} the medians (field by field for objects)
 */
export async function interleave(reps, a, b) {
  /** @type {T[]} */ const as = [];
  /** @type {T[]} */ const bs = [];
  const settle = () => new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  for (let r = -1; r < reps; r++) {
    gc();
    await settle();
    const x = await a();
    gc();
    await settle();
    const y = await b();
    if (r >= 0) {
      as.push(x);
      bs.push(y);
    }
  }
  return { a: medianOf(as), b: medianOf(bs) };
}

/** @template {number | Record<string, number>} T @param {T[]} xs @returns {T} */
export function medianOf(xs) {
  if (typeof xs[0] === 'number') return /** @type {T} */ (median(/** @type {number[]} */ (xs)));
  /** @type {Record<string, number>} */ const out = {};
  for (const k of Object.keys(xs[0])) out[k] = median(xs.map((x) => /** @type {Record<string, number>} */ (x)[k]));
  return /** @type {T} */ (out);
}

/** Reads a stream to its end; resolves to the bytes and chunks it delivered. */
export async function drain(/** @type {ReadableStream<Uint8Array>} */ stream) {
  const reader = stream.getReader();
  let bytes = 0;
  let chunks = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { bytes, chunks };
    bytes += value.length;
    chunks++;
  }
}

/** What the numbers were measured on (results.json's `env`). */
export function environment(/** @type {boolean} */ quick) {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  const wasm = new URL('../dist/wasm/keystate_wasm_bg.wasm', import.meta.url);
  return {
    node: process.version,
    v8: process.versions.v8,
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    memory: os.totalmem(),
    date: new Date().toISOString(),
    quick,
    keystateVersion: String(pkg.version),
    wasmBytes: statSync(wasm).size,
  };
}

/** The commit measured, with `+dirty` when the tree has changes; '' outside git. */
export function commit() {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'ts', 'crates'], { cwd: root, encoding: 'utf8' }).trim();
    return dirty ? `${head}+dirty` : head;
  } catch {
    return '';
  }
}
