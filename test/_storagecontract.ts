/**
 * The storage contract, for any Node storage (DirectoryStorage in
 * storage.node.test.ts, S3Storage in storage-s3.node.test.ts): layout and
 * chain restore, retention (no orphan, nothing a retained chain needs
 * deleted), removal of what an interrupted writer left, typed errors for a
 * foreign or corrupt MANIFEST, a missing or truncated piece with fallback and
 * forks, tombstones, compaction of a stored chain, application metadata,
 * periodic checkpointing. Each storage kind says how to open one and how to
 * look at what it holds behind its back (files, objects).
 */
import * as assert from 'uvu/assert';
import type { Test } from 'uvu';
import { CorruptCheckpointError, KeystateError, StateStore } from './_backend.js';
import { compact, type CheckpointStorage, type StoredCheckpoint } from '../dist/index.js';
import { chainIn } from './_memstorage.js';
import { assertStore, declare, Model, randomOps } from './_model.js';
import { rejectsKs, rng } from './_util.js';

/** A storage as the contract uses it. */
export type Opened = CheckpointStorage & { close(): Promise<void>; readonly removedOnOpen: readonly string[]; readonly readOnly: boolean };

export interface StorageKind {
  /** `DirectoryStorage`, `S3Storage`. */
  name: string;
  /** A new, empty location. */
  fresh(): string;
  open(where: string, opts?: { retain?: number; readOnly?: boolean; cleanup?: boolean }): Promise<Opened>;
  /** The parsed listing as stored (MANIFEST). */
  listing(where: string): Promise<StoredCheckpoint[]>;
  /** Checkpoint objects or files stored, with their sizes; and everything else except the listing and the writer's lock. */
  contents(where: string): Promise<{ stored: Map<string, number>; other: string[] }>;
  readRaw(where: string, name: string): Promise<Uint8Array>;
  writeRaw(where: string, name: string, data: string | Uint8Array): Promise<void>;
  removeRaw(where: string, name: string): Promise<void>;
  /**
   * Leaves what an interrupted writer would (for a directory, temporary files;
   * for S3, an incomplete multipart upload) besides an unlisted checkpoint,
   * which the contract plants itself. Returns what `removedOnOpen` must then
   * name besides that checkpoint.
   */
  plantLeftovers(where: string): Promise<string[]>;
  /** What an open with cleanup left alone, after plantLeftovers: still there. */
  leftoversRemain(where: string): Promise<boolean>;
}

const incremental = (maxIncrementals = 3) => ({ incremental: true, maxIncrementals, maxChainRatio: 0 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function storageContract(S: Test, k: StorageKind): void {
  /** The location holds exactly the listing and the checkpoints it lists, whole. */
  async function assertTidy(where: string, what: string): Promise<StoredCheckpoint[]> {
    const listed = await k.listing(where);
    const { stored, other } = await k.contents(where);
    assert.equal([...stored.keys()].sort(), listed.map((c) => c.name).sort(), `${what}: the listed checkpoints, nothing else`);
    for (const c of listed) assert.is(stored.get(c.name), c.bytes, `${what}: ${c.name} is whole`);
    assert.equal(other, [], `${what}: nothing else`);
    return listed;
  }

  async function restoreChain(storage: CheckpointStorage, chain: StoredCheckpoint[]): Promise<StateStore> {
    return StateStore.restore(await Promise.all(chain.map((c) => storage.open(c.name))));
  }

  S(`${k.name}: a chain is stored as one piece per checkpoint plus MANIFEST, and restores exactly when reopened`, async () => {
    const where = k.fresh();
    const storage = await k.open(where, { retain: 100 });
    const store = await StateStore.create({ checkpoints: incremental(4) });
    const h = declare(store);
    const model = new Model();
    const r = rng(1);
    for (let i = 0; i < 6; i++) {
      randomOps(h, model, r, 500, 300);
      await store.checkpointTo(storage, { chunkSize: 2048 });
    }
    const listed = await assertTidy(where, 'after six checkpoints');
    assert.equal(listed.map((c) => [c.id, c.parentId, c.kind]), [
      [1, null, 'full'], [2, 1, 'incremental'], [3, 2, 'incremental'], [4, 3, 'incremental'], [5, 4, 'incremental'], [6, null, 'full'],
    ]);
    assert.equal(await storage.list(), listed, 'list() is the stored listing');

    randomOps(h, model, r, 500, 300);
    await store.checkpointTo(storage);
    await storage.close();
    const reopened = await k.open(where);
    assert.equal(reopened.removedOnOpen, []);
    let chain: number[] = [];
    const restored = await StateStore.restoreFrom(reopened, { onRestored: (x) => (chain = x.chain.map((c) => c.id)) });
    assert.equal(chain, [6, 7]);
    assertStore(restored, model, 'restored from the reopened storage');
    await reopened.close();
  });

  for (const keep of [1, 2, 3]) {
    S(`${k.name}: retention keeps the last ${keep} chain(s): no orphan, and every retained chain restores its checkpoint's state`, async () => {
      const where = k.fresh();
      const storage = await k.open(where, { retain: keep });
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
        const listed = await assertTidy(where, `after checkpoint ${stored.id}`);

        // The listing is exactly the union of the last `keep` checkpoints' chains.
        const needed = new Set<string>();
        const tips = listed.slice(-keep);
        for (let t = listed.length - tips.length; t < listed.length; t++) {
          const chain = chainIn(listed, t);
          assert.ok(chain, `checkpoint ${listed[t].id} has its whole chain`);
          for (const c of chain as StoredCheckpoint[]) needed.add(c.name);
        }
        assert.equal(listed.map((c) => c.name), [...needed].sort((a, b) => listed.findIndex((c) => c.name === a) - listed.findIndex((c) => c.name === b)), `after checkpoint ${stored.id}: only what the last ${keep} chains need`);
        assert.is(listed[listed.length - 1].id, stored.id);
        for (let t = listed.length - tips.length; t < listed.length; t++) {
          const chain = chainIn(listed, t) as StoredCheckpoint[];
          assertStore(await restoreChain(storage, chain), models.get(listed[t].id) as Model, `chain of ${listed[t].id} after ${stored.id}`);
        }
      }
      await storage.close();
    });
  }

  S(`${k.name}: retain(k) on demand drops what no longer counts, after the listing without it`, async () => {
    const where = k.fresh();
    const storage = await k.open(where, { retain: 10 });
    const store = await StateStore.create({ checkpoints: incremental(2) });
    const h = declare(store);
    for (let i = 0; i < 7; i++) {
      h.v.set(i, i);
      await store.checkpointTo(storage);
    }
    // 1f 2i 3i 4f 5i 6i 7f: the last two chains are [7] and [4, 5, 6].
    assert.is((await k.listing(where)).length, 7);
    const gone = await storage.retain(2);
    assert.equal(gone.map((n) => Number(n.split('-')[1])), [1, 2, 3]);
    assert.equal((await assertTidy(where, 'after retain(2)')).map((c) => c.id), [4, 5, 6, 7]);
    assert.equal(await storage.retain(2), [], 'nothing more to drop');
    await storage.close();
  });

  S(`${k.name}: large checkpoints: small and large export chunks are stored whole`, async () => {
    const where = k.fresh();
    const storage = await k.open(where);
    const store = await StateStore.create({ checkpoints: incremental(10) });
    const h = declare(store);
    for (let key = 0; key < 20_000; key++) h.s.set(key, `${key}:`.padEnd(100 + (key % 50), '#'));
    for (const chunkSize of [1000, 64 * 1024, 1024 * 1024]) {
      h.s.set('round', String(chunkSize));
      const stored = await store.checkpointTo(storage, { chunkSize, incremental: false });
      assert.ok(stored.bytes > 2_000_000, `${stored.bytes} bytes`);
      assert.is((await k.contents(where)).stored.get(stored.name), stored.bytes, `chunks of ${chunkSize}: size`);
      const r = declare(await StateStore.restoreFrom(storage));
      assert.is(r.s.get('round'), String(chunkSize));
      assert.is(r.s.get(19_999), `${19_999}:`.padEnd(100 + (19_999 % 50), '#'));
    }
    await storage.close();
  });

  S(`${k.name}: application metadata is listed with its checkpoint, survives reopening, and is checked`, async () => {
    const where = k.fresh();
    const storage = await k.open(where);
    const store = await StateStore.create({ checkpoints: incremental(10) });
    const v = store.valueState<number>('v', { codec: 'number' });
    let offset = 0;
    v.set('a', ++offset);
    const one = await store.checkpointTo(storage, { metadata: { source: 'events', offsets: { 0: offset } } });
    assert.equal(one.metadata, { source: 'events', offsets: { 0: 1 } });
    v.set('a', ++offset);
    // A function is called the moment the checkpoint is taken, so what it returns agrees with the
    // state the checkpoint holds, whatever is written between the call and that moment.
    const pending = store.checkpointTo(storage, { metadata: (cp) => ({ offset, id: cp.id }) });
    v.set('a', ++offset);
    const two = await pending;
    offset = 99;
    assert.is(two.metadata?.id, 2);
    const at = two.metadata?.offset as number;
    assert.ok(at === 2 || at === 3, `offset ${at}`);
    assert.is((await StateStore.restore(await Promise.all((await storage.list()).map((c) => storage.open(c.name))))).valueState<number>('v', { codec: 'number' }).get('a'), at, 'the state agrees with the metadata');
    await rejectsKs(() => store.checkpointTo(storage, { metadata: { n: NaN } }), KeystateError, 'INVALID_ARGUMENT', 'NaN');
    await rejectsKs(() => store.checkpointTo(storage, { metadata: { big: 'x'.repeat(70_000) } }), KeystateError, 'INVALID_ARGUMENT', 'over 64 KiB');
    await rejectsKs(() => store.checkpointTo(storage, { metadata: [1] as unknown as Record<string, unknown> }), KeystateError, 'INVALID_ARGUMENT', 'an array');
    const three = await store.checkpointTo(storage, { incremental: true });
    assert.is(three.metadata, undefined, 'none given, none stored');
    assert.equal([three.kind, three.parentId], ['incremental', 2], 'the refused checkpoints left the chain as it was');
    await storage.close();
    const reader = await k.open(where, { readOnly: true });
    const listed = await reader.list();
    assert.equal(listed.map((c) => c.metadata ?? null), [{ source: 'events', offsets: { 0: 1 } }, { offset: at, id: 2 }, null]);
    (listed[0].metadata as { source: string }).source = 'changed by the caller';
    assert.is((await reader.list())[0].metadata?.source, 'events', 'list() hands out copies');
    await reader.close();
  });

  S(`${k.name}: open removes what an interrupted writer left and nothing else; readOnly and cleanup: false leave it`, async () => {
    const where = k.fresh();
    const storage = await k.open(where);
    const store = await StateStore.create();
    declare(store).v.set('a', 1);
    await store.checkpointTo(storage);
    const listed = await k.listing(where);
    await storage.close();
    const unlisted = 'ckpt-0000000002-2.ks';
    await k.writeRaw(where, unlisted, 'torn');
    await k.writeRaw(where, 'notes.txt', 'not ours');
    const other = await k.plantLeftovers(where);

    const inspector = await k.open(where, { readOnly: true });
    assert.equal(inspector.removedOnOpen, []);
    const keeper = await k.open(where, { cleanup: false });
    assert.equal(keeper.removedOnOpen, []);
    assert.ok(await k.leftoversRemain(where), 'cleanup: false leaves them');
    assert.ok((await k.contents(where)).stored.has(unlisted));
    await keeper.close();

    const reopened = await k.open(where);
    assert.equal(reopened.removedOnOpen, [unlisted, ...other].sort());
    assert.not.ok(await k.leftoversRemain(where));
    const { stored, other: rest } = await k.contents(where);
    assert.equal([...stored.keys()], [listed[0].name]);
    assert.equal(rest, ['notes.txt']);
    assert.is(declare(await StateStore.restoreFrom(reopened)).v.get('a'), 1);
    assert.is(declare(await StateStore.restoreFrom(inspector)).v.get('a'), 1);
    await reopened.close();
    await inspector.close();
  });

  S(`${k.name}: a foreign, corrupt or newer MANIFEST is a typed STORAGE_CORRUPT error`, async () => {
    const entry = { id: 1, parentId: null, kind: 'full', storeId: '0'.repeat(32), checksum: '0'.repeat(16), bytes: 1, createdAt: 0, name: 'ckpt-0000000001-1.ks' };
    const cases: [string, string][] = [
      ['not JSON', '{"format": "keystate-checkp'],
      ['another program\'s JSON', JSON.stringify({ name: 'something else', version: 1 })],
      ['a JSON array', '[]'],
      ['a newer version', JSON.stringify({ format: 'keystate-checkpoints', version: 2, seq: 0, checkpoints: [] })],
      ['a name that is a path', JSON.stringify({ format: 'keystate-checkpoints', version: 1, seq: 1, checkpoints: [{ ...entry, name: '../../etc/passwd' }] })],
      ['a bad kind', JSON.stringify({ format: 'keystate-checkpoints', version: 1, seq: 1, checkpoints: [{ ...entry, kind: 'delta' }] })],
      ['a duplicate name', JSON.stringify({ format: 'keystate-checkpoints', version: 1, seq: 1, checkpoints: [entry, entry] })],
      ['metadata that is not an object', JSON.stringify({ format: 'keystate-checkpoints', version: 1, seq: 1, checkpoints: [{ ...entry, metadata: 7 }] })],
    ];
    for (const [what, text] of cases) {
      const where = k.fresh();
      await k.writeRaw(where, 'MANIFEST', text);
      for (const readOnly of [false, true]) {
        const e = await rejectsKs(() => k.open(where, { readOnly }), KeystateError, 'STORAGE_CORRUPT', what);
        assert.is(e.name, 'StorageError');
        assert.ok(e.message.includes('MANIFEST'), `${what}: names the listing (${e.message})`);
      }
    }
    await rejectsKs(async () => k.open(k.fresh(), { retain: 0 }), KeystateError, 'INVALID_ARGUMENT', 'retain: 0');
  });

  S(`${k.name}: a listed piece that is missing or truncated: strict restore throws, fallback takes the previous checkpoint`, async () => {
    const where = k.fresh();
    const storage = await k.open(where, { retain: 3 });
    const store = await StateStore.create({ checkpoints: incremental(10) });
    const h = declare(store);
    const model = new Model();
    const models: Model[] = [];
    for (let i = 0; i < 3; i++) {
      randomOps(h, model, rng(20 + i), 300, 100);
      await store.checkpointTo(storage);
      models.push(model.clone());
    }
    const listed = await k.listing(where);
    const last = listed[2].name;
    const bytes = await k.readRaw(where, last);
    await k.writeRaw(where, last, bytes.subarray(0, bytes.length - 30));
    await rejectsKs(() => StateStore.restoreFrom(storage), CorruptCheckpointError, ['TRUNCATED', 'CORRUPT', 'CHECKSUM_MISMATCH'], 'truncated');
    await k.removeRaw(where, last);
    await rejectsKs(() => StateStore.restoreFrom(storage), KeystateError, 'STORAGE_IO', 'missing');

    let restoredId = 0;
    const restored = await StateStore.restoreFrom(storage, { fallback: true, checkpoints: incremental(10), onRestored: (x) => (restoredId = x.checkpoint.id) });
    assert.is(restoredId, 2);
    assertStore(restored, models[1], 'state of checkpoint 2');

    // The restored store forks from checkpoint 2; the fork's "3" gets a piece of its own.
    const m = models[1];
    randomOps(declare(restored), m, rng(30), 300, 100);
    const fork = await restored.checkpointTo(storage);
    assert.equal([fork.id, fork.parentId], [3, 2]);
    assert.is.not(fork.name, last);
    const reader = await k.open(where, { readOnly: true });
    assertStore(await StateStore.restoreFrom(reader), m, 'the fork restores strictly');
    // retain 3 keeps the old "3" (its piece is gone) in the listing until it ages out; the fork's next checkpoints drop it.
    randomOps(declare(restored), m, rng(31), 100, 100);
    await restored.checkpointTo(storage);
    await restored.checkpointTo(storage);
    assert.ok(!(await k.listing(where)).some((c) => c.name === last), 'the broken checkpoint aged out');
    await assertTidy(where, 'after the fork');
    await reader.close();
    await storage.close();
  });

  S(`${k.name}: tombstones survive storage: deletions in incremental checkpoints stay deleted after a restore`, async () => {
    const where = k.fresh();
    const storage = await k.open(where);
    const store = await StateStore.create({ checkpoints: incremental(10) });
    const h = declare(store);
    for (let key = 0; key < 50; key++) {
      h.v.set(key, key);
      h.l.forKey(key).addAll([`a${key}`, `b${key}`]);
      h.m.forKey(key).put('x', key);
      h.m.forKey(key).put('y', -key);
    }
    await store.checkpointTo(storage);
    for (let key = 0; key < 50; key += 2) {
      h.v.delete(key);
      h.l.forKey(key).clear();
      h.m.forKey(key).remove('x');
    }
    await store.checkpointTo(storage);
    for (let key = 1; key < 50; key += 4) h.m.forKey(key).clear();
    h.v.set(0, 1000); // deleted, then written again
    const last = await store.checkpointTo(storage);
    assert.is(last.kind, 'incremental');
    await storage.close();

    const reader = await k.open(where, { readOnly: true });
    const r = declare(await StateStore.restoreFrom(reader));
    for (let key = 0; key < 50; key++) {
      const even = key % 2 === 0;
      assert.is(r.v.get(key), key === 0 ? 1000 : even ? undefined : key, `v ${key}`);
      assert.equal(r.l.forKey(key).get(), even ? [] : [`a${key}`, `b${key}`], `l ${key}`);
      const cleared = key % 4 === 1;
      assert.is(r.m.forKey(key).get('x'), even || cleared ? undefined : key, `m ${key} x`);
      assert.is(r.m.forKey(key).get('y'), cleared ? undefined : -key, `m ${key} y`);
    }
    await reader.close();
  });

  S(`${k.name}: compaction of a stored chain equals the live state, and later checkpoints of the chain apply on top of it`, async () => {
    const where = k.fresh();
    const storage = await k.open(where, { retain: 1 });
    const store = await StateStore.create({ checkpoints: incremental(20) });
    const h = declare(store);
    const model = new Model();
    const r = rng(40);
    for (let i = 0; i < 6; i++) {
      randomOps(h, model, r, 400, 200);
      await store.checkpointTo(storage);
    }
    const chain = await k.listing(where);
    assert.is(chain.length, 6, 'one chain of six');
    const compacted = await compact(await Promise.all(chain.map((c) => storage.open(c.name))));
    assertStore(await StateStore.restore([compacted]), model, 'compacted chain');

    randomOps(h, model, r, 400, 200);
    const next = await store.checkpointTo(storage);
    assert.is(next.parentId, chain[5].id);
    const delta = await k.readRaw(where, next.name);
    assertStore(await StateStore.restore([compacted, delta]), model, 'compacted chain plus a later delta');
    await storage.close();
  });

  S(`${k.name}: enableCheckpointing produces a chain, stops cleanly, and leaves it restorable`, async () => {
    const where = k.fresh();
    const storage = await k.open(where, { retain: 2 });
    const store = await StateStore.create();
    const h = declare(store);
    const model = new Model();
    const r = rng(70);
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
    for (let i = 0; i < 80 && events.length < 8; i++) {
      randomOps(h, model, r, 100, 200);
      await sleep(10);
    }
    await ctl.stop();
    assert.equal(errors, []);
    assert.ok(events.length >= 5, `${events.length} checkpoints`);
    assert.ok(events.some((e) => e.kind === 'full') && events.some((e) => e.kind === 'incremental'));
    await assertTidy(where, 'after stop');
    await store.checkpointTo(storage);
    assertStore(await StateStore.restoreFrom(storage), model, 'restored');
    await storage.close();
  });
}
