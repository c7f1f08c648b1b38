// ValueState, ported from Flink's StateBackendTestBase (testValueState,
// testMultipleValueStates, testValueStateNullUpdate, testValueStateDefaultValue,
// testCopyDefaultValue, testNumStateEntries) plus keystate's explicit-key
// forms, bound handles, namespaces and typed keys.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError, KeyGroupOutOfRangeError, SnapshotReleasedError, StateStore, type Key, type Snapshot } from './_backend.js';
import { checkpointBytes, throwsKs } from './_util.js';

// ---- interleaved snapshots -------------------------------------------------------

const Snapshots = suite('value: interleaved snapshots');

Snapshots('writes after a snapshot do not leak into it (testValueState)', async () => {
  const store = await StateStore.create({ maxParallelism: 10 });
  const state = store.valueState<string>('id', { codec: 'string' });

  store.setCurrentKey(1);
  assert.is(state.value(), undefined);
  state.update('1');
  store.setCurrentKey(2);
  assert.is(state.value(), undefined);
  state.update('2');
  store.setCurrentKey(1);
  assert.is(state.value(), '1');

  const snap1 = store.snapshot();
  store.setCurrentKey(1);
  state.update('u1');
  store.setCurrentKey(2);
  state.update('u2');
  store.setCurrentKey(3);
  state.update('u3');
  const snap2 = store.snapshot();

  // Live state.
  for (const [k, v] of [[1, 'u1'], [2, 'u2'], [3, 'u3']] as const) {
    store.setCurrentKey(k);
    assert.is(state.value(), v, `live key ${k}`);
  }
  // snap1 still sees the old values; key 3 did not exist.
  const v1 = snap1.valueState<string>('id');
  assert.is(v1.get(1), '1');
  assert.is(v1.get(2), '2');
  assert.is(v1.get(3), undefined);
  // snap2 sees the overwrites.
  const v2 = snap2.valueState<string>('id');
  assert.is(v2.get(1), 'u1');
  assert.is(v2.get(2), 'u2');
  assert.is(v2.get(3), 'u3');

  // Overwrite again with both open: neither moves.
  store.setCurrentKey(1);
  state.update('w1');
  state.clear();
  assert.is(v1.get(1), '1');
  assert.is(v2.get(1), 'u1');
  assert.is(state.value(), undefined);
  snap1.release();
  snap2.release();
});

Snapshots('checkpoints taken at those moments restore to them', async () => {
  const store = await StateStore.create({ maxParallelism: 10 });
  const state = store.valueState<string>('id', { codec: 'string' });
  state.set(1, '1');
  state.set(2, '2');
  const cp1 = store.checkpoint();
  state.set(1, 'u1');
  state.set(2, 'u2');
  state.set(3, 'u3');
  // cp1 is streamed after the overwrites: it still holds the values of its moment.
  const b1 = await cp1.bytes();
  cp1.confirm();
  const cp2 = store.checkpoint();
  state.delete(3);
  const b2 = await cp2.bytes();
  cp2.confirm();

  const r1 = await StateStore.restore([b1]);
  const s1 = r1.valueState<string>('id', { codec: 'string' });
  assert.equal([s1.get(1), s1.get(2), s1.get(3)], ['1', '2', undefined]);

  const r2 = await StateStore.restore(cp2.kind === 'incremental' ? [b1, b2] : [b2]);
  const s2 = r2.valueState<string>('id', { codec: 'string' });
  assert.equal([s2.get(1), s2.get(2), s2.get(3)], ['u1', 'u2', 'u3']);
});

Snapshots('several snapshots at once; releasing one leaves the others exact', async () => {
  const store = await StateStore.create();
  const state = store.valueState<number>('n', { codec: 'number' });
  const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
  const snaps: Snapshot[] = [];
  // Round r writes r*1000+i to every third key (shifted by r) and deletes some.
  const expected: Map<string, number>[] = [];
  const live = new Map<string, number>();
  for (let r = 0; r < 4; r++) {
    keys.forEach((k, i) => {
      if ((i + r) % 3 === 0) {
        state.set(k, r * 1000 + i);
        live.set(k, r * 1000 + i);
      } else if ((i + r) % 7 === 0) {
        state.delete(k);
        live.delete(k);
      }
    });
    snaps.push(store.snapshot());
    expected.push(new Map(live));
  }
  const check = (j: number) => {
    const view = snaps[j].valueState<number>('n');
    for (const k of keys) assert.is(view.get(k), expected[j].get(k), `snapshot ${j} key ${k}`);
  };
  for (let j = 0; j < snaps.length; j++) check(j);

  snaps[1].release();
  for (const k of keys) state.set(k, -1);
  for (const j of [0, 2, 3]) check(j);
  throwsKs(() => snaps[1].valueState<number>('n').get('k0'), SnapshotReleasedError, 'SNAPSHOT_RELEASED', 'read of a released snapshot');

  snaps[3].release();
  snaps[0].release();
  check(2);
  snaps[2].release();
  assert.is(store.memory().openSnapshots, 0);
});

Snapshots('a view taken before release throws after it; release is idempotent', async () => {
  const store = await StateStore.create();
  const state = store.valueState<string>('s', { codec: 'string' });
  state.set('a', 'x');
  const snap = store.snapshot();
  const view = snap.valueState<string>('s');
  assert.is(view.get('a'), 'x');
  snap.release();
  throwsKs(() => view.get('a'), SnapshotReleasedError, 'SNAPSHOT_RELEASED', 'view.get');
  throwsKs(() => view.entries(), SnapshotReleasedError, 'SNAPSHOT_RELEASED', 'view.entries');
  throwsKs(() => snap.valueState('s').get('a'), SnapshotReleasedError, 'SNAPSHOT_RELEASED', 'a new view');
  snap.release();
  snap[Symbol.dispose]();
  assert.is(store.memory().openSnapshots, 0);
  assert.is(state.get('a'), 'x');
});

Snapshots('snapshot entries() lists exactly the values of its moment', async () => {
  const store = await StateStore.create();
  const state = store.valueState<number>('n', { codec: 'number' });
  for (let i = 0; i < 50; i++) state.set(i, i * i);
  const snap = store.snapshot();
  for (let i = 0; i < 50; i += 2) state.delete(i);
  for (let i = 50; i < 60; i++) state.set(i, 0);
  const got = snap.valueState<number>('n').entries().map((e) => [e.key, e.value, e.namespace] as const);
  got.sort((a, b) => (a[0] as number) - (b[0] as number));
  assert.equal(got, Array.from({ length: 50 }, (_, i) => [i, i * i, undefined]));
  snap.release();
});

Snapshots.run();

// ---- null updates, defaults -------------------------------------------------------

const Defaults = suite('value: null updates and defaults');

Defaults('update(null) and update(undefined) clear (testValueStateNullUpdate)', async () => {
  const store = await StateStore.create();
  const state = store.valueState<number>('id', { default: 42 });
  store.setCurrentKey(1);
  assert.is(state.value(), 42);
  state.update(1);
  assert.is(state.value(), 1);
  store.setCurrentKey(2);
  assert.is(state.value(), 42);
  store.setCurrentKey(1);
  state.clear();
  assert.is(state.value(), 42);
  state.update(17);
  assert.is(state.value(), 17);
  state.update(null);
  assert.is(state.value(), 42);
  assert.not.ok(state.has(1), 'null update stores nothing');
  state.update(17);
  state.update(undefined);
  assert.is(state.value(), 42);
  assert.not.ok(state.has(1), 'undefined update stores nothing');
  assert.is(store.memory().entries, 0);

  // The checkpoint holds nothing for key 1, and the restored state reads the default.
  const restored = await StateStore.restore([await checkpointBytes(store)]);
  assert.is(restored.memory().entries, 0);
  const again = restored.valueState<number>('id', { default: 42 });
  assert.is(again.get(1), 42);
  assert.not.ok(again.has(1));
});

Defaults('set(key, null) deletes', async () => {
  const store = await StateStore.create();
  const state = store.valueState<string>('s', { codec: 'string' });
  state.set('k', 'v');
  state.set('k', null);
  assert.not.ok(state.has('k'));
  state.set('k', 'v');
  state.set('k', undefined);
  assert.not.ok(state.has('k'));
  assert.is(store.memory().entries, 0);
});

Defaults('no default: absent reads undefined (testValueStateNullAsDefaultValue)', async () => {
  const store = await StateStore.create();
  const state = store.valueState<string>('s', { codec: 'string' });
  store.setCurrentKey('a');
  assert.is(state.value(), undefined);
  state.update('Ciao');
  assert.is(state.value(), 'Ciao');
  state.clear();
  assert.is(state.value(), undefined);
  assert.is(state.get('nobody'), undefined);
});

Defaults('a default is returned, never stored (testValueStateDefaultValue)', async () => {
  const store = await StateStore.create();
  const state = store.valueState('s', { default: 'Hello' });
  store.setCurrentKey(1);
  assert.is(state.value(), 'Hello');
  state.update('Ciao');
  assert.is(state.value(), 'Ciao');
  state.clear();
  assert.is(state.value(), 'Hello');
  assert.is(store.memory().entries, 0);
  const snap = store.snapshot();
  assert.is(snap.valueState<string>('s').get(1), 'Hello', 'snapshot reads the default too');
  assert.equal(snap.valueState('s').entries(), []);
  snap.release();

  const restored = await StateStore.restore([await checkpointBytes(store)]);
  restored.setCurrentKey(1);
  assert.is(restored.valueState('s', { default: 'Hello' }).value(), 'Hello');
});

Defaults('an object default is a fresh copy on every read (testCopyDefaultValue)', async () => {
  const store = await StateStore.create();
  const dflt = { count: -1, tags: ['a'] };
  const state = store.valueState<{ count: number; tags: string[] }>('obj', { default: dflt });
  store.setCurrentKey(1);
  const d1 = state.value()!;
  store.setCurrentKey(2);
  const d2 = state.value()!;
  assert.equal(d1, { count: -1, tags: ['a'] });
  assert.equal(d2, d1);
  assert.ok(d1 !== d2, 'two reads give two objects');
  assert.ok(d1 !== dflt, 'not the descriptor object itself');

  d1.count = 99;
  d1.tags.push('mutated');
  assert.equal(state.value(), { count: -1, tags: ['a'] }, 'mutating a returned default changes nothing');
  assert.equal(state.get(1), { count: -1, tags: ['a'] });
  const viaGet = state.get('x')!;
  viaGet.tags.length = 0;
  assert.equal(state.get('x'), { count: -1, tags: ['a'] });
  assert.is(store.memory().entries, 0, 'reading a default stores nothing');

  const snap = store.snapshot();
  const s1 = snap.valueState<{ count: number; tags: string[] }>('obj').get(1)!;
  s1.count = 5;
  assert.equal(snap.valueState('obj').get(1), { count: -1, tags: ['a'] }, 'snapshot default is fresh too');
  snap.release();
});

Defaults('stored objects are copies: no aliasing with the caller', async () => {
  const store = await StateStore.create();
  const state = store.valueState<{ a: number[] }>('obj', { codec: 'cbor' });
  const o = { a: [1, 2] };
  state.set('k', o);
  o.a.push(3);
  assert.equal(state.get('k'), { a: [1, 2] }, 'mutating the written object after update');
  const r = state.get('k')!;
  r.a.push(4);
  assert.equal(state.get('k'), { a: [1, 2] }, 'mutating a read object');
});

Defaults('entry counts follow writes and clears (testNumStateEntries)', async () => {
  const store = await StateStore.create();
  const state = store.valueState<string>('s', { codec: 'string' });
  assert.is(store.memory().entries, 0);
  store.setCurrentKey(0);
  state.update('hello');
  state.update('ciao');
  assert.is(store.memory().entries, 1);
  store.setCurrentKey(42);
  state.update('foo');
  assert.is(store.memory().entries, 2);
  assert.equal(store.memory().states.find((s) => s.name === 's')?.entries, 2);
  store.setCurrentKey(0);
  state.clear();
  assert.is(store.memory().entries, 1);
  store.setCurrentKey(42);
  state.clear();
  assert.is(store.memory().entries, 0);
});

Defaults('states are independent by name (testMultipleValueStates)', async () => {
  const store = await StateStore.create({ maxParallelism: 1 });
  const s1 = store.valueState<string>('a-string', { codec: 'string' });
  const s2 = store.valueState<number>('an-integer', { codec: 'number' });
  store.setCurrentKey(1);
  assert.is(s1.value(), undefined);
  assert.is(s2.value(), undefined);
  s1.update('1');
  assert.is(s2.value(), undefined);
  s2.update(13);
  assert.is(s1.value(), '1');
  assert.is(s2.value(), 13);

  const restored = await StateStore.restore([await checkpointBytes(store)]);
  restored.setCurrentKey(1);
  assert.is(restored.valueState('a-string', { codec: 'string' }).value(), '1');
  assert.is(restored.valueState('an-integer', { codec: 'number' }).value(), 13);
});

Defaults('declaring the same state twice gives handles on the same data', async () => {
  const store = await StateStore.create();
  const a = store.valueState<number>('n', { codec: 'number' });
  const b = store.valueState<number>('n', { codec: 'number' });
  a.set('k', 7);
  assert.is(b.get('k'), 7);
});

Defaults.run();

// ---- explicit keys, bound keys, namespaces --------------------------------------------

const Keys = suite('value: explicit keys, forKey, namespaces');

Keys('get/set/delete/has by explicit key, without touching the current key', async () => {
  const store = await StateStore.create();
  const state = store.valueState<number>('n', { codec: 'number' });
  store.setCurrentKey('cur');
  state.update(1);
  assert.is(state.get('user-2'), undefined);
  assert.not.ok(state.has('user-2'));
  state.set('user-2', 5);
  assert.is(state.get('user-2'), 5);
  assert.ok(state.has('user-2'));
  assert.is(store.getCurrentKey(), 'cur');
  assert.is(state.value(), 1, 'the current key still reads its own value');
  assert.is(state.get('cur'), 1, 'explicit read of the current key');
  assert.is(state.delete('user-2'), true);
  assert.is(state.delete('user-2'), false);
  assert.is(state.get('user-2'), undefined);
  assert.not.ok(state.has('user-2'));
  assert.is(state.value(), 1);
});

Keys('has() is true for falsy stored values', async () => {
  const store = await StateStore.create();
  const n = store.valueState<number>('n', { codec: 'number' });
  const s = store.valueState<string>('s', { codec: 'string' });
  const b = store.valueState<boolean>('b', { codec: 'boolean' });
  n.set('k', 0);
  s.set('k', '');
  b.set('k', false);
  assert.ok(n.has('k'));
  assert.ok(s.has('k'));
  assert.ok(b.has('k'));
  assert.is(n.get('k'), 0);
  assert.is(s.get('k'), '');
  assert.is(b.get('k'), false);
});

Keys('forKey binds a key: no current key needed, independent of it', async () => {
  const store = await StateStore.create();
  const state = store.valueState<string>('s', { codec: 'string' });
  const alice = state.forKey('alice');
  assert.is(alice.value(), undefined);
  alice.update('A');
  assert.is(alice.value(), 'A');
  assert.is(state.get('alice'), 'A');
  store.setCurrentKey('bob');
  state.update('B');
  assert.is(alice.value(), 'A', 'the bound handle ignores the current key');
  alice.clear();
  assert.is(state.get('alice'), undefined);
  assert.is(state.value(), 'B');
  alice.update(null);
  assert.is(store.memory().entries, 1);
});

Keys('namespaces are separate', async () => {
  const store = await StateStore.create();
  const state = store.valueState<string>('s', { codec: 'string' });
  const w1 = state.withNamespace('window-1');
  const w2 = state.withNamespace('window-2');
  const n1 = state.withNamespace(1);
  store.setCurrentKey('k');
  state.update('none');
  w1.update('one');
  w2.update('two');
  n1.update('number one');
  assert.is(state.value(), 'none');
  assert.is(w1.value(), 'one');
  assert.is(w2.value(), 'two');
  assert.is(n1.value(), 'number one');
  assert.is(state.withNamespace('1').value(), undefined, 'namespaces are typed keys: "1" is not 1');
  assert.is(w1.get('other'), undefined);
  w1.clear();
  assert.is(w1.value(), undefined);
  assert.is(w2.value(), 'two');
  assert.is(state.value(), 'none');

  // forKey and withNamespace compose, in either order.
  state.forKey('x').withNamespace('w').update('xw');
  assert.is(state.withNamespace('w').forKey('x').value(), 'xw');
  assert.is(state.withNamespace('w').get('x'), 'xw');
  assert.is(state.get('x'), undefined);

  const snap = store.snapshot();
  const view = snap.valueState<string>('s');
  assert.is(view.get('k'), 'none');
  assert.is(view.get('k', 'window-2'), 'two');
  assert.is(view.get('k', 1), 'number one');
  assert.is(view.get('k', 'window-1'), undefined);
  assert.is(view.get('x', 'w'), 'xw');
  const entries = view.entries().map((e) => `${String(e.key)}/${e.namespace === undefined ? '-' : String(e.namespace)}=${e.value}`).sort();
  assert.equal(entries, ['k/-=none', 'k/1=number one', 'k/window-2=two', 'x/w=xw']);
  snap.release();
});

Keys('keys are typed: 1, "1", 1n and bytes "1" are four keys; -0 is 0', async () => {
  const store = await StateStore.create();
  const state = store.valueState<string>('s', { codec: 'string' });
  const keys: [Key, string][] = [
    [1, 'number'],
    ['1', 'string'],
    [1n, 'bigint'],
    [new Uint8Array([0x31]), 'bytes'],
  ];
  for (const [k, v] of keys) state.set(k, v);
  for (const [k, v] of keys) assert.is(state.get(k), v, `key ${String(k)} (${typeof k})`);
  assert.is(store.memory().entries, 4);

  state.set(-0, 'zero');
  assert.is(state.get(0), 'zero');
  state.set(0, 'zero again');
  assert.is(state.get(-0), 'zero again');
  assert.is(store.memory().entries, 5);
  store.setCurrentKey(-0);
  assert.is(state.value(), 'zero again');

  // Other near-collisions stay apart.
  state.set('', 'empty string');
  state.set(new Uint8Array(0), 'empty bytes');
  state.set(0n, 'zero bigint');
  assert.is(state.get(''), 'empty string');
  assert.is(state.get(new Uint8Array(0)), 'empty bytes');
  assert.is(state.get(0n), 'zero bigint');
  assert.is(state.get(0), 'zero again');
  // Byte keys compare by content.
  assert.is(state.get(Uint8Array.of(0x31)), 'bytes');
  // Integers and floats that are equal numbers are one key.
  state.set(2, 'two');
  assert.is(state.get(2.0), 'two');
  assert.is(state.get(2.5), undefined);
});

Keys('typed keys survive a checkpoint', async () => {
  const store = await StateStore.create();
  const state = store.valueState<string>('s', { codec: 'string' });
  const keys: Key[] = [1, '1', 1n, Uint8Array.of(0x31), -5, 2 ** 40, -(2n ** 100n), 'ключ', 0.5];
  keys.forEach((k, i) => state.set(k, `v${i}`));
  const restored = await StateStore.restore([await checkpointBytes(store)]);
  const again = restored.valueState<string>('s', { codec: 'string' });
  keys.forEach((k, i) => assert.is(again.get(k), `v${i}`, `key ${String(k)}`));
  const snap = restored.snapshot();
  const got = snap.valueState<string>('s').entries();
  assert.is(got.length, keys.length);
  for (const e of got) {
    const i = Number(e.value.slice(1));
    assert.equal(e.key, keys[i], `entry key ${i} keeps its type`);
  }
  snap.release();
});

Keys('no current key: keyed-context operations throw NO_CURRENT_KEY', async () => {
  const store = await StateStore.create();
  const value = store.valueState<number>('v', { codec: 'number' });
  const list = store.listState<number>('l', { codec: 'number' });
  const map = store.mapState<string, number>('m', { valueCodec: 'number' });
  const red = store.reducingState<number>('r', { reduce: (a, b) => a + b, codec: 'number' });
  const agg = store.aggregatingState<number, number, number>('a', {
    createAccumulator: () => 0,
    add: (v, acc) => acc + v,
    getResult: (acc) => acc,
    codec: 'number',
  });
  assert.is(store.getCurrentKey(), undefined);
  const ops: [string, () => unknown][] = [
    ['value.value', () => value.value()],
    ['value.update', () => value.update(1)],
    ['value.clear', () => value.clear()],
    ['list.get', () => list.get()],
    ['list.add', () => list.add(1)],
    ['list.update', () => list.update([1])],
    ['map.get', () => map.get('a')],
    ['map.put', () => map.put('a', 1)],
    ['map.entries', () => map.entries()],
    ['reducing.add', () => red.add(1)],
    ['reducing.get', () => red.get()],
    ['aggregating.add', () => agg.add(1)],
    ['aggregating.get', () => agg.get()],
  ];
  for (const [what, op] of ops) throwsKs(op, InvalidArgumentError, 'NO_CURRENT_KEY', what);
  assert.is(store.memory().entries, 0, 'nothing was written');
  // The explicit-key and bound forms still work.
  value.set('k', 1);
  assert.is(value.forKey('k').value(), 1);
});

Keys.run();

// ---- batches: setMany / getMany ----------------------------------------------------

const Batches = suite('value: setMany and getMany');

Batches('a batch writes in order, deletes with null, and reads back like single calls', async () => {
  const store = await StateStore.create();
  const v = store.valueState<number>('v', { codec: 'number', default: -1 });
  v.set('gone', 7);
  const n = v.setMany([['a', 1], [2, 2], [3n, 3], [new Uint8Array([4]), 4], ['a', 10], ['gone', null], ['never', undefined]]);
  assert.is(n, 7);
  const keys: Key[] = ['a', 2, 3n, new Uint8Array([4]), 'gone', 'never', '2'];
  const got = v.getMany(keys);
  assert.equal(got, [10, 2, 3, 4, -1, -1, -1]);
  assert.equal(got, keys.map((k) => v.get(k)));
  assert.is(v.has('gone'), false);
  assert.is(store.memory().states.find((s) => s.name === 'v')?.entries, 4);
  assert.equal(v.getMany([]), []);
  assert.is(v.setMany([]), 0);
});

Batches('objects: defaults are fresh copies; namespaces and a Map as input', async () => {
  const store = await StateStore.create();
  const v = store.valueState<{ n: number }>('o', { default: { n: 0 } });
  const w = v.withNamespace('window-1');
  w.setMany(new Map([['x', { n: 1 }], ['y', { n: 2 }]]));
  assert.equal(w.getMany(['x', 'y']), [{ n: 1 }, { n: 2 }]);
  const [d1, d2] = v.getMany(['x', 'y']);
  assert.equal(d1, { n: 0 }, 'the default namespace holds nothing');
  assert.ok(d1 !== d2, 'each default is a fresh copy');
  (d1 as { n: number }).n = 99;
  assert.equal(v.get('x'), { n: 0 });
});

Batches('a refused batch writes nothing', async () => {
  const store = await StateStore.create({ maxParallelism: 16, keyGroupRange: { start: 0, end: 7 } });
  const v = store.valueState<number>('v', { codec: 'number' });
  const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
  const inside = keys.filter((k) => store.keyGroupOf(k) <= 7);
  const outside = keys.find((k) => store.keyGroupOf(k) > 7) as string;
  v.set(inside[0], 1);
  throwsKs(() => v.setMany([[inside[0], 2], [inside[1], 3], [outside, 4]]), KeyGroupOutOfRangeError, 'KEY_GROUP_OUT_OF_RANGE', 'key outside the range');
  throwsKs(() => v.setMany([[inside[0], 2], [inside[1], 'three' as unknown as number]]), InvalidArgumentError, 'INVALID_VALUE', 'value the codec refuses');
  throwsKs(() => v.setMany([[inside[0], 2], [undefined as unknown as Key, 3]]), InvalidArgumentError, 'INVALID_KEY', 'undefined key');
  throwsKs(() => v.getMany([inside[0], outside]), KeyGroupOutOfRangeError, 'KEY_GROUP_OUT_OF_RANGE', 'read outside the range');
  assert.is(v.get(inside[0]), 1);
  assert.is(v.has(inside[1]), false);
  assert.is(store.memory().entries, 1);
});

Batches('a batch larger than the kept scratch buffer, under an open snapshot, then checkpointed', async () => {
  const store = await StateStore.create();
  const v = store.valueState<string>('s', { codec: 'string' });
  const N = 60_000;
  const key = (i: number) => `user-${i}`;
  v.setMany(Array.from({ length: N }, (_, i) => [key(i), `first-${i}`] as const));
  const snap = store.snapshot();
  // Over 1 MiB of scratch: the buffers grow for the batch and are given back after it.
  v.setMany(Array.from({ length: N }, (_, i) => [key(i), i % 3 === 0 ? null : `second-${i}-${'x'.repeat(20)}`] as const));
  const all = Array.from({ length: N }, (_, i) => key(i));
  const live = v.getMany(all);
  for (let i = 0; i < N; i += 997) assert.is(live[i], i % 3 === 0 ? undefined : `second-${i}-${'x'.repeat(20)}`, `live ${i}`);
  const old = snap.valueState<string>('s');
  for (let i = 0; i < N; i += 997) assert.is(old.get(key(i)), `first-${i}`, `snapshot ${i}`);
  snap.release();
  // Single calls still work after the buffers shrank.
  v.set('after', 'ok');
  assert.is(v.get('after'), 'ok');
  const back = await StateStore.restore([await checkpointBytes(store)]);
  const r = back.valueState<string>('s', { codec: 'string' });
  assert.equal(r.getMany(all.slice(0, 50)), live.slice(0, 50));
  assert.is(back.memory().entries, N - Math.ceil(N / 3) + 1);
});

Batches('a batch lays entries out as single sets do, and rewriting them grows nothing', async () => {
  // 4 key groups of about 1,000 entries: tables large enough to hold short entries inline.
  const N = 4000;
  const val = (i: number, r: string) => `${r}${String(i).padStart(4, '0')}`; // 5 bytes every time
  const pairs = Array.from({ length: N }, (_, i) => [`user-${i}`, val(i, 'a')] as const);
  const one = await StateStore.create({ maxParallelism: 4 });
  const a = one.valueState<string>('s', { codec: 'string' });
  for (const [k, v] of pairs) a.set(k, v);
  const many = await StateStore.create({ maxParallelism: 4 });
  const b = many.valueState<string>('s', { codec: 'string' });
  b.setMany(pairs);
  const filled = many.memory().liveBytes;
  // A first batch into empty tables once kept them narrow (a record per entry: more bytes).
  assert.ok(filled <= one.memory().liveBytes, `batch ${filled} B against ${one.memory().liveBytes} B set one by one`);
  // Rewriting every key once doubled the index (each put counted as a new entry).
  b.setMany(pairs.map(([k], i) => [k, val(i, 'b')] as const));
  assert.is(many.memory().liveBytes, filled);
  assert.equal(b.getMany(['user-0', 'user-3999']), ['b0000', 'b3999']);
  assert.is(many.memory().entries, N);
});

Batches.run();
