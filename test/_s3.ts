/**
 * A real S3 server for the Node suites: the Versity S3 Gateway (versitygw,
 * built into .tools/go by scripts/servers.mjs) serving a temporary directory
 * on 127.0.0.1, one per suite file. `S3Gateway.start()` returns null, with
 * the reason printed, where it cannot be installed and this is not Debian as root
 * (the suite then skips; on Debian as root the scripts install Go, so failing to is an error).
 * Node only.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { debianRoot, ensureVersitygw, VERSITYGW } from '../scripts/servers.mjs';

export const ACCESS_KEY = 'keystate-test';
export const SECRET_KEY = 'keystate-test-secret';

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts connections on the port (or rejects after `ms`). */
export async function waitForPort(port: number, ms: number, what: string): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() - t0 > ms) throw new Error(`${what} did not open port ${port} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class S3Gateway {
  private proc: ChildProcess | null = null;
  private constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Installs (once) and starts versitygw over a fresh directory; null if it cannot be had here. */
  static async start(): Promise<S3Gateway | null> {
    const ready = ensureVersitygw();
    if (!ready.ok) {
      // On Debian as root the project's scripts install what is missing: failing to is a failure.
      if (debianRoot()) throw new Error(`cannot run the S3 tests: ${ready.reason}`);
      console.log(`S3 tests SKIPPED: ${ready.reason}`);
      return null;
    }
    const gw = new S3Gateway(await freePort(), fs.mkdtempSync(path.join(os.tmpdir(), 'keystate-s3-')));
    await gw.resume();
    return gw;
  }

  /** Starts the server again (same port and directory) after `kill`. */
  async resume(): Promise<void> {
    const p = spawn(VERSITYGW, ['--port', `127.0.0.1:${this.port}`, 'posix', this.dir], {
      env: { ...process.env, ROOT_ACCESS_KEY: ACCESS_KEY, ROOT_SECRET_KEY: SECRET_KEY },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    p.stderr?.on('data', (d) => (err += d));
    this.proc = p;
    await waitForPort(this.port, 15_000, 'versitygw').catch((e: Error) => {
      throw new Error(`${e.message}\n${err}`);
    });
  }

  /** Stops the server at once (SIGKILL): requests in flight fail. */
  async kill(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  }

  /** A client for this server. `maxAttempts` 2: a test of failures should not wait through many retries. */
  client(opts: { maxAttempts?: number } = {}): S3Client {
    return new S3Client({
      endpoint: this.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
      maxAttempts: opts.maxAttempts ?? 2,
    });
  }

  async bucket(name: string): Promise<void> {
    await this.client().send(new CreateBucketCommand({ Bucket: name }));
  }

  async stop(): Promise<void> {
    await this.kill();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** What a prefix holds, straight from S3: object names (and sizes) directly under it, and incomplete uploads. */
export async function s3Contents(client: S3Client, bucket: string, prefix: string): Promise<{ objects: Map<string, number>; uploads: string[] }> {
  const objects = new Map<string, number>();
  let token: string | undefined;
  do {
    const r = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }));
    for (const o of r.Contents ?? []) objects.set((o.Key as string).slice(prefix.length), o.Size ?? 0);
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  const u = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  const uploads = (u.Uploads ?? []).map((x) => (x.Key as string).slice(prefix.length)).filter((n) => !n.includes('/'));
  return { objects, uploads };
}
