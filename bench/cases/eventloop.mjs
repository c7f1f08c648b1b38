// @ts-check
// What checkpointing costs the thread that writes: a writer under periodic
// incremental checkpointing against the same writer without; how long an
// export keeps the event loop from running when read as fast as it comes;
// and what one call into the backend costs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { DirectoryStorage } from '../../dist/index.js';
import { interleave, since } from '../lib.mjs';
import { filled, same } from './data.mjs';

/** @typedef {import('./data.mjs').Ctx} Ctx */

const WRITES_PER_TICK = 5000;
const TICK_MS = 5;

/**
 * The writer: every 5 ms (setTimeout), 5,000 writes of existing keys
 * in a fixed random order, for `seconds`. Returns the worst gap between the
 * starts of two ticks (ms) and the ticks done.
 * @param {{ v: import('../../dist/index.js').ValueState<any>, keys: string[], order: Int32Array }} d @param {number} seconds
 */
function writer(d, seconds) {
  const n = d.keys.length;
  return new Promise((resolve) => {
    let rounds = 0;
    let worst = 0;
    let p = 0;
    let last = performance.now();
    const end = last + seconds * 1000;
    const tick = () => {
      const now = performance.now();
      worst = Math.max(worst, now - last);
      last = now;
      for (let i = 0; i < WRITES_PER_TICK; i++) {
        d.v.set(d.keys[d.order[p]], rounds);
        p = p + 1 === n ? 0 : p + 1;
      }
      rounds++;
      if (now >= end) resolve({ worst, rounds });
      else setTimeout(tick, TICK_MS);
    };
    setTimeout(tick, TICK_MS);
  });
}

export async function checkpointing_writer_1m(/** @type {Ctx} */ { n, reps, quick }) {
  const d = await filled(n, 'number');
  const seconds = quick ? 2 : 8;
  let checkpoints = 0;
  const r = await interleave(
    Math.min(reps, 3),
    async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'ks-bench-cp-'));
      try {
        const storage = await DirectoryStorage.open(dir);
        let taken = 0;
        const ctl = d.store.enableCheckpointing({ intervalMs: 1000, storage, incremental: true, onCheckpoint: () => taken++ });
        const w = /** @type {{ worst: number, rounds: number }} */ (await writer(d, seconds));
        await ctl.stop();
        checkpoints = taken;
        return w;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    async () => {
      // No checkpointing at all: no delta tracking either (A turns it on again; its first checkpoint is full).
      d.store.setCheckpointPolicy({ incremental: false });
      return /** @type {{ worst: number, rounds: number }} */ (await writer(d, seconds));
    },
  );
  if (checkpoints === 0) throw new Error('no checkpoint was stored while the writer ran');
  return {
    keystate: r.a.worst,
    baseline: r.b.worst,
    ratio: r.b.worst / r.a.worst,
    unit: 'ms',
    baselineName: 'the same writer, no checkpointing',
    rounds_with: r.a.rounds,
    rounds_without: r.b.rounds,
    throughput_ratio: r.a.rounds / r.b.rounds,
    checkpoints_per_run: checkpoints,
    seconds,
  };
}

/** A 1 ms interval; `stop()` gives the longest time the event loop did not run it (ms). */
function probe() {
  let last = performance.now();
  let worst = 0;
  const t = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 1);
  return {
    stop() {
      clearInterval(t);
      return Math.max(worst, performance.now() - last);
    },
  };
}

export async function export_stall_1m(/** @type {Ctx} */ { n, reps }) {
  const { store, map } = await filled(n, 'number');
  let forAwait = 0;
  let bytes = 0;
  const r = await interleave(
    reps,
    async () => {
      // `await cp.bytes()`, then a `for await` over cp.stream(): each read as fast as it comes.
      let p = probe();
      const cp = store.checkpoint({ incremental: false });
      bytes = (await cp.bytes()).length;
      const a = p.stop();
      cp.confirm();
      p = probe();
      const cp2 = store.checkpoint({ incremental: false });
      for await (const _chunk of /** @type {AsyncIterable<Uint8Array>} */ (/** @type {unknown} */ (cp2.stream())));
      const b = p.stop();
      cp2.confirm();
      forAwait = b;
      return Math.max(a, b);
    },
    () => {
      const p = probe();
      const buf = v8.serialize(map);
      same(buf.length > 0, true, 'serialized');
      return p.stop();
    },
  );
  return {
    keystate: r.a,
    baseline: r.b,
    ratio: r.b / r.a,
    unit: 'ms',
    baselineName: 'v8.serialize(Map) (synchronous)',
    for_await_stall_ms: forAwait,
    checkpoint_bytes: bytes,
  };
}

export async function empty_call(/** @type {Ctx} */ { reps, quick }) {
  const { store } = await filled(1000, 'number');
  const core = /** @type {{ ping(): number }} */ (/** @type {any} */ (store).coreStore);
  const js = { status: 1, ping() { return this.status; } };
  const calls = quick ? 1_000_000 : 10_000_000;
  const loop = (/** @type {{ ping(): number }} */ o) => {
    const t = performance.now();
    let s = 0;
    for (let i = 0; i < calls; i++) s += o.ping();
    const ms = since(t);
    same(s >= 0, true, 'calls made');
    return ms;
  };
  const ms = await interleave(reps, () => loop(core), () => loop(js));
  const ns = (/** @type {number} */ m) => (m * 1e6) / calls;
  return {
    keystate: ns(ms.a),
    baseline: ns(ms.b),
    ratio: ms.b / ms.a,
    unit: 'ns',
    baselineName: 'a JS method call',
    calls,
  };
}
