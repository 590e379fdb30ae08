// Running the built CLI (dist/cli/nabla.js, compiled by jest's global setup) from tests.
import { spawnSync } from 'child_process';
import * as path from 'path';

export const CLI = path.join(__dirname, '..', 'dist', 'cli', 'nabla.js');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `nabla ...args` in `cwd`, with `env` added to this process's environment. */
export function runCli(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The same for a command that must succeed. */
export function runCliOk(cwd: string, args: string[]): Run {
  const r = runCli(cwd, args);
  if (r.code !== 0) throw new Error(`nabla ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r;
}

/** A failure as users see it: exit `code`, nothing on stdout, one line `nabla: <message>` on stderr. */
export function expectOneLine(r: Run, code: number, message: RegExp): void {
  expect({ code: r.code, stdout: r.stdout }).toEqual({ code, stdout: '' });
  expect(r.stderr.endsWith('\n')).toBe(true);
  const lines = r.stderr.slice(0, -1).split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0].startsWith('nabla: ')).toBe(true);
  expect(lines[0].slice('nabla: '.length)).toMatch(message);
}
