// The fast2 attention kernel (csrc/cuda/attention_fast2.cuh): what can be checked without a GPU --
// the host test of its warp-grid index math, softmax step and merge and copy pipeline
// (test/native/fast2_layout.cc), the ptxas report (no spills, no stack, the register budget of its
// CTAs per SM) and the instructions its PTX must contain, and that the native layer knows its
// name. Its results on a GPU are checked against the CPU in test/cuda.test.ts (and
// test/mask-rules.test.ts, bench/gpu-check.js).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { native } from '../lib/native';
import { hostTest } from './native-host';

const ROOT = path.resolve(__dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nabla-fast2-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function found(command: string): boolean {
  return spawnSync(command, ['--version']).status === 0;
}
const hasNvcc = found('nvcc');
if (!hasNvcc) console.warn('fast2 ptxas and PTX checks skipped: no nvcc on PATH');

function run(command: string, args: string[]) {
  const r = spawnSync(command, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

const NVCC_FLAGS = ['-std=c++17', '-O3', '--expt-relaxed-constexpr'];

hostTest(
  'fast2_layout',
  "fast2_layout.cc: swizzle, fragments, ldmatrix steps, the lanes' softmax step and merge, block spans, cp.async pipeline",
);

/** Registers, stack and spill bytes of each kernel in a ptxas -v report. */
function ptxasReport(out: string): { kernel: string; registers: number; stack: number; spills: number }[] {
  const kernels: { kernel: string; registers: number; stack: number; spills: number }[] = [];
  let current: { kernel: string; registers: number; stack: number; spills: number } | undefined;
  for (const line of out.split('\n')) {
    const name = /Function properties for (\S+)/.exec(line);
    if (name) {
      current = { kernel: name[1], registers: -1, stack: -1, spills: -1 };
      kernels.push(current);
    }
    const frame = /(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads/.exec(line);
    if (frame && current) {
      current.stack = Number(frame[1]);
      current.spills = Number(frame[2]) + Number(frame[3]);
    }
    const used = /Used (\d+) registers/.exec(line);
    if (used && current) current.registers = Number(used[1]);
  }
  return kernels;
}

describe('ptxas report of the fast2 instances (sm_90a)', () => {
  // 65536 registers / (128 threads x CTAs per SM): 2 CTAs at D128, 3 at D64
  for (const [instance, budget] of [
    ['bf16_d128', 255],
    ['fp16_d64', 168],
  ] as const)
    (hasNvcc ? test : test.skip)(
      `attention_fast2_${instance}: 3 kernels (2 or 3 stages; ragged with 2), <= ${budget} registers, no spills, no stack`,
      () => {
        const r = run('nvcc', [
          ...NVCC_FLAGS,
          '-arch=sm_90a',
          '-Xptxas=-v',
          '-c',
          `csrc/cuda/kernels/attention_fast2_${instance}.cu`,
          '-o',
          path.join(work, `${instance}.o`),
        ]);
        expect(r.status).toBe(0);
        const kernels = ptxasReport(r.out).filter((k) => k.kernel.includes('fast2AttentionKernel'));
        expect(kernels).toHaveLength(3);
        for (const k of kernels) {
          expect(k).toEqual({ kernel: k.kernel, registers: k.registers, stack: 0, spills: 0 });
          expect(k.registers).toBeGreaterThan(0);
          expect(k.registers).toBeLessThanOrEqual(budget);
        }
      },
    );

  test('the report parser reads spills and registers', () => {
    const report = [
      'ptxas info    : Function properties for _Z20fast2AttentionKernel',
      '    8 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads',
      'ptxas info    : Used 255 registers, used 1 barriers, 8 bytes cumulative stack size',
    ].join('\n');
    expect(ptxasReport(report)).toEqual([{ kernel: '_Z20fast2AttentionKernel', registers: 255, stack: 8, spills: 20 }]);
  });
});

(hasNvcc ? test : test.skip)(
  'PTX of fast2 (sm_80): ex2.approx.ftz, mma.sync, ldmatrix, cp.async, no local memory',
  () => {
    const ptx = path.join(work, 'fast2.ptx');
    const r = run('nvcc', [
      ...NVCC_FLAGS,
      '-arch=sm_80',
      '-ptx',
      'csrc/cuda/kernels/attention_fast2_bf16_d128.cu',
      '-o',
      ptx,
    ]);
    expect(r.status).toBe(0);
    const text = fs.readFileSync(ptx, 'utf8');
    expect(text).toMatch(/\.entry\s+\S*fast2AttentionKernel/);
    for (const instruction of [
      'ex2.approx.ftz.f32',
      'mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32',
      'ldmatrix.sync.aligned.m8n8.x4.shared.b16',
      'ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16',
      'cp.async.wait_group 1',
      'vote.sync.any.pred',
    ])
      expect(text).toContain(instruction);
    // the softmax uses the ftz form only (exp2f would add the non-ftz ex2.approx.f32)
    expect(text).not.toMatch(/ex2\.approx\.f32/);
    expect(text).not.toMatch(/ld\.local|st\.local/);
  },
);

describe("the native layer knows 'fast2'", () => {
  const S = 128,
    D = 16;
  const problem = () => ({
    q: new Float32Array(S * D).fill(0.25),
    k: new Float32Array(S * D).fill(0.5),
    v: new Float32Array(S * D).fill(1),
    out: new Float32Array(S * D),
    dtype: 0,
    batch: 1,
    heads: 1,
    seqQ: S,
    seqKv: S,
    headDim: D,
    valueDim: D,
    scale: 0.25,
    backend: 'cpu' as const,
    device: 0,
  });

  test("kernel 'fast2' is a CUDA option: the CPU backend runs its own kernel and ignores it", () => {
    const a = problem();
    expect(native.attention({ ...a, kernel: 'fast2' }, false)).toMatch(/^cpu-(avx2|scalar)$/);
    expect(Array.from(a.out.subarray(0, 4))).toEqual([1, 1, 1, 1]); // every v is 1
  });

  test('an unknown kernel name lists fast2 among the values', () => {
    let message = '';
    try {
      native.attention({ ...problem(), kernel: 'turbo' as never }, false);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toBe("Expected one of 'auto', 'fast', 'simple', 'hopper', 'fast2' for kernel but received 'turbo'");
  });
});
