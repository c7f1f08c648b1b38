// @ts-check
// Write latency while a checkpoint is exported: the export reads a snapshot,
// so writes under it copy what they overwrite (copy-on-write). Measured per
// write with process.hrtime.bigint() around one `set`.
import { interleave, quantile } from '../lib.mjs';
import { filled } from './data.mjs';

/** @typedef {import('./data.mjs').Ctx} Ctx */

/** Writes between two export chunks: 64 KiB of export per 64 writes keeps several exports running per repetition. */
const EVERY = 64;

/**
 * A repetition writes `w` random existing keys (the same keys for both
 * modes). With `exporting`, a full checkpoint is open the whole time: every
 * EVERY writes one chunk of it is read, and when it ends it is confirmed and
 * the next one starts, so every write happens under a snapshot. Without, the
 * loop awaits a resolved promise at the same places, so both modes yield alike.
 * @param {Awaited<ReturnType<typeof filled>>} d @param {number} w @param {number} at @param {boolean} exporting
 */
async function writes(d, w, at, exporting) {
  const { keys, order, store, v, map } = d;
  const n = map.size;
  const lat = new Float64Array(w);
  let exports = 0;
  let cp = exporting ? store.checkpoint({ incremental: false }) : null;
  let reader = cp?.stream().getReader() ?? null;
  for (let j = 0; j < w; j++) {
    const key = keys[order[(at + j) % n]];
    const t0 = process.hrtime.bigint();
    v.set(key, j);
    lat[j] = Number(process.hrtime.bigint() - t0);
    if ((j + 1) % EVERY !== 0) continue;
    if (reader === null || cp === null) {
      await Promise.resolve();
    } else if ((await reader.read()).done) {
      cp.confirm();
      exports++;
      cp = store.checkpoint({ incremental: false });
      reader = cp.stream().getReader();
    }
  }
  await reader?.cancel(); // aborts the unfinished export
  lat.sort();
  return { p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), p999: quantile(lat, 0.999), max: lat[w - 1], exports };
}

export async function write_p99_during_export(/** @type {Ctx} */ { n, reps }) {
  const d = await filled(n, 'number');
  const w = Math.max(20_000, Math.floor(n / 5));
  let ra = 0;
  let rb = 0;
  // A: during an export, B: none; the same keys in repetition r of both.
  const r = await interleave(
    reps,
    () => writes(d, w, (ra++ * w) % n, true),
    () => writes(d, w, (rb++ * w) % n, false),
  );
  return {
    keystate: r.a.p99,
    baseline: r.b.p99,
    ratio: r.b.p99 / r.a.p99,
    unit: 'ns',
    baselineName: 'the same writes, no export running',
    writes: w,
    writes_per_chunk: EVERY,
    exports_per_rep: r.a.exports,
    during_p50_ns: r.a.p50,
    during_p999_ns: r.a.p999,
    during_max_ns: r.a.max,
    none_p50_ns: r.b.p50,
    none_p999_ns: r.b.p999,
    none_max_ns: r.b.max,
  };
}
