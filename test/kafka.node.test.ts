// @keystate-test once: the workers are child processes on the default backend.
// keystate/kafka against a real Kafka (4.4.0, KRaft; test/_kafka.ts) with
// checkpoints on a real S3 server (versitygw; test/_s3.ts), one of each for
// the file: the key-group layout over partitions; issue 14's scenario, as
// examples/kafka/run.mjs runs it (keyed events flow into a 6-partition topic
// while workers of one consumer group come and go: 2, then 3, then one
// killed with SIGKILL mid-checkpoint, one stopped, 1 left; at the end every
// key's count, read from the checkpoints on S3, equals the count of events
// produced for it, and every partition's last checkpoint holds the offset
// after its last message), with how long each rebalance took; and a
// misrouted message. Skipped, with a notice, where Java or Go cannot be had
// (elsewhere than Debian as root). Node only.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { StateStore } from './_backend.js';
import { KeyedWorker, keyGroupRangeOf, partitionOfKeyGroup } from '../dist/kafka.js';
import { S3Storage } from '../dist/s3.js';
import { KafkaBroker } from './_kafka.js';
import { ACCESS_KEY, S3Gateway, SECRET_KEY } from './_s3.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
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

if (broker && gw) {
  const BUCKET = 'kafka';
  const MAX_PARALLELISM = 64;
  await gw.bucket(BUCKET);
  const kafka = new Kafka({ clientId: 'test', brokers: broker.brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const until = async (what: string, ok: () => boolean, ms = 60_000) => {
    const t0 = Date.now();
    while (!ok()) {
      if (Date.now() - t0 > ms) throw new Error(`${what} not within ${ms} ms`);
      await sleep(100);
    }
  };

  K('issue 14: workers join, are killed mid-checkpoint and leave while events flow; every count equals the events produced (examples/kafka/run.mjs)', () => {
    const r = spawnSync(process.execPath, ['examples/kafka/run.mjs', '--json', '--brokers', broker.brokers.join(','), '--s3', gw.endpoint], {
      cwd: root, encoding: 'utf8', timeout: 240_000, env: { ...process.env, AWS_ACCESS_KEY_ID: ACCESS_KEY, AWS_SECRET_ACCESS_KEY: SECRET_KEY },
    });
    const line = r.stdout.trim().split('\n').at(-1) ?? '';
    assert.ok(line.startsWith('{'), `exit ${r.status}: ${r.stdout}\n${r.stderr}`);
    const out = JSON.parse(line);
    assert.equal(out.wrong, [], 'every count is exact');
    assert.equal(out.twice, [], 'each key is counted in one partition only');
    assert.is(out.counted, out.keys, 'every key has a count');
    assert.ok(out.produced > 5000, `${out.produced} events`);
    for (const p of out.partitions) {
      assert.equal(p.metadata, { kafka: { topic: 'events', partition: p.partition, offset: p.end } }, `partition ${p.partition}: the last checkpoint holds the offset after its last message`);
      assert.equal(p.keyGroupRange, keyGroupRangeOf(p.partition, 6, MAX_PARALLELISM), `partition ${p.partition}: its key groups`);
    }
    assert.is(out.ok, true);
    assert.is(r.status, 0);
    assert.is(out.rebalances.length, 3);
    console.log(`kafka scenario: ${out.produced} events over ${out.keys} keys, 6 partitions; A (killed) had partitions ${out.lost}`);
    for (const b of out.rebalances) {
      assert.ok(b.restores > 0 && Number.isFinite(b.firstEventMs[1]), `${b.what}: partitions moved and processed`);
      console.log(`  ${b.what}: ${b.restores} partition restores, ${b.bytes} bytes restored, each restore ${b.restoreMs.join('..')} ms; first event processed with restored state ${b.firstEventMs.join('..')} ms after`);
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
    await admin.disconnect().catch(() => undefined);
    await Promise.all([broker.stop(), gw.stop()]);
  });
} else {
  K.after(async () => {
    await Promise.all([broker?.stop(), gw?.stop()]);
  });
}

K.run();
