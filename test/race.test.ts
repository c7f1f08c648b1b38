/**
 * Writers during exports: many rounds of random writes while a checkpoint's
 * stream is being read (on the native backend its bytes are produced on a
 * worker thread at the same time; on wasm, between the reader's pulls), each
 * restored checkpoint equal to a model of its moment. Also abort, confirm,
 * release and close while an export runs.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CheckpointStateError, StateStore, StoreClosedError } from './_backend.js';
import { assertStore, declare, Model, randomOps } from './_model.js';
import { rng } from './_util.js';

const Race = suite('writes during exports');

Race('each checkpoint of a chain restores to its moment while writers run through its export', async () => {
  const store = await StateStore.create({ maxParallelism: 16, checkpoints: { incremental: true, maxIncrementals: 5 } });
  const h = declare(store);
  const model = new Model();
  const r = rng(99);
  randomOps(h, model, r, 4000, 1500);
  let chain: Uint8Array[] = [];
  for (let round = 0; round < 14; round++) {
    randomOps(h, model, r, 500, 1500);
    const cp = store.checkpoint();
    const moment = model.clone();
    // Small chunks, and writes after every read: the export and the writers interleave.
    const reader = cp.stream({ chunkSize: 1024 }).getReader();
    const parts: Uint8Array[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      randomOps(h, model, r, 40, 1500);
    }
    cp.confirm();
    const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((at, p) => (bytes.set(p, at), at + p.length), 0);
    chain = cp.kind === 'full' ? [bytes] : [...chain, bytes];
    const restored = await StateStore.restore(chain);
    assertStore(restored, moment, `round ${round} (${cp.kind}, ${chain.length} pieces)`);
    restored.close();
  }
  assertStore(store, model, 'the live store after every round');
});

Race('abort while the export runs: nothing is lost, writes go on, the next checkpoint is complete', async () => {
  const store = await StateStore.create({ checkpoints: { incremental: true } });
  const h = declare(store);
  const model = new Model();
  const r = rng(7);
  randomOps(h, model, r, 3000, 2000);
  const first = store.checkpoint();
  const base = await first.bytes();
  first.confirm();
  randomOps(h, model, r, 2000, 2000);
  const cp = store.checkpoint();
  const reader = cp.stream({ chunkSize: 1024 }).getReader();
  await reader.read();
  randomOps(h, model, r, 200, 2000);
  cp.abort();
  const e = await reader.read().then(() => null, (err: unknown) => err);
  if (e !== null) assert.instance(e, CheckpointStateError, 'a read after the abort fails, typed');
  randomOps(h, model, r, 200, 2000);
  const next = store.checkpoint();
  assert.is(next.kind, 'incremental');
  const delta = await next.bytes();
  next.confirm();
  assertStore(await StateStore.restore([base, delta]), model, 'full + the next incremental');
});

Race('release a snapshot and close the store while an export runs', async () => {
  const store = await StateStore.create();
  const h = declare(store);
  randomOps(h, new Model(), rng(3), 5000, 3000);
  const snap = store.snapshot();
  const cp = store.checkpoint();
  const reader = cp.stream({ chunkSize: 1024 }).getReader();
  await reader.read();
  snap.release();
  randomOps(h, new Model(), rng(4), 100, 3000);
  store.close();
  const e = await reader.read().then(() => null, (err: unknown) => err);
  // The export either finished with what it had produced or fails with the reason; nothing crashes.
  if (e !== null) assert.instance(e, StoreClosedError, String(e));
  await reader.cancel().catch(() => undefined);
});

Race.run();
