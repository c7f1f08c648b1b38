// DirectoryStorage (Node): the storage contract (test/_storagecontract.ts, run
// against S3Storage too: layout, chain restore, retention, cleanup of what a
// crash leaves, corrupt MANIFEST, fallback and forks, tombstones, compaction,
// metadata, periodic checkpointing), and what only a directory has: write
// failures (directory removed mid-run, a manifest that cannot be replaced),
// files named on disk, create: false. Node only; the crash test is in
// crash.node.test.ts, the lock in storage-locks.node.test.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KeystateError, StateStore } from './_backend.js';
import { DirectoryStorage, type StoredCheckpoint } from '../dist/index.js';
import { storageContract, type StorageKind } from './_storagecontract.js';
import { assertStore, declare, Model, randomOps } from './_model.js';
import { rejectsKs, rng } from './_util.js';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'keystate-storage-'));
let dirs = 0;
const freshDir = () => path.join(tmpRoot, `d${++dirs}`);

const manifestOf = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'MANIFEST'), 'utf8')) as { checkpoints: StoredCheckpoint[] };
/** The directory's files, less the writer's lock directory (LOCK, while a writer has it open; tested on its own). */
const filesIn = (dir: string) => fs.readdirSync(dir).filter((f) => f !== 'LOCK').sort();

/** The directory holds exactly MANIFEST and the files it lists. */
function assertTidy(dir: string, what: string): StoredCheckpoint[] {
  const listed = manifestOf(dir).checkpoints;
  assert.equal(filesIn(dir), ['MANIFEST', ...listed.map((c) => c.name)].sort(), `${what}: MANIFEST and the listed files, nothing else`);
  return listed;
}

const incremental = (maxIncrementals = 3) => ({ incremental: true, maxIncrementals, maxChainRatio: 0 });

const TEMP_LEFTOVERS = ['ckpt-0000000002-2.ks.1a2b3c4d.tmp', 'MANIFEST.deadbeef.tmp'];

const directory: StorageKind = {
  name: 'DirectoryStorage',
  fresh: freshDir,
  open: (dir, opts) => DirectoryStorage.open(dir, opts),
  listing: async (dir) => manifestOf(dir).checkpoints,
  async contents(dir) {
    const stored = new Map<string, number>();
    const other: string[] = [];
    for (const f of filesIn(dir)) {
      if (/^ckpt-\d+-\d+\.ks$/.test(f)) stored.set(f, fs.statSync(path.join(dir, f)).size);
      else if (f !== 'MANIFEST') other.push(f);
    }
    return { stored, other };
  },
  readRaw: async (dir, name) => new Uint8Array(fs.readFileSync(path.join(dir, name))),
  async writeRaw(dir, name, data) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, name), data);
  },
  removeRaw: async (dir, name) => fs.rmSync(path.join(dir, name)),
  async plantLeftovers(dir) {
    for (const f of TEMP_LEFTOVERS) fs.writeFileSync(path.join(dir, f), 'torn');
    return TEMP_LEFTOVERS;
  },
  leftoversRemain: async (dir) => TEMP_LEFTOVERS.every((f) => fs.existsSync(path.join(dir, f))),
};

const Dir = suite('DirectoryStorage');
storageContract(Dir, directory);

Dir('a chain is one file per checkpoint, named as listed, of the listed size; create: false refuses a missing directory', async () => {
  const dir = freshDir();
  const storage = await DirectoryStorage.open(dir);
  const store = await StateStore.create({ checkpoints: incremental(4) });
  const h = declare(store);
  const model = new Model();
  randomOps(h, model, rng(1), 500, 300);
  await store.checkpointTo(storage);
  await store.checkpointTo(storage);
  const listed = assertTidy(dir, 'after two checkpoints');
  for (const c of listed) assert.is(fs.statSync(path.join(dir, c.name)).size, c.bytes, `${c.name} size`);
  await storage.close();
  await rejectsKs(() => DirectoryStorage.open(path.join(freshDir(), 'missing'), { create: false }), KeystateError, 'STORAGE_IO', 'create: false');
});

// ---- write failures ------------------------------------------------------------------------------

Dir('the directory removed mid-run: the checkpoint fails with STORAGE_IO, is aborted, and the next one is complete', async () => {
  const dir = freshDir();
  const storage = await DirectoryStorage.open(dir);
  const store = await StateStore.create({ checkpoints: incremental(10) });
  const h = declare(store);
  const model = new Model();
  const r = rng(50);
  randomOps(h, model, r, 500, 200);
  await store.checkpointTo(storage);
  randomOps(h, model, r, 500, 200);
  const two = await store.checkpointTo(storage);

  randomOps(h, model, r, 500, 200);
  fs.renameSync(dir, `${dir}.away`);
  const e = await rejectsKs(() => store.checkpointTo(storage), KeystateError, 'STORAGE_IO', 'directory gone');
  assert.ok(e.message.includes(dir), e.message);
  assert.ok((e as { cause?: { code?: string } }).cause?.code === 'ENOENT');
  assert.is(store.lastConfirmedCheckpoint()?.id, two.id, 'nothing confirmed');
  fs.renameSync(`${dir}.away`, dir);
  assertTidy(dir, 'after the failure');

  randomOps(h, model, r, 500, 200);
  const next = await store.checkpointTo(storage);
  assert.equal([next.kind, next.parentId], ['incremental', two.id]);
  assertTidy(dir, 'after the next checkpoint');
  assertStore(await StateStore.restoreFrom(await DirectoryStorage.open(dir, { readOnly: true })), model, 'complete');
});

Dir('a manifest that cannot be replaced: the checkpoint fails, its file is removed, the old manifest stands', async () => {
  const dir = freshDir();
  const storage = await DirectoryStorage.open(dir);
  const store = await StateStore.create({ checkpoints: incremental(10) });
  const h = declare(store);
  const model = new Model();
  const r = rng(60);
  randomOps(h, model, r, 500, 200);
  const one = await store.checkpointTo(storage);
  const manifest = fs.readFileSync(path.join(dir, 'MANIFEST'));
  // A non-empty directory where MANIFEST was: rename() over it fails.
  fs.rmSync(path.join(dir, 'MANIFEST'));
  fs.mkdirSync(path.join(dir, 'MANIFEST'));
  fs.writeFileSync(path.join(dir, 'MANIFEST', 'x'), '');
  randomOps(h, model, r, 500, 200);
  await rejectsKs(() => store.checkpointTo(storage), KeystateError, 'STORAGE_IO', 'manifest rename');
  assert.is(store.lastConfirmedCheckpoint()?.id, one.id);
  fs.rmSync(path.join(dir, 'MANIFEST'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'MANIFEST'), manifest);
  assertTidy(dir, 'the failed checkpoint left no file');

  randomOps(h, model, r, 500, 200);
  const next = await store.checkpointTo(storage);
  assert.equal([next.kind, next.parentId], ['incremental', one.id]);
  assertStore(await StateStore.restoreFrom(await DirectoryStorage.open(dir, { readOnly: true })), model, 'complete');
});

Dir('the shared API never imports Node modules (browser bundles stay clean)', () => {
  const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist');
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)) {
      const spec = m[1];
      if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec));
      else assert.not.ok(spec.startsWith('node:') || ['fs', 'path', 'os', 'crypto'].includes(spec), `${path.relative(dist, file)} imports ${spec}`);
    }
  };
  visit(path.join(dist, 'api.js'));
  assert.ok([...seen].some((f) => f.endsWith('checkpointing.js')), 'checkpointing is part of the shared API');
  assert.not.ok([...seen].some((f) => f.endsWith('directory.js')));
});

Dir.after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

Dir.run();
