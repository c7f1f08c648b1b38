/**
 * A real Kafka for the Node suites: Apache Kafka 4.4.0 in KRaft mode (one
 * process, broker and controller), its jars fetched by scripts/servers.mjs
 * into .tools/, run with Java 17 over a temporary directory on 127.0.0.1;
 * one per suite file. `KafkaBroker.start()` returns null, with the reason
 * printed, where Java or the jars cannot be had (the suite then skips).
 * Node only.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { debianRoot, ensureKafka, KAFKA_JARS } from '../scripts/servers.mjs';
import { freePort, waitForPort } from './_s3.js';

export class KafkaBroker {
  private proc: ChildProcess | null = null;
  private constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  get brokers(): string[] {
    return [`127.0.0.1:${this.port}`];
  }

  static async start(): Promise<KafkaBroker | null> {
    const ready = ensureKafka();
    if (!ready.ok) {
      // On Debian as root the project's scripts install what is missing: failing to is a failure.
      if (debianRoot()) throw new Error(`cannot run the Kafka tests: ${ready.reason}`);
      console.log(`Kafka tests SKIPPED: ${ready.reason}`);
      return null;
    }
    const [port, controller] = [await freePort(), await freePort()];
    const b = new KafkaBroker(port, fs.mkdtempSync(path.join(os.tmpdir(), 'keystate-kafka-')));
    const props = path.join(b.dir, 'server.properties');
    fs.writeFileSync(props, [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controller}`,
      `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controller}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
      'controller.listener.names=CONTROLLER',
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      'inter.broker.listener.name=PLAINTEXT',
      `log.dirs=${path.join(b.dir, 'logs')}`,
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=1',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      // Tests: a group rebalances at once, and a killed member is noticed within seconds.
      'group.initial.rebalance.delay.ms=0',
      'group.min.session.timeout.ms=1000',
      'auto.create.topics.enable=false',
      '',
    ].join('\n'));
    const cp = `${KAFKA_JARS}/*`;
    const id = spawnSync('java', ['-cp', cp, 'kafka.tools.StorageTool', 'random-uuid'], { encoding: 'utf8' }).stdout.trim().split('\n').pop() ?? '';
    const fmt = spawnSync('java', ['-cp', cp, 'kafka.tools.StorageTool', 'format', '-t', id, '-c', props], { encoding: 'utf8' });
    if (fmt.status !== 0) throw new Error(`kafka StorageTool format failed: ${fmt.stderr}`);
    const p = spawn('java', ['-Xmx512m', '-Xms128m', '-cp', cp, 'kafka.Kafka', props], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr?.on('data', (d) => (err = (err + d).slice(-4000)));
    b.proc = p;
    await waitForPort(port, 60_000, 'kafka').catch((e: Error) => {
      p.kill('SIGKILL');
      throw new Error(`${e.message}\n${err}`);
    });
    return b;
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (p && p.exitCode === null) {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await exited;
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
