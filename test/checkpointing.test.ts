// Checkpoints to storage through the CheckpointStorage interface, with an
// in-memory storage (so these run in every environment): checkpointTo and
// restoreFrom over chains, failures that abort a checkpoint and leave the
// next one complete, fallback restore, and periodic checkpointing
// (enableCheckpointing): events, one checkpoint at a time, clean stop.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CheckpointStateError, CorruptCheckpointError, KeystateError, StateStore, StoreClosedError } from './_backend.js';
import type { CheckpointEvent, CheckpointProgress, StoredCheckpoint } from '../dist/index.js';
import { chainIn, InjectedFailure, MemoryStorage } from './_memstorage.js';
import { assertStore, declare, Model, randomOps } from './_model.js';
import { rejectsKs, rng, throwsKs } from './_util.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rejectsWith(p: Promise<unknown>, Class: abstract new (...a: never[]) => Error, what: string): Promise<Error> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, Class, what);
    return e as Error;
  }
  assert.unreachable(`${what}: resolved`);
  throw new Error('unreachable');
}

// ---- checkpointTo / restoreFrom -----------------------------------------------------------

const ToFrom = suite('checkpointTo and restoreFrom');

ToFrom('a chain of full and incremental checkpoints restores exactly, and the restored store continues it', async () => {
  const storage = new MemoryStorage();
  const store = await StateStore.create({ checkpoints: { incremental: true, maxIncrementals: 3, maxChainRatio: 0 } });
  const h = declare(store);
  const model = new Model();
  const r = rng(1);
  const kinds: string[] = [];
  for (let i = 0; i < 9; i++) {
    randomOps(h, model, r, 400, 200);
    const stored = await store.checkpointTo(storage, { chunkSize: 1024 });
    kinds.push(stored.kind);
    assert.is(store.lastConfirmedCheckpoint()?.id, stored.id, 'confirmed once stored');
    assert.match(stored.storeId, /^[0-9a-f]{32}$/);
    assert.match(stored.checksum, /^[0-9a-f]{16}$/);
    assert.ok(stored.bytes > 0);
  }
  assert.equal(kinds, ['full', 'incremental', 'incremental', 'incremental', 'full', 'incremental', 'incremental', 'incremental', 'full']);

  let restoredFrom: StoredCheckpoint[] = [];
  const restored = await StateStore.restoreFrom(storage, {
    checkpoints: { incremental: true, maxIncrementals: 3, maxChainRatio: 0 },
    onRestored: (x) => (restoredFrom = x.chain),
  });
  assertStore(restored, model, 'restored');
  assert.equal(restoredFrom.map((c) => c.id), [9]);

  // The restored store extends the stored chain.
  const h2 = declare(restored);
  randomOps(h2, model, r, 300, 200);
  const next = await restored.checkpointTo(storage);
  assert.is(next.kind, 'incremental');
  assert.is(next.parentId, 9);
  assert.is(next.storeId, (await storage.list()).find((c) => c.id === 9)?.storeId, 'same lineage');
  const again = await StateStore.restoreFrom(storage, { onRestored: (x) => (restoredFrom = x.chain) });
  assertStore(again, model, 'restored twice');
  assert.equal(restoredFrom.map((c) => c.id), [9, 10]);
});

ToFrom('an empty storage: NO_CHECKPOINT', async () => {
  await rejectsKs(() => StateStore.restoreFrom(new MemoryStorage()), KeystateError, 'NO_CHECKPOINT');
});

for (const fault of ['begin', 'write', 'commit'] as const) {
  ToFrom(`a storage failure at ${fault} aborts the checkpoint; the store, the stored chain and the next checkpoint stay complete`, async () => {
    const storage = new MemoryStorage();
    const store = await StateStore.create({ checkpoints: { incremental: true, maxChainRatio: 0 } });
    const h = declare(store);
    const model = new Model();
    const r = rng(2);
    randomOps(h, model, r, 500, 100);
    await store.checkpointTo(storage, { chunkSize: 1024 });
    randomOps(h, model, r, 500, 100);
    const atTwo = model.clone();
    await store.checkpointTo(storage, { chunkSize: 1024 });
    const before = await storage.list();

    randomOps(h, model, r, 500, 100);
    storage.faults = fault === 'write' ? { write: 2 } : { [fault]: true };
    await rejectsWith(store.checkpointTo(storage, { chunkSize: 1024 }), InjectedFailure, 'the storage error comes through');
    assert.is(store.lastConfirmedCheckpoint()?.id, 2, 'nothing new confirmed');
    assert.equal(await storage.list(), before, 'nothing new listed');
    assert.is(storage.open_, 0, 'the writer was closed');
    assertStore(await StateStore.restoreFrom(storage), atTwo, 'the stored chain still restores');

    storage.faults = {};
    randomOps(h, model, r, 500, 100);
    const next = await store.checkpointTo(storage, { chunkSize: 1024 });
    assert.is(next.kind, 'incremental');
    assert.is(next.parentId, 2, 'extends the last confirmed checkpoint');
    assertStore(await StateStore.restoreFrom(storage), model, 'the next checkpoint carries everything since checkpoint 2');
  });
}

ToFrom('strict restore refuses a corrupt latest checkpoint; fallback restores the previous one and says so', async () => {
  const storage = new MemoryStorage();
  const store = await StateStore.create({ checkpoints: { incremental: true } });
  const h = declare(store);
  const model = new Model();
  const r = rng(3);
  const models: Model[] = [];
  for (let i = 0; i < 4; i++) {
    randomOps(h, model, r, 300, 100);
    await store.checkpointTo(storage);
    models.push(model.clone());
  }
  const latest = storage.entries[storage.entries.length - 1];
  const bytes = storage.files.get(latest.name) as Uint8Array;
  bytes[Math.floor(bytes.length / 2)] ^= 0x55;

  await rejectsWith(StateStore.restoreFrom(storage), CorruptCheckpointError, 'strict');
  let info: { id: number; skipped: number[] } | null = null;
  const restored = await StateStore.restoreFrom(storage, {
    fallback: true,
    checkpoints: { incremental: true },
    onRestored: (x) => (info = { id: x.checkpoint.id, skipped: x.skipped.map((s) => s.checkpoint.id) }),
  });
  assert.equal(info, { id: 3, skipped: [4] });
  assertStore(restored, models[2], 'the state of checkpoint 3');

  // The restored store forks the lineage from checkpoint 3: its next checkpoint is a second "4".
  randomOps(declare(restored), models[2], r, 300, 100);
  const fork = await restored.checkpointTo(storage);
  assert.equal([fork.id, fork.parentId], [4, 3]);
  assertStore(await StateStore.restoreFrom(storage), models[2], 'strict restore now takes the fork');
});

ToFrom('a listing whose bytes hold another checkpoint is refused', async () => {
  const storage = new MemoryStorage();
  const store = await StateStore.create();
  declare(store).v.set('a', 1);
  const one = await store.checkpointTo(storage);
  const two = await store.checkpointTo(storage);
  storage.files.set(two.name, storage.files.get(one.name) as Uint8Array);
  await rejectsKs(() => StateStore.restoreFrom(storage), KeystateError, 'STORAGE_CORRUPT');
});

ToFrom('a restored store checkpointing into a storage without its chain starts there with a full checkpoint', async () => {
  const a = new MemoryStorage();
  const store = await StateStore.create({ checkpoints: { incremental: true } });
  const h = declare(store);
  const model = new Model();
  randomOps(h, model, rng(4), 500, 100);
  await store.checkpointTo(a);
  const restored = await StateStore.restoreFrom(a, { checkpoints: { incremental: true } });
  randomOps(declare(restored), model, rng(5), 200, 100);
  const b = new MemoryStorage();
  const first = await restored.checkpointTo(b);
  assert.is(first.kind, 'full', 'an incremental checkpoint would name a parent b does not hold');
  assert.is(restored.lastConfirmedCheckpoint()?.id, first.id);
  const second = await restored.checkpointTo(b);
  assert.equal([second.kind, second.parentId], ['incremental', first.id]);
  assertStore(await StateStore.restoreFrom(b), model, 'restored from the new storage');
});

ToFrom('retention through the interface keeps what the last chains need', async () => {
  const storage = new MemoryStorage(2);
  const store = await StateStore.create({ checkpoints: { incremental: true, maxIncrementals: 2, maxChainRatio: 0 } });
  const h = declare(store);
  const model = new Model();
  const models = new Map<number, Model>();
  const r = rng(6);
  for (let i = 0; i < 8; i++) {
    randomOps(h, model, r, 200, 80);
    const s = await store.checkpointTo(storage, { retain: i === 7 ? 1 : undefined });
    models.set(s.id, model.clone());
  }
  // 1f 2i 3i 4f 5i 6i 7f 8i; keep 1 chain: [7, 8].
  assert.equal(storage.entries.map((e) => e.id), [7, 8]);
  for (let i = 0; i < storage.entries.length; i++) {
    const chain = chainIn(storage.entries, i) as StoredCheckpoint[];
    const pieces = await Promise.all(chain.map((c) => storage.open(c.name)));
    assertStore(await StateStore.restore(pieces), models.get(storage.entries[i].id) as Model, `chain of ${storage.entries[i].id}`);
  }
});

ToFrom.run();

// ---- enableCheckpointing -------------------------------------------------------------------

const Periodic = suite('enableCheckpointing');

Periodic('produces a chain, reports each checkpoint, and stops cleanly', async () => {
  const storage = new MemoryStorage();
  const store = await StateStore.create();
  const h = declare(store);
  const model = new Model();
  const r = rng(7);
  const events: CheckpointEvent[] = [];
  const errors: unknown[] = [];
  const ctl = store.enableCheckpointing({
    intervalMs: 5,
    storage,
    incremental: true,
    maxIncrementals: 4,
    onCheckpoint: (e) => events.push(e),
    onError: (e) => errors.push(e),
  });
  assert.ok(ctl.running);
  for (let i = 0; i < 30; i++) {
    randomOps(h, model, r, 100, 150);
    await sleep(3);
  }
  while (events.length < 6) await sleep(5);
  await ctl.stop();
  assert.not.ok(ctl.running);
  assert.equal(errors, []);
  const n = events.length;
  await sleep(30);
  assert.is(events.length, n, 'no checkpoint after stop()');

  assert.ok(events.some((e) => e.kind === 'incremental') && events[0].kind === 'full');
  for (let i = 1; i < events.length; i++) {
    assert.ok(events[i].id > events[i - 1].id, 'ids increase');
    if (events[i].kind === 'incremental') assert.is(events[i].parentId, events[i - 1].id, 'each extends the previous one');
  }
  let run = 0;
  for (const e of events) {
    run = e.kind === 'full' ? 0 : run + 1;
    assert.ok(run <= 4, 'materialization: a full checkpoint after at most 4 incremental ones');
  }
  assert.ok(events.slice(1).some((e) => e.kind === 'full'), 'materialized at least once');
  for (const e of events) {
    assert.ok(e.bytes > 0 && e.durationMs >= 0);
    assert.is(e.stored.id, e.id);
  }
  assert.is(store.lastConfirmedCheckpoint()?.id, events[n - 1].id);
  assert.is(ctl.stats.completed, n);

  // The last checkpoint holds the state at its moment; a final checkpoint holds the rest.
  await store.checkpointTo(storage);
  assertStore(await StateStore.restoreFrom(storage), model, 'restored');
  await rejectsKs(() => ctl.checkpointNow(), CheckpointStateError, 'CHECKPOINT_STATE', 'checkpointNow after stop');
});

Periodic('at most one checkpoint runs at a time: ticks while one runs are skipped', async () => {
  const storage = new MemoryStorage();
  storage.delayMs = 4;
  const store = await StateStore.create();
  const h = declare(store);
  const model = new Model();
  randomOps(h, model, rng(8), 3000, 2000);
  const ctl = store.enableCheckpointing({ intervalMs: 2, storage, incremental: true });
  await sleep(150);
  await ctl.stop();
  assert.is(storage.maxOpen, 1, 'one writer at a time');
  assert.ok(ctl.stats.skipped > 0, `ticks were skipped (${JSON.stringify(ctl.stats)})`);
  assert.ok(ctl.stats.completed > 0);
  assert.is(storage.open_, 0, 'nothing pending after stop()');
});

Periodic('stop() waits for the checkpoint in flight; checkpointNow() queues behind it', async () => {
  const storage = new MemoryStorage();
  storage.delayMs = 10;
  const store = await StateStore.create();
  const h = declare(store);
  randomOps(h, new Model(), rng(9), 2000, 1000);
  const ctl = store.enableCheckpointing({ intervalMs: 60_000, storage });
  const first = ctl.checkpointNow();
  const second = ctl.checkpointNow();
  await ctl.stop();
  assert.is(storage.entries.length, 2, 'both were stored before stop() resolved');
  const [a, b] = await Promise.all([first, second]);
  assert.ok(b.id > a.id);
  assert.is(store.lastConfirmedCheckpoint()?.id, b.id);
});

Periodic('failures go to onError, the checkpoint is aborted, and the next one is complete', async () => {
  const storage = new MemoryStorage();
  const store = await StateStore.create();
  const h = declare(store);
  const model = new Model();
  const r = rng(10);
  const errors: [unknown, number | null][] = [];
  const events: CheckpointEvent[] = [];
  const ctl = store.enableCheckpointing({
    intervalMs: 60_000,
    storage,
    incremental: true,
    onError: (e, id) => errors.push([e, id]),
    onCheckpoint: (e) => events.push(e),
  });
  randomOps(h, model, r, 500, 200);
  await ctl.checkpointNow();
  for (const fault of [{ write: 1 }, { commit: true }, { begin: true }]) {
    randomOps(h, model, r, 500, 200);
    storage.faults = fault;
    await rejectsWith(ctl.checkpointNow(), InjectedFailure, JSON.stringify(fault));
  }
  assert.is(errors.length, 3);
  for (const [e, id] of errors) {
    assert.instance(e, InjectedFailure);
    assert.type(id, 'number', 'the failed checkpoint is named');
  }
  assert.is(store.lastConfirmedCheckpoint()?.id, events[0].id, 'nothing confirmed since');
  storage.faults = {};
  randomOps(h, model, r, 500, 200);
  const next = await ctl.checkpointNow();
  assert.equal([next.kind, next.parentId], ['incremental', events[0].id]);
  assertStore(await StateStore.restoreFrom(storage), model, 'complete after three failures');
  assert.equal(ctl.stats, { completed: 2, failed: 3, skipped: 0 });
  await ctl.stop();
});

Periodic('progress is reported per chunk on long exports', async () => {
  const storage = new MemoryStorage();
  const store = await StateStore.create();
  randomOps(declare(store), new Model(), rng(11), 5000, 5000);
  const seen: CheckpointProgress[] = [];
  const ctl = store.enableCheckpointing({ intervalMs: 60_000, storage, chunkSize: 4096, onProgress: (p) => seen.push(p) });
  const stored = await ctl.checkpointNow();
  await ctl.stop();
  assert.ok(seen.length > 5, `${seen.length} progress reports`);
  assert.ok(seen.every((p) => p.id === stored.id));
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i].bytes >= seen[i - 1].bytes && seen[i].keyGroupsDone >= seen[i - 1].keyGroupsDone);
  assert.is(seen[seen.length - 1].bytes, stored.bytes);
});

Periodic('a closed store stops checkpointing and reports why; enabling twice is refused', async () => {
  const store = await StateStore.create();
  const storage = new MemoryStorage();
  const errors: unknown[] = [];
  const ctl = store.enableCheckpointing({ intervalMs: 3, storage, onError: (e) => errors.push(e) });
  throwsKs(() => store.enableCheckpointing({ intervalMs: 3, storage }), CheckpointStateError, 'CHECKPOINT_STATE', 'second controller');
  await sleep(20);
  store.close();
  await sleep(30);
  assert.not.ok(ctl.running, 'stopped itself');
  assert.is(errors.length, 1);
  assert.instance(errors[0], StoreClosedError);
  await ctl.stop();
});

Periodic('invalid options are refused', async () => {
  const store = await StateStore.create();
  const storage = new MemoryStorage();
  for (const intervalMs of [0, -1, NaN, Infinity, '5' as unknown as number]) {
    throwsKs(() => store.enableCheckpointing({ intervalMs, storage }), KeystateError, 'INVALID_ARGUMENT', `intervalMs ${String(intervalMs)}`);
  }
});

Periodic.run();

// ---- the moment a checkpoint is taken --------------------------------------------------------

const Taken = suite('onTaken');

Taken('onTaken runs synchronously when the checkpoint is taken: it holds the state as of that call', async () => {
  const store = await StateStore.create();
  const count = store.valueState<number>('count', { codec: 'number' });
  const storage = new MemoryStorage();
  let applied = 0;
  const seen: { id: number; applied: number }[] = [];
  count.set('k', ++applied);
  // checkpointTo queues behind other checkpoints of the store: the snapshot is
  // taken later, and onTaken says when. Writes go on meanwhile.
  const p = store.checkpointTo(storage, { onTaken: (cp) => seen.push({ id: cp.id, applied }) });
  count.set('k', ++applied);
  await Promise.resolve();
  count.set('k', ++applied);
  const stored = await p;
  assert.is(seen.length, 1);
  assert.is(seen[0].id, stored.id);
  count.set('k', ++applied);
  const back = await StateStore.restoreFrom(storage);
  assert.is(back.valueState<number>('count', { codec: 'number' }).get('k'), seen[0].applied, 'the stored state is the state onTaken saw');
  assert.ok(seen[0].applied < applied);
});

Taken.run();
