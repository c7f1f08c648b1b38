// @keystate-test once: the workers are child processes on the default backend.
// keystate/kafka against a real Kafka (4.4.0, KRaft; test/_kafka.ts) with
// checkpoints on a real S3 server (versitygw; test/_s3.ts): the key-group
// layout over partitions, then the scenario of issue 14: keyed events flow
// into a 6-partition topic while workers of one consumer group come and go
// (2, then 3, then one killed with SIGKILL mid-checkpoint, one stopped, 1
// left); at the end every key's count equals the count of events produced
// for it (nothing lost, nothing counted twice), and every partition's last
// checkpoint holds the offset after its last message. Prints how long each
// rebalance took, from revocation (or the kill) to the first event processed
// with restored state, and the bytes restored. Skipped, with a notice, where
// Java or Go cannot be had. Node only.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { StateStore } from './_backend.js';
import { KeyedWorker, keyGroupPartitioner, keyGroupRangeOf, partitionOfKeyGroup, type WorkerEvent } from '../dist/kafka.js';
import { S3Storage } from '../dist/s3.js';
import { KafkaBroker } from './_kafka.js';
import { S3Gateway } from './_s3.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const K = suite('keystate/kafka');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

K('key groups over partitions: every key group belongs to exactly the partition whose range holds it', () => {
  for (const [partitions, maxParallelism] of [[1, 1], [3, 128], [6, 64], [7, 100], [128, 128]]) {
    let next = 0;
    for (let p = 0; p < partitions; p++) {
      const r = keyGroupRangeOf(p, partitions, maxParallelism);
      assert.is(r.start, next, `${partitions}/${maxParallelism}: ranges are contiguous`);
      assert.ok(r.end >= r.start);
      for (let kg = r.start; kg <= r.end; kg++) assert.is(partitionOfKeyGroup(kg, partitions, maxParallelism), p);
      next = r.end + 1;
    }
    assert.is(next, maxParallelism, 'and cover every key group');
  }
  assert.throws(() => keyGroupRangeOf(0, 10, 4), /maxParallelism >= partitions/);
});

const [broker, gw] = await Promise.all([KafkaBroker.start(), S3Gateway.start()]);

type Seen = { at: number; worker: string } & WorkerEvent;

/** A worker process (fixtures/kafka-worker.mjs) and what it reported. */
class Worker {
  readonly p: ChildProcess;
  readonly events: Seen[] = [];
  readonly exited: Promise<void>;
  private waiters: (() => void)[] = [];

  constructor(readonly name: string, args: string[]) {
    this.p = spawn(process.execPath, [path.join(here, 'fixtures', 'kafka-worker.mjs'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.exited = new Promise((r) => this.p.once('exit', () => r()));
    readline.createInterface({ input: this.p.stdout! }).on('line', (line) => {
      const e = JSON.parse(line) as WorkerEvent;
      this.events.push({ ...e, at: Date.now(), worker: name });
      if (e.type === 'error') console.log(`worker ${name}: ${String((e as { error: unknown }).error)}`);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Partitions it owns now, by its events. */
  owned(): Set<number> {
    const s = new Set<number>();
    for (const e of this.events) {
      if (e.type === 'assigned') s.add(e.partition);
      if (e.type === 'revoked') s.delete(e.partition);
    }
    return s;
  }

  async until(what: string, ok: () => boolean, ms = 60_000): Promise<void> {
    const t0 = Date.now();
    while (!ok()) {
      if (Date.now() - t0 > ms) throw new Error(`worker ${this.name}: ${what} not within ${ms} ms; events: ${JSON.stringify(this.events.slice(-8))}`);
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), sleep(200)]);
    }
  }
}

if (broker && gw) {
  const BUCKET = 'kafka';
  const TOPIC = 'events';
  const PARTITIONS = 6;
  const MAX_PARALLELISM = 64;
  const PREFIX = 'counts/';
  await gw.bucket(BUCKET);
  const kafka = new Kafka({ clientId: 'test', brokers: broker.brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS }], waitForLeaders: true });
  const workers: Worker[] = [];
  const start = (name: string, slowMs = 0) => {
    const w = new Worker(name, [broker.brokers.join(','), gw.endpoint, BUCKET, PREFIX, TOPIC, 'counters', String(slowMs)]);
    workers.push(w);
    return w;
  };
  const live = () => workers.filter((w) => w.p.exitCode === null && w.p.signalCode === null);
  /** The live workers between them own every partition, each once. */
  const settled = (ws: Worker[]) => () => {
    const all = ws.flatMap((w) => [...w.owned()]);
    return all.length === PARTITIONS && new Set(all).size === PARTITIONS && ws.every((w) => w.owned().size > 0);
  };
  const until = async (what: string, ok: () => boolean, ms = 60_000) => {
    const t0 = Date.now();
    while (!ok()) {
      if (Date.now() - t0 > ms) throw new Error(`${what} not within ${ms} ms; owned: ${live().map((w) => `${w.name}=${[...w.owned()]}`).join(' ')}`);
      await sleep(100);
    }
  };

  K('issue 14: workers join, are killed mid-checkpoint and leave while events flow; every count equals the events produced', async () => {
    const producer = kafka.producer({ createPartitioner: await keyGroupPartitioner({ maxParallelism: MAX_PARALLELISM }) });
    await producer.connect();
    const expected = new Map<string, number>();
    let produced = 0;
    let producing = true;
    const flow = (async () => {
      for (let round = 0; producing; round++) {
        const messages = Array.from({ length: 40 }, (_, i) => ({ key: `user-${(round * 7 + i * 13) % 300}`, value: String(round) }));
        for (const m of messages) expected.set(m.key, (expected.get(m.key) ?? 0) + 1);
        await producer.send({ topic: TOPIC, messages });
        produced += messages.length;
        await sleep(15);
      }
    })();

    const phases: { what: string; from: number; worker: string[] }[] = [];
    const a = start('A', 150); // slow checkpoints: killed in the middle of one
    const b = start('B');
    await until('A and B share the partitions', settled([a, b]));
    await sleep(1500);

    const c = start('C');
    phases.push({ what: 'C joins (2 -> 3 workers)', from: Date.now(), worker: ['C'] });
    await until('A, B and C share the partitions', settled([a, b, c]));
    await sleep(1500);

    // Kill A while one of its checkpoints is being uploaded.
    const uploads = a.events.filter((e) => (e.type as string) === 'uploading').length;
    await a.until('a checkpoint upload', () => a.events.filter((e) => (e.type as string) === 'uploading').length > uploads);
    const lostByA = [...a.owned()];
    a.p.kill('SIGKILL');
    phases.push({ what: `A killed mid-checkpoint (3 -> 2; its partitions ${lostByA})`, from: Date.now(), worker: ['B', 'C'] });
    await a.exited;
    await until('B and C take over A\'s partitions', settled([b, c]));
    await sleep(1500);

    b.p.kill('SIGTERM');
    phases.push({ what: 'B stops (2 -> 1)', from: Date.now(), worker: ['C'] });
    await b.exited;
    await until('C owns every partition', settled([c]));
    await sleep(1000);

    producing = false;
    await flow;
    await producer.disconnect();
    const ends = new Map((await admin.fetchTopicOffsets(TOPIC)).map((o) => [o.partition, o.high]));
    // C checkpoints every 300 ms: wait until each partition's checkpoint holds the end of the topic.
    const lastOffset = (p: number) => c.events.filter((e) => e.type === 'checkpoint' && e.partition === p).at(-1) as { offset: string } | undefined;
    await until('C has checkpointed every partition to its end', () => [...ends].every(([p, high]) => lastOffset(p)?.offset === high), 60_000);
    c.p.kill('SIGTERM');
    await c.exited;

    // The final state, from the checkpoints on S3 alone.
    const counted = new Map<string, number>();
    const client = gw.client();
    let bytes = 0;
    for (let p = 0; p < PARTITIONS; p++) {
      const storage = await S3Storage.open({ client, bucket: BUCKET, prefix: `${PREFIX}p${p}/`, readOnly: true });
      const listed = await storage.list();
      const last = listed.at(-1);
      assert.equal(last?.metadata, { kafka: { topic: TOPIC, partition: p, offset: ends.get(p) } }, `partition ${p}: the last checkpoint holds the offset after its last message`);
      const store = await StateStore.restoreFrom(storage);
      assert.equal(store.keyGroupRange, keyGroupRangeOf(p, PARTITIONS, MAX_PARALLELISM), `partition ${p}: its key groups`);
      const count = store.valueState<number>('count', { codec: 'number' });
      const snap = store.snapshot();
      for (const e of snap.valueState('count').entries()) {
        const key = e.key as string;
        assert.not.ok(counted.has(key), `${key} is counted in one partition only`);
        counted.set(key, e.value as number);
        assert.is(count.get(key), e.value);
      }
      snap.release();
      bytes += last?.bytes ?? 0;
      await storage.close();
    }
    assert.is([...expected.values()].reduce((x, y) => x + y, 0), produced);
    assert.is(counted.size, expected.size, 'every key has a count');
    for (const [key, n] of expected) assert.is(counted.get(key), n, `count of ${key}`);

    // How long each rebalance took: from revocation (or the kill) to the first event processed with restored state.
    const firsts = workers.flatMap((w) => w.events).filter((e) => e.type === 'first' || e.type === 'assigned');
    console.log(`kafka scenario: ${produced} events over ${expected.size} keys, ${PARTITIONS} partitions; final checkpoints ${bytes} bytes`);
    if (process.env.KAFKA_TIMELINE) {
      const t0 = workers[0].events[0]?.at ?? 0;
      for (const e of workers.flatMap((w) => w.events).sort((x, y) => x.at - y.at)) if (e.type !== 'checkpoint') console.log(`${e.at - t0} ${e.worker} ${JSON.stringify(e)}`);
      for (const ph of phases) console.log(`${ph.from - t0} phase ${ph.what}`);
    }
    for (const [i, ph] of phases.entries()) {
      const end = phases[i + 1]?.from ?? Infinity;
      const all = workers.flatMap((w) => w.events);
      const assigned = all.filter((e) => e.type === 'assigned' && e.at >= ph.from && e.at < end) as (Seen & { type: 'assigned' })[];
      const firstAfter = (e: Seen & { type: 'assigned' }) => all.find((f) => f.type === 'first' && f.worker === e.worker && f.partition === e.partition && f.at >= e.at);
      const took = assigned.map((e) => (firstAfter(e)?.at ?? NaN) - ph.from);
      const moved = assigned.reduce((n, e) => n + e.bytes, 0);
      console.log(`  ${ph.what}: ${assigned.length} partition restores, ${moved} bytes restored, each restore ${Math.min(...assigned.map((e) => e.restoreMs))}..${Math.max(...assigned.map((e) => e.restoreMs))} ms; first event processed with restored state ${Math.min(...took)}..${Math.max(...took)} ms after`);
    }
  });

  K('a message outside its partition\'s key groups (a producer without keyGroupPartitioner) is an error, never counted', async () => {
    const topic = 'misrouted';
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
    const probe = await StateStore.create({ maxParallelism: MAX_PARALLELISM });
    const key = Array.from({ length: 100 }, (_, i) => `k${i}`).find((k) => partitionOfKeyGroup(probe.keyGroupOf(k), 2, MAX_PARALLELISM) === 1) as string;
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ key, value: 'x', partition: 0 }] });
    await producer.disconnect();
    const errors: unknown[] = [];
    let counted = 0;
    const worker = new KeyedWorker({
      kafka, groupId: 'misrouted', topic, maxParallelism: MAX_PARALLELISM,
      storage: (p) => S3Storage.open({ client: gw.client(), bucket: BUCKET, prefix: `misrouted/p${p}/` }),
      setup: () => null,
      process: () => void counted++,
      consumer: { sessionTimeout: 3000, heartbeatInterval: 300, maxWaitTimeInMs: 200, retry: { retries: 0 } },
      onEvent: (e) => e.type === 'error' && errors.push(e.error),
    });
    await worker.start();
    try {
      await until('the error is reported', () => errors.length > 0, 30_000);
    } finally {
      await worker.stop();
    }
    const e = errors.find((x) => (x as { code?: string }).code === 'KAFKA_LAYOUT') as Error | undefined;
    assert.ok(e, `a KAFKA_LAYOUT error among ${errors.map(String)}`);
    assert.match(e.message, /keyGroupPartitioner/);
    assert.is(counted, 0);
  });

  K.after(async () => {
    for (const w of workers) if (w.p.exitCode === null && w.p.signalCode === null) w.p.kill('SIGKILL');
    await admin.disconnect().catch(() => undefined);
    await Promise.all([broker.stop(), gw.stop()]);
  });
} else {
  K.after(async () => {
    await Promise.all([broker?.stop(), gw?.stop()]);
  });
}

K.run();
