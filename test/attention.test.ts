// Attention on the CPU against the float64 reference (test/reference.ts).
import * as fs from 'fs';
import {
  AttentionOptions,
  BlockMask,
  attention,
  attentionSync,
  blockSparseAttention,
  blockSparseAttentionSync,
  fromFloat32,
  nablaAttention,
  nablaAttentionSync,
  nablaMaskSync,
  tensor,
  toFloat32,
  Tensor,
} from '../lib';
import { attentionRan, nablaAttentionRan } from '../lib/attention';
import * as backend from '../lib/backend';
import { DTYPE_CODE } from '../lib/dtype';
import { native } from '../lib/native';
import * as validate from '../lib/validate';
import { randn, refAttention, rng } from './reference';
import { CPU, qkCase, relMaxError } from './helpers';

interface Case {
  B: number;
  H: number;
  Sq: number;
  Skv: number;
  D: number;
  Dv: number;
}

function inputs(c: Case, seed: number) {
  return {
    q: tensor(randn(c.B * c.H * c.Sq * c.D, seed), [c.B, c.H, c.Sq, c.D]),
    k: tensor(randn(c.B * c.H * c.Skv * c.D, seed + 1), [c.B, c.H, c.Skv, c.D]),
    v: tensor(randn(c.B * c.H * c.Skv * c.Dv, seed + 2), [c.B, c.H, c.Skv, c.Dv]),
  };
}

function randomMask(c: Case, density: number, seed: number, emptyRows = true): BlockMask {
  const nq = c.Sq / 64,
    nk = c.Skv / 64;
  const r = rng(seed);
  const dense = Uint8Array.from({ length: c.B * c.H * nq * nk }, () => (r() < density ? 1 : 0));
  if (emptyRows) dense.fill(0, 0, nk); // row 0 keeps nothing: its output must be zeros
  return BlockMask.fromDense(dense, [c.B, c.H, nq, nk]);
}

function reference(c: Case, q: Tensor, k: Tensor, v: Tensor, mask?: BlockMask, scale = 1 / Math.sqrt(c.D)) {
  return refAttention(
    toFloat32(q.data, q.type),
    toFloat32(k.data, k.type),
    toFloat32(v.data, v.type),
    { B: c.B, H: c.H, S: c.Sq, D: c.D },
    c.Skv,
    c.Dv,
    scale,
    mask?.toDense(),
  );
}

const cases: Case[] = [
  { B: 1, H: 2, Sq: 128, Skv: 128, D: 8, Dv: 8 },
  { B: 2, H: 1, Sq: 192, Skv: 128, D: 16, Dv: 24 },
  { B: 1, H: 2, Sq: 128, Skv: 256, D: 40, Dv: 40 },
  { B: 1, H: 1, Sq: 128, Skv: 192, D: 64, Dv: 64 },
  { B: 1, H: 1, Sq: 64, Skv: 128, D: 128, Dv: 72 },
  { B: 1, H: 1, Sq: 64, Skv: 128, D: 256, Dv: 256 },
];

// The CPU kernels this machine can run: AVX2 + FMA + F16C on x86-64 CPUs that have them, and the
// portable one everywhere. On Linux read from the CPU itself, so a binary that wrongly refuses AVX2
// fails; elsewhere asked of the binary.
function cpuHasAvx2(): boolean {
  if (process.arch !== 'x64') return false;
  if (process.platform === 'linux') {
    const flags = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '').split(/\s+/);
    return ['avx2', 'fma', 'f16c'].every((f) => flags.includes(f));
  }
  const x = tensor(new Float32Array(64 * 8), [1, 1, 64, 8]);
  try {
    return attentionRan(x, x, x, undefined, { ...CPU, cpuKernel: 'avx2' }, false).kernel === 'cpu-avx2';
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_NABLA_KERNEL_UNAVAILABLE') return false;
    throw err;
  }
}
const HAS_AVX2 = cpuHasAvx2();

// Every test runs with the kernel passed explicitly and asserts that it is the one that ran.
for (const cpuKernel of ['avx2', 'scalar'] as const) {
  const describeKernel = cpuKernel === 'avx2' && !HAS_AVX2 ? describe.skip : describe;
  describeKernel(`CPU kernel: ${cpuKernel}`, () => {
    const opts = { ...CPU, cpuKernel };
    const ran = `cpu-${cpuKernel}`;
    function dense(q: Tensor, k: Tensor, v: Tensor, extra: AttentionOptions = {}): Tensor {
      const r = attentionRan(q, k, v, undefined, { ...opts, ...extra }, false);
      expect(r.kernel).toBe(ran);
      return r.output;
    }
    function sparse(q: Tensor, k: Tensor, v: Tensor, mask: BlockMask, extra: AttentionOptions = {}): Tensor {
      const r = attentionRan(q, k, v, mask, { ...opts, ...extra }, false);
      expect(r.kernel).toBe(ran);
      return r.output;
    }

    for (const c of cases) {
      const name = `B${c.B} H${c.H} Sq${c.Sq} Skv${c.Skv} D${c.D} Dv${c.Dv}`;
      test(`dense ${name}`, () => {
        const { q, k, v } = inputs(c, c.D);
        const out = dense(q, k, v);
        expect(out.dims).toEqual([c.B, c.H, c.Sq, c.Dv]);
        expect(relMaxError(out.data, reference(c, q, k, v))).toBeLessThan(2e-6);
      });

      test(`masked ${name}, with an empty row`, () => {
        const { q, k, v } = inputs(c, c.D + 7);
        const mask = randomMask(c, 0.5, c.D);
        const out = sparse(q, k, v, mask);
        const ref = reference(c, q, k, v, mask);
        expect(relMaxError(out.data, ref)).toBeLessThan(2e-6);
        for (let i = 0; i < 64 * c.Dv; i++) expect(out.data[i]).toBe(0);
      });
    }

    test('a full mask equals dense attention; the scale option applies', () => {
      const c = cases[3];
      const { q, k, v } = inputs(c, 3);
      const full = BlockMask.fromDense(new Uint8Array(c.B * c.H * (c.Sq / 64) * (c.Skv / 64)).fill(1), [
        c.B,
        c.H,
        c.Sq / 64,
        c.Skv / 64,
      ]);
      const denseOut = dense(q, k, v, { scale: 0.05 });
      const sparseOut = sparse(q, k, v, full, { scale: 0.05 });
      expect(relMaxError(sparseOut.data, denseOut.data)).toBeLessThan(1e-6);
      expect(relMaxError(denseOut.data, reference(c, q, k, v, undefined, 0.05))).toBeLessThan(2e-6);
    });

    // q > 0 and keys that grow block by block: each new key block raises every row's running max,
    // so the online softmax must rescale both the running sum and the output at each block.
    test('scores rising across many key blocks (online softmax rescaling)', () => {
      const c = { B: 1, H: 1, Sq: 64, Skv: 512, D: 16, Dv: 16 };
      const { v } = inputs(c, 31);
      const q = tensor(randn(c.Sq * c.D, 31).map(Math.abs), [1, 1, c.Sq, c.D]);
      const k = tensor(
        randn(c.Skv * c.D, 32).map((x, i) => x + 0.1 * Math.floor(i / (64 * c.D))),
        [1, 1, c.Skv, c.D],
      );
      const out = dense(q, k, v, { scale: 1 });
      expect(relMaxError(out.data, reference(c, q, k, v, undefined, 1))).toBeLessThan(2e-6);
    });

    // 16-bit outputs: the reference sees the same rounded inputs, accumulation is fp32 (error
    // ~1e-6), so what remains is one rounding of the output: half an ulp, 2^-11 (fp16) or 2^-8
    // (bf16) of the value. We allow one ulp of the largest output.
    for (const [type, ulp] of [
      ['float16', 2 ** -10],
      ['bfloat16', 2 ** -7],
    ] as const) {
      test(`${type} in and out`, () => {
        const c = cases[2];
        const f = inputs(c, 11);
        const q = tensor(fromFloat32(f.q.data, type), f.q.dims, type);
        const k = tensor(fromFloat32(f.k.data, type), f.k.dims, type);
        const v = tensor(fromFloat32(f.v.data, type), f.v.dims, type);
        const mask = randomMask(c, 0.6, 5);
        const out = sparse(q, k, v, mask);
        expect(out.type).toBe(type);
        expect(out.data).toBeInstanceOf(Uint16Array);
        expect(relMaxError(toFloat32(out.data, type), reference(c, q, k, v, mask))).toBeLessThan(ulp);
      });
    }

    test('async runs the same kernel and gives the same bits', async () => {
      const c = cases[1];
      const { q, k, v } = inputs(c, 41);
      const mask = randomMask(c, 0.5, 3);
      const a = await attentionRan(q, k, v, mask, opts, true);
      expect(a.kernel).toBe(ran);
      expect(Array.from(a.output.data)).toEqual(Array.from(sparse(q, k, v, mask).data));
    });
  });
}

describe('choosing the kernel', () => {
  const c = cases[3];
  const { q, k, v } = inputs(c, 51);
  const saved = process.env.NABLA_CPU_ISA;
  afterEach(() => {
    if (saved === undefined) delete process.env.NABLA_CPU_ISA;
    else process.env.NABLA_CPU_ISA = saved;
  });

  test("'auto' runs AVX2 where the CPU has it, else the portable kernel", () => {
    delete process.env.NABLA_CPU_ISA;
    const auto = HAS_AVX2 ? 'cpu-avx2' : 'cpu-scalar';
    expect(attentionRan(q, k, v, undefined, { ...CPU, cpuKernel: 'auto' }, false).kernel).toBe(auto);
    expect(attentionRan(q, k, v, undefined, CPU, false).kernel).toBe(auto);
    if (!HAS_AVX2)
      expect(() => attentionSync(q, k, v, { ...CPU, cpuKernel: 'avx2' })).toThrow(
        expect.objectContaining({ code: 'ERR_NABLA_KERNEL_UNAVAILABLE' }),
      );
  });

  test('NABLA_CPU_ISA, read when the op is called, is the default; the option wins', () => {
    process.env.NABLA_CPU_ISA = 'scalar';
    expect(attentionRan(q, k, v, undefined, CPU, false).kernel).toBe('cpu-scalar');
    if (HAS_AVX2)
      expect(attentionRan(q, k, v, undefined, { ...CPU, cpuKernel: 'avx2' }, false).kernel).toBe('cpu-avx2');
    process.env.NABLA_CPU_ISA = '';
    expect(attentionRan(q, k, v, undefined, CPU, false).kernel).toBe(HAS_AVX2 ? 'cpu-avx2' : 'cpu-scalar');
  });

  test('bad values name the option or the variable', () => {
    expect(() => attentionSync(q, k, v, { ...CPU, cpuKernel: 'sse' as never })).toThrow(RangeError);
    expect(() => attentionSync(q, k, v, { ...CPU, cpuKernel: 'sse' as never })).toThrow(
      "Expected one of 'auto', 'avx2', 'scalar' for cpuKernel but received 'sse'",
    );
    expect(() => attentionSync(q, k, v, { ...CPU, cpuKernel: 2 as never })).toThrow(TypeError);
    process.env.NABLA_CPU_ISA = 'neon';
    expect(() => attentionSync(q, k, v, CPU)).toThrow(
      "Expected one of 'auto', 'avx2', 'scalar' for NABLA_CPU_ISA but received 'neon'",
    );
    expect(() => nablaAttentionSync(q, k, v, CPU)).toThrow(/for NABLA_CPU_ISA/);
    // the TS check and the native one word it alike
    const args = {
      q: q.data,
      k: k.data,
      v: v.data,
      out: new Float32Array(q.data.length),
      dtype: DTYPE_CODE.float32,
      batch: c.B,
      heads: c.H,
      seqQ: c.Sq,
      seqKv: c.Skv,
      headDim: c.D,
      valueDim: c.Dv,
      scale: 0.125,
      kernel: 'auto' as const,
      backend: 'cpu' as const,
      device: 0,
    };
    expect(() => native.attention({ ...args, cpuKernel: 'sse' as never }, false)).toThrow(
      "Expected one of 'auto', 'avx2', 'scalar' for cpuKernel but received 'sse'",
    );
  });

  test('NABLA_ATTENTION_KERNEL is checked on every call, whichever backend runs it', () => {
    const before = process.env.NABLA_ATTENTION_KERNEL;
    try {
      process.env.NABLA_ATTENTION_KERNEL = 'turbo';
      expect(() => attentionSync(q, k, v, CPU)).toThrow(
        "Expected one of 'auto', 'fast', 'simple', 'hopper', 'fast2' for NABLA_ATTENTION_KERNEL but received 'turbo'",
      );
      expect(attentionRan(q, k, v, undefined, { ...CPU, kernel: 'simple' }, false).kernel).toMatch(/^cpu-/); // the option wins
      process.env.NABLA_ATTENTION_KERNEL = 'simple';
      expect(attentionRan(q, k, v, undefined, CPU, false).kernel).toMatch(/^cpu-/);
    } finally {
      if (before === undefined) delete process.env.NABLA_ATTENTION_KERNEL;
      else process.env.NABLA_ATTENTION_KERNEL = before;
    }
  });

  // The two kernels round differently (the AVX2 one fuses multiply-adds), so their outputs, each
  // within 2e-6 of the reference, are not the same bits: a 'scalar' request that ran AVX2 shows.
  (HAS_AVX2 ? test : test.skip)('the scalar and AVX2 kernels are different code', () => {
    const mask = randomMask(c, 0.7, 8, false);
    const scalar = blockSparseAttentionSync(q, k, v, mask, { ...CPU, cpuKernel: 'scalar' });
    const avx2 = blockSparseAttentionSync(q, k, v, mask, { ...CPU, cpuKernel: 'avx2' });
    const ref = reference(c, q, k, v, mask);
    expect(relMaxError(scalar.data, ref)).toBeLessThan(2e-6);
    expect(relMaxError(avx2.data, ref)).toBeLessThan(2e-6);
    expect(Array.from(scalar.data)).not.toEqual(Array.from(avx2.data));
  });
});

describe('async', () => {
  test('async equals sync, and many overlapping calls equal sequential ones', async () => {
    const c = cases[3];
    const runs = Array.from({ length: 8 }, (_, i) => ({ ...inputs(c, 100 + i), mask: randomMask(c, 0.5, i, false) }));
    const sequential = runs.map((r) => blockSparseAttentionSync(r.q, r.k, r.v, r.mask, CPU));
    const overlapping = await Promise.all(runs.map((r) => blockSparseAttention(r.q, r.k, r.v, r.mask, CPU)));
    overlapping.forEach((out, i) => expect(Array.from(out.data)).toEqual(Array.from(sequential[i].data)));
    const dense = await attention(runs[0].q, runs[0].k, runs[0].v, CPU);
    expect(Array.from(dense.data)).toEqual(Array.from(attentionSync(runs[0].q, runs[0].k, runs[0].v, CPU).data));
  });
});

describe('mask lists', () => {
  test('edits to the lists a mask hands out change neither the mask nor the output', async () => {
    const c = cases[3];
    const { q, k, v } = inputs(c, 21);
    const mask = randomMask(c, 0.5, 9, false);
    const expected = blockSparseAttentionSync(q, k, v, mask, CPU);
    const density = mask.density();
    const counts = mask.kvCounts;
    counts[0] = 0; // drops row 0's blocks if it reached the mask
    mask.kvIndices.fill(0); // repeats block 0 in every row if it reached the mask
    expect(mask.kvCounts[0]).not.toBe(0);
    expect(mask.density()).toBe(density);
    expect(Array.from(blockSparseAttentionSync(q, k, v, mask, CPU).data)).toEqual(Array.from(expected.data));
    expect(Array.from((await blockSparseAttention(q, k, v, mask, CPU)).data)).toEqual(Array.from(expected.data));
  });

  test('native: an async op reads the host lists as they were when it was called', async () => {
    const c = cases[3];
    const { q, k, v } = inputs(c, 21);
    const mask = randomMask(c, 0.5, 9, false);
    const expected = blockSparseAttentionSync(q, k, v, mask, CPU);
    const out = new Float32Array(expected.data.length);
    const kvCounts = mask.kvCounts,
      kvIndices = mask.kvIndices;
    const pending = native.attention(
      {
        q: q.data,
        k: k.data,
        v: v.data,
        out,
        dtype: DTYPE_CODE.float32,
        batch: c.B,
        heads: c.H,
        seqQ: c.Sq,
        seqKv: c.Skv,
        headDim: c.D,
        valueDim: c.Dv,
        scale: 1 / Math.sqrt(c.D),
        kernel: 'auto',
        kvCounts,
        kvIndices,
        backend: 'cpu',
        device: 0,
      },
      true,
    );
    kvCounts.fill(1000000); // would index far out of bounds if the op read it now
    kvIndices.fill(-7);
    await pending;
    expect(Array.from(out)).toEqual(Array.from(expected.data));
  });

  test('a non-mask is a TypeError naming mask', () => {
    const c = cases[3];
    const { q, k, v } = inputs(c, 22);
    const nk = c.Skv / 64,
      rows = c.B * c.H * (c.Sq / 64);
    const fake = Object.create(BlockMask.prototype);
    const plain = {
      dims: [c.B, c.H, c.Sq / 64, nk],
      kvCounts: new Int32Array(rows),
      kvIndices: new Int32Array(rows * nk),
    };
    for (const m of [fake, plain, null, 7]) {
      expect(() => blockSparseAttentionSync(q, k, v, m as BlockMask, CPU)).toThrow(TypeError);
      expect(() => blockSparseAttentionSync(q, k, v, m as BlockMask, CPU)).toThrow(
        /^Expected a BlockMask .* for mask but received/,
      );
    }
    return expect(blockSparseAttention(q, k, v, fake, CPU)).rejects.toThrow(/for mask but received an object/);
  });
});

describe('nablaAttention', () => {
  test('is nablaMask then blockSparseAttention', async () => {
    const { q, k, grid } = qkCase(1, 2, [3, 16, 16], 32, 9);
    const v = tensor(randn(q.data.length, 4), q.dims);
    const options = { threshold: 0.6, grid, sta: [3, 1, 1] as [number, number, number], ...CPU };
    const { output, mask } = await nablaAttention(q, k, v, options);
    const expectedMask = nablaMaskSync(q, k, options);
    expect(Array.from(mask.kvIndices)).toEqual(Array.from(expectedMask.kvIndices));
    expect(Array.from(output.data)).toEqual(Array.from(blockSparseAttentionSync(q, k, v, expectedMask, CPU).data));
    const sync = nablaAttentionSync(q, k, v, options);
    expect(Array.from(sync.output.data)).toEqual(Array.from(output.data));
    const c = { B: 1, H: 2, Sq: q.dims[2], Skv: q.dims[2], D: 32, Dv: 32 };
    expect(relMaxError(output.data, reference(c, q, k, v, mask))).toBeLessThan(2e-6);
    const ran = await nablaAttentionRan(q, k, v, { ...options, cpuKernel: 'scalar' });
    expect(ran.kernels).toEqual({ mask: 'cpu', attention: 'cpu-scalar' });
    expect(relMaxError(ran.output.data, reference(c, q, k, v, mask))).toBeLessThan(2e-6);
  });

  test('checks q, k and v once and places the call once', () => {
    const { q, k, grid } = qkCase(1, 1, [1, 16, 16], 16, 3);
    const v = tensor(randn(q.data.length, 5), q.dims);
    const spies = [
      jest.spyOn(validate, 'checkQKV'),
      jest.spyOn(validate, 'checkQK'),
      jest.spyOn(backend, 'resolvePlacement'),
    ];
    try {
      nablaAttentionSync(q, k, v, { grid, ...CPU });
      expect(spies.map((s) => s.mock.calls.length)).toEqual([1, 0, 1]);
    } finally {
      spies.forEach((s) => s.mockRestore());
    }
  });

  test('a bad attention option costs no mask', () => {
    const { q, k } = qkCase(1, 1, [1, 16, 16], 16, 3);
    const spy = jest.spyOn(native, 'nablaMask');
    try {
      expect(() => nablaAttentionSync(q, k, q, { ...CPU, scale: -1 })).toThrow(/for scale/);
      expect(() => nablaAttentionSync(q, k, q, { ...CPU, kernel: 'turbo' as never })).toThrow(/for kernel/);
      expect(() => nablaAttentionSync(q, k, q, { ...CPU, cpuKernel: 'turbo' as never })).toThrow(/for cpuKernel/);
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });
});
