// @ts-check
// The benchmark cases: where each lives, its target from the issue, and how
// it is measured (the text docs/BENCHMARKS.md shows). Plain data: the runner,
// the report and the smoke test read it without loading keystate.

/**
 * @typedef {{ keystate: number, baseline: number, ratio: number, unit: string, baselineName: string, [k: string]: number | string }} Result
 * @typedef {{ text: string, met: (r: Result, wasm?: Result) => boolean }} Target
 * @typedef {{ name: string, label: string, module: string, target: Target | null, native?: Target | null, how: string, optional?: boolean }} Case
 *
 * `target` is the wasm backend's (issues 4 and 9), `native` the native backend's where it differs
 * (issue 9); a native target may compare with the wasm row of the same run (`wasm`).
 */

/** @param {number} min @param {string} text @returns {Target} */
const atLeast = (min, text) => ({ text, met: (r) => r.ratio >= min });

/** Native at least as good as wasm in the same run (higher keystate is better). @returns {Target} */
const asWasm = () => ({ text: '≥ wasm', met: (r, w) => w !== undefined && r.keystate >= w.keystate });

const KEYS = '1,000,000 keys `user-000000`..`user-999999` (100,000 with `--quick`)';

/** @type {Case[]} */
export const cases = [
  {
    name: 'value_get_number',
    label: 'get a number',
    module: './cases/values.mjs',
    target: atLeast(0.5, '≥ 0.5'),
    native: asWasm(),
    how: `${KEYS} in a \`valueState<number>\` and in a \`Map<string, number>\`; one pass of \`get(key)\` over all keys in a seeded random order, summing the values (the sums must agree). ops/s = keys / time.`,
  },
  {
    name: 'value_set_number',
    label: 'set a number',
    module: './cases/values.mjs',
    target: atLeast(0.5, '≥ 0.5'),
    native: asWasm(),
    how: 'The same store and Map; one pass of `set(key, n)` over all keys in random order, overwriting every entry with a new number (the steady state of a keyed aggregate).',
  },
  {
    name: 'value_get_object',
    label: 'get an object (cbor)',
    module: './cases/values.mjs',
    target: atLeast(0.25, '≥ 0.25'),
    native: asWasm(),
    how: 'Values `{ id, name, score, active }` in a `valueState` with the default `cbor` codec, against a `Map<string, object>`; every `get` decodes a fresh object in keystate and returns the stored one from the Map.',
  },
  {
    name: 'value_set_object',
    label: 'set an object (cbor)',
    module: './cases/values.mjs',
    target: atLeast(0.25, '≥ 0.25'),
    native: asWasm(),
    how: 'As above with `set`: both sides build a fresh object per write; keystate encodes it with cbor-x. The Map\'s time includes collecting the objects it replaces (they die in the old generation); keystate\'s objects die young.',
  },
  {
    name: 'value_get_number_batch',
    label: 'getMany, numbers',
    module: './cases/batch.mjs',
    target: atLeast(0.5, '≥ 0.5'),
    optional: true,
    how: '`getMany` of 1,000 keys per call, summing the results, against the `Map.get` loop. The batch cases run only when the build has `setMany`/`getMany`.',
  },
  {
    name: 'value_set_number_batch',
    label: 'setMany, numbers',
    module: './cases/batch.mjs',
    target: atLeast(0.5, '≥ 0.5'),
    optional: true,
    how: '`setMany` with 1,000 `[key, n]` pairs per call (reused pair arrays, filled inside the timed loop) against the single-key `Map.set` loop.',
  },
  {
    name: 'snapshot_take_1m',
    label: 'snapshot of 1M entries',
    module: './cases/snapshots.mjs',
    target: atLeast(1000, '≥ 1000'),
    how: 'Median time of one `store.snapshot()` (201 taken per repetition, each timed alone with `process.hrtime.bigint()` and released after) against one `structuredClone(map)`, the JS way to get a point-in-time copy. The snapshot is checked to read the old value after a write.',
  },
  {
    name: 'checkpoint_full_1m',
    label: 'full checkpoint export',
    module: './cases/checkpoints.mjs',
    target: atLeast(3, '≥ 3'),
    how: 'From `store.checkpoint({ incremental: false })` to the last byte read from `cp.stream()` (64 KiB chunks, read and dropped), against `v8.serialize(map)`. entries/s = entries / time; MB/s and bytes are reported beside (MB = 10^6 bytes).',
  },
  {
    name: 'checkpoint_incremental_1pct',
    label: 'incremental checkpoint, 1% changed',
    module: './cases/checkpoints.mjs',
    target: { text: '≤ 2% bytes and ≤ 5% time of full', met: (r) => Number(r.bytes_pct) <= 2 && Number(r.time_pct) <= 5 },
    how: 'A store with incremental checkpoints on. After a confirmed full checkpoint, 1% of the keys (a fresh slice each repetition) get new values; then the incremental checkpoint is taken and read to the end, then a full one of the same state (which becomes the next base). keystate = incremental bytes, baseline = full bytes; ratio = full / incremental bytes; `time_ratio`, `bytes_pct` and `time_pct` compare them too.',
  },
  {
    name: 'restore_full_1m',
    label: 'restore a full checkpoint',
    module: './cases/checkpoints.mjs',
    target: null,
    native: atLeast(8, '≥ 8'),
    how: '`StateStore.restore([bytes])` of a full checkpoint held in memory (every byte verified) against `v8.deserialize` of the serialized Map. The restored store is checked and closed.',
  },
  {
    name: 'memory_per_entry_1m',
    label: 'memory per entry',
    module: './cases/memory.mjs',
    target: atLeast(2.5, '≥ 2.5 (≤ 0.4× the Map)'),
    native: { text: '≤ wasm bytes', met: (r, w) => w !== undefined && r.keystate <= w.keystate },
    how: 'keystate: `memory().liveBytes` (records and indexes) plus the JS heap growth after `gc()`, per entry; `backend_growth_bytes_per_entry` is what the backend\'s memory grew by for the first store (wasm: its linear memory; native: the addon\'s heap). Map: `heapUsed` growth after `gc()`, with the Map alive. Keys are built inside both fill loops, so the Map pays for its key strings, values are small integers.',
  },
  {
    name: 'write_p99_during_export',
    label: 'write p99 during an export',
    module: './cases/latency.mjs',
    target: atLeast(1 / 1.5, '≥ 0.67 (p99 ≤ 1.5× none)'),
    how: '200,000 (`--quick`: 20,000) single `set`s of random existing keys, each timed with `process.hrtime.bigint()`. During: a full checkpoint is always open and one chunk of it is read every 64 writes (a new one starts when one ends), so every write runs under a snapshot. None: the same writes, yielding at the same places. ratio = none p99 / during p99; p50, p99.9 and max are reported beside.',
  },
  {
    name: 'snapshot_pinned_10pct',
    label: 'held by a snapshot, 10% rewritten',
    module: './cases/snapshots.mjs',
    target: atLeast(1 / 1.2, '≥ 0.83 (pinned ≤ 1.2× rewritten)'),
    how: 'Object values (cbor). One snapshot open while 10% of the keys (distinct, a fresh slice each repetition) are rewritten; `memory().pinnedBytes` (old record versions and their undo indexes) against the payload those entries had: UTF-8 key bytes plus the old value\'s cbor bytes. `pinned_bytes_after_release` must be 0.',
  },
  {
    name: 'export_vs_memcpy',
    label: 'export vs memcpy',
    module: './cases/checkpoints.mjs',
    target: null,
    how: 'Full-export MB/s (as in checkpoint_full_1m) against copying the same number of bytes with `Uint8Array.prototype.set` in 64 KiB chunks: the floor any export pays to move its bytes.',
  },
  {
    name: 'arena_reuse_100',
    label: 'arena after 100 cycles of size-changing rewrites',
    module: './cases/memory.mjs',
    target: { text: 'arena ≤ 1.15× its records', met: (r) => r.ratio >= 1 / 1.15 },
    how: 'Issue 11\'s workload: 100 cycles (`--quick`: 30) of a full export of the number store with 1% of the keys rewritten between its 64 KiB chunks, each rewrite moving a value between size classes (1-3 bytes and 5-7). keystate = `memory().arenaBytes` at the end, baseline = what its live and pinned records occupy (`arenaBytes - freeBytes`); ratio = baseline / keystate; `arena_over_needed` is its inverse.',
  },
  {
    name: 'checkpointing_writer_1m',
    label: 'writer under periodic checkpoints',
    module: './cases/eventloop.mjs',
    target: null,
    native: { text: 'gap ≤ 1.2× none, throughput ≥ 0.9×', met: (r) => r.ratio >= 1 / 1.2 && Number(r.throughput_ratio) >= 0.9 },
    how: 'Issue 9\'s scenario: a writer doing 5,000 writes of existing keys every 5 ms (setTimeout) for 8 s (`--quick`: 2 s), with `enableCheckpointing({ intervalMs: 1000, incremental: true })` to a `DirectoryStorage` in a temp directory, against the same writer with no checkpointing (and no delta tracking: each run with checkpointing starts it again, so its first checkpoint is full). keystate / baseline = the worst gap between two ticks (ms), ratio = none / with; `throughput_ratio` = ticks done with / without. Three repetitions.',
  },
  {
    name: 'export_stall_1m',
    label: 'event-loop stall during an export',
    module: './cases/eventloop.mjs',
    target: { text: '≤ 10 ms', met: (r) => r.keystate <= 10 },
    how: 'The longest time a 1 ms `setInterval` did not run while `await cp.bytes()` and then a `for await` over `cp.stream()` drained a full checkpoint (the worse of the two; `for_await_stall_ms` beside), against the stall of one `v8.serialize(map)`. ratio = baseline / keystate.',
  },
  {
    name: 'empty_call',
    label: 'one empty call into the backend',
    module: './cases/eventloop.mjs',
    target: null,
    how: 'A loop of 10,000,000 (`--quick`: 1,000,000) calls of the store\'s `ping`, a core call that does nothing (wasm: an exported method; native: a hot N-API function, reading its status from the result slots as every hot call does), against the same loop over a JS object\'s method: what crossing into the backend costs, per call. ratio = baseline / keystate.',
  },
  {
    name: 'ttl_get_number',
    label: 'get with TTL / without',
    module: './cases/ttl.mjs',
    target: null,
    how: `${KEYS} in two stores: a \`valueState<number>\` with \`ttl: { ttlMs: 3_600_000 }\` (Flink's defaults: renewed on write, expired never returned, incremental cleanup of 5 entries per access; the default clock, \`Date.now\`) and the same state without TTL. One pass of \`get(key)\` over all keys in random order on each, interleaved. ratio = with / without (1 means TTL is free).`,
  },
  {
    name: 'ttl_set_number',
    label: 'set with TTL / without',
    module: './cases/ttl.mjs',
    target: null,
    how: 'The same two stores; one pass of `set(key, n)` over all keys in random order, each write stamping its value. ratio = with / without.',
  },
  {
    name: 'ttl_bytes_per_entry',
    label: 'bytes per entry with TTL',
    module: './cases/ttl.mjs',
    target: null,
    how: '`memory().liveBytes` per entry of the two stores above (keystate: with TTL, baseline: without); `added_bytes_per_entry` is the difference (the 6-byte timestamp, plus any size-class step it causes), `ttl_bytes_per_entry` what `memory().ttlBytes` reports.',
  },
  {
    name: 'ttl_expire_1m',
    label: 'expire() of 1M entries, 10% expired',
    module: './cases/ttl.mjs',
    target: null,
    how: '1,000,000 entries (also with `--quick`) in a `valueState<number>` with a TTL of 1 s and incremental cleanup off, a tenth written at time 0 and the rest at 500 ms (mock clock), then `store.expire()` at 1,200 ms: keystate = its time (ms). Baseline: the same entries as `{ value, at }` records in a Map and the sweep an app would write. ratio = baseline / keystate. Both must remove 100,000.',
  },
];

/** The case of this name. */
export function caseNamed(/** @type {string} */ name) {
  const c = cases.find((x) => x.name === name);
  if (!c) throw new Error(`no benchmark case '${name}' (cases: ${cases.map((x) => x.name).join(', ')})`);
  return c;
}
