/**
 * keystate's browser entry point (the `browser` and `import` conditions of
 * package.json): keystate/slim plus the wasm's default place, beside this
 * file. Nothing is fetched until the first `StateStore.create`/`restore` (or
 * `initKeystate()`), so importing keystate needs no top-level await.
 *
 * The literal `new URL('./wasm/...', import.meta.url)` is the pattern Vite,
 * webpack 5, Rollup and Parcel follow: they copy the wasm into the build
 * and rewrite the URL. esbuild leaves it as is; see the README.
 */
import { setLoaders } from './backend/load.js';
import { instantiateWasm } from './backend/source.js';

setLoaders({ wasm: () => instantiateWasm(new URL('./wasm/keystate_wasm_bg.wasm', import.meta.url)) }, ['wasm']);

export * from './slim.js';
