/**
 * Typed errors. Every error keystate throws is a `KeystateError` with a
 * stable `code`; the subclass says what kind of thing went wrong. Codes that
 * come from the Rust core are listed in crates/keystate-core/src/error.rs.
 */
export class KeystateError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** An argument, key or value that keystate cannot take. */
export class InvalidArgumentError extends KeystateError {}
/** A key whose key group this store does not own. */
export class KeyGroupOutOfRangeError extends KeystateError {}
/** A state declared again with another kind or codec, or unknown. */
export class StateDefinitionError extends KeystateError {}
/** A read through a snapshot that was released. */
export class SnapshotReleasedError extends KeystateError {}
/** A checkpoint operation its state does not allow (confirm twice, ...). */
export class CheckpointStateError extends KeystateError {}
/** Checkpoint bytes that are not a valid, complete checkpoint. */
export class CorruptCheckpointError extends KeystateError {}
/** Checkpoints handed to restore that do not form a chain. */
export class BrokenChainError extends KeystateError {}
/** An operation on a store that was closed. */
export class StoreClosedError extends KeystateError {}
/**
 * `STORE_FULL`: a write could not get the memory it needs, because the
 * store's `maxMemoryBytes` budget would be passed or the backend's memory
 * cannot grow (a WebAssembly memory holds at most 4 GiB, and a browser may
 * refuse to grow it sooner). Nothing of the write was applied, and the
 * store, and every other store, stays usable: read, delete (deletes are not
 * held to the budget), snapshot, checkpoint, or close a store to make room.
 */
export class StoreFullError extends KeystateError {}
/**
 * A backend could not be loaded: `BACKEND_UNAVAILABLE` (the one asked for,
 * by option or `KEYSTATE_BACKEND`, does not exist here or did not load; the
 * message names what was tried, `cause` holds the underlying error).
 */
export class BackendLoadError extends KeystateError {
  constructor(code: string, message: string, cause?: unknown) {
    super(code, message);
    if (cause !== undefined) (this as { cause?: unknown }).cause = cause;
  }
}
/**
 * The WebAssembly core could not be loaded (`WASM_LOAD`: fetch, bytes or
 * compile failed; `cause` holds the underlying error), or was never loaded
 * (`WASM_NOT_LOADED`: keystate/slim before `initKeystate`).
 */
export class WasmLoadError extends BackendLoadError {}

const classes: Record<string, new (code: string, message: string) => KeystateError> = {
  INVALID_ARGUMENT: InvalidArgumentError,
  INVALID_KEY: InvalidArgumentError,
  INVALID_VALUE: InvalidArgumentError,
  NULL_ELEMENT: InvalidArgumentError,
  TOO_LARGE: InvalidArgumentError,
  NO_CURRENT_KEY: InvalidArgumentError,
  KEY_GROUP_OUT_OF_RANGE: KeyGroupOutOfRangeError,
  UNKNOWN_STATE: StateDefinitionError,
  INCOMPATIBLE_STATE: StateDefinitionError,
  WRONG_STATE_KIND: StateDefinitionError,
  SNAPSHOT_RELEASED: SnapshotReleasedError,
  UNKNOWN_CHECKPOINT: CheckpointStateError,
  CHECKPOINT_STATE: CheckpointStateError,
  BAD_MAGIC: CorruptCheckpointError,
  UNSUPPORTED_VERSION: CorruptCheckpointError,
  CHECKSUM_MISMATCH: CorruptCheckpointError,
  TRUNCATED: CorruptCheckpointError,
  CORRUPT: CorruptCheckpointError,
  BROKEN_CHAIN: BrokenChainError,
  STORE_CLOSED: StoreClosedError,
  STORE_FULL: StoreFullError,
};

/** The typed error for a code. */
export function keystateError(code: string, message: string): KeystateError {
  const Class = classes[code] ?? KeystateError;
  return new Class(code, message);
}

/**
 * Turns an error from the core into a typed one: a JS Error with `code`
 * (thrown by a binding), or `{ code, message }` (the native addon's
 * description of an error, for a hot-path status or work on another thread).
 */
export function fromCore(e: unknown): KeystateError {
  if (e instanceof KeystateError) return e;
  const c = e as { code?: unknown; message?: unknown } | null;
  if (typeof c === 'object' && c !== null && typeof c.code === 'string' && typeof c.message === 'string') {
    return keystateError(c.code, c.message);
  }
  return new KeystateError('INTERNAL', e instanceof Error ? e.message : String(e));
}

/** @internal Throws INVALID_ARGUMENT unless `v` is an integer in 0..2^32-1. */
export function checkU32(v: unknown, what: string): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new InvalidArgumentError('INVALID_ARGUMENT', `${what} must be a non-negative integer, not ${String(v)}`);
  }
}

/** @internal Checks a `maxMemoryBytes` option: undefined, or a number of bytes >= 1. */
export function maxMemory(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 1) {
    throw new InvalidArgumentError('INVALID_ARGUMENT', `maxMemoryBytes must be a number of bytes >= 1, not ${String(v)}`);
  }
  return Math.floor(v);
}

/** Runs `f`, rethrowing core errors as typed ones. */
export function core<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw fromCore(e);
  }
}
