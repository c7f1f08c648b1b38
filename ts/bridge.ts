/**
 * The bridge to one core store, over the two buffers its backend hands out:
 * the argument buffer, holding the store's scratch (where keys and values
 * are written for a call, so that no call allocates), and the result buffer,
 * holding the result slots (where the core leaves the offset and length of
 * what a call returns: a value or a listing, read in place). For wasm both
 * are the linear memory, and a value is read where the core keeps it; the
 * native addon hands out buffers of its own.
 *
 * A buffer can be replaced during any core call (memory grows; the addon
 * regrows a buffer), which detaches the old one: every read or write goes
 * through `fresh()` first. A detached buffer's view has length 0, so
 * checking that is a field load, where asking the backend is a call.
 */
import type { Backend, CoreStore } from './backend/types.js';
import { fromCore, keystateError } from './errors.js';

/** Key length that selects the current key (see `setCurrentKey`). */
export const CURRENT = 0xffffffff;
/** Snapshot argument of a `get` that reads a value to fold into (wire.rs `FOR_UPDATE`). */
export const FOR_UPDATE = -1;
/** Value length that marks a delete in a write batch, and an absent value in a read batch. */
export const NO_VALUE = 0xffffffff;
/** Scratch bytes kept after a batch; a larger batch's buffers are given back. */
const BATCH_KEEP = 1 << 20;

/** Bytes to decode from: the result buffer, or any array (see `viewOf`). */
export interface ReadView {
  readonly u8: Uint8Array;
  readonly dv: DataView;
}

/** A read view over standalone bytes (a default value, a copy). */
export function viewOf(bytes: Uint8Array): ReadView {
  return { u8: bytes, dv: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}

export class Bridge implements ReadView {
  readonly core: CoreStore;
  private readonly backend: Backend;
  private readonly resPtr: number;
  /** Views of the result buffer: values and listings are read here. */
  u8!: Uint8Array;
  dv!: DataView;
  res!: Uint32Array;
  /** Views of the argument buffer: the scratch is at `scratch` in it. */
  w8!: Uint8Array;
  wdv!: DataView;
  /** Offset and size of the scratch. */
  scratch = 0;
  cap = 0;
  /** Lengths written by the last `keyNs` call. */
  kl = 0;
  nl = 0;

  constructor(core: CoreStore, backend: Backend) {
    this.core = core;
    this.backend = backend;
    this.resPtr = core.resultPtr();
    this.scratch = core.scratch(1024);
    this.cap = core.scratchLen();
    this.views();
  }

  private views(): void {
    const args = this.backend.argBuffer(this.core);
    const results = this.backend.resultBuffer(this.core);
    this.w8 = new Uint8Array(args);
    this.wdv = new DataView(args);
    // One buffer for both (wasm): one set of views, so codecs stay monomorphic.
    this.u8 = results === args ? this.w8 : new Uint8Array(results);
    this.dv = results === args ? this.wdv : new DataView(results);
    this.res = new Uint32Array(results, this.resPtr, 4);
  }

  /** Refreshes the views if a buffer was replaced. */
  fresh(): void {
    if (this.u8.length === 0 || this.w8.length === 0) this.views();
  }

  /** Makes the scratch buffer hold at least `n` bytes (contents kept); throws `STORE_FULL` when it cannot grow. */
  ensure(n: number): void {
    if (n > this.cap) {
      try {
        this.scratch = this.core.scratch(n);
      } catch (e) {
        throw fromCore(e);
      }
      this.cap = this.core.scratchLen();
      this.views();
    } else if (this.w8.length === 0) {
      this.views();
    }
  }

  /** Writes a little-endian u32 at scratch offset `off`. */
  setU32(off: number, v: number): void {
    this.ensure(off + 4);
    this.wdv.setUint32(this.scratch + off, v, true);
  }

  /** Gives back the space of buffers a large batch grew (above `BATCH_KEEP`). */
  trim(): void {
    if (this.cap <= BATCH_KEEP) return;
    this.scratch = this.core.scratchTrim(BATCH_KEEP);
    this.cap = this.core.scratchLen();
    this.views();
  }

  /** Copies bytes into scratch at `off`; returns their length. */
  put(bytes: Uint8Array, off: number): number {
    this.ensure(off + bytes.length);
    this.w8.set(bytes, this.scratch + off);
    return bytes.length;
  }

  /** A copy of the `n` scratch bytes at offset `off`. */
  scratchCopy(off: number, n: number): Uint8Array {
    return this.w8.slice(this.scratch + off, this.scratch + off + n);
  }

  /** The typed error behind a -2 status. */
  error(): Error {
    return fromCore(this.core.lastError() ?? keystateError('INTERNAL', 'core reported an error without details'));
  }

  /** Throws the core's error if `status` says one happened. */
  check(status: number): number {
    if (status === -2) throw this.error();
    return status;
  }
}

// ---- varints ---------------------------------------------------------------

/** Writes a LEB128 varint at offset `at` of `u8`; returns its length. */
export function writeVarint(u8: Uint8Array, at: number, v: number): number {
  let n = 0;
  while (v >= 0x80) {
    u8[at + n++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  u8[at + n++] = v;
  return n;
}

export function varintLen(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Cursor over a byte listing in a result view (offsets into it). */
export class Reader {
  pos: number;
  constructor(
    readonly u8: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  varint(): number {
    let v = 0;
    let scale = 1;
    for (;;) {
      const b = this.u8[this.pos++];
      v += (b & 0x7f) * scale;
      if (b < 0x80) return v;
      scale *= 128;
    }
  }

  /** Reads a length-prefixed field; returns its start (length in `len`). */
  field(): number {
    this.len = this.varint();
    const at = this.pos;
    this.pos += this.len;
    return at;
  }

  len = 0;

  done(): boolean {
    return this.pos >= this.end;
  }
}
