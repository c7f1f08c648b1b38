// A full export of two builds side by side (not part of `npm run bench`): the
// `dist/` of another checkout (the build before a change) against this one's,
// in one process, with v8.serialize of the same Map as the yardstick. Used for
// the layout steps of docs/LAYOUT.md.
//   filled    1M number entries set one by one, keys in a scrambled order
//   restored  the same store checkpointed and restored (a table at a time)
//   incremental  filled, then each rep changes 1% of the keys (10,000) and
//             times an incremental checkpoint of them (v8.serialize of the
//             whole Map stays the yardstick)
// Usage: node bench/diag/export-ab.mjs <other dist dir> [wasm|native] [filled|restored|incremental]
// e.g.   git worktree add /tmp/base HEAD~1 && (cd /tmp/base && npm ci) && node bench/diag/export-ab.mjs /tmp/base/dist wasm
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import v8 from 'node:v8';

const [baseDist, backend = 'wasm', mode = 'filled'] = process.argv.slice(2);
if (!baseDist) {
  console.error('usage: node bench/diag/export-ab.mjs <other dist dir> [wasm|native] [filled|restored|incremental]');
  process.exit(2);
}
const N = 1_000_000;
const REPS = 9;
const A = await import(pathToFileURL(path.resolve(baseDist, 'index.js')).href);
const B = await import('../../dist/index.js');

/** @param {ReadableStream<Uint8Array>} s */
async function drain(s) {
  const chunks = [];
  for await (const c of /** @type {any} */ (s)) chunks.push(c);
  return Buffer.concat(chunks);
}

/** @param {any} M */
async function make(M) {
  let store = await M.StateStore.create({ backend, ...(mode === 'incremental' ? { checkpoints: { incremental: true } } : {}) });
  const v = store.valueState('count', { codec: 'number' });
  const t = performance.now();
  for (let i = 0; i < N; i++) v.set(`user-${(i * 7919) % N}`, i);
  const fillMs = performance.now() - t;
  if (mode === 'restored') {
    const cp = store.checkpoint({ incremental: false });
    const bytes = await drain(cp.stream());
    cp.confirm();
    store = await M.StateStore.restore([bytes], { backend });
    store.valueState('count', { codec: 'number' });
  }
  return { store, fillMs };
}

let round = 0;
/** @param {any} store */
async function exportMs(store) {
  const incremental = mode === 'incremental';
  if (incremental) {
    const v = store.valueState('count', { codec: 'number' });
    const at = (Math.floor(round++ / 2) * 10_000) % N;
    for (let i = at; i < at + 10_000; i++) v.set(`user-${i}`, -i);
  }
  const t = performance.now();
  const cp = store.checkpoint({ incremental });
  await drain(cp.stream());
  cp.confirm();
  return performance.now() - t;
}

const a = await make(A);
const b = await make(B);
if (mode === 'incremental') for (const s of [a.store, b.store]) await exportMs(s), round--; // the confirmed base (a full)
const map = new Map();
for (let i = 0; i < N; i++) map.set(`user-${i}`, i);
const ms = { a: /** @type {number[]} */ ([]), b: /** @type {number[]} */ ([]), v8: /** @type {number[]} */ ([]) };
for (let r = 0; r < REPS; r++) {
  ms.a.push(await exportMs(a.store));
  ms.b.push(await exportMs(b.store));
  const t = performance.now();
  v8.serialize(map);
  ms.v8.push(performance.now() - t);
}
const med = (/** @type {number[]} */ x) => x.sort((p, q) => p - q)[x.length >> 1];
const [ea, eb, ev] = [med(ms.a), med(ms.b), med(ms.v8)];
for (const [name, s, fill] of [['other', a.store, a.fillMs], ['this ', b.store, b.fillMs]]) {
  const m = s.memory();
  console.log(`${name} fill ${fill.toFixed(0)} ms, live ${m.liveBytes} B, free ${m.freeBytes} B`);
}
console.log(`${backend} ${mode}: other ${ea.toFixed(1)} ms, this ${eb.toFixed(1)} ms (${(ea / eb).toFixed(2)}x), v8.serialize ${ev.toFixed(1)} ms (this vs v8 ${(ev / eb).toFixed(2)}x)`);
