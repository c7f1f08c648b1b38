/**
 * Codecs turn values into the bytes the core stores, and back. The core never
 * looks inside a value; a state's codec id is written into checkpoints and
 * checked when the state is declared again, so bytes are never read with a
 * codec other than the one that wrote them.
 *
 * Built-in codecs write straight into the store's scratch buffer and read
 * straight out of the result buffer (no intermediate arrays; for wasm, out of
 * linear memory where the core keeps the value). User codecs are
 * `{ id?, encode, decode }`.
 */
import { Encoder } from 'cbor-x';
import type { Bridge, ReadView } from './bridge.js';
import { decodeFast, LEAVE } from './cborfast.js';
import { InvalidArgumentError } from './errors.js';

/** A key: typed, so `1` and `"1"` are different keys. */
export type Key = string | number | bigint | Uint8Array;

/**
 * A user codec. `id` names the encoding: it is written into checkpoints and
 * compared when a state is declared again, so bytes are never read by a codec
 * that did not write them. Change the id when the encoding changes.
 */
export interface Codec<T> {
  readonly id: string;
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

/** Names of the built-in codecs. */
export type CodecName = 'string' | 'number' | 'bigint' | 'boolean' | 'bytes' | 'cbor' | 'key';

/** Internal codec shape: writes into scratch, reads from a result view. */
export interface FastCodec<T> {
  readonly id: string;
  /** Writes `v` at scratch offset `off`; returns the byte length. */
  write(v: T, b: Bridge, off: number): number;
  /** Reads `len` bytes at offset `ptr` of the view (views are fresh). */
  read(b: ReadView, ptr: number, len: number): T;
}

const utf8 = new TextEncoder();
const utf8d = new TextDecoder('utf-8', { fatal: true });

function invalid(what: string, v: unknown): never {
  throw new InvalidArgumentError('INVALID_VALUE', `${what} codec cannot encode ${describe(v)}`);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return `a ${(v as object).constructor?.name ?? 'object'}`;
  return `${typeof v} ${String(v).slice(0, 40)}`;
}

// ---- strings -----------------------------------------------------------------

/**
 * Writes `s` as UTF-8 at scratch offset `off`. ASCII goes through a plain
 * loop (faster than `encodeInto` for short strings); anything else through
 * `encodeInto`. Strings with lone surrogates are refused: UTF-8 cannot hold
 * them, and replacing them would change the value.
 */
export function writeUtf8(s: string, b: Bridge, off: number, what: string): number {
  const n = s.length;
  b.ensure(off + n * 3);
  const u8 = b.w8;
  const at = b.scratch + off;
  let i = 0;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) break;
    u8[at + i] = c;
  }
  if (i === n) return n;
  if (!s.isWellFormed()) {
    throw new InvalidArgumentError(what === 'key' ? 'INVALID_KEY' : 'INVALID_VALUE', `${what} string has a lone surrogate`);
  }
  const { written } = utf8.encodeInto(s.slice(i), u8.subarray(at + i, at + n * 3));
  return i + written;
}

export function readUtf8(u8: Uint8Array, ptr: number, len: number): string {
  if (len <= 32) {
    let s = '';
    for (let i = 0; i < len; i++) {
      const c = u8[ptr + i];
      if (c >= 0x80) return utf8d.decode(u8.subarray(ptr, ptr + len));
      s += String.fromCharCode(c);
    }
    return s;
  }
  return utf8d.decode(u8.subarray(ptr, ptr + len));
}

// ---- numbers -----------------------------------------------------------------

const TWO32 = 2 ** 32;
const SAFE_INT = 2 ** 51;

/**
 * Numbers: integers within +-2^51 as a zigzag integer in 0..7 little-endian
 * bytes (0 is no bytes at all, a counter below 128 one byte), everything else
 * (fractions, -0, NaN, infinities, larger magnitudes) as 8 bytes of float64.
 * The length tells which.
 */
export function writeNumber(v: number, b: Bridge, off: number): number {
  b.ensure(off + 8);
  const u8 = b.w8;
  const at = b.scratch + off;
  if (v >= -0x40000000 && v < 0x40000000 && (v | 0) === v && (v !== 0 || 1 / v > 0)) {
    let z = ((v << 1) ^ (v >> 31)) >>> 0;
    let n = 0;
    while (z !== 0) {
      u8[at + n++] = z & 0xff;
      z >>>= 8;
    }
    return n;
  }
  // v !== 0: -0 (the only zero left here) must keep its sign, so it goes to float64.
  if (Number.isInteger(v) && v >= -SAFE_INT && v <= SAFE_INT && v !== 0) {
    let z = v >= 0 ? v * 2 : -v * 2 - 1;
    let n = 0;
    while (z !== 0) {
      const lo = z % 256;
      u8[at + n++] = lo;
      z = (z - lo) / 256;
    }
    return n;
  }
  if (typeof v !== 'number') invalid('number', v);
  b.wdv.setFloat64(at, v, true);
  return 8;
}

export function readNumber(b: ReadView, ptr: number, len: number): number {
  const u8 = b.u8;
  if (len === 8) return b.dv.getFloat64(ptr, true);
  if (len <= 4) {
    let z = 0;
    for (let i = len - 1; i >= 0; i--) z = (z << 8) | u8[ptr + i];
    z >>>= 0;
    return (z >>> 1) ^ -(z & 1);
  }
  let z = 0;
  for (let i = len - 1; i >= 0; i--) z = z * 256 + u8[ptr + i];
  return z % 2 === 1 ? -(z + 1) / 2 : z / 2;
}

// ---- bigint ------------------------------------------------------------------

/** Minimal two's-complement little-endian bytes. */
export function writeBigint(v: bigint, b: Bridge, off: number): number {
  if (typeof v !== 'bigint') invalid('bigint', v);
  let n = 0;
  let x = v;
  // At most one byte per 8 bits plus a sign byte.
  b.ensure(off + Math.ceil((x < 0n ? -x : x).toString(16).length / 2) + 2);
  const at = b.scratch + off;
  for (;;) {
    const byte = Number(x & 0xffn);
    x >>= 8n;
    b.w8[at + n++] = byte;
    const signBit = (byte & 0x80) !== 0;
    if ((x === 0n && !signBit) || (x === -1n && signBit)) return n;
  }
}

export function readBigint(b: ReadView, ptr: number, len: number): bigint {
  if (len === 0) return 0n;
  let x = 0n;
  for (let i = len - 1; i >= 0; i--) x = (x << 8n) | BigInt(b.u8[ptr + i]);
  if (b.u8[ptr + len - 1] & 0x80) x -= 1n << BigInt(len * 8);
  return x;
}

// ---- keys --------------------------------------------------------------------

/** Tags of non-string keys: bytes that never start valid UTF-8. */
const TAG_NUMBER = 0xf8;
const TAG_BIGINT = 0xf9;
const TAG_BYTES = 0xfa;

/**
 * Typed keys: strings as bare UTF-8; numbers, bigints and byte arrays after a
 * tag byte that UTF-8 never uses. -0 is the key 0, as in a JS `Map`.
 */
export function writeKey(k: Key, b: Bridge, off: number): number {
  if (typeof k === 'string') return writeUtf8(k, b, off, 'key');
  if (typeof k === 'number') {
    b.ensure(off + 9);
    b.w8[b.scratch + off] = TAG_NUMBER;
    return 1 + writeNumber(k === 0 ? 0 : Number.isNaN(k) ? NaN : k, b, off + 1);
  }
  if (typeof k === 'bigint') {
    const n = writeBigint(k, b, off + 1);
    b.w8[b.scratch + off] = TAG_BIGINT;
    return n + 1;
  }
  if (k instanceof Uint8Array) {
    b.ensure(off + 1 + k.length);
    b.w8[b.scratch + off] = TAG_BYTES;
    b.w8.set(k, b.scratch + off + 1);
    return 1 + k.length;
  }
  throw new InvalidArgumentError('INVALID_KEY', `keys are strings, numbers, bigints or Uint8Arrays, not ${describe(k)}`);
}

export function readKey(b: ReadView, ptr: number, len: number): Key {
  const tag = len > 0 ? b.u8[ptr] : 0;
  switch (tag) {
    case TAG_NUMBER:
      return readNumber(b, ptr + 1, len - 1);
    case TAG_BIGINT:
      return readBigint(b, ptr + 1, len - 1);
    case TAG_BYTES:
      return b.u8.slice(ptr + 1, ptr + len);
    default:
      return readUtf8(b.u8, ptr, len);
  }
}

// ---- the built-in codecs -------------------------------------------------------

const stringCodec: FastCodec<string> = {
  id: 'string',
  write(v, b, off) {
    if (typeof v !== 'string') invalid('string', v);
    return writeUtf8(v, b, off, 'value');
  },
  read: (b, ptr, len) => readUtf8(b.u8, ptr, len),
};

const numberCodec: FastCodec<number> = {
  id: 'number',
  write(v, b, off) {
    if (typeof v !== 'number') invalid('number', v);
    return writeNumber(v, b, off);
  },
  read: readNumber,
};

const bigintCodec: FastCodec<bigint> = { id: 'bigint', write: writeBigint, read: readBigint };

const booleanCodec: FastCodec<boolean> = {
  id: 'boolean',
  write(v, b, off) {
    if (typeof v !== 'boolean') invalid('boolean', v);
    b.ensure(off + 1);
    b.w8[b.scratch + off] = v ? 1 : 0;
    return 1;
  },
  read: (b, ptr) => b.u8[ptr] === 1,
};

const bytesCodec: FastCodec<Uint8Array> = {
  id: 'bytes',
  write(v, b, off) {
    if (!(v instanceof Uint8Array)) invalid('bytes', v);
    return b.put(v, off);
  },
  read: (b, ptr, len) => b.u8.slice(ptr, ptr + len),
};

const keyCodec: FastCodec<Key> = { id: 'key', write: writeKey, read: readKey };

/**
 * The general default: CBOR (RFC 8949) by cbor-x. Keeps objects, arrays,
 * Map (as a Map), Set, Date, bigint, typed arrays, undefined and null apart;
 * each value is self-contained (no shared record structures). As in JSON,
 * -0 is written as 0; strings with lone surrogates are refused.
 */
const cbor = new Encoder({ useRecords: false, copyBuffers: true } as ConstructorParameters<typeof Encoder>[0]);
/**
 * Refuses strings CBOR cannot hold exactly (lone surrogates would become
 * U+FFFD), anywhere in a value. Also bounds depth: cbor-x recurses.
 */
function checkStrings(v: unknown, depth: number): void {
  if (typeof v === 'string') {
    if (!v.isWellFormed()) throw new InvalidArgumentError('INVALID_VALUE', 'cbor codec: a string has a lone surrogate');
    return;
  }
  if (typeof v !== 'object' || v === null || ArrayBuffer.isView(v)) return;
  if (depth > 256) throw new InvalidArgumentError('INVALID_VALUE', 'cbor codec: value nested deeper than 256 levels (or cyclic)');
  if (Array.isArray(v) || v instanceof Set) {
    for (const x of v) checkStrings(x, depth + 1);
  } else if (v instanceof Map) {
    for (const [k, x] of v) {
      checkStrings(k, depth + 1);
      checkStrings(x, depth + 1);
    }
  } else {
    for (const k in v) {
      checkStrings(k, depth + 1);
      checkStrings((v as Record<string, unknown>)[k], depth + 1);
    }
  }
}

/**
 * Values are decoded from one reused buffer rather than from a view of wasm
 * memory per value: cbor-x keeps the DataView it makes for a source on the
 * source, so this saves a view per read (get of a small object: about a
 * third faster). Values that decode to bytes are copied out (copyBuffers).
 */
let cborSrc = new Uint8Array(256);
const CBOR_SRC_MAX = 64 * 1024;
/** Values up to this size try cborfast.ts first (larger ones are rarely plain small data). */
const FAST_MAX = 4096;
/** cbor-x's `decode(source, end)` reads `source` up to `end`; its typings leave `end` out. */
const cborUpTo = cbor as unknown as { decode(source: Uint8Array, end: number): unknown };

const cborCodec: FastCodec<unknown> = {
  id: 'cbor',
  write(v, b, off) {
    checkStrings(v, 0);
    let bytes: Uint8Array;
    try {
      bytes = cbor.encode(v);
    } catch (e) {
      throw new InvalidArgumentError('INVALID_VALUE', `cbor codec cannot encode ${describe(v)}: ${(e as Error).message}`);
    }
    return b.put(bytes, off);
  },
  read(b, ptr, len) {
    if (len <= FAST_MAX) {
      const v = decodeFast(b.u8, ptr, len);
      if (v !== LEAVE) return v;
    }
    if (len > CBOR_SRC_MAX) return cbor.decode(b.u8.slice(ptr, ptr + len));
    if (len > cborSrc.length) cborSrc = new Uint8Array(Math.min(CBOR_SRC_MAX, Math.max(len, cborSrc.length * 2)));
    const u8 = b.u8;
    if (len <= 64) {
      for (let i = 0; i < len; i++) cborSrc[i] = u8[ptr + i];
    } else {
      cborSrc.set(u8.subarray(ptr, ptr + len));
    }
    return cborUpTo.decode(cborSrc, len);
  },
};

const builtins: Record<CodecName, FastCodec<unknown>> = {
  string: stringCodec as FastCodec<unknown>,
  number: numberCodec as FastCodec<unknown>,
  bigint: bigintCodec as FastCodec<unknown>,
  boolean: booleanCodec as FastCodec<unknown>,
  bytes: bytesCodec as FastCodec<unknown>,
  cbor: cborCodec,
  key: keyCodec as FastCodec<unknown>,
};

/** Wraps a user codec: encode to an array, copy in; copy out, decode. */
function userCodec<T>(c: Codec<T>): FastCodec<T> {
  if (typeof c.encode !== 'function' || typeof c.decode !== 'function') {
    throw new InvalidArgumentError('INVALID_ARGUMENT', 'a codec needs encode and decode functions');
  }
  if (typeof c.id !== 'string' || c.id.length === 0 || c.id in builtins) {
    throw new InvalidArgumentError('INVALID_ARGUMENT', `a user codec needs its own id (not a built-in one), got ${JSON.stringify(c.id)}`);
  }
  const id = c.id;
  return {
    id,
    write(v, b, off) {
      const bytes = c.encode(v);
      if (!(bytes instanceof Uint8Array)) {
        throw new InvalidArgumentError('INVALID_VALUE', `codec ${id} returned ${describe(bytes)}, not a Uint8Array`);
      }
      return b.put(bytes, off);
    },
    read: (b, ptr, len) => c.decode(b.u8.slice(ptr, ptr + len)),
  };
}

/** The built-in codec with this id, if there is one. */
export function builtinCodec(id: string): FastCodec<unknown> | undefined {
  return Object.hasOwn(builtins, id) ? builtins[id as CodecName] : undefined;
}

/** Resolves a codec option: a built-in name, a user codec, or inferred from a default value. */
export function resolveCodec<T>(codec: CodecName | Codec<T> | undefined, example?: unknown): FastCodec<T> {
  if (typeof codec === 'string') {
    const c = builtins[codec];
    if (!c) throw new InvalidArgumentError('INVALID_ARGUMENT', `unknown codec "${codec}"`);
    return c as FastCodec<T>;
  }
  if (codec) return userCodec(codec);
  return builtins[inferCodec(example)] as FastCodec<T>;
}

function inferCodec(v: unknown): CodecName {
  switch (typeof v) {
    case 'number':
      return 'number';
    case 'string':
      return 'string';
    case 'bigint':
      return 'bigint';
    case 'boolean':
      return 'boolean';
    default:
      return v instanceof Uint8Array ? 'bytes' : 'cbor';
  }
}
