/**
 * State handles: Flink's keyed state kinds over the core. A handle addresses
 * the current key (set by `store.setCurrentKey`) unless it was bound to one
 * with `forKey`; `withNamespace` binds a namespace (Flink's windows).
 */
import { Bridge, CURRENT, FOR_UPDATE, NO_VALUE, Reader, varintLen, viewOf, writeVarint, type ReadView } from './bridge.js';
import { writeKey, type FastCodec, type Key } from './codecs.js';
import { InvalidArgumentError } from './errors.js';

/** The part of a store a state handle uses. */
export interface StoreContext {
  bridge(): Bridge;
  /** Hands the core the store clock's time (states with TTL, before each call). */
  tick(): void;
}

/** Where a handle points: a fixed key (encoded) or the current key, and a namespace. */
interface Address {
  key: Uint8Array | null;
  ns: Uint8Array | null;
  /** The state has a time to live: each call first hands the core the store's time. */
  ttl: boolean;
}

export interface StateDescription {
  readonly name: string;
  readonly id: number;
}

/** Encodes a key or namespace once, for handles bound to it. */
export function encodeKey(ctx: StoreContext, k: Key): Uint8Array {
  const b = ctx.bridge();
  return b.scratchCopy(0, writeKey(k, b, 0));
}

abstract class StateBase implements StateDescription {
  protected readonly ctx: StoreContext;
  readonly name: string;
  readonly id: number;
  protected readonly addr: Address;

  constructor(ctx: StoreContext, name: string, id: number, addr: Address) {
    this.ctx = ctx;
    this.name = name;
    this.id = id;
    this.addr = addr;
  }

  /**
   * Writes the key (explicit, bound, or the current one) and namespace into
   * scratch; sets `b.kl` and `b.nl`; returns the offset after them.
   */
  protected at(b: Bridge, key?: Key): number {
    if (this.addr.ttl) this.ctx.tick();
    let off: number;
    if (key !== undefined) {
      off = writeKey(key, b, 0);
      b.kl = off;
    } else if (this.addr.key !== null) {
      off = b.put(this.addr.key, 0);
      b.kl = off;
    } else {
      off = 0;
      b.kl = CURRENT;
    }
    const ns = this.addr.ns;
    b.nl = ns === null ? 0 : b.put(ns, off);
    return off + b.nl;
  }
}

// ---- value-like ----------------------------------------------------------------

/** Refuses `undefined` where a key must be given: internally it selects the current key. */
function explicit(key: Key): Key {
  if (key === undefined) throw new InvalidArgumentError('INVALID_KEY', 'a key is needed here, not undefined');
  return key;
}

abstract class SingleValue<T> extends StateBase {
  protected readonly codec: FastCodec<T>;

  constructor(ctx: StoreContext, name: string, id: number, addr: Address, codec: FastCodec<T>) {
    super(ctx, name, id, addr);
    this.codec = codec;
  }

  protected read(key?: Key): T | undefined {
    const b = this.ctx.bridge();
    this.at(b, key);
    const len = b.core.get(this.id, b.kl, b.nl, 0);
    if (len < 0) {
      if (len === -1) return undefined;
      throw b.error();
    }
    b.fresh();
    return this.codec.read(b, b.res[0], len);
  }

  /**
   * The value an `add` folds into: with TTL, an expired value is absent
   * whatever the visibility, and the read renews nothing (the core's
   * `FOR_UPDATE` read).
   */
  protected readForUpdate(): T | undefined {
    if (!this.addr.ttl) return this.read();
    const b = this.ctx.bridge();
    this.at(b);
    const len = b.core.get(this.id, b.kl, b.nl, FOR_UPDATE);
    if (len < 0) {
      if (len === -1) return undefined;
      throw b.error();
    }
    b.fresh();
    return this.codec.read(b, b.res[0], len);
  }

  protected write(v: T, key?: Key): void {
    const b = this.ctx.bridge();
    const off = this.at(b, key);
    const vl = this.codec.write(v, b, off);
    b.check(b.core.put(this.id, b.kl, b.nl, vl));
  }

  protected erase(key?: Key): boolean {
    const b = this.ctx.bridge();
    this.at(b, key);
    return b.check(b.core.remove(this.id, b.kl, b.nl)) === 1;
  }

  /** Removes the value of the current (or bound) key. */
  clear(): void {
    this.erase();
  }
}

/** Options of a value state. */
export interface ValueStateOptions<T> {
  /** Returned (as a fresh copy) by `value()` and `get()` when there is no value. */
  default?: T;
}

/** Flink's ValueState: one value per key (and namespace). */
export class ValueState<T> extends SingleValue<T> {
  private readonly defaultView: ReadView | null;
  private readonly defaultValue: T | undefined;

  /** @internal */
  constructor(ctx: StoreContext, name: string, id: number, addr: Address, codec: FastCodec<T>, dflt: T | undefined, defaultBytes: Uint8Array | null) {
    super(ctx, name, id, addr, codec);
    this.defaultValue = dflt;
    this.defaultView = defaultBytes === null ? null : viewOf(defaultBytes);
  }

  private fallback(): T | undefined {
    if (this.defaultView === null) return this.defaultValue;
    // Objects: a fresh copy each time, decoded like any stored value.
    return this.codec.read(this.defaultView, 0, this.defaultView.u8.length);
  }

  /** The value of the current key, or the default. */
  value(): T | undefined {
    const v = this.read();
    return v === undefined ? this.fallback() : v;
  }

  /** Sets the value of the current key; `null` or `undefined` clears it. */
  update(v: T | null | undefined): void {
    if (v === null || v === undefined) this.erase();
    else this.write(v);
  }

  /** The value of `key`, or the default. */
  get(key: Key): T | undefined {
    const v = this.read(explicit(key));
    return v === undefined ? this.fallback() : v;
  }

  /** Sets the value of `key`; `null` or `undefined` deletes it. */
  set(key: Key, v: T | null | undefined): void {
    explicit(key);
    if (v === null || v === undefined) this.erase(key);
    else this.write(v, key);
  }

  /** Removes the value of `key`; returns whether there was one. */
  delete(key: Key): boolean {
    return this.erase(explicit(key));
  }

  /**
   * Sets many keys in one call into the core (faster than `set` in a loop);
   * a `null` or `undefined` value deletes its key. Applied in order, and all
   * or nothing: if any key or value is refused, nothing is written. Returns
   * the number of entries applied.
   */
  setMany(entries: Iterable<readonly [Key, T | null | undefined]>): number {
    const b = this.ctx.bridge();
    if (this.addr.ttl) this.ctx.tick();
    const nl = this.addr.ns === null ? 0 : b.put(this.addr.ns, 0);
    let off = nl;
    try {
      for (const [key, v] of entries) {
        const kl = writeKey(explicit(key), b, off + 4);
        b.setU32(off, kl);
        off += 4 + kl;
        if (v === null || v === undefined) {
          b.setU32(off, NO_VALUE);
          off += 4;
        } else {
          const vl = this.codec.write(v, b, off + 4);
          b.setU32(off, vl);
          off += 4 + vl;
        }
      }
      return b.check(b.core.writeMany(this.id, nl, off));
    } finally {
      b.trim();
    }
  }

  /** The values of many keys (the default where absent), read in one call into the core. */
  getMany(keys: Iterable<Key>): (T | undefined)[] {
    const b = this.ctx.bridge();
    if (this.addr.ttl) this.ctx.tick();
    const nl = this.addr.ns === null ? 0 : b.put(this.addr.ns, 0);
    let off = nl;
    try {
      for (const key of keys) {
        const kl = writeKey(explicit(key), b, off + 4);
        b.setU32(off, kl);
        off += 4 + kl;
      }
      const n = b.check(b.core.readMany(this.id, nl, off, 0));
      b.fresh();
      const out = new Array<T | undefined>(n);
      // Per key in order: u32 length (NO_VALUE: absent), then the value's bytes.
      let at = b.res[0];
      for (let i = 0; i < n; i++) {
        const len = b.dv.getUint32(at, true);
        at += 4;
        if (len === NO_VALUE) {
          out[i] = this.fallback();
        } else {
          out[i] = this.codec.read(b, at, len);
          at += len;
        }
      }
      return out;
    } finally {
      b.trim();
    }
  }

  /** True when `key` has a value. */
  has(key: Key): boolean {
    return this.read(explicit(key)) !== undefined;
  }

  /** This state bound to `key` instead of the current key. */
  forKey(key: Key): ValueState<T> {
    return new ValueState(this.ctx, this.name, this.id, { ...this.addr, key: encodeKey(this.ctx, key) }, this.codec, this.defaultValue, this.defaultView && this.defaultView.u8);
  }

  /** This state in namespace `ns`. */
  withNamespace(ns: Key): ValueState<T> {
    return new ValueState(this.ctx, this.name, this.id, { ...this.addr, ns: encodeKey(this.ctx, ns) }, this.codec, this.defaultValue, this.defaultView && this.defaultView.u8);
  }
}

/** Options of a reducing state. */
export interface ReducingStateOptions<T> {
  reduce: (a: T, b: T) => T;
}

/** Flink's ReducingState: `add` folds values into one with `reduce`. */
export class ReducingState<T> extends SingleValue<T> {
  private readonly reduce: (a: T, b: T) => T;

  /** @internal */
  constructor(ctx: StoreContext, name: string, id: number, addr: Address, codec: FastCodec<T>, reduce: (a: T, b: T) => T) {
    super(ctx, name, id, addr, codec);
    if (typeof reduce !== 'function') throw new InvalidArgumentError('INVALID_ARGUMENT', 'reducingState needs a reduce function');
    this.reduce = reduce;
  }

  /** The reduced value, or undefined. */
  get(): T | undefined {
    return this.read();
  }

  /** Folds `v` into the value. */
  add(v: T): void {
    if (v === null || v === undefined) throw new InvalidArgumentError('NULL_ELEMENT', `cannot add ${v} to reducing state '${this.name}'`);
    const cur = this.readForUpdate();
    this.write(cur === undefined ? v : this.reduce(cur, v));
  }

  forKey(key: Key): ReducingState<T> {
    return new ReducingState(this.ctx, this.name, this.id, { ...this.addr, key: encodeKey(this.ctx, key) }, this.codec, this.reduce);
  }

  withNamespace(ns: Key): ReducingState<T> {
    return new ReducingState(this.ctx, this.name, this.id, { ...this.addr, ns: encodeKey(this.ctx, ns) }, this.codec, this.reduce);
  }
}

/** Flink's AggregateFunction. */
export interface AggregateFunction<IN, ACC, OUT> {
  createAccumulator(): ACC;
  add(value: IN, accumulator: ACC): ACC;
  getResult(accumulator: ACC): OUT;
}

/** Flink's AggregatingState: `add` folds inputs into an accumulator; `get` gives the result. */
export class AggregatingState<IN, ACC, OUT> extends SingleValue<ACC> {
  private readonly fn: AggregateFunction<IN, ACC, OUT>;

  /** @internal */
  constructor(ctx: StoreContext, name: string, id: number, addr: Address, codec: FastCodec<ACC>, fn: AggregateFunction<IN, ACC, OUT>) {
    super(ctx, name, id, addr, codec);
    for (const m of ['createAccumulator', 'add', 'getResult'] as const) {
      if (typeof fn?.[m] !== 'function') throw new InvalidArgumentError('INVALID_ARGUMENT', `aggregatingState needs ${m}`);
    }
    this.fn = fn;
  }

  /** The aggregate's result, or undefined when nothing was added. */
  get(): OUT | undefined {
    const acc = this.read();
    return acc === undefined ? undefined : this.fn.getResult(acc);
  }

  /** Adds an input to the accumulator. */
  add(v: IN): void {
    if (v === null || v === undefined) throw new InvalidArgumentError('NULL_ELEMENT', `cannot add ${v} to aggregating state '${this.name}'`);
    const acc = this.readForUpdate() ?? this.fn.createAccumulator();
    this.write(this.fn.add(v, acc));
  }

  forKey(key: Key): AggregatingState<IN, ACC, OUT> {
    return new AggregatingState(this.ctx, this.name, this.id, { ...this.addr, key: encodeKey(this.ctx, key) }, this.codec, this.fn);
  }

  withNamespace(ns: Key): AggregatingState<IN, ACC, OUT> {
    return new AggregatingState(this.ctx, this.name, this.id, { ...this.addr, ns: encodeKey(this.ctx, ns) }, this.codec, this.fn);
  }
}

// ---- list --------------------------------------------------------------------

/**
 * Writes one list element as a frame (varint length, bytes) at `off`.
 * The element is written after a one-byte length and moved when its length
 * needs more bytes, which is rare.
 */
function writeFrame<T>(codec: FastCodec<T>, v: T, b: Bridge, off: number): number {
  const n = codec.write(v, b, off + 1);
  const ln = varintLen(n);
  if (ln > 1) {
    b.ensure(off + ln + n);
    b.w8.copyWithin(b.scratch + off + ln, b.scratch + off + 1, b.scratch + off + 1 + n);
  }
  writeVarint(b.w8, b.scratch + off, n);
  return ln + n;
}

/** Decodes list frames at offset `ptr` of the view. */
export function readFrames<T>(codec: FastCodec<T>, b: ReadView, ptr: number, len: number): T[] {
  const out: T[] = [];
  const r = new Reader(b.u8, ptr, ptr + len);
  while (!r.done()) {
    const at = r.field();
    out.push(codec.read(b, at, r.len));
  }
  return out;
}

function checkElement(name: string, v: unknown, i?: number): void {
  if (v === null || v === undefined) {
    const where = i === undefined ? '' : ` at index ${i}`;
    throw new InvalidArgumentError('NULL_ELEMENT', `list state '${name}' does not take ${v} elements${where}`);
  }
}

/** Flink's ListState. Absent lists read as `[]`. */
export class ListState<T> extends StateBase {
  private readonly codec: FastCodec<T>;

  /** @internal */
  constructor(ctx: StoreContext, name: string, id: number, addr: Address, codec: FastCodec<T>) {
    super(ctx, name, id, addr);
    this.codec = codec;
  }

  /** The elements ([] when there are none). */
  get(): T[] {
    const b = this.ctx.bridge();
    this.at(b);
    const len = b.core.get(this.id, b.kl, b.nl, 0);
    if (len < 0) {
      if (len === -1) return [];
      throw b.error();
    }
    b.fresh();
    return readFrames(this.codec, b, b.res[0], len);
  }

  /** Appends one element (amortized O(1) in the core). */
  add(v: T): void {
    checkElement(this.name, v);
    const b = this.ctx.bridge();
    const off = this.at(b);
    const vl = writeFrame(this.codec, v, b, off);
    b.check(b.core.append(this.id, b.kl, b.nl, vl));
  }

  /** Appends elements; refuses the whole call if any is null. `[]` does nothing. */
  addAll(vs: Iterable<T>): void {
    const list = this.elements(vs, 'addAll');
    if (list.length === 0) return;
    const b = this.ctx.bridge();
    const off = this.at(b);
    let vl = 0;
    for (const v of list) vl += writeFrame(this.codec, v, b, off + vl);
    b.check(b.core.append(this.id, b.kl, b.nl, vl));
  }

  /** Replaces the list; `[]` clears it. */
  update(vs: Iterable<T>): void {
    const list = this.elements(vs, 'update');
    const b = this.ctx.bridge();
    const off = this.at(b);
    if (list.length === 0) {
      b.check(b.core.remove(this.id, b.kl, b.nl));
      return;
    }
    let vl = 0;
    for (const v of list) vl += writeFrame(this.codec, v, b, off + vl);
    b.check(b.core.put(this.id, b.kl, b.nl, vl));
  }

  private elements(vs: Iterable<T>, op: string): T[] {
    if (vs === null || vs === undefined || typeof (vs as Iterable<T>)[Symbol.iterator] !== 'function') {
      throw new InvalidArgumentError('NULL_ELEMENT', `list state '${this.name}'.${op} needs an iterable, not ${vs}`);
    }
    const list = Array.isArray(vs) ? vs : [...vs];
    list.forEach((v, i) => checkElement(this.name, v, i));
    return list;
  }

  clear(): void {
    const b = this.ctx.bridge();
    this.at(b);
    b.check(b.core.remove(this.id, b.kl, b.nl));
  }

  forKey(key: Key): ListState<T> {
    return new ListState(this.ctx, this.name, this.id, { ...this.addr, key: encodeKey(this.ctx, key) }, this.codec);
  }

  withNamespace(ns: Key): ListState<T> {
    return new ListState(this.ctx, this.name, this.id, { ...this.addr, ns: encodeKey(this.ctx, ns) }, this.codec);
  }
}

// ---- map ---------------------------------------------------------------------

/** Flink's MapState: a map per key. Iteration order is unspecified. */
export class MapState<K, V> extends StateBase {
  private readonly kc: FastCodec<K>;
  private readonly vc: FastCodec<V>;

  /** @internal */
  constructor(ctx: StoreContext, name: string, id: number, addr: Address, kc: FastCodec<K>, vc: FastCodec<V>) {
    super(ctx, name, id, addr);
    this.kc = kc;
    this.vc = vc;
  }

  private userKey(b: Bridge, uk: K, off: number): number {
    if (uk === null || uk === undefined) throw new InvalidArgumentError('INVALID_KEY', `map state '${this.name}' does not take ${uk} keys`);
    try {
      return this.kc.write(uk, b, off);
    } catch (e) {
      // A user key the key codec refuses is a bad key, whatever codec it is.
      if (e instanceof InvalidArgumentError && e.code === 'INVALID_VALUE') {
        throw new InvalidArgumentError('INVALID_KEY', `map state '${this.name}': ${e.message}`);
      }
      throw e;
    }
  }

  get(uk: K): V | undefined {
    const b = this.ctx.bridge();
    const off = this.at(b);
    const ul = this.userKey(b, uk, off);
    const len = b.core.mapGet(this.id, b.kl, b.nl, ul, 0);
    if (len < 0) {
      if (len === -1) return undefined;
      throw b.error();
    }
    b.fresh();
    return this.vc.read(b, b.res[0], len);
  }

  put(uk: K, v: V): void {
    const b = this.ctx.bridge();
    const off = this.at(b);
    const ul = this.userKey(b, uk, off);
    const vl = this.vc.write(v, b, off + ul);
    b.check(b.core.mapPut(this.id, b.kl, b.nl, ul, vl));
  }

  /** Puts every entry of a Map, an iterable of pairs, or a plain object. */
  putAll(entries: Map<K, V> | Iterable<readonly [K, V]> | Record<string, V>): void {
    const it = entries instanceof Map || Symbol.iterator in Object(entries) ? (entries as Iterable<readonly [K, V]>) : (Object.entries(entries) as unknown as Iterable<readonly [K, V]>);
    for (const [k, v] of it) this.put(k, v);
  }

  /** Removes one entry; returns whether it existed. */
  remove(uk: K): boolean {
    const b = this.ctx.bridge();
    const off = this.at(b);
    const ul = this.userKey(b, uk, off);
    return b.check(b.core.mapRemove(this.id, b.kl, b.nl, ul)) === 1;
  }

  contains(uk: K): boolean {
    const b = this.ctx.bridge();
    const off = this.at(b);
    const ul = this.userKey(b, uk, off);
    return b.check(b.core.mapGet(this.id, b.kl, b.nl, ul, 0)) >= 0;
  }

  /** Number of entries. */
  size(): number {
    const b = this.ctx.bridge();
    this.at(b);
    return b.check(b.core.mapLen(this.id, b.kl, b.nl, 0));
  }

  isEmpty(): boolean {
    return this.size() === 0;
  }

  /** Entries, as an array of pairs (read at once: safe to modify while iterating). */
  entries(): [K, V][] {
    const out: [K, V][] = [];
    this.list((b, k, kl, v, vl) => out.push([this.kc.read(b, k, kl), this.vc.read(b, v, vl)]));
    return out;
  }

  keys(): K[] {
    const out: K[] = [];
    this.list((b, k, kl) => out.push(this.kc.read(b, k, kl)));
    return out;
  }

  values(): V[] {
    const out: V[] = [];
    this.list((b, _k, _kl, v, vl) => out.push(this.vc.read(b, v, vl)));
    return out;
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries()[Symbol.iterator]();
  }

  private list(f: (b: Bridge, k: number, kl: number, v: number, vl: number) => void): void {
    const b = this.ctx.bridge();
    this.at(b);
    b.check(b.core.mapList(this.id, b.kl, b.nl, 0));
    b.fresh();
    const r = new Reader(b.u8, b.res[0], b.res[0] + b.res[1]);
    while (!r.done()) {
      const k = r.field();
      const kl = r.len;
      const v = r.field();
      f(b, k, kl, v, r.len);
    }
  }

  /** Removes the whole map of the current (or bound) key. */
  clear(): void {
    const b = this.ctx.bridge();
    this.at(b);
    b.check(b.core.remove(this.id, b.kl, b.nl));
  }

  forKey(key: Key): MapState<K, V> {
    return new MapState(this.ctx, this.name, this.id, { ...this.addr, key: encodeKey(this.ctx, key) }, this.kc, this.vc);
  }

  withNamespace(ns: Key): MapState<K, V> {
    return new MapState(this.ctx, this.name, this.id, { ...this.addr, ns: encodeKey(this.ctx, ns) }, this.kc, this.vc);
  }
}
