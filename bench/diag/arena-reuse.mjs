// Whether an arena reuses what export cycles free (not part of `npm run bench`):
// a 1M-key store, 8 cycles of a full export with 64 random overwrites (with
// smaller values) between its chunks, printing memory() after each.
// Usage: node bench/diag/arena-reuse.mjs
import { StateStore } from '../../dist/index.js';
import { makeKeys, rng } from '../lib.mjs';

const N = 1_000_000;
const keys = makeKeys(N);
const s = await StateStore.create();
const v = s.valueState('v', { codec: 'number' });
v.setMany(keys.map((k, i) => [k, i]));
const random = rng(12345);
const rnd = () => Math.floor(random() * N);
const mb = (/** @type {number} */ b) => (b / 1e6).toFixed(1);
const core = s.coreStore;
for (let e = 0; e < 8; e++) {
  const cp = s.checkpoint({ incremental: false });
  let pulls = 0;
  let grew = 0;
  let last = s.memory().backendBytes;
  do {
    for (let j = 0; j < 64; j++) v.set(keys[rnd()], j);
    core.checkpointNext(cp.id, 65536);
    pulls++;
    const now = s.memory().backendBytes;
    if (now !== last) grew++;
    last = now;
  } while (!core.checkpointProgress(cp.id).finished);
  cp.confirm();
  const m = s.memory();
  console.log(`export ${e}: ${pulls} pulls, memory grew ${grew} times; backend ${mb(m.backendBytes)} MB, arena ${mb(m.arenaBytes)}, free ${mb(m.freeBytes)}, live ${mb(m.liveBytes)}`);
}
