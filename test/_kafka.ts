/**
 * A real Kafka for the Node suites: Apache Kafka 4.4.0 in KRaft mode, its
 * jars fetched into .tools/ and started on 127.0.0.1 with Java 17 by
 * scripts/servers.mjs, one per suite file. `KafkaBroker.start()` returns
 * null, with the reason printed, where Java or the jars cannot be had and
 * this is not Debian as root (the suite then skips). Node only.
 */
import { debianRoot, ensureKafka, startKafka } from '../scripts/servers.mjs';

export class KafkaBroker {
  private constructor(private readonly k: Awaited<ReturnType<typeof startKafka>>) {}

  get brokers(): string[] {
    return this.k.brokers;
  }

  static async start(): Promise<KafkaBroker | null> {
    const ready = ensureKafka();
    if (!ready.ok) {
      // On Debian as root the project's scripts install what is missing: failing to is a failure.
      if (debianRoot()) throw new Error(`cannot run the Kafka tests: ${ready.reason}`);
      console.log(`Kafka tests SKIPPED: ${ready.reason}`);
      return null;
    }
    return new KafkaBroker(await startKafka());
  }

  stop(): Promise<void> {
    return this.k.stop();
  }
}
