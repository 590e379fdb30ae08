// The vectorised CUDA pooling kernel's index math, checked on the host without a GPU: the host
// unit test test/native/pool_split.cc (compiled with the system C++ compiler) replays the kernel's
// split of ragged blocks into 16-byte loads and its summation order against the per-block kernel's.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '..');
const cxx = process.env.CXX ?? 'g++';
const hasCxx = spawnSync(cxx, ['--version']).status === 0;
if (!hasCxx) console.warn(`pool_split host test skipped: no C++ compiler (${cxx}) on PATH`);

(hasCxx ? test : test.skip)('pool_split.cc: every element read once, aligned loads, the per-block order', () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nabla-pool-split-'));
  try {
    const binary = path.join(work, 'pool_split');
    const compiled = spawnSync(
      cxx,
      ['-std=c++17', '-O2', '-Wall', '-Wextra', '-Werror', 'test/native/pool_split.cc', '-o', binary],
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(`${compiled.stdout}${compiled.stderr}`).toBe('');
    expect(compiled.status).toBe(0);
    const r = spawnSync(binary, [], { encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`).toBe('pool_split: ok\n');
    expect(r.status).toBe(0);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});
