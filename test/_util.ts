/**
 * Helpers shared by the suites. Environment-neutral (no Node APIs): the
 * browser backend runs the same suites.
 */
import * as assert from 'uvu/assert';
import { KeystateError, StateStore, type Checkpoint, type Key } from './_backend.js';

type ErrorClass = abstract new (...args: never[]) => Error;

function checkError(e: unknown, Class: ErrorClass, code: string | readonly string[], what: string): KeystateError {
  if (!(e instanceof Class)) {
    const got = e instanceof Error ? `${e.constructor.name} ${(e as { code?: string }).code ?? ''}: ${e.message}` : String(e);
    assert.unreachable(`${what}: expected ${Class.name}, got ${got}`);
  }
  assert.instance(e, KeystateError, `${what}: a KeystateError`);
  const err = e as KeystateError;
  assert.type(err.code, 'string', `${what}: code is a string`);
  const codes = typeof code === 'string' ? [code] : code;
  assert.ok(codes.includes(err.code), `${what}: code ${err.code}, expected ${codes.join(' or ')} (${err.message})`);
  assert.ok(err.message.length > 0, `${what}: has a message`);
  return err;
}

/** Asserts `f()` throws a `Class` with one of `code`; returns the error. */
export function throwsKs(f: () => unknown, Class: ErrorClass, code: string | readonly string[], what = 'call'): KeystateError {
  try {
    f();
  } catch (e) {
    return checkError(e, Class, code, what);
  }
  assert.unreachable(`${what}: expected ${Class.name} ${code}, nothing was thrown`);
  throw new Error('unreachable');
}

/** Asserts the promise `f()` rejects with a `Class` with one of `code`; returns the error. */
export async function rejectsKs(f: () => Promise<unknown>, Class: ErrorClass, code: string | readonly string[], what = 'call'): Promise<KeystateError> {
  let p: Promise<unknown>;
  try {
    p = f();
  } catch (e) {
    // A synchronous throw from an async API is a bug of its own.
    assert.unreachable(`${what}: threw synchronously instead of rejecting: ${e}`);
    throw e;
  }
  try {
    await p;
  } catch (e) {
    return checkError(e, Class, code, what);
  }
  assert.unreachable(`${what}: expected ${Class.name} ${code}, the promise resolved`);
  throw new Error('unreachable');
}

/** Concatenates byte chunks. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Streams a new checkpoint of `store` to bytes and confirms it. */
export async function checkpointBytes(store: StateStore, chunkSize?: number): Promise<Uint8Array> {
  const cp: Checkpoint = store.checkpoint();
  const bytes = await cp.bytes(chunkSize === undefined ? {} : { chunkSize });
  cp.confirm();
  return bytes;
}

/** A full checkpoint of `store`, restored into a new store. */
export async function roundTrip(store: StateStore): Promise<StateStore> {
  return StateStore.restore([await checkpointBytes(store)]);
}

/** A text form of a key that keeps its type (for sorting and set comparison). */
export function keyText(k: Key): string {
  if (typeof k === 'string') return `s:${k}`;
  if (typeof k === 'number') return `n:${Object.is(k, -0) ? '0' : String(k)}`;
  if (typeof k === 'bigint') return `b:${k}`;
  return `u:${Array.from(k).join(',')}`;
}

/** Sorted copy, by a text form of each item. */
export function sortedBy<T>(items: Iterable<T>, text: (t: T) => string = (t) => JSON.stringify(t)): T[] {
  return [...items].sort((a, b) => {
    const x = text(a);
    const y = text(b);
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

/** Deterministic pseudo-random numbers (mulberry32), so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` chars of varied text (ASCII and multi-byte), deterministic in `seed`. */
export function text(n: number, seed = 1): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789 éßΩж中文';
  const r = rng(seed);
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(r() * alphabet.length)];
  return s;
}
