/**
 * The `keystate` command line, run as a user runs it: the packed tarball (and
 * the platform package) installed into a fresh project, its bin in a child
 * process, on each Node backend (KEYSTATE_BACKEND). Every command on real
 * checkpoints, corrupt and truncated input (exit 1, a message naming the
 * problem), usage errors (exit 2), `--json` parsed and checked, and split
 * then merge giving back exactly the original state.
 */
// @keystate-test once: it runs its bin on every backend itself.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const root = fileURLToPath(new URL('..', import.meta.url));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ks-cli-'));
const project = path.join(work, 'project');

function run(cmd: string, args: string[], opts: { cwd?: string; input?: Buffer | string; env?: Record<string, string> } = {}) {
  const r = spawnSync(cmd, args, { cwd: opts.cwd ?? project, input: opts.input, encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...opts.env } });
  return { code: r.status, out: r.stdout ?? '', err: r.stderr ?? '' };
}

const Cli = suite('keystate command line');

/** Makes checkpoints through the installed package: a full file, a directory with a chain, and pieces. */
const MAKE = `
import fs from 'node:fs';
import { DirectoryStorage, StateStore } from 'keystate';
const store = await StateStore.create({ maxParallelism: 32, checkpoints: { incremental: true } });
const count = store.valueState('count', { codec: 'number' });
const prefs = store.mapState('prefs', { keyCodec: 'string', valueCodec: 'boolean' });
const seen = store.listState('seen', { codec: 'string' });
const blob = store.valueState('blob', { codec: 'bytes' });
for (let i = 0; i < 3000; i++) count.set('user-' + i, i);
for (let i = 0; i < 50; i++) prefs.forKey('user-' + i).put('dark', i % 2 === 0);
seen.forKey('ada').addAll(['home', 'cart']);
blob.set(7, new Uint8Array([1, 2, 3]));
const dir = await DirectoryStorage.open('dir');
await store.checkpointTo(dir);
count.set('user-1', -1);
count.delete('user-2');
prefs.forKey('user-3').put('dark', true);
await store.checkpointTo(dir);
await dir.close();
const cp = store.checkpoint({ incremental: false });
fs.writeFileSync('full.ks', await cp.bytes());
cp.confirm();
`;

let ks: (args: string[], opts?: { input?: Buffer | string; env?: Record<string, string> }) => ReturnType<typeof run>;

Cli.before(() => {
  const version = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version;
  run(process.execPath, [path.join(root, 'build.mjs'), 'pack'], { cwd: root });
  const pack = path.join(root, 'dist', 'pack');
  const tarballs = [`keystate-${version}.tgz`, ...fs.readdirSync(pack).filter((f) => f.startsWith('keystate-linux-x64-gnu-'))].map((f) => path.join(pack, f));
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'cli-user', private: true, type: 'module' }));
  const install = run('npm', ['install', ...tarballs, '--no-audit', '--no-fund', '--prefer-offline']);
  assert.is(install.code, 0, install.err);
  fs.writeFileSync(path.join(project, 'make.mjs'), MAKE);
  const made = run(process.execPath, ['make.mjs']);
  assert.is(made.code, 0, made.err);
  const bin = path.join(project, 'node_modules', '.bin', 'keystate');
  ks = (args, opts = {}) => run(bin, args, opts);
});

Cli.after(() => fs.rmSync(work, { recursive: true, force: true }));

const json = (r: ReturnType<typeof run>) => JSON.parse(r.out);
const lines = (r: ReturnType<typeof run>) => r.out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));

Cli('--help lists every command with examples; usage errors exit 2', () => {
  const help = ks(['--help']);
  assert.is(help.code, 0);
  for (const c of ['inspect', 'verify', 'ls', 'dump', 'diff', 'compact', 'split', 'merge']) assert.match(help.out, new RegExp(`\\n  ${c}\\b`), c);
  const sub = ks(['split', '--help']);
  assert.is(sub.code, 0);
  assert.match(sub.out, 'Examples:');
  assert.match(sub.out, 'keystate split state.ks --parallelism 4');
  for (const args of [['bogus'], ['verify'], ['split', 'full.ks', '-o', 'x'], ['split', 'full.ks', '-p', '0', '-o', 'x'], ['dump', 'full.ks', '--limit', 'many'], ['inspect', '-', 'full.ks']]) {
    const r = ks(args);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.err}`);
  }
  assert.match(ks(['--version']).out.trim(), /^\d+\.\d+\.\d+/);
});

for (const backend of ['wasm', 'native']) {
  const env = { KEYSTATE_BACKEND: backend };

  Cli(`${backend}: inspect a file, a directory's chain and standard input`, () => {
    const r = json(ks(['inspect', 'full.ks', '--json'], { env }));
    const rep = r.pieces[0].report;
    assert.is(rep.kind, 'full');
    assert.is(rep.maxParallelism, 32);
    assert.equal(rep.keyGroups, { start: 0, end: 31 });
    assert.is(rep.bytes, fs.statSync(path.join(project, 'full.ks')).size);
    assert.equal(rep.states.map((s: { name: string; kind: string }) => [s.name, s.kind]), [['count', 'value'], ['prefs', 'map'], ['seen', 'list'], ['blob', 'value']]);
    assert.is(rep.states[0].records, 2999, 'one key removed');
    assert.is(rep.states[1].records, 50);
    assert.is(rep.records, 2999 + 50 + 1 + 1);
    assert.is(rep.sections.length, 32);
    assert.is(rep.sections.reduce((n: number, s: { records: number }) => n + s.records, 0), rep.records);
    const text = ks(['inspect', 'dir'], { env });
    assert.is(text.code, 0, text.err);
    assert.match(text.out, /chain \(latest in dir\): #1 full .* <- #2 incremental .* of the full\)/);
    const chain = json(ks(['inspect', 'dir', '--json'], { env })).chain;
    assert.equal(chain.map((c: { kind: string }) => c.kind), ['full', 'incremental']);
    assert.ok(chain[1].shareOfFull > 0 && chain[1].shareOfFull < 0.1, `share ${chain[1].shareOfFull}`);
    const piped = ks(['inspect', '-', '--json'], { env, input: fs.readFileSync(path.join(project, 'full.ks')) });
    assert.is(json(piped).pieces[0].report.checksum, rep.checksum, 'standard input');
  });

  Cli(`${backend}: verify passes sound input and names the first problem of bad input`, () => {
    for (const src of [['full.ks'], ['dir']]) {
      const ok = ks(['verify', ...src], { env });
      assert.is(ok.code, 0, ok.err);
      assert.match(ok.out, /^ok: /);
    }
    const full = fs.readFileSync(path.join(project, 'full.ks'));
    fs.writeFileSync(path.join(project, 'trunc.ks'), full.subarray(0, full.length - 100));
    const bad = Buffer.from(full);
    bad[Math.floor(full.length / 2)] ^= 0x20;
    fs.writeFileSync(path.join(project, 'bad.ks'), bad);
    const t = ks(['verify', 'trunc.ks'], { env });
    assert.is(t.code, 1);
    assert.match(t.err, /trunc\.ks: checkpoint is truncated/);
    const b = json(ks(['verify', 'bad.ks', '--json'], { env }));
    assert.is(b.ok, false);
    assert.is(b.pieces[0].error.code, 'CHECKSUM_MISMATCH');
    assert.match(b.pieces[0].error.message, /^bad\.ks: checksum mismatch: section of key group \d+/);
    const lone = ks(['verify', path.join('dir', 'ckpt-0000000002-2.ks')], { env });
    assert.is(lone.code, 1);
    assert.match(lone.err, 'a chain starts with a full checkpoint');
    const inspected = ks(['inspect', 'bad.ks'], { env });
    assert.is(inspected.code, 1, 'inspect refuses it too');
    const progress = ks(['verify', 'full.ks', '--progress'], { env });
    assert.match(progress.err, /full\.ks .*\d+ bytes/, 'a progress bar on stderr');
  });

  Cli(`${backend}: ls lists checkpoints, chains and what retention keeps`, () => {
    const r = json(ks(['ls', 'dir', '--json', '--retain', '1'], { env }));
    assert.is(r.retain, 1);
    assert.equal(r.checkpoints.map((c: { id: number; kind: string }) => [c.id, c.kind]), [[1, 'full'], [2, 'incremental']]);
    assert.ok(r.checkpoints.every((c: { retained: boolean; inLatestChain: boolean }) => c.retained && c.inLatestChain), 'the latest chain needs both');
    assert.equal(r.chains[0].pieces.length, 2);
    assert.match(ks(['ls', 'dir'], { env }).out, /ckpt-0000000002-2\.ks +#2 +incremental +<- #1/);
  });

  Cli(`${backend}: dump decodes entries, filters them, and lists a lone incremental piece's records`, () => {
    const all = lines(ks(['dump', 'full.ks'], { env }));
    assert.is(all.length, 2999 + 50 + 1 + 1);
    assert.ok(all.some((e) => e.state === 'count' && e.key === 'user-1' && e.value === -1));
    assert.ok(all.some((e) => e.state === 'seen' && e.key === 'ada' && e.value.join() === 'home,cart'));
    assert.ok(all.some((e) => e.state === 'prefs' && e.key === 'user-3' && e.userKey === 'dark' && e.value === true));
    assert.ok(all.some((e) => e.state === 'blob' && e.key === 7 && e.value.$base64 === 'AQID'));
    assert.equal(lines(ks(['dump', 'dir', '--state', 'count', '--key', 'user-42'], { env })), [{ state: 'count', key: 'user-42', value: 42 }]);
    assert.is(lines(ks(['dump', 'full.ks', '--limit', '5'], { env })).length, 5);
    const delta = lines(ks(['dump', path.join('dir', 'ckpt-0000000002-2.ks')], { env }));
    assert.equal(delta.filter((r) => r.state === 'count').map((r) => [r.op, r.key]).sort(), [['delete', 'user-2'], ['put', 'user-1']]);
    assert.equal(delta.filter((r) => r.state === 'prefs'), [{ op: 'mapPut', state: 'prefs', key: 'user-3', userKey: 'dark', value: true }]);
    assert.is(ks(['dump', 'full.ks', '--state', 'nope'], { env }).code, 2);
  });

  Cli(`${backend}: diff counts keys added, removed and changed; one incremental piece shows its delta`, () => {
    const r = json(ks(['diff', path.join('dir', 'ckpt-0000000001-1.ks'), 'full.ks', '--json'], { env }));
    const count = r.states.find((s: { state: string }) => s.state === 'count');
    assert.equal([count.added, count.removed, count.changed], [0, 1, 1]);
    const prefs = r.states.find((s: { state: string }) => s.state === 'prefs');
    assert.equal([prefs.added, prefs.removed, prefs.changed], [0, 0, 1]);
    assert.equal(count.examples.find((e: { change: string }) => e.change === 'changed'), { change: 'changed', state: 'count', key: 'user-1', value: -1, before: 1 });
    const same = json(ks(['diff', 'dir', 'full.ks', '--json'], { env }));
    assert.ok(same.states.every((s: { added: number; removed: number; changed: number }) => s.added + s.removed + s.changed === 0), 'the directory\'s chain is full.ks');
    const delta = json(ks(['diff', path.join('dir', 'ckpt-0000000002-2.ks'), '--json'], { env }));
    assert.equal(delta.states.find((s: { state: string }) => s.state === 'count'), { state: 'count', put: 1, delete: 1, mapPut: 0, mapDelete: 0, mapClear: 0, bytes: 1 });
  });

  Cli(`${backend}: compact, then split and merge back to exactly the original state`, () => {
    const c = json(ks(['compact', 'dir', '-o', `compacted-${backend}.ks`, '--json'], { env }));
    assert.is(c.verified, true);
    assert.is(c.entries, 2999 + 50 + 1 + 1);
    assert.is(ks(['verify', `compacted-${backend}.ks`], { env }).code, 0);
    const s = json(ks(['split', 'full.ks', '--parallelism', '3', '-o', `parts-${backend}`, '--json'], { env }));
    assert.equal(s.parts.map((p: { keyGroups: unknown }) => p.keyGroups), [{ start: 0, end: 10 }, { start: 11, end: 21 }, { start: 22, end: 31 }], 'Flink ranges: start = ceil(i * 32 / 3)');
    assert.is(s.parts.reduce((n: number, p: { entries: number }) => n + p.entries, 0), 2999 + 50 + 1 + 1);
    const parts = s.parts.map((p: { file: string }) => p.file);
    const m = ks(['merge', ...parts, '-o', `merged-${backend}.ks`], { env });
    assert.is(m.code, 0, m.err);
    const diff = json(ks(['diff', 'full.ks', `merged-${backend}.ks`, '--json'], { env }));
    assert.ok(diff.states.every((x: { added: number; removed: number; changed: number }) => x.added + x.removed + x.changed === 0), 'split then merge changes nothing');
    const sort = (r: ReturnType<typeof run>) => r.out.trim().split('\n').sort();
    assert.equal(sort(ks(['dump', `merged-${backend}.ks`], { env })), sort(ks(['dump', 'full.ks'], { env })));
    const missing = ks(['merge', parts[0], parts[2], '-o', 'gap.ks'], { env });
    assert.is(missing.code, 1, 'parts that leave key groups out');
    assert.match(missing.err, 'key group');
  });
}

Cli.run();
