// Point reads and writes of two builds side by side (not part of `npm run
// bench`): the `dist/` of another checkout (the build before a change)
// against this one's, in one process, alternating, with a Map of the same
// entries as the yardstick. 1M number entries, keys read and written in one
// seeded random order (as the bench's value_get_number / value_set_number);
// `cbor`: the bench's small object (bench/lib.mjs makeObject) in a cbor state,
// as value_get_object.
// Used for the per-key steps of docs/LAYOUT.md.
// Usage: node bench/diag/point-ab.mjs <other dist dir> [wasm|native] [get|set|cbor]
// e.g.   mkdir -p /tmp/base && cp -r dist package.json /tmp/base/ && ln -s "$PWD/node_modules" /tmp/base/
//        (then change and rebuild) node bench/diag/point-ab.mjs /tmp/base/dist wasm get
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { makeObject } from '../lib.mjs';

const [baseDist, backend = 'wasm', mode = 'get'] = process.argv.slice(2);
if (!baseDist || !['get', 'set', 'cbor'].includes(mode)) {
  console.error('usage: node bench/diag/point-ab.mjs <other dist dir> [wasm|native] [get|set|cbor]');
  process.exit(2);
}
const N = 1_000_000;
const REPS = 11;
const A = await import(pathToFileURL(path.resolve(baseDist, 'index.js')).href);
const B = await import('../../dist/index.js');

const keys = Array.from({ length: N }, (_, i) => `user-${i}`);
// A seeded shuffle (xorshift), the same order for every side.
const order = Int32Array.from({ length: N }, (_, i) => i);
let x = 0x9e3779b9;
for (let i = N - 1; i > 0; i--) {
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  const j = (x >>> 0) % (i + 1);
  [order[i], order[j]] = [order[j], order[i]];
}
const value = (/** @type {number} */ i) => (mode === 'cbor' ? makeObject(i) : i);

/** @param {any} M */
async function make(M) {
  const store = await M.StateStore.create({ backend });
  const v = store.valueState('v', { codec: mode === 'cbor' ? 'cbor' : 'number' });
  for (let i = 0; i < N; i++) v.set(keys[i], value(i));
  return v;
}

let round = 0;
/** @param {{ get(k: string): any, set(k: string, v: any): any }} v */
function pass(v) {
  const t = performance.now();
  let sum = 0;
  if (mode === 'set') {
    const r = ++round;
    for (let j = 0; j < N; j++) v.set(keys[order[j]], order[j] + r);
  } else if (mode === 'cbor') {
    for (let j = 0; j < N; j++) sum += v.get(keys[order[j]]).id;
  } else {
    for (let j = 0; j < N; j++) sum += v.get(keys[order[j]]);
  }
  const ms = performance.now() - t;
  if (mode !== 'set' && sum !== (N * (N - 1)) / 2) throw new Error(`sum ${sum}`);
  return ms;
}

const a = await make(A);
const b = await make(B);
const map = new Map();
for (let i = 0; i < N; i++) map.set(keys[i], value(i));
const ms = { a: /** @type {number[]} */ ([]), b: /** @type {number[]} */ ([]), map: /** @type {number[]} */ ([]) };
for (const v of [a, b, map]) pass(v); // warm-up
for (let r = 0; r < REPS; r++) {
  ms.a.push(pass(a));
  ms.b.push(pass(b));
  ms.map.push(pass(map));
}
const med = (/** @type {number[]} */ xs) => xs.sort((p, q) => p - q)[xs.length >> 1];
const [ea, eb, em] = [med(ms.a), med(ms.b), med(ms.map)];
const ns = (/** @type {number} */ t) => `${((t * 1e6) / N).toFixed(0)} ns`;
console.log(
  `${backend} ${mode}: other ${ns(ea)}, this ${ns(eb)} (${(ea / eb).toFixed(2)}x), Map ${ns(em)} (this vs Map ${(em / eb).toFixed(2)}x)`,
);
