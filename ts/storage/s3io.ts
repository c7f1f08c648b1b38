/**
 * The S3 requests S3Storage makes, through `@aws-sdk/client-s3`
 * (environment-neutral: the SDK has a browser build). Keys are full object
 * keys; errors are the SDK's, classified by `isPrecondition` / `isNotFound`.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';

const status = (e: unknown) => (e as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
const nameOf = (e: unknown) => (e as { name?: string } | null)?.name;

/**
 * A conditional write or delete that did not hold: 412 (`If-None-Match: *`
 * on an existing object, a wrong `If-Match`), or AWS's 409
 * ConditionalRequestConflict (another conditional write to the key raced it).
 */
export const isPrecondition = (e: unknown) =>
  status(e) === 412 || status(e) === 409 || nameOf(e) === 'PreconditionFailed' || nameOf(e) === 'ConditionalRequestConflict';

export const isNotFound = (e: unknown) => status(e) === 404 || nameOf(e) === 'NoSuchKey' || nameOf(e) === 'NotFound';

/** A small object as text, with what the conditions and the lease need. */
export interface TextObject {
  text: string;
  etag: string;
  /** The object's Last-Modified (ms since the epoch; whole seconds). */
  lastModified: number;
  /** The server's clock when it answered (its Date header), or this machine's if it sent none. */
  serverNow: number;
}

export class S3Io {
  constructor(
    readonly client: S3Client,
    readonly bucket: string,
  ) {}

  /** The object `key` as text, or null if there is none. */
  async getText(key: string): Promise<TextObject | null> {
    const cmd = new GetObjectCommand({ Bucket: this.bucket, Key: key });
    let date: string | undefined;
    // The server's clock, from this one response (a command's own middleware leaves the client as it is).
    cmd.middlewareStack.add(
      (next) => async (args) => {
        const out = await next(args);
        date = (out.response as { headers?: Record<string, string> } | undefined)?.headers?.date;
        return out;
      },
      { step: 'deserialize', name: 'keystateServerDate' },
    );
    try {
      const r = await this.client.send(cmd);
      const text = (await r.Body?.transformToString('utf-8')) ?? '';
      const serverNow = date ? Date.parse(date) : NaN;
      return { text, etag: r.ETag ?? '', lastModified: r.LastModified?.getTime() ?? 0, serverNow: Number.isFinite(serverNow) ? serverNow : Date.now() };
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  /** Writes `text` to `key` if `cond` holds (`ifNoneMatch: true`: only if absent); returns the new ETag. */
  async putText(key: string, text: string, cond: { ifMatch?: string; ifNoneMatch?: boolean }, contentType = 'application/json'): Promise<string> {
    const r = await this.client.send(new PutObjectCommand({
      Bucket: this.bucket,
      Key: key,
      Body: new TextEncoder().encode(text),
      ContentType: contentType,
      ...(cond.ifMatch !== undefined ? { IfMatch: cond.ifMatch } : {}),
      ...(cond.ifNoneMatch ? { IfNoneMatch: '*' } : {}),
    }));
    return r.ETag ?? '';
  }

  async putBytes(key: string, body: Uint8Array): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: 'application/octet-stream' }));
  }

  /** Deletes `key` (if `ifMatch`, only while its ETag is that). Deleting what is not there succeeds. */
  async delete(key: string, ifMatch?: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key, ...(ifMatch !== undefined ? { IfMatch: ifMatch } : {}) }));
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  /** The object's bytes as a stream. */
  async getStream(key: string): Promise<ReadableStream<Uint8Array>> {
    const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    if (!r.Body) throw new Error(`GetObject ${key} returned no body`);
    return r.Body.transformToWebStream() as ReadableStream<Uint8Array>;
  }

  async createUpload(key: string): Promise<string> {
    const r = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, ContentType: 'application/octet-stream' }));
    if (!r.UploadId) throw new Error(`CreateMultipartUpload ${key} returned no upload id`);
    return r.UploadId;
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, body: Uint8Array): Promise<string> {
    const r = await this.client.send(new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: body }));
    if (!r.ETag) throw new Error(`UploadPart ${partNumber} of ${key} returned no ETag`);
    return r.ETag;
  }

  async completeUpload(key: string, uploadId: string, etags: string[]): Promise<void> {
    await this.client.send(new CompleteMultipartUploadCommand({
      Bucket: this.bucket,
      Key: key,
      UploadId: uploadId,
      MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
    }));
  }

  /** Aborts an upload; one that is gone already counts as aborted. */
  async abortUpload(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
    } catch (e) {
      if (!isNotFound(e) && nameOf(e) !== 'NoSuchUpload') throw e;
    }
  }

  /** Keys directly under `prefix` (not in deeper "folders"), without the prefix. */
  async listNames(prefix: string): Promise<string[]> {
    const names: string[] = [];
    let token: string | undefined;
    do {
      const r = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }));
      for (const o of r.Contents ?? []) if (o.Key) names.push(o.Key.slice(prefix.length));
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return names;
  }

  /** Incomplete multipart uploads of keys directly under `prefix`: name (without the prefix) and upload id. */
  async listUploads(prefix: string): Promise<{ name: string; uploadId: string }[]> {
    const out: { name: string; uploadId: string }[] = [];
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    for (;;) {
      const r = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: idMarker }));
      for (const u of r.Uploads ?? []) {
        const name = u.Key?.slice(prefix.length) ?? '';
        if (u.UploadId && name && !name.includes('/')) out.push({ name, uploadId: u.UploadId });
      }
      if (!r.IsTruncated) return out;
      keyMarker = r.NextKeyMarker;
      idMarker = r.NextUploadIdMarker;
    }
  }
}
