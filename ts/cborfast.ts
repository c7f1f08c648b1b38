/**
 * The cbor codec's read fast path: decodes the values cbor-x writes for plain
 * data (maps with ASCII text keys, arrays, integers, floats, ASCII strings,
 * booleans, null, undefined) straight out of the result buffer. cbor-x's
 * `decode` costs about 400 ns for a four-field object even when warm (its
 * per-call set-up and general reader); this reads the same object in a
 * fraction of that.
 *
 * Anything else (tags such as Date, byte strings, non-ASCII strings, float16,
 * 64-bit integers, indefinite lengths, `__proto__` keys, malformed or
 * trailing bytes) returns `LEAVE`, and the caller decodes the value with
 * cbor-x from the start. So every value decodes to exactly what cbor-x gives
 * (test/cborfast.test.ts compares the two on random values and random bytes).
 */

/** Returned for a value this path leaves to cbor-x. */
export const LEAVE: unique symbol = Symbol('cbor: leave to cbor-x');
type Leave = typeof LEAVE;

/** Values nested deeper than this are left to cbor-x (the path recurses). */
const MAX_DEPTH = 32;

const NONE = new Uint8Array(0);
/** The bytes being read; NONE between reads, so no caller's buffer is kept alive. */
let src: Uint8Array = NONE;
let pos = 0;
let end = 0;

const f64 = new Float64Array(1);
const f64b = new Uint8Array(f64.buffer);
const f32 = new Float32Array(1);
const f32b = new Uint8Array(f32.buffer);
/** CBOR is big-endian; typed arrays use the platform's order. */
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Map keys recur value after value: a key's bytes find the string made for
 * them last time, so an object gets the same key strings each read (V8 then
 * looks the property name up once). 1,024 slots, overwritten on collision.
 */
const KEY_SLOTS = 1024;
const KEY_MAX = 32;
const keyCache: string[] = new Array<string>(KEY_SLOTS).fill('');

/** Per-length argument arrays for `String.fromCharCode.apply`, reused. */
const SHORT_MAX = 32;
const charArgs: number[][] = Array.from({ length: SHORT_MAX + 1 }, (_, n) => new Array<number>(n).fill(0));
const asciiText = new TextDecoder('utf-8');

/** Decodes `len` bytes at `ptr` of `u8`, or returns `LEAVE`. */
export function decodeFast(u8: Uint8Array, ptr: number, len: number): unknown {
  if (ptr + len > u8.length) return LEAVE;
  src = u8;
  pos = ptr;
  end = ptr + len;
  const v = item(0);
  src = NONE;
  return pos === end ? v : LEAVE;
}

function item(depth: number): unknown {
  if (pos >= end) return LEAVE;
  const b = src[pos++];
  const major = b >> 5;
  let n = b & 0x1f;
  if (major === 7) return simple(b);
  if (n >= 24) {
    if (n === 24) {
      if (pos >= end) return LEAVE;
      n = src[pos++];
    } else if (n === 25) {
      if (pos + 2 > end) return LEAVE;
      n = (src[pos] << 8) | src[pos + 1];
      pos += 2;
    } else if (n === 26) {
      if (pos + 4 > end) return LEAVE;
      n = src[pos] * 0x1000000 + ((src[pos + 1] << 16) | (src[pos + 2] << 8) | src[pos + 3]);
      pos += 4;
    } else {
      return LEAVE; // 64-bit lengths (bigint for integers), indefinite lengths
    }
  }
  switch (major) {
    case 0:
      return n;
    case 1:
      return -1 - n;
    case 3:
      return text(n);
    case 4: {
      // every element takes a byte: a length past the end is corrupt
      if (depth >= MAX_DEPTH || n > end - pos) return LEAVE;
      const a = new Array<unknown>(n);
      for (let i = 0; i < n; i++) {
        const x = item(depth + 1);
        if (x === LEAVE) return LEAVE;
        a[i] = x;
      }
      return a;
    }
    case 5:
      return depth >= MAX_DEPTH ? LEAVE : n <= SHAPE_MAX ? record(n, depth) : object(n, depth);
    default:
      return LEAVE; // byte strings, tags
  }
}

/** A map of more than `SHAPE_MAX` entries, property by property. */
function object(n: number, depth: number): unknown {
  const o: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    const k = key();
    if (k === LEAVE) return LEAVE;
    const x = item(depth + 1);
    if (x === LEAVE) return LEAVE;
    o[k] = x;
  }
  return o;
}

/**
 * Objects of one shape (the same keys in the same order) recur in a state.
 * Two savings follow:
 * - A map's keys are first compared, as bytes, with those of the last shape
 *   read at the same depth: while they match, no key is hashed or looked up.
 * - Adding properties one by one costs about 20 ns each in V8 (a keyed store
 *   that changes the object's map); an object literal builds the final shape
 *   at once. So a shape seen `COMPILE_AFTER` times gets a function returning
 *   its literal, made by `new Function` (keys written by JSON.stringify;
 *   where a page's CSP forbids it, objects stay built property by property).
 */
const SHAPE_MAX = 16;
const SHAPE_SLOTS = 256;
const COMPILE_AFTER = 8;
interface Shape {
  readonly keys: string[];
  /** Each key as CBOR: its header and bytes. */
  readonly bytes: Uint8Array[];
  /** Each key's slot in the key cache. */
  readonly slots: number[];
  seen: number;
  make: ((v: unknown[]) => Record<string, unknown>) | null;
}
const shapes: (Shape | undefined)[] = new Array<Shape | undefined>(SHAPE_SLOTS).fill(undefined);
let compiles = true;
/** Per depth: the keys, values and key slots of the map being read (its entries are read before it is built), and the last shape read there. */
const keysAt: string[][] = Array.from({ length: MAX_DEPTH }, () => new Array<string>(SHAPE_MAX).fill(''));
const valsAt: unknown[][] = Array.from({ length: MAX_DEPTH }, () => new Array<unknown>(SHAPE_MAX).fill(undefined));
const slotsAt: number[][] = Array.from({ length: MAX_DEPTH }, () => new Array<number>(SHAPE_MAX).fill(0));
const lastAt: (Shape | undefined)[] = new Array<Shape | undefined>(MAX_DEPTH).fill(undefined);
/** The key cache slot of the key `key()` returned last; -1 for keys it does not cache. */
let keySlot = -1;

/** A map of at most `SHAPE_MAX` entries. */
function record(n: number, depth: number): unknown {
  const ks = keysAt[depth];
  const vs = valsAt[depth];
  const ss = slotsAt[depth];
  const guess = lastAt[depth];
  let same = guess !== undefined && guess.keys.length === n;
  let cached = true;
  for (let i = 0; i < n; i++) {
    if (same && at((guess as Shape).bytes[i])) {
      ks[i] = (guess as Shape).keys[i];
      ss[i] = (guess as Shape).slots[i];
    } else {
      same = false;
      const k = key();
      if (k === LEAVE) return LEAVE;
      ks[i] = k;
      ss[i] = keySlot;
      if (keySlot < 0) cached = false;
    }
    const x = item(depth + 1);
    if (x === LEAVE) return LEAVE;
    vs[i] = x;
  }
  let sh: Shape | undefined;
  if (same) {
    sh = guess as Shape;
  } else if (cached) {
    let h = n;
    for (let i = 0; i < n; i++) h = Math.imul(h ^ ss[i], 0x9e3779b1);
    const slot = (h ^ (h >>> 16)) & (SHAPE_SLOTS - 1);
    sh = shapes[slot];
    if (sh === undefined || sh.keys.length !== n || !sameKeys(sh.keys, ks, n)) {
      sh = shape(ks, ss, n);
      shapes[slot] = sh;
    }
    lastAt[depth] = sh;
  }
  if (sh !== undefined) {
    if (sh.make !== null) return sh.make(vs);
    if (++sh.seen >= COMPILE_AFTER && compiles) sh.make = compile(sh.keys);
  }
  const o: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) o[ks[i]] = vs[i];
  return o;
}

/** Whether `e` is at `pos`; if so, steps over it. */
function at(e: Uint8Array): boolean {
  const n = e.length;
  if (n > end - pos) return false;
  for (let i = 0; i < n; i++) if (src[pos + i] !== e[i]) return false;
  pos += n;
  return true;
}

function shape(ks: string[], ss: number[], n: number): Shape {
  const keys = ks.slice(0, n);
  const bytes = keys.map((k) => {
    const head = k.length < 24 ? [0x60 + k.length] : [0x78, k.length];
    return Uint8Array.from([...head, ...Array.from(k, (c) => c.charCodeAt(0))]);
  });
  return { keys, bytes, slots: ss.slice(0, n), seen: 0, make: null };
}

function sameKeys(a: string[], b: string[], n: number): boolean {
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

function compile(keys: string[]): ((v: unknown[]) => Record<string, unknown>) | null {
  try {
    return new Function('v', `return {${keys.map((k, i) => `${JSON.stringify(k)}:v[${i}]`).join(',')}}`) as (v: unknown[]) => Record<string, unknown>;
  } catch {
    compiles = false; // a Content-Security-Policy without 'unsafe-eval'
    return null;
  }
}

/** Major type 7 (`b` its initial byte): false, true, null, undefined, float32, float64. */
function simple(b: number): unknown {
  switch (b) {
    case 0xf4:
      return false;
    case 0xf5:
      return true;
    case 0xf6:
      return null;
    case 0xf7:
      return undefined;
    case 0xfa:
      if (pos + 4 > end) return LEAVE;
      for (let i = 0; i < 4; i++) f32b[LITTLE ? 3 - i : i] = src[pos + i];
      pos += 4;
      return f32[0];
    case 0xfb:
      if (pos + 8 > end) return LEAVE;
      for (let i = 0; i < 8; i++) f64b[LITTLE ? 7 - i : i] = src[pos + i];
      pos += 8;
      return f64[0];
    default:
      return LEAVE; // float16, other simple values
  }
}

/** A map key: an ASCII text string, from the key cache when its bytes match. */
function key(): string | Leave {
  if (pos >= end) return LEAVE;
  const b = src[pos];
  let n: number;
  if (b >= 0x60 && b < 0x78) {
    n = b - 0x60;
    pos += 1;
  } else if (b === 0x78 && pos + 1 < end) {
    n = src[pos + 1];
    pos += 2;
  } else {
    return LEAVE;
  }
  keySlot = -1;
  if (n > KEY_MAX) return text(n); // not cached (and not `__proto__`)
  const at = pos;
  if (at + n > end) return LEAVE;
  let h = n;
  let bits = 0;
  for (let i = 0; i < n; i++) {
    const c = src[at + i];
    bits |= c;
    h = Math.imul(h ^ c, 0x01000193);
  }
  if (bits & 0x80) return LEAVE;
  const slot = (h ^ (h >>> 15)) & (KEY_SLOTS - 1);
  const cached = keyCache[slot];
  if (cached.length === n) {
    let i = 0;
    while (i < n && cached.charCodeAt(i) === src[at + i]) i++;
    if (i === n) {
      pos = at + n;
      keySlot = slot;
      return cached;
    }
  }
  const s = text(n) as string;
  if (s === '__proto__') return LEAVE; // cbor-x renames it; leave that to cbor-x
  keyCache[slot] = s;
  keySlot = slot;
  return s;
}

/** An ASCII text string of `n` bytes at `pos`, or `LEAVE` for any other bytes. */
function text(n: number): string | Leave {
  const at = pos;
  if (n > end - at) return LEAVE;
  if (n <= SHORT_MAX) {
    const args = charArgs[n];
    let bits = 0;
    for (let i = 0; i < n; i++) {
      const c = src[at + i];
      bits |= c;
      args[i] = c;
    }
    if (bits & 0x80) return LEAVE;
    pos = at + n;
    return String.fromCharCode.apply(null, args);
  }
  let bits = 0;
  for (let i = 0; i < n; i++) bits |= src[at + i];
  if (bits & 0x80) return LEAVE;
  pos = at + n;
  // ASCII decodes the same under any decoder; TextDecoder has a fast path for it
  return asciiText.decode(src.subarray(at, at + n));
}
