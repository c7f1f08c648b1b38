// What a get at 1M keys waits for (not part of `npm run bench`). The bench's
// value_get_number reads keys in a random order, each get independent of the
// last, so the CPU may overlap the cache misses of several gets. Here the
// same gets also run chained (the key of the next get is the value read), so
// that each waits for the one before: a get's latency, with no overlap.
//   indep   the bench's loop: keystate, then the Map
//   chain   chained gets: keystate, then the Map
//   encode  the key written into scratch only (no core call), in the bench's order
//   core    the core call alone, in cache (one key over and over)
// Usage: node bench/diag/get-latency.mjs [wasm|native]   (docs/LAYOUT.md, "Per-key gets")
import { StateStore } from '../../dist/index.js';
import { writeKey } from '../../dist/codecs.js';
import { makeKeys, permutation } from '../lib.mjs';

const backend = process.argv[2] ?? 'wasm';
const N = 1_000_000;
const REPS = 7;
const keys = makeKeys(N);
const order = permutation(N);
// next[i]: one random cycle through all keys, stored as each key's value.
const next = new Int32Array(N);
for (let i = 0; i < N; i++) next[order[i]] = order[(i + 1) % N];
const store = await StateStore.create({ backend });
/** @type {import('../../dist/index.js').ValueState<number>} */
const v = store.valueState('v', { codec: 'number' });
/** @type {Map<string, number>} */
const map = new Map();
for (let i = 0; i < N; i++) {
  v.set(keys[i], next[i]);
  map.set(keys[i], next[i]);
}
// The bridge's scratch, as a state handle writes a key into it.
const b = /** @type {any} */ (v).ctx.bridge();
/** @type {Record<string, () => number>} */
const runs = {
  'indep keystate': () => {
    let s = 0;
    for (let j = 0; j < N; j++) s += /** @type {number} */ (v.get(keys[order[j]]));
    return s;
  },
  'indep Map': () => {
    let s = 0;
    for (let j = 0; j < N; j++) s += /** @type {number} */ (map.get(keys[order[j]]));
    return s;
  },
  'chain keystate': () => {
    let k = 0;
    for (let j = 0; j < N; j++) k = /** @type {number} */ (v.get(keys[k]));
    return k;
  },
  'chain Map': () => {
    let k = 0;
    for (let j = 0; j < N; j++) k = /** @type {number} */ (map.get(keys[k]));
    return k;
  },
  'encode only': () => {
    let s = 0;
    for (let j = 0; j < N; j++) s += writeKey(keys[order[j]], b, 0);
    return s;
  },
  'core only, in cache': () => {
    const kl = writeKey(keys[5], b, 0);
    let s = 0;
    for (let j = 0; j < N; j++) s += b.core.get(v.id, kl, 0, 0);
    return s;
  },
};
/** @type {Record<string, number[]>} */
const ms = {};
for (let r = 0; r < REPS; r++) {
  for (const [name, f] of Object.entries(runs)) {
    const t = performance.now();
    f();
    (ms[name] ??= []).push(performance.now() - t);
  }
}
for (const [name, a] of Object.entries(ms)) {
  a.sort((p, q) => p - q);
  console.log(`${backend} ${name.padEnd(20)} ${((a[REPS >> 1] / N) * 1e6).toFixed(0).padStart(5)} ns a get (median of ${REPS})`);
}
