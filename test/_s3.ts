/**
 * A real S3 server for the Node suites: the Versity S3 Gateway (versitygw,
 * built into .tools/go and started on 127.0.0.1 over a temporary directory by
 * scripts/servers.mjs), one per suite file. `S3Gateway.start()` returns
 * null, with the reason printed, where it cannot be installed and this is not
 * Debian as root (the suite then skips; on Debian as root the scripts install
 * Go, so failing to is an error). Node only.
 */
import { CreateBucketCommand, ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { debianRoot, ensureVersitygw, S3_ACCESS_KEY, S3_SECRET_KEY, startVersitygw } from '../scripts/servers.mjs';

export const ACCESS_KEY = S3_ACCESS_KEY;
export const SECRET_KEY = S3_SECRET_KEY;

export class S3Gateway {
  private constructor(private readonly gw: Awaited<ReturnType<typeof startVersitygw>>) {}

  get endpoint(): string {
    return this.gw.endpoint;
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
    return new S3Gateway(await startVersitygw());
  }

  /** Starts the server again (same port and directory) after `kill`. */
  resume(): Promise<void> {
    return this.gw.resume();
  }

  /** Stops the server at once (SIGKILL): requests in flight fail. */
  kill(): Promise<void> {
    return this.gw.kill();
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

  stop(): Promise<void> {
    return this.gw.stop();
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
