// The NABLA mask on the CPU against the float64 reference (test/reference.ts) and the stated
// properties of the CDF rule (docs/nabla.md section 1).
import { BlockMask, attention, blockPoolSync, nablaMask, nablaMaskSync, tensor, fromFloat32, toFloat32 } from '../lib';
import { randn, refMask, refPool } from './reference';
import { CPU, qkCase } from './helpers';
import * as backend from '../lib/backend';
import { blockPoolRan, nablaMaskRan } from '../lib/mask';
import * as validate from '../lib/validate';

/** Dense masks equal except where the reference running sum is within `eps` of 1 - thr. */
function expectMaskEqual(got: Uint8Array, ref: ReturnType<typeof refMask>, threshold: number, eps = 1e-6) {
  let mismatches = 0;
  for (let i = 0; i < got.length; i++) {
    if (got[i] === ref.dense[i]) continue;
    const boundary = Math.abs(ref.runningAt[i] - (1 - threshold)) < eps;
    if (!boundary) mismatches++;
  }
  expect(mismatches).toBe(0);
}

describe('blockPool', () => {
  test('is the mean of every 64-token block', () => {
    const { q, dims } = qkCase(2, 3, [2, 8, 16], 24, 1);
    const pooled = blockPoolSync(q, CPU);
    expect(pooled.dims).toEqual([2, 3, 4, 24]);
    const ref = refPool(q.data, dims);
    for (let i = 0; i < ref.length; i++) expect(pooled.data[i]).toBeCloseTo(ref[i], 5);
  });
});

describe('nablaMask (cdf) equals the reference', () => {
  const cases: { grid: [number, number, number]; B: number; H: number; D: number }[] = [
    { grid: [2, 16, 16], B: 1, H: 2, D: 16 },
    { grid: [3, 8, 24], B: 2, H: 1, D: 32 },
    { grid: [4, 16, 24], B: 1, H: 3, D: 64 },
  ];
  for (const c of cases)
    for (const threshold of [0.1, 0.4, 0.7, 0.9, 1]) {
      test(`grid ${c.grid} B${c.B} H${c.H} D${c.D} thr ${threshold}`, () => {
        const { q, k, dims } = qkCase(c.B, c.H, c.grid, c.D, 7 + threshold * 10);
        const mask = nablaMaskSync(q, k, { threshold, ...CPU });
        expectMaskEqual(mask.toDense(), refMask(q.data, k.data, dims, dims.S, { threshold }), threshold);
      });
    }

  test('with STA and documents', () => {
    const { q, k, dims, grid, blockGrid } = qkCase(1, 2, [6, 16, 16], 16, 3);
    for (const [sta, frames] of [
      [[3, 1, 1], undefined],
      [undefined, [0, 2, 6]],
      [
        [5, 3, 3],
        [0, 1, 4, 6],
      ],
    ] as const) {
      const threshold = 0.5;
      const mask = nablaMaskSync(q, k, {
        threshold,
        grid,
        sta: sta as [number, number, number] | undefined,
        frames: frames as number[] | undefined,
        ...CPU,
      });
      const ref = refMask(q.data, k.data, dims, dims.S, {
        threshold,
        blockGrid,
        sta: sta as [number, number, number] | undefined,
        frames: frames as number[] | undefined,
      });
      expectMaskEqual(mask.toDense(), ref, threshold);
    }
  });

  test('the block map is the softmax of pooled scores', () => {
    const { q, k, dims } = qkCase(1, 2, [2, 16, 16], 16, 5);
    const mask = nablaMaskSync(q, k, { threshold: 0.5, returnMap: true, ...CPU });
    const ref = refMask(q.data, k.data, dims, dims.S, { threshold: 0.5 });
    expect(mask.map).toBeDefined();
    for (let i = 0; i < ref.prob.length; i++) expect(mask.map![i]).toBeCloseTo(ref.prob[i], 6);
  });

  test('q and k of different lengths (cross attention)', () => {
    const a = qkCase(1, 2, [2, 16, 16], 16, 11);
    const b = qkCase(1, 2, [3, 16, 16], 16, 12);
    const mask = nablaMaskSync(a.q, b.k, { threshold: 0.6, ...CPU });
    expect(mask.dims).toEqual([1, 2, 8, 12]);
    expectMaskEqual(mask.toDense(), refMask(a.q.data, b.k.data, a.dims, b.dims.S, { threshold: 0.6 }), 0.6);
  });
});

describe('CDF rule properties', () => {
  const { q, k } = qkCase(2, 2, [4, 16, 16], 32, 21);
  const thresholds = [0.05, 0.2, 0.4, 0.6, 0.8, 0.95, 1];
  const masks = thresholds.map((threshold) => nablaMaskSync(q, k, { threshold, returnMap: true, ...CPU }));
  const [, , nq, nk] = masks[0].dims;

  test('kept mass >= thr, and dropping the smallest kept block falls below thr', () => {
    masks.forEach((m, t) => {
      const thr = thresholds[t];
      const dense = m.toDense();
      const rows = m.kvCounts.length; // kvCounts and kvIndices are copies: read them once
      for (let r = 0; r < rows; r++) {
        let mass = 0,
          smallest = Infinity;
        for (let j = 0; j < nk; j++)
          if (dense[r * nk + j]) {
            mass += m.map![r * nk + j];
            smallest = Math.min(smallest, m.map![r * nk + j]);
          }
        expect(mass).toBeGreaterThanOrEqual(thr - 1e-6);
        if (thr < 1) expect(mass - smallest).toBeLessThan(thr + 1e-6);
      }
    });
  });

  test('at least one block per row; thr = 1 keeps every block', () => {
    for (const m of masks) for (const c of m.kvCounts) expect(c).toBeGreaterThanOrEqual(1);
    expect(masks[masks.length - 1].density()).toBe(1);
  });

  test('monotone: a larger threshold keeps a superset', () => {
    for (let t = 1; t < masks.length; t++) {
      const lo = masks[t - 1].toDense(),
        hi = masks[t].toDense();
      for (let i = 0; i < lo.length; i++) if (lo[i]) expect(hi[i]).toBe(1);
      expect(masks[t].density()).toBeGreaterThanOrEqual(masks[t - 1].density());
    }
    expect(masks[0].density()).toBeLessThan(masks[masks.length - 2].density());
  });

  test('kvIndices: kept ids ascending, then the dropped ids ascending', () => {
    for (const m of masks) {
      const dense = m.toDense();
      const { kvCounts, kvIndices } = m; // copies: read them once
      for (let r = 0; r < nq * 4; r++) {
        const row = Array.from(kvIndices.subarray(r * nk, (r + 1) * nk));
        const kept = row.slice(0, kvCounts[r]);
        const dropped = row.slice(kvCounts[r]);
        expect(kept).toEqual([...kept].sort((a, b) => a - b));
        expect(dropped).toEqual([...dropped].sort((a, b) => a - b));
        for (const j of kept) expect(dense[r * nk + j]).toBe(1);
        for (const j of dropped) expect(dense[r * nk + j]).toBe(0);
      }
    }
  });
});

describe('topk', () => {
  test('keeps max(1, floor(thr * n)) largest blocks per row, equal to the reference', () => {
    const { q, k, dims, grid, blockGrid } = qkCase(1, 2, [4, 16, 16], 16, 31);
    for (const threshold of [0.01, 0.3, 0.5, 1]) {
      const m = nablaMaskSync(q, k, { threshold, method: 'topk', ...CPU });
      const nk = m.dims[3];
      for (const c of m.kvCounts) expect(c).toBe(Math.max(1, Math.floor(threshold * nk)));
      expectMaskEqual(m.toDense(), refMask(q.data, k.data, dims, dims.S, { threshold, method: 'topk' }), threshold);
    }
    // with documents the count is per document
    const frames = [0, 1, 4];
    const m = nablaMaskSync(q, k, { threshold: 0.5, method: 'topk', grid, frames, ...CPU });
    const ref = refMask(q.data, k.data, dims, dims.S, { threshold: 0.5, method: 'topk', blockGrid, frames });
    expect(Array.from(m.toDense())).toEqual(Array.from(ref.dense));
    const plane = blockGrid[1] * blockGrid[2];
    expect(m.kvCounts[0]).toBe(Math.floor(0.5 * plane)); // document 0 is one frame
  });
});

describe('documents', () => {
  test('no block pair crosses a document', () => {
    const { q, k, grid, blockGrid } = qkCase(1, 1, [5, 16, 16], 16, 41);
    const frames = [0, 2, 5];
    const m = nablaMaskSync(q, k, { threshold: 1, grid, frames, sta: [11, 3, 3], ...CPU });
    const nb = m.dims[3],
      plane = blockGrid[1] * blockGrid[2];
    const dense = m.toDense();
    const doc = (b: number) => (Math.floor(b / plane) < 2 ? 0 : 1);
    for (let i = 0; i < nb; i++) for (let j = 0; j < nb; j++) expect(dense[i * nb + j]).toBe(doc(i) === doc(j) ? 1 : 0);
  });
});

describe('float16 and bfloat16 inputs', () => {
  for (const type of ['float16', 'bfloat16'] as const) {
    test(type, () => {
      const { q, k, dims } = qkCase(1, 2, [2, 16, 16], 32, 51);
      const q16 = tensor(fromFloat32(q.data, type), q.dims, type);
      const k16 = tensor(fromFloat32(k.data, type), k.dims, type);
      const m = nablaMaskSync(q16, k16, { threshold: 0.6, ...CPU });
      // the reference sees exactly the rounded values
      const ref = refMask(toFloat32(q16.data, type), toFloat32(k16.data, type), dims, dims.S, { threshold: 0.6 });
      expectMaskEqual(m.toDense(), ref, 0.6);
      const pooled = blockPoolSync(q16, CPU);
      const refPooled = refPool(toFloat32(q16.data, type), dims);
      for (let i = 0; i < refPooled.length; i++) expect(pooled.data[i]).toBeCloseTo(refPooled[i], 5);
    });
  }
});

describe('async', () => {
  test('async equals sync', async () => {
    const { q, k, grid } = qkCase(2, 2, [3, 16, 16], 16, 61);
    const opts = { threshold: 0.5, grid, sta: [3, 1, 1] as [number, number, number], ...CPU };
    const [a, b] = await Promise.all([nablaMask(q, k, opts), nablaMask(k, q, opts)]);
    expect(a).toBeInstanceOf(BlockMask);
    expect(Array.from(a.kvIndices)).toEqual(Array.from(nablaMaskSync(q, k, opts).kvIndices));
    expect(Array.from(b.kvCounts)).toEqual(Array.from(nablaMaskSync(k, q, opts).kvCounts));
  });

  test('async masks called while another op runs on the thread pool give the sync bits', async () => {
    // the call pools q and k on the pool's threads when they are idle, else on its own thread alone
    // (never waiting behind the other op): either way the same bits
    const { q, k, grid } = qkCase(1, 4, [4, 16, 16], 32, 62);
    const opts = { threshold: 0.6, grid, ...CPU };
    const reference = nablaMaskSync(q, k, opts);
    const busy = attention(q, k, k, CPU); // dense: keeps the pool's threads busy for a while
    const masks = await Promise.all([nablaMask(q, k, opts), nablaMask(q, k, opts)]);
    await busy;
    for (const m of masks) {
      expect(Array.from(m.kvCounts)).toEqual(Array.from(reference.kvCounts));
      expect(Array.from(m.kvIndices)).toEqual(Array.from(reference.kvIndices));
    }
  });

  test('the event loop keeps ticking during a large async mask', async () => {
    // 4 heads x 1024 blocks: about 0.3 G multiply-adds for the block maps, plus 4096 row sorts
    const S = 65536,
      D = 64,
      H = 4;
    const data = new Float32Array(H * S * D);
    // 16 distinct blocks repeated (big loops in JS are slow under jest; copyWithin is native)
    data.set(randn(16 * 64 * D, 3));
    for (let filled = 16 * 64 * D; filled < data.length; filled *= 2)
      data.copyWithin(filled, 0, Math.min(filled, data.length - filled));
    const q = tensor(data, [1, H, S, D]);
    const ticksDuring = async (run: () => Promise<unknown> | unknown) => {
      let ticks = 0;
      const timer = setInterval(() => ticks++, 2);
      const start = Date.now();
      await run();
      const ms = Date.now() - start;
      clearInterval(timer);
      return { ticks, ms };
    };
    const blocking = await ticksDuring(() => nablaMaskSync(q, q, { threshold: 0.5, ...CPU }));
    const async = await ticksDuring(() => nablaMask(q, q, { threshold: 0.5, ...CPU }));
    expect(blocking.ticks).toBe(0); // the sync call holds the thread: no tick can run
    expect(async.ms).toBeGreaterThan(20);
    expect(async.ticks).toBeGreaterThanOrEqual(Math.min(5, Math.floor(async.ms / 20)));
  });
});

describe('choosing the pooling kernel', () => {
  const x = tensor(randn(2 * 256 * 16, 4), [1, 2, 256, 16]);
  const saved = process.env.NABLA_POOL_KERNEL;
  afterEach(() => {
    if (saved === undefined) delete process.env.NABLA_POOL_KERNEL;
    else process.env.NABLA_POOL_KERNEL = saved;
  });

  test('the CPU backend reports its one kernel whatever poolKernel says', () => {
    const expected = blockPoolSync(x, CPU).data;
    for (const poolKernel of ['auto', 'simple', 'fast2'] as const) {
      const ran = blockPoolRan(x, { ...CPU, poolKernel });
      expect(ran.kernel).toBe('cpu');
      expect(Array.from(ran.pooled.data)).toEqual(Array.from(expected));
    }
  });

  test('bad values name the option or NABLA_POOL_KERNEL, read when the op is called', () => {
    expect(() => blockPoolSync(x, { ...CPU, poolKernel: 'wide' as never })).toThrow(
      "Expected one of 'auto', 'simple', 'fast2' for poolKernel but received 'wide'",
    );
    expect(() => blockPoolSync(x, { ...CPU, poolKernel: 2 as never })).toThrow(TypeError);
    process.env.NABLA_POOL_KERNEL = 'wide';
    expect(() => blockPoolSync(x, CPU)).toThrow(
      "Expected one of 'auto', 'simple', 'fast2' for NABLA_POOL_KERNEL but received 'wide'",
    );
    expect(blockPoolRan(x, { ...CPU, poolKernel: 'fast2' }).kernel).toBe('cpu'); // the option wins
    process.env.NABLA_POOL_KERNEL = 'fast2';
    expect(blockPoolRan(x, CPU).kernel).toBe('cpu');
  });
});

describe('choosing the mask kernel', () => {
  const { q, k } = qkCase(1, 2, [2, 16, 16], 16, 3);
  const saved = process.env.NABLA_MASK_KERNEL;
  afterEach(() => {
    if (saved === undefined) delete process.env.NABLA_MASK_KERNEL;
    else process.env.NABLA_MASK_KERNEL = saved;
  });

  test('the CPU backend reports its one kernel whatever maskKernel says', async () => {
    const expected = nablaMaskSync(q, k, CPU).toDense();
    for (const maskKernel of ['auto', 'fast', 'simple', 'fast2'] as const) {
      const ran = nablaMaskRan(q, k, { ...CPU, maskKernel }, false);
      expect(ran.kernel).toBe('cpu');
      expect(Array.from(ran.mask.toDense())).toEqual(Array.from(expected));
      expect((await nablaMaskRan(q, k, { ...CPU, maskKernel }, true)).kernel).toBe('cpu');
    }
  });

  test('bad values name the option or NABLA_MASK_KERNEL, read when the op is called', async () => {
    expect(() => nablaMaskSync(q, k, { ...CPU, maskKernel: 'warp' as never })).toThrow(
      "Expected one of 'auto', 'fast', 'simple', 'fast2' for maskKernel but received 'warp'",
    );
    expect(() => nablaMaskSync(q, k, { ...CPU, maskKernel: 1 as never })).toThrow(TypeError);
    process.env.NABLA_MASK_KERNEL = 'warp';
    expect(() => nablaMaskSync(q, k, CPU)).toThrow(
      "Expected one of 'auto', 'fast', 'simple', 'fast2' for NABLA_MASK_KERNEL but received 'warp'",
    );
    await expect(nablaMask(q, k, CPU)).rejects.toThrow(RangeError);
    expect(nablaMaskRan(q, k, { ...CPU, maskKernel: 'simple' }, false).kernel).toBe('cpu'); // the option wins
    process.env.NABLA_MASK_KERNEL = 'simple';
    expect(nablaMaskRan(q, k, CPU, false).kernel).toBe('cpu');
  });

  test('one call checks q and k once and places the call once', () => {
    const spies = [jest.spyOn(validate, 'checkQK'), jest.spyOn(backend, 'resolvePlacement')];
    try {
      nablaMaskSync(q, k, CPU);
      expect(spies.map((s) => s.mock.calls.length)).toEqual([1, 1]);
    } finally {
      spies.forEach((s) => s.mockRestore());
    }
  });
});
