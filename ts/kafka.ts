/**
 * keystate/kafka: keyed state in the workers of a Kafka consumer group
 * (Node only; kafkajs is an optional peer dependency, passed in as a
 * `Kafka` client, never imported here).
 *
 * Model (Flink's key groups over Kafka's partitions): a topic of P
 * partitions carries keys spread over `maxParallelism` key groups; partition
 * p holds exactly the keys of key groups `keyGroupRangeOf(p, P, G)` because
 * producers place each message with `keyGroupPartitioner`. A worker keeps one
 * StateStore per assigned partition, owning that partition's key groups, and
 * one CheckpointStorage per partition (`storage(p)`: an S3 prefix, a
 * directory), shared by all workers.
 *
 * The handshake that makes the state exactly-once: a checkpoint of
 * partition p is taken between two messages, and the offset of the next
 * message to process is stored in the checkpoint's metadata
 * (`{ kafka: { topic, partition, offset } }`), so the state and the offset
 * become durable together. Only then is that offset committed to the
 * consumer group (for lag monitoring and tools). On assignment a worker
 * restores the latest checkpoint and seeks to the offset in it, whatever the
 * group's committed offset says: a crash between checkpoint and commit, or
 * anywhere else, replays exactly the messages the restored state has not
 * seen. Effects outside the state (calls, writes elsewhere) are at least
 * once, as in Flink and Kafka Streams.
 *
 * Rebalance flow (kafkajs's eager protocol): when the group's assignment
 * changes, a worker stops processing the partitions it lost, takes a final
 * checkpoint of each (with its offset), commits, and closes its storage,
 * which releases the storage's writer lock; a worker that gained a partition
 * pauses it, opens its storage (waiting for that lock: configure the
 * storage with `lock: { wait: true }`), restores, seeks and resumes. A
 * worker that died holds its locks until they go stale (S3Storage: `lock.staleMs`),
 * and its last checkpoint is the one restored.
 */
import type { Consumer, ConsumerConfig, EachBatchPayload, ICustomPartitioner, Kafka, KafkaMessage } from 'kafkajs';
import { StateStore } from './index.js';
import type { Key, KeyGroupRange, StoreOptions } from './api.js';
import { InvalidArgumentError, KeystateError } from './errors.js';
import { StorageError } from './storage/errors.js';
import type { CheckpointStorage, StoredCheckpoint } from './storage/types.js';

/** The key groups of `partition` of `partitions` (Flink's range for an operator index; inclusive). */
export function keyGroupRangeOf(partition: number, partitions: number, maxParallelism: number): KeyGroupRange {
  checkLayout(partitions, maxParallelism);
  if (!Number.isInteger(partition) || partition < 0 || partition >= partitions) throw new InvalidArgumentError('INVALID_ARGUMENT', `partition ${partition} is not one of 0..${partitions - 1}`);
  return {
    start: Math.floor((partition * maxParallelism + partitions - 1) / partitions),
    end: Math.floor(((partition + 1) * maxParallelism - 1) / partitions),
  };
}

/** The partition whose range holds `keyGroup` (Flink's operator index of a key group). */
export function partitionOfKeyGroup(keyGroup: number, partitions: number, maxParallelism: number): number {
  checkLayout(partitions, maxParallelism);
  return Math.floor((keyGroup * partitions) / maxParallelism);
}

function checkLayout(partitions: number, maxParallelism: number): void {
  if (!Number.isInteger(partitions) || partitions < 1 || !Number.isInteger(maxParallelism) || partitions > maxParallelism) {
    throw new InvalidArgumentError('INVALID_ARGUMENT', `a topic of ${partitions} partitions needs maxParallelism >= partitions (key groups per partition), not ${maxParallelism}`);
  }
}

/** The key of a message as the state sees it; default: the message key as a UTF-8 string. */
export type KeyOf = (key: Buffer | string | null) => Key;

const defaultKey: KeyOf = (key) => {
  if (key === null) throw new InvalidArgumentError('INVALID_ARGUMENT', 'a keyed message needs a key');
  return typeof key === 'string' ? key : key.toString('utf8');
};

/**
 * A kafkajs partitioner that sends each message to the partition owning its
 * key's key group: `kafka.producer({ createPartitioner: await keyGroupPartitioner({ maxParallelism }) })`.
 * `key` must be the same function the workers use.
 */
export async function keyGroupPartitioner(opts: { maxParallelism: number; key?: KeyOf }): Promise<ICustomPartitioner> {
  const probe = await StateStore.create({ maxParallelism: opts.maxParallelism });
  const key = opts.key ?? defaultKey;
  return () => ({ partitionMetadata, message }) =>
    partitionOfKeyGroup(probe.keyGroupOf(key(message.key ?? null)), partitionMetadata.length, opts.maxParallelism);
}

/** How long a worker waits before it tries again to restore a partition that failed to restore. */
const RETRY_MS = 1000;

/** A storage a worker can close (every built-in storage). */
export type ClosableStorage = CheckpointStorage & { close(): Promise<void> };

/** Where a partition's checkpoint left its input: stored as `metadata.kafka`. */
export interface KafkaPosition {
  topic: string;
  partition: number;
  /** The next offset to process. */
  offset: string;
}

/** What a worker reports. Times in ms. */
export type WorkerEvent =
  | { type: 'assigned'; partition: number; restoredFrom: number | null; bytes: number; offset: string; restoreMs: number }
  | { type: 'first'; partition: number; offset: string; sinceAssignedMs: number }
  | { type: 'checkpoint'; partition: number; id: number; kind: 'full' | 'incremental'; bytes: number; offset: string; ms: number }
  | { type: 'revoked'; partition: number; offset: string; ms: number }
  | { type: 'error'; partition: number | null; error: unknown };

export interface KeyedWorkerOptions<S> {
  /** A kafkajs client (`new Kafka({ brokers })`). */
  kafka: Kafka;
  groupId: string;
  topic: string;
  /** Key groups over the topic (>= its partitions); the same as the producers' `keyGroupPartitioner`. */
  maxParallelism: number;
  /** The shared storage of partition p's checkpoints, opened for writing; give it `lock: { wait: true, timeoutMs }`. */
  storage: (partition: number) => Promise<ClosableStorage>;
  /** Declares the states on a partition's store (restored or new); what it returns is passed to `process`. */
  setup: (store: StateStore, partition: number) => S;
  /** Applies one message; the store's current key is the message's key. Writes state only through the store. */
  process: (message: KafkaMessage, ctx: { key: Key; state: S; store: StateStore; partition: number }) => void | Promise<void>;
  /** The key of a message (default: its key as a UTF-8 string); the producers' partitioner must use the same. */
  key?: KeyOf;
  /** Time between checkpoints of each partition that changed, in ms; default 5000. */
  checkpointIntervalMs?: number;
  /** Store options for new stores and restores (backend, checkpoint policy; default incremental). */
  store?: Pick<StoreOptions, 'backend' | 'checkpoints'>;
  /** kafkajs consumer options besides groupId (sessionTimeout, heartbeatInterval, ...). */
  consumer?: Omit<ConsumerConfig, 'groupId'>;
  onEvent?: (e: WorkerEvent) => void;
}

type Owned<S> = {
  partition: number;
  state: 'restoring' | 'ready' | 'revoking';
  /** Revoked while it was being restored: dropped once the restore can stop. */
  cancelled: boolean;
  /** The partition's restore or hand-back, once under way. */
  done: Promise<void>;
  storage: ClosableStorage | null;
  store: StateStore | null;
  handles: S | null;
  /** The next offset to process. */
  next: bigint;
  /** Messages applied since the last checkpoint was taken. */
  dirty: boolean;
  /** Processing and the taking of checkpoints, one after another. */
  queue: Promise<unknown>;
  /** The checkpoint being stored, if any. */
  storing: Promise<void> | null;
  assignedAt: number;
  seenFirst: boolean;
};

/**
 * Keyed processing in one worker of a consumer group. `start()` joins the
 * group; `stop()` hands every partition back (final checkpoints, commits,
 * storages closed) and leaves it.
 */
export class KeyedWorker<S> {
  private readonly opts: KeyedWorkerOptions<S>;
  private readonly key: KeyOf;
  private consumer: Consumer | null = null;
  private readonly owned = new Map<number, Owned<S>>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private partitions = 0;
  /** A store that owns nothing, to compute key groups. */
  private probe: StateStore | null = null;
  /** The group's latest assignment to this worker. */
  private current = new Set<number>();
  private stopping: Promise<void> | null = null;

  constructor(opts: KeyedWorkerOptions<S>) {
    const bad = (why: string) => new InvalidArgumentError('INVALID_ARGUMENT', why);
    if (!opts || typeof opts.kafka?.consumer !== 'function') throw bad('kafka must be a kafkajs Kafka client');
    for (const f of ['storage', 'setup', 'process'] as const) if (typeof opts[f] !== 'function') throw bad(`${f} must be a function`);
    if (typeof opts.topic !== 'string' || typeof opts.groupId !== 'string') throw bad('topic and groupId must be strings');
    if (!Number.isInteger(opts.maxParallelism) || opts.maxParallelism < 1) throw bad(`maxParallelism must be an integer >= 1, not ${opts.maxParallelism}`);
    const interval = opts.checkpointIntervalMs ?? 5000;
    if (!(interval > 0)) throw bad(`checkpointIntervalMs must be a positive number, not ${interval}`);
    this.opts = opts;
    this.key = opts.key ?? defaultKey;
  }

  /** Partitions this worker owns now (restored and processing). */
  get assigned(): number[] {
    return [...this.owned.values()].filter((o) => o.state === 'ready').map((o) => o.partition).sort((a, b) => a - b);
  }

  /** The store of an owned partition (for reads; writes belong in `process`), or null. */
  storeOf(partition: number): StateStore | null {
    const o = this.owned.get(partition);
    return o?.state === 'ready' ? o.store : null;
  }

  /** The store holding `key` if this worker owns its partition now (for reads, as Kafka Streams' interactive queries), or null. */
  storeFor(key: Key): StateStore | null {
    if (!this.probe) return null;
    return this.storeOf(partitionOfKeyGroup(this.probe.keyGroupOf(key), this.partitions, this.opts.maxParallelism));
  }

  /** Joins the group and starts consuming; resolves once running (partitions come with the first assignment). */
  async start(): Promise<void> {
    const { kafka, topic, groupId } = this.opts;
    const admin = kafka.admin();
    await admin.connect();
    try {
      const meta = await admin.fetchTopicMetadata({ topics: [topic] });
      this.partitions = meta.topics[0]?.partitions.length ?? 0;
    } finally {
      await admin.disconnect();
    }
    checkLayout(this.partitions, this.opts.maxParallelism);
    this.probe = await StateStore.create({ maxParallelism: this.opts.maxParallelism, backend: this.opts.store?.backend });
    const consumer = kafka.consumer({ ...this.opts.consumer, groupId });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      this.rebalance(new Set(e.payload.memberAssignment[topic] ?? []));
    });
    // kafkajs gives up on a batch that keeps failing (a misrouted key, a throwing `process`) and restarts the consumer.
    consumer.on(consumer.events.CRASH, (e) => this.emit({ type: 'error', partition: null, error: e.payload.error }));
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: (b) => this.batch(b) });
    const t = setInterval(() => this.checkpointAll(), this.opts.checkpointIntervalMs ?? 5000);
    (t as { unref?: () => void }).unref?.();
    this.timer = t;
  }

  /** Checkpoints every owned partition that changed now; resolves once stored and committed. */
  async checkpointNow(): Promise<void> {
    await Promise.all([...this.owned.values()].map((o) => this.checkpoint(o)));
  }

  /**
   * Hands every partition back: stops processing, takes a final checkpoint
   * of each (with its offset), commits, closes the storages (their locks go
   * to the next owner), then leaves the group. Calling it again returns the
   * same promise.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.timer) clearInterval(this.timer);
      const consumer = this.consumer;
      if (!consumer) return;
      const mine = [...this.owned.keys()];
      try {
        if (mine.length) consumer.pause([{ topic: this.opts.topic, partitions: mine }]);
      } catch {
        // kafkajs is restarting the consumer after a crash: nothing is being fetched anyway.
      }
      // Restores under way finish (or are dropped), then every partition is handed back.
      for (const o of this.owned.values()) if (o.state === 'restoring') o.cancelled = true;
      await Promise.all([...this.owned.values()].map((o) => o.done));
      await Promise.all([...this.owned.values()].map((o) => this.revoke(o)));
      await consumer.disconnect().catch((error: unknown) => this.emit({ type: 'error', partition: null, error }));
      this.probe?.close();
    })();
    return this.stopping;
  }

  private emit(e: WorkerEvent): void {
    try {
      this.opts.onEvent?.(e);
    } catch {
      // A listener's failure is not the worker's.
    }
  }

  /**
   * The group's new assignment: hand back what went, restore what came.
   * Each partition moves on its own: a restore that waits for the previous
   * owner's lock never holds up this worker's own hand-backs (which other
   * workers may be waiting for).
   */
  private rebalance(next: Set<number>): void {
    this.current = next;
    if (this.stopping) return;
    const consumer = this.consumer as Consumer;
    for (const o of this.owned.values()) {
      if (!next.has(o.partition)) this.revoke(o).catch((error: unknown) => this.emit({ type: 'error', partition: o.partition, error }));
      else if (o.cancelled) o.cancelled = false; // lost and given back while it was being restored: go on with it
    }
    const came = [...next].filter((p) => !this.owned.has(p));
    // Nothing of a new partition is processed before its state is restored and its offset sought.
    if (came.length) consumer.pause([{ topic: this.opts.topic, partitions: came }]);
    for (const p of came) this.take(p);
  }

  private take(partition: number): void {
    const o: Owned<S> = {
      partition, state: 'restoring', cancelled: false, storage: null, store: null, handles: null, next: 0n, dirty: false,
      queue: Promise.resolve(), storing: null, assignedAt: Date.now(), seenFirst: false, done: Promise.resolve(),
    };
    this.owned.set(partition, o);
    o.done = this.assign(o).catch((error: unknown) => {
      this.emit({ type: 'error', partition, error });
      // Try again in a while if it is still this worker's.
      const retry = setTimeout(() => {
        if (!this.stopping && this.current.has(partition) && !this.owned.has(partition)) {
          (this.consumer as Consumer).pause([{ topic: this.opts.topic, partitions: [partition] }]);
          this.take(partition);
        }
      }, RETRY_MS);
      (retry as { unref?: () => void }).unref?.();
    });
  }

  /** Drops a partition whose restore was cancelled or failed; its storage (and lock) goes. */
  private async drop(o: Owned<S>): Promise<void> {
    if (this.owned.get(o.partition) === o) this.owned.delete(o.partition);
    o.store?.close();
    await o.storage?.close().catch(() => undefined);
  }

  private async assign(o: Owned<S>): Promise<void> {
    const { topic, maxParallelism } = this.opts;
    const t0 = Date.now();
    const range = keyGroupRangeOf(o.partition, this.partitions, maxParallelism);
    const policy = this.opts.store?.checkpoints ?? { incremental: true };
    try {
      o.storage = await this.opts.storage(o.partition);
      if (o.cancelled) return await this.drop(o);
      let restored: StoredCheckpoint | null = null;
      let bytes = 0;
      try {
        o.store = await StateStore.restoreFrom(o.storage, {
          backend: this.opts.store?.backend,
          checkpoints: policy,
          onRestored: (r) => {
            restored = r.checkpoint;
            bytes = r.chain.reduce((n, c) => n + c.bytes, 0);
          },
        });
      } catch (e) {
        if (!(e instanceof StorageError && e.code === 'NO_CHECKPOINT')) throw e;
        o.store = await StateStore.create({ maxParallelism, keyGroupRange: range, checkpoints: policy, backend: this.opts.store?.backend });
      }
      const got = o.store.keyGroupRange;
      if (got.start !== range.start || got.end !== range.end || o.store.maxParallelism !== maxParallelism) {
        throw new KeystateError('KAFKA_LAYOUT', `partition ${o.partition}'s checkpoint holds key groups ${got.start}..${got.end} of ${o.store.maxParallelism}, but partition ${o.partition} of ${this.partitions} owns ${range.start}..${range.end} of ${maxParallelism}: the topic's partitions or maxParallelism changed`);
      }
      const at = (restored as StoredCheckpoint | null)?.metadata?.kafka as KafkaPosition | undefined;
      if (restored && (at?.topic !== topic || at.partition !== o.partition || !/^\d+$/.test(at.offset))) {
        throw new KeystateError('KAFKA_LAYOUT', `partition ${o.partition}'s latest checkpoint has no offset of ${topic}/${o.partition} in its metadata (${JSON.stringify(at)})`);
      }
      o.next = at ? BigInt(at.offset) : await this.earliest(o.partition);
      if (o.cancelled) return await this.drop(o);
      o.handles = this.opts.setup(o.store, o.partition);
      const consumer = this.consumer as Consumer;
      consumer.seek({ topic, partition: o.partition, offset: o.next.toString() });
      o.state = 'ready';
      consumer.resume([{ topic, partitions: [o.partition] }]);
      this.emit({ type: 'assigned', partition: o.partition, restoredFrom: (restored as StoredCheckpoint | null)?.id ?? null, bytes, offset: o.next.toString(), restoreMs: Date.now() - t0 });
    } catch (error) {
      await this.drop(o);
      throw error;
    }
  }

  /** The partition's first offset (no checkpoint yet: all of it is to be processed). */
  private async earliest(partition: number): Promise<bigint> {
    const admin = this.opts.kafka.admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets(this.opts.topic);
      return BigInt(offsets.find((x) => x.partition === partition)?.low ?? '0');
    } finally {
      await admin.disconnect();
    }
  }

  /** Hands a partition back: a final checkpoint with its offset, a commit, its storage closed (the lock goes to the next owner). */
  private async revoke(o: Owned<S>): Promise<void> {
    if (o.state === 'restoring') {
      o.cancelled = true; // assign() drops it as soon as it can
      return;
    }
    if (o.state === 'revoking') return;
    const t0 = Date.now();
    o.state = 'revoking';
    o.done = (async () => {
      try {
        await o.queue;
        await this.checkpoint(o);
      } finally {
        if (this.owned.get(o.partition) === o) this.owned.delete(o.partition);
        o.store?.close();
        await o.storage?.close().catch((error: unknown) => this.emit({ type: 'error', partition: o.partition, error }));
      }
      this.emit({ type: 'revoked', partition: o.partition, offset: o.next.toString(), ms: Date.now() - t0 });
      // Given back to this worker meanwhile: restore it again.
      if (!this.stopping && this.current.has(o.partition) && !this.owned.has(o.partition)) {
        (this.consumer as Consumer).pause([{ topic: this.opts.topic, partitions: [o.partition] }]);
        this.take(o.partition);
      }
    })();
    await o.done;
  }

  private checkpointAll(): void {
    for (const o of this.owned.values()) {
      if (o.state === 'ready' && o.dirty && !o.storing) {
        this.checkpoint(o).catch((error: unknown) => this.emit({ type: 'error', partition: o.partition, error }));
      }
    }
  }

  /**
   * Takes a checkpoint of `o` between two messages, stores it with the next
   * offset in its metadata, then commits that offset. The messages behind it
   * wait only until its snapshot is taken, not while it is stored.
   */
  private async checkpoint(o: Owned<S>): Promise<void> {
    while (o.storing) await o.storing;
    if (!o.dirty || !o.store || !o.storage) return;
    const { topic } = this.opts;
    const store = o.store;
    const storage = o.storage;
    const t0 = Date.now();
    let offset = '';
    let stored!: Promise<StoredCheckpoint>;
    const gate = o.queue.then(() => new Promise<void>((taken) => {
      stored = store.checkpointTo(storage, {
        // Called the moment the snapshot is taken: the state holds exactly the messages before `next`.
        metadata: () => {
          offset = o.next.toString();
          o.dirty = false;
          taken();
          return { kafka: { topic, partition: o.partition, offset } satisfies KafkaPosition };
        },
      });
      stored.catch(() => taken());
    }));
    o.queue = gate;
    const storing = (async () => {
      await gate;
      const cp = await stored;
      this.emit({ type: 'checkpoint', partition: o.partition, id: cp.id, kind: cp.kind, bytes: cp.bytes, offset, ms: Date.now() - t0 });
      // Durable with the state: now the group may know it too (lag tools). A failure here loses nothing.
      await this.consumer?.commitOffsets([{ topic, partition: o.partition, offset }]).catch(() => undefined);
    })();
    o.storing = storing.catch(() => undefined).finally(() => {
      o.storing = null;
    });
    try {
      await storing;
    } catch (e) {
      o.dirty = true;
      throw e;
    }
  }

  private async batch({ batch, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const o = this.owned.get(batch.partition);
    if (!o || o.state !== 'ready' || batch.topic !== this.opts.topic) return;
    const work = o.queue.then(async () => {
      let last = Date.now();
      for (const m of batch.messages) {
        if (!isRunning() || isStale() || o.state !== 'ready') return;
        const offset = BigInt(m.offset);
        if (offset < o.next) continue; // before the restored position: the state has it
        const store = o.store as StateStore;
        const key = this.key(m.key);
        try {
          store.setCurrentKey(key);
        } catch (e) {
          throw new KeystateError('KAFKA_LAYOUT', `message ${batch.topic}/${batch.partition}@${m.offset}: its key's key group is not one of partition ${batch.partition}'s (${(e as Error).message}); produce with keyGroupPartitioner({ maxParallelism: ${this.opts.maxParallelism} })`);
        }
        await this.opts.process(m, { key, state: o.handles as S, store, partition: o.partition });
        o.next = offset + 1n;
        o.dirty = true;
        if (!o.seenFirst) {
          o.seenFirst = true;
          this.emit({ type: 'first', partition: o.partition, offset: m.offset, sinceAssignedMs: Date.now() - o.assignedAt });
        }
        if (Date.now() - last > 1000) {
          last = Date.now();
          await heartbeat();
        }
      }
    });
    o.queue = work.catch(() => undefined);
    try {
      await work;
    } catch (error) {
      // Reported here; kafkajs retries the batch from its first unprocessed message, then restarts the consumer.
      this.emit({ type: 'error', partition: batch.partition, error });
      throw error;
    }
  }
}
