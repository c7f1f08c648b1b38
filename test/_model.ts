/**
 * A reference model of a store holding every state kind, driven by seeded
 * random operations, and exact comparison of a store or snapshot against it.
 */
import * as assert from 'uvu/assert';
import type { AggregatingState, Key, ListState, MapState, ReducingState, Snapshot, StateStore, ValueState } from './_backend.js';
import { keyText, sortedBy } from './_util.js';

type Ns = Key | undefined;
type Acc = [number, number];

export interface Handles {
  v: ValueState<number>;
  s: ValueState<string>;
  l: ListState<string>;
  m: MapState<Key, number>;
  r: ReducingState<number>;
  a: AggregatingState<number, Acc, number>;
}

/** Declares the model's states on `store` (same names and codecs every time). */
export function declare(store: StateStore): Handles {
  return {
    v: store.valueState<number>('v', { codec: 'number' }),
    s: store.valueState<string>('s', { codec: 'string' }),
    l: store.listState<string>('l', { codec: 'string' }),
    m: store.mapState<Key, number>('m', { valueCodec: 'number' }),
    r: store.reducingState<number>('r', { reduce: (a, b) => a + b, codec: 'number' }),
    a: store.aggregatingState<number, Acc, number>('a', {
      createAccumulator: () => [0, 0],
      add: (v, [s, c]) => [s + v, c + 1],
      getResult: ([s, c]) => s / c,
      codec: 'cbor',
    }),
  };
}

interface Cell<T> {
  key: Key;
  ns: Ns;
  val: T;
}

/** A cell's address in the model: typed key and namespace. */
export const addr = (key: Key, ns?: Ns) => `${keyText(key)}#${ns === undefined ? '-' : keyText(ns)}`;

/** What the store should hold. */
export class Model {
  v = new Map<string, Cell<number>>();
  s = new Map<string, Cell<string>>();
  l = new Map<string, Cell<string[]>>();
  m = new Map<string, Cell<Map<string, [Key, number]>>>();
  r = new Map<string, Cell<number>>();
  a = new Map<string, Cell<Acc>>();
  /** Every (key, ns) a map was ever written at, to check that cleared maps stay empty. */
  mTouched = new Map<string, { key: Key; ns: Ns }>();

  clone(): Model {
    const c = new Model();
    for (const f of ['v', 's', 'l', 'm', 'r', 'a', 'mTouched'] as const) (c as unknown as Record<string, unknown>)[f] = structuredClone(this[f]);
    return c;
  }
}

function at<H extends { forKey(k: Key): H; withNamespace(n: Key): H }>(h: H, key: Key, ns: Ns): H {
  const b = h.forKey(key);
  return ns === undefined ? b : b.withNamespace(ns);
}

/** Key i of the scenario: numbers, strings and a few bigints and byte keys. */
export function keyOf(i: number): Key {
  switch (i % 4) {
    case 0:
      return i;
    case 1:
      return `k${i}`;
    case 2:
      return i % 8 === 2 ? BigInt(i) * 1_000_000_007n : `user-${i}`;
    default:
      return i % 8 === 3 ? Uint8Array.of(i & 0xff, (i >> 8) & 0xff, 7) : -i;
  }
}

const namespaces: Ns[] = [undefined, undefined, 'w1', 2];

/**
 * Applies `n` random operations over keys 0..keys-1 to the store (through
 * `h`) and to the model.
 */
export function randomOps(h: Handles, model: Model, r: () => number, n: number, keys: number): void {
  for (let i = 0; i < n; i++) {
    const key = keyOf(Math.floor(r() * keys));
    const ns = namespaces[Math.floor(r() * namespaces.length)];
    const a = addr(key, ns);
    const x = Math.floor(r() * 1000) - 300;
    const op = r();
    switch (Math.floor(r() * 6)) {
      case 0:
        if (op < 0.8) {
          at(h.v, key, ns).update(x);
          model.v.set(a, { key, ns, val: x });
        } else {
          at(h.v, key, ns).clear();
          model.v.delete(a);
        }
        break;
      case 1:
        if (op < 0.8) {
          const s = `value ${x} `.repeat(1 + (Math.abs(x) % 4));
          at(h.s, key, ns).update(s);
          model.s.set(a, { key, ns, val: s });
        } else {
          at(h.s, key, ns).update(null);
          model.s.delete(a);
        }
        break;
      case 2: {
        const cur = model.l.get(a)?.val ?? [];
        if (op < 0.5) {
          at(h.l, key, ns).add(`e${x}`);
          model.l.set(a, { key, ns, val: [...cur, `e${x}`] });
        } else if (op < 0.7) {
          const more = [`f${x}`, `g${x}`];
          at(h.l, key, ns).addAll(more);
          model.l.set(a, { key, ns, val: [...cur, ...more] });
        } else if (op < 0.85) {
          at(h.l, key, ns).update([`u${x}`]);
          model.l.set(a, { key, ns, val: [`u${x}`] });
        } else {
          at(h.l, key, ns).clear();
          model.l.delete(a);
        }
        break;
      }
      case 3: {
        const uk: Key = x % 2 === 0 ? Math.abs(x) % 20 : `u${Math.abs(x) % 20}`;
        const cell = model.m.get(a) ?? { key, ns, val: new Map<string, [Key, number]>() };
        model.mTouched.set(a, { key, ns });
        if (op < 0.7) {
          at(h.m, key, ns).put(uk, x);
          cell.val.set(keyText(uk), [uk, x]);
          model.m.set(a, cell);
        } else if (op < 0.9) {
          at(h.m, key, ns).remove(uk);
          cell.val.delete(keyText(uk));
          if (cell.val.size === 0) model.m.delete(a);
        } else {
          at(h.m, key, ns).clear();
          model.m.delete(a);
        }
        break;
      }
      case 4:
        if (op < 0.85) {
          at(h.r, key, ns).add(x);
          model.r.set(a, { key, ns, val: (model.r.get(a)?.val ?? 0) + x });
        } else {
          at(h.r, key, ns).clear();
          model.r.delete(a);
        }
        break;
      default:
        if (op < 0.85) {
          at(h.a, key, ns).add(x);
          const [s, c] = model.a.get(a)?.val ?? [0, 0];
          model.a.set(a, { key, ns, val: [s + x, c + 1] });
        } else {
          at(h.a, key, ns).clear();
          model.a.delete(a);
        }
    }
  }
}

/** Sorted [address, value] rows of snapshot entries. */
function rows<T>(entries: { key: Key; namespace?: Key; value: T }[]): [string, T][] {
  return sortedBy(entries.map((e): [string, T] => [addr(e.key, e.namespace), e.value]), ([a]) => a);
}

/** Sorted [address, value] rows of model cells. */
function cells<T>(cs: Iterable<Cell<T>>): [string, T][] {
  return sortedBy([...cs].map((c): [string, T] => [addr(c.key, c.ns), c.val]), ([a]) => a);
}

/** Asserts that `snap` holds exactly the model (`store` is the snapshot's store, with the states declared). */
export function assertSnapshot(snap: Snapshot, model: Model, what: string): void {
  assert.equal(rows(snap.valueState<number>('v').entries()), cells(model.v.values()), `${what}: value state v`);
  assert.equal(rows(snap.valueState<string>('s').entries()), cells(model.s.values()), `${what}: value state s`);
  assert.equal(rows(snap.listState<string>('l').entries()), cells(model.l.values()), `${what}: list state l`);
  assert.equal(rows(snap.reducingState<number>('r').entries()), cells(model.r.values()), `${what}: reducing state r`);
  assert.equal(rows(snap.reducingState<Acc>('a').entries()), cells(model.a.values()), `${what}: aggregating state a`);
  const mv = snap.mapState<Key, number>('m');
  for (const [a, { key, ns }] of model.mTouched) {
    const expected = sortedBy([...(model.m.get(a)?.val.values() ?? [])], ([k]) => keyText(k));
    const got = sortedBy(mv.entries(key, ns), ([k]) => keyText(k));
    assert.equal(got, expected, `${what}: map state m at ${a}`);
  }
}

/** Asserts that `store` holds exactly the model, through a fresh snapshot and through live handles. */
export function assertStore(store: StateStore, model: Model, what: string): void {
  const h = declare(store);
  const snap = store.snapshot();
  try {
    assertSnapshot(snap, model, what);
  } finally {
    snap.release();
  }
  // Live reads agree (a sample of each kind, all of it for small models).
  let n = 0;
  for (const c of model.v.values()) if (n++ < 300) assert.is(at(h.v, c.key, c.ns).value(), c.val, `${what}: live v`);
  for (const c of model.l.values()) if (n++ < 600) assert.equal(at(h.l, c.key, c.ns).get(), c.val, `${what}: live l`);
  for (const c of model.a.values()) if (n++ < 900) assert.is(at(h.a, c.key, c.ns).get(), c.val[0] / c.val[1], `${what}: live a`);
  for (const [a, { key, ns }] of model.mTouched) {
    if (n++ > 1200) break;
    assert.is(at(h.m, key, ns).size(), model.m.get(a)?.val.size ?? 0, `${what}: live map size at ${a}`);
  }
}
