/**
 * Loading the WebAssembly core: `initKeystate` with the sources users hand in,
 * and the `WasmLoadError` each wrong one gives (what came from where, and the
 * fix), in Node and in the browser. Runs its failing loads first, before any
 * store has loaded the core: once loaded, a realm keeps its core.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { initKeystate, KeystateError, readFixture, StateStore, WasmLoadError, type WasmSource } from './_backend.js';
import { rejectsKs } from './_util.js';

const Load = suite('loading the wasm');

const bad = (source: WasmSource, what: string) => rejectsKs(() => initKeystate(source), WasmLoadError, 'WASM_LOAD', what);

Load('bytes that are not WebAssembly (an HTML page) name what they start with', async () => {
  const e = await bad(new TextEncoder().encode('<!doctype html><html><body>404</body></html>'), 'HTML bytes');
  assert.ok(e instanceof KeystateError);
  assert.match(e.message, 'is not WebAssembly (it starts with "<!doctype html><"');
  assert.match(e.message, 'initKeystate()', 'says how to fix it');
});

Load('empty bytes, a wasm header with a broken body, a file: URL, a number: each a WasmLoadError', async () => {
  assert.match((await bad(new ArrayBuffer(0), 'empty')).message, 'is empty');
  const broken = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0xff, 0xff]);
  const e = await bad(broken, 'broken module');
  assert.match(e.message, 'does not compile');
  assert.ok((e as { cause?: unknown }).cause instanceof Error, 'cause: the CompileError');
  assert.match((await bad(new URL('file:///tmp/keystate.wasm'), 'file: URL')).message, 'pass the file\'s bytes');
  assert.match((await bad(42 as unknown as WasmSource, 'a number')).message, 'cannot load WebAssembly from [object Number]');
});

Load('a failed load loads nothing: the next store fails the same way, and no half-loaded core is kept', async () => {
  await rejectsKs(() => StateStore.create(), WasmLoadError, 'WASM_LOAD', 'create after a failed init');
});

Load('a Response: a 404 names its status, a non-wasm body what it starts with, also as a promise', async () => {
  const notFound = new Response('not found', { status: 404, statusText: 'Not Found' });
  assert.match((await bad(notFound, '404')).message, 'answered 404 Not Found');
  const html = () => new Response('<!doctype html>', { headers: { 'Content-Type': 'text/html' } });
  assert.match((await bad(html(), 'HTML response')).message, 'is not WebAssembly');
  assert.match((await bad(Promise.resolve(html()), 'promise of an HTML response')).message, 'is not WebAssembly');
  // Served as application/wasm, the body is compiled while it streams: the CompileError is wrapped too.
  const streamed = new Response('<!doctype html>', { headers: { 'Content-Type': 'application/wasm' } });
  assert.match((await bad(streamed, 'HTML served as wasm')).message, 'does not compile');
});

Load('a compiled WebAssembly.Module loads; once loaded, later sources are not used', async () => {
  const bytes = await readFixture('../dist/wasm/keystate_wasm_bg.wasm');
  await initKeystate(await WebAssembly.compile(bytes.slice()));
  const store = await StateStore.create();
  store.valueState<number>('n', { codec: 'number' }).set('k', 1);
  await initKeystate(new Uint8Array(4)); // not even looked at: the core is loaded
  assert.is(store.valueState<number>('n', { codec: 'number' }).get('k'), 1);
  assert.is((await StateStore.create()).memory().entries, 0);
});

Load.run();
