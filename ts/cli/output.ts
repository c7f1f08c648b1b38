/** What commands print: text lines, one JSON document, or JSON lines; progress bars on stderr. */
import cliProgress from 'cli-progress';

export interface Output {
  line(s?: string): void;
  json(v: unknown): void;
  jsonLine(v: unknown): void;
}

/** Output to stdout. */
export const stdout: Output = {
  line: (s = '') => void process.stdout.write(`${s}\n`),
  json: (v) => void process.stdout.write(`${JSON.stringify(v, null, 2)}\n`),
  jsonLine: (v) => void process.stdout.write(`${JSON.stringify(v)}\n`),
};

/** 1,234 B / 12.3 kB / 4.56 MB (MB = 10^6 bytes). */
export function bytes(n: number): string {
  if (n < 1000) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(n < 1e4 ? 2 : 1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(n < 1e7 ? 2 : 1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

/** Inputs at least this large get a progress bar when stderr is a terminal. */
const LARGE = 16 << 20;

/**
 * A progress bar on stderr for reading `label` (`total` bytes if known):
 * shown for large inputs on a terminal, or always with `force`.
 */
export function bar(label: string, total: number | null, force = false): { update(n: number): void; stop(): void } {
  const show = force || (process.stderr.isTTY && (total === null || total >= LARGE));
  if (!show) return { update() {}, stop() {} };
  const b = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: total === null ? `${label} {value} bytes` : `${label} [{bar}] {percentage}% {value}/{total} bytes`,
      noTTYOutput: !process.stderr.isTTY,
      notTTYSchedule: 250,
      hideCursor: process.stderr.isTTY,
    },
    cliProgress.Presets.shades_classic,
  );
  b.start(total ?? 0, 0);
  return { update: (n) => b.update(n), stop: () => b.stop() };
}
