/**
 * Backends side by side: in Node a store can ask for either one, both give
 * the same checkpoint bytes for the same scenario, and checkpoints move
 * freely between them; in a browser only wasm exists, and asking for the
 * native one is a typed error, as is asking for one that does not exist.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BackendLoadError, backendName, StateStore } from './_backend.js';
import { assertStore, declare, Model, randomOps } from './_model.js';
import { checkpointBytes, rejectsKs, rng } from './_util.js';

const Backends = suite('backends');
const inNode = backendName !== 'browser';

/** The same store, operations and checkpoints on backend `name`. */
async function scenario(name: 'wasm' | 'native') {
  const store = await StateStore.create({ backend: name, maxParallelism: 64, storeId: new Uint8Array(16).fill(5), checkpoints: { incremental: true } });
  const h = declare(store);
  const model = new Model();
  const r = rng(21);
  randomOps(h, model, r, 3000, 800);
  const full = await checkpointBytes(store);
  randomOps(h, model, r, 500, 800);
  const delta = await checkpointBytes(store);
  return { store, model, full, delta };
}

Backends('a store says which backend runs it; memory() says what that backend holds', async () => {
  const store = await StateStore.create();
  const m = store.memory();
  assert.is(m.backend, store.backend);
  assert.ok(m.backendBytes > 0);
  assert.is(m.wasmMemoryBytes, store.backend === 'wasm' ? m.backendBytes : 0);
  if (backendName === 'wasm' || backendName === 'native') assert.is(store.backend, backendName, 'TEST_BACKEND forces it, as KEYSTATE_BACKEND does');
  if (backendName === 'browser') assert.is(store.backend, 'wasm');
});

if (inNode) {
  Backends('wasm and native give the same checkpoint bytes for the same scenario', async () => {
    const w = await scenario('wasm');
    const n = await scenario('native');
    assert.is(w.store.backend, 'wasm');
    assert.is(n.store.backend, 'native');
    assert.ok(w.full.length > 10_000);
    assert.equal(n.full, w.full, 'full checkpoint');
    assert.is(w.delta.length < w.full.length, true);
    assert.equal(n.delta, w.delta, 'incremental checkpoint');
  });

  Backends('checkpoints of one backend restore on the other, and chains continue there', async () => {
    const n = await scenario('native');
    const onWasm = await StateStore.restore([n.full, n.delta], { backend: 'wasm', checkpoints: { incremental: true } });
    assert.is(onWasm.backend, 'wasm');
    assertStore(onWasm, n.model, 'native chain on wasm');
    // The restored store continues the chain: its next incremental extends the native one.
    randomOps(declare(onWasm), n.model, rng(5), 300, 800);
    const next = await checkpointBytes(onWasm);
    const back = await StateStore.restore([n.full, n.delta, next], { backend: 'native' });
    assert.is(back.backend, 'native');
    assertStore(back, n.model, 'native, then wasm, restored on native');
  });
} else {
  Backends('in a browser the native backend is a typed error', async () => {
    const e = await rejectsKs(() => StateStore.create({ backend: 'native' }), BackendLoadError, 'BACKEND_UNAVAILABLE', 'native in a browser');
    assert.match(e.message, 'Node only');
    await rejectsKs(() => StateStore.restore([new Uint8Array(8)], { backend: 'native' }), BackendLoadError, 'BACKEND_UNAVAILABLE', 'restore');
  });
}

Backends('a backend that does not exist is a typed error naming the ones that do', async () => {
  const e = await rejectsKs(() => StateStore.create({ backend: 'gpu' as 'wasm' }), BackendLoadError, 'BACKEND_UNAVAILABLE', 'unknown backend');
  assert.match(e.message, "'native' and 'wasm'");
});

Backends.run();
