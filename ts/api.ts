/** The public API, shared by every entry point. */
export { StateStore } from './store.js';
export type {
  StoreOptions,
  KeyGroupRange,
  MemoryInfo,
  CheckpointPolicy,
  CheckpointOptions,
  ConfirmedCheckpoint,
  CodecOption,
  ValueStateOptions,
  ListStateOptions,
  MapStateOptions,
  ReducingStateOptions,
  AggregatingStateOptions,
  StateOptions,
} from './store.js';
export type { StateTtlConfig, Clock } from './ttl.js';
export { ValueState, ListState, MapState, ReducingState, AggregatingState } from './states.js';
export type { AggregateFunction } from './states.js';
export { Snapshot, SnapshotValueView, SnapshotListView, SnapshotMapView, SnapshotAggregateView } from './snapshot.js';
export type { SnapshotEntry } from './snapshot.js';
export { Checkpoint } from './checkpoint.js';
export type { CheckpointKind, Progress, StreamOptions } from './checkpoint.js';
export type {
  CheckpointToOptions,
  CheckpointProgress,
  TakenCheckpoint,
  RestoreFromOptions,
  RestoredFrom,
  CheckpointEvent,
  CheckpointingOptions,
  CheckpointingController,
} from './checkpointing.js';
export type { CheckpointStorage, CheckpointWriter, CheckpointMeta, CheckpointMetadata, StoredCheckpoint } from './storage/types.js';
export { StorageError } from './storage/errors.js';
// Browser storage: environment-neutral code (in Node, opening one throws STORAGE_UNAVAILABLE).
export { OpfsStorage } from './storage/opfs.js';
export type { OpfsStorageOptions, DirectoryHandle } from './storage/opfs.js';
export { IndexedDbStorage } from './storage/indexeddb.js';
export type { IndexedDbStorageOptions } from './storage/indexeddb.js';
export { openBrowserStorage } from './storage/browser.js';
export type { BrowserStorage } from './storage/browser.js';
export type { BrowserStorageOptions } from './storage/browser-options.js';
export type { AccessOptions, LockOptions } from './storage/access.js';
export { compact } from './restore.js';
export { inspectCheckpoint } from './inspect.js';
export type { CheckpointReport, CheckpointStateReport, CheckpointSectionReport, CheckpointRecord, InspectOptions } from './inspect.js';
export type { CheckpointSource, RestoreOptions, RestoreProgress } from './restore.js';
export type { Codec, CodecName, Key } from './codecs.js';
export {
  KeystateError,
  InvalidArgumentError,
  KeyGroupOutOfRangeError,
  StateDefinitionError,
  SnapshotReleasedError,
  CheckpointStateError,
  CorruptCheckpointError,
  BrokenChainError,
  StoreClosedError,
  StoreFullError,
  WasmLoadError,
  BackendLoadError,
} from './errors.js';
export { setBackend, initKeystate } from './backend/load.js';
export type { WasmSource } from './backend/source.js';
export type { Backend, BackendName } from './backend/types.js';
