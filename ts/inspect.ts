/**
 * Looking inside a checkpoint without restoring it: its header, states,
 * sections, and (when asked) its records, every part verified as it streams
 * by and every record checked as a restore checks it. The core does all the
 * reading (crates/keystate-core/src/inspect.rs); this side only moves bytes.
 */
import { getBackend } from './backend/load.js';
import type { BackendName } from './backend/types.js';
import { Reader } from './bridge.js';
import type { CheckpointKind } from './checkpoint.js';
import { checkU32, core, fromCore } from './errors.js';
import { chunks, type CheckpointSource } from './restore.js';
import type { KeyGroupRange } from './store.js';
import { Slicer } from './yield.js';

/** One state of a checkpoint, and what the checkpoint holds of it. */
export interface CheckpointStateReport {
  /** The checkpoint's number for it (records name it by this). */
  id: number;
  name: string;
  kind: 'value' | 'list' | 'map' | 'reducing' | 'aggregating';
  valueCodec: string;
  userKeyCodec: string;
  /** The state's time to live as declared, or null for none. */
  ttl: import('./ttl.js').StateTtlConfig | null;
  /** Records of it in the checkpoint (entries; for maps, map entries; and removals). */
  records: number;
  /** Bytes of those records. */
  bytes: number;
}

/** One key group's section. */
export interface CheckpointSectionReport {
  keyGroup: number;
  /** Offset of the section in the file. */
  offset: number;
  bytes: number;
  records: number;
}

/** What a checkpoint is and holds. */
export interface CheckpointReport {
  /** Format version. */
  version: number;
  kind: CheckpointKind;
  id: number;
  parentId: number | null;
  /** The link this piece names as its parent's (16 hex digits); null for a full one. */
  parentLink: string | null;
  /** The link a child names as this piece's (16 hex digits). */
  link: string;
  /** File checksum (16 hex digits). */
  checksum: string;
  /** Lineage id (32 hex digits). */
  storeId: string;
  maxParallelism: number;
  keyGroups: KeyGroupRange;
  bytes: number;
  states: CheckpointStateReport[];
  /** Sections of the non-empty key groups, ascending. */
  sections: CheckpointSectionReport[];
  records: number;
}

/** One record of a checkpoint. */
export interface CheckpointRecord {
  op: 'put' | 'delete' | 'mapPut' | 'mapDelete' | 'mapClear';
  /** The checkpoint's id of the record's state (see `CheckpointStateReport.id`). */
  state: number;
  key: Uint8Array;
  ns: Uint8Array;
  /** The map user key (map ops), else empty. */
  uk: Uint8Array;
  /** The value (puts), else empty. */
  value: Uint8Array;
}

export interface InspectOptions {
  /** Called with every record, in file order. */
  onRecord?: (r: CheckpointRecord) => void;
  /** Called as bytes are read: the bytes so far. */
  onProgress?: (bytes: number) => void;
  backend?: BackendName;
}

const OPS = ['put', 'delete', 'mapPut', 'mapDelete', 'mapClear'] as const;
const SLICE = 1 << 20;

/**
 * Reads one checkpoint (its bytes as an array, a stream or an iterable of
 * chunks) and reports what it is and holds. Rejects with the typed error of
 * the first problem (`CorruptCheckpointError`: which part, which rule) when
 * the bytes are not a complete, valid checkpoint.
 */
export async function inspectCheckpoint(source: CheckpointSource, opts: InspectOptions = {}): Promise<CheckpointReport> {
  const backend = await getBackend(opts.backend);
  const ins = core(() => backend.newInspector(opts.onRecord !== undefined));
  const slicer = new Slicer();
  let bytes = 0;
  try {
    for await (const chunk of chunks(source)) {
      for (let at = 0; at < chunk.length; at += SLICE) {
        await slicer.pause();
        const part = chunk.subarray(at, at + SLICE);
        const listed = core(() => ins.feed(part));
        bytes += part.length;
        if (opts.onRecord && listed.length > 0) records(listed, opts.onRecord);
        opts.onProgress?.(bytes);
      }
    }
    return JSON.parse(core(() => ins.finish())) as CheckpointReport;
  } catch (e) {
    throw fromCore(e);
  } finally {
    ins.free?.();
  }
}

/** Calls `f` for each record of a listing (see `Inspector::records`). */
function records(listing: Uint8Array, f: (r: CheckpointRecord) => void): void {
  const r = new Reader(listing, 0, listing.length);
  const field = () => {
    const at = r.field();
    return listing.slice(at, at + r.len);
  };
  while (!r.done()) {
    const op = OPS[listing[r.pos++]];
    const state = r.varint();
    checkU32(state, 'state id');
    f({ op, state, key: field(), ns: field(), uk: field(), value: field() });
  }
}
