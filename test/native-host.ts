// Host unit tests of csrc/ (test/native/<name>.cc): compiled with the machine's C++ compiler and
// run; each prints "<name>: ok" and exits 0, or prints its failed checks (test/native/check.h).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '..');
export const cxx = process.env.CXX ?? 'g++';
export const hasCxx = spawnSync(cxx, ['--version']).status === 0;

export interface HostTestOptions {
  /** More sources to compile with it (paths from the repository root), e.g. the .cc it tests. */
  sources?: string[];
  /** More compiler flags, e.g. -pthread. */
  flags?: string[];
  /** Run the binary once per environment (added to this process's); default one run as is. */
  envs?: Record<string, string>[];
}

/** Registers a jest test that compiles and runs test/native/<name>.cc; skipped, with a warning, without a compiler. */
export function hostTest(name: string, title: string, options: HostTestOptions = {}): void {
  if (!hasCxx) console.warn(`${name} host test skipped: no C++ compiler (${cxx}) on PATH`);
  (hasCxx ? test : test.skip)(title, () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), `nabla-${name}-`));
    try {
      const binary = path.join(work, name);
      const args = ['-std=c++17', '-O2', '-Wall', '-Wextra', '-Werror', ...(options.flags ?? [])];
      const compiled = spawnSync(cxx, [...args, `test/native/${name}.cc`, ...(options.sources ?? []), '-o', binary], {
        cwd: ROOT,
        encoding: 'utf8',
        maxBuffer: 64 << 20,
      });
      expect(`${compiled.stdout}${compiled.stderr}`).toBe('');
      expect(compiled.status).toBe(0);
      for (const env of options.envs ?? [{}]) {
        const r = spawnSync(binary, [], { encoding: 'utf8', timeout: 120000, env: { ...process.env, ...env } });
        expect({ env, out: `${r.stdout}${r.stderr}`, status: r.status }).toEqual({
          env,
          out: `${name}: ok\n`,
          status: 0,
        });
      }
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
}
