/**
 * What the TypeScript API needs from a backend: the WebAssembly binding
 * (crates/keystate-wasm) or the native addon (crates/keystate-node). The API
 * knows no backend's memory: each store hands it an argument buffer (where
 * keys and values are written for a call) and a result buffer (where values
 * and listings are read after one), behind this interface. The layout of
 * both is the core's wire protocol (crates/keystate-core/src/wire.rs).
 */

declare global {
  // The WebAssembly types come from TypeScript's DOM library, which Node projects
  // usually leave out (and @types/node 20 has none): without these, the public
  // declarations would not type-check there. Empty interfaces merge with the full
  // ones wherever those exist.
  namespace WebAssembly {
    interface Module {}
    interface Memory {}
  }
}

/**
 * A core store. Byte arguments are passed in its scratch, a region of the
 * backend's argument buffer; results are read from its result buffer.
 */
export interface CoreStore {
  free(): void;
  /** Makes the scratch hold at least `len` bytes (contents kept); returns its offset in the argument buffer. */
  scratch(len: number): number;
  scratchLen(): number;
  /** Gives back scratch and listing space beyond `len` bytes; returns the scratch's offset. */
  scratchTrim(len: number): number;
  /** Offset of the four u32 result slots in the result buffer (fixed for the store's life). */
  resultPtr(): number;
  lastError(): unknown;
  /** Sets the store's memory budget (`maxMemoryBytes`). */
  setMaxMemory(bytes: number): void;
  /** Does nothing: what one call into the backend costs (the benchmarks). */
  ping(): number;
  /** `ttlMs` 0 for a state without TTL; see ts/ttl.ts for the flags. */
  registerState(name: string, kind: number, valueCodec: string, userKeyCodec: string, ttlMs: number, ttlFlags: number, cleanupSize: number): number;
  /** Sets the store's time (ms) from its clock: 0, or -2 for a time the core refuses. */
  setTime(now: number): number;
  /** Removes every expired value of the states with TTL; returns how many. */
  expire(): number;
  states(): CoreStateInfo[];
  maxParallelism(): number;
  keyGroupStart(): number;
  keyGroupEnd(): number;
  keyGroup(kl: number): number;
  setCurrentKey(kl: number): number;
  get(state: number, kl: number, nl: number, snapshot: number): number;
  put(state: number, kl: number, nl: number, vl: number): number;
  append(state: number, kl: number, nl: number, vl: number): number;
  remove(state: number, kl: number, nl: number): number;
  writeMany(state: number, nl: number, len: number): number;
  readMany(state: number, nl: number, len: number, snapshot: number): number;
  mapGet(state: number, kl: number, nl: number, ul: number, snapshot: number): number;
  mapPut(state: number, kl: number, nl: number, ul: number, vl: number): number;
  mapRemove(state: number, kl: number, nl: number, ul: number): number;
  mapLen(state: number, kl: number, nl: number, snapshot: number): number;
  mapList(state: number, kl: number, nl: number, snapshot: number): number;
  stateList(state: number, snapshot: number): number;
  snapshot(): number;
  release(snapshot: number): void;
  memory(): CoreMemory;
  entries(state: number): number;
  checkpoint(incremental: number): CoreCheckpointInfo;
  setCheckpointPolicy(incremental: boolean, maxIncrementals: number, maxChainRatio: number): void;
  deltaMembers(): number;
  /** The next chunk of a checkpoint's bytes, produced on this thread (empty once complete). */
  checkpointNext(id: number, target: number): Uint8Array;
  /** Native only: checkpoint `id`'s export, run on worker threads while JavaScript goes on. */
  exportJob?(id: number): CoreExportJob;
  checkpointProgress(id: number): CoreProgress;
  checkpointConfirm(id: number): void;
  checkpointAbort(id: number): void;
  lastConfirmed(): CoreBase | null;
}

export interface CoreRestorer {
  free(): void;
  /** Holds the restored store to a memory budget (`maxMemoryBytes`); before the first piece. */
  setMaxMemory(bytes: number): void;
  beginPiece(newChain: boolean): void;
  /** wasm: feeds here and throws; native: feeds on a worker thread and resolves to the error, if any. */
  feed(bytes: Uint8Array): void | Promise<CoreError | null>;
  /** How far the current piece is. */
  progress(): CoreRestoreProgress;
  endPiece(): CorePieceInfo;
  finish(): CoreStore;
  /** wasm: the bytes; native: a promise of the bytes or of the error. */
  finishCompacted(): Uint8Array | Promise<Uint8Array | CoreError>;
}

export interface CoreRestoreProgress {
  keyGroupsDone: number;
  keyGroupsTotal: number;
  records: number;
  bytes: number;
}

/** Looks inside one checkpoint (crates/keystate-core/src/inspect.rs). */
export interface CoreInspector {
  /** Feeds a chunk; returns the records it read (empty unless asked for). Throws on bad input. */
  feed(bytes: Uint8Array): Uint8Array;
  /** Ends the input; the report as JSON. Throws on bad input. */
  finish(): string;
  free?(): void;
}

/** An error described by the native addon. */
export interface CoreError {
  code: string;
  message: string;
}

export interface CoreExportJob {
  /** Produces the next chunks (about `target` bytes each, up to `budget` bytes) on a worker thread. */
  pull(target: number, budget: number): Promise<CoreExportPull>;
}

/** What one `pull` produced. */
export interface CoreExportPull {
  chunks: Uint8Array[];
  /** The export's progress after each chunk. */
  progress: CoreProgress[];
  finished: boolean;
  error?: CoreError | null;
}

export interface CoreStateInfo {
  name: string;
  kind: number;
  valueCodec: string;
  userKeyCodec: string;
  /** TTL as `registerState` takes it; `ttlMs` 0 for none. */
  ttlMs: number;
  ttlFlags: number;
  cleanupSize: number;
}

export interface CoreMemory {
  liveBytes: number;
  pinnedBytes: number;
  deltaLogBytes: number;
  freeBytes: number;
  arenaBytes: number;
  totalBytes: number;
  entries: number;
  openSnapshots: number;
  ttlBytes: number;
  states: { name: string; entries: number; liveBytes: number; ttlBytes: number }[];
}

export interface CoreCheckpointInfo {
  id: number;
  /** null or absent for a full checkpoint. */
  parentId?: number | null;
  kind: 'full' | 'incremental';
  snapshot: number;
}

export interface CoreBase {
  id: number;
  chainLength: number;
  chainBytes: number;
  fullBytes: number;
}

export interface CoreProgress {
  keyGroupsDone: number;
  keyGroupsTotal: number;
  bytes: number;
  records: number;
  finished: boolean;
  checksum: string;
}

export interface CorePieceInfo {
  id: number;
  parentId?: number | null;
  kind: 'full' | 'incremental';
  bytes: number;
  records: number;
  checksum: string;
}

/** Which backend runs a store. */
export type BackendName = 'wasm' | 'native';

/**
 * A loaded backend: constructors, and the buffers its stores use. A buffer
 * may be replaced by a call (wasm memory grows; the addon regrows its
 * buffers): the old one is then detached (length 0), and the API asks again.
 */
export interface Backend {
  readonly name: BackendName;
  newStore(maxParallelism: number, kgStart: number, kgEnd: number, storeId: Uint8Array): CoreStore;
  newRestorer(kgStart: number, kgEnd: number, newStoreId: Uint8Array): CoreRestorer;
  /** Reads one checkpoint without restoring it (see `inspectCheckpoint`). */
  newInspector(listRecords: boolean): CoreInspector;
  /** The buffer `store`'s arguments are written to (its scratch at `store.scratch()`'s offset). */
  argBuffer(store: CoreStore): ArrayBuffer;
  /** The buffer `store`'s results are read from (slots at `store.resultPtr()`). */
  resultBuffer(store: CoreStore): ArrayBuffer;
  /** Bytes this backend holds from the system for all its stores (wasm: its memory). */
  memoryBytes(): number;
}
