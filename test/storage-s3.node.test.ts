// @keystate-test once: S3Storage moves bytes only, the same on every backend (the contract runs on both in storage.node.test.ts).
// S3Storage against a real S3 server, the Versity S3 Gateway on 127.0.0.1
// (test/_s3.ts; one per file): the storage contract DirectoryStorage passes
// (test/_storagecontract.ts), then what only S3 has: multipart uploads with
// progress (and the store/restore throughput), an upload aborted or killed
// midway (SIGKILL: its incomplete upload and lease are cleaned up by the next
// writer), the server restarted mid-checkpoint, two writers on one prefix
// (STORAGE_LOCKED at open, waiting, readOnly beside a writer, and a writer
// cut off while another took over, whose commit fails instead of erasing the
// other's checkpoints), and that keystate/s3 imports nothing of Node.
// Skipped, with a notice, where versitygw cannot be installed. Node only.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CreateMultipartUploadCommand, DeleteObjectCommand, GetObjectCommand, PutObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError, KeystateError, StateStore, StorageError } from './_backend.js';
import { S3Storage, type S3StorageOptions, type S3UploadProgress } from '../dist/s3.js';
import { declare, Model, randomOps, assertStore } from './_model.js';
import { S3Gateway, s3Contents } from './_s3.js';
import { storageContract, type StorageKind } from './_storagecontract.js';
import { rejectsKs, rng } from './_util.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BUCKET = 'keystate';
const gw = await S3Gateway.start();
const S = suite('S3Storage');

if (gw) {
  await gw.bucket(BUCKET);
  const client = gw.client();
  let prefixes = 0;
  const fresh = () => `t${++prefixes}/`;
  const open = (prefix: string, opts: Partial<S3StorageOptions> = {}) => S3Storage.open({ client, bucket: BUCKET, prefix, ...opts });
  const text = async (key: string) => (await (await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body?.transformToByteArray()) as Uint8Array;
  const manifest = async (prefix: string) => JSON.parse(new TextDecoder().decode(await text(`${prefix}MANIFEST`)));
  const LEFTOVER = 'ckpt-0000000003-3.ks';

  const s3: StorageKind = {
    name: 'S3Storage',
    fresh,
    open: (prefix, opts) => open(prefix, opts),
    listing: async (prefix) => (await manifest(prefix)).checkpoints,
    async contents(prefix) {
      const { objects, uploads } = await s3Contents(client, BUCKET, prefix);
      const stored = new Map<string, number>();
      const other = uploads.map((u) => `upload of ${u}`);
      for (const [name, size] of objects) {
        if (/^ckpt-\d+-\d+\.ks$/.test(name)) stored.set(name, size);
        else if (name !== 'MANIFEST' && name !== 'LOCK') other.push(name);
      }
      return { stored, other: other.sort() };
    },
    readRaw: (prefix, name) => text(prefix + name),
    async writeRaw(prefix, name, data) {
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: prefix + name, Body: typeof data === 'string' ? data : new Uint8Array(data) }));
    },
    async removeRaw(prefix, name) {
      await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: prefix + name }));
    },
    async plantLeftovers(prefix) {
      const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: prefix + LEFTOVER }));
      await client.send(new UploadPartCommand({ Bucket: BUCKET, Key: prefix + LEFTOVER, UploadId, PartNumber: 1, Body: new Uint8Array(1000) }));
      return [LEFTOVER];
    },
    leftoversRemain: async (prefix) => (await s3Contents(client, BUCKET, prefix)).uploads.includes(LEFTOVER),
  };

  storageContract(S, s3);

  /** The prefix holds MANIFEST, LOCK while a writer has it, and the listed checkpoints, whole; no upload. */
  async function assertTidy(prefix: string, what: string) {
    const listed = (await manifest(prefix)).checkpoints as { name: string; bytes: number }[];
    const { objects, uploads } = await s3Contents(client, BUCKET, prefix);
    assert.equal(uploads, [], `${what}: no incomplete upload`);
    assert.equal([...objects.keys()].filter((n) => n !== 'MANIFEST' && n !== 'LOCK').sort(), listed.map((c) => c.name).sort(), `${what}: the listed checkpoints, nothing else`);
    for (const c of listed) assert.is(objects.get(c.name), c.bytes, `${what}: ${c.name} is whole`);
    return listed;
  }

  /** A store of about `mib` MiB of incompressible-enough values. */
  async function bigStore(mib: number, seed = 1) {
    const store = await StateStore.create({ checkpoints: { incremental: true, maxIncrementals: 10, maxChainRatio: 0 } });
    const v = store.valueState<string>('big', { codec: 'string' });
    const r = rng(seed);
    const n = mib * 1024;
    const piece = () => Math.floor(r() * 2 ** 32).toString(36).padStart(7, '0');
    for (let i = 0; i < n; i++) v.set(i, Array.from({ length: 143 }, piece).join('').slice(0, 1000));
    return { store, v };
  }

  S('a large checkpoint goes up as a multipart upload with progress, and restores exactly; throughput', async () => {
    const prefix = fresh();
    const events: S3UploadProgress[] = [];
    const storage = await open(prefix, { partSize: 5 * 1024 * 1024, onUpload: (p) => events.push(p) });
    const { store, v } = await bigStore(24);
    let t0 = performance.now();
    const stored = await store.checkpointTo(storage, { chunkSize: 1024 * 1024 });
    const storeMs = performance.now() - t0;
    assert.ok(stored.bytes > 20 * 1024 * 1024, `${stored.bytes} bytes`);
    const parts = Math.ceil(stored.bytes / (5 * 1024 * 1024));
    const last = events[events.length - 1];
    assert.equal([last.done, last.parts, last.uploadedBytes, last.name], [true, parts, stored.bytes, stored.name], 'the last event: all parts, every byte');
    assert.ok(events.filter((e) => !e.done).length === parts, 'one event per part');
    assert.ok(events.every((e, i) => i === 0 || e.uploadedBytes >= events[i - 1].uploadedBytes), 'progress only grows');
    await assertTidy(prefix, 'after the upload');
    t0 = performance.now();
    const back = await StateStore.restoreFrom(storage);
    const restoreMs = performance.now() - t0;
    const w = back.valueState<string>('big', { codec: 'string' });
    for (const i of [0, 1, 12345, 24 * 1024 - 1]) assert.is(w.get(i), v.get(i));
    const mb = stored.bytes / 1e6;
    console.log(`S3 throughput (versitygw on 127.0.0.1, ${mb.toFixed(1)} MB, ${parts} parts): store ${(mb / (storeMs / 1000)).toFixed(0)} MB/s (${storeMs.toFixed(0)} ms), restore ${(mb / (restoreMs / 1000)).toFixed(0)} MB/s (${restoreMs.toFixed(0)} ms)`);
    await storage.close();
  });

  S('an upload aborted midway leaves nothing behind: its parts are aborted, nothing is listed', async () => {
    const prefix = fresh();
    const storage = await open(prefix, { partSize: 5 * 1024 * 1024 });
    const w = await storage.begin(1);
    const chunk = new Uint8Array(1024 * 1024).fill(3);
    for (let i = 0; i < 12; i++) await w.write(chunk);
    assert.is((await s3Contents(client, BUCKET, prefix)).uploads.length, 1, 'an upload under way');
    await w.abort();
    await assertTidy(prefix, 'after abort');
    assert.equal(await storage.list(), []);
    await storage.close();
  });

  S('a writer killed (SIGKILL) mid multipart upload: the next writer takes over its lease once stale and aborts its upload', async () => {
    const prefix = fresh();
    const child = spawn(process.execPath, [path.join(here, 'fixtures', 's3-child.mjs'), gw.endpoint, BUCKET, prefix, '12'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((r) => child.once('exit', r));
    const line = await new Promise<string>((resolve) => readline.createInterface({ input: child.stdout }).once('line', resolve));
    const { name } = JSON.parse(line) as { name: string };
    await rejectsKs(() => open(prefix), StorageError, 'STORAGE_LOCKED', 'while it runs');
    child.kill('SIGKILL');
    await exited;
    assert.equal((await s3Contents(client, BUCKET, prefix)).uploads, [name], 'its upload is left incomplete');
    const t0 = Date.now();
    const next = await open(prefix, { lock: { wait: true, timeoutMs: 20_000, staleMs: 2000 } });
    const waited = Date.now() - t0;
    assert.ok(waited >= 1000 && waited < 8000, `took over after ${waited} ms (stale after 2 s by the server's clock, which counts whole seconds)`);
    assert.equal(next.removedOnOpen, [name]);
    await assertTidy(prefix, 'after the takeover');
    const store = await StateStore.create();
    store.valueState<number>('v', { codec: 'number' }).set('a', 1);
    await store.checkpointTo(next);
    await assertTidy(prefix, 'after a checkpoint');
    await next.close();
  });

  S('the server restarted mid-checkpoint: the checkpoint fails with STORAGE_IO, and the next is complete and tidy', async () => {
    const prefix = fresh();
    let killing: Promise<void> | null = null;
    const storage = await open(prefix, { partSize: 5 * 1024 * 1024, uploadConcurrency: 1, onUpload: (p) => {
      if (!p.done && p.parts === 1) killing ??= gw.kill();
    } });
    const { store } = await bigStore(4, 2);
    const h = declare(store);
    const model = new Model();
    randomOps(h, model, rng(5), 300, 100);
    const one = await store.checkpointTo(storage);
    const v = store.valueState<string>('big', { codec: 'string' });
    for (let i = 0; i < 20 * 1024; i++) v.set(`big-${i}`, 'y'.repeat(1000));
    randomOps(h, model, rng(6), 300, 100);
    const e = await rejectsKs(() => store.checkpointTo(storage, { incremental: false }), KeystateError, 'STORAGE_IO', 'server gone');
    assert.match(e.message, /s3:\/\/keystate\//);
    assert.ok(killing, 'the server was killed mid-upload');
    await killing;
    assert.is(store.lastConfirmedCheckpoint()?.id, one.id, 'nothing confirmed');
    await gw.resume();
    randomOps(h, model, rng(7), 300, 100);
    const next = await store.checkpointTo(storage);
    assert.equal([next.kind, next.parentId], ['incremental', one.id]);
    await assertTidy(prefix, 'after the next checkpoint (the failed upload aborted meanwhile)');
    const reader = await open(prefix, { readOnly: true });
    const back = await StateStore.restoreFrom(reader);
    const big = back.valueState<string>('big', { codec: 'string' });
    assertStore(back, model, 'complete');
    assert.is(big.get('big-20479'), 'y'.repeat(1000));
    await storage.close();
  });

  S('two writers on one prefix: the second is refused with STORAGE_LOCKED, or waits; readOnly lists and restores beside a writer', async () => {
    const prefix = fresh();
    const a = await open(prefix);
    const e = await rejectsKs(() => open(prefix), StorageError, 'STORAGE_LOCKED', 'second writer');
    assert.match(e.message, /pid \d+/, 'naming who holds it');
    assert.match(e.message, /wait: true/, 'and saying how to wait');
    const waiting = open(prefix, { lock: { wait: true, timeoutMs: 20_000 } });
    const storeA = await StateStore.create({ checkpoints: { incremental: true, maxIncrementals: 1000, maxChainRatio: 0 } });
    const va = storeA.valueState<number>('v', { codec: 'number' });
    for (let i = 1; i <= 10; i++) {
      va.set(`A-${i}`, i);
      await storeA.checkpointTo(a);
    }
    const reader = await open(prefix, { readOnly: true });
    assert.is((await reader.list()).length, 10, 'every one of the ten is listed');
    const restored = (await StateStore.restoreFrom(reader)).valueState<number>('v', { codec: 'number' });
    for (let i = 1; i <= 10; i++) assert.is(restored.get(`A-${i}`), i);
    await rejectsKs(() => reader.begin(100), StorageError, 'STORAGE_READ_ONLY', 'begin on a read-only storage');
    await rejectsKs(() => reader.retain(1), StorageError, 'STORAGE_READ_ONLY', 'retain on a read-only storage');
    await rejectsKs(() => open(prefix, { lock: { wait: true, timeoutMs: 300 } }), StorageError, 'STORAGE_LOCKED', 'a timed wait');
    await a.close();
    const b = await waiting;
    assert.equal(b.removedOnOpen, []);
    const storeB = await StateStore.restoreFrom(b);
    storeB.valueState<number>('v', { codec: 'number' }).set('B', 1);
    await storeB.checkpointTo(b);
    assert.is((await reader.list()).at(-1)?.name, (await b.list()).at(-1)?.name, 'the reader sees the new writer\'s checkpoint');
    await b.close();
  });

  S('a writer cut off while another took over: its commit fails with STORAGE_LOCKED and erases nothing of the other\'s', async () => {
    const prefix = fresh();
    const a = await open(prefix, { retain: 1 });
    const storeA = await StateStore.create();
    storeA.valueState<number>('v', { codec: 'number' }).set('a', 1);
    await storeA.checkpointTo(a);
    // As if A's lease went stale (A paused, or cut off from the server) and B took it over.
    await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: `${prefix}LOCK` }));
    const b = await open(prefix, { retain: 1 });
    const storeB = await StateStore.create();
    storeB.valueState<number>('v', { codec: 'number' }).set('b', 2);
    const fromB = await storeB.checkpointTo(b);
    storeA.valueState<number>('v', { codec: 'number' }).set('a', 3);
    const e = await rejectsKs(() => storeA.checkpointTo(a), StorageError, 'STORAGE_LOCKED', 'A commits after B took over');
    assert.match(e.message, /another writer/);
    await rejectsKs(() => a.begin(50), StorageError, 'STORAGE_LOCKED', 'and writes nothing more');
    const listed = await assertTidy(prefix, 'after A was refused');
    assert.ok(listed.some((c) => c.name === fromB.name), 'B\'s checkpoint is still listed');
    assert.is(declare(await StateStore.restoreFrom(b)).v.get('b'), 2);
    await a.close();
    await b.close();
  });

  S('bad options are INVALID_ARGUMENT; a missing bucket is STORAGE_IO', async () => {
    const cases: [string, object][] = [
      ['no client', { bucket: BUCKET }],
      ['no bucket', { client }],
      ['a leading slash', { client, bucket: BUCKET, prefix: '/x/' }],
      ['a .. part', { client, bucket: BUCKET, prefix: 'a/../b/' }],
      ['an empty part', { client, bucket: BUCKET, prefix: 'a//b/' }],
      ['a small part size', { client, bucket: BUCKET, partSize: 1024 }],
      ['concurrency 0', { client, bucket: BUCKET, uploadConcurrency: 0 }],
      ['lock.staleMs too small', { client, bucket: BUCKET, lock: { staleMs: 100 } }],
      ['readOnly with lock', { client, bucket: BUCKET, readOnly: true, lock: {} }],
    ];
    for (const [what, opts] of cases) await rejectsKs(() => S3Storage.open(opts as S3StorageOptions), InvalidArgumentError, 'INVALID_ARGUMENT', what);
    const e = await rejectsKs(() => S3Storage.open({ client, bucket: 'no-such-bucket', prefix: 'x' }), StorageError, 'STORAGE_IO', 'missing bucket');
    assert.match(e.message, /s3:\/\/no-such-bucket\/x\//);
    const s = await S3Storage.open({ client, bucket: BUCKET, prefix: `${fresh()}sub`, readOnly: true });
    assert.is(s.prefix.endsWith('sub/'), true, 'a final / is added');
  });

  S('keystate/s3 imports nothing of Node (it runs in browsers) and only @aws-sdk/client-s3 besides keystate', () => {
    const dist = path.resolve(here, '..', 'dist');
    const seen = new Set<string>();
    const bare = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const m of fs.readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)) {
        if (m[1].startsWith('.')) visit(path.resolve(path.dirname(file), m[1]));
        else bare.add(m[1]);
      }
    };
    visit(path.join(dist, 's3.js'));
    assert.equal([...bare], ['@aws-sdk/client-s3']);
  });

  S.after(() => gw.stop());
} else {
  S('S3 tests skipped: versitygw is not available here', () => undefined);
}

S.run();
