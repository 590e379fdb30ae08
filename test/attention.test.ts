// Attention on the CPU against the float64 reference (test/reference.ts).
import {
  BlockMask, attention, attentionSync, blockSparseAttention, blockSparseAttentionSync, fromFloat32, nablaAttention,
  nablaAttentionSync, nablaMaskSync, tensor, toFloat32, Tensor,
} from '../lib';
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
  const nq = c.Sq / 64, nk = c.Skv / 64;
  const r = rng(seed);
  const dense = Uint8Array.from({ length: c.B * c.H * nq * nk }, () => (r() < density ? 1 : 0));
  if (emptyRows) dense.fill(0, 0, nk); // row 0 keeps nothing: its output must be zeros
  return BlockMask.fromDense(dense, [c.B, c.H, nq, nk]);
}

function reference(c: Case, q: Tensor, k: Tensor, v: Tensor, mask?: BlockMask, scale = 1 / Math.sqrt(c.D)) {
  return refAttention(
    toFloat32(q.data, q.type), toFloat32(k.data, k.type), toFloat32(v.data, v.type),
    { B: c.B, H: c.H, S: c.Sq, D: c.D }, c.Skv, c.Dv, scale, mask?.toDense(),
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

// Both CPU kernels: the AVX2/FMA one (where the CPU has it) and the portable one.
for (const isa of ['auto', 'scalar']) {
  describe(`CPU kernel: ${isa}`, () => {
    beforeAll(() => {
      if (isa === 'scalar') process.env.NABLA_CPU_ISA = 'scalar';
    });
    afterAll(() => {
      delete process.env.NABLA_CPU_ISA;
    });

    for (const c of cases) {
      const name = `B${c.B} H${c.H} Sq${c.Sq} Skv${c.Skv} D${c.D} Dv${c.Dv}`;
      test(`dense ${name}`, () => {
        const { q, k, v } = inputs(c, c.D);
        const out = attentionSync(q, k, v, CPU);
        expect(out.dims).toEqual([c.B, c.H, c.Sq, c.Dv]);
        expect(relMaxError(out.data, reference(c, q, k, v))).toBeLessThan(2e-6);
      });

      test(`masked ${name}, with an empty row`, () => {
        const { q, k, v } = inputs(c, c.D + 7);
        const mask = randomMask(c, 0.5, c.D);
        const out = blockSparseAttentionSync(q, k, v, mask, CPU);
        const ref = reference(c, q, k, v, mask);
        expect(relMaxError(out.data, ref)).toBeLessThan(2e-6);
        for (let i = 0; i < 64 * c.Dv; i++) expect(out.data[i]).toBe(0);
      });
    }

    test('a full mask equals dense attention; the scale option applies', () => {
      const c = cases[3];
      const { q, k, v } = inputs(c, 3);
      const full = BlockMask.fromDense(new Uint8Array(c.B * c.H * (c.Sq / 64) * (c.Skv / 64)).fill(1), [c.B, c.H, c.Sq / 64, c.Skv / 64]);
      const dense = attentionSync(q, k, v, { scale: 0.05, ...CPU });
      const sparse = blockSparseAttentionSync(q, k, v, full, { scale: 0.05, ...CPU });
      expect(relMaxError(sparse.data, dense.data)).toBeLessThan(1e-6);
      expect(relMaxError(dense.data, reference(c, q, k, v, undefined, 0.05))).toBeLessThan(2e-6);
    });

    // 16-bit outputs: the reference sees the same rounded inputs, accumulation is fp32 (error
    // ~1e-6), so what remains is one rounding of the output: half an ulp, 2^-11 (fp16) or 2^-8
    // (bf16) of the value. We allow one ulp of the largest output.
    for (const [type, ulp] of [['float16', 2 ** -10], ['bfloat16', 2 ** -7]] as const) {
      test(`${type} in and out`, () => {
        const c = cases[2];
        const f = inputs(c, 11);
        const q = tensor(fromFloat32(f.q.data, type), f.q.dims, type);
        const k = tensor(fromFloat32(f.k.data, type), f.k.dims, type);
        const v = tensor(fromFloat32(f.v.data, type), f.v.dims, type);
        const mask = randomMask(c, 0.6, 5);
        const out = blockSparseAttentionSync(q, k, v, mask, CPU);
        expect(out.type).toBe(type);
        expect(out.data).toBeInstanceOf(Uint16Array);
        expect(relMaxError(toFloat32(out.data, type), reference(c, q, k, v, mask))).toBeLessThan(ulp);
      });
    }
  });
}

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

describe('masks changed while an op is pending', () => {
  test('the op uses the lists as they were when it was called', async () => {
    const c = cases[3];
    const { q, k, v } = inputs(c, 21);
    const mask = randomMask(c, 0.5, 9, false);
    const expected = blockSparseAttentionSync(q, k, v, mask, CPU);
    const pending = blockSparseAttention(q, k, v, mask, CPU);
    mask.kvCounts.fill(1000000); // would index far out of bounds if the op read it now
    mask.kvIndices.fill(-7);
    expect(Array.from((await pending).data)).toEqual(Array.from(expected.data));
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
  });
});
