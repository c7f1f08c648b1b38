// @ts-check
// Snapshots: the time to take one of a full store, and the memory one holds
// while writers rewrite part of the state under it.
import { Encoder } from 'cbor-x';
import { interleave, makeObject, median, since } from '../lib.mjs';
import { filled, same } from './data.mjs';

/** @typedef {import('./data.mjs').Ctx} Ctx */

/** Snapshots timed one by one per repetition: one take is far below the timer's noise. */
const TAKES = 201;

export async function snapshot_take_1m(/** @type {Ctx} */ { n, reps }) {
  const { keys, store, v, map } = await filled(n, 'number');
  // The snapshot must be a real one: it still reads the old value after a write.
  const check = store.snapshot();
  v.set(keys[0], -1);
  same(check.valueState('count').get(keys[0]), 0, 'snapshot read after a write');
  check.release();
  v.set(keys[0], 0);

  let releaseNs = 0;
  const ms = await interleave(
    Math.min(reps, 5),
    () => {
      const take = new Float64Array(TAKES);
      const release = new Float64Array(TAKES);
      for (let k = 0; k < TAKES; k++) {
        const t0 = process.hrtime.bigint();
        const s = store.snapshot();
        const t1 = process.hrtime.bigint();
        s.release();
        release[k] = Number(process.hrtime.bigint() - t1);
        take[k] = Number(t1 - t0);
      }
      releaseNs = median([...release]);
      return median([...take]) / 1e6;
    },
    () => {
      const t = performance.now();
      const copy = structuredClone(map);
      const dt = since(t);
      if (copy.size !== n) throw new Error('structuredClone lost entries');
      return dt;
    },
  );
  return {
    keystate: ms.a,
    baseline: ms.b,
    ratio: ms.b / ms.a,
    unit: 'ms',
    baselineName: 'structuredClone(Map)',
    release_ms: releaseNs / 1e6,
    entries: n,
  };
}

// ---- pinned memory ------------------------------------------------------------

/** cbor-x as keystate's cbor codec configures it, to count the bytes of a value. */
const cbor = new Encoder(/** @type {any} */ ({ useRecords: false, copyBuffers: true }));
const utf8 = new TextEncoder();

/**
 * Opens a snapshot, rewrites a tenth of the keys (distinct keys, a fresh
 * slice each repetition), and compares `memory().pinnedBytes` (the old
 * versions the snapshot keeps, with their undo indexes) with the bytes of
 * what was rewritten: each key's UTF-8 plus its old value's encoding, the
 * payload a copy-on-write scheme cannot avoid keeping.
 * Object values: the state shape of most apps (the number codec's 3-byte
 * values would make any per-record header look large).
 */
export async function snapshot_pinned_10pct(/** @type {Ctx} */ { n, reps }) {
  const { keys, order, store, v } = await filled(n, 'cbor');
  const m = Math.floor(n / 10);
  const runs = Math.min(reps, 10); // ten disjoint tenths at most
  /** @type {{ pinned: number, rewritten: number, after: number }[]} */ const got = [];
  for (let r = 0; r < runs; r++) {
    const snap = store.snapshot();
    let rewritten = 0;
    for (let j = r * m; j < (r + 1) * m; j++) {
      const i = order[j];
      rewritten += utf8.encode(keys[i]).length + cbor.encode(makeObject(i)).length;
      v.set(keys[i], makeObject(i, r + 1));
    }
    const pinned = store.memory().pinnedBytes;
    // Slices are disjoint, so the snapshot still sees the first value of each key in this one.
    same(snap.valueState('profile').get(keys[order[r * m]]), makeObject(order[r * m]), 'snapshot read after a rewrite');
    snap.release();
    got.push({ pinned, rewritten, after: store.memory().pinnedBytes });
  }
  const pinned = median(got.map((g) => g.pinned));
  const rewritten = median(got.map((g) => g.rewritten));
  return {
    keystate: pinned,
    baseline: rewritten,
    ratio: rewritten / pinned,
    unit: 'bytes',
    baselineName: 'key+value bytes of the rewritten entries',
    rewritten_entries: m,
    pinned_bytes_per_entry: pinned / m,
    payload_bytes_per_entry: rewritten / m,
    pinned_bytes_after_release: Math.max(...got.map((g) => g.after)),
  };
}
