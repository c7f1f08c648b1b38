/**
 * Checkpoint handles. A checkpoint reads the snapshot of the moment it was
 * taken; its bytes are produced as the stream is read, so writers run in
 * between. On the native backend they are produced on a worker thread while
 * JavaScript goes on; on wasm, on this thread, a chunk at a time, yielding to
 * the event loop every few milliseconds. It counts only once confirmed.
 */
import type { CoreCheckpointInfo, CoreProgress, CoreStore } from './backend/types.js';
import { core, fromCore, CheckpointStateError, StoreClosedError } from './errors.js';
import type { StateStore } from './store.js';
import { Slicer } from './yield.js';

/** Progress of an export or a restore. */
export interface Progress {
  /** Key groups written (export) or applied (restore) so far, of the total. */
  keyGroupsDone: number;
  keyGroupsTotal: number;
  /** Bytes produced (export) or consumed (restore). */
  bytes: number;
  /** Records (entries, tombstones) so far. */
  records: number;
}

export interface StreamOptions {
  /** Target chunk size in bytes (default 64 KiB); a chunk holds whole key groups. */
  chunkSize?: number;
  /** Called after each chunk. */
  onProgress?: (p: Progress) => void;
}

export type CheckpointKind = 'full' | 'incremental';

/** Bytes a native export produces per trip to its worker thread (in chunks of `chunkSize`). */
const NATIVE_BATCH = 1 << 20;

export class Checkpoint {
  readonly id: number;
  readonly parentId: number | null;
  readonly kind: CheckpointKind;
  private readonly store: StateStore;
  private streamed = false;
  private settled: 'confirmed' | 'aborted' | null = null;
  private last: CoreProgress | null = null;

  /** @internal */
  constructor(store: StateStore, info: CoreCheckpointInfo) {
    this.store = store;
    this.id = info.id;
    this.parentId = info.parentId ?? null;
    this.kind = info.kind;
  }

  /** The checkpoint's bytes, produced as they are read. Readable once. */
  stream(opts: StreamOptions = {}): ReadableStream<Uint8Array> {
    if (this.streamed) throw new CheckpointStateError('CHECKPOINT_STATE', `checkpoint ${this.id} was already streamed`);
    this.streamed = true;
    const target = Math.max(1024, opts.chunkSize ?? 64 * 1024);
    const report = (p: CoreProgress): boolean => {
      this.last = p;
      opts.onProgress?.({ keyGroupsDone: p.keyGroupsDone, keyGroupsTotal: p.keyGroupsTotal, bytes: p.bytes, records: p.records });
      return p.finished;
    };
    const cancel = () => {
      if (this.settled === null && !this.store.closed) this.abort();
    };
    // (A closed store fails the first read, below.)
    const c = this.store.closed ? null : this.store.coreStore;
    if (c?.exportJob) {
      // Native: a worker thread produces a batch of chunks (one batch ahead
      // of the reader, at most) while JavaScript goes on; the reader gets
      // them one per read, each with its progress.
      const job = core(() => c.exportJob!(this.id));
      const produce = () => job.pull(target, Math.max(target, NATIVE_BATCH));
      let next: ReturnType<typeof produce> | null = null;
      let queue: { chunk: Uint8Array; progress: CoreProgress }[] = [];
      return new ReadableStream<Uint8Array>(
        {
          pull: async (controller) => {
            try {
              if (queue.length === 0) {
                const r = await (next ?? produce());
                next = null;
                // The export thread cannot tell a close from an abort; this side can.
                if (r.error) throw this.store.closed ? new StoreClosedError('STORE_CLOSED', `the store was closed while checkpoint ${this.id} was read`) : fromCore(r.error);
                // Plain Uint8Arrays over the addon's Buffers (no copy), as the wasm path gives.
                queue = r.chunks.map((b, i) => ({ chunk: new Uint8Array(b.buffer, b.byteOffset, b.byteLength), progress: r.progress[i] }));
                if (!r.finished) next = produce();
              }
              const item = queue.shift();
              if (item && item.chunk.length > 0) controller.enqueue(item.chunk);
              if (item && report(item.progress)) {
                // Settles the checkpoint in the store (its snapshot goes).
                const c = this.store.coreStore;
                core(() => c.checkpointProgress(this.id));
                controller.close();
              }
            } catch (e) {
              controller.error(e);
            }
          },
          cancel,
        },
        { highWaterMark: 0 },
      );
    }
    const slicer = new Slicer();
    return new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          try {
            // A fast reader pulls again from a promise callback: yield to the
            // event loop now and then, or this thread would do nothing else.
            await slicer.pause();
            const c = this.store.coreStore;
            const chunk = core(() => c.checkpointNext(this.id, target));
            if (chunk.length > 0) controller.enqueue(chunk);
            if (report(core(() => c.checkpointProgress(this.id)))) controller.close();
          } catch (e) {
            controller.error(e);
          }
        },
        cancel,
      },
      { highWaterMark: 0 },
    );
  }

  /**
   * Reads the whole stream into one array. The array owns its whole
   * ArrayBuffer, so `postMessage(bytes, [bytes.buffer])` moves it to another
   * thread (its type says `buffer` is an ArrayBuffer, which TypeScript lets
   * you transfer).
   */
  async bytes(opts: StreamOptions = {}): Promise<Uint8Array & { buffer: ArrayBuffer }> {
    const parts: Uint8Array[] = [];
    let n = 0;
    const reader = this.stream(opts).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      n += value.length;
    }
    // The copy into one array yields too: 17 MB at once (1M entries) held
    // the event loop for 5-10 ms on its own.
    const out = new Uint8Array(n);
    const slicer = new Slicer();
    let at = 0;
    for (let i = 0; i < parts.length; i++) {
      await slicer.pause();
      out.set(parts[i] as Uint8Array, at);
      at += (parts[i] as Uint8Array).length;
    }
    return out;
  }

  /** True once the stream was read to the end. */
  get finished(): boolean {
    return this.last?.finished ?? false;
  }

  /** The file checksum (hex), once finished. */
  get checksum(): string | null {
    return this.finished ? (this.last as CoreProgress).checksum : null;
  }

  /** Marks the checkpoint as stored durably: the next incremental checkpoint extends it. */
  confirm(): void {
    if (this.settled) throw new CheckpointStateError('CHECKPOINT_STATE', `checkpoint ${this.id} was already ${this.settled}`);
    // The core may have produced every byte ahead of the reader (native): what counts is what was read.
    if (this.streamed && !this.finished) {
      throw new CheckpointStateError('CHECKPOINT_STATE', `checkpoint ${this.id} cannot be confirmed before its stream has been read to the end`);
    }
    const c = this.store.coreStore;
    core(() => c.checkpointConfirm(this.id));
    this.settled = 'confirmed';
  }

  /** Abandons the checkpoint; nothing is lost: the next one carries everything since the last confirmed. */
  abort(): void {
    if (this.settled === 'aborted') return;
    if (this.settled) throw new CheckpointStateError('CHECKPOINT_STATE', `checkpoint ${this.id} was already ${this.settled}`);
    const c = this.store.coreStore;
    core(() => c.checkpointAbort(this.id));
    this.settled = 'aborted';
  }
}
