// The shared CPU thread pool (csrc/core/thread_pool.cc), tested natively: test/native/thread_pool.cc,
// compiled with the machine's C++ compiler. An async CPU mask pools q and k on the JS thread with
// parallelForNoWait, which must never wait behind another op's job.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '..');
const cxx = process.env.CXX ?? 'g++';
const hasCxx = spawnSync(cxx, ['--version']).status === 0;
if (!hasCxx) console.warn(`thread pool test skipped: no C++ compiler (${cxx}) on PATH`);

(hasCxx ? test : test.skip)('parallelFor and parallelForNoWait, idle and busy pool', () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nabla-pool-'));
  try {
    const binary = path.join(work, 'thread_pool');
    const compiled = spawnSync(
      cxx,
      [
        '-std=c++17',
        '-O2',
        '-Wall',
        '-Wextra',
        '-Werror',
        '-pthread',
        'test/native/thread_pool.cc',
        'csrc/core/thread_pool.cc',
        '-o',
        binary,
      ],
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(`${compiled.stdout}${compiled.stderr}`).toBe('');
    expect(compiled.status).toBe(0);
    for (const threads of ['1', '2', '4']) {
      const r = spawnSync(binary, [], {
        encoding: 'utf8',
        timeout: 60000,
        env: { ...process.env, NABLA_NUM_THREADS: threads },
      });
      expect({ threads, out: `${r.stdout}${r.stderr}`, status: r.status }).toEqual({
        threads,
        out: 'thread_pool: ok\n',
        status: 0,
      });
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});
