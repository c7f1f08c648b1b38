/**
 * The listing format and argument checks shared by every storage
 * (environment-neutral). DirectoryStorage and OpfsStorage keep the listing as
 * a JSON MANIFEST file; IndexedDbStorage keeps one record per entry and
 * validates each with `parseEntry`.
 */
import { InvalidArgumentError } from '../errors.js';
import { StorageError } from './errors.js';
import type { CheckpointMeta, CheckpointMetadata, StoredCheckpoint } from './types.js';

export const MANIFEST = 'MANIFEST';
export const FORMAT = 'keystate-checkpoints';
export const VERSION = 1;

/** A checkpoint's name: `ckpt-<id>-<seq>.ks`, a plain file name (never a path: retention deletes by name). */
export const CHECKPOINT_NAME = /^ckpt-(\d+)-(\d+)\.ks$/;

export interface Manifest {
  format: typeof FORMAT;
  version: number;
  /** Last sequence number used in a checkpoint name. */
  seq: number;
  checkpoints: StoredCheckpoint[];
}

export const emptyManifest = (): Manifest => ({ format: FORMAT, version: VERSION, seq: 0, checkpoints: [] });

/** The name of checkpoint `id` written with sequence number `seq` (unique within a storage). */
export const checkpointName = (id: number, seq: number): string => `ckpt-${String(id).padStart(10, '0')}-${seq}.ks`;

/** The sequence number in a checkpoint name, or 0 for another name. */
export function seqOf(name: string): number {
  const m = CHECKPOINT_NAME.exec(name);
  return m ? Number(m[2]) : 0;
}

const isUint = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** The most JSON text a checkpoint's metadata may take. */
export const MAX_METADATA_BYTES = 64 * 1024;

/** True if `v` is JSON as it is: null, booleans, finite numbers, strings, arrays and plain objects of them, nested at most 64 deep. */
function isJson(v: unknown, depth: number): boolean {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (typeof v !== 'object' || depth > 64) return false;
  if (Array.isArray(v)) return v.every((x) => isJson(x, depth + 1));
  const proto = Object.getPrototypeOf(v);
  return (proto === Object.prototype || proto === null) && Object.values(v).every((x) => isJson(x, depth + 1));
}

/** True if `v` is a JSON object (see isJson) of at most MAX_METADATA_BYTES once encoded. */
function isMetadata(v: unknown): v is CheckpointMetadata {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && isJson(v, 0) && JSON.stringify(v).length <= MAX_METADATA_BYTES;
}

/**
 * One listed checkpoint, validated: `bad(why)` makes the error. `names`
 * holds the names seen so far (a name listed twice is corrupt) and gets this one.
 */
export function parseEntry(c: unknown, i: number, names: Set<string>, bad: (why: string) => StorageError): StoredCheckpoint {
  const e = c as Partial<StoredCheckpoint> | null;
  const ok =
    typeof e === 'object' && e !== null &&
    isUint(e.id) && (e.id as number) > 0 &&
    (e.kind === 'full' ? e.parentId === null : e.kind === 'incremental' && isUint(e.parentId)) &&
    typeof e.storeId === 'string' && /^[0-9a-f]{32}$/.test(e.storeId) &&
    typeof e.checksum === 'string' && /^[0-9a-f]{16}$/.test(e.checksum) &&
    isUint(e.bytes) && typeof e.createdAt === 'number' &&
    typeof e.name === 'string' && CHECKPOINT_NAME.test(e.name) && !names.has(e.name) &&
    (e.metadata === undefined || isMetadata(e.metadata));
  if (!ok) throw bad(`checkpoint entry ${i} is invalid`);
  names.add(e.name as string);
  const { id, parentId, kind, storeId, checksum, bytes, createdAt, name, metadata } = e as StoredCheckpoint;
  return metadata === undefined ? { id, parentId, kind, storeId, checksum, bytes, createdAt, name } : { id, parentId, kind, storeId, checksum, bytes, createdAt, name, metadata };
}

/** Parses a MANIFEST's text; `file` names it in errors. Throws StorageError `STORAGE_CORRUPT`. */
export function parseManifest(text: string, file: string): Manifest {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw new StorageError('STORAGE_CORRUPT', `${file} is not valid JSON (${(e as Error).message})`);
  }
  const o = m as Partial<Manifest> | null;
  if (typeof o !== 'object' || o === null || o.format !== FORMAT) {
    throw new StorageError('STORAGE_CORRUPT', `${file} is not a keystate checkpoint manifest`);
  }
  if (o.version !== VERSION) {
    throw new StorageError('STORAGE_CORRUPT', `${file} has manifest version ${String(o.version)}; this keystate reads version ${VERSION}`);
  }
  const bad = (why: string) => new StorageError('STORAGE_CORRUPT', `${file} is corrupt: ${why}`);
  if (!isUint(o.seq) || !Array.isArray(o.checkpoints)) throw bad('missing seq or checkpoints');
  const names = new Set<string>();
  const checkpoints = o.checkpoints.map((c: unknown, i) => parseEntry(c, i, names, bad));
  return { format: FORMAT, version: VERSION, seq: o.seq as number, checkpoints };
}

/** A MANIFEST's text. */
export const manifestText = (m: Manifest): string => JSON.stringify(m, null, 1) + '\n';

/** Throws INVALID_ARGUMENT unless `meta` describes checkpoint `id`. */
export function checkMeta(meta: CheckpointMeta, id: number): void {
  const ok =
    typeof meta === 'object' && meta !== null &&
    meta.id === id &&
    (meta.kind === 'full' ? meta.parentId === null : meta.kind === 'incremental' && Number.isSafeInteger(meta.parentId)) &&
    /^[0-9a-f]{32}$/.test(meta.storeId) && /^[0-9a-f]{16}$/.test(meta.checksum) &&
    Number.isSafeInteger(meta.bytes) && meta.bytes >= 0 && typeof meta.createdAt === 'number';
  if (!ok) throw new InvalidArgumentError('INVALID_ARGUMENT', `invalid metadata for checkpoint ${id}: ${JSON.stringify(meta)}`);
  checkAppMetadata(meta.metadata, `checkpoint ${id}`);
}

/** Throws INVALID_ARGUMENT unless `v` is a chain count (an integer >= 1). */
export function checkRetain(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new InvalidArgumentError('INVALID_ARGUMENT', `${what} must be an integer >= 1, not ${String(v)}`);
  }
  return v;
}

/** Throws INVALID_ARGUMENT unless `id` is a checkpoint id. */
export function checkId(id: unknown): number {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) throw new InvalidArgumentError('INVALID_ARGUMENT', `invalid checkpoint id ${String(id)}`);
  return id;
}

/** Throws INVALID_ARGUMENT unless `v` is absent or application metadata (a JSON object of at most 64 KiB). */
export function checkAppMetadata(v: unknown, what: string): void {
  if (v !== undefined && !isMetadata(v)) {
    throw new InvalidArgumentError('INVALID_ARGUMENT', `${what}: metadata must be a plain JSON object of at most ${MAX_METADATA_BYTES} bytes as JSON (no undefined, functions, NaN or cycles)`);
  }
}

/** Only the metadata fields (a caller's object may carry more); the application metadata as a copy. */
export function pick(m: CheckpointMeta): CheckpointMeta {
  const out: CheckpointMeta = { id: m.id, parentId: m.parentId, kind: m.kind, storeId: m.storeId, checksum: m.checksum, bytes: m.bytes, createdAt: m.createdAt };
  if (m.metadata !== undefined) out.metadata = JSON.parse(JSON.stringify(m.metadata)) as CheckpointMetadata;
  return out;
}

/** A listed entry as a caller gets it: a copy, metadata included (the caller may change it). */
export const copyEntry = (c: StoredCheckpoint): StoredCheckpoint => (c.metadata === undefined ? { ...c } : { ...c, metadata: JSON.parse(JSON.stringify(c.metadata)) as CheckpointMetadata });
