/**
 * Checkpoint handles. A checkpoint reads the snapshot of the moment it was
 * taken; its bytes are produced chunk by chunk as the stream is read, so
 * writers run between chunks. It counts only once confirmed.
 */
import type { CoreCheckpointInfo, CoreProgress } from './backend/types.js';
import { core, CheckpointStateError } from './errors.js';
import type { StateStore } from './store.js';

/** Progress of an export or a restore. */
export interface Progress {
  /** Key groups written (export) so far, of the total. */
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
    this.parentId = info.parentId;
    this.kind = info.kind;
  }

  /** The checkpoint's bytes, produced as they are read. Readable once. */
  stream(opts: StreamOptions = {}): ReadableStream<Uint8Array> {
    if (this.streamed) throw new CheckpointStateError('CHECKPOINT_STATE', `checkpoint ${this.id} was already streamed`);
    this.streamed = true;
    const target = Math.max(1024, opts.chunkSize ?? 64 * 1024);
    return new ReadableStream<Uint8Array>(
      {
        pull: (controller) => {
          try {
            const c = this.store.coreStore;
            const chunk = core(() => c.checkpointNext(this.id, target));
            const p = core(() => c.checkpointProgress(this.id));
            this.last = p;
            if (chunk.length > 0) controller.enqueue(chunk);
            opts.onProgress?.({ keyGroupsDone: p.keyGroupsDone, keyGroupsTotal: p.keyGroupsTotal, bytes: p.bytes, records: p.records });
            if (p.finished) controller.close();
          } catch (e) {
            controller.error(e);
          }
        },
        cancel: () => {
          if (this.settled === null) this.abort();
        },
      },
      { highWaterMark: 0 },
    );
  }

  /**
   * Reads the whole stream into one array. The array owns its whole
   * ArrayBuffer (as does each chunk of `stream()`: copies out of wasm memory),
   * so `postMessage(bytes, [bytes.buffer])` moves it to another thread (its
   * type says `buffer` is an ArrayBuffer, which TypeScript lets you transfer).
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
    const out = new Uint8Array(n);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
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
