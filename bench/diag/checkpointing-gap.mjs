// @ts-check
// Where the writer's worst gap under periodic checkpointing comes from (the
// bench case checkpointing_writer_1m): the issue's writer (5,000 writes every
// 5 ms) with enableCheckpointing to a DirectoryStorage, on the backend that
// KEYSTATE_BACKEND names, timing every synchronous call into the store the
// checkpoints make, and the GC pauses, and printing each tick gap over 15 ms
// with what ran in it.
//   KEYSTATE_BACKEND=native node --expose-gc bench/diag/checkpointing-gap.mjs [keys] [seconds] [none]
// ("none": the same writer with no checkpointing, for comparison)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { DirectoryStorage, StateStore } from '../../dist/index.js';
import { makeKeys, permutation } from '../lib.mjs';

const n = Number(process.argv[2] ?? 1_000_000);
const seconds = Number(process.argv[3] ?? 8);
const none = process.argv[4] === 'none';
const keys = makeKeys(n);
const order = permutation(n);
const store = await StateStore.create();
const v = store.valueState('count', { codec: 'number' });
for (let i = 0; i < n; i++) v.set(keys[i], i);

/** @type {{ at: number, ms: number, what: string }[]} */
const events = [];
// Time every core call a checkpoint makes (the store's core object is internal: this is a diagnostic).
const core = /** @type {Record<string, unknown>} */ (/** @type {any} */ (store).coreStore);
for (const name of ['checkpoint', 'checkpointProgress', 'checkpointConfirm', 'checkpointAbort', 'exportJob', 'checkpointNext', 'memory']) {
  const f = /** @type {(...a: unknown[]) => unknown} */ (core[name]);
  if (typeof f !== 'function') continue;
  core[name] = (/** @type {unknown[]} */ ...a) => {
    const t = performance.now();
    try {
      return f.apply(core, a);
    } finally {
      events.push({ at: t, ms: performance.now() - t, what: name });
    }
  };
}
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) events.push({ at: e.startTime, ms: e.duration, what: `gc ${/** @type {any} */ (e).detail?.kind ?? ''}` });
}).observe({ entryTypes: ['gc'] });

const dir = mkdtempSync(path.join(tmpdir(), 'ks-gap-'));
const storage = await DirectoryStorage.open(dir);
let stored = 0;
const ctl = none ? { stop: async () => {} } : store.enableCheckpointing({ intervalMs: 1000, storage, incremental: true, onCheckpoint: (e) => {
  stored++;
  events.push({ at: performance.now(), ms: e.durationMs, what: `stored ${e.kind} ${e.bytes} bytes` });
} });
let worst = 0;
let rounds = 0;
let p = 0;
await new Promise((resolve) => {
  let last = performance.now();
  const end = last + seconds * 1000;
  const tick = () => {
    const now = performance.now();
    const gap = now - last;
    if (gap > 15 && !process.env.QUIET) {
      const inGap = events.filter((e) => e.at + e.ms >= last && e.at <= now && (e.ms > 0.5 || e.what.startsWith('stored')));
      console.log(`gap ${gap.toFixed(1)} ms at ${(now / 1000).toFixed(2)} s: ${inGap.map((e) => `${e.what} ${e.ms.toFixed(1)} ms`).join(', ') || 'nothing timed'}`);
    }
    worst = Math.max(worst, gap);
    last = now;
    for (let i = 0; i < 5000; i++) {
      v.set(keys[order[p]], rounds);
      p = p + 1 === n ? 0 : p + 1;
    }
    const work = performance.now() - now;
    if (work > 10) events.push({ at: now, ms: work, what: 'the tick\'s 5,000 writes' });
    rounds++;
    if (now >= end) resolve(undefined);
    else setTimeout(tick, 5);
  };
  setTimeout(tick, 5);
});
await ctl.stop();
rmSync(dir, { recursive: true, force: true });
console.log(`${store.backend}: worst gap ${worst.toFixed(1)} ms, ${rounds} rounds in ${seconds} s, ${stored} checkpoints stored`);
