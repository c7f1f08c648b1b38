// @ts-check
// The real servers the S3 and Kafka tests run against, installed into the
// ignored tool cache (.tools/) and skipped when present:
//   versitygw  the Versity S3 Gateway (S3 over a POSIX directory), built with
//              `go install github.com/versity/versitygw/cmd/versitygw@v1.8.0`
//              into .tools/go/bin (about 90 s on two cores the first time);
//   kafka      Apache Kafka 4.4.0 (KRaft), its jars from Maven Central with
//              `mvn dependency:copy-dependencies` into .tools/kafka-4.4.0/jars
//              (45 jars, 43 MB), run with Java 17.
// On Debian as root a missing Go, Java or Maven is installed with apt-get;
// elsewhere `ensure*` returns { ok: false, reason } naming what is missing,
// and the suites skip with that notice.
// `startVersitygw` and `startKafka` run them on 127.0.0.1 over a temporary
// directory, for the suites (test/_s3.ts, test/_kafka.ts) and the examples.
// Usage: node scripts/servers.mjs [versitygw] [kafka]   (default: both)
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const VERSITYGW_VERSION = 'v1.8.0';
export const KAFKA_VERSION = '4.4.0';
export const VERSITYGW = path.join(root, '.tools', 'go', 'bin', 'versitygw');
export const KAFKA_JARS = path.join(root, '.tools', `kafka-${KAFKA_VERSION}`, 'jars');

/** @typedef {{ ok: true } | { ok: false, reason: string }} Ready */

/** Debian as root: where these scripts install what is missing, so a failure to is a test failure, not a skip. */
export const debianRoot = () => fs.existsSync('/etc/debian_version') && process.getuid?.() === 0 && fs.existsSync('/usr/bin/apt-get');

/** @param {string} cmd @param {string[]} args @param {import('node:child_process').SpawnSyncOptions} [opts] */
function run(cmd, args, opts = {}) {
  console.log(`$ ${[cmd, ...args].join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...opts });
  return r.status === 0;
}

/** @param {string} cmd @param {string[]} args */
const works = (cmd, args) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;

/** apt-get install `pkgs` (after an update if the first try fails); only on Debian as root. @param {string[]} pkgs */
function aptInstall(pkgs) {
  if (!debianRoot()) return false;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  return run('apt-get', ['install', '-y', ...pkgs], { env }) || (run('apt-get', ['update'], { env }) && run('apt-get', ['install', '-y', ...pkgs], { env }));
}

/** The go binary: on PATH, in /usr/local/go (the usual tarball place), or from Debian's golang-go. */
function goBinary() {
  for (const go of ['go', '/usr/local/go/bin/go', '/usr/lib/go/bin/go']) if (works(go, ['version'])) return go;
  return aptInstall(['golang-go']) && works('go', ['version']) ? 'go' : null;
}

/** @param {string} what @param {() => boolean} job */
function timed(what, job) {
  const t0 = performance.now();
  console.log(`servers: ${what}`);
  const ok = job();
  console.log(`servers: ${ok ? 'done' : 'FAILED'} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return ok;
}

/** @type {Ready | undefined} */
let gw;

/** versitygw in .tools/go/bin, built once. @returns {Ready} */
export function ensureVersitygw() {
  if (gw) return gw;
  // A binary from `go install` reports no version of its own (`Version: git`): a stamp beside it says which it is.
  const stamp = `${VERSITYGW}.version`;
  const version = fs.existsSync(stamp) ? fs.readFileSync(stamp, 'utf8').trim() : '';
  if (version === VERSITYGW_VERSION && fs.existsSync(VERSITYGW)) return (gw = { ok: true });
  const go = goBinary();
  if (!go) return (gw = { ok: false, reason: 'no Go toolchain (go) to build versitygw with; install Go >= 1.24 to run the S3 tests' });
  const env = { ...process.env, GOBIN: path.dirname(VERSITYGW), GOFLAGS: '-buildvcs=false', CGO_ENABLED: '0' };
  const ok = timed(`building versitygw ${VERSITYGW_VERSION} (found ${version || 'none'}; about 90 s)`, () =>
    run(go, ['install', `github.com/versity/versitygw/cmd/versitygw@${VERSITYGW_VERSION}`], { env }));
  if (ok) fs.writeFileSync(stamp, `${VERSITYGW_VERSION}\n`);
  return (gw = ok && fs.existsSync(VERSITYGW) ? { ok: true } : { ok: false, reason: `go install of versitygw ${VERSITYGW_VERSION} failed` });
}

/** @type {Ready | undefined} */
let kafka;

const POM = `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>keystate</groupId>
  <artifactId>kafka-jars</artifactId>
  <version>0</version>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>${KAFKA_VERSION}</version>
    </dependency>
  </dependencies>
</project>
`;

/** The java binary (17 or newer), installing Debian's openjdk-17 where missing. */
export function javaBinary() {
  if (works('java', ['-version'])) return 'java';
  return aptInstall(['openjdk-17-jre-headless']) && works('java', ['-version']) ? 'java' : null;
}

/** Kafka's jars in .tools/kafka-<v>/jars, fetched once. @returns {Ready} */
export function ensureKafka() {
  if (kafka) return kafka;
  if (!javaBinary()) return (kafka = { ok: false, reason: 'no Java (java) to run Kafka with; install Java 17 to run the Kafka tests' });
  const done = path.join(KAFKA_JARS, '.complete');
  if (fs.existsSync(done)) return (kafka = { ok: true });
  if (!works('mvn', ['-v']) && !aptInstall(['maven'])) return (kafka = { ok: false, reason: 'no Maven (mvn) to fetch the Kafka jars with; install Maven to run the Kafka tests' });
  const dir = path.dirname(KAFKA_JARS);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'pom.xml'), POM);
  fs.rmSync(KAFKA_JARS, { recursive: true, force: true });
  const ok = timed(`fetching Kafka ${KAFKA_VERSION} from Maven Central (about 45 jars, 43 MB)`, () =>
    run('mvn', ['-q', '-B', '-f', path.join(dir, 'pom.xml'), 'dependency:copy-dependencies', `-DoutputDirectory=${KAFKA_JARS}`, '-DincludeScope=runtime']));
  if (ok) fs.writeFileSync(done, `${new Date().toISOString()}\n`);
  return (kafka = ok ? { ok: true } : { ok: false, reason: `mvn dependency:copy-dependencies of org.apache.kafka:kafka_2.13:${KAFKA_VERSION} failed` });
}

/** A free TCP port on 127.0.0.1. @returns {Promise<number>} */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {net.AddressInfo} */ (srv.address());
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts connections on the port; rejects after `ms`. @param {number} port @param {number} ms @param {string} what */
export async function waitForPort(port, ms, what) {
  const t0 = Date.now();
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() - t0 > ms) throw new Error(`${what} did not open port ${port} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** @param {import('node:child_process').ChildProcess | null} p */
async function killProcess(p) {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGKILL');
  await exited;
}

/** The root credentials the gateway is started with. */
export const S3_ACCESS_KEY = 'keystate-test';
export const S3_SECRET_KEY = 'keystate-test-secret';

/**
 * Starts versitygw (installed by ensureVersitygw) over a fresh directory on
 * 127.0.0.1. `kill()` stops it at once (SIGKILL), `resume()` starts it again
 * on the same port and directory, `stop()` kills it and removes the directory.
 */
export async function startVersitygw() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keystate-s3-'));
  /** @type {import('node:child_process').ChildProcess | null} */
  let proc = null;
  const gw = {
    port,
    dir,
    endpoint: `http://127.0.0.1:${port}`,
    async resume() {
      const p = spawn(VERSITYGW, ['--port', `127.0.0.1:${port}`, 'posix', dir], {
        env: { ...process.env, ROOT_ACCESS_KEY: S3_ACCESS_KEY, ROOT_SECRET_KEY: S3_SECRET_KEY },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      p.stderr?.on('data', (d) => (err = (err + d).slice(-4000)));
      proc = p;
      await waitForPort(port, 15_000, 'versitygw').catch((/** @type {Error} */ e) => {
        throw new Error(`${e.message}\n${err}`);
      });
    },
    async kill() {
      const p = proc;
      proc = null;
      await killProcess(p);
    },
    async stop() {
      await gw.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  await gw.resume();
  return gw;
}

/**
 * Starts Kafka (installed by ensureKafka) in KRaft mode, broker and
 * controller in one JVM, over a fresh directory on 127.0.0.1, set up for
 * tests: one replica, groups that rebalance at once, session timeouts from 1 s.
 */
export async function startKafka() {
  const [port, controller] = [await freePort(), await freePort()];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keystate-kafka-'));
  const props = path.join(dir, 'server.properties');
  fs.writeFileSync(props, [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controller}`,
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controller}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    'inter.broker.listener.name=PLAINTEXT',
    `log.dirs=${path.join(dir, 'logs')}`,
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'group.min.session.timeout.ms=1000',
    'auto.create.topics.enable=false',
    '',
  ].join('\n'));
  const cp = `${KAFKA_JARS}/*`;
  const id = spawnSync('java', ['-cp', cp, 'kafka.tools.StorageTool', 'random-uuid'], { encoding: 'utf8' }).stdout.trim().split('\n').pop() ?? '';
  // With controller.quorum.voters set, format without --standalone.
  const fmt = spawnSync('java', ['-cp', cp, 'kafka.tools.StorageTool', 'format', '-t', id, '-c', props], { encoding: 'utf8' });
  if (fmt.status !== 0) throw new Error(`kafka StorageTool format failed: ${fmt.stderr}`);
  const p = spawn('java', ['-Xmx512m', '-Xms128m', '-cp', cp, 'kafka.Kafka', props], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr?.on('data', (d) => (err = (err + d).slice(-4000)));
  await waitForPort(port, 60_000, 'kafka').catch(async (/** @type {Error} */ e) => {
    await killProcess(p);
    throw new Error(`${e.message}\n${err}`);
  });
  return {
    port,
    brokers: [`127.0.0.1:${port}`],
    async stop() {
      await killProcess(p);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const which = process.argv.slice(2).length ? process.argv.slice(2) : ['versitygw', 'kafka'];
  let failed = false;
  for (const w of which) {
    const r = w === 'versitygw' ? ensureVersitygw() : w === 'kafka' ? ensureKafka() : { ok: false, reason: `unknown server ${w}` };
    console.log(`${w}: ${r.ok ? 'ready' : r.reason}`);
    failed ||= !r.ok;
  }
  process.exit(failed ? 1 : 0);
}
