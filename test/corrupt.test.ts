// Restore refuses damaged input with a typed error and builds nothing:
// wrong magic, unknown version, flipped bytes, truncation, trailing bytes,
// empty input, overlapping chains, and codecs that do not match on re-declaration.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BrokenChainError, CorruptCheckpointError, StateDefinitionError, StateStore } from './_backend.js';
import { assertStore, declare, Model, randomOps } from './_model.js';
import { checkpointBytes, concat, rejectsKs, rng } from './_util.js';

const MAGIC_LEN = 8;
const PREAMBLE_LEN = 16;
const TRAILER_LEN = 24;

/** A small checkpoint of every state kind (a few KiB), and the model it holds. */
async function sample(ops = 400, keys = 60): Promise<{ bytes: Uint8Array; model: Model }> {
  const store = await StateStore.create({ maxParallelism: 16 });
  const model = new Model();
  randomOps(declare(store), model, rng(99), ops, keys);
  return { bytes: await checkpointBytes(store), model };
}

function withByte(bytes: Uint8Array, at: number, f: (b: number) => number): Uint8Array {
  const copy = bytes.slice();
  copy[at] = f(copy[at]) & 0xff;
  return copy;
}

const Header = suite('corrupt: magic, version, empty');

Header('the sample restores (the baseline for every case below)', async () => {
  const { bytes, model } = await sample();
  assert.ok(bytes.length > 1000, `sample is ${bytes.length} bytes`);
  assertStore(await StateStore.restore([bytes]), model, 'sample');
});

Header('bad magic: CorruptCheckpointError BAD_MAGIC', async () => {
  const { bytes } = await sample();
  for (let at = 0; at < MAGIC_LEN; at++) {
    await rejectsKs(() => StateStore.restore([withByte(bytes, at, (b) => b ^ 0x20)]), CorruptCheckpointError, 'BAD_MAGIC', `magic byte ${at}`);
  }
  const text = new TextEncoder().encode('{"not": "a checkpoint", "padding": "................................................"}');
  await rejectsKs(() => StateStore.restore([text]), CorruptCheckpointError, 'BAD_MAGIC', 'JSON text');
  await rejectsKs(() => StateStore.restore([new Uint8Array(4096)]), CorruptCheckpointError, 'BAD_MAGIC', 'zeros');
});

Header('unknown format version: UNSUPPORTED_VERSION', async () => {
  const { bytes } = await sample();
  assert.is(bytes[8] | (bytes[9] << 8), 2, 'this build writes version 2 (u16 LE at bytes 8..9)');
  for (const version of [0, 3, 0x100, 0x101, 0xffff]) {
    const copy = bytes.slice();
    copy[8] = version & 0xff;
    copy[9] = version >> 8;
    await rejectsKs(() => StateStore.restore([copy]), CorruptCheckpointError, 'UNSUPPORTED_VERSION', `version ${version}`);
  }
});

Header('empty input is refused, in every form', async () => {
  await rejectsKs(() => StateStore.restore([new Uint8Array(0)]), CorruptCheckpointError, 'TRUNCATED', 'empty array');
  await rejectsKs(() => StateStore.restore([new ArrayBuffer(0)]), CorruptCheckpointError, 'TRUNCATED', 'empty ArrayBuffer');
  const empty = new ReadableStream<Uint8Array>({ start: (c) => c.close() });
  await rejectsKs(() => StateStore.restore([empty]), CorruptCheckpointError, 'TRUNCATED', 'empty stream');
  async function* none(): AsyncGenerator<Uint8Array> {}
  await rejectsKs(() => StateStore.restore([none()]), CorruptCheckpointError, 'TRUNCATED', 'empty async iterable');
  await rejectsKs(() => StateStore.restore([[new Uint8Array(0)]], { keyGroupRange: { start: 0, end: 15 } }), CorruptCheckpointError, 'TRUNCATED', 'empty chain piece');
});

Header.run();

const Damage = suite('corrupt: flipped bytes, truncation, extra bytes');

// A flipped length field makes the reader wait for bytes that never come;
// the input still ends with the trailer, so that is CORRUPT, not TRUNCATED.
Damage('a flipped byte anywhere between preamble and trailer: CHECKSUM_MISMATCH or CORRUPT', async () => {
  const { bytes } = await sample();
  const codes = new Map<string, number>();
  const wrong: string[] = [];
  for (let at = PREAMBLE_LEN; at < bytes.length - TRAILER_LEN; at++) {
    for (const mask of [0x01, 0x80]) {
      let err: unknown;
      try {
        await StateStore.restore([withByte(bytes, at, (b) => b ^ mask)]);
      } catch (e) {
        err = e;
      }
      const what = `byte ${at} ^ 0x${mask.toString(16)}`;
      assert.instance(err, CorruptCheckpointError, `${what}: refused with a CorruptCheckpointError (${err})`);
      const code = (err as CorruptCheckpointError).code;
      codes.set(code, (codes.get(code) ?? 0) + 1);
      if (code !== 'CHECKSUM_MISMATCH' && code !== 'CORRUPT') wrong.push(`${what}: ${code}`);
    }
  }
  assert.ok((codes.get('CHECKSUM_MISMATCH') ?? 0) > 0, 'checksums catch damage');
  assert.equal(wrong, [], `${wrong.length} of ${2 * (bytes.length - PREAMBLE_LEN - TRAILER_LEN)} flips in a ${bytes.length}-byte checkpoint gave another code`);
});

Damage('a flipped byte in the preamble or trailer is refused too', async () => {
  const { bytes } = await sample();
  const positions = [
    ...Array.from({ length: PREAMBLE_LEN - MAGIC_LEN - 2 }, (_, i) => MAGIC_LEN + 2 + i),
    ...Array.from({ length: TRAILER_LEN }, (_, i) => bytes.length - TRAILER_LEN + i),
  ];
  for (const at of positions) {
    for (const mask of [0x01, 0x80]) {
      await rejectsKs(
        () => StateStore.restore([withByte(bytes, at, (b) => b ^ mask)]),
        CorruptCheckpointError,
        ['CHECKSUM_MISMATCH', 'CORRUPT', 'TRUNCATED', 'BAD_MAGIC'],
        `byte ${at} of ${bytes.length} ^ ${mask}`,
      );
    }
  }
});

Damage('damage in the last section is caught, also when fed in small chunks', async () => {
  const { bytes } = await sample(3000, 400);
  const at = bytes.length - TRAILER_LEN - 40;
  const bad = withByte(bytes, at, (b) => b ^ 0x10);
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < bad.length; i += 64) yield bad.slice(i, i + 64);
  }
  await rejectsKs(() => StateStore.restore([chunks()]), CorruptCheckpointError, ['CHECKSUM_MISMATCH', 'CORRUPT'], 'chunked');
});

Damage('truncated at every length: TRUNCATED', async () => {
  const { bytes } = await sample(150, 30);
  for (let n = 1; n < bytes.length; n++) {
    await rejectsKs(() => StateStore.restore([bytes.subarray(0, n)]), CorruptCheckpointError, 'TRUNCATED', `first ${n} of ${bytes.length} bytes`);
  }
});

Damage('truncated streams: TRUNCATED', async () => {
  const { bytes } = await sample(3000, 400);
  for (const n of [1, 8, 15, 16, 17, 100, Math.floor(bytes.length / 2), bytes.length - TRAILER_LEN, bytes.length - 1]) {
    const cut = bytes.slice(0, n);
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < cut.length; i += 100) yield cut.slice(i, i + 100);
    }
    await rejectsKs(() => StateStore.restore([chunks()]), CorruptCheckpointError, 'TRUNCATED', `stream cut at ${n}`);
  }
});

Damage('extra bytes after the end: CORRUPT', async () => {
  const { bytes } = await sample();
  for (const extra of [Uint8Array.of(0), Uint8Array.of(0x42), new Uint8Array(100), bytes]) {
    await rejectsKs(() => StateStore.restore([concat([bytes, extra])]), CorruptCheckpointError, 'CORRUPT', `${extra.length} extra bytes`);
  }
  // Also as a separate trailing chunk of a stream.
  async function* chunks(): AsyncGenerator<Uint8Array> {
    yield bytes;
    yield Uint8Array.of(1, 2, 3);
  }
  await rejectsKs(() => StateStore.restore([chunks()]), CorruptCheckpointError, 'CORRUPT', 'trailing chunk');
});

Damage('a bad piece fails the whole restore, wherever it is', async () => {
  const lo = await StateStore.create({ maxParallelism: 16, keyGroupRange: { start: 0, end: 7 } });
  const hi = await StateStore.create({ maxParallelism: 16, keyGroupRange: { start: 8, end: 15 } });
  for (const s of [lo, hi]) {
    const v = s.valueState<number>('v', { codec: 'number' });
    for (let i = 0; i < 500; i++) {
      const kg = s.keyGroupOf(i);
      if (kg >= s.keyGroupRange.start && kg <= s.keyGroupRange.end) v.set(i, i);
    }
  }
  const a = await checkpointBytes(lo);
  const b = await checkpointBytes(hi);
  const range = { start: 0, end: 15 };
  const badB = withByte(b, b.length >> 1, (x) => x ^ 0xff);
  await rejectsKs(() => StateStore.restore([[a], [badB]], { keyGroupRange: range }), CorruptCheckpointError, ['CHECKSUM_MISMATCH', 'CORRUPT'], 'second chain bad');
  await rejectsKs(() => StateStore.restore([[badB], [a]], { keyGroupRange: range }), CorruptCheckpointError, ['CHECKSUM_MISMATCH', 'CORRUPT'], 'first chain bad');
  await rejectsKs(() => StateStore.restore([[a], [b.subarray(0, b.length - 1)]], { keyGroupRange: range }), CorruptCheckpointError, 'TRUNCATED', 'second chain truncated');
  // Two chains over the same key groups do not form one store.
  await rejectsKs(() => StateStore.restore([[a], [a]], { keyGroupRange: { start: 0, end: 7 } }), BrokenChainError, 'BROKEN_CHAIN', 'overlapping chains');
  // The good pieces still restore.
  const merged = await StateStore.restore([[a], [b]], { keyGroupRange: range });
  assert.is(merged.memory().entries, 500);
});

Damage.run();

const Codecs = suite('corrupt: incompatible codecs after restore');

Codecs('re-declaring with another codec throws INCOMPATIBLE_STATE and changes nothing', async () => {
  const { bytes, model } = await sample();
  const store = await StateStore.restore([bytes]);
  const attempts: [string, () => unknown][] = [
    ['value number -> string', () => store.valueState('v', { codec: 'string' })],
    ['value number -> cbor', () => store.valueState('v', { codec: 'cbor' })],
    ['value number -> inferred bigint', () => store.valueState('v', { default: 0n })],
    ['value string -> user codec', () => store.valueState('s', { codec: { id: 'utf16', encode: () => new Uint8Array(0), decode: () => '' } })],
    ['list string -> number', () => store.listState('l', { codec: 'number' })],
    ['map values number -> string', () => store.mapState('m', { valueCodec: 'string' })],
    ['map user keys key -> string', () => store.mapState('m', { keyCodec: 'string', valueCodec: 'number' })],
    ['reducing number -> cbor', () => store.reducingState('r', { reduce: (a: unknown) => a, codec: 'cbor' })],
    ['aggregating cbor -> number', () => store.aggregatingState('a', { createAccumulator: () => 0, add: (_v: number, a: number) => a, getResult: (a: number) => a, codec: 'number' })],
  ];
  for (const [what, f] of attempts) {
    let err: unknown;
    try {
      f();
    } catch (e) {
      err = e;
    }
    assert.instance(err, StateDefinitionError, what);
    assert.is((err as StateDefinitionError).code, 'INCOMPATIBLE_STATE', what);
  }
  // The data is untouched: declared with the right codecs, every value reads back.
  assertStore(store, model, 'after refused declarations');
  // And its next checkpoint still carries the original codecs.
  const again = await StateStore.restore([await checkpointBytes(store)]);
  let err: unknown;
  try {
    again.valueState('v', { codec: 'string' });
  } catch (e) {
    err = e;
  }
  assert.instance(err, StateDefinitionError);
  assertStore(again, model, 'after another round trip');
});

Codecs('re-declaring with another kind throws a StateDefinitionError', async () => {
  const { bytes } = await sample();
  const store = await StateStore.restore([bytes]);
  const attempts: [string, () => unknown][] = [
    ['value as list', () => store.listState('v', { codec: 'number' })],
    ['list as value', () => store.valueState('l', { codec: 'string' })],
    ['map as value', () => store.valueState('m', { codec: 'number' })],
    ['reducing as aggregating', () => store.aggregatingState('r', { createAccumulator: () => 0, add: (_v: number, a: number) => a, getResult: (a: number) => a, codec: 'number' })],
  ];
  for (const [what, f] of attempts) {
    let err: unknown;
    try {
      f();
    } catch (e) {
      err = e;
    }
    assert.instance(err, StateDefinitionError, what);
    assert.ok(['INCOMPATIBLE_STATE', 'WRONG_STATE_KIND'].includes((err as StateDefinitionError).code), `${what}: ${(err as StateDefinitionError).code}`);
  }
});

Codecs.run();
