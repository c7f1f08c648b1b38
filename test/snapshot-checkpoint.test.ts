// Snapshots, checkpoints and restore across every state kind: isolation while
// writers run (also between the chunks of a streamed export), exact
// round-trips, restore from every kind of source, key-group subsets and
// rescaling, pinned memory, and the checkpoint handle's rules.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  CheckpointStateError,
  KeyGroupOutOfRangeError,
  StateStore,
  type Key,
  type KeyGroupRange,
  type Snapshot,
} from './_backend.js';
import { addr, assertSnapshot, assertStore, declare, keyOf, Model, randomOps } from './_model.js';
import { checkpointBytes, concat, rng, throwsKs } from './_util.js';

// ---- snapshots ------------------------------------------------------------------------

const Snapshots = suite('snapshots');

Snapshots('several snapshots open at once with writes in between: each is exact', async () => {
  const store = await StateStore.create();
  const h = declare(store);
  const model = new Model();
  const r = rng(11);
  const open: [Snapshot, Model][] = [];
  for (let round = 0; round < 6; round++) {
    randomOps(h, model, r, 1500, 300);
    open.push([store.snapshot(), model.clone()]);
  }
  randomOps(h, model, r, 1500, 300);
  open.forEach(([snap, m], i) => assertSnapshot(snap, m, `snapshot ${i}`));

  // Release every other one, keep writing: the rest stay exact.
  for (let i = 0; i < open.length; i += 2) open[i][0].release();
  randomOps(h, model, r, 3000, 300);
  for (let i = 1; i < open.length; i += 2) assertSnapshot(open[i][0], open[i][1], `snapshot ${i} after releases`);
  for (let i = 1; i < open.length; i += 2) open[i][0].release();
  assert.is(store.memory().openSnapshots, 0);
  assertStore(store, model, 'live');
});

Snapshots('a snapshot of an empty store stays empty', async () => {
  const store = await StateStore.create();
  const h = declare(store);
  const snap = store.snapshot();
  randomOps(h, new Model(), rng(3), 500, 50);
  assertSnapshot(snap, new Model(), 'empty snapshot');
  snap.release();
});

Snapshots.run();

// ---- streamed export ---------------------------------------------------------------------

const Export = suite('checkpoint export');

Export('writes during a streamed export do not leak into it (20k keys, many chunks)', async () => {
  const store = await StateStore.create();
  const h = declare(store);
  const model = new Model();
  // 20k keys in a value state, plus every other kind.
  for (let i = 0; i < 20_000; i++) {
    const key = keyOf(i);
    const s = `initial value of ${i}`;
    h.s.forKey(key).update(s);
    model.s.set(addr(key), { key, ns: undefined, val: s });
  }
  const r = rng(5);
  randomOps(h, model, r, 5000, 20_000);

  const cp = store.checkpoint();
  assert.is(cp.kind, 'full', 'the first checkpoint is full');
  assert.is(cp.parentId, null);
  const atCheckpoint = model.clone();
  const reader = cp.stream({ chunkSize: 1024 }).getReader();
  const chunks: Uint8Array[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    // Overwrite, delete and add between chunks, in every state kind.
    randomOps(h, model, r, 300, 25_000);
    for (let j = 0; j < 20; j++) {
      const key = keyOf(Math.floor(r() * 20_000));
      if (j % 2) h.s.forKey(key).clear();
      else h.s.forKey(key).update('overwritten during export');
    }
  }
  assert.ok(chunks.length >= 20, `the stream has many chunks (${chunks.length})`);
  assert.ok(cp.finished);
  assert.type(cp.checksum, 'string');
  cp.confirm();

  const restored = await StateStore.restore([concat(chunks)]);
  assertStore(restored, atCheckpoint, 'restored from the export');
});

Export('progress callbacks account for every byte and key group', async () => {
  const store = await StateStore.create({ maxParallelism: 32 });
  const h = declare(store);
  randomOps(h, new Model(), rng(8), 3000, 1000);
  const seen: { bytes: number; keyGroupsDone: number; keyGroupsTotal: number; records: number }[] = [];
  const cp = store.checkpoint();
  const bytes = await cp.bytes({ chunkSize: 1024, onProgress: (p) => seen.push({ ...p }) });
  cp.confirm();
  assert.ok(seen.length > 1, 'called per chunk');
  const last = seen[seen.length - 1];
  assert.is(last.bytes, bytes.length);
  assert.is(last.keyGroupsDone, last.keyGroupsTotal);
  assert.is(last.keyGroupsTotal, 32);
  assert.ok(last.records > 0);
  for (let i = 1; i < seen.length; i++) {
    assert.ok(seen[i].bytes >= seen[i - 1].bytes, 'bytes never go back');
    assert.ok(seen[i].keyGroupsDone >= seen[i - 1].keyGroupsDone, 'key groups never go back');
  }

  const restoreSeen: { bytes: number; piece: number; pieces: number }[] = [];
  await StateStore.restore([bytes], { onProgress: (p) => restoreSeen.push({ bytes: p.bytes, piece: p.piece, pieces: p.pieces }) });
  assert.ok(restoreSeen.length > 0);
  assert.equal(restoreSeen[restoreSeen.length - 1], { bytes: bytes.length, piece: 1, pieces: 1 });
});

Export.run();

// ---- round trips ---------------------------------------------------------------------------

const RoundTrip = suite('checkpoint round trips');

RoundTrip('checkpoint -> bytes -> restore equals the live state, every kind, with namespaces', async () => {
  const store = await StateStore.create();
  const h = declare(store);
  const model = new Model();
  randomOps(h, model, rng(21), 8000, 2000);
  assertStore(store, model, 'live');
  const bytes = await checkpointBytes(store);
  const restored = await StateStore.restore([bytes]);
  assert.equal(restored.stateNames().sort(), ['a', 'l', 'm', 'r', 's', 'v']);
  assert.is(restored.maxParallelism, store.maxParallelism);
  assert.equal(restored.keyGroupRange, store.keyGroupRange);
  assert.is(restored.memory().entries, store.memory().entries);
  assertStore(restored, model, 'restored');

  // The restored store is a working store: more writes, another round trip.
  const h2 = declare(restored);
  randomOps(h2, model, rng(22), 3000, 2500);
  const again = await StateStore.restore([await checkpointBytes(restored)]);
  assertStore(again, model, 'restored twice');
});

RoundTrip('restored state that was never declared again is carried into the next checkpoint', async () => {
  const store = await StateStore.create();
  const h = declare(store);
  const model = new Model();
  randomOps(h, model, rng(31), 2000, 300);
  const first = await StateStore.restore([await checkpointBytes(store)]);
  // No state declared on `first`: its checkpoint must still hold everything.
  const second = await StateStore.restore([await checkpointBytes(first)]);
  assertStore(second, model, 'restored from an untouched restored store');
});

RoundTrip('an empty store round-trips', async () => {
  const store = await StateStore.create();
  const restored = await StateStore.restore([await checkpointBytes(store)]);
  assert.is(restored.memory().entries, 0);
  assertStore(restored, new Model(), 'empty');
});

/** Splits bytes into chunks of `size`. */
function* pieces(bytes: Uint8Array, size: number): Generator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.slice(at, at + size);
}

function streamOf(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  const it = pieces(bytes, size);
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const { done, value } = it.next();
      if (done) controller.close();
      else controller.enqueue(value);
    },
  });
}

RoundTrip('restore from a ReadableStream, async and sync iterables of small chunks, an ArrayBuffer', async () => {
  const store = await StateStore.create();
  const h = declare(store);
  const model = new Model();
  randomOps(h, model, rng(41), 3000, 500);
  const bytes = await checkpointBytes(store);

  assertStore(await StateStore.restore([streamOf(bytes, 7)]), model, 'ReadableStream of 7-byte chunks');
  assertStore(await StateStore.restore([streamOf(bytes, 4096)]), model, 'ReadableStream of 4 KiB chunks');
  async function* asyncChunks(size: number): AsyncGenerator<Uint8Array> {
    for (const p of pieces(bytes, size)) {
      await Promise.resolve();
      yield p;
    }
  }
  assertStore(await StateStore.restore([asyncChunks(5)]), model, 'async iterable of 5-byte chunks');
  assertStore(await StateStore.restore([asyncChunks(1)]), model, 'async iterable of single bytes');
  assertStore(await StateStore.restore([pieces(bytes, 13)]), model, 'sync iterable of 13-byte chunks');
  const buffer = bytes.slice().buffer;
  assertStore(await StateStore.restore([buffer]), model, 'ArrayBuffer');
  // Straight from one store's export into another's restore.
  const cp = store.checkpoint();
  assertStore(await StateStore.restore([cp.stream({ chunkSize: 1024 })]), model, 'piped from a live export');
  cp.confirm();
});

RoundTrip.run();

// ---- key groups -----------------------------------------------------------------------------

const KeyGroups = suite('key-group subsets and rescaling');

function inRange(kg: number, r: KeyGroupRange): boolean {
  return kg >= r.start && kg <= r.end;
}

/** Keeps the model cells whose key falls in `range`. */
function subset(model: Model, store: StateStore, range: KeyGroupRange): Model {
  const m = model.clone();
  for (const f of ['v', 's', 'l', 'm', 'r', 'a', 'mTouched'] as const) {
    const map = m[f] as Map<string, { key: Key }>;
    for (const [a, c] of map) if (!inRange(store.keyGroupOf(c.key), range)) map.delete(a);
  }
  return m;
}

KeyGroups('restore into a smaller range keeps exactly the keys of that range and refuses the others', async () => {
  const store = await StateStore.create({ maxParallelism: 128 });
  const h = declare(store);
  const model = new Model();
  randomOps(h, model, rng(51), 6000, 3000);
  const bytes = await checkpointBytes(store);

  for (const range of [{ start: 0, end: 63 }, { start: 64, end: 127 }, { start: 10, end: 20 }, { start: 127, end: 127 }]) {
    const part = await StateStore.restore([bytes], { keyGroupRange: range });
    assert.equal(part.keyGroupRange, range);
    assert.is(part.maxParallelism, 128);
    const expected = subset(model, store, range);
    assertStore(part, expected, `range ${range.start}..${range.end}`);
    // Keys outside the range are refused, for reads and writes alike.
    const value = part.valueState<number>('v', { codec: 'number' });
    let refused = 0;
    for (let i = 0; i < 3000 && refused < 50; i++) {
      const key = keyOf(i);
      const kg = store.keyGroupOf(key);
      assert.is(part.keyGroupOf(key), kg, 'key groups do not depend on the store');
      if (inRange(kg, range)) continue;
      refused++;
      throwsKs(() => value.get(key), KeyGroupOutOfRangeError, 'KEY_GROUP_OUT_OF_RANGE', `get of key ${String(key)} in group ${kg}`);
      throwsKs(() => value.set(key, 1), KeyGroupOutOfRangeError, 'KEY_GROUP_OUT_OF_RANGE', `set of key ${String(key)}`);
      throwsKs(() => part.setCurrentKey(key), KeyGroupOutOfRangeError, 'KEY_GROUP_OUT_OF_RANGE', 'setCurrentKey');
    }
    assert.ok(refused > 0);
  }
});

KeyGroups('the two halves of a store together hold everything, once', async () => {
  const store = await StateStore.create({ maxParallelism: 64 });
  const h = declare(store);
  randomOps(h, new Model(), rng(52), 4000, 1500);
  const bytes = await checkpointBytes(store);
  const lo = await StateStore.restore([bytes], { keyGroupRange: { start: 0, end: 31 } });
  const hi = await StateStore.restore([bytes], { keyGroupRange: { start: 32, end: 63 } });
  assert.is(lo.memory().entries + hi.memory().entries, store.memory().entries);
  assert.ok(lo.memory().entries > 0 && hi.memory().entries > 0);
});

/** Flink's target ranges: computeKeyGroupRangeForOperatorIndex. */
function targetRange(maxP: number, p: number, i: number): KeyGroupRange {
  return { start: Math.floor((i * maxP + p - 1) / p), end: Math.floor(((i + 1) * maxP - 1) / p) };
}

/** Flink's testKeyGroupSnapshotRestore: source ranges by the floor formula, writes per key group. */
async function rescale(src: number, tgt: number, maxP: number): Promise<void> {
  const probe = await StateStore.create({ maxParallelism: maxP });
  // One key per key group, found by search, and its expected value.
  const keyOfGroup = new Map<number, Key>();
  for (let i = 0; keyOfGroup.size < maxP; i++) {
    const kg = probe.keyGroupOf(`key-${i}`);
    if (!keyOfGroup.has(kg)) keyOfGroup.set(kg, `key-${i}`);
  }
  const sources: { range: KeyGroupRange; bytes: Uint8Array }[] = [];
  for (let i = 0; i < src; i++) {
    const range = { start: Math.floor((maxP * i) / src), end: Math.floor((maxP * (i + 1)) / src) - 1 };
    const store = await StateStore.create({ maxParallelism: maxP, keyGroupRange: range });
    const common = store.valueState<string>('common', { codec: 'string' });
    // A state only this source has (state created at run time).
    const own = store.listState<number>(`only-in-${i}`, { codec: 'number' });
    for (let kg = range.start; kg <= range.end; kg++) {
      const key = keyOfGroup.get(kg)!;
      common.set(key, `${i}:${kg}`);
      own.forKey(key).addAll([i, kg]);
    }
    sources.push({ range, bytes: await checkpointBytes(store) });
  }
  let total = 0;
  for (let t = 0; t < tgt; t++) {
    const range = targetRange(maxP, tgt, t);
    // As Flink's extractIntersectingState: only the sources that overlap the target.
    const chains = sources.filter((s) => s.range.start <= range.end && s.range.end >= range.start).map((s) => [s.bytes]);
    const restored = await StateStore.restore(chains, { keyGroupRange: range });
    assert.equal(restored.keyGroupRange, range);
    const common = restored.valueState<string>('common', { codec: 'string' });
    for (let kg = range.start; kg <= range.end; kg++) {
      const key = keyOfGroup.get(kg)!;
      const i = sources.findIndex((s) => inRange(kg, s.range));
      assert.is(common.get(key), `${i}:${kg}`, `target ${t}, key group ${kg}`);
      assert.equal(restored.listState<number>(`only-in-${i}`, { codec: 'number' }).forKey(key).get(), [i, kg]);
    }
    total += restored.memory().entries;
  }
  assert.is(total, 2 * maxP, 'every entry lands in exactly one target');
}

KeyGroups('rescale: scale down 4 -> 2', () => rescale(4, 2, 128));
KeyGroups('rescale: scale up 2 -> 4', () => rescale(2, 4, 128));
KeyGroups('rescale: no rescale 2 -> 2', () => rescale(2, 2, 128));
KeyGroups('rescale: uneven 15 -> 77', () => rescale(15, 77, 128));
KeyGroups('rescale: uneven 77 -> 15', () => rescale(77, 15, 128));

KeyGroups('two stores with disjoint ranges restore into one', async () => {
  const a = await StateStore.create({ maxParallelism: 128, keyGroupRange: { start: 0, end: 63 } });
  const b = await StateStore.create({ maxParallelism: 128, keyGroupRange: { start: 64, end: 127 } });
  const ha = declare(a);
  const hb = declare(b);
  // Route each key to its owner; the union is one model.
  const model = new Model();
  const ma = new Model();
  const mb = new Model();
  const r = rng(61);
  for (let i = 0; i < 3000; i++) {
    const key = keyOf(i);
    const kg = a.keyGroupOf(key);
    const x = Math.floor(r() * 1000);
    (kg <= 63 ? ha : hb).v.set(key, x);
    (kg <= 63 ? ha : hb).l.forKey(key).withNamespace('w1').add(`e${x}`);
    for (const m of [model, kg <= 63 ? ma : mb]) {
      m.v.set(addr(key), { key, ns: undefined, val: x });
      m.l.set(addr(key, 'w1'), { key, ns: 'w1', val: [`e${x}`] });
    }
  }
  assertStore(a, ma, 'source a');
  assertStore(b, mb, 'source b');
  const merged = await StateStore.restore([[await checkpointBytes(a)], [await checkpointBytes(b)]], { keyGroupRange: { start: 0, end: 127 } });
  assert.equal(merged.keyGroupRange, { start: 0, end: 127 });
  assert.is(merged.memory().entries, 6000);
  assertStore(merged, model, 'merged');
});

KeyGroups.run();

// ---- memory ------------------------------------------------------------------------------------

const Memory = suite('memory accounting');

Memory('pinnedBytes grows only with overwrites under an open snapshot and returns to 0 on release', async () => {
  const store = await StateStore.create();
  const state = store.valueState<string>('s', { codec: 'string' });
  for (let i = 0; i < 2000; i++) state.set(i, `value ${i} `.repeat(3));
  assert.is(store.memory().pinnedBytes, 0);
  const snap = store.snapshot();
  assert.is(store.memory().openSnapshots, 1);
  assert.is(store.memory().pinnedBytes, 0, 'taking a snapshot copies nothing');
  for (let i = 2000; i < 2100; i++) state.set(i, 'new key');
  const afterInserts = store.memory().pinnedBytes;
  for (let i = 0; i < 1000; i++) state.set(i, 'overwritten');
  const pinned = store.memory().pinnedBytes;
  assert.ok(pinned > afterInserts, `overwrites pin the old values (${afterInserts} -> ${pinned})`);
  assert.ok(pinned > 0);
  for (let i = 1000; i < 1500; i++) state.delete(i);
  assert.ok(store.memory().pinnedBytes > pinned, 'deletes pin the old values too');
  snap.release();
  assert.is(store.memory().pinnedBytes, 0);
  assert.is(store.memory().openSnapshots, 0);
});

Memory('a checkpoint pins like a snapshot until it is settled', async () => {
  const store = await StateStore.create();
  const state = store.valueState<string>('s', { codec: 'string' });
  for (let i = 0; i < 2000; i++) state.set(i, `value ${i}`);
  const cp = store.checkpoint();
  for (let i = 0; i < 2000; i++) state.set(i, 'overwritten');
  assert.ok(store.memory().pinnedBytes > 0, 'an open checkpoint holds its moment');
  await cp.bytes();
  cp.confirm();
  assert.is(store.memory().pinnedBytes, 0);
  assert.is(store.memory().openSnapshots, 0);

  const cp2 = store.checkpoint();
  for (let i = 0; i < 2000; i++) state.set(i, 'again');
  assert.ok(store.memory().pinnedBytes > 0);
  cp2.abort();
  assert.is(store.memory().pinnedBytes, 0, 'abort releases too');
});

Memory('freed space is reused: snapshot/overwrite/release cycles do not grow the arena', async () => {
  const store = await StateStore.create();
  const state = store.valueState<string>('s', { codec: 'string' });
  for (let i = 0; i < 5000; i++) state.set(i, `value ${i} `.repeat(4));
  // Same-size values each round: what a snapshot pinned is free again after release.
  const cycle = (round: number) => {
    const snap = store.snapshot();
    for (let i = 0; i < 5000; i++) state.set(i, `round ${round % 10} ${i} `.repeat(4));
    snap.release();
  };
  for (let round = 0; round < 3; round++) cycle(round);
  const settled = store.memory().arenaBytes;
  for (let round = 3; round < 15; round++) cycle(round);
  const m = store.memory();
  assert.ok(m.arenaBytes <= settled * 1.1, `arena ${settled} -> ${m.arenaBytes} bytes after 12 more cycles`);
  assert.is(m.pinnedBytes, 0);
  assert.is(m.entries, 5000);
});

// WebAssembly memory never shrinks: pages freed by one size class must be
// taken by others, or values whose size changes grow memory without bound.
Memory('freed space is reused across value sizes', async () => {
  const store = await StateStore.create();
  const state = store.valueState<string>('s', { codec: 'string' });
  for (let i = 0; i < 5000; i++) state.set(i, 'x'.repeat(100));
  for (let i = 0; i < 5000; i++) state.delete(i);
  const before = store.memory();
  assert.is(before.entries, 0);
  // Same count, a bigger size class: every freed page is taken again, so
  // what stays free is at most the unfilled tails of a few pages.
  for (let i = 0; i < 5000; i++) state.set(i, 'y'.repeat(140));
  const after = store.memory();
  assert.ok(after.arenaBytes > before.arenaBytes, 'the bigger records need more than was freed');
  assert.ok(
    after.freeBytes <= 4 * 16384,
    `arena grew from ${before.arenaBytes} to ${after.arenaBytes} bytes and left ${after.freeBytes} free`,
  );

  // Values that grow a little every round (a common shape: counters, growing records).
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 5000; i++) state.set(i, 'z'.repeat(20 + round * 8));
  }
  const grown = store.memory();
  assert.ok(
    grown.arenaBytes <= 4 * grown.liveBytes + 1_000_000,
    `arena ${grown.arenaBytes} bytes for ${grown.liveBytes} live bytes (${grown.freeBytes} free)`,
  );
});

Memory.run();

// ---- checkpoint handle rules ------------------------------------------------------------------------

const Rules = suite('checkpoint confirm and abort');

Rules('confirm before the stream finished throws CheckpointStateError', async () => {
  const store = await StateStore.create();
  const state = store.valueState<string>('s', { codec: 'string' });
  for (let i = 0; i < 5000; i++) state.set(i, `value ${i}`);
  const cp = store.checkpoint();
  throwsKs(() => cp.confirm(), CheckpointStateError, 'CHECKPOINT_STATE', 'confirm before streaming');
  const reader = cp.stream({ chunkSize: 1024 }).getReader();
  const first = await reader.read();
  assert.not.ok(first.done);
  assert.not.ok(cp.finished);
  throwsKs(() => cp.confirm(), CheckpointStateError, 'CHECKPOINT_STATE', 'confirm mid-stream');
  while (!(await reader.read()).done);
  assert.ok(cp.finished);
  cp.confirm();
});

Rules('confirm twice, abort after confirm, confirm after abort, stream twice: all refused', async () => {
  const store = await StateStore.create();
  store.valueState<number>('n', { codec: 'number' }).set('k', 1);
  const cp = store.checkpoint();
  await cp.bytes();
  cp.confirm();
  throwsKs(() => cp.confirm(), CheckpointStateError, 'CHECKPOINT_STATE', 'confirm twice');
  throwsKs(() => cp.abort(), CheckpointStateError, 'CHECKPOINT_STATE', 'abort after confirm');
  throwsKs(() => cp.stream(), CheckpointStateError, 'CHECKPOINT_STATE', 'stream twice');

  const cp2 = store.checkpoint();
  cp2.abort();
  cp2.abort();
  throwsKs(() => cp2.confirm(), CheckpointStateError, 'CHECKPOINT_STATE', 'confirm after abort');
});

Rules('checkpoint ids increase; the first is full', async () => {
  const store = await StateStore.create();
  const state = store.valueState<number>('n', { codec: 'number' });
  const ids: number[] = [];
  for (let i = 0; i < 4; i++) {
    state.set(i, i);
    const cp = store.checkpoint();
    if (i === 0) {
      assert.is(cp.kind, 'full');
      assert.is(cp.parentId, null);
    }
    ids.push(cp.id);
    await cp.bytes();
    if (i === 2) cp.abort();
    else cp.confirm();
  }
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], `ids ${ids.join(', ')} increase`);
});

for (const incremental of [false, true]) {
  Rules(`an aborted or unconfirmed checkpoint leaves the next one complete (incremental: ${incremental})`, async () => {
    const store = await StateStore.create({ checkpoints: { incremental } });
    const h = declare(store);
    const model = new Model();
    const r = rng(71);
    randomOps(h, model, r, 2000, 400);
    const cp1 = store.checkpoint();
    const b1 = await cp1.bytes();
    cp1.confirm();

    randomOps(h, model, r, 1000, 400);
    const cp2 = store.checkpoint();
    await cp2.bytes();
    cp2.abort();

    randomOps(h, model, r, 1000, 400);
    const cp3 = store.checkpoint();
    const at3 = model.clone();
    const unread = store.checkpoint();
    // cp3 is read after more writes; it holds its own moment.
    randomOps(h, model, r, 500, 400);
    const b3 = await cp3.bytes();
    cp3.confirm();
    // `unread` was never streamed; abandoning it loses nothing.
    unread.abort();
    assert.is(cp3.kind, incremental ? 'incremental' : 'full', 'the policy decides the kind');
    if (cp3.kind === 'incremental') assert.is(cp3.parentId, cp1.id, 'the parent is the last confirmed checkpoint');
    assertStore(await StateStore.restore(cp3.kind === 'incremental' ? [b1, b3] : [b3]), at3, 'cp3 after an aborted cp2');

    const cp4 = store.checkpoint();
    const b4 = await cp4.bytes();
    cp4.confirm();
    const chain = cp4.kind === 'incremental' ? (cp3.kind === 'incremental' ? [b1, b3, b4] : [b3, b4]) : [b4];
    assertStore(await StateStore.restore(chain), model, 'cp4 after an abandoned checkpoint');
  });
}

Rules.run();

// ---- snapshot views of restored and aggregating states ----------------------------------------

const Views = suite('snapshot views');

Views('a restored store is readable through snapshot views before its states are declared', async () => {

  const store = await StateStore.create();
  store.valueState<number>('count', { codec: 'number' }).set('a', 7);
  store.mapState<string, string>('prefs', { keyCodec: 'string', valueCodec: 'string' }).forKey('a').put('theme', 'dark');
  const custom = store.valueState<string>('custom', { codec: { id: 'rev', encode: (s: string) => new TextEncoder().encode(s), decode: (b: Uint8Array) => new TextDecoder().decode(b) } });
  custom.set('a', 'x');
  const back = await StateStore.restore([await store.checkpoint().bytes()]);
  const snap = back.snapshot();
  assert.is(snap.valueState<number>('count').get('a'), 7);
  assert.equal(snap.mapState<string, string>('prefs').entries('a'), [['theme', 'dark']]);
  assert.ok(snap.mapState<string, string>('prefs').contains('a', 'theme'));
  // A user codec cannot be guessed: it must be declared first.
  assert.throws(() => snap.valueState('custom'), (e: any) => e.code === 'UNKNOWN_STATE');
  snap.release();
});

Views('an aggregating state reads as its result through a snapshot', async () => {

  const store = await StateStore.create();
  const avg = store.aggregatingState<number, [number, number], number>('avg', {
    createAccumulator: () => [0, 0],
    add: (v, [s, n]) => [s + v, n + 1],
    getResult: ([s, n]) => s / n,
  });
  const k = avg.forKey('a');
  k.add(2);
  k.add(4);
  const snap = store.snapshot();
  k.add(9);
  assert.is(snap.aggregatingState<number>('avg').get('a'), 3);
  assert.is(k.get(), 5);
  assert.equal(snap.aggregatingState<number>('avg').entries().map((e) => e.value), [3]);
  snap.release();
});

Views.run();
