/**
 * S3Storage: checkpoints in any S3-compatible object store (AWS S3, MinIO,
 * the Versity S3 Gateway, ...), through `@aws-sdk/client-s3`.
 * Environment-neutral: it runs in Node and in a browser (where the endpoint
 * allows the page's origin by CORS); exported as `keystate/s3`.
 *
 * Layout under a key prefix (a "folder"; objects in deeper folders are
 * never touched): one object per checkpoint, `ckpt-<id>-<seq>.ks`, plus
 * `MANIFEST`, the same JSON listing DirectoryStorage keeps, and `LOCK`, the
 * writer's lease (s3lock.ts). An object counts only once MANIFEST names it.
 *
 * Commit protocol: the checkpoint's bytes are uploaded first (one PUT, or a
 * multipart upload of `partSize` parts, several in flight, for a large one),
 * under a name no other writer uses; then MANIFEST is replaced with a PUT
 * conditional on the ETag this writer last wrote (`If-Match`, or
 * `If-None-Match: *` while there is none). S3 applies a PUT whole or not at
 * all, so the listing is never torn, and the condition makes the listing a
 * compare-and-swap: a writer whose view of MANIFEST is not the latest (a
 * second writer on the prefix, a writer cut off while another took over)
 * gets 412 and fails with StorageError `STORAGE_LOCKED` instead of erasing
 * the other's checkpoints. Objects that retention drops are deleted only
 * after the MANIFEST without them is in place.
 *
 * One writer per prefix: opening for writing takes the lease (`STORAGE_LOCKED`
 * while a live writer holds it; `lock: { wait: true }` waits), then fences
 * any earlier writer still running by rewriting MANIFEST (conditionally)
 * with a new block of names, then removes what an interrupted writer left:
 * incomplete multipart uploads and checkpoint objects MANIFEST does not name.
 * `readOnly: true` takes no lease and writes nothing.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { InvalidArgumentError } from '../errors.js';
import { type AccessOptions, checkAccess, closeWriter, Commits, type LockOptions } from './access.js';
import { appended, retention } from './chains.js';
import { closedError, deletedWhileRead, ioError, readOnlyError, StorageError } from './errors.js';
import {
  checkId, checkpointName, checkRetain, CHECKPOINT_NAME, copyEntry, emptyManifest, MANIFEST, type Manifest, manifestText, parseManifest, pick,
} from './manifest.js';
import { commitChecks, Pieces } from './pieces.js';
import { checkStale, S3Lease } from './s3lock.js';
import { isPrecondition, S3Io } from './s3io.js';
import type { CheckpointStorage, CheckpointWriter, StoredCheckpoint } from './types.js';

/** How an S3Storage writer gets the prefix's lease. */
export interface S3LockOptions extends LockOptions {
  /**
   * A lease its holder has not renewed for this many ms (by the server's
   * clock) is stale: the next writer takes it over. Default 15 000, at
   * least 2 000. The holder renews it every quarter of that; a holder that
   * could not renew it for `staleMs` writes nothing until it has.
   */
  staleMs?: number;
}

/** Progress of one checkpoint's upload. */
export interface S3UploadProgress {
  /** The checkpoint's id and object name. */
  id: number;
  name: string;
  /** Bytes the server has acknowledged so far. */
  uploadedBytes: number;
  /** Parts acknowledged so far (0 for a checkpoint sent in one PUT, until it is done). */
  parts: number;
  /** True for the last call, once the object is complete (before it is listed). */
  done: boolean;
}

export interface S3StorageOptions extends AccessOptions {
  /** The client, configured for the endpoint (region, credentials; `forcePathStyle: true` for most self-hosted servers). */
  client: S3Client;
  bucket: string;
  /** Key prefix of the storage (`'counters/p3/'`); a missing final `/` is added. Default `''`: the bucket's top level. */
  prefix?: string;
  /** Restorable chains to keep (the last K checkpoints, each with its ancestors); default 2. */
  retain?: number;
  /**
   * Remove what an interrupted writer left (incomplete multipart uploads,
   * checkpoint objects MANIFEST does not name) when opening for writing;
   * default true (false with `readOnly`).
   */
  cleanup?: boolean;
  /** Bytes per part of a multipart upload (and the most a checkpoint sent in one PUT has); default 8 MiB, at least 5 MiB (S3's minimum). */
  partSize?: number;
  /** Parts uploaded at once; default 4. Memory held: about partSize x (this + 1). */
  uploadConcurrency?: number;
  /** How to get the writer's lease (not with `readOnly`); default: fail at once with STORAGE_LOCKED if a live writer holds it. */
  lock?: S3LockOptions;
  /** Called as a checkpoint's upload progresses (after each part, and once complete). */
  onUpload?: (p: S3UploadProgress) => void;
}

const MiB = 1024 * 1024;
const DEFAULT_PART = 8 * MiB;
const MIN_PART = 5 * MiB;
/** S3 allows at most 10 000 parts per upload. */
const MAX_PARTS = 10_000;
/** Names a writer reserves when it opens (MANIFEST's seq moves past them): an earlier writer still running never uses one of them. */
const SEQ_BLOCK = 1000;
const LOCK = 'LOCK';

/** An upload or object to remove, kept while its removal fails. */
type Leftover = { name: string; uploadId?: string };

export class S3Storage implements CheckpointStorage {
  readonly kind = 's3' as const;
  readonly bucket: string;
  readonly prefix: string;
  /** Chains kept by default (see `S3StorageOptions.retain`). */
  readonly retainChains: number;
  /** Opened with `readOnly: true`: lists and reads, never writes, holds no lease. */
  readonly readOnly: boolean;
  /** What opening removed: checkpoint objects never listed and incomplete uploads (an interrupted writer's), by name. */
  readonly removedOnOpen: readonly string[];
  /** Object names whose incomplete multipart uploads opening aborted. */
  readonly abortedOnOpen: readonly string[];
  private readonly io: S3Io;
  private readonly label: string;
  private readonly partSize: number;
  private readonly concurrency: number;
  private readonly onUpload?: (p: S3UploadProgress) => void;
  private manifest: Manifest;
  /** The MANIFEST's ETag as this writer last wrote or read it; null while there is none. */
  private etag: string | null;
  /** Sequence numbers handed out to writers. */
  private seq: number;
  private queue: Promise<unknown> = Promise.resolve();
  /** A MANIFEST write failed without an answer: it may or may not have happened. Holds the text it tried to write. */
  private unsure: string | null = null;
  /** Uploads and objects whose removal failed; retried after the next MANIFEST update. */
  private readonly leftovers = new Map<string, Leftover>();
  private readonly held: S3Lease | null;
  /** Set when MANIFEST changed under this writer: another writer has the prefix. */
  private fenced: StorageError | null = null;
  private readonly writers = new Set<() => Promise<void>>();
  private readonly commits = new Commits();
  private closing: Promise<void> | null = null;

  private constructor(o: {
    io: S3Io; prefix: string; retain: number; manifest: Manifest; etag: string | null; held: S3Lease | null;
    removed: string[]; aborted: string[]; partSize: number; concurrency: number; onUpload?: (p: S3UploadProgress) => void;
  }) {
    this.io = o.io;
    this.bucket = o.io.bucket;
    this.prefix = o.prefix;
    this.label = `s3://${o.io.bucket}/${o.prefix}`;
    this.retainChains = o.retain;
    this.manifest = o.manifest;
    this.etag = o.etag;
    this.seq = o.manifest.seq;
    this.held = o.held;
    this.readOnly = o.held === null;
    this.removedOnOpen = [...new Set([...o.removed, ...o.aborted])].sort();
    this.abortedOnOpen = o.aborted;
    this.partSize = o.partSize;
    this.concurrency = o.concurrency;
    this.onUpload = o.onUpload;
  }

  /**
   * Opens the storage at `bucket`/`prefix` as its only writer: takes the
   * lease, fences any earlier writer, removes what an interrupted one left.
   * With `readOnly: true`, opens it to list and restore beside a writer.
   * Throws StorageError `STORAGE_LOCKED` if a live writer holds the lease
   * (after waiting, with `lock.wait`), `STORAGE_CORRUPT` if MANIFEST is not a
   * keystate manifest, `STORAGE_IO` if the store cannot be reached or refuses
   * (a missing bucket, bad credentials: `cause` holds the SDK's error).
   */
  static async open(opts: S3StorageOptions): Promise<S3Storage> {
    const bad = (why: string) => new InvalidArgumentError('INVALID_ARGUMENT', why);
    if (typeof opts !== 'object' || opts === null) throw bad('S3Storage.open takes { client, bucket, prefix?, ... }');
    const { client, bucket } = opts;
    if (typeof (client as { send?: unknown } | undefined)?.send !== 'function') throw bad('client must be an S3Client from @aws-sdk/client-s3');
    if (typeof bucket !== 'string' || bucket.length === 0) throw bad(`bucket must be a bucket name, not ${JSON.stringify(bucket)}`);
    let prefix = opts.prefix ?? '';
    if (typeof prefix !== 'string' || prefix.startsWith('/') || prefix.split('/').some((p, i, a) => p === '..' || p === '.' || (p === '' && i < a.length - 1))) {
      throw bad(`prefix must be a key prefix such as "checkpoints/p3/" (no leading "/", no empty, "." or ".." part), not ${JSON.stringify(prefix)}`);
    }
    if (prefix !== '' && !prefix.endsWith('/')) prefix += '/';
    const retain = checkRetain(opts.retain ?? 2, 'retain');
    const partSize = opts.partSize ?? DEFAULT_PART;
    if (!Number.isSafeInteger(partSize) || partSize < MIN_PART) throw bad(`partSize must be an integer >= ${MIN_PART} (5 MiB, S3's minimum part), not ${String(partSize)}`);
    const concurrency = opts.uploadConcurrency ?? 4;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw bad(`uploadConcurrency must be an integer >= 1, not ${String(concurrency)}`);
    if (opts.onUpload !== undefined && typeof opts.onUpload !== 'function') throw bad('onUpload must be a function');
    const { readOnly, waitMs } = checkAccess(opts);
    const staleMs = readOnly ? 0 : checkStale(opts.lock?.staleMs);
    const io = new S3Io(client, bucket);
    const label = `s3://${bucket}/${prefix}`;
    const common = { io, prefix, retain, partSize, concurrency, onUpload: opts.onUpload };
    if (readOnly) {
      const { manifest, etag } = await readManifest(io, prefix, label);
      return new S3Storage({ ...common, manifest, etag, held: null, removed: [], aborted: [] });
    }
    const held = await S3Lease.acquire(io, prefix + LOCK, label, staleMs, waitMs);
    try {
      const { manifest, etag } = await S3Storage.fence(io, prefix, label);
      const { removed, aborted } = opts.cleanup ?? true ? await S3Storage.recover(io, prefix, label, manifest) : { removed: [], aborted: [] };
      return new S3Storage({ ...common, manifest, etag, held, removed, aborted });
    } catch (e) {
      await held.release().catch(() => undefined);
      throw e;
    }
  }

  /**
   * Rewrites MANIFEST with its seq a block further: a writer that still
   * runs from before (its lease went stale) fails its next commit (its
   * If-Match no longer holds), and names it may be writing stay its own.
   */
  private static async fence(io: S3Io, prefix: string, label: string): Promise<{ manifest: Manifest; etag: string }> {
    const { manifest, etag } = await readManifest(io, prefix, label);
    const next: Manifest = { ...manifest, seq: manifest.seq + SEQ_BLOCK };
    try {
      return { manifest: next, etag: await io.putText(prefix + MANIFEST, manifestText(next), etag === null ? { ifNoneMatch: true } : { ifMatch: etag }) };
    } catch (e) {
      if (isPrecondition(e)) throw new StorageError('STORAGE_LOCKED', `${label}: MANIFEST changed while this writer opened the storage, so another writer writes to it without the lease`, e);
      throw ioError(`writing ${label}${MANIFEST}`, e);
    }
  }

  /** Removes incomplete uploads and unlisted checkpoint objects (all an earlier writer's: this one holds the lease). */
  private static async recover(io: S3Io, prefix: string, label: string, manifest: Manifest): Promise<{ removed: string[]; aborted: string[] }> {
    const listed = new Set(manifest.checkpoints.map((c) => c.name));
    const removed: string[] = [];
    const aborted: string[] = [];
    try {
      for (const u of await io.listUploads(prefix)) {
        if (!CHECKPOINT_NAME.test(u.name)) continue;
        await io.abortUpload(prefix + u.name, u.uploadId);
        aborted.push(u.name);
      }
      for (const name of await io.listNames(prefix)) {
        if (!CHECKPOINT_NAME.test(name) || listed.has(name)) continue;
        await io.delete(prefix + name);
        removed.push(name);
      }
    } catch (e) {
      throw ioError(`removing what an interrupted checkpoint left in ${label}`, e);
    }
    return { removed: removed.sort(), aborted: aborted.sort() };
  }

  /**
   * Releases the lease once the commits under way are done; writers not yet
   * committing are aborted. Every method fails from then on. Calling it
   * again returns the same promise.
   */
  close(): Promise<void> {
    this.closing ??= closeWriter(this.writers, this.commits, this.queue, this.held);
    return this.closing;
  }

  async list(): Promise<StoredCheckpoint[]> {
    if (this.closing) throw closedError(this.label);
    await this.fresh();
    return this.manifest.checkpoints.map(copyEntry);
  }

  async begin(id: number): Promise<CheckpointWriter> {
    checkId(id);
    this.writable('write a checkpoint');
    const name = checkpointName(id, ++this.seq);
    const key = this.prefix + name;
    const io = this.io;
    let uploadId: string | null = null;
    let stored = false; // the object exists under its name (one PUT, or a completed upload)
    const etags: string[] = [];
    const inflight = new Set<Promise<void>>();
    let partError: unknown = null;
    let uploaded = 0;
    let finishing = false;
    let failed = false;
    let done = false;
    const progress = (fin: boolean) => this.onUpload?.({ id, name, uploadedBytes: uploaded, parts: etags.filter(Boolean).length, done: fin });
    const fail = async () => {
      if (failed) return;
      failed = true;
      this.writers.delete(abort);
      await Promise.all(inflight);
      await this.discard({ name, uploadId: uploadId ?? undefined }, stored);
    };
    const abort = async () => {
      done = true;
      await fail();
    };
    this.writers.add(abort);
    const sendPart = (body: Uint8Array) => {
      const n = etags.length + 1;
      if (n > MAX_PARTS) throw new StorageError('STORAGE_IO', `checkpoint ${id} needs more than ${MAX_PARTS} parts of ${this.partSize} bytes; open the storage with a larger partSize`);
      etags.push('');
      const p: Promise<void> = io.uploadPart(key, uploadId as string, n, body).then(
        (etag) => {
          etags[n - 1] = etag;
          uploaded += body.length;
          progress(false);
        },
        (e: unknown) => {
          partError ??= e;
        },
      ).finally(() => inflight.delete(p));
      inflight.add(p);
    };
    const sink = async (piece: Uint8Array) => {
      if (partError) throw partError;
      if (finishing && uploadId === null) {
        // Small enough for one part: one PUT, no multipart upload.
        await io.putBytes(key, piece.slice());
        stored = true;
        uploaded = piece.length;
        return;
      }
      uploadId ??= await io.createUpload(key);
      sendPart(piece.slice());
      while (inflight.size >= this.concurrency) await Promise.race(inflight);
      if (partError) throw partError;
    };
    const pieces = new Pieces(this.partSize, sink, fail, `uploading checkpoint ${id} to ${this.label}${name}`);
    return {
      write: async (chunk) => {
        if (done || failed) throw new StorageError('STORAGE_IO', `checkpoint ${id}: write after the writer was closed`);
        await pieces.write(chunk);
      },
      commit: (meta, retain) => this.commits.run(async () => {
        if (done || failed) throw new StorageError('STORAGE_IO', `checkpoint ${id}: commit after the writer was closed`);
        done = true;
        this.writers.delete(abort);
        const keep = await commitChecks(meta, id, retain, this.retainChains, pieces.written, fail);
        finishing = true;
        await pieces.flush();
        try {
          if (pieces.written === 0) {
            await io.putBytes(key, new Uint8Array(0));
            stored = true;
          }
          await Promise.all(inflight);
          if (partError) throw partError;
          if (uploadId !== null) {
            await io.completeUpload(key, uploadId, etags);
            stored = true;
          }
        } catch (e) {
          await fail();
          throw ioError(`uploading checkpoint ${id} to ${this.label}${name}`, e);
        }
        progress(true);
        const entry: StoredCheckpoint = { ...pick(meta), name };
        await this.update(`listing checkpoint ${id}`, (list) => appended(list, entry), keep, name);
        return copyEntry(entry);
      }),
      abort,
    };
  }

  async open(name: string): Promise<ReadableStream<Uint8Array>> {
    if (this.closing) throw closedError(this.label);
    await this.fresh();
    if (!this.manifest.checkpoints.some((c) => c.name === name)) {
      throw new StorageError('NO_CHECKPOINT', `${this.label} lists no checkpoint named ${JSON.stringify(name)}`);
    }
    /** A failed read: NO_CHECKPOINT if retention (this writer's or another's) deleted the object meanwhile. */
    const failure = async (what: string, e: unknown) => {
      const listed = await readManifest(this.io, this.prefix, this.label).then((m) => m.manifest.checkpoints.some((c) => c.name === name), () => true);
      return listed ? ioError(what, e) : deletedWhileRead(this.label, name, e);
    };
    const what = `reading checkpoint ${this.label}${name}`;
    let reader: ReadableStreamDefaultReader<Uint8Array>;
    try {
      reader = (await this.io.getStream(this.prefix + name)).getReader();
    } catch (e) {
      throw await failure(what, e);
    }
    return new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          try {
            const { done, value } = await reader.read();
            if (done) controller.close();
            else controller.enqueue(value);
          } catch (e) {
            controller.error(await failure(what, e));
          }
        },
        cancel: (reason) => reader.cancel(reason).catch(() => undefined),
      },
      { highWaterMark: 0 },
    );
  }

  async retain(keep: number): Promise<string[]> {
    const k = checkRetain(keep, 'keep');
    this.writable('apply retention');
    return this.update('applying retention', (list) => list, k, null);
  }

  private writable(what: string): void {
    if (this.readOnly) throw readOnlyError(this.label, what);
    if (this.closing) throw closedError(this.label);
    const lost = this.fenced ?? this.held?.lostError();
    if (lost) throw lost;
  }

  /**
   * The listing as it stands: reread for a reader (a writer elsewhere changes
   * it), and for a writer whose last MANIFEST write got no answer (it did
   * or did not happen; anything else there means another writer).
   */
  private async fresh(): Promise<void> {
    if (this.readOnly) {
      ({ manifest: this.manifest, etag: this.etag } = await readManifest(this.io, this.prefix, this.label));
      return;
    }
    if (this.unsure === null) return;
    const cur = await this.io.getText(this.prefix + MANIFEST).catch((e: unknown) => {
      throw ioError(`reading ${this.label}${MANIFEST}`, e);
    });
    if (cur !== null && cur.text === this.unsure) {
      this.manifest = parseManifest(cur.text, `${this.label}${MANIFEST}`);
      this.etag = cur.etag;
    } else if (cur?.etag !== this.etag) {
      throw this.fencedOff(new Error('MANIFEST is neither what this writer last wrote nor what it tried to write'));
    }
    this.unsure = null;
  }

  /** Marks this writer fenced off (another writer changed MANIFEST); returns the error. */
  private fencedOff(cause: unknown): StorageError {
    this.fenced ??= new StorageError(
      'STORAGE_LOCKED',
      `${this.label}: MANIFEST was changed by another writer (its conditional write failed), so this writer writes nothing more; close it and open the storage again`,
      cause,
    );
    return this.fenced;
  }

  /** Aborts an upload or deletes an object; on failure keeps it for later. `object`: the object exists (or may). */
  private async discard(l: Leftover, object: boolean): Promise<void> {
    try {
      if (l.uploadId !== undefined) await this.io.abortUpload(this.prefix + l.name, l.uploadId);
      if (object || l.uploadId === undefined) await this.io.delete(this.prefix + l.name);
      this.leftovers.delete(l.name);
    } catch {
      this.leftovers.set(l.name, l);
    }
  }

  /**
   * Changes the listing: `change` the list, apply retention, replace
   * MANIFEST conditionally, then delete the objects it dropped. Returns the
   * names deleted. `added` names the object this update lists, if any: when
   * the new MANIFEST is surely not in place, that object is removed again.
   */
  private update(what: string, change: (l: StoredCheckpoint[]) => StoredCheckpoint[], keep: number, added: string | null): Promise<string[]> {
    const run = async (): Promise<string[]> => {
      let sent = false;
      try {
        const lost = this.fenced ?? this.held?.lostError();
        if (lost) throw lost;
        await this.fresh();
        const { kept, dropped } = retention(change(this.manifest.checkpoints), keep);
        const next: Manifest = { ...emptyManifest(), seq: Math.max(this.seq, this.manifest.seq), checkpoints: kept };
        if (dropped.length > 0 || added !== null) {
          const text = manifestText(next);
          sent = true;
          try {
            this.etag = await this.io.putText(this.prefix + MANIFEST, text, this.etag === null ? { ifNoneMatch: true } : { ifMatch: this.etag });
          } catch (e) {
            if (isPrecondition(e)) throw this.fencedOff(e);
            // No answer, or an error after the server may have stored it: find out before the next change.
            this.unsure = text;
            throw e;
          }
          this.manifest = next;
        }
        // Only now, with a MANIFEST that no longer names them, may dropped objects go.
        for (const c of dropped) this.leftovers.set(c.name, { name: c.name });
        const gone: string[] = [];
        for (const l of [...this.leftovers.values()]) {
          await this.discard(l, true);
          if (!this.leftovers.has(l.name)) gone.push(l.name);
        }
        return gone.filter((n) => dropped.some((c) => c.name === n));
      } catch (e) {
        // Not listed (or surely not: the condition failed): the object can go; its name is this writer's alone.
        if (added !== null && (!sent || this.fenced)) await this.discard({ name: added }, true);
        throw ioError(`${what} in ${this.label}`, e);
      }
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }
}

async function readManifest(io: S3Io, prefix: string, label: string): Promise<{ manifest: Manifest; etag: string | null }> {
  let cur;
  try {
    cur = await io.getText(prefix + MANIFEST);
  } catch (e) {
    throw ioError(`reading ${label}${MANIFEST}`, e);
  }
  if (cur === null) return { manifest: emptyManifest(), etag: null };
  return { manifest: parseManifest(cur.text, `${label}${MANIFEST}`), etag: cur.etag };
}
