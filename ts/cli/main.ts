#!/usr/bin/env node
/**
 * `keystate`: look inside, verify, list, dump, diff, compact, split and
 * merge checkpoints. The package's bin (`npx keystate --help`). Exit codes:
 * 0 ok, 1 bad input or a failed check, 2 usage.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
// The Node entry: it installs the backends' loaders (native, then wasm).
import '../index.js';
import * as cmd from './commands.js';
import { CheckFailed, describe, UsageError } from './errors.js';
import { stdout } from './output.js';

// A reader that stops early (`keystate dump ... | head`) is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const program = new Command('keystate')
  .description('Look inside, verify, list, dump, diff, compact, split and merge keystate checkpoints.\n' +
    'A <src> is a checkpoint file, a chain of files (full first), a checkpoint directory\n' +
    '(a DirectoryStorage: its latest restorable chain), or - for one checkpoint on standard input.')
  .version(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version, '-V, --version')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) })
  .showHelpAfterError('(keystate --help lists the commands)');

/** The options every command takes. */
function common(c: Command): Command {
  return c
    .option('--json', 'print one JSON document (dump: JSON lines) instead of text')
    .option('--progress', 'show a progress bar on stderr even for small inputs or a pipe')
    .addOption(new Option('--backend <name>', 'the backend to read with (default: native where it loads, else wasm; KEYSTATE_BACKEND)').choices(['wasm', 'native']));
}

const int = (what: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${what} must be a whole number, not ${v}`);
  return n;
};

const examples = (...lines: string[]) => `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;

common(program.command('inspect').argument('<src...>'))
  .description('header, states with kinds and codecs, records and bytes per state and per key group; a chain\'s pieces and their share of the full')
  .option('--key-groups', 'list every key group\'s section')
  .addHelpText('after', examples('keystate inspect state.ks', 'keystate inspect ./checkpoints --json', 'cat state.ks | keystate inspect -'))
  .action((src: string[], o) => cmd.inspect(src, o, stdout));

common(program.command('verify').argument('<src...>'))
  .description('every checksum, every structural rule and every chain link; the first problem names its file, part and rule')
  .addHelpText('after', examples('keystate verify ./checkpoints', 'keystate verify full.ks delta-1.ks delta-2.ks'))
  .action((src: string[], o) => cmd.verify(src, o, stdout));

common(program.command('ls').argument('<dir>'))
  .description('the checkpoints a directory lists: chains, sizes, ages, and what retention keeps')
  .option('--retain <n>', 'the chains retention keeps (default: the storage\'s, 2)', int('--retain'))
  .addHelpText('after', examples('keystate ls ./checkpoints', 'keystate ls ./checkpoints --retain 1 --json'))
  .action((dir: string, o) => cmd.ls(dir, o, stdout));

common(program.command('dump').argument('<src...>'))
  .description('entries as JSON lines, keys and values decoded by the built-in codecs the checkpoint names (other bytes as base64); a lone incremental piece: the records it carries')
  .option('--state <name>', 'only this state')
  .option('--key <key>', 'only this key (a string key, or a number key of that value)')
  .option('--limit <n>', 'at most n lines', int('--limit'))
  .addHelpText('after', examples('keystate dump state.ks --state count --limit 10', 'keystate dump ./checkpoints --key user-42'))
  .action((src: string[], o) => cmd.dump(src, o, stdout));

common(program.command('diff').argument('<a>').argument('[b]'))
  .description('keys added, removed and changed from <a> to <b> (each a file or a directory), with counts and bytes; with one incremental file, the delta it carries')
  .option('--limit <n>', 'examples shown per state (default 10)', int('--limit'))
  .addHelpText('after', examples('keystate diff yesterday.ks ./checkpoints', 'keystate diff ckpt-0000000012-12.ks'))
  .action((a: string, b: string | undefined, o) => cmd.diff(a, b, o, stdout));

common(program.command('compact').argument('<src...>'))
  .description('one full checkpoint that restores to the same state as a chain (later incrementals of the chain apply on top of it), verified after writing')
  .requiredOption('-o, --output <file>', 'where to write it')
  .addHelpText('after', examples('keystate compact ./checkpoints -o compacted.ks', 'keystate compact full.ks d1.ks d2.ks -o compacted.ks'))
  .action((src: string[], o) => cmd.compact(src, o, stdout));

common(program.command('split').argument('<src...>'))
  .description('N full checkpoints, one per Flink key-group range (start = ceil(i * maxP / N)), for rescaling')
  .requiredOption('-p, --parallelism <n>', 'how many parts', int('--parallelism'))
  .requiredOption('-o, --output <dir>', 'the folder for part-I-of-N.ks')
  .addHelpText('after', examples('keystate split state.ks --parallelism 4 -o parts/'))
  .action((src: string[], o) => cmd.split(src, o, stdout));

common(program.command('merge').argument('<src...>'))
  .description('one full checkpoint of all key groups from parts covering them (files or directories, one chain each)')
  .requiredOption('-o, --output <file>', 'where to write it')
  .addHelpText('after', examples('keystate merge parts/*.ks -o whole.ks'))
  .action((src: string[], o) => cmd.merge(src, o, stdout));

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // --help and --version end here too, with exit code 0.
    process.exitCode = e.exitCode === 0 ? 0 : 2;
  } else {
    const d = describe(e);
    const json = process.argv.includes('--json') && !(e instanceof CheckFailed && e.reported);
    if (json) process.stdout.write(`${JSON.stringify({ ok: false, error: { code: d.errorCode ?? null, message: d.message } })}\n`);
    process.stderr.write(`keystate: ${d.message}\n`);
    process.exitCode = d.code;
  }
}
