#!/usr/bin/env node
// @ts-check
// Issue 14's scenario, runnable: keyed events flow into a 6-partition topic
// while workers of one consumer group (examples/kafka/worker.mjs, each a
// process) come and go: 2 workers, then 3, then one killed with SIGKILL in
// the middle of a checkpoint, then one stopped, 1 left. Checkpoints go to
// S3, one prefix per partition. At the end the counts are read back from
// the checkpoints on S3 alone and compared, key by key, with the events
// produced; it reports how long each rebalance took (from revocation, or
// the kill, to the first event processed with restored state) and the bytes
// restored. Exit code 0 when every count is exact.
//
// Usage: node examples/kafka/run.mjs [--json] [--brokers host:port --s3 http://host:port]
// Without --brokers/--s3 it installs (once, into .tools/) and starts Kafka
// 4.4.0 and the Versity S3 Gateway on 127.0.0.1 (scripts/servers.mjs).
// --json prints one JSON line with the results (test/kafka.node.test.ts).
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { Kafka, logLevel } from 'kafkajs';
import { StateStore } from '../../dist/index.js';
import { keyGroupPartitioner } from '../../dist/kafka.js';
import { S3Storage } from '../../dist/s3.js';
import { ensureKafka, ensureVersitygw, S3_ACCESS_KEY, S3_SECRET_KEY, startKafka, startVersitygw } from '../../scripts/servers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({ options: { json: { type: 'boolean', default: false }, brokers: { type: 'string' }, s3: { type: 'string' } } });
const say = (/** @type {string} */ s) => args.json || console.log(s);
const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));

const TOPIC = 'events';
const PARTITIONS = 6;
const MAX_PARALLELISM = 64;
const BUCKET = 'kafka-example';
const PREFIX = `counts-${Date.now()}/`;
const GROUP = `counters-${Date.now()}`;

/** @type {(() => Promise<void>)[]} */
const cleanup = [];
let brokers = args.brokers?.split(',');
let endpoint = args.s3;
if (!brokers || !endpoint) {
  for (const [what, ensure] of /** @type {const} */ ([['versitygw', ensureVersitygw], ['kafka', ensureKafka]])) {
    const r = ensure();
    if (!r.ok) throw new Error(`${what}: ${r.reason}`);
  }
  const [k, gw] = await Promise.all([startKafka(), startVersitygw()]);
  cleanup.push(() => k.stop(), () => gw.stop());
  brokers = k.brokers;
  endpoint = gw.endpoint;
  say(`Kafka on ${brokers}, S3 on ${endpoint}`);
}
// The workers and this script find the S3 credentials where the SDK looks for them.
process.env.AWS_ACCESS_KEY_ID ??= S3_ACCESS_KEY;
process.env.AWS_SECRET_ACCESS_KEY ??= S3_SECRET_KEY;
const s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true });
await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch((e) => {
  if (!['BucketAlreadyOwnedByYou', 'BucketAlreadyExists'].includes(e.name)) throw e;
});
const kafka = new Kafka({ clientId: 'example', brokers, logLevel: logLevel.NOTHING });
const admin = kafka.admin();
await admin.connect();
await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS }], waitForLeaders: true });

/** A worker process and what it reported (each event with the time it arrived). */
class Worker {
  /** @param {string} name @param {number} slowMs */
  constructor(name, slowMs = 0) {
    this.name = name;
    /** @type {({ at: number, worker: string, type: string, partition?: number } & Record<string, any>)[]} */
    this.events = [];
    this.p = spawn(process.execPath, [path.join(here, 'worker.mjs'), brokers.join(','), endpoint, BUCKET, PREFIX, TOPIC, GROUP, String(slowMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.exited = new Promise((r) => this.p.once('exit', r));
    readline.createInterface({ input: /** @type {import('node:stream').Readable} */ (this.p.stdout) }).on('line', (line) => {
      const e = JSON.parse(line);
      this.events.push({ ...e, at: Date.now(), worker: name });
      if (e.type === 'error') console.error(`worker ${name}: ${e.error}`);
    });
  }

  /** Partitions it owns now, by its events. */
  owned() {
    const s = new Set();
    for (const e of this.events) {
      if (e.type === 'assigned') s.add(e.partition);
      if (e.type === 'revoked') s.delete(e.partition);
    }
    return s;
  }
}

/** @type {Worker[]} */
const workers = [];
const start = (/** @type {string} */ name, slowMs = 0) => {
  const w = new Worker(name, slowMs);
  workers.push(w);
  return w;
};
/** Waits until `ok()`, or fails naming `what`. @param {string} what @param {() => boolean} ok */
async function until(what, ok, ms = 60_000) {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms (owned: ${workers.map((w) => `${w.name}=${[...w.owned()]}`).join(' ')})`);
    await sleep(100);
  }
}
/** The workers between them own every partition, each once, and each owns some. @param {Worker[]} ws */
const settled = (ws) => () => {
  const all = ws.flatMap((w) => [...w.owned()]);
  return all.length === PARTITIONS && new Set(all).size === PARTITIONS && ws.every((w) => w.owned().size > 0);
};

try {
  // Events: 40 every 15 ms over 300 keys, each to the partition that owns its key's key group.
  const producer = kafka.producer({ createPartitioner: await keyGroupPartitioner({ maxParallelism: MAX_PARALLELISM }) });
  await producer.connect();
  /** @type {Map<string, number>} */
  const expected = new Map();
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

  /** @type {{ what: string, from: number }[]} */
  const phases = [];
  const a = start('A', 150); // slow checkpoints: it is killed in the middle of one
  const b = start('B');
  await until('A and B share the partitions', settled([a, b]));
  say(`2 workers: A owns ${[...a.owned()]}, B owns ${[...b.owned()]}`);
  await sleep(1500);

  phases.push({ what: 'a third worker joins (2 -> 3)', from: Date.now() });
  const c = start('C');
  await until('A, B and C share the partitions', settled([a, b, c]));
  say(`3 workers: A owns ${[...a.owned()]}, B owns ${[...b.owned()]}, C owns ${[...c.owned()]}`);
  await sleep(1500);

  const uploads = () => a.events.filter((e) => e.type === 'uploading').length;
  const before = uploads();
  await until('a checkpoint upload of A', () => uploads() > before);
  phases.push({ what: 'a worker killed with SIGKILL mid-checkpoint (3 -> 2)', from: Date.now() });
  const lost = [...a.owned()];
  a.p.kill('SIGKILL');
  await a.exited;
  await until('B and C take over A\'s partitions', settled([b, c]));
  say(`A killed mid-checkpoint (it had ${lost}): B owns ${[...b.owned()]}, C owns ${[...c.owned()]}`);
  await sleep(1500);

  phases.push({ what: 'a worker stopped (2 -> 1)', from: Date.now() });
  b.p.kill('SIGTERM');
  await b.exited;
  await until('C owns every partition', settled([c]));
  say(`B stopped: C owns ${[...c.owned()]}`);
  await sleep(1000);

  producing = false;
  await flow;
  await producer.disconnect();
  const ends = new Map((await admin.fetchTopicOffsets(TOPIC)).map((o) => [o.partition, o.high]));
  // C checkpoints every 300 ms: wait until each partition's checkpoint holds the end of the topic.
  const lastOffset = (/** @type {number} */ p) => c.events.filter((e) => e.type === 'checkpoint' && e.partition === p).at(-1)?.offset;
  await until('C has checkpointed every partition to its end', () => [...ends].every(([p, high]) => lastOffset(p) === high));
  c.p.kill('SIGTERM');
  await c.exited;
  say(`${produced} events produced; C stopped`);

  // The final state, from the checkpoints on S3 alone.
  /** @type {Map<string, number>} */
  const counted = new Map();
  const twice = [];
  const partitions = [];
  for (let p = 0; p < PARTITIONS; p++) {
    const storage = await S3Storage.open({ client: s3, bucket: BUCKET, prefix: `${PREFIX}p${p}/`, readOnly: true });
    const last = (await storage.list()).at(-1);
    const store = await StateStore.restoreFrom(storage);
    const snap = store.snapshot();
    for (const e of snap.valueState('count').entries()) {
      if (counted.has(/** @type {string} */ (e.key))) twice.push(e.key);
      counted.set(/** @type {string} */ (e.key), /** @type {number} */ (e.value));
    }
    snap.release();
    partitions.push({ partition: p, keyGroupRange: store.keyGroupRange, metadata: last?.metadata, end: ends.get(p), bytes: last?.bytes });
    store.close();
    await storage.close();
  }
  const wrong = [...expected].filter(([key, n]) => counted.get(key) !== n).map(([key, n]) => ({ key, expected: n, counted: counted.get(key) ?? 0 }));

  // Each rebalance: from its start (the join, the kill, the stop) to the first event processed with restored state.
  const all = workers.flatMap((w) => w.events);
  const rebalances = phases.map((ph, i) => {
    const end = phases[i + 1]?.from ?? Infinity;
    const assigned = all.filter((e) => e.type === 'assigned' && e.at >= ph.from && e.at < end);
    const took = assigned.map((e) => (all.find((f) => f.type === 'first' && f.worker === e.worker && f.partition === e.partition && f.at >= e.at)?.at ?? NaN) - ph.from);
    return {
      what: ph.what,
      restores: assigned.length,
      bytes: assigned.reduce((n, e) => n + e.bytes, 0),
      restoreMs: [Math.min(...assigned.map((e) => e.restoreMs)), Math.max(...assigned.map((e) => e.restoreMs))],
      firstEventMs: [Math.min(...took), Math.max(...took)],
    };
  });
  const ok = wrong.length === 0 && twice.length === 0 && counted.size === expected.size && partitions.every((p) => p.metadata?.kafka?.offset === p.end);
  if (args.json) {
    console.log(JSON.stringify({ ok, produced, keys: expected.size, counted: counted.size, wrong: wrong.slice(0, 10), twice, partitions, rebalances, lost }));
  } else {
    for (const r of rebalances) say(`${r.what}: ${r.restores} partitions restored (${r.bytes} bytes), restore ${r.restoreMs.join('..')} ms, first event with restored state ${r.firstEventMs.join('..')} ms after`);
    say(ok ? `every one of ${expected.size} counts equals the events produced for its key (${produced} events): nothing lost, nothing counted twice` : `WRONG: ${JSON.stringify({ wrong: wrong.slice(0, 10), twice })}`);
  }
  process.exitCode = ok ? 0 : 1;
} finally {
  for (const w of workers) if (w.p.exitCode === null && w.p.signalCode === null) w.p.kill('SIGKILL');
  await admin.disconnect().catch(() => undefined);
  for (const f of cleanup) await f().catch(() => undefined);
}
