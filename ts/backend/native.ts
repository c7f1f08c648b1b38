/**
 * The native backend (Node only): the napi-rs addon of crates/keystate-node.
 * Its stores hand the API buffers of their own (V8 `ArrayBuffer`s the addon
 * keeps), and it exports checkpoints and parses restores on worker threads.
 *
 * The addon is looked for where a build of this checkout puts it
 * (dist/native/, beside this file's folder: never in the published
 * package), then in the platform package npm installs as an optional
 * dependency (`keystate-<platform>`, made by `napi create-npm-dirs`).
 */
import { createRequire } from 'node:module';
import { BackendLoadError } from '../errors.js';
import type { Backend, CoreRestorer, CoreStore } from './types.js';

/** What the addon exports (see crates/keystate-node/src). */
interface Addon {
  NativeStore: new (mp: number, start: number, end: number, id: Uint8Array) => CoreStore & NativeBuffers;
  NativeRestorer: new (start: number, end: number, id: Uint8Array) => CoreRestorer;
  memoryBytes(): number;
  version(): string;
}

interface NativeBuffers {
  argBuffer(): ArrayBuffer;
  resultBuffer(): ArrayBuffer;
}

/** napi-rs's name for this platform (`linux-x64-gnu`, `darwin-arm64`, ...), or null. */
export function platformTriple(): string | null {
  const { platform, arch } = process;
  if (platform === 'linux') {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
    const libc = report?.header?.glibcVersionRuntime ? 'gnu' : 'musl';
    return arch === 'x64' || arch === 'arm64' ? `linux-${arch}-${libc}` : null;
  }
  if (platform === 'darwin') return arch === 'x64' || arch === 'arm64' ? `darwin-${arch}` : null;
  if (platform === 'win32') return arch === 'x64' || arch === 'arm64' ? `win32-${arch}-msvc` : null;
  return null;
}

function nativeBackend(addon: Addon): Backend {
  return {
    name: 'native',
    newStore: (mp, start, end, id) => new addon.NativeStore(mp, start, end, id),
    newRestorer: (start, end, id) => new addon.NativeRestorer(start, end, id),
    argBuffer: (s) => (s as CoreStore & NativeBuffers).argBuffer(),
    resultBuffer: (s) => (s as CoreStore & NativeBuffers).resultBuffer(),
    memoryBytes: () => addon.memoryBytes(),
  };
}

let backend: Backend | undefined;

/** Loads the addon, or throws a BackendLoadError naming every place tried. */
export function loadNative(): Backend {
  if (backend) return backend;
  const triple = platformTriple();
  if (triple === null) {
    throw new BackendLoadError('BACKEND_UNAVAILABLE', `the native backend has no build for ${process.platform}-${process.arch}: use the wasm backend`);
  }
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  for (const where of [`../native/keystate.${triple}.node`, `keystate-${triple}`]) {
    try {
      backend = nativeBackend(require(where) as Addon);
      return backend;
    } catch (e) {
      tried.push(`${where} (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
    }
  }
  throw new BackendLoadError('BACKEND_UNAVAILABLE', `the native backend could not be loaded; tried ${tried.join('; ')}. Install the optional dependency keystate-${triple}, build it (node build.mjs native), or use the wasm backend`);
}
