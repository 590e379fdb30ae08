#!/usr/bin/env node
// The `nabla` command line: info, mask, attend on .npy files; bench on model shapes.
// Exit codes: 0 done, 1 the work failed (bad files, values the library rejects, no CUDA),
// 2 the command line is wrong. Every failure is one line on stderr: `nabla: <message>`.
import { UsageError, CommandSpec, Flags, parseFlags, usage } from './args';
import { VERSION } from '../version';

interface Command {
  spec: CommandSpec;
  run(flags: Flags): Promise<void>;
}

// Loaded on use: the native addon loads with a command, so `nabla --help` works without it.
const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  info: { summary: 'version, backends, devices and build facts', load: () => import('./info') },
  mask: { summary: 'NABLA block mask of q, k .npy files -> uint8 .npy', load: () => import('./mask') },
  attend: { summary: 'block-sparse attention of q, k, v .npy files -> float32 .npy', load: () => import('./attend') },
  bench: {
    summary: 'time mask, sparse and dense attention on model shapes (ms, TFLOP/s, error)',
    load: () => import('./bench'),
  },
};

const TOP_USAGE = [
  `nabla ${VERSION}: NABLA sparse attention on .npy files`,
  '',
  'Usage: nabla <command> [flags]',
  '',
  'Commands:',
  ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(8)}${c.summary}`),
  '',
  'Flags:',
  '  -h, --help     Show this help (nabla <command> --help for a command)',
  '  -v, --version  Print the version',
  '',
  'Exit codes: 0 done, 1 failed (input files, rejected values, no CUDA), 2 command-line error.',
  'Set NABLA_DEBUG=1 to print stack traces of failures.',
  '',
].join('\n');

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '-h' || name === '--help') {
    process.stdout.write(TOP_USAGE);
    return 0;
  }
  if (name === '-v' || name === '--version') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  if (name === undefined) throw new UsageError('missing command: info, mask, attend or bench (see nabla --help)');
  if (!Object.hasOwn(COMMANDS, name))
    throw new UsageError(`unknown command '${name}': expected info, mask, attend or bench (see nabla --help)`);
  const command = await COMMANDS[name].load();
  const flags = parseFlags(rest, command.spec);
  if (flags === 'help') {
    process.stdout.write(usage(command.spec));
    return 0;
  }
  await command.run(flags);
  return 0;
}

/** Any message as one line (the addon loader explains itself over several). */
function oneLine(message: string): string {
  return message
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .join(' ');
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`nabla: ${oneLine(message)}\n`);
    if (process.env.NABLA_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  },
);
