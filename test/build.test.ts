// The binary and the two build files: what backends() reports, and binding.gyp (the CPU-only
// fallback) listing every CPU-side source that CMake compiles.
import * as fs from 'fs';
import * as path from 'path';
import { backends, VERSION } from '../lib';

const root = path.resolve(__dirname, '..');

test('backends() reports the CPU, CUDA availability with a reason, and build facts', () => {
  const b = backends();
  expect(b.cpu).toBe(true);
  expect(typeof b.cuda).toBe('boolean');
  expect(Array.isArray(b.devices)).toBe(true);
  if (b.cuda) {
    expect(b.devices.length).toBeGreaterThan(0);
    for (const d of b.devices) {
      expect(d.computeCapability).toMatch(/^\d+\.\d+$/);
      expect(d.memoryBytes).toBeGreaterThan(0);
    }
  } else {
    expect(b.reason).toMatch(/\S/);
    expect(b.devices).toEqual([]);
  }
  expect(b.build.cpuThreads).toBeGreaterThanOrEqual(1);
  expect(b.build.napiVersion).toBe(8);
  if (b.build.cudaCompiled) {
    expect(b.build.cudaArchs).toMatch(/\d/);
    expect(b.build.cudaRuntimeVersion).toBeGreaterThan(0);
  }
  expect(VERSION).toBe(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version);
});

test('a build with nvcc available compiled the CUDA backend in', () => {
  // Where nvcc is on PATH a CUDA compile error must fail the build, not
  // silently produce a CPU-only binary. NABLA_EXPECT_CUDA_BUILD=0 skips this on other machines.
  if (process.env.NABLA_EXPECT_CUDA_BUILD === '0' || process.env.NABLA_NATIVE_PATH) return;
  // a build configured with NABLA_CUDA=OFF on purpose is CPU only
  const cache = path.join(root, 'build', 'CMakeCache.txt');
  if (fs.existsSync(cache) && /^NABLA_CUDA:STRING=OFF$/m.test(fs.readFileSync(cache, 'utf8'))) return;
  const { spawnSync } = require('child_process');
  const hasNvcc = spawnSync('nvcc', ['--version']).status === 0;
  if (hasNvcc) expect(backends().build.cudaCompiled).toBe(true);
});

test('binding.gyp lists every C++ source of the CPU build', () => {
  const gyp = fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8');
  const listed = new Set([...gyp.matchAll(/"(csrc\/[^"]+\.cc)"/g)].map((m) => m[1]));
  const wanted = ['core', 'cpu', 'napi'].flatMap((dir) =>
    fs.readdirSync(path.join(root, 'csrc', dir)).filter((f) => f.endsWith('.cc')).map((f) => `csrc/${dir}/${f}`),
  );
  wanted.push('csrc/cuda/stub.cc');
  expect([...listed].sort()).toEqual(wanted.sort());
});

test('a binary that cannot load fails with one message naming the platform, the paths tried and the fix', () => {
  const { spawnSync } = require('child_process');
  const r = spawnSync(process.execPath, ['-e', "require('./dist/native')"], {
    cwd: root, encoding: 'utf8', env: { ...process.env, NABLA_NATIVE_PATH: '/nonexistent/nabla.node' },
  });
  expect(r.status).not.toBe(0);
  expect(r.stderr).toContain(`no native binary loads on ${process.platform}-${process.arch}`);
  expect(r.stderr).toContain('/nonexistent/nabla.node (not found)');
  expect(r.stderr).toContain('npm rebuild nabla-attention');
});
