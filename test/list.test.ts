// ListState, ported from Flink's StateBackendTestBase (testListState,
// testListStateAPIs, testListStateAddNull and friends) with keystate's
// documented difference: an absent list reads as [] (Flink returns null).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError, StateStore, type ListState } from './_backend.js';
import { checkpointBytes, text, throwsKs } from './_util.js';

const Basics = suite('list: API');

Basics('add, update, get keep insertion order; snapshots are isolated (testListState)', async () => {
  const store = await StateStore.create({ maxParallelism: 10 });
  const state = store.listState<string>('id', { codec: 'string' });
  store.setCurrentKey(1);
  assert.equal(state.get(), []);
  state.add('1');
  store.setCurrentKey(2);
  assert.equal(state.get(), []);
  state.update(['2']);
  store.setCurrentKey(1);
  assert.equal(state.get(), ['1']);

  const snap1 = store.snapshot();
  store.setCurrentKey(1);
  state.add('u1');
  store.setCurrentKey(2);
  state.add('u2');
  store.setCurrentKey(3);
  state.add('u3');
  const snap2 = store.snapshot();

  const live = (k: number) => {
    store.setCurrentKey(k);
    return state.get().join(',');
  };
  assert.is(live(1), '1,u1');
  assert.is(live(2), '2,u2');
  assert.is(live(3), 'u3');
  const v1 = snap1.listState<string>('id');
  assert.equal([v1.get(1), v1.get(2), v1.get(3)], [['1'], ['2'], []]);
  const v2 = snap2.listState<string>('id');
  assert.equal([v2.get(1), v2.get(2), v2.get(3)], [['1', 'u1'], ['2', 'u2'], ['u3']]);

  // Writes after snap2: add, update, clear; neither snapshot moves.
  store.setCurrentKey(1);
  state.add('w1');
  store.setCurrentKey(2);
  state.update(['replaced']);
  store.setCurrentKey(3);
  state.clear();
  assert.equal([v1.get(1), v1.get(2), v1.get(3)], [['1'], ['2'], []]);
  assert.equal([v2.get(1), v2.get(2), v2.get(3)], [['1', 'u1'], ['2', 'u2'], ['u3']]);
  assert.equal([live(1), live(2), live(3)], ['1,u1,w1', 'replaced', '']);
  snap1.release();
  snap2.release();

  const restored = await StateStore.restore([await checkpointBytes(store)]);
  const again = restored.listState<string>('id', { codec: 'string' });
  assert.equal(again.forKey(1).get(), ['1', 'u1', 'w1']);
  assert.equal(again.forKey(2).get(), ['replaced']);
  assert.equal(again.forKey(3).get(), []);
});

Basics('update/addAll semantics (testListStateAPIs)', async () => {
  const store = await StateStore.create();
  const state = store.listState<number>('id', { codec: 'number' });
  store.setCurrentKey('def');
  assert.equal(state.get(), []);
  state.add(17);
  state.add(11);
  assert.equal(state.get(), [17, 11]);
  state.update([]);
  assert.equal(state.get(), [], 'update([]) clears');
  assert.is(store.memory().entries, 0, 'update([]) removes the entry');
  state.update([10, 16]);
  assert.equal(state.get(), [10, 16]);
  assert.equal(state.get(), [10, 16], 'reading does not consume');

  store.setCurrentKey('abc');
  assert.equal(state.get(), []);

  store.setCurrentKey('g');
  assert.equal(state.get(), []);
  state.addAll([]);
  assert.equal(state.get(), []);
  assert.is(store.memory().entries, 1, 'addAll([]) on an absent list stores nothing');
  state.addAll([3, 4]);
  assert.equal(state.get(), [3, 4]);
  state.addAll([]);
  assert.equal(state.get(), [3, 4]);
  state.addAll([5, 6]);
  assert.equal(state.get(), [3, 4, 5, 6]);
  state.addAll([]);
  assert.equal(state.get(), [3, 4, 5, 6]);
  state.update([1, 2]);
  assert.equal(state.get(), [1, 2]);

  store.setCurrentKey('def');
  assert.equal(state.get(), [10, 16]);
  state.clear();
  assert.equal(state.get(), []);

  store.setCurrentKey('g');
  state.add(3);
  state.add(2);
  state.add(1);
  store.setCurrentKey('def');
  assert.equal(state.get(), []);
  store.setCurrentKey('g');
  assert.equal(state.get(), [1, 2, 3, 2, 1], 'update replaced, add appended, duplicates kept');
  state.update([5, 6]);
  assert.equal(state.get(), [5, 6]);
  state.clear();
  assert.is(store.memory().entries, 0);
});

Basics('addAll and update take any iterable', async () => {
  const store = await StateStore.create();
  const state = store.listState<string>('l', { codec: 'string' }).forKey('k');
  state.addAll(new Set(['a', 'b']));
  state.addAll((function* () {
    yield 'c';
    yield 'd';
  })());
  assert.equal(state.get(), ['a', 'b', 'c', 'd']);
  state.update(new Set(['x']));
  assert.equal(state.get(), ['x']);
});

Basics('zero-length elements (0, "", empty bytes) are elements', async () => {
  const store = await StateStore.create();
  const nums = store.listState<number>('n', { codec: 'number' }).forKey('k');
  nums.update([0, 0, 1, 0]);
  nums.add(0);
  assert.equal(nums.get(), [0, 0, 1, 0, 0]);
  const strs = store.listState<string>('s', { codec: 'string' }).forKey('k');
  strs.add('');
  strs.addAll(['', 'a', '']);
  assert.equal(strs.get(), ['', '', 'a', '']);
  const bytes = store.listState<Uint8Array>('b', { codec: 'bytes' }).forKey('k');
  bytes.add(new Uint8Array(0));
  bytes.add(Uint8Array.of(1));
  assert.equal(bytes.get(), [new Uint8Array(0), Uint8Array.of(1)]);
});

Basics('namespaces and bound keys', async () => {
  const store = await StateStore.create();
  const state = store.listState<string>('l', { codec: 'string' });
  store.setCurrentKey('k');
  state.add('plain');
  state.withNamespace('w1').add('one');
  state.withNamespace('w1').add('one again');
  state.withNamespace('w2').addAll(['two']);
  assert.equal(state.get(), ['plain']);
  assert.equal(state.withNamespace('w1').get(), ['one', 'one again']);
  assert.equal(state.withNamespace('w2').get(), ['two']);
  assert.equal(state.forKey('other').withNamespace('w1').get(), []);
  const snap = store.snapshot();
  assert.equal(snap.listState<string>('l').get('k', 'w1'), ['one', 'one again']);
  assert.equal(snap.listState<string>('l').get('k'), ['plain']);
  assert.is(snap.listState('l').entries().length, 3);
  snap.release();
});

Basics.run();

// ---- nulls ------------------------------------------------------------------------

const Nulls = suite('list: null arguments');

type Op = [string, (s: ListState<number>) => void];
const nullOps: Op[] = [
  ['add(null)', (s) => s.add(null as unknown as number)],
  ['add(undefined)', (s) => s.add(undefined as unknown as number)],
  ['addAll(null)', (s) => s.addAll(null as unknown as number[])],
  ['addAll(undefined)', (s) => s.addAll(undefined as unknown as number[])],
  ['addAll([1, null])', (s) => s.addAll([1, null as unknown as number])],
  ['addAll([3, null, 5])', (s) => s.addAll([3, null as unknown as number, 5])],
  ['addAll([undefined])', (s) => s.addAll([undefined as unknown as number])],
  ['update(null)', (s) => s.update(null as unknown as number[])],
  ['update([7, null])', (s) => s.update([7, null as unknown as number])],
  ['update([3, null, 5])', (s) => s.update([3, null as unknown as number, 5])],
];

Nulls('null arguments and elements throw NULL_ELEMENT and leave an absent list absent', async () => {
  const store = await StateStore.create();
  const state = store.listState<number>('l', { codec: 'number' });
  store.setCurrentKey('abc');
  for (const [what, op] of nullOps) {
    throwsKs(() => op(state), InvalidArgumentError, 'NULL_ELEMENT', what);
    assert.equal(state.get(), [], `${what}: list still absent`);
  }
  assert.is(store.memory().entries, 0);
});

Nulls('null arguments and elements leave an existing list unchanged', async () => {
  const store = await StateStore.create();
  const state = store.listState<number>('l', { codec: 'number' });
  store.setCurrentKey('abc');
  state.addAll([1, 2, 3]);
  for (const [what, op] of nullOps) {
    throwsKs(() => op(state), InvalidArgumentError, 'NULL_ELEMENT', what);
    assert.equal(state.get(), [1, 2, 3], `${what}: list unchanged`);
  }
  // The same through a bound handle and a namespace.
  const bound = state.forKey('b').withNamespace('w');
  bound.add(9);
  for (const [what, op] of nullOps) {
    throwsKs(() => op(bound), InvalidArgumentError, 'NULL_ELEMENT', `bound ${what}`);
    assert.equal(bound.get(), [9]);
  }
});

Nulls.run();

// ---- sizes ------------------------------------------------------------------------

const Sizes = suite('list: large lists and element sizes');

Sizes('10k elements round-trip, live, in a snapshot and through a checkpoint', async () => {
  const store = await StateStore.create();
  const state = store.listState<number>('big', { codec: 'number' });
  store.setCurrentKey('k');
  const expected = Array.from({ length: 10_000 }, (_, i) => (i % 3 === 0 ? -i : i * 1.5));
  for (let i = 0; i < 5_000; i++) state.add(expected[i]);
  state.addAll(expected.slice(5_000));
  assert.equal(state.get(), expected);
  const snap = store.snapshot();
  state.add(42);
  assert.equal(snap.listState<number>('big').get('k'), expected);
  snap.release();

  const updated = store.listState<string>('strings', { codec: 'string' }).forKey('k');
  const strs = Array.from({ length: 10_000 }, (_, i) => `element ${i}`);
  updated.update(strs);
  assert.equal(updated.get(), strs);

  const restored = await StateStore.restore([await checkpointBytes(store)]);
  assert.equal(restored.listState<number>('big', { codec: 'number' }).forKey('k').get(), [...expected, 42]);
  assert.equal(restored.listState<string>('strings', { codec: 'string' }).forKey('k').get(), strs);
});

Sizes('elements of varied sizes across the 1-, 2- and 3-byte length boundaries', async () => {
  const store = await StateStore.create();
  const state = store.listState<string>('s', { codec: 'string' });
  store.setCurrentKey('k');
  // ASCII lengths around 127/128 and 16383/16384 bytes, multi-byte text, and larger.
  const lengths = [0, 1, 126, 127, 128, 129, 255, 256, 1000, 16_383, 16_384, 16_385, 70_000, 300_000];
  const elements = lengths.map((n, i) => 'x'.repeat(n).replace(/^x/, String.fromCharCode(97 + (i % 26))));
  elements.push(text(5_000, 7), text(40, 8), '€'.repeat(43), '€'.repeat(5_462), '😀'.repeat(4_096));
  for (const e of elements) state.add(e);
  assert.equal(state.get(), elements, 'one add at a time');
  state.update(elements);
  assert.equal(state.get(), elements, 'update with all');
  state.clear();
  state.addAll(elements.slice(0, 7));
  state.addAll(elements.slice(7));
  assert.equal(state.get(), elements, 'addAll in two parts');

  const bytes = store.listState<Uint8Array>('b', { codec: 'bytes' }).forKey('k');
  const blobs = [0, 127, 128, 16_384, 100_000].map((n) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff));
  bytes.addAll(blobs);
  bytes.add(blobs[3]);
  assert.equal(bytes.get(), [...blobs, blobs[3]]);

  const restored = await StateStore.restore([await checkpointBytes(store)]);
  assert.equal(restored.listState<string>('s', { codec: 'string' }).forKey('k').get(), elements);
  assert.equal(restored.listState<Uint8Array>('b', { codec: 'bytes' }).forKey('k').get(), [...blobs, blobs[3]]);
});

Sizes('structured elements with the default codec', async () => {
  const store = await StateStore.create();
  const state = store.listState<{ id: number; tags: string[] }>('objs').forKey('k');
  const items = Array.from({ length: 300 }, (_, i) => ({ id: i, tags: Array.from({ length: i % 5 }, (_, j) => `t${j}`) }));
  state.addAll(items);
  assert.equal(state.get(), items);
  const got = state.get();
  got[0].tags.push('mutated');
  assert.equal(state.get()[0], items[0], 'elements read are copies');
});

Sizes.run();

// ---- snapshots --------------------------------------------------------------------

const Isolation = suite('list: snapshot isolation');

Isolation('add after a snapshot is not visible in it, for many keys', async () => {
  const store = await StateStore.create();
  const state = store.listState<number>('l', { codec: 'number' });
  for (let k = 0; k < 500; k++) state.forKey(k).addAll([k, k + 1]);
  const snap = store.snapshot();
  for (let k = 0; k < 500; k++) {
    const h = state.forKey(k);
    if (k % 4 === 0) h.add(-1);
    else if (k % 4 === 1) h.update([-2]);
    else if (k % 4 === 2) h.clear();
    else h.addAll([-3, -4]);
  }
  for (let k = 500; k < 600; k++) state.forKey(k).add(k);
  const view = snap.listState<number>('l');
  for (let k = 0; k < 600; k++) assert.equal(view.get(k), k < 500 ? [k, k + 1] : [], `key ${k}`);
  assert.equal(state.forKey(0).get(), [0, 1, -1]);
  assert.equal(state.forKey(1).get(), [-2]);
  assert.equal(state.forKey(2).get(), []);
  assert.equal(state.forKey(3).get(), [3, 4, -3, -4]);
  snap.release();
});

Isolation('appends to a list held by two snapshots', async () => {
  const store = await StateStore.create();
  const state = store.listState<string>('l', { codec: 'string' }).forKey('k');
  state.add('a');
  const s1 = store.snapshot();
  state.add('b');
  const s2 = store.snapshot();
  state.add('c');
  state.add('d');
  assert.equal(s1.listState<string>('l').get('k'), ['a']);
  assert.equal(s2.listState<string>('l').get('k'), ['a', 'b']);
  s1.release();
  state.add('e');
  assert.equal(s2.listState<string>('l').get('k'), ['a', 'b']);
  assert.equal(state.get(), ['a', 'b', 'c', 'd', 'e']);
  s2.release();
});

Isolation.run();
