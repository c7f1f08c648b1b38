/**
 * State time-to-live through the public API, on every backend: the cases of
 * Flink's TtlStateTestBase (flink-runtime, org.apache.flink.runtime.state.ttl)
 * for each state kind with a mock clock, then what keystate adds: expire(),
 * expiry removals as deletes in incremental checkpoints, snapshot isolation,
 * memory(), the header field and its compatibility rules.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError, readFixture, StateDefinitionError, StateStore } from './_backend.js';
import { throwsKs } from './_util.js';

type Ttl = NonNullable<Parameters<StateStore['valueState']>[1]>['ttl'];
const TTL = 100;

/** The mock clock (Flink's MockTtlTimeProvider). */
const time = { now: 0 };
const clock = () => time.now;

/**
 * One state kind, as Flink's TtlStateTestContext: how to declare it, write
 * an update, read it; three updates and what a read returns after each
 * (`getUnexpired`: after `updateEmpty` at 0 and `updateUnexpired` at 50,
 * read at 120, when the first has expired on its own).
 */
interface Ctx {
  name: string;
  make(store: StateStore, ttl: Ttl): any;
  update(h: any, v: unknown): void;
  get(h: any): unknown;
  empty: unknown;
  updateEmpty: unknown;
  updateUnexpired: unknown;
  updateExpired: unknown;
  getUpdateEmpty: unknown;
  getUnexpired: unknown;
  getUpdateExpired: unknown;
}

const contexts: Ctx[] = [
  {
    name: 'value',
    make: (s, ttl) => s.valueState<string>('s', { codec: 'string', ttl }),
    update: (h, v) => h.update(v),
    get: (h) => h.value(),
    empty: undefined,
    updateEmpty: 'a', updateUnexpired: 'b', updateExpired: 'c',
    getUpdateEmpty: 'a', getUnexpired: 'b', getUpdateExpired: 'c',
  },
  {
    // Per element: elements added at 0 are gone at 120, those added at 50 stay.
    name: 'list',
    make: (s, ttl) => s.listState<number>('s', { codec: 'number', ttl }),
    update: (h, v) => h.addAll(v as number[]),
    get: (h) => h.get(),
    empty: [],
    updateEmpty: [5, 7, 10], updateUnexpired: [8, 9, 11], updateExpired: [1, 4],
    getUpdateEmpty: [5, 7, 10], getUnexpired: [8, 9, 11], getUpdateExpired: [1, 4],
  },
  {
    name: 'map (per entry)',
    make: (s, ttl) => s.mapState<string, string>('s', { valueCodec: 'string', ttl }),
    update: (h, v) => h.put('k', v),
    get: (h) => h.get('k'),
    empty: undefined,
    updateEmpty: 'v1', updateUnexpired: 'v2', updateExpired: 'v3',
    getUpdateEmpty: 'v1', getUnexpired: 'v2', getUpdateExpired: 'v3',
  },
  {
    // Each entry expires alone: those of the first update are gone at 120.
    name: 'map (all entries)',
    make: (s, ttl) => s.mapState<number, string>('s', { valueCodec: 'string', ttl }),
    update: (h, v) => h.putAll(v as [number, string][]),
    get: (h) => h.entries().sort((a: [number, string], b: [number, string]) => a[0] - b[0]),
    empty: [],
    updateEmpty: [[3, '3'], [5, '5']], updateUnexpired: [[7, '7'], [12, '12']], updateExpired: [[4, '4'], [15, '15']],
    getUpdateEmpty: [[3, '3'], [5, '5']], getUnexpired: [[7, '7'], [12, '12']], getUpdateExpired: [[4, '4'], [15, '15']],
  },
  {
    // The accumulator is renewed by each add; an expired one is not folded into.
    name: 'reducing',
    make: (s, ttl) => s.reducingState<number>('s', { codec: 'number', reduce: (a, b) => a + b, ttl }),
    update: (h, v) => h.add(v),
    get: (h) => h.get(),
    empty: undefined,
    updateEmpty: 3, updateUnexpired: 5, updateExpired: 7,
    getUpdateEmpty: 3, getUnexpired: 8, getUpdateExpired: 7,
  },
  {
    name: 'aggregating',
    make: (s, ttl) =>
      s.aggregatingState<number, number, string>('s', {
        codec: 'number',
        createAccumulator: () => 0,
        add: (v, acc) => acc + v,
        getResult: (acc) => `sum ${acc}`,
        ttl,
      }),
    update: (h, v) => h.add(v),
    get: (h) => h.get(),
    empty: undefined,
    updateEmpty: 3, updateUnexpired: 5, updateExpired: 7,
    getUpdateEmpty: 'sum 3', getUnexpired: 'sum 8', getUpdateExpired: 'sum 7',
  },
];

const noCleanup = { incremental: false as const };

/** A store and a handle of the context's state, bound to the current key. */
class Run {
  store!: StateStore;
  h: any;
  constructor(readonly ctx: Ctx, readonly ttl: Ttl) {}

  async init(): Promise<this> {
    time.now = 0;
    this.store = await StateStore.create({ maxParallelism: 16, clock });
    this.h = this.ctx.make(this.store, this.ttl);
    this.store.setCurrentKey('defaultKey');
    return this;
  }

  /** Flink's takeAndRestoreSnapshot: a full checkpoint, restored into a new store. */
  async cycle(cp = this.store.checkpoint()): Promise<void> {
    const bytes = await cp.bytes();
    cp.confirm();
    this.store.close();
    this.store = await StateStore.restore([bytes], { clock });
    this.h = this.ctx.make(this.store, this.ttl);
    this.store.setCurrentKey('defaultKey');
  }

  update(v: unknown): void {
    this.ctx.update(this.h, v);
  }
  get(): unknown {
    return this.ctx.get(this.h);
  }
  /** Entries the core holds for the state (expired ones not yet removed included). */
  stored(): number {
    return this.store.memory().states.find((s) => s.name === 's')?.entries ?? 0;
  }
}

const ttlOf = (update: 'onCreateAndWrite' | 'onReadAndWrite', visibility: 'neverReturnExpired' | 'returnExpiredIfNotCleanedUp', ttlMs = TTL): Ttl => ({
  ttlMs,
  update,
  visibility,
  cleanup: noCleanup,
});

for (const ctx of contexts) {
  const t = suite(`ttl: ${ctx.name}`);

  t('non-existent value', async () => {
    const r = await new Run(ctx, ttlOf('onCreateAndWrite', 'neverReturnExpired')).init();
    assert.equal(r.get(), ctx.empty);
  });

  t('exact expiration on write', async () => {
    const r = await new Run(ctx, ttlOf('onCreateAndWrite', 'neverReturnExpired')).init();
    await r.cycle();
    time.now = 0;
    r.update(ctx.updateEmpty);
    await r.cycle();
    time.now = 20;
    assert.equal(r.get(), ctx.getUpdateEmpty, 'unexpired state is available');
    await r.cycle();
    time.now = 50;
    r.update(ctx.updateUnexpired);
    await r.cycle();
    time.now = 120;
    assert.equal(r.get(), ctx.getUnexpired, 'unexpired state is available after an update');
    await r.cycle();
    time.now = 170;
    r.update(ctx.updateExpired);
    await r.cycle();
    time.now = 220;
    assert.equal(r.get(), ctx.getUpdateExpired, 'an update after expiry is available');
    await r.cycle();
    time.now = 300;
    assert.equal(r.get(), ctx.empty, 'expired state is unavailable');
    assert.is(r.stored(), 0, 'the expired entry is removed on access');
  });

  t('exact expiration at lastAccess + ttl <= now', async () => {
    const r = await new Run(ctx, ttlOf('onCreateAndWrite', 'neverReturnExpired')).init();
    time.now = 1000;
    r.update(ctx.updateEmpty);
    time.now = 1000 + TTL - 1;
    assert.equal(r.get(), ctx.getUpdateEmpty, 'one ms before');
    time.now = 1000 + TTL;
    assert.equal(r.get(), ctx.empty, 'at the expiry time');
  });

  t('relaxed expiration on write', async () => {
    const r = await new Run(ctx, ttlOf('onCreateAndWrite', 'returnExpiredIfNotCleanedUp')).init();
    time.now = 0;
    r.update(ctx.updateEmpty);
    await r.cycle();
    time.now = 120;
    assert.equal(r.get(), ctx.getUpdateEmpty, 'expired state not cleaned up yet is returned');
    assert.is(r.stored(), 0, 'and removed by the read that returned it');
    assert.equal(r.get(), ctx.empty, 'expired state is cleared on access');
  });

  t('exact expiration on read', async () => {
    const r = await new Run(ctx, ttlOf('onReadAndWrite', 'neverReturnExpired')).init();
    time.now = 0;
    r.update(ctx.updateEmpty);
    await r.cycle();
    time.now = 50;
    assert.equal(r.get(), ctx.getUpdateEmpty);
    await r.cycle();
    time.now = 120;
    assert.equal(r.get(), ctx.getUpdateEmpty, 'the read at 50 renewed it');
    await r.cycle();
    time.now = 250;
    assert.equal(r.get(), ctx.empty);
    assert.is(r.stored(), 0);
  });

  t('relaxed expiration on read', async () => {
    const r = await new Run(ctx, ttlOf('onReadAndWrite', 'returnExpiredIfNotCleanedUp')).init();
    time.now = 0;
    r.update(ctx.updateEmpty);
    await r.cycle();
    time.now = 50;
    assert.equal(r.get(), ctx.getUpdateEmpty);
    await r.cycle();
    time.now = 170;
    assert.equal(r.get(), ctx.getUpdateEmpty, 'expired state is returned once');
    assert.equal(r.get(), ctx.empty, 'then cleared');
  });

  t('expiration timestamp overflow', async () => {
    const r = await new Run(ctx, ttlOf('onCreateAndWrite', 'neverReturnExpired', Number.MAX_VALUE)).init();
    time.now = 10;
    r.update(ctx.updateEmpty);
    await r.cycle();
    time.now = 50;
    assert.equal(r.get(), ctx.getUpdateEmpty);
    time.now = 2 ** 48 - 1;
    assert.equal(r.get(), ctx.getUpdateEmpty, 'ts + ttl saturates instead of wrapping');
  });

  /** Flink's testMultipleStateIds: keys or namespaces, with the clock set back after restores. */
  async function multipleIds(fullSnapshot: boolean, byNamespace: boolean) {
    const r = await new Run(ctx, { ttlMs: TTL, cleanup: { incremental: false, fullSnapshot } }).init();
    const on = (id: string) => {
      if (byNamespace) return ctx.make(r.store, r.ttl).withNamespace(id);
      r.store.setCurrentKey(id);
      return r.h;
    };
    const upd = (id: string, v: unknown) => ctx.update(on(id), v);
    const get = (id: string) => ctx.get(on(id));
    await r.cycle();
    time.now = 0;
    upd('id2', ctx.updateEmpty);
    await r.cycle();
    time.now = 50;
    upd('id1', ctx.updateEmpty);
    upd('id2', ctx.updateUnexpired);
    time.now = 120;
    await r.cycle();
    assert.equal(get('id1'), ctx.getUpdateEmpty);
    assert.equal(get('id2'), ctx.getUnexpired);
    time.now = 170;
    upd('id2', ctx.updateExpired);
    time.now = 230;
    await r.cycle();
    // Set back: only what the full checkpoint left out stays away.
    if (fullSnapshot) time.now = 170;
    assert.equal(get('id1'), ctx.empty);
    assert.equal(get('id2'), ctx.getUpdateExpired);
    time.now = 300;
    await r.cycle();
    if (fullSnapshot) time.now = 230;
    assert.equal(get('id1'), ctx.empty);
    assert.equal(get('id2'), ctx.empty);
  }

  t('multiple keys', () => multipleIds(false, false));
  t('multiple keys with snapshot cleanup', () => multipleIds(true, false));
  t('multiple namespaces', () => multipleIds(false, true));
  t('multiple namespaces with snapshot cleanup', () => multipleIds(true, true));

  t('snapshot, change, restore', async () => {
    const r = await new Run(ctx, ttlOf('onCreateAndWrite', 'neverReturnExpired')).init();
    time.now = 0;
    r.store.setCurrentKey('k1');
    r.update(ctx.updateEmpty);
    time.now = 50;
    r.update(ctx.updateUnexpired);
    time.now = 100;
    r.store.setCurrentKey('k2');
    r.update(ctx.updateEmpty);
    const cp = r.store.checkpoint();
    time.now = 170;
    r.store.setCurrentKey('k1');
    r.update(ctx.updateExpired);
    r.store.setCurrentKey('k2');
    r.update(ctx.updateUnexpired);
    await r.cycle(cp);
    time.now = 180;
    r.store.setCurrentKey('k1');
    assert.equal(r.get(), ctx.empty, 'k1 had expired at the checkpoint');
    r.store.setCurrentKey('k2');
    assert.equal(r.get(), ctx.getUpdateEmpty, 'k2 as at the checkpoint');
  });

  t('restoring TTL state and declaring it without TTL fails, and the reverse', async () => {
    const r = await new Run(ctx, ttlOf('onCreateAndWrite', 'neverReturnExpired')).init();
    r.update(ctx.updateEmpty);
    const bytes = await r.store.checkpoint().bytes();
    const back = await StateStore.restore([bytes], { clock });
    throwsKs(() => ctx.make(back, undefined), StateDefinitionError, 'INCOMPATIBLE_STATE', 'without TTL');
    const plain = await StateStore.create({ maxParallelism: 16, clock });
    ctx.make(plain, undefined);
    plain.setCurrentKey('defaultKey');
    const pbytes = await plain.checkpoint().bytes();
    const pback = await StateStore.restore([pbytes], { clock });
    throwsKs(() => ctx.make(pback, { ttlMs: TTL }), StateDefinitionError, 'INCOMPATIBLE_STATE', 'with TTL');
    // Its TTL parameters may change across a restore (as in Flink); once declared, not.
    const again = await StateStore.restore([bytes], { clock });
    ctx.make(again, { ttlMs: 5 * TTL });
    throwsKs(() => ctx.make(again, { ttlMs: TTL }), StateDefinitionError, 'INCOMPATIBLE_STATE', 'redeclared');
  });

  t('incremental cleanup of a whole state', async () => {
    const r = await new Run(ctx, { ttlMs: TTL, cleanup: { incremental: { size: 5, everyRecord: true } } }).init();
    const n = 500;
    time.now = 0;
    for (let i = 0; i < n; i++) {
      r.store.setCurrentKey(String(i));
      r.update(ctx.updateEmpty);
    }
    assert.is(r.stored(), ctx.name.startsWith('map (all') ? 2 * n : n);
    time.now = 120;
    // Changing the key is a record: each visits 5 more entries.
    for (let i = 0; i < n; i++) r.store.setCurrentKey(String(i));
    assert.is(r.stored(), 0, 'every expired entry is removed');
  });

  t('incremental cleanup on state access', async () => {
    const r = await new Run(ctx, { ttlMs: TTL, cleanup: { incremental: { size: 3 } } }).init();
    time.now = 0;
    for (let i = 0; i < 100; i++) {
      r.store.setCurrentKey(String(i));
      r.update(ctx.updateEmpty);
    }
    time.now = 50;
    for (let i = 0; i < 10; i++) {
      r.store.setCurrentKey(String(i));
      r.update(ctx.updateUnexpired);
    }
    time.now = 120;
    r.store.setCurrentKey('other');
    for (let i = 0; i < 200; i++) r.get();
    for (let i = 0; i < 10; i++) {
      r.store.setCurrentKey(String(i));
      assert.equal(r.get(), ctx.getUnexpired, `key ${i} renewed at 50 stays`);
    }
    const perKey = ctx.name.startsWith('map (all') ? 2 : 1;
    assert.is(r.stored(), 10 * perKey, 'accesses cleaned up the rest');
  });

  t.run();
}

const more = suite('ttl: store');

more('expire() removes what expired, as deletes in the next incremental checkpoint', async () => {
  time.now = 0;
  const store = await StateStore.create({ maxParallelism: 16, clock, checkpoints: { incremental: true } });
  const v = store.valueState<number>('v', { codec: 'number', ttl: { ttlMs: TTL, cleanup: noCleanup } });
  const l = store.listState<number>('l', { codec: 'number', ttl: { ttlMs: TTL, cleanup: noCleanup } });
  const m = store.mapState<string, number>('m', { valueCodec: 'number', ttl: { ttlMs: TTL, cleanup: noCleanup } });
  const plain = store.valueState<number>('plain', { codec: 'number' });
  for (let i = 0; i < 20; i++) {
    time.now = i % 2 === 0 ? 0 : 60;
    v.set(i, i);
    l.forKey(i % 4).add(i);
    m.forKey('k').put(String(i), i);
    plain.set(i, i);
  }
  const full = store.checkpoint();
  const fullBytes = await full.bytes();
  full.confirm();
  const snap = store.snapshot();
  time.now = 120;
  assert.is(store.expire(), 30, '10 values, 10 list elements, 10 map entries');
  assert.is(store.expire(), 0, 'a second pass finds nothing');
  assert.is(v.get(0), undefined);
  assert.is(v.get(1), 1);
  assert.equal(l.forKey(0).get(), [], 'keys 0 and 2 of the list had only even, expired elements');
  assert.equal(l.forKey(1).get(), [1, 5, 9, 13, 17]);
  assert.is(m.forKey('k').size(), 10);
  assert.is(plain.get(0), 0, 'a state without TTL keeps everything');
  // The snapshot taken before still reads its moment.
  assert.is(snap.valueState<number>('v').get(0), 0);
  snap.release();
  const inc = store.checkpoint();
  assert.is(inc.kind, 'incremental');
  const incBytes = await inc.bytes();
  inc.confirm();
  // Restored at time 0, what expire() removed stays removed: it travelled as deletes.
  time.now = 0;
  const back = await StateStore.restore([fullBytes, incBytes], { clock });
  const bv = back.valueState<number>('v', { codec: 'number', ttl: { ttlMs: TTL } });
  assert.is(bv.get(0), undefined);
  assert.is(bv.get(1), 1);
  assert.equal(back.listState<number>('l', { codec: 'number', ttl: { ttlMs: TTL } }).forKey(2).get(), []);
  assert.is(back.mapState<string, number>('m', { valueCodec: 'number', ttl: { ttlMs: TTL } }).forKey('k').size(), 10);
});

more('cleanup on read travels in incremental checkpoints as a delete', async () => {
  time.now = 0;
  const store = await StateStore.create({ maxParallelism: 16, clock, checkpoints: { incremental: true } });
  const v = store.valueState<string>('v', { codec: 'string', ttl: { ttlMs: TTL, cleanup: noCleanup } });
  v.set('a', 'x');
  const full = store.checkpoint();
  const fb = await full.bytes();
  full.confirm();
  time.now = 200;
  assert.is(v.get('a'), undefined);
  const inc = store.checkpoint();
  const ib = await inc.bytes();
  inc.confirm();
  time.now = 0;
  const back = await StateStore.restore([fb, ib], { clock });
  assert.is(back.valueState<string>('v', { codec: 'string', ttl: { ttlMs: TTL } }).get('a'), undefined);
  time.now = 0;
  const only = await StateStore.restore([fb], { clock });
  assert.is(only.valueState<string>('v', { codec: 'string', ttl: { ttlMs: TTL } }).get('a'), 'x', 'the full checkpoint alone has it');
});

more('a snapshot reads at the time it was taken; writers and cleanup do not change it', async () => {
  time.now = 0;
  const store = await StateStore.create({ maxParallelism: 16, clock });
  const v = store.valueState<string>('v', { codec: 'string', ttl: { ttlMs: TTL, cleanup: { incremental: { size: 10 } } } });
  const m = store.mapState<string, string>('m', { valueCodec: 'string', ttl: { ttlMs: TTL } });
  v.set('a', 'old');
  m.forKey('a').put('x', 'old');
  time.now = 90;
  const snap = store.snapshot();
  time.now = 500;
  assert.is(v.get('a'), undefined);
  assert.is(m.forKey('a').get('x'), undefined);
  store.expire();
  v.set('b', 'new');
  assert.is(snap.valueState<string>('v').get('a'), 'old', 'live at the snapshot moment');
  assert.is(snap.valueState<string>('v').get('b'), undefined);
  assert.is(snap.mapState<string, string>('m').get('a', 'x'), 'old');
  snap.release();
});

more('full-snapshot cleanup leaves expired values out of full checkpoints only', async () => {
  time.now = 0;
  const store = await StateStore.create({ maxParallelism: 16, clock });
  const v = store.valueState<string>('v', { codec: 'string', ttl: { ttlMs: TTL, cleanup: { incremental: false, fullSnapshot: true } } });
  for (let i = 0; i < 50; i++) v.set(i, 'x'.repeat(20));
  time.now = 150;
  v.set('fresh', 'y');
  const bytes = await store.checkpoint().bytes();
  time.now = 0;
  const back = await StateStore.restore([bytes], { clock });
  const bv = back.valueState<string>('v', { codec: 'string', ttl: { ttlMs: TTL, cleanup: { incremental: false, fullSnapshot: true } } });
  assert.is(bv.get(3), undefined, 'left out, even with the clock set back');
  assert.is(bv.get('fresh'), 'y');
  assert.is(back.memory().entries, 1);
});

more('memory() counts 6 bytes of timestamp per value, element and map entry', async () => {
  time.now = 0;
  const store = await StateStore.create({ maxParallelism: 16, clock });
  const v = store.valueState<number>('v', { codec: 'number', ttl: { ttlMs: TTL } });
  const l = store.listState<number>('l', { codec: 'number', ttl: { ttlMs: TTL } });
  const p = store.valueState<number>('p', { codec: 'number' });
  for (let i = 0; i < 100; i++) {
    v.set(i, i);
    p.set(i, i);
  }
  l.forKey('k').addAll([1, 2, 3]);
  const m = store.memory();
  assert.is(m.states.find((s) => s.name === 'v')?.ttlBytes, 600);
  assert.is(m.states.find((s) => s.name === 'l')?.ttlBytes, 18);
  assert.is(m.states.find((s) => s.name === 'p')?.ttlBytes, 0);
  assert.is(m.ttlBytes, 618);
});

more('bad options and clocks are refused with INVALID_ARGUMENT', async () => {
  const store = await StateStore.create({ maxParallelism: 16, clock: () => -5 });
  for (const ttl of [{ ttlMs: 0 }, { ttlMs: 1.5 }, { ttlMs: 10, update: 'sometimes' }, { ttlMs: 10, cleanup: { incremental: { size: 0 } } }]) {
    throwsKs(() => store.valueState('v', { ttl: ttl as Ttl }), InvalidArgumentError, 'INVALID_ARGUMENT', JSON.stringify(ttl));
  }
  const v = store.valueState<number>('v', { codec: 'number', ttl: { ttlMs: 10 } });
  throwsKs(() => v.set('a', 1), InvalidArgumentError, 'INVALID_ARGUMENT', 'a negative time');
  await StateStore.create({ clock: 5 as unknown as () => number }).then(
    () => assert.unreachable('a clock that is not a function'),
    (e) => assert.is(e.code, 'INVALID_ARGUMENT'),
  );
});

more('a checkpoint from before TTL existed still restores', async () => {
  const old = await readFixture('vectors/basic.full-v1.bin');
  const back = await StateStore.restore([old]);
  assert.ok(back.stateNames().length > 0);
});

more('setMany stamps its values as set does, and getMany reads them', async () => {
  time.now = 10;
  const store = await StateStore.create({ maxParallelism: 16, clock });
  const v = store.valueState<number>('v', { codec: 'number', ttl: { ttlMs: TTL } });
  v.set('gone', 9);
  assert.is(v.setMany([['a', 1], ['b', 22], ['gone', null], ['b', 2]]), 4);
  assert.is(v.get('a'), 1);
  assert.equal(v.getMany(['a', 'b', 'gone']), [1, 2, undefined]);
  assert.is(store.memory().entries, 2);
  time.now = 10 + TTL - 1;
  assert.equal(v.getMany(['a', 'b']), [1, 2]);
  time.now = 10 + TTL;
  assert.equal(v.getMany(['a', 'b']), [undefined, undefined]);
});

more('the default clock is Date.now', async () => {
  const store = await StateStore.create({ maxParallelism: 16 });
  const v = store.valueState<number>('v', { codec: 'number', ttl: { ttlMs: 60_000 } });
  v.set('a', 1);
  assert.is(v.get('a'), 1);
  const s = await StateStore.create({ maxParallelism: 16 });
  const short = s.valueState<number>('v', { codec: 'number', ttl: { ttlMs: 1 } });
  short.set('a', 1);
  const until = Date.now() + 5;
  while (Date.now() < until) {
    // Waits out the 1 ms time to live on the real clock (no timing asserted).
  }
  assert.is(short.get('a'), undefined);
});

more.run();
