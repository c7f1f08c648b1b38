/**
 * Golden vectors: the scenarios in test/vectors run through the public API
 * (TypeScript codecs + WebAssembly) must produce exactly the committed
 * checkpoint bytes, which the Rust suite (crates/keystate-core/tests/vectors.rs)
 * produces natively. The committed bytes must also restore to the expected reads.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFixture, StateStore, type Key } from './_backend.js';

type Json = any;

const vector = (file: string) => readFixture(`vectors/${file}`);
const scenario = async (name: string): Promise<Json> => JSON.parse(new TextDecoder().decode(await vector(`${name}.scenario.json`)));
const hex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (b) => parseInt(b, 16));

function key(v: Json): Key {
  if (typeof v === 'string' || typeof v === 'number') return v;
  if (v && typeof v.bigint === 'string') return BigInt(v.bigint);
  if (v && typeof v.bytes === 'string') return hex(v.bytes);
  throw new Error(`not a key: ${JSON.stringify(v)}`);
}

function value(v: Json): unknown {
  return v && typeof v === 'object' && typeof v.bigint === 'string' ? BigInt(v.bigint) : v;
}

function handles(store: StateStore, sc: Json) {
  const h: Record<string, any> = {};
  for (const s of sc.states) {
    const ttl = s.ttl;
    if (s.kind === 'value') h[s.name] = store.valueState(s.name, { codec: s.codec, ttl });
    else if (s.kind === 'list') h[s.name] = store.listState(s.name, { codec: s.codec, ttl });
    else if (s.kind === 'map') h[s.name] = store.mapState(s.name, { keyCodec: s.keyCodec, valueCodec: s.codec, ttl });
    else if (s.kind === 'reducing') h[s.name] = store.reducingState(s.name, { codec: s.codec, reduce: (a: number, b: number) => a + b, ttl });
    else throw new Error(`kind ${s.kind}`);
  }
  return h;
}

function bound(h: any, op: Json) {
  const k = h.forKey(key(op.key));
  return op.namespace === undefined ? k : k.withNamespace(key(op.namespace));
}

/** The scenarios' clock (their `time` ops set it). */
const clock = { now: 0 };
const readClock = () => clock.now;

async function run(name: string) {
  const sc = await scenario(name);
  clock.now = 0;
  const store = await StateStore.create({ maxParallelism: sc.maxParallelism, storeId: hex(sc.storeId), clock: readClock });
  const h = handles(store, sc);
  apply(h, sc.ops, store);
  return { sc, store, h };
}

function apply(h: Record<string, any>, ops: Json[], store: StateStore) {
  for (const op of ops) {
    if (op.op === 'time') {
      clock.now = op.value;
      continue;
    }
    if (op.op === 'expire') {
      store.expire();
      continue;
    }
    const s = bound(h[op.state], op);
    switch (op.op) {
      case 'get': if (typeof s.entries === 'function') s.entries(); else if (typeof s.value === 'function') s.value(); else s.get(); break;
      case 'set': s.update(value(op.value)); break;
      case 'delete': case 'clear': s.clear(); break;
      case 'add': s.add(value(op.value)); break;
      case 'update': s.update(op.value.map(value)); break;
      case 'put': s.put(key(op.userKey), value(op.value)); break;
      case 'remove': s.remove(key(op.userKey)); break;
      case 'reduce': s.add(value(op.value)); break;
      default: throw new Error(`op ${op.op}`);
    }
  }
}

function checkExpect(sc: Json, store: StateStore, expect: Json[] = sc.expect, time?: number) {
  if (time !== undefined) clock.now = time;
  const h = handles(store, sc);
  for (const e of expect) {
    const s = bound(h[e.state], e);
    const kind = sc.states.find((x: Json) => x.name === e.state).kind;
    if (kind === 'map') {
      const got = s.entries().map(([k, v]: [Key, unknown]) => JSON.stringify([k, v])).sort();
      const want = e.value.map(([k, v]: Json) => JSON.stringify([key(k), v])).sort();
      assert.equal(got, want, JSON.stringify(e));
    } else if (kind === 'list') {
      assert.equal(s.get(), e.value, JSON.stringify(e));
    } else {
      const got = kind === 'reducing' ? s.get() : s.value();
      assert.equal(got, e.value === null ? undefined : value(e.value), JSON.stringify(e));
    }
  }
}

const vectors = suite('golden vectors');

async function same(bytes: Uint8Array, file: string) {
  const golden = await vector(file);
  assert.is(bytes.length, golden.length, `${file}: length`);
  const first = bytes.findIndex((b, i) => b !== golden[i]);
  assert.is(first, -1, `${file}: first differing byte at ${first}`);
}

// Writers write format version 2; the version 1 files, which writers before
// it wrote, must still restore.
const VERSIONS = ['v1', 'v2'];

vectors('basic: the checkpoint bytes equal the committed golden vector', async () => {
  const { sc, store } = await run('basic');
  checkExpect(sc, store);
  const cp = store.checkpoint();
  await same(await cp.bytes(), 'basic.full-v2.bin');
});

vectors('basic: the golden vectors of both versions restore to the expected reads', async () => {
  const sc = await scenario('basic');
  for (const v of VERSIONS) {
    const store = await StateStore.restore([await vector(`basic.full-${v}.bin`)]);
    checkExpect(sc, store);
  }
});

vectors('runs: records side by side are written as RUNs, byte for byte, and restore', async () => {
  const { sc, store } = await run('runs');
  checkExpect(sc, store);
  const cp = store.checkpoint();
  await same(await cp.bytes(), 'runs.full-v2.bin');
  cp.confirm();
  const back = await StateStore.restore([await vector('runs.full-v2.bin')]);
  checkExpect(sc, back);
});


vectors('basic: the incremental checkpoint bytes equal the committed golden vector', async () => {
  const { sc, store, h } = await run('basic');
  // Asked for incremental with nothing tracked yet: full.
  const full = store.checkpoint({ incremental: true });
  assert.is(full.kind, 'full');
  await same(await full.bytes(), 'basic.full-v2.bin');
  full.confirm();
  apply(h, sc.incremental.ops, store);
  const inc = store.checkpoint({ incremental: true });
  assert.is(inc.kind, 'incremental');
  assert.is(inc.parentId, full.id);
  await same(await inc.bytes(), 'basic.incr-v2.bin');
  inc.confirm();
  checkExpect(sc, store, sc.incremental.expect);
});

vectors('basic: the golden chains restore to the expected reads', async () => {
  const sc = await scenario('basic');
  for (const v of VERSIONS) {
    const chain = [await vector(`basic.full-${v}.bin`), await vector(`basic.incr-${v}.bin`)];
    const store = await StateStore.restore(chain);
    checkExpect(sc, store, sc.incremental.expect);
    assert.is(store.lastConfirmedCheckpoint()?.id, 2);
    assert.is(store.lastConfirmedCheckpoint()?.chainLength, 1);
  }
});

vectors('ttl: full and incremental checkpoints of states with TTL equal the golden vectors', async () => {
  // Reads would clean up and renew: the scenario's checks run on restored stores.
  const { sc, store, h } = await run('ttl');
  const full = store.checkpoint({ incremental: true });
  await same(await full.bytes(), 'ttl.full-v2.bin');
  full.confirm();
  apply(h, sc.incremental.ops, store);
  const inc = store.checkpoint({ incremental: true });
  assert.is(inc.kind, 'incremental');
  await same(await inc.bytes(), 'ttl.incr-v2.bin');
  inc.confirm();
  checkExpect(sc, store, sc.incremental.expect, sc.incremental.expectTime);
});

vectors('ttl: the golden vectors restore to the expected reads', async () => {
  const sc = await scenario('ttl');
  for (const v of VERSIONS) {
    const full = await vector(`ttl.full-${v}.bin`);
    clock.now = 0;
    const one = await StateStore.restore([full], { clock: readClock });
    checkExpect(sc, one, sc.expect, sc.expectTime);
    const chain = await StateStore.restore([full, await vector(`ttl.incr-${v}.bin`)], { clock: readClock });
    checkExpect(sc, chain, sc.incremental.expect, sc.incremental.expectTime);
  }
});

vectors.run();
