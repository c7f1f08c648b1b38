/**
 * The commands of `keystate` (see main.ts). Each reads through the core (the
 * public API, `inspectCheckpoint`, `compact`), prints text or, with
 * `--json`, one JSON document (`dump`: JSON lines), and throws on bad input
 * (exit 1) or misuse (exit 2).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { inspectCheckpoint, type CheckpointReport, type CheckpointRecord } from '../inspect.js';
import { compact as compactChain } from '../restore.js';
import { retention, restorableChains } from '../storage/chains.js';
import { StateStore } from '../store.js';
import { keyJson, keyMatches, rawEntries, statesOf, userKeyJson, valueJson, type RawEntry, type StateInfo } from './entries.js';
import { CheckFailed, describe, UsageError } from './errors.js';
import { bytes as fmtBytes, bar, type Output } from './output.js';
import { directory, done, resolve, type Piece, type Source } from './sources.js';

export interface Common {
  json?: boolean;
  progress?: boolean;
  backend?: 'wasm' | 'native';
}

const pct = (part: number, whole: number) => (whole > 0 ? `${((part / whole) * 100).toFixed(1)}%` : '-');

/** Inspects one piece, with a progress bar on large inputs. */
async function inspectPiece(piece: Piece, o: Common, onRecord?: (r: CheckpointRecord) => void): Promise<CheckpointReport> {
  const progress = bar(piece.label, piece.bytes, o.progress);
  try {
    return await inspectCheckpoint(await piece.open(), { backend: o.backend, onRecord, onProgress: (n) => progress.update(n) });
  } catch (e) {
    throw prefixed(piece.label, e);
  } finally {
    progress.stop();
  }
}

/** The error with the piece it came from in front of its message. */
function prefixed(label: string, e: unknown): Error {
  const d = describe(e);
  const err = new CheckFailed(`${label}: ${d.message}`);
  (err as { code?: string }).code = d.errorCode;
  return err;
}

/** Restores a source's pieces as one chain. */
async function restore(src: Source, o: Common, opts: Parameters<typeof StateStore.restore>[1] = {}): Promise<StateStore> {
  const pieces = await Promise.all(src.pieces.map((p) => p.open()));
  try {
    return await StateStore.restore(pieces, { backend: o.backend, ...opts });
  } catch (e) {
    throw prefixed(src.pieces.map((p) => p.label).join(' + '), e);
  }
}

async function withSource<T>(args: string[], f: (src: Source) => Promise<T>): Promise<T> {
  const src = await resolve(args);
  try {
    return await f(src);
  } finally {
    await done(src);
  }
}

// ---- inspect ----------------------------------------------------------------

export async function inspect(args: string[], o: Common & { keyGroups?: boolean }, out: Output): Promise<void> {
  await withSource(args, async (src) => {
    const reports: { file: string; report: CheckpointReport }[] = [];
    for (const p of src.pieces) reports.push({ file: p.label, report: await inspectPiece(p, o) });
    const full = reports.find((r) => r.report.kind === 'full')?.report.bytes ?? 0;
    const chain = reports.length > 1 || src.dir
      ? reports.map(({ file, report: r }) => ({ file, id: r.id, kind: r.kind, bytes: r.bytes, shareOfFull: full > 0 ? r.bytes / full : null }))
      : undefined;
    if (o.json) return out.json({ pieces: reports, ...(chain ? { chain } : {}) });
    for (const { file, report: r } of reports) {
      out.line(`${file}: ${r.kind} checkpoint ${r.id}${r.parentId === null ? '' : ` (parent ${r.parentId})`}, ${fmtBytes(r.bytes)}, format v${r.version}`);
      out.line(`  store ${r.storeId}, key groups ${r.keyGroups.start}..${r.keyGroups.end} of max parallelism ${r.maxParallelism}`);
      out.line(`  checksum ${r.checksum}, link ${r.link}${r.parentLink ? `, parent link ${r.parentLink}` : ''}`);
      out.line(`  ${r.records.toLocaleString('en-US')} records in ${r.sections.length} key-group sections`);
      out.line(`  states:`);
      for (const s of r.states) {
        const codecs = s.userKeyCodec ? `${s.userKeyCodec} -> ${s.valueCodec}` : s.valueCodec;
        out.line(`    ${s.name.padEnd(20)} ${s.kind.padEnd(11)} ${codecs.padEnd(16)} ${s.records.toLocaleString('en-US').padStart(10)} records ${fmtBytes(s.bytes).padStart(9)}`);
      }
      if (r.sections.length > 0) {
        const sizes = r.sections.map((s) => s.bytes).sort((a, b) => a - b);
        const big = r.sections.reduce((a, b) => (b.bytes > a.bytes ? b : a));
        out.line(`  key groups: smallest ${fmtBytes(sizes[0])}, median ${fmtBytes(sizes[sizes.length >> 1])}, largest ${fmtBytes(big.bytes)} (key group ${big.keyGroup})`);
        if (o.keyGroups) for (const s of r.sections) out.line(`    key group ${String(s.keyGroup).padStart(5)}: ${fmtBytes(s.bytes).padStart(9)}, ${s.records} records`);
      }
    }
    if (chain) {
      out.line(`chain${src.dir ? ` (latest in ${src.dir.path})` : ''}: ${chain.map((c) => `#${c.id} ${c.kind} ${fmtBytes(c.bytes)}${c.kind === 'full' ? '' : ` (${pct(c.bytes, full)} of the full)`}`).join(' <- ')}`);
    }
  });
}

// ---- verify -----------------------------------------------------------------

export async function verify(args: string[], o: Common, out: Output): Promise<void> {
  await withSource(args, async (src) => {
    const pieces: { file: string; ok: boolean; records?: number; bytes?: number; error?: { code?: string; message: string } }[] = [];
    let failed = false;
    for (const p of src.pieces) {
      try {
        const r = await inspectPiece(p, o);
        pieces.push({ file: p.label, ok: true, records: r.records, bytes: r.bytes });
      } catch (e) {
        failed = true;
        pieces.push({ file: p.label, ok: false, error: { code: (e as { code?: string }).code, message: (e as Error).message } });
        break; // the first problem
      }
    }
    let chain: { ok: boolean; error?: { code?: string; message: string } } | undefined;
    if (!failed) {
      // Each piece is sound on its own; now the links between them (and codecs, key groups) as restore checks them.
      try {
        (await restore(src, o)).close();
        chain = { ok: true };
      } catch (e) {
        failed = true;
        chain = { ok: false, error: { code: (e as { code?: string }).code, message: (e as Error).message } };
      }
    }
    if (o.json) out.json({ ok: !failed, pieces, ...(chain ? { chain } : {}) });
    else if (!failed) {
      const records = pieces.reduce((n, p) => n + (p.records ?? 0), 0);
      const total = pieces.reduce((n, p) => n + (p.bytes ?? 0), 0);
      out.line(`ok: ${pieces.length} piece${pieces.length === 1 ? '' : 's'}, ${fmtBytes(total)}, ${records.toLocaleString('en-US')} records: every checksum, structural rule${pieces.length > 1 ? ' and chain link' : ''} holds`);
    }
    if (failed) {
      const bad = pieces.find((p) => !p.ok)?.error ?? chain?.error;
      throw new CheckFailed(`verify failed: ${bad?.message}`, o.json);
    }
  });
}

// ---- ls -----------------------------------------------------------------------

export async function ls(dir: string, o: Common & { retain?: number }, out: Output): Promise<void> {
  const d = await directory(dir);
  try {
    const keep = o.retain ?? d.storage.retainChains;
    const { kept } = retention(d.list, keep);
    const chains = restorableChains(d.list);
    const now = Date.now();
    const rows = d.list.map((c) => ({ ...c, ageMs: now - c.createdAt, retained: kept.includes(c), inLatestChain: d.chain.includes(c) }));
    const chainRows = chains.map((ch) => ({ tip: ch[ch.length - 1].id, pieces: ch.map((c) => c.name), bytes: ch.reduce((n, c) => n + c.bytes, 0) }));
    if (o.json) return out.json({ dir, retain: keep, checkpoints: rows, chains: chainRows });
    out.line(`${dir}: ${rows.length} checkpoints, ${fmtBytes(rows.reduce((n, r) => n + r.bytes, 0))}; ${chains.length} restorable chains; retention keeps the last ${keep}`);
    for (const r of rows) {
      const age = r.ageMs < 60_000 ? `${Math.round(r.ageMs / 1000)} s` : r.ageMs < 3_600_000 ? `${Math.round(r.ageMs / 60_000)} min` : `${(r.ageMs / 3_600_000).toFixed(1)} h`;
      const marks = [r.inLatestChain ? 'latest chain' : '', r.retained ? '' : 'retention drops it'].filter(Boolean).join(', ');
      out.line(`  ${r.name.padEnd(26)} #${String(r.id).padEnd(6)} ${r.kind.padEnd(12)} ${r.parentId === null ? '' : `<- #${r.parentId}`.padEnd(9)} ${fmtBytes(r.bytes).padStart(9)} ${age.padStart(7)} ago${marks ? `  (${marks})` : ''}`);
    }
    for (const c of chainRows) out.line(`  chain to #${c.tip}: ${c.pieces.length} piece${c.pieces.length === 1 ? '' : 's'}, ${fmtBytes(c.bytes)}`);
  } finally {
    await d.storage.close();
  }
}

// ---- dump ---------------------------------------------------------------------

export async function dump(args: string[], o: Common & { state?: string; key?: string; limit?: number }, out: Output): Promise<void> {
  await withSource(args, async (src) => {
    let left = o.limit ?? Infinity;
    if (src.pieces.length === 1 && !src.dir) {
      // A lone incremental piece cannot be restored: list the records it carries.
      const first = await inspectPiece(src.pieces[0], o);
      if (first.kind === 'incremental') {
        const states = new Map(first.states.map((s) => [s.id, { id: s.id, name: s.name, kind: s.kind, valueCodec: s.valueCodec, userKeyCodec: s.userKeyCodec } as StateInfo]));
        await inspectPiece(src.pieces[0], o, (r) => {
          const s = states.get(r.state) as StateInfo;
          if (left <= 0 || (o.state && s.name !== o.state) || (o.key && !keyMatches(r.key, o.key))) return;
          left--;
          out.jsonLine({ op: r.op, state: s.name, key: keyJson(r.key), ...nsJson(r.ns), ...(r.op.startsWith('map') && r.op !== 'mapClear' ? { userKey: userKeyJson(s, r.uk) } : {}), ...(r.op === 'put' || r.op === 'mapPut' ? { value: valueJson(s, r.value) } : {}) });
        });
        return;
      }
    }
    const store = await restore(src, o);
    try {
      const states = statesOf(store).filter((s) => !o.state || s.name === o.state);
      if (o.state && states.length === 0) throw new UsageError(`no state named '${o.state}' (states: ${statesOf(store).map((s) => s.name).join(', ')})`);
      for (const s of states) {
        for (const e of rawEntries(store, s)) {
          if (left <= 0) return;
          if (o.key && !keyMatches(e.key, o.key)) continue;
          left--;
          out.jsonLine(entryJson(s, e));
        }
      }
    } finally {
      store.close();
    }
  });
}

const nsJson = (ns: Uint8Array) => (ns.length > 0 ? { namespace: keyJson(ns) } : {});

function entryJson(s: StateInfo, e: RawEntry): Record<string, unknown> {
  return { state: s.name, key: keyJson(e.key), ...nsJson(e.ns), ...(e.uk ? { userKey: userKeyJson(s, e.uk) } : {}), value: valueJson(s, e.value) };
}

// ---- diff ---------------------------------------------------------------------

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const slot = (e: RawEntry) => `${hex(e.key)}/${hex(e.ns)}/${e.uk ? hex(e.uk) : ''}`;
const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(a, b) === 0;

export async function diff(a: string, b: string | undefined, o: Common & { limit?: number }, out: Output): Promise<void> {
  if (b === undefined) return delta(a, o, out);
  const [sa, sb] = [await resolve([a]), await resolve([b])];
  try {
    const [x, y] = [await restore(sa, o), await restore(sb, o)];
    try {
      const limit = o.limit ?? 10;
      const byName = new Map(statesOf(y).map((s) => [s.name, s]));
      const names = [...new Set([...statesOf(x).map((s) => s.name), ...byName.keys()])];
      const report = names.map((name) => {
        const sx = statesOf(x).find((s) => s.name === name);
        const sy = byName.get(name);
        const ex = new Map(sx ? rawEntries(x, sx).map((e) => [slot(e), e]) : []);
        const ey = new Map(sy ? rawEntries(y, sy).map((e) => [slot(e), e]) : []);
        const r = { state: name, added: 0, removed: 0, changed: 0, addedBytes: 0, removedBytes: 0, changedBytes: 0, examples: [] as Record<string, unknown>[] };
        const st = (sy ?? sx) as StateInfo;
        const example = (what: string, e: RawEntry, before?: RawEntry) => {
          if (r.examples.length < limit) r.examples.push({ change: what, ...entryJson(st, e), ...(before ? { before: valueJson(st, before.value) } : {}) });
        };
        for (const [k, e] of ey) {
          const old = ex.get(k);
          if (!old) {
            r.added++;
            r.addedBytes += e.value.length;
            example('added', e);
          } else if (!same(old.value, e.value)) {
            r.changed++;
            r.changedBytes += e.value.length;
            example('changed', e, old);
          }
        }
        for (const [k, e] of ex) {
          if (ey.has(k)) continue;
          r.removed++;
          r.removedBytes += e.value.length;
          example('removed', e);
        }
        return r;
      });
      if (o.json) return out.json({ a, b, states: report });
      for (const r of report) {
        out.line(`${r.state}: ${r.added} added (${fmtBytes(r.addedBytes)}), ${r.removed} removed (${fmtBytes(r.removedBytes)}), ${r.changed} changed (${fmtBytes(r.changedBytes)} now)`);
        for (const e of r.examples) out.line(`  ${JSON.stringify(e)}`);
      }
    } finally {
      x.close();
      y.close();
    }
  } finally {
    await Promise.all([done(sa), done(sb)]);
  }
}

/** What one incremental piece carries. */
async function delta(file: string, o: Common, out: Output): Promise<void> {
  await withSource([file], async (src) => {
    if (src.pieces.length !== 1) throw new UsageError('diff with one argument describes one checkpoint file: give two sources to compare them');
    const counts = new Map<number, Record<CheckpointRecord['op'], number> & { bytes: number }>();
    const r = await inspectPiece(src.pieces[0], o, (rec) => {
      const c = counts.get(rec.state) ?? { put: 0, delete: 0, mapPut: 0, mapDelete: 0, mapClear: 0, bytes: 0 };
      c[rec.op]++;
      c.bytes += rec.value.length;
      counts.set(rec.state, c);
    });
    const states = r.states.map((s) => ({ state: s.name, ...(counts.get(s.id) ?? { put: 0, delete: 0, mapPut: 0, mapDelete: 0, mapClear: 0, bytes: 0 }) }));
    if (o.json) return out.json({ file, kind: r.kind, id: r.id, parentId: r.parentId, states });
    out.line(`${file}: ${r.kind} checkpoint ${r.id}${r.parentId === null ? ' (a full checkpoint carries the whole state)' : ` over ${r.parentId}`}`);
    for (const s of states) {
      const parts = (['put', 'delete', 'mapPut', 'mapDelete', 'mapClear'] as const).filter((k) => s[k] > 0).map((k) => `${s[k]} ${k}`);
      out.line(`  ${s.state}: ${parts.join(', ') || 'nothing'} (${fmtBytes(s.bytes)} of values)`);
    }
  });
}

// ---- compact, split, merge ----------------------------------------------------

/** Writes a full checkpoint of `store` to `file`; returns its bytes. */
async function writeFull(store: StateStore, file: string): Promise<Uint8Array> {
  const cp = store.checkpoint({ incremental: false });
  const bytes = await cp.bytes();
  cp.confirm();
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  await writeFile(file, bytes);
  return bytes;
}

/** Throws unless both stores hold the same entries, state by state. */
function assertSameEntries(a: StateStore, b: StateStore, what: string): number {
  let n = 0;
  for (const s of statesOf(a)) {
    const t = statesOf(b).find((x) => x.name === s.name);
    const ea = rawEntries(a, s);
    const eb = new Map(t ? rawEntries(b, t).map((e) => [slot(e), e.value]) : []);
    if (ea.length !== eb.size || ea.some((e) => !same(eb.get(slot(e)) ?? new Uint8Array([0xff, 0xfe]), e.value))) {
      throw new CheckFailed(`${what}: state '${s.name}' differs from its source`);
    }
    n += ea.length;
  }
  return n;
}

export async function compact(args: string[], o: Common & { output: string }, out: Output): Promise<void> {
  await withSource(args, async (src) => {
    const bytes = await compactChain(await Promise.all(src.pieces.map((p) => p.open())), { backend: o.backend }).catch((e) => {
      throw prefixed(src.pieces.map((p) => p.label).join(' + '), e);
    });
    await mkdir(path.dirname(path.resolve(o.output)), { recursive: true });
    await writeFile(o.output, bytes);
    // Verified after writing: the file restores, to exactly what the chain restores to.
    const [written, chain] = [await StateStore.restore([bytes], { backend: o.backend }), await restore(src, o)];
    try {
      const entries = assertSameEntries(chain, written, o.output);
      if (o.json) return out.json({ output: o.output, bytes: bytes.length, pieces: src.pieces.length, entries, verified: true });
      out.line(`${o.output}: one full checkpoint of ${fmtBytes(bytes.length)} for ${src.pieces.length} pieces, ${entries.toLocaleString('en-US')} entries; verified`);
    } finally {
      written.close();
      chain.close();
    }
  });
}

/** Flink's key-group range of operator `i` of `n`: `start = ceil(i * maxP / n)`. */
export function rangeOf(i: number, n: number, maxP: number): { start: number; end: number } {
  return { start: Math.ceil((i * maxP) / n), end: Math.ceil(((i + 1) * maxP) / n) - 1 };
}

export async function split(args: string[], o: Common & { parallelism: number; output: string }, out: Output): Promise<void> {
  await withSource(args, async (src) => {
    const head = await inspectPiece(src.pieces[0], o);
    const { maxParallelism: maxP, keyGroups } = head;
    const n = o.parallelism;
    if (!Number.isInteger(n) || n < 1 || n > maxP) throw new UsageError(`--parallelism must be 1..${maxP} (the checkpoint's max parallelism), not ${o.parallelism}`);
    if (keyGroups.start !== 0 || keyGroups.end !== maxP - 1) {
      throw new CheckFailed(`${src.pieces[0].label} covers key groups ${keyGroups.start}..${keyGroups.end}: split needs all ${maxP} (merge the parts first)`);
    }
    const parts = [];
    for (let i = 0; i < n; i++) {
      const range = rangeOf(i, n, maxP);
      const store = await restore(src, o, { keyGroupRange: range });
      try {
        const file = path.join(o.output, `part-${String(i).padStart(String(n - 1).length, '0')}-of-${n}.ks`);
        const bytes = await writeFull(store, file);
        parts.push({ file, keyGroups: range, bytes: bytes.length, entries: store.memory().entries });
      } finally {
        store.close();
      }
    }
    if (o.json) return out.json({ parallelism: n, maxParallelism: maxP, parts });
    for (const p of parts) out.line(`${p.file}: key groups ${p.keyGroups.start}..${p.keyGroups.end}, ${p.entries.toLocaleString('en-US')} entries, ${fmtBytes(p.bytes)}`);
  });
}

export async function merge(args: string[], o: Common & { output: string }, out: Output): Promise<void> {
  if (args.length < 1) throw new UsageError('merge needs the checkpoints (or directories) to merge');
  const sources = await Promise.all(args.map((a) => resolve([a])));
  try {
    const heads = await Promise.all(sources.map((s) => inspectPiece(s.pieces[0], o)));
    const maxP = heads[0].maxParallelism;
    const chains = await Promise.all(sources.map((s) => Promise.all(s.pieces.map((p) => p.open()))));
    const store = await StateStore.restore(chains, { backend: o.backend, keyGroupRange: { start: 0, end: maxP - 1 } }).catch((e) => {
      throw prefixed(args.join(' + '), e);
    });
    try {
      const bytes = await writeFull(store, o.output);
      const entries = store.memory().entries;
      if (o.json) return out.json({ output: o.output, bytes: bytes.length, sources: args, entries });
      out.line(`${o.output}: ${args.length} sources merged into one full checkpoint of key groups 0..${maxP - 1}, ${entries.toLocaleString('en-US')} entries, ${fmtBytes(bytes.length)}`);
    } finally {
      store.close();
    }
  } finally {
    await Promise.all(sources.map(done));
  }
}
