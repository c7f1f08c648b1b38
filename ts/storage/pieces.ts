/**
 * What every storage's writer shares (environment-neutral): gathering a
 * checkpoint's chunks into large pieces, and the checks before a commit.
 */
import { InvalidArgumentError } from '../errors.js';
import { ioError } from './errors.js';
import { checkMeta, checkRetain } from './manifest.js';
import type { CheckpointMeta } from './types.js';

/**
 * Gathers written chunks into pieces of `size` bytes (the last one may be
 * shorter) for `sink`. Export chunks are small, and each storage write costs
 * an event-loop turn, which a busy app (writers on timers) makes long.
 * A piece is a view of the buffer: the sink must be done with it (written
 * or copied) when its promise resolves. When the sink fails, the writer is
 * discarded (`fail`) and the error becomes a StorageError naming `what`.
 */
export class Pieces {
  private readonly buffer: Uint8Array;
  private buffered = 0;
  /** Bytes written so far. */
  written = 0;

  constructor(
    size: number,
    private readonly sink: (piece: Uint8Array) => Promise<void>,
    private readonly fail: () => Promise<void>,
    private readonly what: string,
  ) {
    this.buffer = new Uint8Array(size);
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.written += chunk.length;
    for (let at = 0; at < chunk.length; ) {
      const n = Math.min(chunk.length - at, this.buffer.length - this.buffered);
      this.buffer.set(chunk.subarray(at, at + n), this.buffered);
      this.buffered += n;
      at += n;
      if (this.buffered === this.buffer.length) await this.flush();
    }
  }

  /** Hands what is buffered to the sink. */
  async flush(): Promise<void> {
    if (this.buffered === 0) return;
    const piece = this.buffer.subarray(0, this.buffered);
    this.buffered = 0;
    try {
      await this.sink(piece);
    } catch (e) {
      await this.fail();
      throw ioError(this.what, e);
    }
  }
}

/**
 * Checks a commit's arguments against what the writer wrote; returns the
 * chains to keep (`retain`, else the storage's default). A refused commit
 * discards the writer (`fail`) before it throws: nothing of it is kept.
 */
export async function commitChecks(
  meta: CheckpointMeta,
  id: number,
  retain: number | undefined,
  fallback: number,
  written: number,
  fail: () => Promise<void>,
): Promise<number> {
  try {
    checkMeta(meta, id);
    const keep = checkRetain(retain ?? fallback, 'retain');
    if (meta.bytes !== written) throw new InvalidArgumentError('INVALID_ARGUMENT', `checkpoint ${id}: ${written} bytes written, the metadata says ${meta.bytes}`);
    return keep;
  } catch (e) {
    await fail();
    throw e;
  }
}
