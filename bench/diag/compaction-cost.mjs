// What compaction costs a writer (not part of `npm run bench`): a 1M-key
// number store, a full checkpoint, then 40 rounds of 10k random rewrites
// into another size class (small numbers after large ones, so compaction
// rounds run throughout), each round followed by an incremental checkpoint.
// Prints the mean time of a `set` in the rewrites and of an incremental
// checkpoint, and memory() at the end. Compare builds to see the cost.
// Usage: node bench/diag/compaction-cost.mjs [wasm|native]
import { StateStore } from '../../dist/index.js';
import { makeKeys } from '../lib.mjs';

const N = 1_000_000;
const ROUNDS = 40;
const PER_ROUND = 10_000;
const keys = makeKeys(N);
const s = await StateStore.create({ backend: /** @type {'wasm' | 'native'} */ (process.argv[2] ?? 'wasm') });
const v = s.valueState('v', { codec: 'number' });
v.setMany(keys.map((k, i) => [k, i]));

/** @param {import('../../dist/index.js').Checkpoint} cp */
async function drain(cp) {
  const rd = cp.stream().getReader();
  for (;;) if ((await rd.read()).done) break;
  cp.confirm();
}

await drain(s.checkpoint({ incremental: false }));
let writes = 0;
let checkpoints = 0;
for (let r = 0; r < ROUNDS; r++) {
  const t0 = performance.now();
  for (let j = 0; j < PER_ROUND; j++) v.set(keys[((r * PER_ROUND + j) * 7919) % N], r);
  writes += performance.now() - t0;
  const t1 = performance.now();
  await drain(s.checkpoint({ incremental: true }));
  checkpoints += performance.now() - t1;
}
const m = s.memory();
const mb = (/** @type {number} */ b) => (b / 1e6).toFixed(1);
console.log(`${s.backend}: set ${((writes / (ROUNDS * PER_ROUND)) * 1e6).toFixed(0)} ns, incremental checkpoint ${(checkpoints / ROUNDS).toFixed(2)} ms`);
console.log(`arena ${mb(m.arenaBytes)} MB, free ${mb(m.freeBytes)} MB, live ${mb(m.liveBytes)} MB`);
