// @ts-check
// The data of one comparison, built once per process: n keys, a store with
// one value state, and a Map with the same entries.
import { StateStore } from '../../dist/index.js';
import { makeKeys, makeObject, permutation } from '../lib.mjs';

/** @typedef {{ n: number, reps: number, quick: boolean }} Ctx */

/**
 * A store with n entries `user-000000 -> 0` ... in a number state (or the
 * small object of `makeObject` in a cbor state), the same in a Map, and a
 * seeded random order over the keys.
 * @param {number} n @param {'number' | 'cbor'} codec @param {import('../../dist/index.js').StoreOptions} [opts]
 */
export async function filled(n, codec, opts) {
  const keys = makeKeys(n);
  const order = permutation(n);
  const store = await StateStore.create(opts);
  /** @type {import('../../dist/index.js').ValueState<any>} */
  const v = store.valueState(codec === 'number' ? 'count' : 'profile', { codec });
  /** @type {Map<string, any>} */ const map = new Map();
  for (let i = 0; i < n; i++) {
    v.set(keys[i], codec === 'number' ? i : makeObject(i));
    map.set(keys[i], codec === 'number' ? i : makeObject(i));
  }
  return { keys, order, store, v, map };
}

/** Throws unless both sides agree: a benchmark that computes the wrong thing measures nothing. */
export function same(/** @type {unknown} */ a, /** @type {unknown} */ b, /** @type {string} */ what) {
  if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`${what}: keystate ${JSON.stringify(a)} != baseline ${JSON.stringify(b)}`);
}

/** An ops/s (or entries/s) comparison from median times in ms: ratio = keystate / baseline. */
export function rateResult(/** @type {number} */ n, /** @type {{ a: number, b: number }} */ ms, /** @type {string} */ unit, /** @type {string} */ baselineName) {
  const keystate = n / (ms.a / 1000);
  const baseline = n / (ms.b / 1000);
  return { keystate, baseline, ratio: keystate / baseline, unit, baselineName, keystate_ms: ms.a, baseline_ms: ms.b, count: n };
}
