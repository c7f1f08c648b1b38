/**
 * Instantiates the WebAssembly core from whatever the environment has: bytes,
 * a compiled module, a Response (or a promise of one), or a URL to fetch.
 * Shared by every entry point; imports nothing environment-specific.
 *
 * Bytes are checked for the wasm magic before compiling, so the common
 * misconfiguration (the server answers a missing .wasm with its HTML page,
 * which WebAssembly reports as "expected magic word 00 61 73 6d") becomes an
 * error that names the URL and the fix.
 */
import { WasmLoadError } from '../errors.js';
import initWasm from '../wasm/keystate_wasm.js';
import type { Backend } from './types.js';
import { wasmBackend } from './wasm.js';

/**
 * Where the WebAssembly core comes from: its bytes, a compiled
 * `WebAssembly.Module`, a `Response` (or a promise of one, e.g. `fetch(url)`),
 * or a URL (`http:`, `https:`, `blob:`, `data:`) to fetch.
 */
export type WasmSource =
  | ArrayBuffer
  | ArrayBufferView
  | WebAssembly.Module
  | Response
  | PromiseLike<Response>
  | URL
  | string;

const HELP = 'serve dist/wasm/keystate_wasm_bg.wasm of the keystate package at that URL, or hand the wasm to initKeystate() (see "In the browser" in the README)';

function describe(bytes: Uint8Array): string {
  const head = Array.from(bytes.subarray(0, 16), (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
  return bytes.length === 0 ? 'is empty' : `starts with "${head}"`;
}

function isWasm(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d;
}

async function compileBytes(bytes: Uint8Array, where: string): Promise<WebAssembly.Module> {
  if (!isWasm(bytes)) {
    throw new WasmLoadError('WASM_LOAD', `${where} is not WebAssembly (it ${describe(bytes)}; a server's HTML page for a missing file?): ${HELP}`);
  }
  try {
    return await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  } catch (e) {
    throw new WasmLoadError('WASM_LOAD', `${where} does not compile: ${e instanceof Error ? e.message : String(e)}`, e);
  }
}

async function compileResponse(res: Response, where: string): Promise<WebAssembly.Module> {
  if (!res.ok) throw new WasmLoadError('WASM_LOAD', `fetching ${where} answered ${res.status} ${res.statusText}: ${HELP}`);
  // Streaming compilation needs the wasm MIME type; the magic check covers everything else.
  if (typeof WebAssembly.compileStreaming === 'function' && res.headers.get('Content-Type')?.split(';')[0].trim() === 'application/wasm') {
    try {
      return await WebAssembly.compileStreaming(res);
    } catch (e) {
      throw new WasmLoadError('WASM_LOAD', `${where} does not compile: ${e instanceof Error ? e.message : String(e)}: ${HELP}`, e);
    }
  }
  return compileBytes(new Uint8Array(await res.arrayBuffer()), where);
}

/** Compiles `source` to a module, with errors that say what was loaded from where. */
export async function compileWasm(source: WasmSource): Promise<WebAssembly.Module> {
  if (source instanceof WebAssembly.Module) return source;
  if (source instanceof ArrayBuffer) return compileBytes(new Uint8Array(source), 'the wasm bytes given');
  if (ArrayBuffer.isView(source)) {
    return compileBytes(new Uint8Array(source.buffer, source.byteOffset, source.byteLength), 'the wasm bytes given');
  }
  if (typeof source === 'string' || source instanceof URL) {
    const url = String(source);
    if (url.startsWith('file:')) {
      throw new WasmLoadError('WASM_LOAD', `cannot fetch ${url}: fetch does not read files; pass the file's bytes instead`);
    }
    let res: Response;
    try {
      res = await fetch(url);
    } catch (e) {
      throw new WasmLoadError('WASM_LOAD', `fetching ${url} failed: ${e instanceof Error ? e.message : String(e)}: ${HELP}`, e);
    }
    return compileResponse(res, url);
  }
  if (typeof Response === 'function' && source instanceof Response) return compileResponse(source, source.url || 'the Response given');
  if (source && typeof (source as PromiseLike<unknown>).then === 'function') return compileWasm(await (source as PromiseLike<WasmSource>));
  throw new WasmLoadError('WASM_LOAD', `cannot load WebAssembly from ${Object.prototype.toString.call(source)}: pass bytes, a WebAssembly.Module, a Response or a URL`);
}

/**
 * The backend over the wasm in `source`. The glue keeps one instance per
 * JavaScript realm: once one is instantiated, later calls return it.
 */
export async function instantiateWasm(source: WasmSource): Promise<Backend> {
  const module = await compileWasm(source);
  const exports = await initWasm({ module_or_path: module });
  return wasmBackend(exports.memory);
}
