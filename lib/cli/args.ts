// A small flag parser for the CLI: `--flag value`, `--flag=value`, boolean `--flag`, -h/--help.
// Values are parsed strictly: '0.7abc', '1,2' for a triple, or '' are usage errors (exit code 2).

/** A command-line mistake: printed as one line, exit code 2. */
export class UsageError extends Error {}

export interface FlagSpec {
  name: string;
  /** Placeholder of the value, e.g. 'FILE'; absent for boolean flags. */
  value?: string;
  help: string;
  /** Shown in the usage text: a default value, or 'required'. */
  default?: string;
  required?: boolean;
}

export interface CommandSpec {
  name: string;
  summary: string;
  flags: FlagSpec[];
  /** Extra lines after the flag list (rules between flags, examples). */
  notes?: string[];
}

/** Flag values by name (without '--'); boolean flags map to true. */
export type Flags = Map<string, string | true>;

/** Parses argv (after the command name). Returns 'help' when -h or --help appears anywhere. */
export function parseFlags(argv: readonly string[], spec: CommandSpec): Flags | 'help' {
  if (argv.some((arg) => arg === '-h' || arg === '--help')) return 'help';
  const flags: Flags = new Map();
  const command = `nabla ${spec.name}`;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--') || arg === '--')
      throw new UsageError(`unexpected argument '${arg}' for ${command} (see ${command} --help)`);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const flag = spec.flags.find((f) => f.name === name);
    if (!flag) throw new UsageError(`unknown flag --${name} for ${command} (see ${command} --help)`);
    if (flags.has(name)) throw new UsageError(`flag --${name} given twice`);
    if (flag.value === undefined) {
      if (eq >= 0) throw new UsageError(`flag --${name} takes no value but received '${arg.slice(eq + 1)}'`);
      flags.set(name, true);
      continue;
    }
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) value = argv[++i];
    else throw new UsageError(`flag --${name} needs a value ${flag.value}`);
    flags.set(name, value);
  }
  for (const f of spec.flags)
    if (f.required && !flags.has(f.name))
      throw new UsageError(`missing required flag --${f.name} ${f.value} (see ${command} --help)`);
  for (const [name, value] of flags)
    if (value === '') throw new UsageError(`Expected a non-empty value for --${name} but received ''`);
  return flags;
}

/** The usage text of a command: summary, usage line, one line per flag with its default. */
export function usage(spec: CommandSpec): string {
  const command = `nabla ${spec.name}`;
  const synopsis = spec.flags
    .map((f) => {
      const text = f.value ? `--${f.name} ${f.value}` : `--${f.name}`;
      return f.required ? text : `[${text}]`;
    })
    .join(' ');
  const left = spec.flags.map((f) => (f.value ? `--${f.name} ${f.value}` : `--${f.name}`));
  const width = Math.max(...left.map((l) => l.length), '-h, --help'.length);
  const lines = spec.flags.map((f, i) => {
    const note = f.required ? ' (required)' : f.default !== undefined ? ` (default: ${f.default})` : '';
    return `  ${left[i].padEnd(width)}  ${f.help}${note}`;
  });
  lines.push(`  ${'-h, --help'.padEnd(width)}  Show this help`);
  return [
    `${command}: ${spec.summary}`,
    '',
    `Usage: ${command} ${synopsis}`,
    '',
    'Flags:',
    ...lines,
    ...(spec.notes ? ['', ...spec.notes] : []),
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Strict value parsers: the whole text must be the value (Number('') is 0, parseFloat('0.7abc')
// is 0.7; neither is accepted here).

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const INTEGER = /^\d+$/;

function malformed(flag: string, expected: string, text: string): UsageError {
  return new UsageError(`Expected ${expected} for --${flag} but received '${text}'`);
}

/** A finite decimal number (range checks belong to the library). */
export function parseNumber(text: string, flag: string): number {
  if (!DECIMAL.test(text)) throw malformed(flag, 'a number', text);
  return Number(text);
}

export function parseInteger(text: string, flag: string): number {
  if (!INTEGER.test(text) || !Number.isSafeInteger(Number(text))) throw malformed(flag, 'a non-negative integer', text);
  return Number(text);
}

/** Comma-separated non-negative integers, exactly `count` of them when given. */
export function parseIntList(text: string, flag: string, what: string, count?: number): number[] {
  const parts = text.split(',');
  const ok =
    parts.every((p) => INTEGER.test(p) && Number.isSafeInteger(Number(p))) &&
    (count === undefined || parts.length === count);
  if (!ok) throw malformed(flag, what, text);
  return parts.map(Number);
}

export function parseChoice<T extends string>(text: string, flag: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(text))
    throw malformed(
      flag,
      choices
        .map((c) => `'${c}'`)
        .join(', ')
        .replace(/, ([^,]*)$/, ' or $1'),
      text,
    );
  return text as T;
}
