/**
 * An in-memory `CheckpointStorage` for the suites (environment-neutral),
 * with failure injection and delays, and its own small implementation of
 * chains and retention (an independent check of the contract).
 */
import type { CheckpointMeta, CheckpointStorage, CheckpointWriter, StoredCheckpoint } from '../dist/index.js';

export class InjectedFailure extends Error {}

export interface Faults {
  /** `begin` throws. */
  begin?: boolean;
  /** The n-th `write` call (from 1, counted per writer) throws. */
  write?: number;
  /** `commit` throws before listing anything. */
  commit?: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The entry's chain (full first) by the rule of the storage contract, or null. */
export function chainIn(list: readonly StoredCheckpoint[], tip: number): StoredCheckpoint[] | null {
  const out = [list[tip]];
  for (let i = tip - 1; i >= 0 && out[0].kind === 'incremental'; i--) {
    if (list[i].id === out[0].parentId && list[i].storeId === out[0].storeId) out.unshift(list[i]);
  }
  return out[0].kind === 'full' ? out : null;
}

export class MemoryStorage implements CheckpointStorage {
  readonly files = new Map<string, Uint8Array>();
  entries: StoredCheckpoint[] = [];
  faults: Faults = {};
  /** Delay of every write, in ms. */
  delayMs = 0;
  /** Writers open now, and the most ever open at once. */
  open_ = 0;
  maxOpen = 0;
  retainChains: number;
  private seq = 0;

  constructor(retain = Infinity) {
    this.retainChains = retain;
  }

  async begin(id: number): Promise<CheckpointWriter> {
    if (this.faults.begin) throw new InjectedFailure(`injected: begin ${id}`);
    const parts: Uint8Array[] = [];
    let writes = 0;
    let closed = false;
    this.open_++;
    this.maxOpen = Math.max(this.maxOpen, this.open_);
    const close = () => {
      if (!closed) this.open_--;
      closed = true;
    };
    return {
      write: async (chunk) => {
        if (this.delayMs) await sleep(this.delayMs);
        if (++writes === this.faults.write) throw new InjectedFailure(`injected: write ${writes} of checkpoint ${id}`);
        parts.push(chunk.slice());
      },
      commit: async (meta: CheckpointMeta, retain?: number) => {
        close();
        if (this.faults.commit) throw new InjectedFailure(`injected: commit ${id}`);
        const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let at = 0;
        for (const p of parts) {
          bytes.set(p, at);
          at += p.length;
        }
        if (bytes.length !== meta.bytes) throw new Error(`commit: ${bytes.length} bytes written, metadata says ${meta.bytes}`);
        const stored = { ...meta, name: `cp-${id}-${++this.seq}` };
        this.files.set(stored.name, bytes);
        this.entries.push(stored);
        await this.retain(retain ?? this.retainChains);
        return { ...stored };
      },
      abort: async () => close(),
    };
  }

  async list(): Promise<StoredCheckpoint[]> {
    return this.entries.map((e) => ({ ...e }));
  }

  async open(name: string): Promise<ReadableStream<Uint8Array>> {
    const bytes = this.files.get(name);
    if (!bytes) throw new Error(`no checkpoint ${name}`);
    let at = 0;
    return new ReadableStream<Uint8Array>({
      pull(c) {
        if (at >= bytes.length) return c.close();
        c.enqueue(bytes.slice(at, at + 1000));
        at += 1000;
      },
    });
  }

  async retain(keep: number): Promise<string[]> {
    const needed = new Set<string>();
    let chains = 0;
    for (let i = this.entries.length - 1; i >= 0 && chains < keep; i--) {
      const c = chainIn(this.entries, i);
      if (!c) continue;
      chains++;
      for (const e of c) needed.add(e.name);
    }
    const dropped = this.entries.filter((e) => !needed.has(e.name)).map((e) => e.name);
    this.entries = this.entries.filter((e) => needed.has(e.name));
    for (const n of dropped) this.files.delete(n);
    return dropped;
  }
}
