/**
 * The writer's lease of an S3Storage (environment-neutral): the object
 * `<prefix>LOCK`, created with `If-None-Match: *` (so only one opener gets
 * it) and renewed by its holder every quarter of `staleMs` with `If-Match`
 * on its own ETag. A lease whose object the server last modified more than
 * `staleMs` ago (the server's clock against its own Last-Modified, so no two
 * machines' clocks are compared) is stale: its holder is gone or cut off,
 * and the next opener takes it over with `If-Match` on the stale ETag, so of
 * several openers exactly one wins.
 *
 * A lease is only a courtesy to openers: what keeps a cut-off holder from
 * erasing a new writer's checkpoints is the MANIFEST's `If-Match` (s3.ts).
 * A holder that fails to renew (412: taken over) knows it lost the lease and
 * writes nothing more.
 */
import { InvalidArgumentError } from '../errors.js';
import { lockedError } from './access.js';
import { ioError, StorageError } from './errors.js';
import { isPrecondition, type S3Io } from './s3io.js';

export const MIN_STALE_MS = 2000;
export const DEFAULT_STALE_MS = 15_000;
const FORMAT = 'keystate-lease';

/** What the LOCK object says. */
interface Owner {
  format: typeof FORMAT;
  token: string;
  /** Who holds it, for error messages (a host and pid in Node, a user agent in a browser). */
  holder: string;
  staleMs: number;
  /** When the lease was taken (the holder's clock, for messages only). */
  since: number;
  /** Renewal count: every renewal changes the object, hence its ETag and Last-Modified. */
  beat: number;
}

function parseOwner(text: string): Owner | null {
  try {
    const o = JSON.parse(text) as Partial<Owner>;
    return o.format === FORMAT && typeof o.token === 'string' && typeof o.holder === 'string' && typeof o.staleMs === 'number' ? (o as Owner) : null;
  } catch {
    return null;
  }
}

const randomToken = () => Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');

/** A description of this process or page. */
function thisHolder(): string {
  const p = (globalThis as { process?: { pid?: number; versions?: { node?: string } } }).process;
  if (p?.versions?.node) return `a Node process (pid ${p.pid})`;
  const ua = (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent;
  return ua ? `a browser (${ua.split(' ').slice(-1)[0]})` : 'another writer';
}

/** @internal Checks `staleMs` (an S3Storage lock option). */
export function checkStale(v: unknown): number {
  if (v === undefined) return DEFAULT_STALE_MS;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < MIN_STALE_MS) {
    throw new InvalidArgumentError('INVALID_ARGUMENT', `lock.staleMs must be a number of ms >= ${MIN_STALE_MS}, not ${String(v)}`);
  }
  return v;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A held lease. */
export class S3Lease {
  /** Why the lease is no longer ours, once it is not. */
  lost: Error | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private renewing: Promise<void> = Promise.resolve();
  private released = false;
  private lastRenewed = Date.now();

  private constructor(
    private readonly io: S3Io,
    private readonly key: string,
    private readonly label: string,
    private owner: Owner,
    private etag: string,
  ) {
    this.schedule();
  }

  /**
   * Takes the lease `key`, waiting up to `waitMs` (0: not at all) while a
   * live holder has it. Throws StorageError `STORAGE_LOCKED`, or `STORAGE_IO`.
   */
  static async acquire(io: S3Io, key: string, label: string, staleMs: number, waitMs: number): Promise<S3Lease> {
    const t0 = Date.now();
    const owner: Owner = { format: FORMAT, token: randomToken(), holder: thisHolder(), staleMs, since: Date.now(), beat: 0 };
    const text = JSON.stringify(owner);
    for (let delay = 50; ; delay = Math.min(delay * 2, 250)) {
      let holder: Owner | null = null;
      try {
        return new S3Lease(io, key, label, owner, await io.putText(key, text, { ifNoneMatch: true }));
      } catch (e) {
        if (!isPrecondition(e)) throw ioError(`taking the writer's lease ${key} of ${label}`, e);
      }
      try {
        const cur = await io.getText(key);
        if (cur === null) continue; // released meanwhile: try again at once
        holder = parseOwner(cur.text);
        // Last-Modified has whole seconds: a second more before calling it stale.
        const stale = Math.max(staleMs, holder?.staleMs ?? 0) + 1000;
        if (cur.serverNow - cur.lastModified > stale) {
          try {
            return new S3Lease(io, key, label, owner, await io.putText(key, text, { ifMatch: cur.etag }));
          } catch (e) {
            if (!isPrecondition(e)) throw e;
            continue; // another opener took it over first, or its holder renewed it just now
          }
        }
      } catch (e) {
        throw ioError(`reading the writer's lease ${key} of ${label}`, e);
      }
      const waited = Date.now() - t0;
      const who = holder ? `${holder.holder} (since ${new Date(holder.since).toISOString()})` : 'another writer';
      if (waited >= waitMs) throw lockedError(label, who, waitMs > 0 ? waited : 0);
      await sleep(Math.min(delay, waitMs - waited));
    }
  }

  private schedule(): void {
    if (this.released || this.lost) return;
    const t = setTimeout(() => {
      this.renewing = this.renew().finally(() => this.schedule());
    }, this.owner.staleMs / 4);
    (t as { unref?: () => void }).unref?.();
    this.timer = t;
  }

  private async renew(): Promise<void> {
    if (this.released || this.lost) return;
    const next = { ...this.owner, beat: this.owner.beat + 1 };
    const started = Date.now();
    try {
      this.etag = await this.io.putText(this.key, JSON.stringify(next), { ifMatch: this.etag });
      this.owner = next;
      this.lastRenewed = started;
    } catch (e) {
      if (isPrecondition(e)) this.lost = new Error(`${this.key} was taken over by another writer (its lease went stale)`);
      // Otherwise (the server unreachable for a moment) try again next time; verify() counts the time.
    }
  }

  /** StorageError `STORAGE_LOCKED` if the lease is lost or may be (not renewed for staleMs), else null. */
  lostError(): StorageError | null {
    if (!this.lost && Date.now() - this.lastRenewed > this.owner.staleMs) {
      // Another opener may count it stale by now; the MANIFEST's If-Match decides, but write nothing new.
      return new StorageError('STORAGE_LOCKED', `${this.label}: the writer's lease could not be renewed for ${Date.now() - this.lastRenewed} ms (more than lock.staleMs, ${this.owner.staleMs}); another writer may take over, so this one does not write until it is renewed`);
    }
    if (!this.lost) return null;
    return new StorageError('STORAGE_LOCKED', `${this.label} lost its writer's lease (${this.lost.message}): another writer may have taken over, so this one writes nothing more; close it and open the storage again`, this.lost);
  }

  /** Lets go of the lease: deletes the LOCK object if it is still this one's. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (this.timer) clearTimeout(this.timer);
    await this.renewing;
    if (this.lost) return;
    try {
      await this.io.delete(this.key, this.etag);
    } catch (e) {
      // 412: no longer ours; nothing to do. Otherwise it goes stale by itself.
      if (!isPrecondition(e)) throw ioError(`releasing the writer's lease ${this.key} of ${this.label}`, e);
    }
  }
}
