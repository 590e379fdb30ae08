// The Hopper attention kernel (csrc/cuda/hopper): what can be checked without a GPU, in every run --
// the host unit tests of its layout, pipeline and row-order arithmetic (test/native/*.cc, compiled
// with the system C++ compiler), the build check that fails on spills and serialized wgmma, the
// instructions its PTX must contain, and that the GPU ladder compiles -- then, on a compute
// capability 9.0 device with an sm_90a build, the kernel itself against an fp64 reference
// (FlashAttention's rule, as the fast kernel is checked).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import {
  BlockMask,
  attention,
  attentionSync,
  backends,
  bfloat16ToFloat,
  cast,
  float16ToFloat,
  floatToBfloat16,
  floatToFloat16,
  tensor,
  toDeviceSync,
  toFloat32Array,
} from '../lib';
import { maxAbsDiff, poisonedAttentionSync, refAttention } from '../lib/oracle';
import { hostTest } from './native-host';
import { randn, rng } from './reference';

const ROOT = path.resolve(__dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nabla-hopper-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function found(command: string): boolean {
  return spawnSync(command, ['--version']).status === 0;
}
const hasNvcc = found('nvcc');
if (!hasNvcc) console.warn('hopper PTX and ladder checks skipped: no nvcc on PATH');

function run(command: string, args: string[], cwd = ROOT) {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

describe('host unit tests of the Hopper kernel', () => {
  for (const name of ['hopper_layout', 'hopper_pipeline', 'hopper_row_order']) hostTest(name, `${name}.cc`);
});

describe('build check: cmake/hopper-ptxas-check.sh', () => {
  const check = path.join(ROOT, 'cmake', 'hopper-ptxas-check.sh');
  // a stand-in compiler: prints the given ptxas report and exits with the given status
  const compile = (report: string, status = 0, source = 'csrc/cuda/kernels/attention_hopper_bf16_d128.cu') =>
    run('bash', [check, 'sh', '-c', `printf '%s\\n' "$0"; exit ${status}`, report, '-c', source]);
  const clean = [
    "ptxas info    : Compiling entry function '_Z21hopperAttentionKernel' for 'sm_90a'",
    'ptxas info    : Function properties for _Z21hopperAttentionKernel',
    '    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads',
    'ptxas info    : Used 168 registers, used 16 barriers',
  ].join('\n');

  test('passes a clean report and keeps only the register line', () => {
    const r = compile(clean);
    expect(r.status).toBe(0);
    expect(r.out.trim()).toBe('ptxas info    : Used 168 registers, used 16 barriers');
  });
  test.each([
    ['a stack frame', '    16 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads'],
    ['spill stores', '    0 bytes stack frame, 8 bytes spill stores, 0 bytes spill loads'],
    ['spill loads', '    0 bytes stack frame, 0 bytes spill stores, 120 bytes spill loads'],
    ['C7508 (setmaxnreg ignored)', "ptxas info    : (C7508) Potential Performance Loss: 'setmaxnreg' ignored"],
    [
      'C7510 (wgmma serialized)',
      'ptxas info    : (C7510) Potential Performance Loss: wgmma.mma_async instructions are serialized',
    ],
    ['C7520', 'ptxas info    : (C7520) Potential Performance Loss: wgmma waits inserted'],
  ])('fails on %s', (_what, line) => {
    const r = compile(`${clean}\n${line}`);
    expect(r.status).toBe(1);
    expect(r.out).toContain('hopper-ptxas-check');
    expect(r.out).toContain(line.trim());
  });
  test('passes other sources through untouched, and a failing compile keeps its status', () => {
    const other = compile('    8 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads', 0, 'csrc/cuda/mask.cu');
    expect(other.status).toBe(0);
    expect(compile(clean, 3).status).toBe(3);
  });
});

describe('PTX of the Hopper kernel (nvcc -ptx, sm_90a)', () => {
  for (const instance of ['bf16_d128', 'fp16_d64']) {
    (hasNvcc ? test : test.skip)(
      `attention_hopper_${instance}: wgmma, TMA, mbarrier waits, proxy fence, setmaxnreg, no local memory`,
      () => {
        const ptx = path.join(work, `${instance}.ptx`);
        const r = run('nvcc', [
          '-std=c++17',
          '-O3',
          '--expt-relaxed-constexpr',
          '-arch=sm_90a',
          '-ptx',
          `csrc/cuda/kernels/attention_hopper_${instance}.cu`,
          '-o',
          ptx,
        ]);
        expect(r.status).toBe(0);
        const text = fs.readFileSync(ptx, 'utf8');
        expect(text).toMatch(/\.entry\s+\S*hopperAttentionKernel/);
        for (const instruction of [
          'wgmma.mma_async',
          'cp.async.bulk.tensor.2d',
          'mbarrier.try_wait.parity',
          'mbarrier.arrive.expect_tx',
          'fence.proxy.async',
          'setmaxnreg.inc',
          'setmaxnreg.dec',
          'wgmma.wait_group',
        ])
          expect(text).toContain(instruction);
        expect(text).not.toMatch(/ld\.local|st\.local/);
      },
    );
  }
  (hasNvcc ? test : test.skip)('other targets (sm_80, compute_90 PTX) get a stub without Hopper instructions', () => {
    const ptx = path.join(work, 'compute90.ptx');
    const r = run('nvcc', [
      '-std=c++17',
      '-O3',
      '--expt-relaxed-constexpr',
      '-arch=compute_90',
      '-ptx',
      'csrc/cuda/kernels/attention_hopper_bf16_d128.cu',
      '-o',
      ptx,
    ]);
    expect(r.status).toBe(0);
    const text = fs.readFileSync(ptx, 'utf8');
    expect(text).toMatch(/\.entry\s+\S*hopperAttentionKernel/);
    expect(text).not.toContain('wgmma');
    expect(text).not.toContain('setmaxnreg');
  });
});

describe('the GPU ladder (bench/hopper)', () => {
  (hasNvcc ? test : test.skip)(
    'the rung binary compiles for sm_90a, its kernels without spills or ptxas performance infos',
    () => {
      const r = run('bash', ['bench/hopper/build-ladder.sh', path.join(work, 'hopper-ladder'), '-Xptxas=-v']);
      if (r.status !== 0) console.error(r.out);
      expect(r.status).toBe(0);
      expect(fs.existsSync(path.join(work, 'hopper-ladder'))).toBe(true);
      // a rung must run the instruction sequence the kernel runs: no injected waits (C7519 and kin)
      expect(r.out).toContain('Used');
      expect(r.out).not.toMatch(/\(C75\d\d\)/);
      expect(r.out).not.toMatch(/[1-9]\d* bytes (stack frame|spill stores|spill loads)/);
    },
    600000,
  );
  test('the ladder script parses', () => {
    expect(run('bash', ['-n', 'bench/hopper/ladder.sh']).status).toBe(0);
  });
});

// ---- on a Hopper GPU ----
const info = backends();
const device = info.devices[0];
const hopperReason = !info.cuda
  ? `no CUDA device (${info.reason ?? 'unknown reason'})`
  : device?.computeCapability !== '9.0'
    ? `device 0 has compute capability ${device?.computeCapability}, not 9.0`
    : !info.build.cudaArchs.includes('90a')
      ? `the binary was built for ${info.build.cudaArchs}, without 90a`
      : '';
if (hopperReason) {
  console.warn(`Hopper kernel GPU tests skipped: ${hopperReason}`);
  test.skip(`Hopper kernel GPU tests: skipped, ${hopperReason}`, () => undefined);
}

// FlashAttention's rule, as the fast kernel's checks apply it (bench/gpu-check.js): the error
// against fp64 is at most twice that of the naive computation in the inputs' precision, plus twice
// the rounding error of 0.3 for outputs near zero.
function flashAttentionRule(
  got: ArrayLike<number>,
  fp64: ArrayLike<number>,
  naive: ArrayLike<number>,
  round: (x: number) => number,
) {
  const error = maxAbsDiff(got, fp64),
    naiveError = maxAbsDiff(naive, fp64);
  return { error, limit: 2 * naiveError + 2 * Math.abs(round(0.3) - 0.3) };
}

test('the error rule of the GPU tests passes the naive computation and fails a result 3x its limit off at one element', () => {
  const c = { B: 1, H: 1, S: 128, D: 64 };
  const [qf, kf, vf] = [1, 2, 3].map((seed) =>
    toFloat32Array(cast(tensor(randn(c.S * c.D, seed), [1, 1, c.S, c.D]), 'bfloat16')),
  );
  const round = (x: number) => bfloat16ToFloat(floatToBfloat16(x));
  const fp64 = refAttention(qf, kf, vf, c, c.S, c.D, 0.125);
  const naive = refAttention(qf, kf, vf, c, c.S, c.D, 0.125, undefined, round);
  const pass = flashAttentionRule(naive, fp64, naive, round);
  expect(pass.error).toBeGreaterThan(0);
  expect(pass.error).toBeLessThanOrEqual(pass.limit);
  const off = Float64Array.from(naive);
  off[77] += 3 * pass.limit;
  const fail = flashAttentionRule(off, fp64, naive, round);
  expect(fail.error).toBeGreaterThan(fail.limit);
});

describe('the Hopper kernel on a GPU', () => {
  const shapes = [
    { B: 1, H: 2, Sq: 256, Skv: 256, D: 64 },
    { B: 2, H: 1, Sq: 192, Skv: 320, D: 128 },
    { B: 1, H: 3, Sq: 640, Skv: 64 * 40, D: 128 }, // 30 rows of 40-block lists (bench/hopper/probe.js has more rows than 2 per CTA)
  ];
  for (const type of ['bfloat16', 'float16'] as const)
    for (const c of shapes)
      for (const density of [0.5, 1])
        (hopperReason ? test.skip : test)(
          `${type} D${c.D} Sq${c.Sq} Skv${c.Skv} density ${density}: within 2x the naive error against fp64, empty rows zero, nothing unwritten`,
          async () => {
            const q = cast(tensor(randn(c.B * c.H * c.Sq * c.D, 1), [c.B, c.H, c.Sq, c.D]), type);
            const k = cast(tensor(randn(c.B * c.H * c.Skv * c.D, 2), [c.B, c.H, c.Skv, c.D]), type);
            const v = cast(tensor(randn(c.B * c.H * c.Skv * c.D, 3), [c.B, c.H, c.Skv, c.D]), type);
            const nq = c.Sq / 64,
              nk = c.Skv / 64;
            const r = rng(c.D + c.Sq);
            const dense = Uint8Array.from({ length: c.B * c.H * nq * nk }, () => (r() < density ? 1 : 0));
            if (density < 1) dense.fill(0, 0, nk); // row 0 keeps nothing: zeros
            const mask = BlockMask.fromDense(dense, [c.B, c.H, nq, nk]);
            const [qf, kf, vf] = [q, k, v].map(toFloat32Array);
            const dims = { B: c.B, H: c.H, S: c.Sq, D: c.D },
              scale = 1 / Math.sqrt(c.D);
            const round =
              type === 'float16'
                ? (x: number) => float16ToFloat(floatToFloat16(x))
                : (x: number) => bfloat16ToFloat(floatToBfloat16(x));
            const fp64 = refAttention(qf, kf, vf, dims, c.Skv, c.D, scale, dense);
            const naive = refAttention(qf, kf, vf, dims, c.Skv, c.D, scale, dense, round);
            const qd = toDeviceSync(q),
              kd = toDeviceSync(k),
              vd = toDeviceSync(v),
              md = mask.toDevice();
            // NaN-poisoned output: an element the kernel leaves unwritten shows up
            const values = poisonedAttentionSync(qd, kd, vd, density < 1 ? md : undefined, {
              backend: 'cuda',
              kernel: 'hopper',
              scale,
            });
            for (const x of values) expect(Number.isFinite(x)).toBe(true);
            if (density < 1) for (let i = 0; i < 64 * c.D; i++) expect(values[i]).toBe(0);
            const { error, limit } = flashAttentionRule(values, fp64, naive, round);
            expect(error).toBeLessThanOrEqual(limit);
            [qd, kd, vd].forEach((t) => t.dispose());
            md.dispose();
          },
        );
});

// Any CUDA device: a token grid of multiples of 8 is not refused as ragged for the Hopper kernel
// (test/cuda.test.ts checks that a ragged one is). On compute capability 9.0 this launches the
// kernel, so it lives here, with the other launches of the opt-in kernel, and not in the main suite.
(info.cuda ? test : test.skip)(
  'the hopper kernel does not refuse a grid of multiples of 8 as ragged (on cc 9.0 it launches)',
  () => {
    const q8 = cast(tensor(randn(128 * 64, 7), [1, 1, 128, 64]), 'bfloat16');
    let message = '';
    try {
      attentionSync(q8, q8, q8, { grid: [2, 8, 8], kernel: 'hopper', backend: 'cuda' });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).not.toMatch(/ragged/);
  },
);

// On a CUDA device that is not compute capability 9.0 the kernel must refuse with the reason.
const otherGpu = info.cuda && device?.computeCapability !== '9.0';
(otherGpu ? test : test.skip)("kernel 'hopper' on another GPU: an error naming compute capability 9.0", async () => {
  const c = { B: 1, H: 1, S: 128, D: 64 };
  const q = toDeviceSync(cast(tensor(randn(c.S * c.D, 1), [c.B, c.H, c.S, c.D]), 'bfloat16'));
  try {
    await expect(attention(q, q, q, { kernel: 'hopper' })).rejects.toThrow(
      /hopper attention kernel does not apply: .*(compute capability 9\.0|sm_90a)/,
    );
  } finally {
    q.dispose();
  }
});
