/**
 * What a command reads: a checkpoint file, a chain of files (full first), a
 * DirectoryStorage directory (its latest restorable chain), or `-` (one
 * checkpoint on standard input, kept in memory). Files are streamed, never
 * read whole.
 */
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { restorableChains } from '../storage/chains.js';
import { DirectoryStorage } from '../storage/directory.js';
import type { StoredCheckpoint } from '../storage/types.js';
import { UsageError } from './errors.js';

/** One checkpoint to read. */
export interface Piece {
  /** Where it is, for messages: a file path, `dir/ckpt-...ks`, or `-`. */
  label: string;
  /** Its size, when known before reading. */
  bytes: number | null;
  /** Its bytes (each call reads it again; stdin can be read once). */
  open(): Promise<AsyncIterable<Uint8Array>>;
}

/** What the arguments name. */
export interface Source {
  pieces: Piece[];
  /** The directory's storage and listing, when the source is one. */
  dir?: { path: string; storage: DirectoryStorage; list: StoredCheckpoint[]; chain: StoredCheckpoint[] };
}

function filePiece(file: string, bytes: number): Piece {
  return {
    label: file,
    bytes,
    open: async () => createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Uint8Array>,
  };
}

/** Standard input, read once and kept (commands that read a piece twice read it from memory). */
function stdinPiece(): Piece {
  let read: Promise<Uint8Array[]> | undefined;
  return {
    label: '-',
    bytes: null,
    open: async () => {
      read ??= (async () => {
        const parts: Uint8Array[] = [];
        for await (const c of process.stdin as AsyncIterable<Uint8Array>) parts.push(c);
        return parts;
      })();
      return (await read) as unknown as AsyncIterable<Uint8Array>;
    },
  };
}

/** Opens a DirectoryStorage read-only and takes its latest restorable chain. */
export async function directory(dir: string): Promise<NonNullable<Source['dir']>> {
  const storage = await DirectoryStorage.open(dir, { readOnly: true });
  const list = await storage.list();
  const chain = restorableChains(list)[0] ?? [];
  return { path: dir, storage, list, chain };
}

/** Resolves a command's source arguments. */
export async function resolve(args: string[]): Promise<Source> {
  if (args.length === 0) throw new UsageError('name a checkpoint file, a chain of files, a checkpoint directory, or - for standard input');
  if (args.includes('-')) {
    if (args.length > 1) throw new UsageError('- (standard input) stands alone');
    return { pieces: [stdinPiece()] };
  }
  const stats = await Promise.all(args.map((a) => fs.stat(a)));
  if (stats.some((s) => s.isDirectory())) {
    if (args.length > 1) throw new UsageError('a checkpoint directory stands alone (it names its own chain)');
    const dir = await directory(args[0]);
    if (dir.chain.length === 0) {
      await dir.storage.close();
      throw new UsageError(`${args[0]} holds no restorable checkpoint`);
    }
    const pieces = dir.chain.map((c): Piece => ({
      label: path.join(args[0], c.name),
      bytes: c.bytes,
      open: async () => (await dir.storage.open(c.name)) as unknown as AsyncIterable<Uint8Array>,
    }));
    return { pieces, dir };
  }
  return { pieces: args.map((a, i) => filePiece(a, stats[i].size)) };
}

/** Releases what a source holds. */
export async function done(src: Source): Promise<void> {
  await src.dir?.storage.close();
}
