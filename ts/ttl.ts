/**
 * State time-to-live options, as Flink's `StateTtlConfig`, and their
 * translation into the arguments the core takes (its wire protocol's
 * `ttl_config`: a time to live in ms, flags, and the entries an incremental
 * cleanup step visits). The rules themselves live in the core
 * (crates/keystate-core/src/ttl).
 */
import { checkU32, InvalidArgumentError } from './errors.js';

/**
 * A state's time to live. A value (a list element, a map entry, the
 * accumulator of a reducing or aggregating state) expires once
 * `lastAccess + ttlMs <= now` on the store's clock.
 */
export interface StateTtlConfig {
  /** Time to live in ms: an integer >= 1 (`Number.MAX_VALUE` never expires). */
  ttlMs: number;
  /** What renews a value's timestamp: writes (default), or reads and writes. */
  update?: 'onCreateAndWrite' | 'onReadAndWrite';
  /**
   * Whether an expired value that was not cleaned up yet is returned:
   * never (default), or once (the read that returns it removes it).
   */
  visibility?: 'neverReturnExpired' | 'returnExpiredIfNotCleanedUp';
  cleanup?: {
    /**
     * Incremental cleanup: every access of the state (and, with
     * `everyRecord`, every `setCurrentKey`) visits `size` more of its
     * entries and removes what expired. Default `{ size: 5 }` (Flink's
     * default); `false` turns it off.
     */
    incremental?: false | { size?: number; everyRecord?: boolean };
    /** Full checkpoints leave expired values out (and snapshots do not show them). Default false. */
    fullSnapshot?: boolean;
  };
}

/** The store's clock: milliseconds, an integer >= 0 (fractions are dropped). Default `Date.now`. */
export type Clock = () => number;

// Flags of crates/keystate-core/src/wire.rs, `ttl_flags`.
const ON_READ_AND_WRITE = 1;
const RETURN_EXPIRED = 2;
const INCREMENTAL = 4;
const EVERY_RECORD = 8;
const FULL_SNAPSHOT = 16;

/** The core's arguments for a TTL option: `[ttlMs, flags, cleanupSize]`; `[0, 0, 0]` for none. */
export function ttlArgs(name: string, ttl: StateTtlConfig | undefined): [number, number, number] {
  if (ttl === undefined || ttl === null) return [0, 0, 0];
  const bad = (what: string) => new InvalidArgumentError('INVALID_ARGUMENT', `state '${name}': ${what}`);
  if (typeof ttl !== 'object') throw bad('ttl must be an object { ttlMs, ... }');
  if (typeof ttl.ttlMs !== 'number' || !(ttl.ttlMs >= 1) || !Number.isInteger(ttl.ttlMs)) throw bad(`ttl.ttlMs must be an integer >= 1, not ${ttl.ttlMs}`);
  let flags = 0;
  const update = ttl.update ?? 'onCreateAndWrite';
  if (update === 'onReadAndWrite') flags |= ON_READ_AND_WRITE;
  else if (update !== 'onCreateAndWrite') throw bad(`ttl.update must be 'onCreateAndWrite' or 'onReadAndWrite', not ${String(update)}`);
  const visibility = ttl.visibility ?? 'neverReturnExpired';
  if (visibility === 'returnExpiredIfNotCleanedUp') flags |= RETURN_EXPIRED;
  else if (visibility !== 'neverReturnExpired') throw bad(`ttl.visibility must be 'neverReturnExpired' or 'returnExpiredIfNotCleanedUp', not ${String(visibility)}`);
  const inc = ttl.cleanup?.incremental ?? {};
  let size = 0;
  if (inc !== false) {
    if (typeof inc !== 'object' || inc === null) throw bad('ttl.cleanup.incremental must be false or { size, everyRecord }');
    size = inc.size ?? 5;
    checkU32(size, 'ttl.cleanup.incremental.size');
    flags |= INCREMENTAL;
    if (inc.everyRecord) flags |= EVERY_RECORD;
  }
  if (ttl.cleanup?.fullSnapshot) flags |= FULL_SNAPSHOT;
  return [ttl.ttlMs, flags, size];
}

/** Whether core flags ask for cleanup on every record. */
export function everyRecord(flags: number): boolean {
  return (flags & EVERY_RECORD) !== 0;
}

/** The option a state's core TTL arguments describe (reports), or null. */
export function ttlOption(ttlMs: number, flags: number, size: number): StateTtlConfig | null {
  if (!ttlMs) return null;
  return {
    ttlMs,
    update: flags & ON_READ_AND_WRITE ? 'onReadAndWrite' : 'onCreateAndWrite',
    visibility: flags & RETURN_EXPIRED ? 'returnExpiredIfNotCleanedUp' : 'neverReturnExpired',
    cleanup: { incremental: flags & INCREMENTAL ? { size, everyRecord: (flags & EVERY_RECORD) !== 0 } : false, fullSnapshot: (flags & FULL_SNAPSHOT) !== 0 },
  };
}
