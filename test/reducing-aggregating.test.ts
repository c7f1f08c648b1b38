// ReducingState and AggregatingState, ported from Flink's StateBackendTestBase
// (testReducingState, testReducingStateAddAndGet, testReducingStateDefaultValue,
// testAggregatingStateAddAndGetWith{Mutable,Immutable}Accumulator).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError, StateStore } from './_backend.js';
import { checkpointBytes, throwsKs } from './_util.js';

const Reducing = suite('reducing state');

const append = (a: string, b: string) => `${a},${b}`;
const sum = (a: number, b: number) => a + b;

Reducing('add folds; snapshots keep the value of their moment (testReducingState)', async () => {
  const store = await StateStore.create({ maxParallelism: 10 });
  const state = store.reducingState<string>('id', { reduce: append, codec: 'string' });
  store.setCurrentKey(1);
  assert.is(state.get(), undefined);
  state.add('1');
  store.setCurrentKey(2);
  assert.is(state.get(), undefined);
  state.add('2');
  store.setCurrentKey(1);
  assert.is(state.get(), '1');

  const snap1 = store.snapshot();
  store.setCurrentKey(1);
  state.add('u1');
  store.setCurrentKey(2);
  state.add('u2');
  store.setCurrentKey(3);
  state.add('u3');
  const snap2 = store.snapshot();

  const live = (k: number) => state.forKey(k).get();
  assert.equal([live(1), live(2), live(3)], ['1,u1', '2,u2', 'u3']);
  const v1 = snap1.reducingState<string>('id');
  assert.equal([v1.get(1), v1.get(2), v1.get(3)], ['1', '2', undefined]);
  const v2 = snap2.reducingState<string>('id');
  assert.equal([v2.get(1), v2.get(2), v2.get(3)], ['1,u1', '2,u2', 'u3']);

  store.setCurrentKey(1);
  state.add('w1');
  state.forKey(3).clear();
  assert.equal([v1.get(1), v2.get(1), v2.get(3)], ['1', '1,u1', 'u3']);
  snap1.release();
  snap2.release();

  const restored = await StateStore.restore([await checkpointBytes(store)]);
  const again = restored.reducingState<string>('id', { reduce: append, codec: 'string' });
  assert.equal([again.forKey(1).get(), again.forKey(2).get(), again.forKey(3).get()], ['1,u1,w1', '2,u2', undefined]);
  again.forKey(2).add('after');
  assert.is(again.forKey(2).get(), '2,u2,after', 'adds continue after restore');
});

Reducing('sums per key; clear removes the entry (testReducingStateAddAndGet)', async () => {
  const store = await StateStore.create();
  const state = store.reducingState<number>('sum', { reduce: sum, codec: 'number' });
  store.setCurrentKey('abc');
  assert.is(state.get(), undefined);
  store.setCurrentKey('def');
  assert.is(state.get(), undefined);
  state.add(17);
  state.add(11);
  assert.is(state.get(), 28);
  store.setCurrentKey('abc');
  assert.is(state.get(), undefined);
  store.setCurrentKey('g');
  assert.is(state.get(), undefined);
  state.add(1);
  state.add(2);
  store.setCurrentKey('def');
  assert.is(state.get(), 28);
  state.clear();
  assert.is(state.get(), undefined);
  store.setCurrentKey('g');
  state.add(3);
  state.add(2);
  state.add(1);
  store.setCurrentKey('def');
  assert.is(state.get(), undefined);
  store.setCurrentKey('g');
  assert.is(state.get(), 9);
  state.clear();
  assert.is(store.memory().entries, 0);
});

Reducing('absent reads undefined; the reducer is not called for the first element (testReducingStateDefaultValue)', async () => {
  const store = await StateStore.create();
  const calls: [string, string][] = [];
  const state = store.reducingState<string>('s', {
    reduce: (a, b) => {
      calls.push([a, b]);
      return a + b;
    },
    codec: 'string',
  });
  store.setCurrentKey('k');
  assert.is(state.get(), undefined);
  state.add('Ciao');
  assert.is(state.get(), 'Ciao');
  assert.equal(calls, [], 'first element stored as is');
  state.add('!');
  assert.equal(calls, [['Ciao', '!']]);
  assert.is(state.get(), 'Ciao!');
  state.clear();
  assert.is(state.get(), undefined);
  state.add('again');
  assert.is(calls.length, 1, 'after clear, the next element is stored as is');
});

Reducing('add(null) and add(undefined) are rejected and change nothing', async () => {
  const store = await StateStore.create();
  const state = store.reducingState<number>('sum', { reduce: sum, codec: 'number' });
  store.setCurrentKey('k');
  throwsKs(() => state.add(null as unknown as number), InvalidArgumentError, 'NULL_ELEMENT', 'add(null) on absent');
  assert.is(state.get(), undefined);
  assert.is(store.memory().entries, 0);
  state.add(5);
  throwsKs(() => state.add(null as unknown as number), InvalidArgumentError, 'NULL_ELEMENT', 'add(null)');
  throwsKs(() => state.add(undefined as unknown as number), InvalidArgumentError, 'NULL_ELEMENT', 'add(undefined)');
  assert.is(state.get(), 5);
});

Reducing('a throwing reducer leaves the value unchanged', async () => {
  const store = await StateStore.create();
  const state = store.reducingState<number>('sum', {
    reduce: (a, b) => {
      if (b < 0) throw new RangeError('negative');
      return a + b;
    },
    codec: 'number',
  });
  store.setCurrentKey('k');
  state.add(1);
  state.add(2);
  assert.throws(() => state.add(-1), (e: unknown) => e instanceof RangeError);
  assert.is(state.get(), 3);
});

Reducing('namespaces, bound keys and structured values', async () => {
  const store = await StateStore.create();
  type Stat = { n: number; max: number };
  const state = store.reducingState<Stat>('stat', { reduce: (a, b) => ({ n: a.n + b.n, max: Math.max(a.max, b.max) }) });
  const w1 = state.forKey('k').withNamespace(1);
  const w2 = state.forKey('k').withNamespace(2);
  w1.add({ n: 1, max: 5 });
  w1.add({ n: 1, max: 3 });
  w2.add({ n: 1, max: 9 });
  assert.equal(w1.get(), { n: 2, max: 5 });
  assert.equal(w2.get(), { n: 1, max: 9 });
  assert.is(state.forKey('k').get(), undefined);
  const snap = store.snapshot();
  w1.add({ n: 1, max: 50 });
  assert.equal(snap.reducingState<Stat>('stat').get('k', 1), { n: 2, max: 5 });
  assert.equal(w1.get(), { n: 3, max: 50 });
  snap.release();
});

Reducing.run();

// ---- aggregating --------------------------------------------------------------------

const Aggregating = suite('aggregating state');

Aggregating('immutable accumulator: add and get (testAggregatingStateAddAndGetWithImmutableAccumulator)', async () => {
  const store = await StateStore.create();
  const state = store.aggregatingState<number, number, number>('agg', {
    createAccumulator: () => 0,
    add: (v, acc) => acc + v,
    getResult: (acc) => acc,
    codec: 'number',
  });
  store.setCurrentKey('abc');
  assert.is(state.get(), undefined);
  store.setCurrentKey('def');
  assert.is(state.get(), undefined);
  state.add(17);
  state.add(11);
  assert.is(state.get(), 28);
  store.setCurrentKey('abc');
  assert.is(state.get(), undefined);
  store.setCurrentKey('g');
  state.add(1);
  state.add(2);
  store.setCurrentKey('def');
  assert.is(state.get(), 28);
  state.clear();
  assert.is(state.get(), undefined);
  store.setCurrentKey('g');
  state.add(3);
  state.add(2);
  state.add(1);
  store.setCurrentKey('def');
  assert.is(state.get(), undefined);
  store.setCurrentKey('g');
  assert.is(state.get(), 9);
  state.clear();
  assert.is(store.memory().entries, 0);
});

Aggregating('mutable accumulator mutated in place: snapshots do not see later adds', async () => {
  const store = await StateStore.create();
  type Acc = { value: number; count: number };
  let created = 0;
  let results = 0;
  const state = store.aggregatingState<number, Acc, string>('agg', {
    createAccumulator: () => {
      created++;
      return { value: 0, count: 0 };
    },
    add: (v, acc) => {
      acc.value += v;
      acc.count++;
      return acc;
    },
    getResult: (acc) => {
      results++;
      return `${acc.value}/${acc.count}`;
    },
    codec: 'cbor',
  });
  store.setCurrentKey('def');
  assert.is(state.get(), undefined);
  assert.is(results, 0, 'getResult is not called for an absent accumulator');
  state.add(17);
  assert.is(created, 1);
  state.add(11);
  assert.is(created, 1, 'the accumulator is created once');
  assert.is(state.get(), '28/2');

  const snap = store.snapshot();
  state.add(2);
  state.forKey('new').add(1);
  assert.is(state.get(), '30/3');
  // Snapshot reads of an aggregating state give the stored accumulator.
  const view = snap.reducingState<Acc>('agg');
  assert.equal(view.get('def'), { value: 28, count: 2 });
  assert.is(view.get('new'), undefined);
  snap.release();

  const restored = await StateStore.restore([await checkpointBytes(store)]);
  const again = restored.aggregatingState<number, Acc, string>('agg', {
    createAccumulator: () => ({ value: 0, count: 0 }),
    add: (v, acc) => ({ value: acc.value + v, count: acc.count + 1 }),
    getResult: (acc) => `${acc.value}/${acc.count}`,
    codec: 'cbor',
  });
  assert.is(again.forKey('def').get(), '30/3');
  again.forKey('def').add(10);
  assert.is(again.forKey('def').get(), '40/4');
  assert.is(again.forKey('new').get(), '1/1');
});

Aggregating('add(null) and add(undefined) are rejected and change nothing', async () => {
  const store = await StateStore.create();
  const state = store.aggregatingState<number, number, number>('agg', {
    createAccumulator: () => 0,
    add: (v, acc) => acc + v,
    getResult: (acc) => acc,
    codec: 'number',
  });
  store.setCurrentKey('k');
  throwsKs(() => state.add(null as unknown as number), InvalidArgumentError, 'NULL_ELEMENT', 'add(null) on absent');
  assert.is(state.get(), undefined);
  assert.is(store.memory().entries, 0);
  state.add(4);
  throwsKs(() => state.add(undefined as unknown as number), InvalidArgumentError, 'NULL_ELEMENT', 'add(undefined)');
  assert.is(state.get(), 4);
});

Aggregating('several keys and namespaces; snapshot reads of accumulators', async () => {
  const store = await StateStore.create();
  // Average: accumulator [sum, count], result sum / count.
  const state = store.aggregatingState<number, [number, number], number>('avg', {
    createAccumulator: () => [0, 0],
    add: (v, [s, c]) => [s + v, c + 1],
    getResult: ([s, c]) => s / c,
  });
  for (let k = 0; k < 100; k++) {
    for (let i = 0; i <= k; i++) state.forKey(k).add(i);
    state.forKey(k).withNamespace('double').add(2 * k);
  }
  const snap = store.snapshot();
  for (let k = 0; k < 100; k++) state.forKey(k).add(1000);
  const view = snap.reducingState<[number, number]>('avg');
  for (let k = 0; k < 100; k++) {
    assert.equal(view.get(k), [(k * (k + 1)) / 2, k + 1], `accumulator of ${k}`);
    assert.equal(view.get(k, 'double'), [2 * k, 1]);
    assert.is(state.forKey(k).withNamespace('double').get(), 2 * k);
    assert.is(state.forKey(k).get(), ((k * (k + 1)) / 2 + 1000) / (k + 2));
  }
  snap.release();
});

Aggregating('missing functions are refused at declaration', async () => {
  const store = await StateStore.create();
  throwsKs(
    () => store.aggregatingState('a', { createAccumulator: () => 0, add: (v: number, a: number) => a + v } as never),
    InvalidArgumentError,
    'INVALID_ARGUMENT',
    'no getResult',
  );
  throwsKs(() => store.reducingState('r', {} as never), InvalidArgumentError, 'INVALID_ARGUMENT', 'no reduce');
});

Aggregating.run();
