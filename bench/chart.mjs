// @ts-check
// The memory profile as a hand-written SVG: one panel per run (keystate
// above, the Map below) on the same scales, so heights compare directly.
// Lines for RSS, JS heap and keystate's backend memory (wasm memory or the native addon's heap); phases shaded; checkpoints as bars
// along the bottom, as long as each took.

/** @typedef {{ name: string, start: number, end: number }} Phase */
/** @typedef {{ t: number, ms: number, bytes: number, kind: string }} Cp */
/** @typedef {{ which: string, entries: number, durationMs: number, samples: number[][], phases: Phase[], checkpoints: Cp[], longestStallMs: number }} Run */

const W = 1000;
const H = 700;
const LEFT = 70;
const RIGHT = 20;
const PANEL_H = 222;
const PANELS_TOP = [136, 426];
const SERIES = [
  { col: 4, name: 'RSS', color: '#6b6b6b', width: 1.5 },
  { col: 1, name: 'JS heap (heapUsed)', color: '#1f5fbf', width: 2 },
  { col: 2, name: 'keystate backend memory', color: '#e07000', width: 2 },
];
const MB = 1e6;

/** Escapes text for SVG. */
const esc = (/** @type {string} */ s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (/** @type {number} */ x) => (Math.round(x * 10) / 10).toString();

/** A 1-2-5 step giving about `count` ticks up to `max`. */
function step(/** @type {number} */ max, count = 5) {
  const raw = max / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
}

/** @param {string} tag @param {Record<string, string | number>} attrs @param {string} [body] */
function el(tag, attrs, body) {
  const a = Object.entries(attrs).map(([k, v]) => `${k}="${typeof v === 'number' ? fmt(v) : esc(v)}"`).join(' ');
  return body === undefined ? `<${tag} ${a}/>` : `<${tag} ${a}>${body}</${tag}>`;
}

/**
 * One panel.
 * @param {Run} run @param {string} title @param {number} top @param {number} xMax seconds @param {number} yMax MB
 */
function panel(run, title, top, xMax, yMax) {
  const pw = W - LEFT - RIGHT;
  const x = (/** @type {number} */ s) => LEFT + (s / xMax) * pw;
  const y = (/** @type {number} */ mb) => top + PANEL_H - (mb / yMax) * PANEL_H;
  const out = [];
  // Phases: shaded bands, numbered; the name too where it fits.
  run.phases.forEach((ph, i) => {
    const x0 = x(ph.start / 1000);
    const w = Math.max(1, x(ph.end / 1000) - x0);
    out.push(el('rect', { x: x0, y: top, width: w, height: PANEL_H, fill: i % 2 ? '#eef3fa' : '#f7f7f7' }));
    const label = `${i + 1} ${ph.name}`;
    const text = label.length * 6.2 < w - 6 ? label : w > 14 ? String(i + 1) : '';
    if (text) out.push(el('text', { x: x0 + 4, y: top + 14, 'font-size': 11, fill: '#555' }, esc(text)));
  });
  // Grid and axes.
  const ys = step(yMax);
  for (let v = 0; v <= yMax + 1e-9; v += ys) {
    out.push(el('line', { x1: LEFT, x2: W - RIGHT, y1: y(v), y2: y(v), stroke: '#d8d8d8', 'stroke-width': 1 }));
    out.push(el('text', { x: LEFT - 6, y: y(v) + 4, 'font-size': 11, 'text-anchor': 'end', fill: '#333' }, `${fmt(v)}`));
  }
  const xs = step(xMax, 10);
  for (let s = 0; s <= xMax + 1e-9; s += xs) {
    out.push(el('line', { x1: x(s), x2: x(s), y1: top + PANEL_H, y2: top + PANEL_H + 4, stroke: '#333' }));
    out.push(el('text', { x: x(s), y: top + PANEL_H + 16, 'font-size': 11, 'text-anchor': 'middle', fill: '#333' }, `${fmt(s)}`));
  }
  out.push(el('text', { x: W - RIGHT, y: top + PANEL_H + 30, 'font-size': 11, 'text-anchor': 'end', fill: '#333' }, 'seconds'));
  out.push(el('text', { x: 16, y: top + PANEL_H / 2, 'font-size': 11, fill: '#333', transform: `rotate(-90 16 ${top + PANEL_H / 2})`, 'text-anchor': 'middle' }, 'MB'));
  out.push(el('path', { d: `M${LEFT},${top}V${top + PANEL_H}H${W - RIGHT}`, fill: 'none', stroke: '#333' }));
  // Checkpoints: a bar along the bottom from start to end of each.
  for (const c of run.checkpoints) {
    out.push(el('rect', { x: x(c.t / 1000), y: top + PANEL_H - 7, width: Math.max(2, x((c.t + c.ms) / 1000) - x(c.t / 1000)), height: 6, fill: '#2a9d3a' }));
  }
  // The series; backend memory only where there is any.
  for (const s of SERIES) {
    if (!run.samples.some((r) => r[s.col] > 0)) continue;
    const pts = run.samples.map((r) => `${fmt(x(r[0] / 1000))},${fmt(y(r[s.col] / MB))}`).join(' ');
    out.push(el('polyline', { points: pts, fill: 'none', stroke: s.color, 'stroke-width': s.width, 'stroke-linejoin': 'round' }));
  }
  // Title and the numbers a reader wants first.
  const peak = (/** @type {number} */ col) => Math.max(...run.samples.map((r) => r[col])) / MB;
  const cpMs = run.checkpoints.map((c) => c.ms);
  const facts = [
    `peak RSS ${fmt(peak(4))} MB`,
    `peak JS heap ${fmt(peak(1))} MB`,
    ...(peak(2) > 0 ? [`backend ${fmt(peak(2))} MB (snapshot pinned ≤ ${fmt(peak(3))} MB)`] : []),
    `checkpoints ${Math.round(Math.min(...cpMs))}-${Math.round(Math.max(...cpMs))} ms`,
    `longest event-loop stall ${Math.round(run.longestStallMs)} ms`,
  ].join('  ·  ');
  out.push(el('text', { x: LEFT, y: top - 22, 'font-size': 14, 'font-weight': 'bold', fill: '#111' }, esc(title)));
  out.push(el('text', { x: LEFT, y: top - 7, 'font-size': 11.5, fill: '#333' }, esc(facts)));
  return out.join('\n');
}

/** The legend row: line samples and names. */
function legend(/** @type {number} */ top) {
  const items = [...SERIES.map((s) => ({ ...s, bar: false })), { name: 'checkpoint (as long as it took)', color: '#2a9d3a', width: 6, bar: true }];
  let at = LEFT;
  return items
    .map((s) => {
      const mark = s.bar
        ? el('rect', { x: at, y: top - 7, width: 18, height: 6, fill: s.color })
        : el('line', { x1: at, x2: at + 18, y1: top - 4, y2: top - 4, stroke: s.color, 'stroke-width': s.width + 1 });
      const t = el('text', { x: at + 24, y: top, 'font-size': 12, fill: '#222' }, esc(s.name));
      at += 24 + s.name.length * 6.6 + 22;
      return mark + t;
    })
    .join('\n');
}

/**
 * The whole chart.
 * @param {{ runs: { keystate: Run, map: Run }, entries: number, quick: boolean }} doc
 */
export function chart(doc) {
  const { keystate, map } = doc.runs;
  const xMax = Math.max(keystate.durationMs, map.durationMs) / 1000;
  const yTop = Math.max(...[keystate, map].flatMap((r) => r.samples.flatMap((s) => [s[1], s[2], s[4]]))) / MB;
  const yMax = Math.ceil(yTop / step(yTop)) * step(yTop);
  const n = doc.entries.toLocaleString('en-US');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif">`,
    el('rect', { x: 0, y: 0, width: W, height: H, fill: '#fff' }),
    el('text', { x: LEFT, y: 28, 'font-size': 18, 'font-weight': 'bold', fill: '#111' }, esc(`Memory over time: ${n} entries, written, checkpointed, snapshotted`)),
    el('text', { x: LEFT, y: 48, 'font-size': 12, fill: '#444' }, esc('The same workload twice, on the same scales. Each cycle writes as many times as 5% of the keys (hot keys more often), then checkpoints durably.')),
    el('text', { x: LEFT, y: 64, 'font-size': 12, fill: '#444' }, esc('Phases: 1 ingest in batches · 2 write + checkpoint cycles · 3 the same, with a point-in-time copy held · 4 the same, copy released.')),
    legend(88),
    panel(keystate, 'keystate: incremental checkpoints to a DirectoryStorage, a snapshot held in phase 3', PANELS_TOP[0], xMax, yMax),
    panel(map, 'Map: v8.serialize of the whole Map to a file each cycle, a structuredClone held in phase 3', PANELS_TOP[1], xMax, yMax),
    '</svg>',
    '',
  ].join('\n');
}
