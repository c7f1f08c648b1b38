/**
 * Chains over a storage's listing (environment-neutral). A chain is a
 * committed checkpoint with its ancestors back to a full checkpoint; the
 * parent of an entry is the latest earlier entry of the same lineage whose id
 * is the entry's `parentId` (ids can repeat once a lineage forks, and a
 * fork's entries always come later).
 */
import { StorageError } from './errors.js';
import type { CheckpointMeta, StoredCheckpoint } from './types.js';

/** The chain `[full, ..., list[tip]]`, or null when an ancestor is missing. */
export function chainOf(list: readonly StoredCheckpoint[], tip: number): StoredCheckpoint[] | null {
  const chain = [list[tip]];
  let at = tip;
  while (chain[0].kind !== 'full') {
    const child = chain[0];
    let parent = -1;
    for (let i = at - 1; i >= 0; i--) {
      if (list[i].id === child.parentId && list[i].storeId === child.storeId) {
        parent = i;
        break;
      }
    }
    if (parent < 0) return null;
    chain.unshift(list[parent]);
    at = parent;
  }
  return chain;
}

/** Every restorable chain, newest tip first. */
export function restorableChains(list: readonly StoredCheckpoint[]): StoredCheckpoint[][] {
  const out: StoredCheckpoint[][] = [];
  for (let i = list.length - 1; i >= 0; i--) {
    const c = chainOf(list, i);
    if (c) out.push(c);
  }
  return out;
}

/**
 * Retention: the entries the last `keep` restorable chains need (in list
 * order), and every other entry. Incremental chains share ancestors, so an
 * entry is dropped only when no retained chain holds it.
 */
export function retention(list: readonly StoredCheckpoint[], keep: number): { kept: StoredCheckpoint[]; dropped: StoredCheckpoint[] } {
  const needed = new Set<StoredCheckpoint>();
  let chains = 0;
  for (let i = list.length - 1; i >= 0 && chains < keep; i--) {
    const c = chainOf(list, i);
    if (!c) continue;
    chains++;
    for (const e of c) needed.add(e);
  }
  return { kept: list.filter((e) => needed.has(e)), dropped: list.filter((e) => !needed.has(e)) };
}

/** True if `meta`, listed after `list`, is restorable: full, or its parent's chain is listed. */
export function extendsChain(list: readonly StoredCheckpoint[], meta: CheckpointMeta): boolean {
  return meta.kind === 'full' || chainOf([...list, { ...meta, name: '' }], list.length) !== null;
}

/**
 * The listing with `stored` committed after it. Refuses (MISSING_PARENT) a
 * checkpoint that would not be restorable: retention would drop it at once.
 */
export function appended(list: readonly StoredCheckpoint[], stored: StoredCheckpoint): StoredCheckpoint[] {
  if (!extendsChain(list, stored)) throw missingParent(stored);
  return [...list, stored];
}

/** The error for an incremental checkpoint whose parent chain a storage does not hold. */
export function missingParent(meta: CheckpointMeta): StorageError {
  return new StorageError('MISSING_PARENT', `checkpoint ${meta.id} extends checkpoint ${meta.parentId}, which the storage does not hold (with its chain)`);
}
