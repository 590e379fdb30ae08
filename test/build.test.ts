// The binary and the two build files: what backends() reports, binding.gyp (the CPU-only
// fallback) listing every CPU-side source that CMake compiles, and the GPU code in the binary.
import * as fs from 'fs';
import * as path from 'path';
import { backends, VERSION } from '../lib';
import { kernelImageFor, parseCudaArchs } from '../lib/archs';
import { binaryGpuCode, fatbinEntries, missingGpuCode, wantedGpuCode } from '../scripts/fatbin';
import { defaultCudaArchs } from './cuda-archs';

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
      expect(d.kernelImage).toEqual(kernelImageFor(d.computeCapability, b.build.cudaArchs));
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
    fs
      .readdirSync(path.join(root, 'csrc', dir))
      .filter((f) => f.endsWith('.cc'))
      .map((f) => `csrc/${dir}/${f}`),
  );
  wanted.push('csrc/cuda/stub.cc');
  expect([...listed].sort()).toEqual(wanted.sort());
});

test('a binary that cannot load fails with one message naming the platform, the paths tried and the fix', () => {
  const { spawnSync } = require('child_process');
  const r = spawnSync(process.execPath, ['-e', "require('./dist/native')"], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, NABLA_NATIVE_PATH: '/nonexistent/nabla.node' },
  });
  expect(r.status).not.toBe(0);
  expect(r.stderr).toContain(`no native binary loads on ${process.platform}-${process.arch}`);
  expect(r.stderr).toContain('/nonexistent/nabla.node (not found)');
  expect(r.stderr).toContain('npm rebuild nabla-attention');
});

// The GPU code inside a binary, read from its .nv_fatbin section (scripts/fatbin.js).
describe('GPU code in the binary', () => {
  /** A fat-binary entry: kind (1 PTX, 2 ELF), SM version, flags; header of `headerSize` bytes + payload. */
  function entry(kind: number, sm: number, flags: number, headerSize: number, payload: Buffer): Buffer {
    const header = Buffer.alloc(headerSize);
    header.writeUInt16LE(kind, 0);
    header.writeUInt32LE(headerSize, 4);
    header.writeBigUInt64LE(BigInt(payload.length), 8);
    header.writeUInt32LE(sm, 28);
    header.writeUInt32LE(flags, 40);
    return Buffer.concat([header, payload]);
  }
  function container(...entries: Buffer[]): Buffer {
    const body = Buffer.concat(entries);
    const header = Buffer.alloc(16);
    header.writeUInt32LE(0xba55ed50, 0);
    header.writeUInt16LE(1, 4);
    header.writeUInt16LE(16, 6);
    header.writeBigUInt64LE(BigInt(body.length), 8);
    return Buffer.concat([header, body]);
  }

  test('fatbinEntries lists every entry of every container, with its kind and architecture', () => {
    const elf = Buffer.from('\x7fELF....', 'latin1'); // 8 bytes: payloads are padded to 8
    const bytes = Buffer.concat([
      container(entry(2, 100, 0x1000011, 112, elf), entry(1, 90, 0x8011, 80, Buffer.alloc(24, 7))),
      Buffer.alloc(8), // zero padding between containers
      container(entry(2, 90, 0x100011, 64, elf), entry(2, 100, 0x1200011, 112, elf), entry(2, 120, 0x11, 64, elf)),
    ]);
    expect(fatbinEntries(bytes).map((e) => `${e.kind}:${e.arch}`)).toEqual([
      'elf:sm_100',
      'ptx:compute_90',
      'elf:sm_90a',
      'elf:sm_100f',
      'elf:sm_120',
    ]);
    const damaged = Buffer.from(bytes);
    damaged.writeUInt32LE(0x12345678, 0);
    expect(() => fatbinEntries(damaged)).toThrow(/no fat-binary container at offset 0/);
    expect(() => fatbinEntries(bytes.subarray(0, bytes.length - 8))).toThrow(/runs past the section/);
  });

  test('wantedGpuCode reads the CMake list as lib/archs.ts does; the default has Blackwell cubins', () => {
    const list = defaultCudaArchs();
    const fromArchs = parseCudaArchs(list).flatMap((a) => {
      if (a === null) throw new Error(`unparsed entry in ${list}`);
      return [...(a.cubin ? [`sm_${a.sm}${a.variant}`] : []), ...(a.ptx ? [`compute_${a.sm}${a.variant}`] : [])];
    });
    expect(wantedGpuCode(list)).toEqual(fromArchs);
    expect(wantedGpuCode(list)).toEqual(expect.arrayContaining(['sm_90a', 'sm_100', 'sm_120', 'compute_90']));
    expect(wantedGpuCode('90-real;100')).toEqual(['sm_90', 'sm_100', 'compute_100']);
    expect(() => wantedGpuCode('native')).toThrow(/"native"/);
  });

  test('nvcc output: the entries read back are exactly the architectures compiled', () => {
    const { spawnSync } = require('child_process');
    if (spawnSync('nvcc', ['--version']).status !== 0) return; // needs nvcc, not a GPU
    const dir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'nabla-fatbin-'));
    try {
      fs.writeFileSync(path.join(dir, 'k.cu'), '__global__ void k(float* x) { x[threadIdx.x] += 1.0f; }\n');
      const archs = '90a-real;100-real;120f-real;90-virtual';
      const gencode = parseCudaArchs(archs).map((a) => {
        const name = `${a!.sm}${a!.variant}`;
        return `--generate-code=arch=compute_${name},code=${a!.cubin ? 'sm' : 'compute'}_${name}`;
      });
      const r = spawnSync('nvcc', ['-c', 'k.cu', '-o', 'k.o', ...gencode], { cwd: dir, encoding: 'utf8' });
      expect(r.stderr).toBe('');
      const code = binaryGpuCode(fs.readFileSync(path.join(dir, 'k.o')));
      expect(code.map((c) => c.arch).sort()).toEqual(['compute_90', 'sm_100', 'sm_120f', 'sm_90a']);
      expect(code.find((c) => c.arch === 'compute_90')?.kind).toBe('ptx');
      expect(missingGpuCode(code, archs)).toEqual([]);
      expect(missingGpuCode(code, '89-real;100')).toEqual(['sm_89', 'compute_100']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the loaded binary carries code for every architecture it reports (cudaArchs)', () => {
    const { build } = backends();
    if (!build.cudaCompiled) return;
    const file = process.env.NABLA_NATIVE_PATH ?? path.join(root, 'build', 'Release', 'nabla_attention.node');
    if (!fs.existsSync(file)) return;
    expect(missingGpuCode(binaryGpuCode(fs.readFileSync(file)), build.cudaArchs)).toEqual([]);
  });
});
