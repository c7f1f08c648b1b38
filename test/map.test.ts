// MapState, ported from Flink's StateBackendTestBase (testMapState,
// testMapStateIsEmpty, testMapStateDefaultValue) plus typed user keys, null
// values and snapshot isolation. Iteration order is unspecified: entries are
// compared as sorted sets.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError, StateStore, type Key, type MapState } from './_backend.js';
import { checkpointBytes, keyText, sortedBy, throwsKs } from './_util.js';

const sortedEntries = <V>(e: Iterable<[Key, V]>) => sortedBy(e, ([k]) => keyText(k));
const sortedKeys = (ks: Iterable<Key>) => sortedBy(ks, keyText);

const Api = suite('map: API');

Api('get, put, contains, remove, size, isEmpty', async () => {
  const store = await StateStore.create();
  const m = store.mapState<string, number>('m', { valueCodec: 'number' });
  store.setCurrentKey('user');
  assert.ok(m.isEmpty());
  assert.is(m.size(), 0);
  assert.is(m.get('a'), undefined);
  assert.not.ok(m.contains('a'));
  m.put('a', 1);
  m.put('b', 2);
  assert.not.ok(m.isEmpty());
  assert.is(m.size(), 2);
  assert.is(m.get('a'), 1);
  assert.ok(m.contains('b'));
  m.put('a', 10);
  assert.is(m.get('a'), 10, 'put overwrites');
  assert.is(m.size(), 2);
  assert.is(m.remove('a'), true);
  assert.is(m.remove('a'), false);
  assert.is(m.remove('never'), false);
  assert.not.ok(m.contains('a'));
  assert.is(m.size(), 1);
  assert.is(m.get('b'), 2);
});

Api('putAll takes a Map, pairs and a plain object', async () => {
  const store = await StateStore.create();
  const m = store.mapState<string, number>('m', { valueCodec: 'number' });
  store.setCurrentKey(1);
  m.putAll(new Map([['a', 1], ['b', 2]]));
  m.putAll([['c', 3], ['a', 11]]);
  m.putAll({ d: 4, e: 5 } as Record<string, number>);
  assert.equal(sortedEntries(m.entries()), [['a', 11], ['b', 2], ['c', 3], ['d', 4], ['e', 5]]);
  m.putAll(new Map());
  m.putAll([]);
  m.putAll({});
  assert.is(m.size(), 5);
});

Api('keys, values, entries and iteration return every entry (4096 entries)', async () => {
  const store = await StateStore.create();
  const m = store.mapState<number, number>('m', { keyCodec: 'number', valueCodec: 'number' });
  store.setCurrentKey('k');
  const n = 4096;
  for (let i = 0; i < n; i++) m.put(i, i * 2);
  assert.is(m.size(), n);
  const keys = m.keys().sort((a, b) => a - b);
  assert.equal(keys, Array.from({ length: n }, (_, i) => i));
  assert.equal(m.values().sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i * 2));
  const entries = m.entries().sort((a, b) => a[0] - b[0]);
  assert.equal(entries, Array.from({ length: n }, (_, i) => [i, i * 2]));
  const iterated = [...m].sort((a, b) => a[0] - b[0]);
  assert.equal(iterated, entries);
  // entries() is read at once: removing while walking it visits every entry.
  let seen = 0;
  for (const [k] of m) {
    if (k % 2 === 0) m.remove(k);
    seen++;
  }
  assert.is(seen, n);
  assert.is(m.size(), n / 2);
  assert.ok(m.keys().every((k) => k % 2 === 1));
});

Api('removing the last entry empties the map and removes the entry (testMapStateIsEmpty)', async () => {
  const store = await StateStore.create();
  const m = store.mapState<number, number>('m', { keyCodec: 'number', valueCodec: 'number' });
  store.setCurrentKey('k');
  assert.ok(m.isEmpty());
  for (let i = 0; i < 1024; i++) {
    m.put(i, 2 * i);
    assert.not.ok(m.isEmpty());
  }
  for (let i = 0; i < 1024; i++) {
    assert.not.ok(m.isEmpty(), `not empty before removing ${i}`);
    m.remove(i);
  }
  assert.ok(m.isEmpty());
  assert.is(m.size(), 0);
  assert.equal(m.entries(), []);
  assert.is(store.memory().entries, 0, 'no entry is left behind');
});

Api('absent and cleared maps: empty collections (testMapStateDefaultValue)', async () => {
  const store = await StateStore.create();
  const m = store.mapState<string, string>('m', { valueCodec: 'string' });
  store.setCurrentKey('k');
  assert.equal(m.entries(), []);
  assert.equal(m.keys(), []);
  assert.equal(m.values(), []);
  assert.equal([...m], []);
  m.put('Ciao', 'Hello');
  m.put('Bello', 'Nice');
  assert.is(m.get('Ciao'), 'Hello');
  assert.is(m.get('Bello'), 'Nice');
  m.clear();
  assert.equal(m.entries(), []);
  assert.ok(m.isEmpty());
  assert.is(m.get('Ciao'), undefined);
  assert.is(store.memory().entries, 0);
  m.clear();
  assert.ok(m.isEmpty(), 'clear of an absent map');
});

Api('one map per key and namespace', async () => {
  const store = await StateStore.create();
  const m = store.mapState<string, number>('m', { valueCodec: 'number' });
  m.forKey('a').put('x', 1);
  m.forKey('b').put('x', 2);
  m.forKey('a').withNamespace('w').put('x', 3);
  store.setCurrentKey('a');
  assert.is(m.get('x'), 1);
  assert.is(m.withNamespace('w').get('x'), 3);
  assert.is(m.size(), 1);
  m.clear();
  assert.is(m.forKey('b').get('x'), 2);
  assert.is(m.withNamespace('w').get('x'), 3);
  assert.is(m.get('x'), undefined);
});

Api('user keys are typed like store keys by default', async () => {
  const store = await StateStore.create();
  const m = store.mapState<Key, string>('m', { valueCodec: 'string' });
  store.setCurrentKey('k');
  const keys: [Key, string][] = [
    [1, 'number'],
    ['1', 'string'],
    [1n, 'bigint'],
    [Uint8Array.of(0x31), 'bytes'],
    [0, 'zero'],
    ['', 'empty'],
  ];
  for (const [k, v] of keys) m.put(k, v);
  assert.is(m.size(), keys.length);
  for (const [k, v] of keys) assert.is(m.get(k), v, `user key ${String(k)} (${typeof k})`);
  m.put(-0, 'minus zero');
  assert.is(m.get(0), 'minus zero', '-0 is the user key 0');
  assert.is(m.size(), keys.length);
  assert.equal(sortedKeys(m.keys()), sortedKeys(keys.map(([k]) => k)), 'keys come back with their types');
  assert.ok(m.remove(Uint8Array.of(0x31)));
  assert.is(m.get('1'), 'string');
});

Api('null values are allowed with the cbor codec', async () => {
  const store = await StateStore.create();
  const m = store.mapState<string, string | null>('m', { valueCodec: 'cbor' });
  store.setCurrentKey('k');
  m.put('a', null);
  m.put('b', 'x');
  assert.ok(m.contains('a'));
  assert.is(m.get('a'), null);
  assert.is(m.get('missing'), undefined, 'absent is undefined, stored null is null');
  assert.is(m.size(), 2);
  assert.not.ok(m.isEmpty());
  assert.equal(sortedEntries(m.entries()), [['a', null], ['b', 'x']]);
  const snap = store.snapshot();
  assert.is(snap.mapState<string, string | null>('m').get('k', 'a'), null);
  assert.ok(snap.mapState<string, string | null>('m').contains('k', 'a'));
  snap.release();
  const restored = await StateStore.restore([await checkpointBytes(store)]);
  const again = restored.mapState<string, string | null>('m', { valueCodec: 'cbor' }).forKey('k');
  assert.ok(again.contains('a'));
  assert.is(again.get('a'), null);
});

Api('null and undefined user keys are refused (INVALID_KEY) and nothing is stored', async () => {
  const store = await StateStore.create();
  const m = store.mapState<string, number>('m', { valueCodec: 'number' });
  store.setCurrentKey('k');
  throwsKs(() => m.put(null as unknown as string, 1), InvalidArgumentError, 'INVALID_KEY', 'put(null, 1)');
  throwsKs(() => m.put(undefined as unknown as string, 1), InvalidArgumentError, 'INVALID_KEY', 'put(undefined, 1)');
  throwsKs(() => m.put({} as unknown as string, 1), InvalidArgumentError, 'INVALID_KEY', 'put({}, 1)');
  throwsKs(() => m.get(null as unknown as string), InvalidArgumentError, 'INVALID_KEY', 'get(null)');
  throwsKs(() => m.contains(null as unknown as string), InvalidArgumentError, 'INVALID_KEY', 'contains(null)');
  throwsKs(() => m.remove(null as unknown as string), InvalidArgumentError, 'INVALID_KEY', 'remove(null)');
  assert.ok(m.isEmpty());
  assert.is(store.memory().entries, 0);
});

Api('string user keys with a string key codec, structured values with the default codec', async () => {
  const store = await StateStore.create();
  const m = store.mapState<string, { n: number; l: string[] }>('m', { keyCodec: 'string' });
  store.setCurrentKey('k');
  m.put('a', { n: 1, l: ['x'] });
  m.put('ü', { n: 2, l: [] });
  assert.equal(m.get('a'), { n: 1, l: ['x'] });
  assert.equal(sortedEntries(m.entries()), [['a', { n: 1, l: ['x'] }], ['ü', { n: 2, l: [] }]]);
  const got = m.get('a')!;
  got.l.push('mutated');
  assert.equal(m.get('a'), { n: 1, l: ['x'] }, 'values read are copies');
});

Api.run();

// ---- snapshot isolation --------------------------------------------------------------

const Isolation = suite('map: snapshot isolation');

Isolation('writes after a snapshot do not leak into it (testMapState)', async () => {
  const store = await StateStore.create();
  const m = store.mapState<number, string>('m', { keyCodec: 'number', valueCodec: 'string' });
  store.setCurrentKey('1');
  assert.is(m.get(1), undefined);
  m.put(1, '1');
  store.setCurrentKey('2');
  m.put(2, '2');
  store.setCurrentKey('11');
  m.put(11, '11');
  store.setCurrentKey('1');
  assert.ok(m.contains(1));
  assert.is(m.get(1), '1');

  const snap1 = store.snapshot();
  store.setCurrentKey('1');
  m.put(1, '101');
  store.setCurrentKey('2');
  m.put(102, '102');
  store.setCurrentKey('3');
  m.put(103, '103');
  m.putAll(new Map([[1031, '1031'], [1032, '1032']]));
  const snap2 = store.snapshot();

  const entriesOf = (k: string) => sortedBy(m.forKey(k).entries(), ([uk]) => String(uk).padStart(8, '0'));
  assert.equal(entriesOf('1'), [[1, '101']]);
  assert.equal(entriesOf('2'), [[2, '2'], [102, '102']]);
  assert.equal(entriesOf('3'), [[103, '103'], [1031, '1031'], [1032, '1032']]);

  // Mutations after snap2: clear, remove, and rewrite-while-iterating (Flink's iterator test).
  store.setCurrentKey('1');
  m.clear();
  store.setCurrentKey('2');
  m.remove(102);
  store.setCurrentKey('3');
  for (const [uk, v] of m) {
    if (v.length !== 4) m.remove(uk);
    else m.put(uk, `${v}_updated`);
  }
  assert.not.ok(m.forKey('2').contains(102));
  assert.equal(entriesOf('3'), [[1031, '1031_updated'], [1032, '1032_updated']]);

  const sortedSnap = (v: [number, string][]) => sortedBy(v, ([uk]) => String(uk).padStart(8, '0'));
  const v1 = snap1.mapState<number, string>('m');
  assert.is(v1.get('1', 1), '1');
  assert.equal(sortedSnap(v1.entries('1')), [[1, '1']]);
  assert.equal(sortedSnap(v1.entries('2')), [[2, '2']]);
  assert.equal(v1.entries('3'), []);
  const v2 = snap2.mapState<number, string>('m');
  assert.is(v2.get('1', 1), '101');
  assert.equal(sortedSnap(v2.entries('2')), [[2, '2'], [102, '102']]);
  assert.equal(sortedSnap(v2.entries('3')), [[103, '103'], [1031, '1031'], [1032, '1032']]);
  assert.is(v2.size('3'), 3);
  assert.equal(v2.keys('3').sort((a, b) => a - b), [103, 1031, 1032]);
  assert.equal(v2.values('3').sort(), ['103', '1031', '1032']);
  assert.ok(v2.contains('2', 102));
  assert.not.ok(v1.contains('2', 102));
  snap1.release();
  snap2.release();
});

Isolation('clear() after a snapshot: the snapshot still sees the old map; re-creation after clear', async () => {
  const store = await StateStore.create();
  const m = store.mapState<string, number>('m', { valueCodec: 'number' });
  const h = m.forKey('k');
  h.putAll([['a', 1], ['b', 2], ['c', 3]]);
  const snap = store.snapshot();
  h.clear();
  assert.ok(h.isEmpty());
  const view = snap.mapState<string, number>('m');
  assert.equal(sortedEntries(view.entries('k')), [['a', 1], ['b', 2], ['c', 3]]);
  assert.is(view.size('k'), 3);

  // Re-create after clear: only the new entries are live; the snapshot is unchanged.
  h.put('b', 20);
  h.put('d', 40);
  assert.equal(sortedEntries(h.entries()), [['b', 20], ['d', 40]]);
  assert.is(h.get('a'), undefined, 'a cleared entry does not come back');
  assert.equal(sortedEntries(view.entries('k')), [['a', 1], ['b', 2], ['c', 3]]);
  assert.is(view.get('k', 'd'), undefined);

  const snap2 = store.snapshot();
  h.clear();
  h.put('e', 5);
  assert.equal(sortedEntries(snap2.mapState<string, number>('m').entries('k')), [['b', 20], ['d', 40]]);
  assert.equal(sortedEntries(view.entries('k')), [['a', 1], ['b', 2], ['c', 3]]);
  assert.equal(h.entries(), [['e', 5]]);
  snap.release();
  snap2.release();

  // The checkpoint holds the final map only.
  const restored = await StateStore.restore([await checkpointBytes(store)]);
  assert.equal(restored.mapState<string, number>('m', { valueCodec: 'number' }).forKey('k').entries(), [['e', 5]]);
});

Isolation('per-entry writes on many keys while a snapshot is open', async () => {
  const store = await StateStore.create();
  const m = store.mapState<number, number>('m', { keyCodec: 'number', valueCodec: 'number' });
  for (let k = 0; k < 200; k++) for (let u = 0; u < 10; u++) m.forKey(k).put(u, k * 100 + u);
  const snap = store.snapshot();
  for (let k = 0; k < 200; k++) {
    const h: MapState<number, number> = m.forKey(k);
    if (k % 3 === 0) h.put(0, -1);
    else if (k % 3 === 1) h.remove(5);
    else h.clear();
    h.put(99, 99);
  }
  const view = snap.mapState<number, number>('m');
  for (let k = 0; k < 200; k++) {
    const got = view.entries(k).sort((a, b) => a[0] - b[0]);
    assert.equal(got, Array.from({ length: 10 }, (_, u) => [u, k * 100 + u]), `key ${k}`);
  }
  snap.release();
  assert.is(m.forKey(2).size(), 1);
  assert.is(m.forKey(1).size(), 10);
  assert.is(m.forKey(0).get(0), -1);
});

Isolation.run();
