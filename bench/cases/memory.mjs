// @ts-check
// Bytes per entry: n number entries in keystate against the same in a Map.
// Keys are built inside the fill loops, so the Map's side pays for its key
// strings as an app's Map does (keystate copies the key's bytes into wasm
// memory; the strings become garbage).
import { StateStore } from '../../dist/index.js';
import { gc, keyOf, median } from '../lib.mjs';
import { same } from './data.mjs';

/** @typedef {import('./data.mjs').Ctx} Ctx */

const heap = () => process.memoryUsage().heapUsed;

/**
 * keystate: what `memory()` says the entries hold (records and indexes,
 * `liveBytes`) plus whatever the JS heap grew by (measured after a full GC;
 * close to 0). The wasm memory's own growth is reported beside it: it is
 * what the process pays the first time, including allocator headroom.
 */
async function keystateBytes(/** @type {number} */ n) {
  const store = await StateStore.create();
  const v = store.valueState('count', { codec: 'number' });
  gc();
  const h0 = heap();
  const w0 = store.memory().backendBytes;
  for (let i = 0; i < n; i++) v.set(keyOf(i), i);
  gc();
  const jsHeap = heap() - h0;
  const m = store.memory();
  same(m.entries, n, 'entries');
  store.close(); // its memory is reused by the next repetition
  return { perEntry: (m.liveBytes + Math.max(0, jsHeap)) / n, live: m.liveBytes, jsHeap, growth: m.backendBytes - w0, arena: m.arenaBytes };
}

/** The Map: heapUsed growth after a full GC, with the Map still alive. */
function mapBytes(/** @type {number} */ n) {
  gc();
  const h0 = heap();
  /** @type {Map<string, number>} */ const map = new Map();
  for (let i = 0; i < n; i++) map.set(keyOf(i), i);
  gc();
  const grew = heap() - h0;
  same(map.size, n, 'entries');
  return grew;
}

export async function memory_per_entry_1m(/** @type {Ctx} */ { n, reps }) {
  const ks = [];
  const maps = [];
  // Deterministic up to GC timing: a few alternating repetitions suffice.
  for (let r = 0; r < Math.min(reps, 3); r++) {
    ks.push(await keystateBytes(n));
    maps.push(mapBytes(n) / n);
  }
  const keystate = median(ks.map((k) => k.perEntry));
  const baseline = median(maps);
  return {
    keystate,
    baseline,
    ratio: baseline / keystate,
    unit: 'bytes/entry',
    baselineName: 'Map<string, number> in the JS heap',
    live_bytes: median(ks.map((k) => k.live)),
    js_heap_delta_bytes: median(ks.map((k) => k.jsHeap)),
    // Only the first store grows the backend's memory: later ones reuse what it freed.
    backend_growth_bytes_per_entry: ks[0].growth / n,
    arena_bytes: median(ks.map((k) => k.arena)),
    entries: n,
  };
}

/**
 * Space that returns (issue 11): a store of n keys goes through cycles of a
 * full export with rewrites of 1% of the keys between its chunks, each
 * rewrite changing the value's size class (numbers of 1..3 bytes against
 * 5..7). After the cycles, what the arena holds against what its entries
 * and snapshots need: freed slots of one class must serve the others.
 */
export async function arena_reuse_100(/** @type {Ctx} */ { n, quick }) {
  const cycles = quick ? 30 : 100;
  const store = await StateStore.create();
  const v = store.valueState('v', { codec: 'number' });
  for (let i = 0; i < n; i++) v.set(keyOf(i), i % 100);
  const core = /** @type {{ checkpointNext(id: number, t: number): Uint8Array, checkpointProgress(id: number): { finished: boolean } }} */ (/** @type {any} */ (store).coreStore);
  const m = Math.max(1, Math.floor(n / 100));
  let at = 0;
  const start = store.memory();
  for (let c = 0; c < cycles; c++) {
    const cp = store.checkpoint({ incremental: false });
    const big = c % 2 === 0;
    do {
      for (let j = 0; j < 64 && at < (c + 1) * m; j++, at++) {
        const i = (at * 7919) % n;
        v.set(keyOf(i), big ? 1e12 + i : i % 100);
      }
      core.checkpointNext(cp.id, 64 * 1024);
    } while (!core.checkpointProgress(cp.id).finished);
    cp.confirm();
  }
  const end = store.memory();
  // What the records (live, and pinned for snapshots) occupy: the arena less its free space.
  const needed = end.arenaBytes - end.freeBytes;
  return {
    keystate: end.arenaBytes,
    baseline: needed,
    ratio: needed / end.arenaBytes,
    unit: 'bytes',
    baselineName: 'bytes its live and pinned records occupy',
    cycles,
    free_bytes: end.freeBytes,
    arena_bytes_at_start: start.arenaBytes,
    arena_over_needed: end.arenaBytes / needed,
  };
}
