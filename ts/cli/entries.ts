/**
 * Entries of a store as plain data for `dump` and `diff`: raw bytes from the
 * core's listing of each state (as snapshot views read them), decoded with
 * the built-in codec the checkpoint names where there is one (bytes as
 * base64 otherwise), and turned into JSON values.
 */
import { Reader, viewOf } from '../bridge.js';
import { builtinCodec, readKey } from '../codecs.js';
import { readFrames } from '../states.js';
import type { StateStore } from '../store.js';

/** A state of a store, as the core lists it. */
export interface StateInfo {
  id: number;
  name: string;
  kind: 'value' | 'list' | 'map' | 'reducing' | 'aggregating';
  valueCodec: string;
  userKeyCodec: string;
}

const KINDS = ['value', 'list', 'map', 'reducing', 'aggregating'] as const;

/** One entry's raw bytes (`uk` only for map state). */
export interface RawEntry {
  key: Uint8Array;
  ns: Uint8Array;
  uk?: Uint8Array;
  value: Uint8Array;
}

export function statesOf(store: StateStore): StateInfo[] {
  return store.coreStore.states().map((s, id) => ({ id, name: s.name, kind: KINDS[s.kind], valueCodec: s.valueCodec, userKeyCodec: s.userKeyCodec }));
}

/** Every entry of state `id`, from a snapshot of this moment. */
export function rawEntries(store: StateStore, state: StateInfo): RawEntry[] {
  const snap = store.snapshot();
  try {
    const b = store.bridge();
    b.check(b.core.stateList(state.id, snap.id));
    b.fresh();
    const r = new Reader(b.u8, b.res[0], b.res[0] + b.res[1]);
    const copy = () => {
      const at = r.field();
      return b.u8.slice(at, at + r.len);
    };
    const out: RawEntry[] = [];
    while (!r.done()) {
      const key = copy();
      const ns = copy();
      const uk = state.kind === 'map' ? copy() : undefined;
      out.push({ key, ns, uk, value: copy() });
    }
    return out;
  } finally {
    snap.release();
  }
}

const base64 = (b: Uint8Array) => ({ $base64: Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64') });

/** A decoded value as JSON: what JSON has as is; the rest tagged (`$bigint`, `$base64`, `$map`, ...). */
export function toJson(v: unknown): unknown {
  if (v === undefined) return { $undefined: true };
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? (Object.is(v, -0) ? { $number: '-0' } : v) : { $number: String(v) };
  if (typeof v === 'bigint') return { $bigint: v.toString() };
  if (v instanceof Uint8Array) return base64(v);
  if (ArrayBuffer.isView(v)) return base64(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  if (v instanceof Date) return { $date: v.toISOString() };
  if (v instanceof Map) return { $map: [...v].map(([k, x]) => [toJson(k), toJson(x)]) };
  if (v instanceof Set) return { $set: [...v].map(toJson) };
  if (Array.isArray(v)) return v.map(toJson);
  if (typeof v === 'object') return Object.fromEntries(Object.entries(v as object).map(([k, x]) => [k, toJson(x)]));
  return String(v);
}

/** A key (typed: string, number, bigint, bytes) as JSON. */
export function keyJson(bytes: Uint8Array): unknown {
  return toJson(readKey(viewOf(bytes), 0, bytes.length));
}

/** A value of `state` as JSON: decoded by its built-in codec, else its bytes as base64. */
export function valueJson(state: StateInfo, bytes: Uint8Array): unknown {
  const codec = builtinCodec(state.valueCodec);
  if (!codec) return base64(bytes);
  try {
    const view = viewOf(bytes);
    return toJson(state.kind === 'list' ? readFrames(codec, view, 0, bytes.length) : codec.read(view, 0, bytes.length));
  } catch {
    // Bytes the codec does not take (the core never decodes values): show them as they are.
    return base64(bytes);
  }
}

/** A map user key of `state` as JSON. */
export function userKeyJson(state: StateInfo, bytes: Uint8Array): unknown {
  const codec = builtinCodec(state.userKeyCodec);
  return codec ? toJson(codec.read(viewOf(bytes), 0, bytes.length)) : base64(bytes);
}

/** How `--key` text matches a key: as a string key, or a number key of that value. */
export function keyMatches(bytes: Uint8Array, text: string): boolean {
  const k = readKey(viewOf(bytes), 0, bytes.length);
  return typeof k === 'string' ? k === text : typeof k === 'number' || typeof k === 'bigint' ? String(k) === text : false;
}
