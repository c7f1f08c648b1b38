/**
 * Snapshots: point-in-time, read-only views of a store. Taking one is O(1);
 * while it is open, writers copy only what they overwrite (copy-on-write),
 * and `release()` gives that memory back.
 */
import { Bridge, Reader } from './bridge.js';
import { readKey, writeKey, type FastCodec, type Key } from './codecs.js';
import { core, SnapshotReleasedError, StateDefinitionError } from './errors.js';
import { readFrames } from './states.js';
import type { Declared, StateStore } from './store.js';

/** One entry of a state as a snapshot saw it. */
export interface SnapshotEntry<V> {
  key: Key;
  namespace?: Key;
  value: V;
}

export class Snapshot {
  readonly id: number;
  private readonly store: StateStore;
  private released = false;

  /** @internal */
  constructor(store: StateStore, id: number) {
    this.store = store;
    this.id = id;
  }

  /** @internal */
  bridge(): Bridge {
    if (this.released) throw new SnapshotReleasedError('SNAPSHOT_RELEASED', `snapshot ${this.id} was released`);
    return this.store.bridge();
  }

  valueState<T>(name: string): SnapshotValueView<T> {
    return new SnapshotValueView<T>(this, this.store.declaredState(name, 0));
  }

  /** Reducing and aggregating states read like value states (the stored value or accumulator). */
  reducingState<T>(name: string): SnapshotValueView<T> {
    return new SnapshotValueView<T>(this, this.store.declaredState(name, 3));
  }

  /** An aggregating state's result at the snapshot (its getResult of the accumulator). */
  aggregatingState<OUT>(name: string): SnapshotAggregateView<OUT> {
    return new SnapshotAggregateView<OUT>(this, this.store.declaredState(name, 4));
  }

  listState<T>(name: string): SnapshotListView<T> {
    return new SnapshotListView<T>(this, this.store.declaredState(name, 1));
  }

  mapState<K, V>(name: string): SnapshotMapView<K, V> {
    return new SnapshotMapView<K, V>(this, this.store.declaredState(name, 2));
  }

  /** Releases the snapshot and the memory only it pinned. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    // A closed store freed everything, snapshots included: nothing left to release.
    if (this.store.closed) return;
    const c = this.store.coreStore;
    core(() => c.release(this.id));
  }

  [Symbol.dispose](): void {
    this.release();
  }
}

abstract class View {
  constructor(
    protected readonly snap: Snapshot,
    protected readonly d: Declared,
  ) {}

  /** Writes key and namespace; sets b.kl, b.nl; returns the offset after them. */
  protected at(b: Bridge, key: Key, ns: Key | undefined): number {
    b.kl = writeKey(key, b, 0);
    b.nl = ns === undefined ? 0 : writeKey(ns, b, b.kl);
    return b.kl + b.nl;
  }

  /** Every entry of the state at the snapshot: key, namespace, [user key,] value. */
  protected listAll(f: (b: Bridge, r: Reader, k: number, kl: number, ns: number, nl: number) => void): void {
    const b = this.snap.bridge();
    b.check(b.core.stateList(this.d.id, this.snap.id));
    b.fresh();
    const r = new Reader(b.u8, b.res[0], b.res[0] + b.res[1]);
    while (!r.done()) {
      const k = r.field();
      const kl = r.len;
      const ns = r.field();
      f(b, r, k, kl, ns, r.len);
    }
  }
}

export class SnapshotValueView<T> extends View {
  /** The value of `key` (in namespace `ns`) at the snapshot, or the state's default. */
  get(key: Key, ns?: Key): T | undefined {
    const b = this.snap.bridge();
    this.at(b, key, ns);
    const len = b.check(b.core.get(this.d.id, b.kl, b.nl, this.snap.id));
    if (len === -1) return this.d.defaultValue === undefined ? undefined : structuredClone(this.d.defaultValue as T);
    b.fresh();
    return (this.d.codec as FastCodec<T>).read(b, b.res[0], len);
  }

  /** Every entry at the snapshot. */
  entries(): SnapshotEntry<T>[] {
    const out: SnapshotEntry<T>[] = [];
    this.listAll((b, r, k, kl, ns, nl) => {
      const v = r.field();
      const e: SnapshotEntry<T> = { key: readKey(b, k, kl), value: (this.d.codec as FastCodec<T>).read(b, v, r.len) };
      if (nl > 0) e.namespace = readKey(b, ns, nl);
      out.push(e);
    });
    return out;
  }
}

export class SnapshotAggregateView<OUT> extends View {
  private readonly values: SnapshotValueView<unknown>;

  constructor(snap: Snapshot, d: Declared) {
    super(snap, d);
    this.values = new SnapshotValueView<unknown>(snap, d);
  }

  private result(acc: unknown): OUT {
    if (!this.d.result) throw new StateDefinitionError('UNKNOWN_STATE', 'declare the aggregating state (with its function) to read results');
    return this.d.result(acc) as OUT;
  }

  /** The aggregate's result for `key` at the snapshot, or undefined. */
  get(key: Key, ns?: Key): OUT | undefined {
    const acc = this.values.get(key, ns);
    return acc === undefined ? undefined : this.result(acc);
  }

  entries(): SnapshotEntry<OUT>[] {
    return this.values.entries().map((e) => ({ ...e, value: this.result(e.value) }));
  }
}

export class SnapshotListView<T> extends View {
  get(key: Key, ns?: Key): T[] {
    const b = this.snap.bridge();
    this.at(b, key, ns);
    const len = b.check(b.core.get(this.d.id, b.kl, b.nl, this.snap.id));
    if (len === -1) return [];
    b.fresh();
    return readFrames(this.d.codec as FastCodec<T>, b, b.res[0], len);
  }

  entries(): SnapshotEntry<T[]>[] {
    const out: SnapshotEntry<T[]>[] = [];
    this.listAll((b, r, k, kl, ns, nl) => {
      const v = r.field();
      const e: SnapshotEntry<T[]> = { key: readKey(b, k, kl), value: readFrames(this.d.codec as FastCodec<T>, b, v, r.len) };
      if (nl > 0) e.namespace = readKey(b, ns, nl);
      out.push(e);
    });
    return out;
  }
}

export class SnapshotMapView<K, V> extends View {
  get(key: Key, uk: K, ns?: Key): V | undefined {
    const b = this.snap.bridge();
    const off = this.at(b, key, ns);
    const ul = (this.d.keyCodec as FastCodec<K>).write(uk, b, off);
    const len = b.check(b.core.mapGet(this.d.id, b.kl, b.nl, ul, this.snap.id));
    if (len === -1) return undefined;
    b.fresh();
    return (this.d.codec as FastCodec<V>).read(b, b.res[0], len);
  }

  contains(key: Key, uk: K, ns?: Key): boolean {
    const b = this.snap.bridge();
    const off = this.at(b, key, ns);
    const ul = (this.d.keyCodec as FastCodec<K>).write(uk, b, off);
    return b.check(b.core.mapGet(this.d.id, b.kl, b.nl, ul, this.snap.id)) >= 0;
  }

  size(key: Key, ns?: Key): number {
    const b = this.snap.bridge();
    this.at(b, key, ns);
    return b.check(b.core.mapLen(this.d.id, b.kl, b.nl, this.snap.id));
  }

  /** The map of `key` at the snapshot. */
  entries(key: Key, ns?: Key): [K, V][] {
    const b = this.snap.bridge();
    this.at(b, key, ns);
    b.check(b.core.mapList(this.d.id, b.kl, b.nl, this.snap.id));
    b.fresh();
    const r = new Reader(b.u8, b.res[0], b.res[0] + b.res[1]);
    const out: [K, V][] = [];
    while (!r.done()) {
      const k = r.field();
      const kl = r.len;
      const v = r.field();
      out.push([(this.d.keyCodec as FastCodec<K>).read(b, k, kl), (this.d.codec as FastCodec<V>).read(b, v, r.len)]);
    }
    return out;
  }

  keys(key: Key, ns?: Key): K[] {
    return this.entries(key, ns).map((e) => e[0]);
  }

  values(key: Key, ns?: Key): V[] {
    return this.entries(key, ns).map((e) => e[1]);
  }
}
