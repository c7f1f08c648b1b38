// Every error keystate throws is a KeystateError with a string `code` and
// the subclass that says what went wrong.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  CheckpointStateError,
  CorruptCheckpointError,
  InvalidArgumentError,
  KeyGroupOutOfRangeError,
  KeystateError,
  SnapshotReleasedError,
  StateDefinitionError,
  StateStore,
  StoreClosedError,
  StoreFullError,
  type Key,
} from './_backend.js';
import { checkpointBytes, rejectsKs, throwsKs } from './_util.js';

const Classes = suite('errors: classes');

Classes('error classes: subclasses of KeystateError and Error, named after themselves', async () => {
  const classes = [
    InvalidArgumentError,
    KeyGroupOutOfRangeError,
    StateDefinitionError,
    SnapshotReleasedError,
    CheckpointStateError,
    CorruptCheckpointError,
    StoreClosedError,
    StoreFullError,
  ];
  const store = await StateStore.create();
  const e = throwsKs(() => store.valueState(''), InvalidArgumentError, 'INVALID_ARGUMENT', 'empty name');
  assert.instance(e, Error);
  assert.is(e.name, 'InvalidArgumentError');
  assert.ok(e.stack === undefined || typeof e.stack === 'string');
  for (const C of classes) assert.ok(C.prototype instanceof KeystateError, `${C.name} extends KeystateError`);
  // Each class is distinct: an InvalidArgumentError is none of the others.
  for (const C of classes) if (C !== InvalidArgumentError) assert.not.instance(e, C, C.name);
});

Classes.run();

const Definitions = suite('errors: state definitions');

Definitions('a state needs a non-empty string name', async () => {
  const store = await StateStore.create();
  const declare: [string, (name: string) => unknown][] = [
    ['valueState', (n) => store.valueState(n)],
    ['listState', (n) => store.listState(n)],
    ['mapState', (n) => store.mapState(n)],
    ['reducingState', (n) => store.reducingState<number>(n, { reduce: (a, b) => a + b })],
    ['aggregatingState', (n) => store.aggregatingState<number, number, number>(n, { createAccumulator: () => 0, add: (v, a) => a + v, getResult: (a) => a })],
  ];
  for (const [what, f] of declare) {
    throwsKs(() => f(''), InvalidArgumentError, 'INVALID_ARGUMENT', `${what}('')`);
    throwsKs(() => f(undefined as unknown as string), InvalidArgumentError, 'INVALID_ARGUMENT', `${what}(undefined)`);
    throwsKs(() => f(42 as unknown as string), InvalidArgumentError, 'INVALID_ARGUMENT', `${what}(42)`);
  }
  assert.equal(store.stateNames(), []);
});

Definitions('re-declaring a name with another kind: StateDefinitionError', async () => {
  const store = await StateStore.create();
  store.valueState<number>('v', { codec: 'number' });
  store.listState<number>('l', { codec: 'number' });
  store.mapState<string, number>('m', { valueCodec: 'number' });
  store.reducingState<number>('r', { reduce: (a, b) => a + b, codec: 'number' });
  const kinds: [string, (name: string) => unknown][] = [
    ['value', (n) => store.valueState(n, { codec: 'number' })],
    ['list', (n) => store.listState(n, { codec: 'number' })],
    ['map', (n) => store.mapState(n, { valueCodec: 'number' })],
    ['reducing', (n) => store.reducingState<number>(n, { reduce: (a, b) => a + b, codec: 'number' })],
    ['aggregating', (n) => store.aggregatingState<number, number, number>(n, { createAccumulator: () => 0, add: (v, a) => a + v, getResult: (a) => a, codec: 'number' })],
  ];
  for (const [name, own] of [['v', 'value'], ['l', 'list'], ['m', 'map'], ['r', 'reducing']]) {
    for (const [kind, f] of kinds) {
      if (kind === own) {
        f(name);
        continue;
      }
      throwsKs(() => f(name), StateDefinitionError, ['WRONG_STATE_KIND', 'INCOMPATIBLE_STATE'], `${own} '${name}' declared as ${kind}`);
    }
  }
  assert.equal(store.stateNames().sort(), ['l', 'm', 'r', 'v']);
});

Definitions('snapshot views of unknown states or of another kind: StateDefinitionError', async () => {
  const store = await StateStore.create();
  store.valueState<number>('v', { codec: 'number' }).set('k', 1);
  store.listState<number>('l', { codec: 'number' });
  const snap = store.snapshot();
  throwsKs(() => snap.valueState('nope'), StateDefinitionError, 'UNKNOWN_STATE', 'unknown value state');
  throwsKs(() => snap.mapState('nope'), StateDefinitionError, 'UNKNOWN_STATE', 'unknown map state');
  throwsKs(() => snap.listState('v'), StateDefinitionError, 'WRONG_STATE_KIND', 'value state as list');
  throwsKs(() => snap.mapState('l'), StateDefinitionError, 'WRONG_STATE_KIND', 'list state as map');
  throwsKs(() => snap.reducingState('v'), StateDefinitionError, 'WRONG_STATE_KIND', 'value state as reducing');
  assert.is(snap.valueState<number>('v').get('k'), 1);
  snap.release();
});

Definitions.run();

// ---- closed stores ----------------------------------------------------------------------------

const Closed = suite('errors: closed store');

Closed('every operation on a closed store throws StoreClosedError', async () => {
  const store = await StateStore.create();
  const v = store.valueState<number>('v', { codec: 'number' });
  const l = store.listState<number>('l', { codec: 'number' });
  const m = store.mapState<string, number>('m', { valueCodec: 'number' });
  const r = store.reducingState<number>('r', { reduce: (a, b) => a + b, codec: 'number' });
  store.setCurrentKey('k');
  v.update(1);
  l.add(1);
  m.put('a', 1);
  r.add(1);
  const snap = store.snapshot();
  const view = snap.valueState<number>('v');
  const cp = store.checkpoint();
  const bound = v.forKey('b');
  store.close();

  const ops: [string, () => unknown][] = [
    ['valueState', () => store.valueState('w')],
    ['listState', () => store.listState('w2')],
    ['mapState', () => store.mapState('w3')],
    ['setCurrentKey', () => store.setCurrentKey('x')],
    ['keyGroupOf', () => store.keyGroupOf('x')],
    ['snapshot', () => store.snapshot()],
    ['checkpoint', () => store.checkpoint()],
    ['memory', () => store.memory()],
    ['stateNames', () => store.stateNames()],
    ['maxParallelism', () => store.maxParallelism],
    ['keyGroupRange', () => store.keyGroupRange],
    ['value.value', () => v.value()],
    ['value.update', () => v.update(2)],
    ['value.get', () => v.get('k')],
    ['value.set', () => v.set('k', 2)],
    ['value.delete', () => v.delete('k')],
    ['value.has', () => v.has('k')],
    ['value.clear', () => v.clear()],
    ['value.forKey', () => v.forKey('z')],
    ['bound value', () => bound.value()],
    ['list.get', () => l.get()],
    ['list.add', () => l.add(2)],
    ['map.get', () => m.get('a')],
    ['map.put', () => m.put('a', 2)],
    ['map.entries', () => m.entries()],
    ['reducing.add', () => r.add(2)],
    ['reducing.get', () => r.get()],
    ['snapshot view', () => view.get('k')],
    ['checkpoint confirm', () => cp.confirm()],
  ];
  for (const [what, op] of ops) throwsKs(op, StoreClosedError, 'STORE_CLOSED', what);

  // Reading a checkpoint stream of a closed store fails with the same error.
  const reader = cp.stream().getReader();
  let err: unknown;
  try {
    await reader.read();
  } catch (e) {
    err = e;
  }
  assert.instance(err, StoreClosedError, 'stream read');

  // Closing again, and releasing what is left, are no-ops.
  store.close();
  store[Symbol.dispose]();
  snap.release();
  snap[Symbol.dispose]();
});

Closed('a stream being read when its store closes fails with StoreClosedError', async () => {
  // Enough bytes for several trips to the native export thread (1 MB each),
  // so that the close lands between two of them.
  const store = await StateStore.create();
  const v = store.valueState<string>('v', { codec: 'string' });
  for (let i = 0; i < 20_000; i++) v.set(`k${i}`, `${i}`.padEnd(200, '.'));
  const reader = store.checkpoint().stream({ chunkSize: 4096 }).getReader();
  await reader.read();
  store.close();
  let err: unknown = null;
  let bytes = 0;
  for (;;) {
    try {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.length;
    } catch (e) {
      err = e;
      break;
    }
  }
  assert.instance(err, StoreClosedError, `after ${bytes} more bytes: ${String(err)}`);
  assert.is((err as StoreClosedError).code, 'STORE_CLOSED');
});

Closed('closing one store leaves the others working', async () => {
  const a = await StateStore.create();
  const b = await StateStore.create();
  a.valueState<number>('v', { codec: 'number' }).set('k', 1);
  const bv = b.valueState<number>('v', { codec: 'number' });
  bv.set('k', 2);
  a.close();
  assert.is(bv.get('k'), 2);
  const restored = await StateStore.restore([await checkpointBytes(b)]);
  assert.is(restored.valueState<number>('v', { codec: 'number' }).get('k'), 2);
});

Closed.run();

// ---- keys ------------------------------------------------------------------------------------

const Keys = suite('errors: invalid keys');

const badKeys: [string, unknown][] = [
  ['null', null],
  ['an object', {}],
  ['an array', [1]],
  ['a boolean', true],
  ['a symbol', Symbol('k')],
  ['a Date', new Date(0)],
  ['an ArrayBuffer', new ArrayBuffer(1)],
  ['a Uint16Array', Uint16Array.of(1)],
  ['a function', () => 1],
];

Keys('objects, null and other non-key values: InvalidArgumentError INVALID_KEY, nothing stored', async () => {
  const store = await StateStore.create();
  const v = store.valueState<number>('v', { codec: 'number' });
  const l = store.listState<number>('l', { codec: 'number' });
  const m = store.mapState<Key, number>('m', { valueCodec: 'number' });
  store.setCurrentKey('ok');
  for (const [what, bad] of badKeys) {
    const k = bad as Key;
    throwsKs(() => store.setCurrentKey(k), InvalidArgumentError, 'INVALID_KEY', `setCurrentKey(${what})`);
    throwsKs(() => store.keyGroupOf(k), InvalidArgumentError, 'INVALID_KEY', `keyGroupOf(${what})`);
    throwsKs(() => v.get(k), InvalidArgumentError, 'INVALID_KEY', `get(${what})`);
    throwsKs(() => v.set(k, 1), InvalidArgumentError, 'INVALID_KEY', `set(${what})`);
    throwsKs(() => v.has(k), InvalidArgumentError, 'INVALID_KEY', `has(${what})`);
    throwsKs(() => v.delete(k), InvalidArgumentError, 'INVALID_KEY', `delete(${what})`);
    throwsKs(() => v.forKey(k), InvalidArgumentError, 'INVALID_KEY', `forKey(${what})`);
    throwsKs(() => v.withNamespace(k), InvalidArgumentError, 'INVALID_KEY', `withNamespace(${what})`);
    throwsKs(() => l.forKey(k), InvalidArgumentError, 'INVALID_KEY', `list forKey(${what})`);
    throwsKs(() => m.put(k, 1), InvalidArgumentError, 'INVALID_KEY', `map user key ${what}`);
    throwsKs(() => m.forKey(k), InvalidArgumentError, 'INVALID_KEY', `map forKey(${what})`);
  }
  assert.is(store.getCurrentKey(), 'ok', 'a refused key does not change the current key');
  assert.is(store.memory().entries, 0);
  const snap = store.snapshot();
  throwsKs(() => snap.valueState('v').get(null as unknown as Key), InvalidArgumentError, 'INVALID_KEY', 'snapshot get(null)');
  throwsKs(() => snap.valueState('v').get({} as unknown as Key), InvalidArgumentError, 'INVALID_KEY', 'snapshot get({})');
  snap.release();
});

Keys('an explicit undefined key is refused, not taken as the current key', async () => {
  const store = await StateStore.create();
  const v = store.valueState<number>('v', { codec: 'number' });
  store.setCurrentKey('current');
  v.update(1);
  const k = undefined as unknown as Key;
  throwsKs(() => v.get(k), InvalidArgumentError, 'INVALID_KEY', 'get(undefined)');
  throwsKs(() => v.has(k), InvalidArgumentError, 'INVALID_KEY', 'has(undefined)');
  throwsKs(() => v.set(k, 2), InvalidArgumentError, 'INVALID_KEY', 'set(undefined, 2)');
  throwsKs(() => v.delete(k), InvalidArgumentError, 'INVALID_KEY', 'delete(undefined)');
  throwsKs(() => v.forKey(k), InvalidArgumentError, 'INVALID_KEY', 'forKey(undefined)');
  throwsKs(() => store.setCurrentKey(k), InvalidArgumentError, 'INVALID_KEY', 'setCurrentKey(undefined)');
  assert.is(v.value(), 1, 'the current key was not written');
});

Keys.run();

// ---- store options ------------------------------------------------------------------------------

const Options = suite('errors: store options');

Options('maxParallelism must be an integer in 1..32768', async () => {
  for (const mp of [0, 40_000, 32_769, -1, 1.5, NaN, 2 ** 32 + 128, Infinity, '128' as unknown as number]) {
    await rejectsKs(() => StateStore.create({ maxParallelism: mp }), InvalidArgumentError, 'INVALID_ARGUMENT', `maxParallelism ${String(mp)}`);
  }
  for (const mp of [1, 2, 128, 32_768]) {
    const store = await StateStore.create({ maxParallelism: mp });
    assert.is(store.maxParallelism, mp);
    assert.equal(store.keyGroupRange, { start: 0, end: mp - 1 });
    store.close();
  }
});

Options('keyGroupRange must lie inside 0..maxParallelism-1', async () => {
  const ranges: [number, { start: number; end: number }][] = [
    [128, { start: 0, end: 128 }],
    [128, { start: 100, end: 200 }],
    [128, { start: 200, end: 300 }],
    [128, { start: -1, end: 5 }],
    [128, { start: 10, end: 5 }],
    [10, { start: 0, end: 10 }],
    [128, { start: 0.5, end: 63 }],
    [128, { start: 0, end: 63.5 }],
  ];
  for (const [mp, range] of ranges) {
    await rejectsKs(() => StateStore.create({ maxParallelism: mp, keyGroupRange: range }), InvalidArgumentError, 'INVALID_ARGUMENT', `range ${range.start}..${range.end} of ${mp}`);
  }
  const store = await StateStore.create({ maxParallelism: 128, keyGroupRange: { start: 127, end: 127 } });
  assert.equal(store.keyGroupRange, { start: 127, end: 127 });
});

Options('restore options and sources are checked', async () => {
  const store = await StateStore.create({ maxParallelism: 16 });
  store.valueState<number>('v', { codec: 'number' }).set('k', 1);
  const bytes = await checkpointBytes(store);
  await rejectsKs(() => StateStore.restore([]), InvalidArgumentError, 'INVALID_ARGUMENT', 'no checkpoints');
  await rejectsKs(() => StateStore.restore([bytes], { keyGroupRange: { start: 0, end: 16 } }), InvalidArgumentError, 'INVALID_ARGUMENT', 'range beyond max parallelism');
  await rejectsKs(() => StateStore.restore([bytes], { keyGroupRange: { start: 5, end: 2 } }), InvalidArgumentError, 'INVALID_ARGUMENT', 'inverted range');
  // Past 2^31: refused too, not taken for "no range" (the bindings once passed i32s).
  await rejectsKs(() => StateStore.restore([bytes], { keyGroupRange: { start: 2 ** 31, end: 2 ** 31 } }), InvalidArgumentError, 'INVALID_ARGUMENT', 'range at 2^31');
  await rejectsKs(() => StateStore.restore([[bytes], [bytes]]), InvalidArgumentError, 'INVALID_ARGUMENT', 'several chains without a range');
  await rejectsKs(() => StateStore.restore([42 as never]), InvalidArgumentError, 'INVALID_ARGUMENT', 'a number as a source');
  async function* strings(): AsyncGenerator<string> {
    yield 'not bytes';
  }
  await rejectsKs(() => StateStore.restore([strings() as never]), InvalidArgumentError, 'INVALID_ARGUMENT', 'chunks that are not bytes');
  // The good input still restores.
  const restored = await StateStore.restore([bytes], { keyGroupRange: { start: 0, end: 15 } });
  assert.is(restored.valueState<number>('v', { codec: 'number' }).get('k'), 1);
});

Options.run();
