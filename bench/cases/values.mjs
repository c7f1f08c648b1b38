// @ts-check
// ValueState get/set with explicit keys against a Map<string, T> holding the
// same entries. Reads and writes go in one seeded random order over all keys
// (the same order for both sides); writes overwrite existing entries, the
// steady state of a keyed aggregate. Keys are prebuilt strings: V8 caches a
// string's hash after the first use, which favors the Map.
import { interleave, makeObject, since } from '../lib.mjs';
import { filled, rateResult, same } from './data.mjs';

/** @typedef {import('./data.mjs').Ctx} Ctx */

export async function value_get_number(/** @type {Ctx} */ { n, reps }) {
  const { keys, order, v, map } = await filled(n, 'number');
  let sa = 0;
  let sb = 0;
  const ms = await interleave(
    reps,
    () => {
      const t = performance.now();
      let sum = 0;
      for (let j = 0; j < n; j++) sum += v.get(keys[order[j]]);
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
  return rateResult(n, ms, 'ops/s', 'Map<string, number>.get');
}

export async function value_set_number(/** @type {Ctx} */ { n, reps }) {
  const { keys, order, v, map } = await filled(n, 'number');
  let ra = 0;
  let rb = 0;
  const ms = await interleave(
    reps,
    () => {
      const t = performance.now();
      const r = ++ra;
      for (let j = 0; j < n; j++) v.set(keys[order[j]], order[j] + r);
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
  return rateResult(n, ms, 'ops/s', 'Map<string, number>.set');
}

export async function value_get_object(/** @type {Ctx} */ { n, reps }) {
  const { keys, order, v, map } = await filled(n, 'cbor');
  let sa = 0;
  let sb = 0;
  const ms = await interleave(
    reps,
    () => {
      const t = performance.now();
      let sum = 0;
      for (let j = 0; j < n; j++) sum += v.get(keys[order[j]]).score;
      const dt = since(t);
      sa = sum;
      return dt;
    },
    () => {
      const t = performance.now();
      let sum = 0;
      for (let j = 0; j < n; j++) sum += map.get(keys[order[j]]).score;
      const dt = since(t);
      sb = sum;
      return dt;
    },
  );
  same(sa, sb, 'sum of scores read');
  return rateResult(n, ms, 'ops/s', 'Map<string, object>.get');
}

export async function value_set_object(/** @type {Ctx} */ { n, reps }) {
  const { keys, order, v, map } = await filled(n, 'cbor');
  let ra = 0;
  let rb = 0;
  // Both sides build a fresh object per write, as an app that computes a new value does.
  const ms = await interleave(
    reps,
    () => {
      const t = performance.now();
      const r = ++ra;
      for (let j = 0; j < n; j++) v.set(keys[order[j]], makeObject(order[j], r));
      return since(t);
    },
    () => {
      const t = performance.now();
      const r = ++rb;
      for (let j = 0; j < n; j++) map.set(keys[order[j]], makeObject(order[j], r));
      return since(t);
    },
  );
  same(v.get(keys[n - 1]), map.get(keys[n - 1]), 'last value written');
  return rateResult(n, ms, 'ops/s', 'Map<string, object>.set');
}
