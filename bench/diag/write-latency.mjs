// Where write latency under an export comes from (not part of `npm run bench`).
// The same 200k random overwrites of a 1M-key store, timed one by one, with
// between every 64 writes:
//   none    nothing
//   cow     nothing, under a held snapshot (re-taken every 16k writes)
//   direct  one chunk of a full export of this store (core calls, no stream)
//   stream  the same through checkpoint.stream()
//   other   one chunk of a full export of a *different* store: cache effects only
// Usage: node bench/diag/write-latency.mjs   (MP=maxParallelism, CHUNK=chunk target bytes)
import { StateStore } from '../../dist/index.js';
import { makeKeys, quantile, rng } from '../lib.mjs';

const N = 1_000_000;
const W = 200_000;
const EVERY = 64;
const CHUNK = Number(process.env.CHUNK || 65536);
const keys = makeKeys(N);

async function filled(maxParallelism = 128) {
  const store = await StateStore.create({ maxParallelism });
  const v = store.valueState('v', { codec: 'number' });
  v.setMany(keys.map((k, i) => [k, i]));
  return { store, v };
}

const { store: s, v } = await filled(Number(process.env.MP || 128));
const { store: s2 } = await filled();
const random = rng(12345);
const rnd = () => Math.floor(random() * N);

async function run(/** @type {string} */ mode) {
  const lat = new Float64Array(W);
  const src = mode === 'other' ? s2 : s;
  let snap = mode === 'cow' ? s.snapshot() : null;
  /** @type {import('../../dist/index.js').Checkpoint | null} */
  let cp = null;
  /** @type {ReadableStreamDefaultReader<Uint8Array> | null} */
  let reader = null;
  const start = () => {
    cp = src.checkpoint({ incremental: false });
    reader = mode === 'stream' ? cp.stream().getReader() : null;
  };
  if (['direct', 'stream', 'other'].includes(mode)) start();
  for (let j = 0; j < W; j++) {
    const key = keys[rnd()];
    const t0 = process.hrtime.bigint();
    v.set(key, j);
    lat[j] = Number(process.hrtime.bigint() - t0);
    if ((j + 1) % EVERY) continue;
    if (cp && reader) {
      if ((await reader.read()).done) {
        cp.confirm();
        start();
      }
    } else if (cp) {
      const core = src.coreStore;
      core.checkpointNext(cp.id, CHUNK);
      if (core.checkpointProgress(cp.id).finished) {
        cp.confirm();
        start();
      }
    } else {
      if (snap && (j + 1) % 16384 === 0) {
        snap.release();
        snap = s.snapshot();
      }
      await Promise.resolve();
    }
  }
  if (reader) await /** @type {ReadableStreamDefaultReader<Uint8Array>} */ (reader).cancel();
  else if (cp && !(/** @type {import('../../dist/index.js').Checkpoint} */ (cp).finished)) cp.abort();
  snap?.release();
  lat.sort();
  return `${mode.padEnd(7)} p50 ${quantile(lat, 0.5)} ns  p99 ${quantile(lat, 0.99)} ns  p999 ${quantile(lat, 0.999)} ns`;
}

for (let round = 0; round < 2; round++) {
  for (const mode of ['none', 'cow', 'direct', 'stream', 'other']) console.log(await run(mode));
}
