// DirectoryStorage (Node): layout, chain restore, retention (no orphan file,
// nothing a retained chain needs deleted), cleanup of what a crash leaves,
// typed errors for a foreign or corrupt MANIFEST, tombstones, compaction of a
// stored chain, write failures (directory removed mid-run, manifest that
// cannot be replaced), fallback restore and forks, periodic checkpointing
// to a directory. Node only; the crash test is in crash.node.test.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CorruptCheckpointError, KeystateError, StateStore } from './_backend.js';
import { compact, DirectoryStorage, type StoredCheckpoint } from '../dist/index.js';
import { chainIn } from './_memstorage.js';
import { assertStore, declare, Model, randomOps } from './_model.js';
import { rejectsKs, rng } from './_util.js';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'keystate-storage-'));
let dirs = 0;
const freshDir = () => path.join(tmpRoot, `d${++dirs}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const manifestOf = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'MANIFEST'), 'utf8')) as { checkpoints: StoredCheckpoint[] };
/** The directory's files, less the writer's lock directory (LOCK, while a writer has it open; tested on its own). */
const filesIn = (dir: string) => fs.readdirSync(dir).filter((f) => f !== 'LOCK').sort();

/** The directory holds exactly MANIFEST and the files it lists. */
function assertTidy(dir: string, what: string): StoredCheckpoint[] {
  const listed = manifestOf(dir).checkpoints;
  assert.equal(filesIn(dir), ['MANIFEST', ...listed.map((c) => c.name)].sort(), `${what}: MANIFEST and the listed files, nothing else`);
  return listed;
}

async function restoreChain(storage: DirectoryStorage, chain: StoredCheckpoint[]): Promise<StateStore> {
  return StateStore.restore(await Promise.all(chain.map((c) => storage.open(c.name))));
}

const incremental = (maxIncrementals = 3) => ({ incremental: true, maxIncrementals, maxChainRatio: 0 });

// ---- layout, chains, retention -------------------------------------------------------------

const Dir = suite('DirectoryStorage');

Dir('a chain is stored as one file per checkpoint plus MANIFEST, and restores exactly from a reopened directory', async () => {
  const dir = freshDir();
  const storage = await DirectoryStorage.open(dir, { retain: 100 });
  const store = await StateStore.create({ checkpoints: incremental(4) });
  const h = declare(store);
  const model = new Model();
  const r = rng(1);
  for (let i = 0; i < 6; i++) {
    randomOps(h, model, r, 500, 300);
    await store.checkpointTo(storage, { chunkSize: 2048 });
  }
  const listed = assertTidy(dir, 'after six checkpoints');
  assert.equal(listed.map((c) => [c.id, c.parentId, c.kind]), [
    [1, null, 'full'], [2, 1, 'incremental'], [3, 2, 'incremental'], [4, 3, 'incremental'], [5, 4, 'incremental'], [6, null, 'full'],
  ]);
  for (const c of listed) assert.is(fs.statSync(path.join(dir, c.name)).size, c.bytes, `${c.name} size`);

  randomOps(h, model, r, 500, 300);
  await store.checkpointTo(storage);
  await storage.close();
  const reopened = await DirectoryStorage.open(dir);
  assert.equal(reopened.removedOnOpen, []);
  let chain: number[] = [];
  const restored = await StateStore.restoreFrom(reopened, { onRestored: (x) => (chain = x.chain.map((c) => c.id)) });
  assert.equal(chain, [6, 7]);
  assertStore(restored, model, 'restored from the reopened directory');
});

for (const keep of [1, 2, 3]) {
  Dir(`retention keeps the last ${keep} chain(s): no orphan file, and every retained chain restores its checkpoint's state`, async () => {
    const dir = freshDir();
    const storage = await DirectoryStorage.open(dir, { retain: keep });
    const store = await StateStore.create({ checkpoints: incremental(3) });
    const h = declare(store);
    const model = new Model();
    const models = new Map<number, Model>();
    const r = rng(10 + keep);
    for (let i = 0; i < 14; i++) {
      randomOps(h, model, r, 150, 120);
      // Now and then a full checkpoint out of turn, so chains of every length occur.
      const stored = await store.checkpointTo(storage, i % 5 === 4 ? { incremental: false } : {});
      models.set(stored.id, model.clone());
      const listed = assertTidy(dir, `after checkpoint ${stored.id}`);

      // The listing is exactly the union of the last `keep` checkpoints' chains.
      const needed = new Set<string>();
      const tips = listed.slice(-keep);
      for (let t = listed.length - tips.length; t < listed.length; t++) {
        const chain = chainIn(listed, t);
        assert.ok(chain, `checkpoint ${listed[t].id} has its whole chain`);
        for (const c of chain as StoredCheckpoint[]) needed.add(c.name);
      }
      assert.equal(listed.map((c) => c.name), [...needed].sort(), `after checkpoint ${stored.id}: only what the last ${keep} chains need`);
      assert.is(listed[listed.length - 1].id, stored.id);

      for (let t = listed.length - tips.length; t < listed.length; t++) {
        const chain = chainIn(listed, t) as StoredCheckpoint[];
        assertStore(await restoreChain(storage, chain), models.get(listed[t].id) as Model, `chain of ${listed[t].id} after ${stored.id}`);
      }
    }
  });
}

Dir('retain(k) on demand drops what no longer counts, after a durable manifest', async () => {
  const dir = freshDir();
  const storage = await DirectoryStorage.open(dir, { retain: 10 });
  const store = await StateStore.create({ checkpoints: incremental(2) });
  const h = declare(store);
  for (let i = 0; i < 7; i++) {
    h.v.set(i, i);
    await store.checkpointTo(storage);
  }
  // 1f 2i 3i 4f 5i 6i 7f: the last two chains are [7] and [4, 5, 6].
  assert.is(manifestOf(dir).checkpoints.length, 7);
  const gone = await storage.retain(2);
  assert.equal(gone.map((n) => Number(n.split('-')[1])), [1, 2, 3]);
  assert.equal(assertTidy(dir, 'after retain(2)').map((c) => c.id), [4, 5, 6, 7]);
  assert.equal(await storage.retain(2), [], 'nothing more to drop');
});

Dir('large checkpoints: small and large export chunks are written whole (gathered writes and direct ones)', async () => {
  const dir = freshDir();
  const storage = await DirectoryStorage.open(dir);
  const store = await StateStore.create({ checkpoints: incremental(10) });
  const h = declare(store);
  for (let k = 0; k < 20_000; k++) h.s.set(k, `${k}:`.padEnd(100 + (k % 50), '#'));
  for (const chunkSize of [1000, 64 * 1024, 1024 * 1024]) {
    h.s.set('round', String(chunkSize));
    const stored = await store.checkpointTo(storage, { chunkSize, incremental: false });
    assert.ok(stored.bytes > 2_000_000, `${stored.bytes} bytes`);
    assert.is(fs.statSync(path.join(dir, stored.name)).size, stored.bytes, `chunks of ${chunkSize}: file size`);
    const r = declare(await StateStore.restoreFrom(storage));
    assert.is(r.s.get('round'), String(chunkSize));
    assert.is(r.s.get(19_999), `${19_999}:`.padEnd(100 + (19_999 % 50), '#'));
  }
});

// ---- crash leftovers, foreign and corrupt manifests ------------------------------------------

Dir('open removes temporary files and checkpoint files MANIFEST does not list, and nothing else', async () => {
  const dir = freshDir();
  const storage = await DirectoryStorage.open(dir);
  const store = await StateStore.create();
  declare(store).v.set('a', 1);
  await store.checkpointTo(storage);
  const listed = manifestOf(dir).checkpoints;
  const leftovers = ['ckpt-0000000002-2.ks', 'ckpt-0000000002-2.ks.1a2b3c4d.tmp', 'MANIFEST.deadbeef.tmp'];
  for (const f of leftovers) fs.writeFileSync(path.join(dir, f), 'torn');
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'not ours');
  await storage.close();
  const reopened = await DirectoryStorage.open(dir);
  assert.equal(reopened.removedOnOpen, [...leftovers].sort());
  assert.equal(filesIn(dir), ['MANIFEST', 'notes.txt', listed[0].name].sort());
  assert.is(declare(await StateStore.restoreFrom(reopened)).v.get('a'), 1);

  // A read-only open (beside the writer) and a writer's cleanup: false leave what they find alone.
  fs.writeFileSync(path.join(dir, leftovers[1]), 'in progress');
  const inspector = await DirectoryStorage.open(dir, { readOnly: true });
  assert.equal(inspector.removedOnOpen, []);
  assert.ok(fs.existsSync(path.join(dir, leftovers[1])));
  await reopened.close();
  const keeper = await DirectoryStorage.open(dir, { cleanup: false });
  assert.equal(keeper.removedOnOpen, []);
  assert.ok(fs.existsSync(path.join(dir, leftovers[1])));
  await keeper.close();
});

Dir('a foreign, corrupt or newer MANIFEST is a typed STORAGE_CORRUPT error', async () => {
  const entry = { id: 1, parentId: null, kind: 'full', storeId: '0'.repeat(32), checksum: '0'.repeat(16), bytes: 1, createdAt: 0, name: 'ckpt-0000000001-1.ks' };
  const cases: [string, string][] = [
    ['not JSON', '{"format": "keystate-checkp'],
    ['another program\'s JSON', JSON.stringify({ name: 'something else', version: 1 })],
    ['a JSON array', '[]'],
    ['a newer version', JSON.stringify({ format: 'keystate-checkpoints', version: 2, seq: 0, checkpoints: [] })],
    ['a name that is a path', JSON.stringify({ format: 'keystate-checkpoints', version: 1, seq: 1, checkpoints: [{ ...entry, name: '../../etc/passwd' }] })],
    ['a bad kind', JSON.stringify({ format: 'keystate-checkpoints', version: 1, seq: 1, checkpoints: [{ ...entry, kind: 'delta' }] })],
    ['a duplicate name', JSON.stringify({ format: 'keystate-checkpoints', version: 1, seq: 1, checkpoints: [entry, entry] })],
  ];
  for (const [what, text] of cases) {
    const dir = freshDir();
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'MANIFEST'), text);
    const e = await rejectsKs(() => DirectoryStorage.open(dir), KeystateError, 'STORAGE_CORRUPT', what);
    assert.is(e.name, 'StorageError');
    assert.ok(e.message.includes('MANIFEST'), `${what}: names the file (${e.message})`);
  }
  await rejectsKs(() => DirectoryStorage.open(path.join(freshDir(), 'missing'), { create: false }), KeystateError, 'STORAGE_IO', 'create: false');
  await rejectsKs(async () => DirectoryStorage.open(freshDir(), { retain: 0 }), KeystateError, 'INVALID_ARGUMENT', 'retain: 0');
});

Dir('a listed file that is missing or truncated: strict restore throws, fallback takes the previous checkpoint', async () => {
  const dir = freshDir();
  const storage = await DirectoryStorage.open(dir, { retain: 3 });
  const store = await StateStore.create({ checkpoints: incremental(10) });
  const h = declare(store);
  const model = new Model();
  const models: Model[] = [];
  for (let i = 0; i < 3; i++) {
    randomOps(h, model, rng(20 + i), 300, 100);
    await store.checkpointTo(storage);
    models.push(model.clone());
  }
  const listed = manifestOf(dir).checkpoints;
  const last = path.join(dir, listed[2].name);
  const bytes = fs.readFileSync(last);
  fs.writeFileSync(last, bytes.subarray(0, bytes.length - 30));
  await rejectsKs(() => StateStore.restoreFrom(storage), CorruptCheckpointError, ['TRUNCATED', 'CORRUPT', 'CHECKSUM_MISMATCH'], 'truncated');
  fs.rmSync(last);
  await rejectsKs(() => StateStore.restoreFrom(storage), KeystateError, 'STORAGE_IO', 'missing');

  let restoredId = 0;
  const restored = await StateStore.restoreFrom(storage, { fallback: true, checkpoints: incremental(10), onRestored: (x) => (restoredId = x.checkpoint.id) });
  assert.is(restoredId, 2);
  assertStore(restored, models[1], 'state of checkpoint 2');

  // The restored store forks from checkpoint 2; the fork's "3" gets a file of its own.
  const m = models[1];
  randomOps(declare(restored), m, rng(30), 300, 100);
  const fork = await restored.checkpointTo(storage);
  assert.equal([fork.id, fork.parentId], [3, 2]);
  assert.is.not(fork.name, listed[2].name);
  assertStore(await StateStore.restoreFrom(await DirectoryStorage.open(dir, { readOnly: true })), m, 'the fork restores strictly');
  // retain 3 keeps the old "3" (its file is gone) in the listing until it ages out; the fork's next checkpoint drops it.
  randomOps(declare(restored), m, rng(31), 100, 100);
  await restored.checkpointTo(storage);
  await restored.checkpointTo(storage);
  assert.ok(!manifestOf(dir).checkpoints.some((c) => c.name === listed[2].name), 'the broken checkpoint aged out');
  assertTidy(dir, 'after the fork');
});

// ---- state kinds through storage ---------------------------------------------------------------

Dir('tombstones survive storage: deletions in incremental checkpoints stay deleted after a restore', async () => {
  const dir = freshDir();
  const storage = await DirectoryStorage.open(dir);
  const store = await StateStore.create({ checkpoints: incremental(10) });
  const h = declare(store);
  for (let k = 0; k < 50; k++) {
    h.v.set(k, k);
    h.l.forKey(k).addAll([`a${k}`, `b${k}`]);
    h.m.forKey(k).put('x', k);
    h.m.forKey(k).put('y', -k);
  }
  await store.checkpointTo(storage);
  for (let k = 0; k < 50; k += 2) {
    h.v.delete(k);
    h.l.forKey(k).clear();
    h.m.forKey(k).remove('x');
  }
  await store.checkpointTo(storage);
  for (let k = 1; k < 50; k += 4) h.m.forKey(k).clear();
  h.v.set(0, 1000); // deleted, then written again
  const last = await store.checkpointTo(storage);
  assert.is(last.kind, 'incremental');

  const restored = await StateStore.restoreFrom(await DirectoryStorage.open(dir, { readOnly: true }));
  const r = declare(restored);
  for (let k = 0; k < 50; k++) {
    const even = k % 2 === 0;
    assert.is(r.v.get(k), k === 0 ? 1000 : even ? undefined : k, `v ${k}`);
    assert.equal(r.l.forKey(k).get(), even ? [] : [`a${k}`, `b${k}`], `l ${k}`);
    const cleared = k % 4 === 1;
    assert.is(r.m.forKey(k).get('x'), even || cleared ? undefined : k, `m ${k} x`);
    assert.is(r.m.forKey(k).get('y'), cleared ? undefined : -k, `m ${k} y`);
  }
});

Dir('compaction of a stored chain equals the live state, and later checkpoints of the chain apply on top of it', async () => {
  const dir = freshDir();
  const storage = await DirectoryStorage.open(dir, { retain: 1 });
  const store = await StateStore.create({ checkpoints: incremental(20) });
  const h = declare(store);
  const model = new Model();
  const r = rng(40);
  for (let i = 0; i < 6; i++) {
    randomOps(h, model, r, 400, 200);
    await store.checkpointTo(storage);
  }
  const chain = manifestOf(dir).checkpoints;
  assert.is(chain.length, 6, 'one chain of six');
  const compacted = await compact(await Promise.all(chain.map((c) => storage.open(c.name))));
  assertStore(await StateStore.restore([compacted]), model, 'compacted chain');

  randomOps(h, model, r, 400, 200);
  const next = await store.checkpointTo(storage);
  assert.is(next.parentId, chain[5].id);
  const delta = fs.readFileSync(path.join(dir, next.name));
  assertStore(await StateStore.restore([compacted, delta]), model, 'compacted chain plus a later delta');
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

// ---- periodic checkpointing to a directory ----------------------------------------------------

Dir('enableCheckpointing to a directory produces a chain, stops cleanly, and leaves no timer behind', async () => {
  const dir = freshDir();
  const storage = await DirectoryStorage.open(dir, { retain: 2 });
  const store = await StateStore.create();
  const h = declare(store);
  const model = new Model();
  const r = rng(70);
  const timers = () => process.getActiveResourcesInfo().filter((x) => x === 'Timeout').length;
  const before = timers();
  const events: { id: number; kind: string }[] = [];
  const errors: unknown[] = [];
  const ctl = store.enableCheckpointing({
    intervalMs: 10,
    storage,
    incremental: true,
    maxIncrementals: 3,
    onCheckpoint: (e) => events.push(e),
    onError: (e) => errors.push(e),
  });
  for (let i = 0; i < 40 && events.length < 8; i++) {
    randomOps(h, model, r, 100, 200);
    await sleep(10);
  }
  await ctl.stop();
  assert.equal(errors, []);
  assert.ok(events.length >= 5, `${events.length} checkpoints`);
  assert.ok(events.some((e) => e.kind === 'full') && events.some((e) => e.kind === 'incremental'));
  assert.is(timers(), before, 'the interval is cleared');
  assertTidy(dir, 'after stop');
  await store.checkpointTo(storage);
  assertStore(await StateStore.restoreFrom(storage), model, 'restored');
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
