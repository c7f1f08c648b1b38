// @ts-check
// Gets a Rust toolchain that builds wasm32-unknown-unknown, then the CLI tools
// the wasm step needs (wasm-pack, wasm-bindgen), cached in .tools/cargo.
// Returns the environment later build steps run in.
//
// On a fresh machine the slow part is building the tools; the independent jobs
// (wasm-pack, wasm-bindgen-cli, the Debian wasm32 std) run at the same time,
// with output lines tagged [job], and the tools are built lean (TOOL_BUILD):
// about 2.5 min on two cores instead of 5 to 6 when built one after another.
//
// Toolchain, first that works:
//   a. the rustc on PATH already has the wasm32 std (rustup with the target);
//   b. Debian's rustc (/usr/bin) has a wasm32 std built earlier by (c);
//   c. Debian, as root: apt-get install Debian's Rust, build the wasm32 std
//      from its vendored sources (rustup cannot download it on these machines);
//   d. otherwise stop and print the commands to run.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const TARGET = 'wasm32-unknown-unknown';
const WASM_PACK_VERSION = '0.15.1';
const DEBIAN_PACKAGES = ['rustc-web', 'cargo-web', 'rust-web-src', 'rust-web-llvm', 'lld-22'];
const DEBIAN_RUSTC = '/usr/bin/rustc';
const DEBIAN_CARGO = '/usr/bin/cargo';
const STD_RUSTFLAGS = '-Cembed-bitcode=yes -Zforce-unstable-if-unmarked';
// Release profile for the tool builds: only their compile time matters. Unoptimised,
// they build in about 40% of the CPU time of the default profile (opt-level 3),
// and wasm-bindgen still takes only ~0.3 s (instead of ~0.1 s) on our wasm.
const TOOL_BUILD = {
  CARGO_PROFILE_RELEASE_OPT_LEVEL: '0',
  CARGO_PROFILE_RELEASE_LTO: 'off',
  CARGO_PROFILE_RELEASE_CODEGEN_UNITS: '16',
  CARGO_PROFILE_RELEASE_DEBUG: '0',
  CARGO_INCREMENTAL: '0',
};

/** @param {string} cmd @param {string[]} args @param {import('node:child_process').SpawnSyncOptions} [opts] */
export function run(cmd, args, opts = {}) {
  console.log(`$ ${[cmd, ...args].join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.error) console.error(`${cmd}: ${r.error.message}`);
  return r.status === 0;
}

/**
 * Runs a command without blocking, each output line prefixed with `[tag] `, so
 * concurrent jobs stay readable. Rejects when it fails.
 * @param {string} tag @param {string} cmd @param {string[]} args @param {import('node:child_process').SpawnOptions} [opts]
 * @returns {Promise<void>}
 */
function mustAsync(tag, cmd, args, opts = {}) {
  const line = [cmd, ...args].join(' ');
  console.log(`[${tag}] $ ${line}`);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const [from, to] of /** @type {const} */ ([[child.stdout, process.stdout], [child.stderr, process.stderr]])) {
      readline.createInterface({ input: from }).on('line', (l) => to.write(`[${tag}] ${l}\n`));
    }
    child.on('error', (e) => reject(new Error(`${cmd}: ${e.message}`)));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`command failed: ${line}`))));
  });
}

/** @param {string} tag @param {string} what @param {() => Promise<void>} job */
async function timed(tag, what, job) {
  const t0 = performance.now();
  console.log(`[${tag}] ${what}`);
  await job();
  console.log(`[${tag}] done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

/** stdout of a command, or null when it fails or is missing. @param {string} cmd @param {string[]} args */
function capture(cmd, args, env = process.env) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'ignore'] });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** The rustup cargo (~/.cargo/bin): newest features for host builds. Falls back to PATH. */
export function rustupCargo() {
  const home = process.env.CARGO_HOME ?? path.join(os.homedir(), '.cargo');
  const cargo = path.join(home, 'bin', 'cargo');
  return fs.existsSync(cargo) ? cargo : 'cargo';
}

/** True when `rustc` can compile a crate using std for wasm32 (catches a missing or stale std). @param {string} rustc */
function hasWasmStd(rustc, env = process.env) {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ks-probe-'));
  const r = spawnSync(rustc, ['--target', TARGET, '--crate-type', 'lib', '--crate-name', 'probe',
    '--emit', 'metadata', '--out-dir', out, '-'],
  { input: 'pub fn f() -> Vec<u8> { Vec::new() }', env, stdio: ['pipe', 'ignore', 'ignore'] });
  fs.rmSync(out, { recursive: true, force: true });
  return r.status === 0;
}

/** @param {string} first */
function withPath(first, env = process.env) {
  return { ...env, PATH: [first, env.PATH].join(path.delimiter) };
}

function isDebianRoot() {
  return fs.existsSync('/etc/debian_version') && process.getuid?.() === 0 && fs.existsSync('/usr/bin/apt-get');
}

async function aptInstall() {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const args = ['install', '-y', ...DEBIAN_PACKAGES];
  try {
    await mustAsync('apt', 'apt-get', args, { env });
  } catch {
    await mustAsync('apt', 'apt-get', ['update'], { env });
    await mustAsync('apt', 'apt-get', args, { env });
  }
}

/** /usr/src/rustc-X/library/vendor, preferring the version of Debian's rustc. */
function findVendorDir() {
  const version = capture(DEBIAN_RUSTC, ['--version'])?.split(' ')[1];
  const dirs = fs.readdirSync('/usr/src')
    .filter((d) => d.startsWith('rustc-') && fs.existsSync(`/usr/src/${d}/library/vendor`))
    .sort();
  const dir = dirs.find((d) => d === `rustc-${version}`) ?? dirs.at(-1);
  if (!dir) throw new Error('no /usr/src/rustc-*/library/vendor (is rust-web-src installed?)');
  return `/usr/src/${dir}/library/vendor`;
}

/** Builds the wasm32 std with Debian's cargo in a throwaway crate, copies it into the sysroot. @param {string} root */
async function buildDebianStd(root) {
  const vendor = findVendorDir();
  const dir = path.join(root, 'target', 'wasm32-std');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'src'), { recursive: true });
  // Empty [workspace]: the crate lives inside keystate's workspace but is not a member.
  fs.writeFileSync(path.join(dir, 'Cargo.toml'), `[package]
name = "wasm32-std"
version = "0.0.0"
edition = "2021"

[lib]
crate-type = ["cdylib"]

[profile.release]
panic = "abort"

[workspace]
`);
  fs.writeFileSync(path.join(dir, 'src', 'lib.rs'),
    '#[no_mangle]\npub extern "C" fn f(x: u32) -> u32 { (0..x).collect::<Vec<u32>>().len() as u32 }\n');
  // std's dependencies come from Debian's vendored sources, never from crates.io.
  fs.writeFileSync(path.join(dir, 'vendor.toml'),
    `[source.crates-io]\nreplace-with = "vendored"\n[source.vendored]\ndirectory = "${vendor}"\n`);
  const env = {
    ...withPath('/usr/bin'),
    RUSTC_BOOTSTRAP: '1',
    RUSTFLAGS: STD_RUSTFLAGS,
    CARGO_TARGET_DIR: path.join(dir, 'target'),
  };
  await mustAsync('wasm32-std', DEBIAN_CARGO, ['--config', 'vendor.toml', 'build', '--release', '--target', TARGET,
    '-Zbuild-std=std,panic_abort'], { cwd: dir, env });

  const deps = path.join(dir, 'target', TARGET, 'release', 'deps');
  const dest = path.join(capture(DEBIAN_RUSTC, ['--print', 'sysroot']) ?? '/usr', 'lib', 'rustlib', TARGET, 'lib');
  fs.mkdirSync(dest, { recursive: true });
  // Old rlibs from another rustc version would make std ambiguous.
  for (const f of fs.readdirSync(dest)) if (/^lib.*\.rlib$/.test(f)) fs.rmSync(path.join(dest, f));
  const rlibs = fs.readdirSync(deps).filter((f) => /^lib.*\.rlib$/.test(f));
  for (const f of rlibs) fs.copyFileSync(path.join(deps, f), path.join(dest, f));
  console.log(`[wasm32-std] copied ${rlibs.length} rlibs into ${dest}`);
  fs.rmSync(dir, { recursive: true, force: true });
}

function stopWithInstructions() {
  throw new Error(`no Rust toolchain here can build for ${TARGET}. Run one of:
  rustup target add ${TARGET}
or, on Debian 12 where rustup cannot download that target, as root:
  node build.mjs toolchain
which runs
  apt-get install -y ${DEBIAN_PACKAGES.join(' ')}
and builds std with /usr/bin/cargo in a throwaway crate (see scripts/toolchain.mjs):
  RUSTC_BOOTSTRAP=1 RUSTFLAGS="${STD_RUSTFLAGS}" cargo --config vendor.toml \\
    build --release --target ${TARGET} -Zbuild-std=std,panic_abort
  (vendor.toml replaces crates-io by the directory /usr/src/rustc-*/library/vendor)
  cp target/${TARGET}/release/deps/lib*.rlib /usr/lib/rustlib/${TARGET}/lib/`);
}

/**
 * The environment whose rustc and cargo build wasm32, and the one-time setup
 * it still needs, if any. Throws at once when there is no way to get one.
 * @param {string} root @returns {{ env: NodeJS.ProcessEnv, setup?: () => Promise<void> }}
 */
function wasmRust(root) {
  if (hasWasmStd('rustc')) {
    console.log(`toolchain: rustc on PATH has ${TARGET}`);
    return { env: process.env };
  }
  const debian = withPath('/usr/bin');
  if (fs.existsSync(DEBIAN_RUSTC) && hasWasmStd(DEBIAN_RUSTC)) {
    console.log(`toolchain: Debian's rustc with a locally built ${TARGET} std`);
    return { env: debian };
  }
  if (!isDebianRoot()) stopWithInstructions();
  const setup = async () => {
    await aptInstall();
    await buildDebianStd(root);
    if (!hasWasmStd(DEBIAN_RUSTC)) throw new Error(`the freshly built ${TARGET} std does not work`);
  };
  return {
    env: debian,
    setup: () => timed('wasm32-std', `installing Debian's Rust (${DEBIAN_PACKAGES.join(' ')}) and building the ${TARGET} std from source (about a minute)`, setup),
  };
}

/** The wasm-bindgen crate version the binding uses (the CLI must match it exactly). @param {string} root */
export function wasmBindgenVersion(root) {
  const lock = path.join(root, 'Cargo.lock');
  if (fs.existsSync(lock)) {
    const m = fs.readFileSync(lock, 'utf8').match(/name = "wasm-bindgen"\nversion = "([^"]+)"/);
    if (m) return m[1];
  }
  const toml = fs.readFileSync(path.join(root, 'crates', 'keystate-wasm', 'Cargo.toml'), 'utf8');
  const m = toml.match(/^wasm-bindgen\s*=\s*(?:\{[^}]*version\s*=\s*)?"=([^"]+)"/m);
  if (!m) throw new Error('cannot find the wasm-bindgen version in Cargo.lock or crates/keystate-wasm/Cargo.toml');
  return m[1];
}

/** @typedef {{ crate: string, bin: string, version: string, flags?: string[] }} Tool */

/**
 * cargo install the tool into `toolsDir` unless its binary there already reports its version.
 * @param {string} toolsDir @param {Tool} tool @returns {Promise<void> | undefined}
 */
function ensureTool(toolsDir, { crate, bin, version, flags = [] }) {
  const have = capture(path.join(toolsDir, 'bin', bin), ['--version'])?.split(/\s+/)[1];
  if (have === version) {
    console.log(`${bin} ${version}: cached in ${toolsDir}`);
    return;
  }
  const args = ['install', crate, '--version', `=${version}`, '--root', toolsDir, '--force', ...flags];
  const env = { ...process.env, ...TOOL_BUILD };
  const cargo = rustupCargo();
  return timed(crate, `building ${crate} ${version} (found ${have ?? 'none'}); a few minutes the first time`, async () => {
    try {
      await mustAsync(crate, cargo, [...args, '--locked'], { env });
    } catch {
      // Some locked versions are missing from registry mirrors; then resolve afresh.
      console.log(`[${crate}] --locked failed; retrying without it`);
      await mustAsync(crate, cargo, args, { env });
    }
  });
}

/** @param {string} root @returns {Promise<NodeJS.ProcessEnv>} */
export async function toolchain(root) {
  const { env, setup } = wasmRust(root);
  const toolsDir = path.join(root, '.tools', 'cargo');
  /** @type {Tool[]} */
  const tools = [
    { crate: 'wasm-pack', bin: 'wasm-pack', version: WASM_PACK_VERSION },
    // The default feature rustls-tls (ring, rustls: C and asm builds) only serves
    // the test runner's HTTPS WebDriver connections; the wasm-bindgen binary never downloads.
    { crate: 'wasm-bindgen-cli', bin: 'wasm-bindgen', version: wasmBindgenVersion(root), flags: ['--no-default-features'] },
  ];
  // Independent jobs, all at once: on two cores this beats one after another.
  const rustSetup = setup?.();
  // The tools build with rustup's cargo; without one, with the cargo the setup installs.
  if (capture(rustupCargo(), ['--version']) === null) await rustSetup;
  const jobs = [rustSetup, ...tools.map((tool) => ensureTool(toolsDir, tool))];
  // Wait for every job, so no build is left running behind an early failure.
  const failures = (await Promise.allSettled(jobs)).flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
  if (failures.length) throw new Error(failures.map((e) => (e instanceof Error ? e.message : String(e))).join('; '));
  const bins = [path.join(toolsDir, 'bin'), path.join(root, 'node_modules', '.bin')];
  return { ...env, PATH: [...bins, env.PATH].join(path.delimiter) };
}
