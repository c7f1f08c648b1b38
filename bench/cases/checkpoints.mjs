// @ts-check
// Checkpoints: full export against v8.serialize and against a plain copy,
// incremental against full, restore against v8.deserialize. All on the
// number state of data.mjs; export chunks are the default 64 KiB.
import v8 from 'node:v8';
import { StateStore } from '../../dist/index.js';
import { drain, interleave, since } from '../lib.mjs';
import { filled, rateResult, same } from './data.mjs';

/** @typedef {import('./data.mjs').Ctx} Ctx */
/** @typedef {import('../../dist/index.js').StateStore} Store */

const MB = 1e6;
const CHUNK = 64 * 1024; // Checkpoint.stream()'s default chunk size

/** Times a checkpoint from take to the last byte read; confirms it. */
async function exportOnce(/** @type {Store} */ store, /** @type {boolean} */ incremental) {
  const t = performance.now();
  const cp = store.checkpoint({ incremental });
  const { bytes, chunks } = await drain(cp.stream());
  const ms = since(t);
  cp.confirm();
  return { ms, bytes, chunks, kind: cp.kind };
}

export async function checkpoint_full_1m(/** @type {Ctx} */ { n, reps }) {
  const { store, map } = await filled(n, 'number');
  let ks = { bytes: 0, chunks: 0 };
  let serialized = 0;
  const ms = await interleave(
    reps,
    async () => {
      const e = await exportOnce(store, false);
      ks = e;
      return e.ms;
    },
    () => {
      const t = performance.now();
      const buf = v8.serialize(map);
      const dt = since(t);
      serialized = buf.length;
      return dt;
    },
  );
  return {
    ...rateResult(n, ms, 'entries/s', 'v8.serialize(Map)'),
    keystate_mb_s: ks.bytes / MB / (ms.a / 1000),
    baseline_mb_s: serialized / MB / (ms.b / 1000),
    keystate_bytes: ks.bytes,
    baseline_bytes: serialized,
    chunks: ks.chunks,
  };
}

export async function checkpoint_incremental_1pct(/** @type {Ctx} */ { n, reps }) {
  const { keys, order, store, v } = await filled(n, 'number', { checkpoints: { incremental: true } });
  await exportOnce(store, false); // the confirmed base
  const m = Math.floor(n / 100);
  let round = 0;
  // A: change 1% of the keys (a fresh slice each time; untimed), then the
  // incremental checkpoint. B: a full checkpoint of the same state, which
  // also becomes the next base, so every A starts right after a confirmed full.
  const r = await interleave(
    reps,
    async () => {
      const at = (round++ * m) % n;
      for (let j = at; j < at + m; j++) v.set(keys[order[j]], -round);
      const e = await exportOnce(store, true);
      same(e.kind, 'incremental', 'checkpoint kind');
      return { bytes: e.bytes, ms: e.ms };
    },
    async () => {
      const e = await exportOnce(store, false);
      same(e.kind, 'full', 'checkpoint kind');
      return { bytes: e.bytes, ms: e.ms };
    },
  );
  return {
    keystate: r.a.bytes,
    baseline: r.b.bytes,
    ratio: r.b.bytes / r.a.bytes,
    unit: 'bytes',
    baselineName: 'full checkpoint of the same store',
    keystate_ms: r.a.ms,
    baseline_ms: r.b.ms,
    time_ratio: r.b.ms / r.a.ms,
    bytes_pct: (100 * r.a.bytes) / r.b.bytes,
    time_pct: (100 * r.a.ms) / r.b.ms,
    changed_keys: m,
  };
}

export async function restore_full_1m(/** @type {Ctx} */ { n, reps }) {
  const { keys, store, map } = await filled(n, 'number');
  const bytes = await store.checkpoint({ incremental: false }).bytes();
  const buf = v8.serialize(map);
  const ms = await interleave(
    Math.min(reps, 5),
    async () => {
      const t = performance.now();
      const again = await StateStore.restore([bytes]);
      const dt = since(t);
      same(again.memory().entries, n, 'restored entries');
      same(again.valueState('count', { codec: 'number' }).get(keys[n - 1]), n - 1, 'restored value');
      again.close(); // its memory is reused by the next restore
      return dt;
    },
    () => {
      const t = performance.now();
      const again = v8.deserialize(buf);
      const dt = since(t);
      same(again.size, n, 'deserialized entries');
      return dt;
    },
  );
  return {
    ...rateResult(n, ms, 'entries/s', 'v8.deserialize(Map)'),
    keystate_mb_s: bytes.length / MB / (ms.a / 1000),
    baseline_mb_s: buf.length / MB / (ms.b / 1000),
    keystate_bytes: bytes.length,
    baseline_bytes: buf.length,
  };
}

/**
 * The full export's throughput against the floor of any export: copying the
 * same bytes with Uint8Array.prototype.set, chunk by chunk. The copy is
 * repeated until it takes long enough to time.
 */
export async function export_vs_memcpy(/** @type {Ctx} */ { n, reps }) {
  const { store } = await filled(n, 'number');
  const src = await store.checkpoint({ incremental: false }).bytes();
  const dst = new Uint8Array(src.length);
  const len = src.length;
  let copies = 1;
  const copyAll = () => {
    for (let o = 0; o < len; o += CHUNK) dst.set(src.subarray(o, Math.min(o + CHUNK, len)), o);
  };
  for (let t = performance.now(); since(t) < 20; copies++) copyAll(); // warm up and size the loop
  const mbs = await interleave(
    reps,
    async () => {
      const e = await exportOnce(store, false);
      return e.bytes / MB / (e.ms / 1000);
    },
    () => {
      const t = performance.now();
      for (let k = 0; k < copies * 5; k++) copyAll();
      return (copies * 5 * len) / MB / (since(t) / 1000);
    },
  );
  if (dst[len - 1] !== src[len - 1]) throw new Error('copy is wrong');
  return {
    keystate: mbs.a,
    baseline: mbs.b,
    ratio: mbs.a / mbs.b,
    unit: 'MB/s',
    baselineName: 'Uint8Array.set in 64 KiB chunks',
    bytes: len,
    chunk_bytes: CHUNK,
  };
}
