/**
 * The bridge to one core store: views over the wasm linear memory, the
 * store's scratch buffer (where keys and values are written for a call, so
 * that no call allocates), and the result slots (where the core leaves the
 * address of a value it returns, read in place).
 *
 * Memory can grow during any core call, which detaches the old views: every
 * read or write goes through `fresh()` first. Growing a (non-shared) memory
 * detaches its old buffer, so a view of length 0 means "stale": checking that
 * is a field load, where reading `memory.buffer` costs a runtime call.
 */
import type { CoreStore } from './backend/types.js';
import { fromCore, keystateError } from './errors.js';

/** Key length that selects the current key (see `setCurrentKey`). */
export const CURRENT = 0xffffffff;
/** Value length that marks a delete in a write batch, and an absent value in a read batch. */
export const NO_VALUE = 0xffffffff;
/** Scratch bytes kept after a batch; a larger batch's buffers are given back. */
const BATCH_KEEP = 1 << 20;

export class Bridge {
  readonly core: CoreStore;
  private readonly memory: WebAssembly.Memory;
  private readonly resPtr: number;
  u8!: Uint8Array;
  dv!: DataView;
  res!: Uint32Array;
  /** Address and size of the scratch buffer. */
  scratch = 0;
  cap = 0;
  /** Lengths written by the last `keyNs` call. */
  kl = 0;
  nl = 0;

  constructor(core: CoreStore, memory: WebAssembly.Memory) {
    this.core = core;
    this.memory = memory;
    this.resPtr = core.resultPtr();
    this.scratch = core.scratch(1024);
    this.cap = core.scratchLen();
    this.views();
  }

  private views(): void {
    const buf = this.memory.buffer;
    this.u8 = new Uint8Array(buf);
    this.dv = new DataView(buf);
    this.res = new Uint32Array(buf, this.resPtr, 4);
  }

  /** Refreshes the views if memory grew. */
  fresh(): void {
    if (this.u8.length === 0) this.views();
  }

  /** Makes the scratch buffer hold at least `n` bytes (contents kept). */
  ensure(n: number): void {
    if (n > this.cap) {
      this.scratch = this.core.scratch(n);
      this.cap = this.core.scratchLen();
      this.views();
    } else if (this.u8.length === 0) {
      this.views();
    }
  }

  /** Writes a little-endian u32 at scratch offset `off`. */
  setU32(off: number, v: number): void {
    this.ensure(off + 4);
    this.dv.setUint32(this.scratch + off, v, true);
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
    this.u8.set(bytes, this.scratch + off);
    return bytes.length;
  }

  /** A copy of `len` bytes at absolute address `ptr`. */
  copy(ptr: number, len: number): Uint8Array {
    this.fresh();
    return this.u8.slice(ptr, ptr + len);
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

/** Writes a LEB128 varint at absolute address `at`; returns its length. */
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

/** Cursor over a byte listing in wasm memory (absolute addresses). */
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
