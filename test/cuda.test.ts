// The CUDA backend against the CPU backend (the oracle). Skipped, with the reason printed, where no
// CUDA device can be used; NABLA_REQUIRE_CUDA=1 turns that skip into a failure (GPU machines).
import {
  BlockMask,
  DeviceTensor,
  MaskOptions,
  Tensor,
  attentionSync,
  blockPool,
  blockPoolSync,
  blockSparseAttention,
  blockSparseAttentionSync,
  cast,
  nablaAttention,
  nablaMask,
  nablaMaskSync,
  tensor,
  toDevice,
  toDeviceSync,
  toFloat32Array as asFloat,
} from '../lib';
import { attentionRan } from '../lib/attention';
import { blockLength, blockStart, tileLayout } from '../lib/layout';
import { blockPoolRan, nablaMaskRan } from '../lib/mask';
import { native } from '../lib/native';
import { MaskMethod } from '../lib/shapes';
import { compareMasks, nonZeroInEmptyRows, normalisedMse, poisonedAttentionSync, randomBlockMask } from '../lib/oracle';
import { randn } from './reference';
import { CPU, causalChecks, cudaSuite, expectSameBits, expectSameInts, qkCase } from './helpers';

const CUDA = { backend: 'cuda' } as const;

const describeCuda = cudaSuite('CUDA tests');

/**
 * The fast2 mask kernel against the fast one on host q and k: the same lists and the same map, bit
 * for bit (same pooled sums, same fp32 logits, same selection; mask_fast2.cuh), each reported by
 * name.
 */
function expectFast2LikeFast(q: Tensor, k: Tensor, options: MaskOptions) {
  const fast = nablaMaskRan(q, k, { ...options, returnMap: true, maskKernel: 'fast', ...CUDA }, false);
  const fast2 = nablaMaskRan(q, k, { ...options, returnMap: true, maskKernel: 'fast2', ...CUDA }, false);
  expect([fast.kernel, fast2.kernel]).toEqual(['cuda-fast', 'cuda-fast2']);
  expectSameMask(fast2.mask, fast.mask);
}

/** The same lists and, where both carry one, the same map bits. */
function expectSameMask(got: BlockMask, want: BlockMask) {
  expectSameInts(got.kvCounts, want.kvCounts, 'kvCounts');
  expectSameInts(got.kvIndices, want.kvIndices, 'kvIndices');
  expect(got.map === undefined).toBe(want.map === undefined);
  if (got.map && want.map) expectSameBits(got.map, want.map);
}

/** fast2MaskSharedBytes (mask_fast2.cuh): 16 rows of logits, 16 qa rows padded to 16 columns, 256 x 20 staged ka. */
function fast2SharedBytes(nk: number, D: number): number {
  return 4 * (16 * nk + 16 * Math.ceil(D / 16) * 16 + 256 * 20);
}

/** The message of a fast2 mask call's refusal, or '' when it runs. */
function fast2Refusal(q: Tensor, k: Tensor, options: MaskOptions = {}): string {
  try {
    nablaMaskSync(q, k, { ...options, maskKernel: 'fast2', ...CUDA });
    return '';
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * Whether fast2 refused rows of `nk` key blocks for shared memory alone (devices of 99 KiB per block
 * cannot hold 16 rows of the longest): then the refusal names that need exactly, above the device's.
 */
function fast2RefusedForSharedMemory(q: Tensor, k: Tensor, nk: number, options: MaskOptions = {}): boolean {
  const refusal = fast2Refusal(q, k, options);
  if (refusal === '') return false;
  const need = fast2SharedBytes(nk, q.dims[3]);
  const has =
    /it needs (\d+) bytes of shared memory per block \(this device has (\d+)\) for rows of (\d+) key blocks; use/.exec(
      refusal,
    );
  expect(has?.slice(1).map(Number)).toEqual([need, expect.any(Number), nk]);
  expect(Number(has?.[2])).toBeLessThan(need);
  return true;
}

/** Blocks where the CPU and CUDA masks differ must lie at the cut (within fp32 rounding): none off it. */
function expectMasksMatch(gpu: BlockMask, cpu: BlockMask, threshold: number, method: MaskMethod = 'cdf') {
  expect(compareMasks(gpu.toDense(), cpu, method, threshold).offCut).toEqual([]);
}

describeCuda('CUDA blockPool', () => {
  test.each(['float32', 'float16', 'bfloat16'] as const)('%s equals the CPU', async (type) => {
    const x = cast(tensor(randn(2 * 3 * 256 * 40, 1), [2, 3, 256, 40]), type);
    const gpu = await blockPool(x, CUDA);
    const cpu = blockPoolSync(x, CPU);
    for (let i = 0; i < cpu.data.length; i++) expect(Math.abs(gpu.data[i] - cpu.data[i])).toBeLessThan(1e-5);
  });

  test.each(['float32', 'float16', 'bfloat16'] as const)(
    '%s: the fast2 kernel gives the simple kernel bits; head dims not a multiple of 8 run the simple one',
    (type) => {
      for (const D of [8, 40, 64, 128, 256, 44, 12]) {
        // values over many binades: a different summation order would change the bits
        const values = randn(2 * 3 * 256 * D, D).map((v, i) => v * 2 ** ((i % 23) - 11));
        const x = cast(tensor(values, [2, 3, 256, D]), type);
        const simple = blockPoolRan(x, { poolKernel: 'simple', ...CUDA });
        const fast2 = blockPoolRan(x, { poolKernel: 'fast2', ...CUDA });
        const auto = blockPoolRan(x, CUDA); // auto: fast2 where it applies
        expect([simple.kernel, fast2.kernel, auto.kernel]).toEqual([
          'cuda',
          ...Array(2).fill(D % 8 === 0 ? 'cuda-fast2' : 'cuda'),
        ]);
        expectSameBits(auto.pooled.data as Float32Array, simple.pooled.data as Float32Array);
        expectSameBits(fast2.pooled.data as Float32Array, simple.pooled.data as Float32Array);
        const cpu = blockPoolSync(x, CPU).data;
        const scale = Math.max(1, ...Array.from(cpu, Math.abs));
        for (let i = 0; i < cpu.length; i++) expect(Math.abs(fast2.pooled.data[i] - cpu[i])).toBeLessThan(1e-5 * scale);
      }
    },
  );

  test('NABLA_POOL_KERNEL=fast2 picks the vectorised kernel; device tensors in and out', () => {
    const x = cast(tensor(randn(2 * 512 * 64, 3), [1, 2, 512, 64]), 'bfloat16');
    const saved = process.env.NABLA_POOL_KERNEL;
    process.env.NABLA_POOL_KERNEL = 'fast2';
    try {
      const xd = toDeviceSync(x);
      const ran = blockPoolRan(xd, CUDA);
      expect(ran.kernel).toBe('cuda-fast2');
      expect(ran.pooled).toBeInstanceOf(DeviceTensor);
      const simple = blockPoolSync(x, { poolKernel: 'simple', ...CUDA }).data as Float32Array;
      expectSameBits((ran.pooled as DeviceTensor).toHostSync().data as Float32Array, simple);
      (ran.pooled as DeviceTensor).dispose();
      xd.dispose();
    } finally {
      if (saved === undefined) delete process.env.NABLA_POOL_KERNEL;
      else process.env.NABLA_POOL_KERNEL = saved;
    }
  });
});

describeCuda('CUDA nablaMask', () => {
  const shapes: { grid: [number, number, number]; H: number; D: number }[] = [
    { grid: [4, 16, 16], H: 2, D: 64 },
    { grid: [5, 24, 32], H: 3, D: 128 },
    { grid: [2, 8, 8], H: 1, D: 16 },
  ];
  for (const s of shapes)
    for (const threshold of [0.2, 0.7, 0.9, 1]) {
      test(`grid ${s.grid} H${s.H} D${s.D} thr ${threshold}`, async () => {
        const { q, k } = qkCase(1, s.H, s.grid, s.D, threshold * 100 + s.D);
        const gpu = await nablaMask(q, k, { threshold, returnMap: true, ...CUDA });
        const cpu = nablaMaskSync(q, k, { threshold, returnMap: true, ...CPU });
        expectMasksMatch(gpu, cpu, threshold);
        // the block map P (host inputs may ask for it on CUDA too): probabilities within fp32 rounding
        const [gpuMap, cpuMap] = [gpu.map as Float32Array, cpu.map as Float32Array];
        expect(gpuMap.length).toBe(cpuMap.length);
        let worst = 0;
        for (let i = 0; i < cpuMap.length; i++) worst = Math.max(worst, Math.abs(gpuMap[i] - cpuMap[i]));
        expect(worst).toBeLessThan(1e-5);
        expectFast2LikeFast(q, k, { threshold });
      });
    }

  test('STA, documents, topk, bf16', async () => {
    const { q, k, grid } = qkCase(1, 2, [6, 16, 16], 64, 3);
    for (const type of ['bfloat16', 'float16'] as const) {
      const qh = cast(q, type),
        kh = cast(k, type);
      for (const opts of [
        { threshold: 0.5, grid, sta: [3, 1, 1] as [number, number, number] },
        { threshold: 0.6, grid, frames: [0, 2, 6] },
        { threshold: 0.4, grid, frames: [0, 1, 3, 6], sta: [5, 3, 3] as [number, number, number] },
      ]) {
        const gpu = await nablaMask(qh, kh, { ...opts, ...CUDA });
        expectMasksMatch(gpu, nablaMaskSync(qh, kh, { ...opts, returnMap: true, ...CPU }), opts.threshold);
        expectFast2LikeFast(qh, kh, opts);
      }
      for (const threshold of [0.1, 0.5]) {
        const cpu = nablaMaskSync(qh, kh, { threshold, method: 'topk', ...CPU });
        for (const maskKernel of ['auto', 'fast2'] as const) {
          const gpu = await nablaMask(qh, kh, { threshold, method: 'topk', maskKernel, ...CUDA });
          expect(Array.from(gpu.kvCounts)).toEqual(Array.from(cpu.kvCounts));
          expect(Array.from(gpu.kvIndices)).toEqual(Array.from(cpu.kvIndices));
        }
        expectFast2LikeFast(qh, kh, { threshold, method: 'topk' });
      }
    }
  });

  test('exact ties are broken like the CPU: equal probabilities keep the lower block index', async () => {
    // constant q and k: every P is exactly 1/8, every running sum exact; thr 0.5 keeps blocks 0..4
    const q = tensor(new Float32Array(2 * 512 * 16).fill(0.25), [1, 2, 512, 16]);
    for (const method of ['cdf', 'topk'] as const)
      for (const maskKernel of ['auto', 'fast2'] as const) {
        const gpu = await nablaMask(q, q, { threshold: 0.5, method, maskKernel, ...CUDA });
        const cpu = nablaMaskSync(q, q, { threshold: 0.5, method, ...CPU });
        expect(Array.from(gpu.kvCounts)).toEqual(Array.from(cpu.kvCounts));
        expect(Array.from(gpu.kvIndices)).toEqual(Array.from(cpu.kvIndices));
      }
    expect(Array.from(nablaMaskSync(q, q, { threshold: 0.5, ...CPU }).kvIndices.subarray(0, 8))).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7,
    ]);
    expect(nablaMaskSync(q, q, { threshold: 0.5, ...CPU }).kvCounts[0]).toBe(5);
  });

  test('rows of 4096 blocks', async () => {
    const S = 4096 * 64,
      D = 16;
    const q = tensor(randn(S * D, 8, 0.5), [1, 1, S, D]);
    const gpu = await nablaMask(q, q, { threshold: 0.7, ...CUDA });
    const cpu = nablaMaskSync(q, q, { threshold: 0.7, returnMap: true, ...CPU });
    expectMasksMatch(gpu, cpu, 0.7);
    // more key blocks than fast2 holds in registers: an error naming that condition alone, never a
    // silent fallback
    expect(fast2Refusal(q, q, { threshold: 0.7 })).toMatch(
      /fast2 mask kernel does not apply: it needs at most 1280 key blocks \(got 4096\); use the fast or simple kernel/,
    );
  });

  test('concurrent async fast2 masks whose rows need different shared memory: each equals its fast mask', async () => {
    // D 16: rows of 1100 and 500 key blocks need 91,904 and 53,504 bytes per block, both above the
    // 48 KiB default, so each call raises fast2's limit; were it set per call, one op could lower
    // it between the other's setting and its launch (the 1100-block launch would then fail)
    const D = 16;
    const cases = [1100, 500].map((blocks) => {
      const S = blocks * 64;
      const q = tensor(randn(S * D, blocks, 0.5), [1, 1, S, D]);
      const k = tensor(randn(S * D, blocks + 3, 0.5), [1, 1, S, D]);
      const options: MaskOptions = { threshold: 0.6, returnMap: true, ...CUDA };
      return { q, k, options, fast: nablaMaskRan(q, k, { ...options, maskKernel: 'fast' }, false) };
    });
    expect(cases.map((c) => c.fast.kernel)).toEqual(['cuda-fast', 'cuda-fast']);
    expect(cases.map((c) => c.fast.mask.dims[3])).toEqual([1100, 500]);
    for (let round = 0; round < 4; round++) {
      const order = round % 2 === 0 ? cases : [...cases].reverse();
      const ran = await Promise.all(
        order.map((c) => nablaMaskRan(c.q, c.k, { ...c.options, maskKernel: 'fast2' }, true)),
      );
      ran.forEach((r, n) => {
        expect(r.kernel).toBe('cuda-fast2');
        expectSameMask(r.mask, order[n].fast.mask);
      });
    }
  });

  test('fast2 at its limits: rows of 1280 key blocks (every register slot), 1281 refused; 17 and 33 rows', () => {
    const D = 16;
    for (const blocks of [1280, 17, 33, 1]) {
      const S = blocks * 64;
      const q = tensor(randn(S * D, blocks, 0.5), [1, 1, S, D]);
      const k = tensor(randn(S * D, blocks + 1, 0.5), [1, 1, S, D]);
      // 1280 rows of logits need 101 KiB of shared memory per block: more than sm_86/89/120 give
      // (99 KiB); there the refusal must say so
      if (blocks === 1280 && fast2RefusedForSharedMemory(q, k, blocks)) continue;
      for (const threshold of [0.3, 0.9]) {
        expectFast2LikeFast(q, k, { threshold });
        expectFast2LikeFast(q, k, { threshold, method: 'topk' });
      }
    }
    const S = 1281 * 64;
    const q = tensor(randn(S * D, 2, 0.5), [1, 1, S, D]);
    expect(fast2Refusal(q, q)).toMatch(/it needs at most 1280 key blocks \(got 1281\); use the fast or simple kernel/);
    // auto: fast2 where it applies, the fast kernel past its 1280 blocks
    expect(nablaMaskRan(q, q, CUDA, false).kernel).toBe('cuda-fast');
    const q17 = tensor(randn(17 * 64 * D, 3, 0.5), [1, 1, 17 * 64, D]);
    expect(nablaMaskRan(q17, q17, CUDA, false).kernel).toBe('cuda-fast2');
  });

  test('fast2 near its limit with causal, documents and STA: register slots 32..39 hold invisible blocks', () => {
    // Tile grids of 1280 (every slot full), 1250 (slot 39 holds blocks 1248 and 1249 only) and
    // 1240 key blocks (fits the 99 KiB of sm_86/89/120). Causal rows of early frames see none of
    // the blocks >= 1024 (slots 32..39): the high bits of the 64-bit visibility mask are 0 there,
    // 1 for late frames; documents also hide the low slots from rows of the last document.
    const D = 16;
    const cases: { grid: Grid; frames: number[]; sta: Grid; seed: number }[] = [
      { grid: [20, 64, 64], frames: [0, 3, 11, 20], sta: [3, 3, 3], seed: 31 },
      { grid: [10, 40, 200], frames: [0, 4, 10], sta: [1, 3, 5], seed: 32 },
      { grid: [31, 40, 64], frames: [0, 2, 17, 31], sta: [5, 1, 3], seed: 33 },
    ];
    const ran: number[] = [];
    for (const c of cases) {
      const { q, k } = qkCase(1, 1, c.grid, D, c.seed);
      const nk = tileLayout(c.grid).blocks;
      const base = { grid: c.grid, causal: true, frames: c.frames, sta: c.sta };
      if (fast2RefusedForSharedMemory(q, k, nk, { ...base, threshold: 0.5 })) continue;
      ran.push(nk);
      expectFast2LikeFast(q, k, { ...base, threshold: 0.5 });
      expectFast2LikeFast(q, k, { ...base, threshold: 0.3, method: 'topk' });
    }
    expect(ran).toEqual(expect.arrayContaining([1240])); // every device holds rows of 1240 blocks
  });

  test("fast2 with head dims a multiple of 4 but not 8 (per-block pooling): the fast kernel's bits", async () => {
    for (const D of [12, 20, 36])
      for (const type of ['float32', 'bfloat16', 'float16'] as const) {
        const c = qkCase(1, 2, [4, 16, 24], D, D);
        const q = cast(c.q, type),
          k = cast(c.k, type);
        expectFast2LikeFast(q, k, { threshold: 0.6 });
        expectFast2LikeFast(q, k, { threshold: 0.4, grid: c.grid, causal: true, frames: [0, 1, 4], sta: [1, 3, 3] });
        expectFast2LikeFast(q, k, { threshold: 0.5, method: 'topk', grid: c.grid, sta: [3, 1, 1] });
        const gpu = await nablaMask(q, k, { threshold: 0.6, maskKernel: 'fast2', ...CUDA });
        expectMasksMatch(gpu, nablaMaskSync(q, k, { threshold: 0.6, returnMap: true, ...CPU }), 0.6);
      }
  });

  test('fast2: head dims not a multiple of 4 are refused by name; cross attention (nq != nk)', () => {
    const q = tensor(randn(2 * 512 * 18, 4), [1, 2, 512, 18]);
    // the failing condition alone: 8 key blocks and their shared memory fit
    expect(fast2Refusal(q, q)).toMatch(
      /fast2 mask kernel does not apply: it needs a head dim that is a multiple of 4 \(got 18\); use the fast or simple kernel/,
    );
    const q2 = tensor(randn(2 * 320 * 24, 5), [1, 2, 320, 24]);
    const k2 = tensor(randn(2 * 1216 * 24, 6), [1, 2, 1216, 24]);
    expectFast2LikeFast(q2, k2, { threshold: 0.6 });
    expectFast2LikeFast(q2, k2, { threshold: 0.6, method: 'topk' });
  });
});

describeCuda('CUDA attention', () => {
  const kernels = ['fast', 'fast2', 'simple'] as const;
  const shapes = [
    { B: 1, H: 2, Sq: 256, Skv: 256, D: 64, Dv: 64 },
    { B: 2, H: 1, Sq: 192, Skv: 320, D: 128, Dv: 128 },
    { B: 1, H: 1, Sq: 128, Skv: 64 * 80, D: 128, Dv: 128 }, // rows of more than 32 kept blocks
  ];
  for (const kernel of kernels)
    for (const type of ['bfloat16', 'float16'] as const)
      for (const c of shapes) {
        test(`${kernel} ${type} D${c.D} Sq${c.Sq} Skv${c.Skv}: equals the CPU, empty rows zero, nothing unwritten`, async () => {
          const q = cast(tensor(randn(c.B * c.H * c.Sq * c.D, 1), [c.B, c.H, c.Sq, c.D]), type);
          const k = cast(tensor(randn(c.B * c.H * c.Skv * c.D, 2), [c.B, c.H, c.Skv, c.D]), type);
          const v = cast(tensor(randn(c.B * c.H * c.Skv * c.Dv, 3), [c.B, c.H, c.Skv, c.Dv]), type);
          const { dense, mask, emptyRows, maxKeptPerRow } = randomBlockMask([c.B, c.H, c.Sq / 64, c.Skv / 64], c.D);
          expect(emptyRows).toBeGreaterThan(0);
          if (c.Skv > 64 * 32) expect(maxKeptPerRow).toBeGreaterThan(32);
          const cpu = blockSparseAttentionSync(q, k, v, mask, CPU);
          const qd = toDeviceSync(q),
            kd = toDeviceSync(k),
            vd = toDeviceSync(v),
            md = mask.toDevice();
          const gpuValues = poisonedAttentionSync(qd, kd, vd, md, { backend: 'cuda', kernel });
          for (const x of gpuValues) expect(Number.isFinite(x)).toBe(true);
          expect(nonZeroInEmptyRows(gpuValues, dense, mask.dims, c.Dv)).toBe(0);
          expect(normalisedMse(gpuValues, asFloat(cpu))).toBeLessThan(5e-4);
          [qd, kd, vd].forEach((t) => t.dispose());
          md.dispose();
        });
      }

  test.each(['float32', 'float16'] as const)('simple kernel, %s, odd head dims, Dv != D', async (type) => {
    const c = { B: 1, H: 2, Sq: 128, Skv: 192, D: 40, Dv: 24 };
    const q = cast(tensor(randn(c.B * c.H * c.Sq * c.D, 4), [c.B, c.H, c.Sq, c.D]), type);
    const k = cast(tensor(randn(c.B * c.H * c.Skv * c.D, 5), [c.B, c.H, c.Skv, c.D]), type);
    const v = cast(tensor(randn(c.B * c.H * c.Skv * c.Dv, 6), [c.B, c.H, c.Skv, c.Dv]), type);
    const gpu = attentionSync(q, k, v, { kernel: 'simple', ...CUDA });
    expect(normalisedMse(asFloat(gpu), asFloat(attentionSync(q, k, v, CPU)))).toBeLessThan(
      type === 'float32' ? 1e-10 : 5e-4,
    );
  });

  test("'fast' and 'fast2' refuse what they cannot run; 'auto' falls back", () => {
    const q = tensor(randn(128 * 40, 7), [1, 1, 128, 40]);
    expect(() => attentionSync(q, q, q, { kernel: 'fast', ...CUDA })).toThrow(/fast|head dim|float/i);
    expect(() => attentionSync(q, q, q, { kernel: 'fast2', ...CUDA })).toThrow(
      /the fast2 attention kernel does not apply: it takes float16 or bfloat16/,
    );
    const q16 = cast(q, 'float16');
    expect(() => attentionSync(q16, q16, q16, { kernel: 'fast2', ...CUDA })).toThrow(/head dims 64 and 128, not 40/);
    expect(normalisedMse(attentionSync(q, q, q, CUDA).data, attentionSync(q, q, q, CPU).data)).toBeLessThan(1e-10);
  });

  test("'fast2' runs when asked for, by option or NABLA_ATTENTION_KERNEL, and equals 'fast'; 'auto' runs 'fast'", () => {
    const q = cast(tensor(randn(2 * 192 * 128, 8), [1, 2, 192, 128]), 'bfloat16');
    const k = cast(tensor(randn(2 * 320 * 128, 9), [1, 2, 320, 128]), 'bfloat16');
    const v = cast(tensor(randn(2 * 320 * 128, 10), [1, 2, 320, 128]), 'bfloat16');
    const fast2 = attentionRan(q, k, v, undefined, { ...CUDA, kernel: 'fast2' }, false);
    expect(fast2.kernel).toBe('cuda-fast2');
    const fast = attentionRan(q, k, v, undefined, { ...CUDA, kernel: 'fast' }, false);
    expect(fast.kernel).toBe('cuda-fast');
    // both round P and the output to bf16 (each about 1e-6 from fp32); a wrong merge is off by > 1e-2
    expect(normalisedMse(asFloat(fast2.output), asFloat(fast.output))).toBeLessThan(1e-4);
    const before = process.env.NABLA_ATTENTION_KERNEL;
    try {
      process.env.NABLA_ATTENTION_KERNEL = 'fast2';
      expect(attentionRan(q, k, v, undefined, CUDA, false).kernel).toBe('cuda-fast2');
      delete process.env.NABLA_ATTENTION_KERNEL;
      expect(attentionRan(q, k, v, undefined, CUDA, false).kernel).toBe('cuda-fast');
    } finally {
      if (before === undefined) delete process.env.NABLA_ATTENTION_KERNEL;
      else process.env.NABLA_ATTENTION_KERNEL = before;
    }
  });

  test('device tensors in, device tensors out; NABLA step without host copies', async () => {
    const { q, k, grid } = qkCase(1, 2, [4, 16, 16], 64, 5);
    const qh = cast(q, 'bfloat16'),
      kh = cast(k, 'bfloat16');
    const vh = cast(tensor(randn(q.data.length, 9), q.dims), 'bfloat16');
    const [qd, kd, vd] = await Promise.all([toDevice(qh), toDevice(kh), toDevice(vh)]);
    const { output, mask } = await nablaAttention(qd, kd, vd, { threshold: 0.7, grid, sta: [3, 1, 1] });
    expect(output).toBeInstanceOf(DeviceTensor);
    expect(mask.device).toBe(0);
    // reading the lists on the host keeps the device lists as the operands (no upload per call)
    expect(mask.density()).toBeGreaterThan(0);
    expect(mask.operands().kvCounts).not.toBeInstanceOf(Int32Array);
    const host = await output.toHost();
    const cpu = blockSparseAttentionSync(
      qh,
      kh,
      vh,
      BlockMask.fromKvBlocks(mask.kvCounts, mask.kvIndices, mask.dims),
      CPU,
    );
    expect(normalisedMse(asFloat(host), asFloat(cpu))).toBeLessThan(5e-4);
    const pooled = await blockPool(qd);
    expect(pooled).toBeInstanceOf(DeviceTensor);
    // disposing while an op is pending is refused, then allowed
    const pending = blockSparseAttention(qd, kd, vd, mask);
    expect(() => qd.dispose()).toThrow(/pending/);
    await pending;
    for (const t of [qd, kd, vd, output, pooled]) t.dispose();
    expect(qd.disposed).toBe(true);
    expect(() => blockPool(qd)).toThrow(/live device tensor/);
    mask.dispose();
  });

  test('out of memory is a catchable error and the device stays usable', () => {
    let caught: (Error & { code?: string }) | undefined;
    try {
      new native.DeviceBuffer(0, 2 ** 50);
    } catch (e) {
      caught = e as Error & { code?: string };
    }
    expect(caught?.code).toBe('cudaErrorMemoryAllocation');
    const x = tensor(randn(64 * 16, 1), [1, 1, 64, 16]);
    const gpu = blockPoolSync(x, CUDA).data,
      cpu = blockPoolSync(x, CPU).data;
    for (let i = 0; i < cpu.length; i++) expect(Math.abs(gpu[i] - cpu[i])).toBeLessThan(1e-6);
  });
});

// Ragged token grids (edge tiles smaller than 8x8, blocks of 1..64 tokens) and frame-causal masks.
// Grids: blocks of 64, 8, 8 and 1 tokens (1x9x9); one tile smaller than a tile (1x3x5); 720p-like
// edges (2x13x20, 3x5x17, 2x45x24: a 5-row band); and a multiple of 8 through the same options.
type Grid = [number, number, number];
const RAGGED: Grid[] = [
  [1, 9, 9],
  [1, 3, 5],
  [2, 13, 20],
  [3, 5, 17],
  [2, 45, 24],
];

/** Output elements of the query blocks that keep nothing which are not exactly 0 (tokens of block i: blockStart .. + blockLength). */
function nonZeroInEmptyBlocks(out: ArrayLike<number>, dense: Uint8Array, grid: Grid, BH: number, Dv: number): number {
  const l = tileLayout(grid),
    S = grid[0] * grid[1] * grid[2];
  let count = 0;
  for (let bh = 0; bh < BH; bh++)
    for (let i = 0; i < l.blocks; i++) {
      if (dense.subarray((bh * l.blocks + i) * l.blocks, (bh * l.blocks + i + 1) * l.blocks).includes(1)) continue;
      const first = (bh * S + blockStart(l, i)) * Dv;
      for (let e = first; e < first + blockLength(l, i) * Dv; e++) if (out[e] !== 0) count++;
    }
  return count;
}

describeCuda('CUDA ragged grids', () => {
  test.each(['float32', 'float16', 'bfloat16'] as const)(
    'blockPool %s: each block averages its own tokens, like the CPU',
    async (type) => {
      for (const grid of RAGGED) {
        const S = grid[0] * grid[1] * grid[2];
        const x = cast(tensor(randn(2 * 3 * S * 40, 1), [2, 3, S, 40]), type);
        const gpu = await blockPool(x, { grid, ...CUDA });
        const cpu = blockPoolSync(x, { grid, ...CPU });
        expect(gpu.dims).toEqual([2, 3, tileLayout(grid).blocks, 40]);
        for (let i = 0; i < cpu.data.length; i++) expect(Math.abs(gpu.data[i] - cpu.data[i])).toBeLessThan(1e-5);
        // the vectorised kernel on blocks of 1..64 tokens: the same bits (head dims of 1, 5, 8 and 32 pieces)
        for (const D of [8, 40, 64, 256]) {
          const xd = cast(tensor(randn(2 * S * D, D + grid[2]), [1, 2, S, D]), type);
          const fast2 = blockPoolRan(xd, { grid, poolKernel: 'fast2', ...CUDA });
          expect(fast2.kernel).toBe('cuda-fast2');
          expectSameBits(
            fast2.pooled.data as Float32Array,
            blockPoolSync(xd, { grid, poolKernel: 'simple', ...CUDA }).data as Float32Array,
          );
        }
      }
      // a 1-token block (1x9x9, block 3 = token 80) is that token
      const x = tensor(randn(81 * 8, 2), [1, 1, 81, 8]);
      const pooled = blockPoolSync(x, { grid: [1, 9, 9], ...CUDA });
      for (let d = 0; d < 8; d++) expect(pooled.data[3 * 8 + d]).toBeCloseTo(x.data[80 * 8 + d], 6);
    },
  );

  for (const maskKernel of ['fast', 'simple', 'fast2'] as const)
    test(`nablaMask (${maskKernel} kernel): cdf, topk, STA and documents equal the CPU`, async () => {
      for (const grid of RAGGED) {
        const { q, k } = qkCase(1, 2, grid, 64, grid[1] + grid[2]);
        for (const threshold of [0.3, 0.8]) {
          const gpu = await nablaMask(q, k, { grid, threshold, maskKernel, ...CUDA });
          expect(gpu.dims).toEqual([1, 2, tileLayout(grid).blocks, tileLayout(grid).blocks]);
          expectMasksMatch(gpu, nablaMaskSync(q, k, { grid, threshold, returnMap: true, ...CPU }), threshold);
          const top = await nablaMask(q, k, { grid, threshold, method: 'topk', maskKernel, ...CUDA });
          const cpuTop = nablaMaskSync(q, k, { grid, threshold, method: 'topk', ...CPU });
          expect(Array.from(top.kvCounts)).toEqual(Array.from(cpuTop.kvCounts));
          expect(Array.from(top.kvIndices)).toEqual(Array.from(cpuTop.kvIndices));
          if (maskKernel === 'fast2') {
            expectFast2LikeFast(q, k, { grid, threshold });
            expectFast2LikeFast(q, k, { grid, threshold, method: 'topk' });
          }
        }
      }
      const grid: Grid = [4, 13, 20];
      const { q, k } = qkCase(1, 2, grid, 32, 9);
      const opts = { grid, threshold: 0.4, sta: [1, 3, 1] as Grid, frames: [0, 1, 4] };
      expectMasksMatch(
        await nablaMask(q, k, { ...opts, maskKernel, ...CUDA }),
        nablaMaskSync(q, k, { ...opts, returnMap: true, ...CPU }),
        0.4,
      );
      if (maskKernel === 'fast2') expectFast2LikeFast(q, k, opts);
    });

  for (const maskKernel of ['fast', 'simple', 'fast2'] as const)
    test(`frame-causal nablaMask (${maskKernel} kernel) equals the CPU and keeps no future frame`, async () => {
      const grid: Grid = [4, 11, 16];
      const l = tileLayout(grid),
        plane = l.tilesH * l.tilesW;
      const { frameOf, futureKept, expectCausalMap } = causalChecks(grid);
      const { q, k } = qkCase(1, 2, grid, 64, 21);
      const variants: { method?: 'cdf' | 'topk'; sta?: Grid; frames?: number[] }[] = [
        {},
        { method: 'topk' },
        { sta: [3, 3, 3] },
        { frames: [0, 2, 4] },
        { method: 'topk', frames: [0, 1, 4], sta: [5, 1, 1] },
      ];
      for (const v of variants) {
        const threshold = 0.5;
        const gpu = await nablaMask(q, k, {
          grid,
          threshold,
          causal: true,
          returnMap: true,
          maskKernel,
          ...v,
          ...CUDA,
        });
        const cpu = nablaMaskSync(q, k, { grid, threshold, causal: true, returnMap: true, ...v, ...CPU });
        expect(futureKept(gpu)).toBe(0);
        // not vacuous: without causal the same options keep future frames
        expect(futureKept(nablaMaskSync(q, k, { grid, threshold, ...v, ...CPU }))).toBeGreaterThan(0);
        if (v.method === 'topk') {
          expect(Array.from(gpu.kvCounts)).toEqual(Array.from(cpu.kvCounts));
          expect(Array.from(gpu.kvIndices)).toEqual(Array.from(cpu.kvIndices));
        } else {
          expectMasksMatch(gpu, cpu, threshold);
        }
        // future frames are out of the pooled softmax: P = 0 there, each row sums to 1 over the rest
        const map = gpu.map as Float32Array;
        expectCausalMap(map);
        if (maskKernel === 'fast2') expectFast2LikeFast(q, k, { grid, threshold, causal: true, ...v });
      }
      // topk keeps max(1, floor(thr * visible blocks)) per row
      const top = await nablaMask(q, k, { grid, threshold: 0.5, method: 'topk', causal: true, maskKernel, ...CUDA });
      for (let i = 0; i < l.blocks; i++)
        expect(top.kvCounts[i]).toBe(Math.max(1, Math.floor(0.5 * (frameOf(i) + 1) * plane)));
    });

  const attentionCases: { grid: Grid; D: number }[] = [
    { grid: [1, 9, 9], D: 64 },
    { grid: [1, 3, 5], D: 64 },
    { grid: [2, 13, 20], D: 128 },
    { grid: [3, 5, 17], D: 64 },
    { grid: [2, 45, 24], D: 64 },
    { grid: [2, 16, 24], D: 64 },
  ];
  for (const kernel of ['fast', 'fast2', 'simple'] as const)
    for (const type of ['bfloat16', 'float16'] as const)
      for (const c of attentionCases)
        test(`${kernel} ${type} D${c.D} grid ${c.grid}: equals the CPU, empty blocks zero, every real token written`, () => {
          const S = c.grid[0] * c.grid[1] * c.grid[2],
            H = 2,
            nb = tileLayout(c.grid).blocks;
          const q = cast(tensor(randn(H * S * c.D, 1), [1, H, S, c.D]), type);
          const k = cast(tensor(randn(H * S * c.D, 2), [1, H, S, c.D]), type);
          const v = cast(tensor(randn(H * S * c.D, 3), [1, H, S, c.D]), type);
          // about half the blocks kept, one row empty (randomBlockMask's rule), the mask carrying the grid
          const { dense, emptyRows } = randomBlockMask([1, H, nb, nb], c.D + nb);
          expect(emptyRows).toBeGreaterThan(0);
          const mask = BlockMask.fromDense(dense, [1, H, nb, nb], c.grid);
          const cpu = asFloat(blockSparseAttentionSync(q, k, v, mask, CPU));
          // the library's checked call into a NaN-poisoned output: unwritten elements stay non-finite
          const gpu = poisonedAttentionSync(q, k, v, mask, { backend: 'cuda', kernel });
          for (const x of gpu) expect(Number.isFinite(x)).toBe(true);
          expect(nonZeroInEmptyBlocks(gpu, dense, c.grid, H, c.D)).toBe(0);
          expect(normalisedMse(gpu, cpu)).toBeLessThan(5e-4);
          // dense attention over the grid through the public op
          const denseGpu = attentionSync(q, k, v, { grid: c.grid, kernel, ...CUDA });
          expect(
            normalisedMse(asFloat(denseGpu), asFloat(attentionSync(q, k, v, { grid: c.grid, ...CPU }))),
          ).toBeLessThan(5e-4);
        });

  test.each(['float32', 'float16'] as const)('simple kernel, %s, odd head dims, Dv != D, ragged grid', (type) => {
    for (const grid of [
      [1, 9, 9],
      [2, 13, 20],
    ] as Grid[]) {
      const S = grid[0] * grid[1] * grid[2],
        D = 40,
        Dv = 24;
      const q = cast(tensor(randn(2 * S * D, 4), [1, 2, S, D]), type);
      const k = cast(tensor(randn(2 * S * D, 5), [1, 2, S, D]), type);
      const v = cast(tensor(randn(2 * S * Dv, 6), [1, 2, S, Dv]), type);
      const gpu = attentionSync(q, k, v, { grid, kernel: 'simple', ...CUDA });
      const cpu = attentionSync(q, k, v, { grid, ...CPU });
      expect(normalisedMse(asFloat(gpu), asFloat(cpu))).toBeLessThan(type === 'float32' ? 1e-10 : 5e-4);
    }
  });

  test('NABLA step on device tensors: ragged grid, causal, STA', async () => {
    const grid: Grid = [3, 13, 20];
    const { q, k } = qkCase(1, 2, grid, 64, 5);
    const qh = cast(q, 'bfloat16'),
      kh = cast(k, 'bfloat16');
    const vh = cast(tensor(randn(q.data.length, 9), q.dims), 'bfloat16');
    const [qd, kd, vd] = await Promise.all([toDevice(qh), toDevice(kh), toDevice(vh)]);
    const { output, mask } = await nablaAttention(qd, kd, vd, { threshold: 0.6, grid, causal: true, sta: [1, 3, 3] });
    expect(mask.grid).toEqual(grid);
    const cpuMask = nablaMaskSync(qh, kh, {
      threshold: 0.6,
      grid,
      causal: true,
      sta: [1, 3, 3],
      returnMap: true,
      ...CPU,
    });
    expectMasksMatch(mask, cpuMask, 0.6);
    const host = await output.toHost();
    const cpu = blockSparseAttentionSync(qh, kh, vh, BlockMask.fromDense(mask.toDense(), mask.dims, grid), CPU);
    expect(normalisedMse(asFloat(host), asFloat(cpu))).toBeLessThan(5e-4);
    for (const t of [qd, kd, vd, output]) t.dispose();
    mask.dispose();
  });

  // the launch on a grid of multiples of 8 is in test/hopper.test.ts: on a compute capability 9.0
  // device it runs the Hopper kernel, and a hang there must not take this suite with it
  test('the hopper kernel refuses a ragged grid by name, before any launch', () => {
    const grid: Grid = [1, 9, 9];
    const q = cast(tensor(randn(81 * 64, 7), [1, 1, 81, 64]), 'bfloat16');
    expect(() => attentionSync(q, q, q, { grid, kernel: 'hopper', ...CUDA })).toThrow(/ragged token grid 1x9x9/);
  });
});
