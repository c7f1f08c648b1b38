// Built-in and user codecs round-trip edge values through the store: live
// reads, list elements, map values, snapshot reads and a checkpoint round trip.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError, StateDefinitionError, StateStore, type Codec, type Key } from './_backend.js';
import { checkpointBytes, text, throwsKs } from './_util.js';

type CodecName = 'string' | 'number' | 'bigint' | 'boolean' | 'bytes' | 'cbor';

/** Same value: Object.is for primitives (so -0 and NaN count), deep equality otherwise. */
function same(got: unknown, want: unknown, what: string): void {
  if (typeof want !== 'object' || want === null) {
    assert.ok(Object.is(got, want), `${what}: got ${String(got)}${Object.is(got, -0) ? ' (-0)' : ''}, want ${String(want)}${Object.is(want, -0) ? ' (-0)' : ''}`);
  } else {
    assert.equal(got, want, what);
  }
}

/**
 * Stores every value under `codec` as value-state values, list elements and
 * map values; reads them back live, through a snapshot taken before they
 * are overwritten, and after a checkpoint round trip.
 */
async function roundTrips(codec: CodecName | Codec<unknown>, values: readonly unknown[], label = typeof codec === 'string' ? codec : codec.id ?? 'user'): Promise<void> {
  const store = await StateStore.create();
  const v = store.valueState<unknown>('v', { codec });
  const l = store.listState<unknown>('l', { codec });
  const m = store.mapState<number, unknown>('m', { keyCodec: 'number', valueCodec: codec });
  values.forEach((x, i) => m.forKey('k').put(i, x));
  // null and undefined are "no value" for value state and refused by lists: map values only.
  const all = values;
  values = values.filter((x) => x !== null && x !== undefined);
  values.forEach((x, i) => v.set(i, x));
  l.forKey('k').addAll(values);
  const check = (what: string, read: (i: number) => unknown, list: unknown[]) => {
    values.forEach((x, i) => same(read(i), x, `${label} ${what} #${i}`));
    assert.is(list.length, values.length, `${label} ${what} list length`);
    values.forEach((x, i) => same(list[i], x, `${label} ${what} list element #${i}`));
  };
  check('live', (i) => v.get(i), l.forKey('k').get());
  assert.is(m.forKey('k').size(), all.length);
  all.forEach((x, i) => same(m.forKey('k').get(i), x, `${label} live map value #${i}`));

  const snap = store.snapshot();
  values.forEach((_, i) => v.set(i, values[(i + 1) % values.length]));
  l.forKey('k').update([values[0]]);
  check('snapshot', (i) => snap.valueState('v').get(i), snap.listState('l').get('k'));
  all.forEach((x, i) => same(snap.mapState<number, unknown>('m').get('k', i), x, `${label} snapshot map value #${i}`));
  snap.release();
  values.forEach((x, i) => v.set(i, x));
  l.forKey('k').update(values);

  const restored = await StateStore.restore([await checkpointBytes(store)]);
  const rv = restored.valueState<unknown>('v', { codec });
  const rl = restored.listState<unknown>('l', { codec });
  const rm = restored.mapState<number, unknown>('m', { keyCodec: 'number', valueCodec: codec });
  check('restored', (i) => rv.get(i), rl.forKey('k').get());
  all.forEach((x, i) => same(rm.forKey('k').get(i), x, `${label} restored map value #${i}`));
}

const Builtins = suite('codecs: built-in round trips');

const numbers = [
  0, -0, 1, -1, 127, 128, -128, -129, 255, 256, 2 ** 30 - 1, 2 ** 30, -(2 ** 30), -(2 ** 30) - 1,
  2 ** 31 - 1, -(2 ** 31), 2 ** 31, -(2 ** 31) - 1, 2 ** 32, 2 ** 32 + 1, -(2 ** 32),
  2 ** 51 - 1, 2 ** 51, -(2 ** 51), 2 ** 51 + 1, 2 ** 52, -(2 ** 52), 2 ** 53, -(2 ** 53),
  Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE,
  0.1, -0.1, 0.5, 1 / 3, Math.PI, NaN, Infinity, -Infinity, 1e308, -1e308, 5e-324, -5e-324, 2 ** -1074, 1e21, 123456789.123,
];

Builtins('number', () => roundTrips('number', numbers));
Builtins('number: -0 is kept as a value', async () => {
  const store = await StateStore.create();
  const v = store.valueState<number>('v', { codec: 'number' });
  v.set('k', -0);
  assert.ok(Object.is(v.get('k'), -0), `read ${v.get('k')}, expected -0`);
  v.set('k', 0);
  assert.ok(Object.is(v.get('k'), 0), 'and 0 stays +0');
  const r = store.reducingState<number>('r', { reduce: (a, b) => a * b, codec: 'number' });
  r.forKey('k').add(-1);
  r.forKey('k').add(0);
  assert.ok(Object.is(r.forKey('k').get(), -0), 'a reduced -0 is kept');
});

const strings = [
  '', 'a', 'hello world', 'x'.repeat(31), 'x'.repeat(32), 'x'.repeat(33), `${'x'.repeat(31)}é`, `${'x'.repeat(32)}é`,
  'ü', 'ß€', 'naïve café', 'Ω≈ç√∫', '中文字符', 'ключ', '😀', '👍🏽', '👩‍👩‍👧‍👦', 'a😀b', '\u0000', 'nul\u0000inside',
  '\u007f', '\u0080', '\u07ff', '\u0800', '\uffff', '\u{10000}', '\u{10ffff}', 'line\nbreak\ttab',
  text(1_000, 3), text(100_000, 4), 'z'.repeat(200_000),
];

Builtins('string', () => roundTrips('string', strings));

const bigints = [
  0n, 1n, -1n, 127n, 128n, -128n, -129n, 255n, 256n, -255n, -256n, 2n ** 31n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n,
  -(2n ** 64n), 2n ** 64n - 1n, -(2n ** 200n), 2n ** 200n + 12345n, 10n ** 100n,
];

Builtins('bigint', () => roundTrips('bigint', bigints));
Builtins('boolean', () => roundTrips('boolean', [true, false, false, true]));

Builtins('bytes', async () => {
  const large = Uint8Array.from({ length: 1 << 20 }, (_, i) => (i * 2654435761) >>> 24);
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  await roundTrips('bytes', [new Uint8Array(0), Uint8Array.of(0), all, large, Uint8Array.of(0xf8, 0xf9, 0xfa)]);
});

Builtins('bytes: a view stores only its own bytes; reads are copies', async () => {
  const store = await StateStore.create();
  const v = store.valueState<Uint8Array>('b', { codec: 'bytes' });
  const backing = Uint8Array.from({ length: 64 }, (_, i) => i);
  v.set('view', backing.subarray(10, 20));
  const got = v.get('view')!;
  assert.equal(got, Uint8Array.from({ length: 10 }, (_, i) => i + 10));
  assert.is(got.byteOffset, 0, 'an independent array');
  got[0] = 99;
  backing[10] = 77;
  assert.is(v.get('view')![0], 10, 'neither the read copy nor the source aliases the store');
});

Builtins('cbor: structured values', async () => {
  const values: unknown[] = [
    null,
    0,
    1.5,
    -7,
    'text',
    true,
    [],
    {},
    [1, 'two', [3, [4]], { five: 5 }],
    { a: 1, nested: { deeper: { list: [1, 2, 3], flag: false } }, 'key with spaces': '', ü: 'ü' },
    { undef: undefined, nul: null, n: 1 },
    new Map<unknown, unknown>([[1, 'one'], ['1', 'string one'], ['nested', new Map([['x', [1, 2]]])]]),
    new Set([1, 'a', 3]),
    new Date(0),
    new Date(1_700_000_000_123),
    2n ** 64n,
    -(2n ** 200n),
    5n,
    { big: 12345678901234567890n, when: new Date(86_400_000), tags: new Set(['x']) },
    Uint8Array.of(1, 2, 3),
    Float64Array.of(1.5, -2, Infinity, 2 ** -1074),
    Int32Array.of(-1, 2 ** 31 - 1),
    Float32Array.of(0.5),
    [NaN, Infinity, -Infinity, 2 ** 53, Number.MAX_SAFE_INTEGER],
    'x'.repeat(100_000),
    Array.from({ length: 1000 }, (_, i) => ({ i, s: `item ${i}` })),
  ];
  await roundTrips('cbor', values);
});

Builtins('cbor: values read earlier keep their bytes when later values are read', async () => {
  const store = await StateStore.create();
  const v = store.valueState<{ raw: Uint8Array; s: string }>('v');
  v.set('a', { raw: Uint8Array.of(1, 2, 3), s: 'first' });
  v.set('b', { raw: new Uint8Array(300).fill(9), s: 'second'.repeat(20) });
  const a = v.get('a') as { raw: Uint8Array; s: string };
  const b = v.get('b') as { raw: Uint8Array; s: string };
  v.get('a');
  assert.equal(Array.from(a.raw), [1, 2, 3]);
  assert.is(a.s, 'first');
  assert.ok(b.raw.every((x) => x === 9) && b.raw.length === 300);
  a.raw[0] = 77;
  assert.equal(Array.from((v.get('a') as { raw: Uint8Array }).raw), [1, 2, 3], 'a read is a copy');
});

Builtins('cbor: types are kept (Map stays a Map, Set a Set, Date a Date, typed arrays their type)', async () => {
  const store = await StateStore.create();
  const v = store.valueState<Record<string, unknown>>('v', { codec: 'cbor' });
  v.set('k', {
    map: new Map([[1, 2]]),
    set: new Set([1]),
    date: new Date(5),
    u8: Uint8Array.of(1),
    f64: Float64Array.of(1),
    big: 1n,
    undef: undefined,
  });
  const got = v.get('k')!;
  assert.instance(got.map, Map);
  assert.instance(got.set, Set);
  assert.instance(got.date, Date);
  assert.is((got.u8 as object).constructor, Uint8Array);
  assert.is((got.f64 as object).constructor, Float64Array);
  assert.is(typeof got.big, 'bigint');
  assert.ok('undef' in got, 'a key whose value is undefined is kept');
  assert.is(got.undef, undefined);
});

// Documented: the cbor codec writes -0 as 0, as JSON does (cbor-x encodes
// an integral float as an integer). The number codec keeps -0.
Builtins('cbor: -0 becomes 0 (documented); the number codec keeps it', async () => {
  const store = await StateStore.create();
  const v = store.valueState<unknown>('v');
  v.set('top', -0);
  v.set('inside', { x: -0, list: [-0] });
  assert.ok(Object.is(v.get('top'), 0), 'top-level -0 reads as 0');
  const inside = v.get('inside') as { x: number; list: number[] };
  assert.ok(Object.is(inside.x, 0) && Object.is(inside.list[0], 0), '-0 inside an object reads as 0');
  const n = store.valueState<number>('n', { codec: 'number' });
  n.set('top', -0);
  assert.ok(Object.is(n.get('top'), -0), 'the number codec keeps -0');
});

// cbor-x would write a lone surrogate as U+FFFD, changing the value: the
// codec refuses such strings anywhere in a value, as the string codec does.
Builtins('cbor: a lone surrogate is refused or kept, never changed', async () => {
  const store = await StateStore.create();
  const v = store.valueState<unknown>('v', { codec: 'cbor' });
  for (const bad of ['\ud800', { s: 'a\udc00b' }, ['ok', '\udfff']]) {
    let refused = false;
    try {
      v.set('k', bad);
    } catch (e) {
      refused = e instanceof InvalidArgumentError && e.code === 'INVALID_VALUE';
      assert.ok(refused, `refused with INVALID_VALUE, not ${e}`);
    }
    if (!refused) assert.equal(v.get('k'), bad, `${JSON.stringify(bad)} round-trips exactly`);
  }
});

Builtins.run();

// ---- refusals -------------------------------------------------------------------------------

const Refusals = suite('codecs: refused values');

Refusals('lone surrogates: INVALID_VALUE for string values, INVALID_KEY for keys; nothing stored', async () => {
  const store = await StateStore.create();
  const v = store.valueState<string>('v', { codec: 'string' });
  const l = store.listState<string>('l', { codec: 'string' });
  const m = store.mapState<string, string>('m', { keyCodec: 'string', valueCodec: 'string' });
  const mk = store.mapState<Key, string>('mk', { valueCodec: 'string' });
  v.set('k', 'before');
  l.forKey('k').add('before');
  for (const bad of ['\ud800', '\udfff', 'a\ud83d', '\ude00z', `${'x'.repeat(40)}\ud800`, `é\udc00`]) {
    const what = JSON.stringify(bad);
    throwsKs(() => v.set('k', bad), InvalidArgumentError, 'INVALID_VALUE', `value ${what}`);
    throwsKs(() => l.forKey('k').add(bad), InvalidArgumentError, 'INVALID_VALUE', `list element ${what}`);
    throwsKs(() => l.forKey('k').addAll(['fine', bad]), InvalidArgumentError, 'INVALID_VALUE', `list elements ${what}`);
    throwsKs(() => m.forKey('k').put('uk', bad), InvalidArgumentError, 'INVALID_VALUE', `map value ${what}`);
    throwsKs(() => m.forKey('k').put(bad, 'v'), InvalidArgumentError, 'INVALID_KEY', `string map key ${what}`);
    throwsKs(() => mk.forKey('k').put(bad, 'v'), InvalidArgumentError, 'INVALID_KEY', `typed map key ${what}`);
    throwsKs(() => v.set(bad, 'v'), InvalidArgumentError, 'INVALID_KEY', `key ${what}`);
    throwsKs(() => store.setCurrentKey(bad), InvalidArgumentError, 'INVALID_KEY', `current key ${what}`);
    throwsKs(() => v.withNamespace(bad), InvalidArgumentError, 'INVALID_KEY', `namespace ${what}`);
  }
  assert.is(v.get('k'), 'before');
  assert.equal(l.forKey('k').get(), ['before']);
  assert.ok(m.forKey('k').isEmpty());
  assert.ok(mk.forKey('k').isEmpty());
  assert.is(store.memory().entries, 2);
  // Well-formed pairs are fine.
  v.set('😀', '😀');
  assert.is(v.get('😀'), '😀');
});

Refusals('a value of the wrong type: INVALID_VALUE and nothing stored', async () => {
  const store = await StateStore.create();
  const cases: [CodecName, unknown[]][] = [
    ['number', ['1', 1n, true, {}, [1], new Number(1)]],
    ['string', [1, 1n, true, {}, ['a'], new String('a')]],
    ['bigint', [1, '1', true, {}]],
    ['boolean', [1, 0, 'true', {}, new Boolean(true)]],
    ['bytes', [[1, 2], 'ab', 1, {}, new ArrayBuffer(2), new DataView(new ArrayBuffer(2)), Uint16Array.of(1)]],
    ['cbor', [() => 1, Symbol('s')]],
  ];
  for (const [codec, bad] of cases) {
    const v = store.valueState<unknown>(`v-${codec}`, { codec });
    const l = store.listState<unknown>(`l-${codec}`, { codec });
    const m = store.mapState<string, unknown>(`m-${codec}`, { valueCodec: codec });
    for (const x of bad) {
      const what = `${codec} codec given ${typeof x} ${String(x).slice(0, 20)}`;
      throwsKs(() => v.set('k', x), InvalidArgumentError, 'INVALID_VALUE', `${what} (value)`);
      throwsKs(() => v.forKey('k').update(x), InvalidArgumentError, 'INVALID_VALUE', `${what} (update)`);
      throwsKs(() => l.forKey('k').add(x), InvalidArgumentError, 'INVALID_VALUE', `${what} (list add)`);
      throwsKs(() => l.forKey('k').update([x]), InvalidArgumentError, 'INVALID_VALUE', `${what} (list update)`);
      throwsKs(() => m.forKey('k').put('uk', x), InvalidArgumentError, 'INVALID_VALUE', `${what} (map put)`);
      assert.not.ok(v.has('k'), `${what}: nothing stored`);
      assert.equal(l.forKey('k').get(), []);
      assert.ok(m.forKey('k').isEmpty());
    }
  }
  assert.is(store.memory().entries, 0);
});

Refusals('a circular structure is refused by cbor with INVALID_VALUE', async () => {
  const store = await StateStore.create();
  const v = store.valueState<unknown>('v', { codec: 'cbor' });
  const loop: Record<string, unknown> = {};
  loop.self = loop;
  throwsKs(() => v.set('k', loop), InvalidArgumentError, 'INVALID_VALUE', 'circular');
  assert.not.ok(v.has('k'));
});

Refusals('a refused list element leaves the whole list as it was', async () => {
  const store = await StateStore.create();
  const l = store.listState<number>('l', { codec: 'number' }).forKey('k');
  l.addAll([1, 2]);
  throwsKs(() => l.addAll([3, 'four' as unknown as number, 5]), InvalidArgumentError, 'INVALID_VALUE', 'addAll');
  assert.equal(l.get(), [1, 2]);
  throwsKs(() => l.update([3, 'four' as unknown as number]), InvalidArgumentError, 'INVALID_VALUE', 'update');
  assert.equal(l.get(), [1, 2]);
});

Refusals.run();

// ---- user codecs and inference --------------------------------------------------------------------

const User = suite('codecs: user codecs and inference');

const utf8 = new TextEncoder();
const utf8d = new TextDecoder();
const json: Codec<unknown> = {
  id: 'json',
  encode: (v) => utf8.encode(JSON.stringify(v)),
  decode: (b) => JSON.parse(utf8d.decode(b)),
};

User('a user codec round-trips', () => roundTrips(json, [{ a: 1 }, [1, 'x'], 'str', 42, null, { nested: { deep: [true] } }]));

User('a user codec decodes its own copy of the bytes', async () => {
  const store = await StateStore.create();
  let seen: Uint8Array | undefined;
  const codec: Codec<string> = {
    id: 'raw',
    encode: (v) => utf8.encode(v),
    decode: (b) => {
      seen = b;
      return utf8d.decode(b);
    },
  };
  const v = store.valueState<string>('v', { codec });
  v.set('k', 'abc');
  assert.is(v.get('k'), 'abc');
  seen!.fill(0);
  assert.is(v.get('k'), 'abc', 'scribbling on the bytes given to decode changes nothing');
});

User('the user codec id is checked on re-declaration, also after restore', async () => {
  const store = await StateStore.create();
  const v = store.valueState<unknown>('v', { codec: json });
  v.set('k', { a: 1 });
  const other: Codec<unknown> = { ...json, id: 'json-v2' };
  const e = throwsKs(() => store.valueState('v', { codec: other }), StateDefinitionError, 'INCOMPATIBLE_STATE', 'another id');
  assert.match(e.message, /v/);
  throwsKs(() => store.valueState('v', { codec: 'cbor' }), StateDefinitionError, 'INCOMPATIBLE_STATE', 'a built-in');
  store.valueState('v', { codec: { ...json } });

  const restored = await StateStore.restore([await checkpointBytes(store)]);
  throwsKs(() => restored.valueState('v', { codec: other }), StateDefinitionError, 'INCOMPATIBLE_STATE', 'another id after restore');
  throwsKs(() => restored.valueState('v', { codec: 'string' }), StateDefinitionError, 'INCOMPATIBLE_STATE', 'a built-in after restore');
  assert.equal(restored.valueState('v', { codec: json }).get('k'), { a: 1 });
});

User('a user codec that does not return a Uint8Array: INVALID_VALUE, nothing stored', async () => {
  const store = await StateStore.create();
  const bad = { id: 'bad', encode: (v: string) => v as unknown as Uint8Array, decode: (b: Uint8Array) => utf8d.decode(b) };
  const v = store.valueState<string>('v', { codec: bad });
  throwsKs(() => v.set('k', 'x'), InvalidArgumentError, 'INVALID_VALUE', 'encode returned a string');
  assert.is(store.memory().entries, 0);
  throwsKs(() => store.valueState('w', { codec: { id: 'half' } as unknown as Codec<string> }), InvalidArgumentError, 'INVALID_ARGUMENT', 'no encode/decode');
  throwsKs(() => store.valueState('w', { codec: 'utf16' as never }), InvalidArgumentError, 'INVALID_ARGUMENT', 'unknown built-in name');
});

User('the codec is inferred from the default', async () => {
  const store = await StateStore.create();
  const cases: [unknown, CodecName][] = [
    [0, 'number'],
    ['', 'string'],
    [0n, 'bigint'],
    [false, 'boolean'],
    [new Uint8Array(0), 'bytes'],
    [{ a: 1 }, 'cbor'],
    [[1], 'cbor'],
  ];
  const all: CodecName[] = ['number', 'string', 'bigint', 'boolean', 'bytes', 'cbor'];
  cases.forEach(([dflt, codec], i) => {
    const name = `inferred-${i}`;
    const s = store.valueState<unknown>(name, { default: dflt });
    same(s.get('absent'), dflt, `default of ${name}`);
    for (const other of all) {
      if (other === codec) store.valueState(name, { codec: other });
      else throwsKs(() => store.valueState(name, { codec: other }), StateDefinitionError, 'INCOMPATIBLE_STATE', `${codec} default, redeclared ${other}`);
    }
  });
  // No default and no codec: the general codec.
  store.valueState('plain');
  store.valueState('plain', { codec: 'cbor' });
  throwsKs(() => store.valueState('plain', { codec: 'number' }), StateDefinitionError, 'INCOMPATIBLE_STATE', 'no default, redeclared number');
  // An inferred codec refuses other types like an explicit one.
  const n = store.valueState('count', { default: 0 });
  throwsKs(() => n.set('k', 'one' as unknown as number), InvalidArgumentError, 'INVALID_VALUE', 'string into an inferred number state');
});

User.run();
