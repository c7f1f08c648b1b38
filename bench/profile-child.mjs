// @ts-check
// One run of the memory profile workload (spawned by profile.mjs): with
// keystate, or with a Map checkpointed by v8.serialize. Samples JS heap,
// backend memory (wasm's linear memory or the native addon's heap; and what snapshots pin of it) and RSS every SAMPLE_MS while it works; prints the run as one
// JSON line on stdout.
// Usage: node bench/profile-child.mjs keystate|map DIR [--quick]
//
// The workload, identical for both: ingest n entries in batches; then cycles
// of writes (as many as 5% of the keys, skewed to hot keys, spread over the interval) each followed by a
// durable checkpoint; a point-in-time copy is held over the middle cycles
// (keystate: a snapshot; Map: structuredClone, the JS way to get one).
import { open, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { keyOf, makeObject, permutation, rng } from './lib.mjs';

export const SAMPLE_MS = 50;

/** Workload sizes: a full run, and --quick for the smoke test. */
export function params(/** @type {boolean} */ quick) {
  return quick
    ? { entries: 100_000, batch: 10_000, cycles: [2, 2, 2], intervalMs: 200, ticks: 4, writesPct: 5 }
    : { entries: 1_000_000, batch: 10_000, cycles: [4, 4, 4], intervalMs: 500, ticks: 10, writesPct: 5 };
}

/** @typedef {{ write(key: string, i: number, round: number): void, checkpoint(): Promise<{ bytes: number, kind: string }>, hold(): void, drop(): void, backendAndPinned(): [number, number], close(): Promise<void> }} Side */

/** keystate: a cbor value state, incremental checkpoints to a DirectoryStorage. */
async function keystateSide(/** @type {string} */ dir) {
  const { DirectoryStorage, StateStore } = await import('../dist/index.js');
  const store = await StateStore.create({ checkpoints: { incremental: true } });
  const v = store.valueState('profile', { codec: 'cbor' });
  const storage = await DirectoryStorage.open(dir);
  /** @type {import('../dist/index.js').Snapshot | null} */ let snap = null;
  /** @type {Side} */
  const side = {
    write: (key, i, round) => v.set(key, makeObject(i, round)),
    checkpoint: async () => {
      const c = await store.checkpointTo(storage, { incremental: true });
      return { bytes: c.bytes, kind: c.kind };
    },
    hold: () => (snap = store.snapshot()),
    drop: () => {
      snap?.release();
      snap = null;
    },
    backendAndPinned: () => {
      const m = store.memory();
      return [m.backendBytes, m.pinnedBytes];
    },
    backend: store.backend,
    close: async () => store.close(),
  };
  return side;
}

/** Map: v8.serialize of the whole Map, written durably (temp file, fsync, rename), the last two kept. */
function mapSide(/** @type {string} */ dir) {
  /** @type {Map<string, object>} */ const map = new Map();
  /** @type {Map<string, object> | null} */ let clone = null; // only held: what a held copy costs
  let id = 0;
  /** @type {Side} */
  const side = {
    write: (key, i, round) => void map.set(key, makeObject(i, round)),
    checkpoint: async () => {
      const bytes = v8.serialize(map);
      const file = path.join(dir, `map-${++id}.bin`);
      const fh = await open(`${file}.tmp`, 'w');
      await fh.writeFile(bytes);
      await fh.sync();
      await fh.close();
      await rename(`${file}.tmp`, file);
      for (const f of await readdir(dir)) {
        const k = Number(/^map-(\d+)\.bin$/.exec(f)?.[1]);
        if (k && k < id - 1) await rm(path.join(dir, f));
      }
      return { bytes: bytes.length, kind: 'full' };
    },
    hold: () => void (clone = structuredClone(map)),
    drop: () => void (clone = null),
    backendAndPinned: () => [0, 0],
    close: async () => map.clear(),
  };
  return side;
}

/** Runs the workload on one side; returns what to chart. */
export async function profile(/** @type {'keystate' | 'map'} */ which, /** @type {string} */ dir, /** @type {boolean} */ quick) {
  const p = params(quick);
  const side = which === 'keystate' ? await keystateSide(dir) : mapSide(dir);
  const t0 = performance.now();
  const now = () => Math.round(performance.now() - t0);
  /** @type {number[][]} */ const samples = [];
  const sample = () => {
    const m = process.memoryUsage();
    samples.push([now(), m.heapUsed, ...side.backendAndPinned(), m.rss]);
  };
  sample();
  const timer = setInterval(sample, SAMPLE_MS);
  /** @type {{ name: string, start: number, end: number }[]} */ const phases = [];
  /** @type {{ t: number, ms: number, bytes: number, kind: string }[]} */ const checkpoints = [];
  const phase = async (/** @type {string} */ name, /** @type {() => Promise<void>} */ work) => {
    const start = now();
    await work();
    phases.push({ name, start, end: now() });
  };

  const n = p.entries;
  await phase(`ingest ${n.toLocaleString('en-US')}`, async () => {
    for (let i = 0; i < n; i += p.batch) {
      for (let j = i; j < Math.min(n, i + p.batch); j++) side.write(keyOf(j), j, 0);
      await new Promise((resolve) => setImmediate(resolve)); // lets the sampler run, as an event loop would
    }
  });

  // Writes hit random keys, skewed to a hot set (r^2) as real traffic is; the same sequence for both sides.
  const rand = rng(7);
  const order = permutation(n, 11);
  let round = 0;
  const cycle = async () => {
    round++;
    const perTick = Math.floor((n * p.writesPct) / 100 / p.ticks);
    for (let t = 0; t < p.ticks; t++) {
      for (let k = 0; k < perTick; k++) {
        const r = rand();
        const i = order[Math.floor(r * r * n)];
        side.write(keyOf(i), i, round);
      }
      await sleep(p.intervalMs / p.ticks);
    }
    const t = now();
    const c = await side.checkpoint();
    checkpoints.push({ t, ms: now() - t, ...c });
  };
  const cycles = async (/** @type {number} */ k) => {
    for (let i = 0; i < k; i++) await cycle();
  };

  await phase('writes + checkpoints', () => cycles(p.cycles[0]));
  await phase(which === 'keystate' ? 'snapshot held' : 'structuredClone held', async () => {
    side.hold();
    await cycles(p.cycles[1]);
    side.drop();
  });
  await phase('writes + checkpoints', () => cycles(p.cycles[2]));
  await sleep(SAMPLE_MS * 4); // a few samples of the end state
  clearInterval(timer);
  sample();
  await side.close();

  // The longest gap between two samples beyond their interval: the longest the
  // event loop could not run (a GC pause, a synchronous serialize, a busy machine).
  let longestStall = 0;
  for (let i = 1; i < samples.length; i++) longestStall = Math.max(longestStall, samples[i][0] - samples[i - 1][0] - SAMPLE_MS);
  return {
    which,
    entries: n,
    durationMs: now(),
    columns: ['t_ms', 'heapUsed', 'backendMemory', 'pinnedBytes', 'rss'],
    samples,
    phases,
    checkpoints,
    longestStallMs: longestStall,
  };
}

if (fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const [which, dir] = process.argv.slice(2);
  if ((which !== 'keystate' && which !== 'map') || !dir) {
    console.error('usage: node bench/profile-child.mjs keystate|map DIR [--quick]');
    process.exit(2);
  }
  const run = await profile(which, dir, process.argv.includes('--quick'));
  process.stdout.write(`${JSON.stringify(run)}\n`);
}
