// Memory limits are errors: a store with a `maxMemoryBytes` budget refuses
// writes past it with a StoreFullError (STORE_FULL) that changes nothing,
// and goes on working: reads, deletes (not held to the budget), snapshots,
// checkpoints, restores. The same on every backend.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError, KeystateError, StateStore, StoreFullError, type ValueState } from './_backend.js';
import { MemoryStorage } from './_memstorage.js';
import { checkpointBytes, rejectsKs, throwsKs } from './_util.js';

const Budget = suite('memory: maxMemoryBytes');

const BUDGET = 1 << 20;

/** Sets new keys to `len`-byte values until the budget refuses one; returns how many fit. */
function fill(store: StateStore, v: ValueState<Uint8Array>, len: number, prefix = 'k'): number {
  for (let i = 0; ; i++) {
    try {
      v.set(`${prefix}${i}`, new Uint8Array(len).fill(i & 0xff));
    } catch (e) {
      assert.instance(e, StoreFullError);
      assert.instance(e, KeystateError);
      assert.is((e as StoreFullError).code, 'STORE_FULL');
      assert.is((e as StoreFullError).name, 'StoreFullError');
      assert.match((e as Error).message, /maxMemoryBytes/);
      assert.is(v.get(`${prefix}${i}`), undefined, 'the refused write left nothing');
      return i;
    }
    assert.ok(store.memory().totalBytes <= BUDGET, `${store.memory().totalBytes} bytes held, over the budget`);
  }
}

Budget('writes past the budget throw STORE_FULL; reads, deletes, snapshots and checkpoints go on', async () => {
  const store = await StateStore.create({ maxMemoryBytes: BUDGET });
  const v = store.valueState<Uint8Array>('v', { codec: 'bytes' });
  const n = fill(store, v, 200);
  assert.ok(n > 2000, `only ${n} values of 200 bytes in 1 MiB`);
  const m = store.memory();
  assert.is(m.entries, n);
  assert.ok(m.totalBytes <= BUDGET && m.totalBytes > BUDGET / 2, `totalBytes ${m.totalBytes}`);
  // Reads, and overwrites that need no more memory.
  assert.equal(v.get('k7'), new Uint8Array(200).fill(7));
  v.set('k7', new Uint8Array(200).fill(1));
  // A snapshot and a checkpoint of the full store.
  const snap = store.snapshot();
  assert.equal(snap.valueState<Uint8Array>('v').get('k9'), new Uint8Array(200).fill(9));
  snap.release();
  const bytes = await checkpointBytes(store);
  // Deletes are not held to the budget, and make room for writes again.
  for (let i = 0; i < n / 2; i++) assert.ok(v.delete(`k${i}`));
  const more = fill(store, v, 200, 'again');
  assert.ok(more >= n / 3, `${more} values fit after deleting ${n / 2}`);
  // The checkpoint restores (within a budget it fits, and not in one it does not).
  const back = await StateStore.restore([bytes], { maxMemoryBytes: 4 * BUDGET });
  assert.is(back.memory().entries, n);
  assert.equal(back.valueState<Uint8Array>('v', { codec: 'bytes' }).get('k7'), new Uint8Array(200).fill(1));
  await rejectsKs(() => StateStore.restore([bytes], { maxMemoryBytes: BUDGET / 8 }), StoreFullError, 'STORE_FULL', 'restore into a small budget');
  back.close();
  store.close();
});

Budget('setMany is all or nothing under the budget', async () => {
  const store = await StateStore.create({ maxMemoryBytes: BUDGET });
  const v = store.valueState<Uint8Array>('v', { codec: 'bytes' });
  const n = fill(store, v, 100);
  for (let i = 0; i < n / 20; i++) v.delete(`k${i}`);
  const before = store.memory().entries;
  const big = Array.from({ length: 5000 }, (_, i) => [`batch${i}`, new Uint8Array(100)] as const);
  throwsKs(() => v.setMany(big), StoreFullError, 'STORE_FULL', 'a batch past the budget');
  assert.is(store.memory().entries, before, 'a refused batch writes nothing');
  assert.is(v.get('batch0'), undefined);
  assert.is(v.setMany(big.slice(0, 10)), 10);
  store.close();
});

Budget('maps, lists and other stores: each store has its own budget', async () => {
  const small = await StateStore.create({ maxMemoryBytes: 256 << 10 });
  const other = await StateStore.create();
  const m = small.mapState<string, string>('m');
  const l = small.listState<string>('l');
  small.setCurrentKey('u');
  let puts = 0;
  throwsKs(() => {
    for (;;) {
      m.put(`entry-${puts}`, 'x'.repeat(50));
      puts++;
    }
  }, StoreFullError, 'STORE_FULL', 'map puts');
  assert.is(m.size(), puts);
  m.clear();
  let adds = 0;
  throwsKs(() => {
    for (;;) {
      l.add('y'.repeat(64));
      adds++;
    }
  }, StoreFullError, 'STORE_FULL', 'list adds');
  assert.is(l.get().length, adds);
  // Another store has no budget: it writes on.
  const o = other.valueState<string>('o');
  for (let i = 0; i < 5000; i++) o.set(i, 'z'.repeat(100));
  assert.is(other.memory().entries, 5000);
  small.close();
  other.close();
});

Budget('restoreFrom with fallback does not fall back to an older chain when the budget is short', async () => {
  const storage = new MemoryStorage();
  const store = await StateStore.create();
  const v = store.valueState<string>('v');
  v.set('a', 'small');
  await store.checkpointTo(storage);
  for (let i = 0; i < 5000; i++) v.set(i, 'x'.repeat(100));
  await store.checkpointTo(storage);
  store.close();
  await rejectsKs(() => StateStore.restoreFrom(storage, { fallback: true, maxMemoryBytes: 64 << 10 }), StoreFullError, 'STORE_FULL', 'restoreFrom');
  const back = await StateStore.restoreFrom(storage, { maxMemoryBytes: 4 << 20 });
  assert.is(back.memory().entries, 5001);
  back.close();
});

Budget('maxMemoryBytes must be a number of bytes', async () => {
  for (const bad of [0, -1, Number.NaN, Infinity, '1000' as unknown as number]) {
    await rejectsKs(() => StateStore.create({ maxMemoryBytes: bad }), InvalidArgumentError, 'INVALID_ARGUMENT', `maxMemoryBytes ${String(bad)}`);
  }
  const s = await StateStore.create({ maxMemoryBytes: 1e12 });
  s.valueState<number>('n').set(1, 1);
  s.close();
});

Budget.run();
