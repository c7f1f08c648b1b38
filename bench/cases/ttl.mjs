// @ts-check
// State time-to-live (issue 12): what a TTL costs against the same state
// without one, in the same process: get and set of numbers (each read and
// write carries the 6-byte timestamp, and with Flink's default cleanup each
// access visits 5 more entries), the bytes per entry the timestamp adds, and
// `store.expire()` over 1M entries of which 10% expired.
import { StateStore } from '../../dist/index.js';
import { interleave, makeKeys, median, permutation, since } from '../lib.mjs';
import { rateResult, same } from './data.mjs';

/** @typedef {import('./data.mjs').Ctx} Ctx */

const HOUR = 3_600_000;

/** Two stores of n numbers, one state each: with a TTL (Flink's defaults, the real clock) and without. */
async function pair(/** @type {number} */ n) {
  const keys = makeKeys(n);
  const order = permutation(n);
  const ttlStore = await StateStore.create();
  const plainStore = await StateStore.create();
  const ttl = ttlStore.valueState('count', { codec: 'number', ttl: { ttlMs: HOUR } });
  const plain = plainStore.valueState('count', { codec: 'number' });
  // The same TTL without incremental cleanup: what the timestamp alone costs.
  const bare = ttlStore.valueState('bare', { codec: 'number', ttl: { ttlMs: HOUR, cleanup: { incremental: false } } });
  for (let i = 0; i < n; i++) {
    ttl.set(keys[i], i);
    plain.set(keys[i], i);
    bare.set(keys[i], i);
  }
  return { keys, order, ttlStore, plainStore, ttl, plain, bare };
}

/** ops/s of both sides; ratio = with TTL / without (1 is free). */
const rates = (/** @type {number} */ n, /** @type {{ a: number, b: number }} */ ms, /** @type {string} */ what) => rateResult(n, ms, 'ops/s', `${what} without TTL`);

/** One timed pass of `f` over the keys in order, as interleave's sides. */
const pass = (/** @type {number} */ n, /** @type {(j: number) => void} */ f) => () => {
  const t = performance.now();
  for (let j = 0; j < n; j++) f(j);
  return since(t);
};

export async function ttl_get_number(/** @type {Ctx} */ { n, reps }) {
  const { keys, order, ttl, plain, bare } = await pair(n);
  const noCleanup = await interleave(reps, pass(n, (j) => bare.get(keys[order[j]])), pass(n, (j) => plain.get(keys[order[j]])));
  let sa = 0;
  let sb = 0;
  const ms = await interleave(
    reps,
    () => {
      const t = performance.now();
      let sum = 0;
      for (let j = 0; j < n; j++) sum += /** @type {number} */ (ttl.get(keys[order[j]]));
      const dt = since(t);
      sa = sum;
      return dt;
    },
    () => {
      const t = performance.now();
      let sum = 0;
      for (let j = 0; j < n; j++) sum += /** @type {number} */ (plain.get(keys[order[j]]));
      const dt = since(t);
      sb = sum;
      return dt;
    },
  );
  same(sa, sb, 'sum of values read');
  return { ...rates(n, ms, 'valueState<number>.get'), no_cleanup_ratio: noCleanup.b / noCleanup.a };
}

export async function ttl_set_number(/** @type {Ctx} */ { n, reps }) {
  const { keys, order, ttl, plain, bare } = await pair(n);
  const noCleanup = await interleave(reps, pass(n, (j) => bare.set(keys[order[j]], j)), pass(n, (j) => plain.set(keys[order[j]], j)));
  let ra = 0;
  let rb = 0;
  const ms = await interleave(
    reps,
    () => {
      const t = performance.now();
      const r = ++ra;
      for (let j = 0; j < n; j++) ttl.set(keys[order[j]], order[j] + r);
      return since(t);
    },
    () => {
      const t = performance.now();
      const r = ++rb;
      for (let j = 0; j < n; j++) plain.set(keys[order[j]], order[j] + r);
      return since(t);
    },
  );
  same(ttl.get(keys[n - 1]), plain.get(keys[n - 1]), 'last value written');
  return { ...rates(n, ms, 'valueState<number>.set'), no_cleanup_ratio: noCleanup.b / noCleanup.a };
}

export async function ttl_bytes_per_entry(/** @type {Ctx} */ { n }) {
  const { ttlStore, plainStore } = await pair(n);
  const a = ttlStore.memory().states.find((s) => s.name === 'count');
  const b = plainStore.memory().states.find((s) => s.name === 'count');
  if (!a || !b) throw new Error('no state count');
  same(a.entries, b.entries, 'entries');
  const keystate = a.liveBytes / n;
  const baseline = b.liveBytes / n;
  return {
    keystate,
    baseline,
    ratio: baseline / keystate,
    unit: 'bytes/entry',
    baselineName: 'the same state without TTL',
    added_bytes_per_entry: keystate - baseline,
    ttl_bytes_per_entry: a.ttlBytes / n,
    entries: n,
  };
}

/**
 * `expire()` over 1M entries (always 1M: the size), 10% of them
 * expired, against the sweep a JS app would write: a Map of `{ value, at }`
 * records, deleting those whose `at + ttl <= now`. Each repetition refills
 * both, so each removes the same 100,000 entries.
 */
export async function ttl_expire_1m(/** @type {Ctx} */ { reps }) {
  const n = 1_000_000;
  const keys = makeKeys(n);
  const ttlMs = 1000;
  /** @type {number[]} */ const ks = [];
  /** @type {number[]} */ const maps = [];
  let removed = 0;
  for (let r = 0; r < Math.min(reps, 3); r++) {
    let now = 0;
    const store = await StateStore.create({ clock: () => now });
    const v = store.valueState('count', { codec: 'number', ttl: { ttlMs, cleanup: { incremental: false } } });
    /** @type {Map<string, { value: number, at: number }>} */ const map = new Map();
    for (let i = 0; i < n; i++) {
      now = i % 10 === 0 ? 0 : 500;
      v.set(keys[i], i);
      map.set(keys[i], { value: i, at: now });
    }
    now = 1200;
    let t = performance.now();
    removed = store.expire();
    ks.push(since(t));
    t = performance.now();
    let gone = 0;
    for (const [k, e] of map) {
      if (e.at + ttlMs <= now) {
        map.delete(k);
        gone++;
      }
    }
    maps.push(since(t));
    same(removed, gone, 'entries removed');
    same(store.memory().entries, map.size, 'entries left');
    store.close();
  }
  const keystate = median(ks);
  const baseline = median(maps);
  return { keystate, baseline, ratio: baseline / keystate, unit: 'ms', baselineName: 'a Map sweep of { value, at } records', removed, entries: n };
}
