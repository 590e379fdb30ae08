// The packed tarball installs from its prebuilt binary on a machine with no compilers: pack, install
// into an empty project with a PATH that holds only node (no cmake, nvcc, cc or c++), run NABLA.
import { spawnSync, SpawnSyncReturns } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { binaryGpuCode, missingGpuCode } from '../scripts/fatbin';
import { defaultCudaArchs } from './cuda-archs';

const root = path.resolve(__dirname, '..');
const npmCli =
  process.env.npm_execpath && process.env.npm_execpath.endsWith('.js')
    ? process.env.npm_execpath
    : path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');

function npm(args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [npmCli, ...args], { cwd, env, encoding: 'utf8' });
}

function expectOk(r: SpawnSyncReturns<string>, what: string) {
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
}

const PLATFORM = `${process.platform}-${process.arch}`;

// builds the prebuilt binary with every default CUDA architecture first: minutes on 2 cores
test('npm pack + install into an empty project without compilers uses the prebuilt binary', () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nabla-pack-'));
  // a prebuilt binary left in the checkout would be preferred over source builds by npm install
  const prebuilds = path.join(root, 'prebuilds');
  const hadPrebuilds = fs.existsSync(prebuilds);
  try {
    expectOk(npm(['run', 'prebuilds'], root), 'npm run prebuilds');
    // from the binary's bytes: a cubin for every default architecture (Blackwell's sm_100 and
    // sm_120 among them) and the compute_90 PTX for GPUs after those
    const code = binaryGpuCode(fs.readFileSync(path.join(prebuilds, PLATFORM, 'node.napi.node')));
    expect(missingGpuCode(code, defaultCudaArchs())).toEqual([]);
    for (const arch of ['sm_100', 'sm_120'])
      expect(code.filter((c) => c.arch === arch && c.kind === 'elf').length).toBeGreaterThan(0);
    expect(code.filter((c) => c.arch === 'compute_90' && c.kind === 'ptx').length).toBeGreaterThan(0);
    // --ignore-scripts: dist/ was built by jest's global setup; rebuilding it here would race other test files
    const packed = npm(['pack', '--ignore-scripts', '--json', '--pack-destination', work], root);
    expectOk(packed, 'npm pack');
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')));
    const files: string[] = info.files.map((f: { path: string }) => f.path);
    expect(files).toContain(`prebuilds/${PLATFORM}/node.napi.node`);
    expect(files).toContain('dist/index.js');
    expect(files.some((f) => f.startsWith('test/') || f.startsWith('build/'))).toBe(false);

    // PATH with node and sh only (npm runs scripts with sh): no cmake, nvcc or C++ compiler
    const bin = path.join(work, 'bin');
    fs.mkdirSync(bin);
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
    fs.symlinkSync('/bin/sh', path.join(bin, 'sh'));
    const env = { ...process.env, PATH: bin, npm_config_node_gyp: '' };
    for (const tool of ['cmake', 'nvcc', 'c++', 'g++', 'cc'])
      expect(spawnSync(tool, ['--version'], { env }).error).toBeDefined();

    const app = path.join(work, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    const start = Date.now();
    const installed = npm(
      ['install', '--no-audit', '--no-fund', '--foreground-scripts', path.join(work, info.filename)],
      app,
      env,
    );
    expectOk(installed, 'npm install <tarball>');
    const seconds = (Date.now() - start) / 1000;
    expect(installed.stdout + installed.stderr).toContain(`using prebuilt binary prebuilds/${PLATFORM}/node.napi.node`);
    expect(fs.existsSync(path.join(app, 'node_modules', 'nabla-attention', 'build'))).toBe(false);

    const script = `
      const n = require('nabla-attention');
      const S = 2 * 8 * 16, D = 16, count = 2 * S * D;
      const make = (s) => n.tensor(Float32Array.from({ length: count }, (_, i) => Math.sin(i * s)), [1, 2, S, D]);
      const { output, mask } = n.nablaAttentionSync(make(0.1), make(0.2), make(0.3), { threshold: 0.7, grid: [2, 8, 16], sta: [1, 1, 1], backend: 'cpu' });
      console.log(JSON.stringify({ dims: output.dims, finite: output.data.every(Number.isFinite), density: mask.density(), cudaCompiled: n.backends().build.cudaCompiled }));`;
    const ran = spawnSync(process.execPath, ['-e', script], { cwd: app, env, encoding: 'utf8' });
    expectOk(ran, 'running nablaAttention from the installed package');
    const result = JSON.parse(ran.stdout);
    expect(result.dims).toEqual([1, 2, 256, 16]);
    expect(result.finite).toBe(true);
    expect(result.density).toBeGreaterThan(0);
    expect(result.density).toBeLessThanOrEqual(1);
    expect(result.cudaCompiled).toBe(true);
    // eslint-disable-next-line no-console
    console.log(`installed the packed tarball in ${seconds.toFixed(1)} s without compilers`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    if (!hadPrebuilds) fs.rmSync(prebuilds, { recursive: true, force: true });
  }
}, 900_000);

test('without CMake, npm install falls back to node-gyp and builds a working CPU-only addon', () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nabla-gyp-'));
  try {
    for (const f of ['package.json', 'binding.gyp', 'CMakeLists.txt'])
      fs.copyFileSync(path.join(root, f), path.join(work, f));
    for (const d of ['csrc', 'scripts']) fs.cpSync(path.join(root, d), path.join(work, d), { recursive: true });
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(work, 'node_modules'));
    // a PATH whose cmake always fails stands for a machine without CMake
    const bin = path.join(work, 'fake-bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'cmake'), '#!/bin/sh\nexit 127\n', { mode: 0o755 });
    const gyp = path.join(path.dirname(npmCli), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, npm_config_node_gyp: gyp };
    const built = spawnSync(process.execPath, ['scripts/install.js'], { cwd: work, env, encoding: 'utf8' });
    expectOk(built, 'scripts/install.js with node-gyp');
    expect(built.stdout).toMatch(/CMake not found; building the CPU-only backend with node-gyp/);

    const addon = path.join(work, 'build', 'Release', 'nabla_attention.node');
    const script = `
      const n = require(${JSON.stringify(path.join(root, 'dist'))});
      const q = n.tensor(Float32Array.from({ length: 2 * 256 * 16 }, (_, i) => Math.sin(i)), [1, 2, 256, 16]);
      const { output, mask } = n.nablaAttentionSync(q, q, q, { threshold: 0.7, backend: 'cpu' });
      console.log(JSON.stringify({ finite: output.data.every(Number.isFinite), density: mask.density(), build: n.backends().build }));`;
    const ran = spawnSync(process.execPath, ['-e', script], {
      env: { ...process.env, NABLA_NATIVE_PATH: addon },
      encoding: 'utf8',
    });
    expectOk(ran, 'running the node-gyp build');
    const result = JSON.parse(ran.stdout);
    expect(result.finite).toBe(true);
    expect(result.density).toBeGreaterThan(0);
    expect(result.build.cudaCompiled).toBe(false);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});
