// The cbor codec's read fast path (ts/cborfast.ts) against cbor-x itself:
// whatever the fast path decodes must be exactly what cbor-x decodes (same
// types, key order, -0 and NaN), on random values and on random bytes; what
// it does not decode it must leave (never throw, never guess).
import { Encoder } from 'cbor-x';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeFast, LEAVE } from '../dist/cborfast.js';
import { rng } from './_util.js';

// The codec's own settings (ts/codecs.ts).
const cbor = new Encoder({ useRecords: false, copyBuffers: true } as ConstructorParameters<typeof Encoder>[0]);

/** The first bytes, in hex, for a failure message (no Buffer in a browser). */
const hex = (b: Uint8Array): string => Array.from(b.subarray(0, 100), (x) => x.toString(16).padStart(2, '0')).join('');

/** Exactly the same value: Object.is for primitives, same prototype, same own keys in the same order. */
function exact(a: unknown, b: unknown, path = '$'): string | null {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) {
    return Object.is(a, b) ? null : `${path}: ${String(a)} (${typeof a}) != ${String(b)} (${typeof b})`;
  }
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return `${path}: different prototypes`;
  if (!Array.isArray(a) && Object.getPrototypeOf(a) !== Object.prototype) {
    return `${path}: the fast path made a ${(a as object).constructor?.name}`;
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.join('\u0000') !== kb.join('\u0000')) return `${path}: keys [${ka}] != [${kb}]`;
  for (const k of ka) {
    const d = exact((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`);
    if (d !== null) return d;
  }
  return null;
}

/** Random values: mostly what the fast path reads, with everything it leaves mixed in. */
function values(seed: number, count: number): unknown[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const shapes = [['id', 'name', 'score', 'active'], ['a'], ['x', 'y'], ['0', 'b', '10'], ['k'.repeat(24), 'z'], ['k'.repeat(40)], ['ü', 'é'.repeat(20)]];
  const numbers = [0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53, -1, -24, -25, -256, -257, -65537, -(2 ** 32), -(2 ** 32) - 1, 1.5, 0.1, -0, NaN, Infinity, -Infinity, 2 ** -1074];
  const strings = ['', 'a', 'name-500000', 'x'.repeat(23), 'x'.repeat(24), 'y'.repeat(32), 'y'.repeat(33), 'z'.repeat(300), 'ü', 'a中b', '\u0000\u007f', 'é'.repeat(40), '\ufeff' + 'b'.repeat(40), '\ufeffb'];
  const leaf = (): unknown => {
    const t = r();
    if (t < 0.35) return pick(numbers);
    if (t < 0.6) return pick(strings);
    if (t < 0.7) return pick([true, false, null, undefined]);
    if (t < 0.73) return Math.floor(r() * 2 ** 31) * (r() < 0.5 ? -1 : 1);
    if (t < 0.76) return new Date(Math.floor(r() * 2e12));
    if (t < 0.79) return Uint8Array.of(1, 2, 3);
    if (t < 0.81) return BigInt(Math.floor(r() * 1e9)) * 10n ** 12n;
    if (t < 0.83) return new Map([[1, 'one']]);
    if (t < 0.85) return new Set(['s']);
    return r() * 1e6 - 5e5;
  };
  const value = (depth: number): unknown => {
    const t = r();
    if (t < 0.4 + 0.15 * depth) return leaf();
    if (t < 0.6) return Array.from({ length: Math.floor(r() * 5) }, () => value(depth + 1));
    if (t < 0.65) {
      // a chain 28-40 deep: around the fast path's depth limit
      let v: unknown = leaf();
      for (let i = 28 + Math.floor(r() * 13); i > 0; i--) v = r() < 0.5 ? [v] : { a: v };
      return v;
    }
    const o: Record<string, unknown> = {};
    if (t < 0.7) {
      // a dictionary: keys that rarely repeat, sometimes more than 16 of them
      const n = Math.floor(r() * 20);
      for (let i = 0; i < n; i++) o[`key${Math.floor(r() * 1000)}`] = value(depth + 1);
    } else if (t < 0.72) {
      return JSON.parse('{"__proto__": 1, "b": 2}'); // an own __proto__ key: cbor-x renames it
    } else {
      for (const k of pick(shapes)) o[k] = value(depth + 1);
    }
    return o;
  };
  return Array.from({ length: count }, () => value(0));
}

const Fast = suite('cbor fast path: same as cbor-x');

Fast('random values decode exactly as cbor-x decodes them, or are left to it', () => {
  const buf = new Uint8Array(1 << 20);
  let fast = 0;
  let left = 0;
  // each value is read several times: shapes are compiled after 8 sightings
  for (let round = 0; round < 12; round++) {
    for (const v of values(7, 400)) {
      const bytes = cbor.encode(v);
      const at = 1 + Math.floor((round * 977) % 1000);
      buf.fill(0xff, 0, at); // bytes before and after the value must not be read
      buf.set(bytes, at);
      buf.fill(0x61, at + bytes.length, at + bytes.length + 16);
      const got = decodeFast(buf, at, bytes.length);
      if (got === LEAVE) {
        left++;
        continue;
      }
      fast++;
      const d = exact(got, cbor.decode(bytes));
      if (d !== null) assert.unreachable(`${d} for ${hex(bytes)}`);
    }
  }
  assert.ok(fast > 2000, `the fast path decoded ${fast} values`);
  assert.ok(left > 500, `it left ${left} values to cbor-x`);
});

Fast('random bytes: what the fast path decodes, cbor-x decodes the same; nothing throws', () => {
  const r = rng(11);
  const base = values(3, 300).map((v) => cbor.encode(v));
  let fast = 0;
  let refused = 0;
  for (let i = 0; i < 20000; i++) {
    const src = base[i % base.length];
    const b = Uint8Array.from(src);
    const how = r();
    let len = b.length;
    if (how < 0.5) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
    else if (how < 0.75) len = Math.floor(r() * b.length);
    else if (how < 0.9) b[Math.floor(r() * b.length)] ^= 1 << Math.floor(r() * 8);
    // else: trailing bytes after a whole value (a value read as a shorter length)
    const buf = new Uint8Array(len + 8);
    buf.set(b.subarray(0, len));
    buf.fill(how >= 0.9 ? 0x01 : 0xff, len);
    const view = how >= 0.9 ? buf : buf.subarray(0, len);
    const readLen = how >= 0.9 ? len + 8 : len;
    let got: unknown;
    try {
      got = decodeFast(view, 0, readLen);
    } catch (e) {
      assert.unreachable(`the fast path threw ${(e as Error).message}`);
    }
    let want: unknown;
    let threw = false;
    try {
      want = cbor.decode(view.slice(0, readLen));
    } catch {
      threw = true;
    }
    if (got === LEAVE) {
      if (threw) refused++;
      continue;
    }
    fast++;
    assert.ok(!threw, `cbor-x refuses bytes the fast path decoded: ${hex(view.subarray(0, readLen))}`);
    const d = exact(got, want);
    if (d !== null) assert.unreachable(`${d} for ${hex(view.subarray(0, readLen))}`);
  }
  assert.ok(fast > 3000, `the fast path decoded ${fast} mutated values`);
  assert.ok(refused > 3000, `cbor-x refused ${refused} of those left`);
});

Fast('a value is read only within its bytes', () => {
  const bytes = cbor.encode({ a: [1, 2], b: 'xy' });
  const buf = new Uint8Array(bytes.length + 2);
  buf.set(bytes, 1);
  assert.equal(decodeFast(buf, 1, bytes.length), { a: [1, 2], b: 'xy' });
  assert.is(decodeFast(buf, 1, bytes.length - 1), LEAVE, 'cut short');
  assert.is(decodeFast(buf, 1, bytes.length + 5), LEAVE, 'past the buffer');
  assert.is(decodeFast(buf, 0, bytes.length + 1), LEAVE, 'a byte before');
});

Fast.run();
