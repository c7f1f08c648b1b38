// Browser checkpoint storage, OpfsStorage and IndexedDbStorage, each checked
// straight in OPFS or IndexedDB: chains and restore, retention (no orphan,
// nothing a retained chain needs deleted), interrupted writers (aborted, and
// abandoned then reopened), corrupt listings, failed commits, periodic
// checkpointing, and openBrowserStorage's choice; one writer per storage (Web
// Locks) between pages, frames and workers (Peer, _storage.peer.ts), read-only
// opens beside a writer, and NO_CHECKPOINT for a checkpoint deleted while it is
// read. In Node (neither API) the storages must refuse with STORAGE_UNAVAILABLE;
// argument checks run everywhere.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  IndexedDbStorage, InvalidArgumentError, KeystateError, OpfsStorage, openBrowserStorage, StateStore, StorageError,
  type BrowserStorage, type StoredCheckpoint,
} from './_backend.js';
import { hasIdb, hasOpfs, idb, opfs, opfsDir, Peer, uniqueName, withDb, writeOpfsFile, type Kind } from './_browserstorage.js';
import { chainIn } from './_memstorage.js';
import { assertStore, declare, Model, randomOps } from './_model.js';
import { rejectsKs, rng } from './_util.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const incremental = (maxIncrementals = 3) => ({ incremental: true, maxIncrementals, maxChainRatio: 0 });
const META = { storeId: '0'.repeat(32), checksum: '0'.repeat(16), createdAt: 0 };

// ---- everywhere: arguments, and what a place without the APIs says ---------------------------

const Args = suite('browser storage: arguments and availability');

Args('bad names and retain counts are INVALID_ARGUMENT, before anything is opened', async () => {
  for (const name of ['', '.', '..', 'a/b', 'a\\b', 'x'.repeat(256), 7 as unknown as string]) {
    for (const open of [OpfsStorage.open, IndexedDbStorage.open, openBrowserStorage] as ((n: string, o?: object) => Promise<unknown>)[]) {
      await rejectsKs(() => open(name), InvalidArgumentError, 'INVALID_ARGUMENT', `name ${JSON.stringify(name)}`);
    }
  }
  await rejectsKs(() => openBrowserStorage('ok', { retain: 0 }), InvalidArgumentError, 'INVALID_ARGUMENT', 'retain 0');
  await rejectsKs(() => OpfsStorage.open('ok', { retain: 1.5 }), InvalidArgumentError, 'INVALID_ARGUMENT', 'retain 1.5');
  await rejectsKs(() => IndexedDbStorage.open('ok', { retain: -1 }), InvalidArgumentError, 'INVALID_ARGUMENT', 'retain -1');
});

Args('bad access options (readOnly, lock) are INVALID_ARGUMENT, before anything is opened', async () => {
  const cases: [string, object][] = [
    ['readOnly not a boolean', { readOnly: 1 }],
    ['lock with readOnly', { readOnly: true, lock: {} }],
    ['create: true with readOnly', { readOnly: true, create: true }],
    ['cleanup: true with readOnly', { readOnly: true, cleanup: true }],
    ['lock not an object', { lock: 'wait' }],
    ['lock.wait not a boolean', { lock: { wait: 'yes' } }],
    ['lock.timeoutMs negative', { lock: { timeoutMs: -5 } }],
    ['lock.timeoutMs NaN', { lock: { wait: true, timeoutMs: NaN } }],
    ['timeoutMs with wait: false', { lock: { wait: false, timeoutMs: 10 } }],
  ];
  for (const [what, opts] of cases) {
    for (const open of [OpfsStorage.open, IndexedDbStorage.open, openBrowserStorage] as ((n: string, o?: object) => Promise<unknown>)[]) {
      await rejectsKs(() => open('never-created', opts), InvalidArgumentError, 'INVALID_ARGUMENT', what);
    }
  }
});

if (!hasOpfs() && !hasIdb()) {
  Args('without OPFS and IndexedDB (Node): STORAGE_UNAVAILABLE from the factory and both storages', async () => {
    for (const [what, open] of [['factory', openBrowserStorage], ['OpfsStorage', OpfsStorage.open], ['IndexedDbStorage', IndexedDbStorage.open]] as const) {
      const e = await rejectsKs(() => open('checkpoints'), StorageError, 'STORAGE_UNAVAILABLE', what);
      assert.match(e.message, /DirectoryStorage/, `${what}: points Node users to DirectoryStorage`);
    }
  });
}

Args.run();

// ---- per storage kind, in a browser ----------------------------------------------------------

/** The listing equals what is stored: every listed checkpoint complete, nothing else. */
async function assertTidy(k: Kind, name: string, what: string): Promise<StoredCheckpoint[]> {
  const c = await k.contents(name);
  assert.equal([...c.stored.keys()].sort(), c.listed.map((e) => e.name).sort(), `${what}: the listed checkpoints are stored, nothing else`);
  for (const e of c.listed) assert.is(c.stored.get(e.name), e.bytes, `${what}: ${e.name} is whole`);
  assert.equal(c.other, [], `${what}: no other files`);
  return c.listed;
}

async function restoreChain(storage: BrowserStorage, chain: StoredCheckpoint[]): Promise<StateStore> {
  return StateStore.restore(await Promise.all(chain.map((c) => storage.open(c.name))));
}

for (const k of [opfs, idb]) {
  if (!(k === opfs ? hasOpfs() : hasIdb())) continue;
  const S = suite(`${k.kind} storage`);
  const names: string[] = [];
  const fresh = (what: string) => {
    const n = uniqueName(`${k.kind}-${what}`);
    names.push(n);
    return n;
  };
  S.after(async () => {
    for (const n of names) await k.destroy(n);
  });

  S('checkpointTo and restoreFrom: a chain, stored whole, restores exactly from a reopened storage', async () => {
    const name = fresh('chain');
    const storage = await k.open(name, { retain: 100 });
    assert.is(storage.kind, k.kind);
    assert.is(storage.name, name);
    const store = await StateStore.create({ checkpoints: incremental(4) });
    const h = declare(store);
    const model = new Model();
    const r = rng(1);
    for (let i = 0; i < 6; i++) {
      randomOps(h, model, r, 300, 200);
      await store.checkpointTo(storage, { chunkSize: 2048 });
    }
    const listed = await assertTidy(k, name, 'after six checkpoints');
    assert.equal(listed.map((c) => [c.id, c.parentId, c.kind]), [
      [1, null, 'full'], [2, 1, 'incremental'], [3, 2, 'incremental'], [4, 3, 'incremental'], [5, 4, 'incremental'], [6, null, 'full'],
    ]);
    assert.equal(await storage.list(), listed, 'list() is the stored listing');

    randomOps(h, model, r, 300, 200);
    await store.checkpointTo(storage);
    await storage.close();
    const reopened = await k.open(name);
    assert.equal(reopened.removedOnOpen, []);
    let chain: number[] = [];
    const restored = await StateStore.restoreFrom(reopened, { onRestored: (x) => (chain = x.chain.map((c) => c.id)) });
    assert.equal(chain, [6, 7]);
    assertStore(restored, model, 'restored from the reopened storage');
    await rejectsKs(() => reopened.open('ckpt-0000000099-1.ks'), StorageError, 'NO_CHECKPOINT', 'an unlisted name');
  });

  S('an empty storage: NO_CHECKPOINT; create: false on a missing one: STORAGE_IO', async () => {
    await rejectsKs(async () => StateStore.restoreFrom(await k.open(fresh('empty'))), StorageError, 'NO_CHECKPOINT');
    const missing = fresh('missing');
    await rejectsKs(() => k.open(missing, { create: false }), StorageError, 'STORAGE_IO', 'create: false');
    await rejectsKs(() => k.open(missing, { create: false }), StorageError, 'STORAGE_IO', 'and it was not created by the first try');
  });

  for (const keep of [1, 2, 3]) {
    S(`retention keeps the last ${keep} chain(s): no orphan, and every retained chain restores its checkpoint's state`, async () => {
      const name = fresh(`keep${keep}`);
      const storage = await k.open(name, { retain: keep });
      const store = await StateStore.create({ checkpoints: incremental(3) });
      const h = declare(store);
      const model = new Model();
      const models = new Map<number, Model>();
      const r = rng(10 + keep);
      for (let i = 0; i < 10; i++) {
        randomOps(h, model, r, 120, 100);
        const stored = await store.checkpointTo(storage, i % 4 === 3 ? { incremental: false } : {});
        models.set(stored.id, model.clone());
        const listed = await assertTidy(k, name, `after checkpoint ${stored.id}`);
        // The listing is exactly the union of the last `keep` checkpoints' chains.
        const needed = new Set<string>();
        const from = Math.max(0, listed.length - keep);
        for (let t = from; t < listed.length; t++) {
          const chain = chainIn(listed, t);
          assert.ok(chain, `checkpoint ${listed[t].id} has its whole chain`);
          for (const c of chain as StoredCheckpoint[]) needed.add(c.name);
        }
        assert.equal(listed.map((c) => c.name).sort(), [...needed].sort(), `after ${stored.id}: only what the last ${keep} chains need`);
        assert.is(listed[listed.length - 1].id, stored.id);
        for (let t = from; t < listed.length; t++) {
          const chain = chainIn(listed, t) as StoredCheckpoint[];
          assertStore(await restoreChain(storage, chain), models.get(listed[t].id) as Model, `chain of ${listed[t].id} after ${stored.id}`);
        }
      }
    });
  }

  S('retain(k) on demand drops what no longer counts', async () => {
    const name = fresh('retain');
    const storage = await k.open(name, { retain: 10 });
    const store = await StateStore.create({ checkpoints: incremental(2) });
    const h = declare(store);
    for (let i = 0; i < 7; i++) {
      h.v.set(i, i);
      await store.checkpointTo(storage);
    }
    // 1f 2i 3i 4f 5i 6i 7f: the last two chains are [7] and [4, 5, 6].
    const gone = await storage.retain(2);
    assert.equal(gone.map((n) => Number(n.split('-')[1])), [1, 2, 3]);
    assert.equal((await assertTidy(k, name, 'after retain(2)')).map((c) => c.id), [4, 5, 6, 7]);
    assert.equal(await storage.retain(2), [], 'nothing more to drop');
  });

  S('large checkpoints span many writes, chunks and reads, and come back whole', async () => {
    const name = fresh('large');
    const storage = await k.open(name);
    const store = await StateStore.create();
    const h = declare(store);
    for (let i = 0; i < 20_000; i++) h.s.set(i, `${i}:`.padEnd(100 + (i % 50), '#'));
    for (const chunkSize of [1000, 1024 * 1024]) {
      h.s.set('round', String(chunkSize));
      const stored = await store.checkpointTo(storage, { chunkSize, incremental: false });
      assert.ok(stored.bytes > 2_000_000, `${stored.bytes} bytes`);
      await assertTidy(k, name, `chunks of ${chunkSize}`);
      const r = declare(await StateStore.restoreFrom(storage));
      assert.is(r.s.get('round'), String(chunkSize));
      assert.is(r.s.get(19_999), `${19_999}:`.padEnd(100 + (19_999 % 50), '#'));
    }
  });

  S('an interrupted checkpoint (export fails mid-write, writer aborted) leaves nothing listed and nothing stored', async () => {
    const name = fresh('interrupted');
    const storage = await k.open(name);
    const store = await StateStore.create({ checkpoints: incremental(10) });
    const h = declare(store);
    const model = new Model();
    const r = rng(3);
    randomOps(h, model, r, 400, 200);
    const one = await store.checkpointTo(storage);
    randomOps(h, model, r, 2000, 2000);
    let chunks = 0;
    let error: unknown;
    await store
      .checkpointTo(storage, {
        chunkSize: 1024,
        onProgress: () => {
          if (++chunks === 5) throw new Error('interrupted');
        },
      })
      .catch((e) => (error = e));
    assert.match(String(error), /interrupted/);
    assert.is(store.lastConfirmedCheckpoint()?.id, one.id, 'nothing confirmed');
    assert.equal((await assertTidy(k, name, 'after the interruption')).map((c) => c.id), [one.id]);

    // The writer API directly: written, then aborted; over and over, each checked at once (a browser
    // may release an aborted file's lock a moment late).
    for (let i = 0; i < 10; i++) {
      const w = await storage.begin(50 + i);
      await w.write(new Uint8Array(i % 2 ? 300_000 : 1_500_000).fill(7));
      await w.abort();
      await w.abort(); // twice is fine
      await rejectsKs(() => w.write(new Uint8Array(1)), StorageError, 'STORAGE_IO', 'write after abort');
      assert.equal((await assertTidy(k, name, `after abort() ${i + 1}`)).map((c) => c.id), [one.id]);
    }

    const next = await store.checkpointTo(storage);
    assert.equal([next.kind, next.parentId], ['incremental', one.id]);
    assertStore(await StateStore.restoreFrom(await k.open(name, { readOnly: true })), model, 'the next checkpoint is complete');
    await assertTidy(k, name, 'at the end');
  });

  S('a corrupt listing is a typed STORAGE_CORRUPT error, and opening it removes nothing', async () => {
    const entry = { id: 1, parentId: null, kind: 'full', ...META, bytes: 1, name: 'ckpt-0000000001-1.ks' };
    const cases: [string, unknown][] = k === opfs
      ? [
          ['not JSON', '{"format": "keystate-checkp'],
          ["another program's JSON", JSON.stringify({ name: 'something else', version: 1 })],
          ['a newer version', JSON.stringify({ format: 'keystate-checkpoints', version: 2, seq: 0, checkpoints: [] })],
          ['a name that is a path', JSON.stringify({ format: 'keystate-checkpoints', version: 1, seq: 1, checkpoints: [{ ...entry, name: '../x' }] })],
          ['a duplicate name', JSON.stringify({ format: 'keystate-checkpoints', version: 1, seq: 1, checkpoints: [entry, entry] })],
        ]
      : [
          ['a string', 'not an entry'],
          ['a bad kind', { ...entry, kind: 'delta' }],
          ['a name that is not a checkpoint name', { ...entry, name: 'x' }],
        ];
    for (const [what, listing] of cases) {
      const name = fresh('corrupt');
      const storage = await k.open(name);
      const store = await StateStore.create();
      declare(store).v.set('a', 1);
      const stored = await store.checkpointTo(storage);
      await k.corruptListing(name, listing as string);
      await rejectsKs(() => storage.list(), StorageError, 'STORAGE_CORRUPT', `${what}: list() of the open storage`);
      await rejectsKs(() => k.open(name, { readOnly: true }), StorageError, 'STORAGE_CORRUPT', `${what}: a read-only open beside it`);
      await storage.close();
      const e = await rejectsKs(() => k.open(name), StorageError, 'STORAGE_CORRUPT', what);
      assert.match(e.message, k === opfs ? /MANIFEST/ : /listing/, `${what}: says what is corrupt (${e.message})`);
      // The refused open let go of the lock again.
      await rejectsKs(() => k.open(name), StorageError, 'STORAGE_CORRUPT', `${what}: again`);
      assert.ok((await k.contents(name)).stored.has(stored.name), `${what}: the checkpoint is still there`);
    }
  });

  S('a failed commit lists nothing and leaves nothing stored', async () => {
    const name = fresh('failed-commit');
    const storage = await k.open(name);
    const store = await StateStore.create({ checkpoints: incremental(10) });
    const h = declare(store);
    h.v.set('a', 1);
    const one = await store.checkpointTo(storage);
    const bytes = new Uint8Array(100_000).fill(1);
    const attempt = async (meta: object, Class: abstract new (...a: never[]) => Error, code: string, what: string) => {
      const w = await storage.begin(77);
      await w.write(bytes);
      await rejectsKs(() => w.commit({ id: 77, bytes: bytes.length, ...META, ...meta } as never), Class, code, what);
      await rejectsKs(() => w.commit({ id: 77, parentId: null, kind: 'full', bytes: bytes.length, ...META }), StorageError, 'STORAGE_IO', `${what}: commit again`);
      assert.equal((await assertTidy(k, name, what)).map((c) => c.id), [one.id], `${what}: listing unchanged`);
    };
    await attempt({ parentId: 76, kind: 'incremental' }, StorageError, 'MISSING_PARENT', 'an incremental whose parent is not stored');
    await attempt({ parentId: null, kind: 'full', checksum: 'xyz' }, InvalidArgumentError, 'INVALID_ARGUMENT', 'invalid metadata');
    await attempt({ parentId: null, kind: 'full', bytes: 5 }, InvalidArgumentError, 'INVALID_ARGUMENT', 'a byte count that is not what was written');

    // The listing turns corrupt while a checkpoint is written: the commit reads it, and refuses.
    const saved = await k.contents(name);
    const w = await storage.begin(78);
    await w.write(bytes);
    await k.corruptListing(name, 'garbage');
    await rejectsKs(() => w.commit({ id: 78, parentId: null, kind: 'full', bytes: bytes.length, ...META }), StorageError, 'STORAGE_CORRUPT', 'a corrupt listing at commit');
    const after = await k.contents(name);
    assert.equal([...after.stored.keys()], [...saved.stored.keys()], 'the refused checkpoint left no bytes');
    await rejectsKs(() => k.open(name, { readOnly: true }), StorageError, 'STORAGE_CORRUPT', 'still corrupt: nothing was overwritten');
  });

  S('another page opening the storage while a checkpoint is written: as a writer it is refused, read-only it removes nothing; the commit goes through', async () => {
    const name = fresh('second-open');
    const storage = await k.open(name);
    const store = await StateStore.create({ checkpoints: incremental(10) });
    declare(store).v.set('a', 1);
    const one = await store.checkpointTo(storage);
    const bytes = new Uint8Array(2_500_000).fill(3);
    const w = await storage.begin(90);
    await w.write(bytes);
    const e = await rejectsKs(() => k.open(name), StorageError, 'STORAGE_LOCKED', 'a second writer in this page');
    assert.match(e.message, /Web Lock/);
    assert.match(e.message, /readOnly: true/, 'says how to read beside it');
    // What a second tab does at start-up.
    const peer = await Peer.start('page');
    try {
      assert.is((await peer.fails({ op: 'open', kind: k.kind, name })).code, 'STORAGE_LOCKED', 'a writer in another page');
      await peer.must({ op: 'open', kind: k.kind, name, opts: { readOnly: true } });
      assert.equal((await peer.must({ op: 'list' })).names, [one.name], 'the other page lists what is committed');
      const stored = await w.commit({ id: 90, parentId: null, kind: 'full', bytes: bytes.length, ...META });
      assert.equal((await assertTidy(k, name, 'committed')).map((c) => c.id), [one.id, 90], 'nothing of it was removed meanwhile');
      assert.equal((await peer.must({ op: 'list' })).names, [one.name, stored.name], 'and sees the commit');
    } finally {
      peer.kill();
    }
  });

  S('two pages storing 60 checkpoints each (issue 10): the second is refused with STORAGE_LOCKED, restores all of the first\'s read-only, and writes once it closes', async () => {
    const name = fresh('two-pages');
    const storage = await k.open(name);
    const peer = await Peer.start('page');
    try {
      assert.is((await peer.fails({ op: 'open', kind: k.kind, name })).code, 'STORAGE_LOCKED', 'the second page, as a writer');
      const store = await StateStore.create({ checkpoints: incremental(1000) });
      const v = store.valueState<number>('v', { codec: 'number' });
      const ours: string[] = [];
      for (let i = 1; i <= 60; i++) {
        v.set(`A-${i}`, i);
        ours.push((await store.checkpointTo(storage)).name);
      }
      await peer.must({ op: 'open', kind: k.kind, name, opts: { readOnly: true } });
      assert.equal((await peer.must({ op: 'list' })).names, ours, 'all 60 are listed');
      assert.equal((await peer.must({ op: 'restore', tag: 'A', n: 60 })).values, Array.from({ length: 60 }, (_, i) => i + 1), 'and restore');
      assert.is((await peer.fails({ op: 'checkpoints', n: 1, tag: 'B' })).code, 'STORAGE_READ_ONLY', 'a read-only page cannot write');
      await peer.must({ op: 'close' });

      const waiting = peer.send({ op: 'open', kind: k.kind, name, opts: { lock: { wait: true } } });
      await storage.close();
      assert.ok('ok' in (await waiting), 'the waiting page opens once this one closes');
      const theirs = (await peer.must({ op: 'checkpoints', n: 60, tag: 'B' })).names as string[];
      assert.is(theirs.length, 60);
      assert.not.ok(theirs.some((n) => ours.includes(n)), 'no name handed out twice');
      const restored = (await StateStore.restoreFrom(await k.open(name, { readOnly: true }))).valueState<number>('v', { codec: 'number' });
      for (let i = 1; i <= 60; i++) assert.is(restored.get(`B-${i}`), i);
      await assertTidy(k, name, 'after both');
    } finally {
      peer.kill();
    }
  });

  S('a page and a worker: the worker\'s writer refuses the page\'s, which waits, or gives up after timeoutMs; a terminated worker lets it in', async () => {
    const name = fresh('worker');
    const worker = await Peer.start('worker');
    const other = await Peer.start('worker');
    try {
      await worker.must({ op: 'open', kind: k.kind, name });
      await worker.must({ op: 'checkpoints', n: 3, tag: 'W' });
      await rejectsKs(() => k.open(name), StorageError, 'STORAGE_LOCKED', 'the page, while the worker writes');
      const late = await rejectsKs(() => k.open(name, { lock: { wait: true, timeoutMs: 50 } }), StorageError, 'STORAGE_LOCKED', 'after timeoutMs');
      assert.match(late.message, /after waiting \d+ ms/);
      const reader = await k.open(name, { readOnly: true });
      assert.is((await StateStore.restoreFrom(reader)).valueState<number>('v', { codec: 'number' }).get('W-3'), 3, 'read-only beside it');

      const waiting = k.open(name, { lock: { wait: true } });
      worker.kill(); // the worker ends without closing its storage: its lock goes with it
      const storage = await waiting;
      assert.is(storage.readOnly, false);
      // The other way round: the page writes, a worker is refused, and reads.
      assert.is((await other.fails({ op: 'open', kind: k.kind, name })).code, 'STORAGE_LOCKED', 'a worker, while the page writes');
      await other.must({ op: 'open', kind: k.kind, name, opts: { readOnly: true } });
      assert.equal((await other.must({ op: 'restore', tag: 'W', n: 3 })).values, [1, 2, 3]);
      await storage.close();
    } finally {
      worker.kill();
      other.kill();
    }
  });

  S('enableCheckpointing to the storage produces a chain and stops cleanly', async () => {
    const name = fresh('periodic');
    const storage = await k.open(name, { retain: 2 });
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
    for (let i = 0; i < 200 && events.length < 6; i++) {
      randomOps(h, model, r, 100, 200);
      await sleep(10);
    }
    await ctl.stop();
    assert.equal(errors, []);
    assert.ok(events.length >= 5, `${events.length} checkpoints`);
    assert.ok(events.some((e) => e.kind === 'full') && events.some((e) => e.kind === 'incremental'));
    await store.checkpointTo(storage);
    await assertTidy(k, name, 'after stop');
    assertStore(await StateStore.restoreFrom(await k.open(name, { readOnly: true })), model, 'restored');
  });

  S('a listed checkpoint that lost its bytes: strict restore throws, fallback takes the previous one', async () => {
    const name = fresh('lost');
    const storage = await k.open(name, { retain: 3 });
    const store = await StateStore.create({ checkpoints: incremental(10) });
    const h = declare(store);
    const model = new Model();
    const models: Model[] = [];
    for (let i = 0; i < 3; i++) {
      randomOps(h, model, rng(20 + i), 300, 100);
      await store.checkpointTo(storage);
      models.push(model.clone());
    }
    const last = (await storage.list())[2].name;
    if (k === opfs) {
      const file = await (await (await opfsDir(name)).getFileHandle(last)).getFile();
      await writeOpfsFile(name, last, new Uint8Array(await file.slice(0, file.size - 30).arrayBuffer())); // truncated
    } else {
      await withDb(name, async (db) => {
        const t = db.transaction('chunks', 'readwrite');
        t.objectStore('chunks').delete(IDBKeyRange.bound([last, 0], [last, Infinity]));
        await new Promise((resolve) => (t.oncomplete = resolve));
      });
    }
    await rejectsKs(() => StateStore.restoreFrom(storage), KeystateError, ['TRUNCATED', 'CORRUPT', 'CHECKSUM_MISMATCH', 'STORAGE_CORRUPT'], 'lost bytes');
    let restoredId = 0;
    const restored = await StateStore.restoreFrom(storage, { fallback: true, onRestored: (x) => (restoredId = x.checkpoint.id) });
    assert.is(restoredId, 2);
    assertStore(restored, models[1], 'state of checkpoint 2');
  });

  S('a frame that goes away mid-write takes its lock and its writer with it: the page opens, and removes the abandoned bytes', async () => {
    const name = fresh('abandoned');
    const storage = await k.open(name);
    const store = await StateStore.create({ checkpoints: incremental(10) });
    const h = declare(store);
    const model = new Model();
    randomOps(h, model, rng(5), 300, 100);
    const one = await store.checkpointTo(storage);
    await storage.close();

    // A page that goes away mid-write (as when a tab dies): a frame with a writer of its own.
    const frame = await Peer.start('frame');
    await frame.must({ op: 'open', kind: k.kind, name });
    await frame.must({ op: 'write', id: 2, bytes: 2_500_000 }); // two pieces stored, the rest buffered
    const c = await k.contents(name);
    const orphans = [...c.stored.keys()].filter((n) => !c.listed.some((e) => e.name === n));
    assert.is(orphans.length, 1, 'the abandoned checkpoint has a file or chunks, unlisted');
    await rejectsKs(() => k.open(name), StorageError, 'STORAGE_LOCKED', 'while the frame lives');
    frame.kill();

    // The browser releases the frame's lock, and the OPFS file its writer held, on its own schedule: wait for both.
    const reopen = () => k.open(name, { lock: { wait: true, timeoutMs: 10_000 } });
    let reopened = await reopen();
    for (let i = 0; i < 50 && reopened.removedOnOpen.length === 0; i++) {
      await reopened.close();
      await sleep(100);
      reopened = await reopen();
    }
    assert.equal(reopened.removedOnOpen, orphans, 'reopening removed exactly the abandoned bytes');
    assert.equal((await assertTidy(k, name, 'after reopening')).map((e) => e.id), [one.id]);
    assertStore(await StateStore.restoreFrom(reopened), model, 'the stored state is intact');
    randomOps(h, model, rng(6), 300, 100);
    const next = await store.checkpointTo(reopened);
    assert.equal([next.kind, next.parentId], ['incremental', one.id]);
    assertStore(await StateStore.restoreFrom(reopened), model, 'and the chain goes on');
    await reopened.close();
  });

  S('a checkpoint retention deletes while another reader reads it: NO_CHECKPOINT; restoreFrom takes the new latest', async () => {
    const name = fresh('deleted-while-read');
    const writer = await k.open(name, { retain: 1 });
    const store = await StateStore.create();
    const v = store.valueState<string>('v', { codec: 'string' });
    let n = 0;
    // Full checkpoints of 3 MB: several reads each; with retain 1, each commit deletes the one before.
    const next = async () => {
      v.set('k', `v${++n}:`.padEnd(3_000_000, '.'));
      return store.checkpointTo(writer, { incremental: false });
    };
    const value = (s: StateStore) => s.valueState<string>('v', { codec: 'string' }).get('k')?.split(':')[0];
    const first = await next();
    const reader = await k.open(name, { readOnly: true });
    const r = (await reader.open(first.name)).getReader();
    assert.not.ok((await r.read()).done, 'the first chunk is read');
    await next();
    assert.not.ok((await k.contents(name)).stored.has(first.name), 'retention deleted it');
    const e = await (async () => {
      try {
        while (!(await r.read()).done);
        return null;
      } catch (e) {
        return e;
      }
    })();
    assert.instance(e, StorageError, `reading on fails: ${String(e)}`);
    assert.is((e as StorageError).code, 'NO_CHECKPOINT', String(e));
    assert.match((e as StorageError).message, /retention deleted it while it was read/);
    await rejectsKs(() => reader.open(first.name), StorageError, 'NO_CHECKPOINT', 'and opening it again');

    // restoreFrom, its listed tip deleted before it opens it: it lists again and restores the new latest.
    let fired = false;
    const racing = {
      list: () => reader.list(),
      open: async (x: string) => {
        if (!fired) {
          fired = true;
          await next();
        }
        return reader.open(x);
      },
      begin: (id: number) => reader.begin(id),
      retain: (keep: number) => reader.retain(keep),
    };
    assert.is(value(await StateStore.restoreFrom(racing)), 'v3');
    await writer.close();
  });

  S('without Web Locks (an insecure context): a writer is STORAGE_UNAVAILABLE, a read-only open works', async () => {
    const name = fresh('no-locks');
    await (await k.open(name)).close();
    const proto = Object.getPrototypeOf(navigator) as object;
    const desc = Object.getOwnPropertyDescriptor(proto, 'locks') as PropertyDescriptor;
    Object.defineProperty(proto, 'locks', { ...desc, get: () => undefined });
    try {
      const e = await rejectsKs(() => k.open(name), StorageError, 'STORAGE_UNAVAILABLE', 'a writer');
      assert.match(e.message, /navigator\.locks/);
      assert.match(e.message, /readOnly: true/);
      assert.equal(await (await k.open(name, { readOnly: true })).list(), []);
    } finally {
      Object.defineProperty(proto, 'locks', desc);
    }
  });

  if (k === opfs) {
    S('OPFS: a MANIFEST another page holds open (exclusive) fails the commit; its file is removed', async () => {
      const name = fresh('locked');
      const storage = await k.open(name);
      const store = await StateStore.create({ checkpoints: incremental(10) });
      const h = declare(store);
      h.v.set('a', 1);
      const one = await store.checkpointTo(storage);
      const lock = await (await (await opfsDir(name)).getFileHandle('MANIFEST')).createWritable({ mode: 'exclusive' } as FileSystemCreateWritableOptions);
      try {
        h.v.set('a', 2);
        const e = await rejectsKs(() => store.checkpointTo(storage), StorageError, 'STORAGE_IO', 'MANIFEST locked');
        assert.match(e.message, /NoModificationAllowedError/);
        assert.is(store.lastConfirmedCheckpoint()?.id, one.id, 'nothing confirmed');
      } finally {
        await lock.abort();
      }
      assert.equal((await assertTidy(k, name, 'after the failed commit')).map((e) => e.id), [one.id]);
      const next = await store.checkpointTo(storage);
      assert.equal([next.kind, next.parentId], ['incremental', one.id]);
      assert.is(declare(await StateStore.restoreFrom(storage)).v.get('a'), 2);
    });
  } else {
    S('IndexedDB: the database deleted by another page mid-write fails the checkpoint with STORAGE_IO', async () => {
      const name = fresh('deleted');
      const storage = await k.open(name);
      const store = await StateStore.create({ checkpoints: incremental(10) });
      const h = declare(store);
      h.v.set('a', 1);
      await store.checkpointTo(storage);
      const w = await storage.begin(2);
      await w.write(new Uint8Array(2_000_000));
      await idb.destroy(name); // our connection closes for it (versionchange), so this completes
      await rejectsKs(() => w.commit({ id: 2, parentId: null, kind: 'full', bytes: 2_000_000, ...META }), StorageError, 'STORAGE_IO', 'commit');
      await rejectsKs(() => store.checkpointTo(storage), StorageError, 'STORAGE_IO', 'the next checkpoint');
      // The deleted database's connection closed itself, and let go of the lock (soon: wait for it).
      const again = await k.open(name, { lock: { wait: true, timeoutMs: 10_000 } });
      assert.equal(await again.list(), [], 'a new, empty database');
      await store.checkpointTo(again);
      assert.is(declare(await StateStore.restoreFrom(again)).v.get('a'), 1);
    });
  }

  S.run();
}

// ---- the factory, in a browser ---------------------------------------------------------------

if (hasOpfs() && hasIdb()) {
  const F = suite('openBrowserStorage');
  const proto = () => Object.getPrototypeOf(navigator.storage) as { getDirectory?: unknown };

  /** Runs `f` with navigator.storage.getDirectory replaced (undefined: removed), as a browser without OPFS. */
  async function withGetDirectory(replacement: (() => Promise<never>) | undefined, f: () => Promise<void>) {
    const desc = Object.getOwnPropertyDescriptor(proto(), 'getDirectory') as PropertyDescriptor;
    if (replacement) Object.defineProperty(proto(), 'getDirectory', { ...desc, value: replacement });
    else delete proto().getDirectory;
    try {
      await f();
    } finally {
      Object.defineProperty(proto(), 'getDirectory', desc);
    }
  }

  async function roundTrip(storage: BrowserStorage, value: number) {
    const store = await StateStore.create();
    declare(store).v.set('k', value);
    await store.checkpointTo(storage);
    assert.is(declare(await StateStore.restoreFrom(storage)).v.get('k'), value);
  }

  F('OPFS where it exists; IndexedDB where OPFS is missing, or refused', async () => {
    const name = uniqueName('factory');
    try {
      const a = await openBrowserStorage(name, { retain: 3 });
      assert.is(a.kind, 'opfs');
      assert.instance(a, OpfsStorage);
      assert.is(a.retainChains, 3);
      await roundTrip(a, 1);
      await a.close();

      await withGetDirectory(undefined, async () => {
        const b = await openBrowserStorage(name);
        assert.is(b.kind, 'indexeddb');
        assert.instance(b, IndexedDbStorage);
        await roundTrip(b, 2);
        await b.close();
        await rejectsKs(() => OpfsStorage.open(name), StorageError, 'STORAGE_UNAVAILABLE', 'OpfsStorage without OPFS');
      });
      // Some private modes have the API but refuse it.
      const refuse = () => Promise.reject(new DOMException('The operation is insecure.', 'SecurityError'));
      await withGetDirectory(refuse, async () => {
        const c = await openBrowserStorage(name);
        assert.is(c.kind, 'indexeddb');
        assert.is(declare(await StateStore.restoreFrom(c)).v.get('k'), 2, 'the same database as before');
        await c.close();
        const e = await rejectsKs(() => OpfsStorage.open(name), StorageError, 'STORAGE_UNAVAILABLE', 'OpfsStorage refused');
        assert.is((e as { cause?: { name?: string } }).cause?.name, 'SecurityError');
      });
      assert.is(declare(await StateStore.restoreFrom(await openBrowserStorage(name, { readOnly: true }))).v.get('k'), 1, 'OPFS again');
    } finally {
      await opfs.destroy(name);
      await idb.destroy(name);
    }
  });

  F.run();
}
