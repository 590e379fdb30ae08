// Running the built CLI (dist/cli/nabla.js, compiled by jest's global setup) from tests.
import { spawnSync } from 'child_process';
import * as path from 'path';

export const CLI = path.join(__dirname, '..', 'dist', 'cli', 'nabla.js');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `nabla ...args` in `cwd`. */
export function runCli(cwd: string, args: string[]): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The same for a command that must succeed. */
export function runCliOk(cwd: string, args: string[]): Run {
  const r = runCli(cwd, args);
  if (r.code !== 0) throw new Error(`nabla ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r;
}
