// @ts-check
// ValueState setMany/getMany (batches of BATCH keys in one call into the
// core) against the same Map<string, number> loop as the single-key cases.
// Optional: the batch methods are newer than the rest of the API; when the
// built package lacks them the case reports itself skipped.
import { ValueState } from '../../dist/index.js';
import { interleave, since } from '../lib.mjs';
import { filled, rateResult, same } from './data.mjs';

/** @typedef {import('./data.mjs').Ctx} Ctx */

/** Keys per call: large enough to amortize the call, small enough for a cache-resident scratch buffer. */
const BATCH = 1000;

/** Checked before the data is built: a skipped case costs nothing. */
function lacksBatch() {
  const p = /** @type {any} */ (ValueState.prototype);
  return typeof p.setMany !== 'function' || typeof p.getMany !== 'function'
    ? { skipped: 'ValueState has no setMany/getMany in this build' }
    : null;
}

export async function value_set_number_batch(/** @type {Ctx} */ { n, reps }) {
  const skip = lacksBatch();
  if (skip) return skip;
  const { keys, order, v, map } = await filled(n, 'number');
  // One reused array of reused pairs: the batch costs what filling it costs, nothing prebuilt.
  /** @type {[string, number][]} */ const pairs = Array.from({ length: BATCH }, () => ['', 0]);
  let ra = 0;
  let rb = 0;
  const ms = await interleave(
    reps,
    () => {
      const t = performance.now();
      const r = ++ra;
      for (let j = 0; j < n; j += BATCH) {
        const m = Math.min(BATCH, n - j);
        for (let k = 0; k < m; k++) {
          const i = order[j + k];
          pairs[k][0] = keys[i];
          pairs[k][1] = i + r;
        }
        /** @type {any} */ (v).setMany(m === BATCH ? pairs : pairs.slice(0, m));
      }
      return since(t);
    },
    () => {
      const t = performance.now();
      const r = ++rb;
      for (let j = 0; j < n; j++) map.set(keys[order[j]], order[j] + r);
      return since(t);
    },
  );
  same(v.get(keys[n - 1]), map.get(keys[n - 1]), 'last value written');
  return { ...rateResult(n, ms, 'ops/s', 'Map<string, number>.set'), batch: BATCH };
}

export async function value_get_number_batch(/** @type {Ctx} */ { n, reps }) {
  const skip = lacksBatch();
  if (skip) return skip;
  const { keys, order, v, map } = await filled(n, 'number');
  /** @type {string[]} */ const batch = new Array(BATCH).fill('');
  let sa = 0;
  let sb = 0;
  const ms = await interleave(
    reps,
    () => {
      const t = performance.now();
      let sum = 0;
      for (let j = 0; j < n; j += BATCH) {
        const m = Math.min(BATCH, n - j);
        for (let k = 0; k < m; k++) batch[k] = keys[order[j + k]];
        /** @type {number[]} */
        const got = /** @type {any} */ (v).getMany(m === BATCH ? batch : batch.slice(0, m));
        for (let k = 0; k < m; k++) sum += got[k];
      }
      const dt = since(t);
      sa = sum;
      return dt;
    },
    () => {
      const t = performance.now();
      let sum = 0;
      for (let j = 0; j < n; j++) sum += map.get(keys[order[j]]);
      const dt = since(t);
      sb = sum;
      return dt;
    },
  );
  same(sa, sb, 'sum of values read');
  return { ...rateResult(n, ms, 'ops/s', 'Map<string, number>.get'), batch: BATCH };
}
