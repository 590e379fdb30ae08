// The mask rules at their edges on the CPU (docs/nabla.md section 1): the exact CDF boundary and
// equal probabilities, logits large enough to overflow exp without the max subtraction, a
// threshold so small that rounding decides, and an empty row whose output buffer is not zero.
import { DType, backends, cast, nablaMaskSync, tensor, toFloat32Array } from '../lib';
import { native } from '../lib/native';
import { DTYPE_CODE } from '../lib/dtype';
import { randn, refAttention, refMask } from './reference';
import { CPU, relMaxError } from './helpers';

/** Kept block ids of every row, ascending. */
function keptRows(mask: { kvCounts: Int32Array; kvIndices: Int32Array; dims: readonly number[] }): number[][] {
  const nk = mask.dims[3];
  return Array.from(mask.kvCounts, (count, r) => Array.from(mask.kvIndices.subarray(r * nk, r * nk + count)));
}

/** [B, H, S, D] fp32 tensor with every element = value + noise * N(0, 1). */
function filled(dims: [number, number, number, number], value: number, noise: number, seed: number) {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = noise === 0 ? new Float32Array(n) : randn(n, seed, noise);
  for (let i = 0; i < n; i++) data[i] += value;
  return tensor(data, dims);
}

describe('equal probabilities and the exact CDF boundary', () => {
  // q = k = 0: every logit is 0, so a row of 4 blocks has P = 1/4 each (exact in binary), and the
  // running sum in ascending order (ties: higher index first) is 0.25, 0.5, 0.75, 1.
  const dims: [number, number, number, number] = [1, 2, 4 * 64, 8];
  const q = filled(dims, 0, 0, 0);
  const k = filled(dims, 0, 0, 0);

  test('cdf 0.5: the running sum reaches 1 - thr exactly at block 2, so blocks 0, 1, 2 are kept', () => {
    const mask = nablaMaskSync(q, k, { threshold: 0.5, returnMap: true, ...CPU });
    expect(Array.from(mask.map!)).toEqual(new Array(2 * 4 * 4).fill(0.25));
    // ">= 1 - thr" keeps the block whose running sum equals 0.5; ">" would keep 0, 1 only, and the
    // reversed tie-break (lower index dropped first) would keep 1, 2, 3
    for (const row of keptRows(mask)) expect(row).toEqual([0, 1, 2]);
  });

  test('cdf 0.75 keeps all 4, cdf 0.25 keeps 0, 1, cdf 0.1 keeps 0 (the lower index wins every tie)', () => {
    for (const row of keptRows(nablaMaskSync(q, k, { threshold: 0.75, ...CPU }))) expect(row).toEqual([0, 1, 2, 3]);
    for (const row of keptRows(nablaMaskSync(q, k, { threshold: 0.25, ...CPU }))) expect(row).toEqual([0, 1]);
    for (const row of keptRows(nablaMaskSync(q, k, { threshold: 0.1, ...CPU }))) expect(row).toEqual([0]);
  });

  test('topk 0.5 keeps floor(0.5 * 4) = 2 blocks: the lower indices 0, 1', () => {
    for (const row of keptRows(nablaMaskSync(q, k, { threshold: 0.5, method: 'topk', ...CPU })))
      expect(row).toEqual([0, 1]);
    for (const row of keptRows(nablaMaskSync(q, k, { threshold: 0.3, method: 'topk', ...CPU })))
      expect(row).toEqual([0]);
  });
});

describe('large logits', () => {
  // q, k = 10 +- 0.5 at D = 64: pooled logits are about 64 * 100 / 8 = 800, beyond exp's range
  // (e^709 is the largest double), while their spread within a row is only a few units.
  const dims: [number, number, number, number] = [1, 2, 16 * 64, 64];
  const q = filled(dims, 10, 0.5, 31);
  const k = filled(dims, 10, 0.5, 32);

  test('the map is the max-subtracted softmax and the mask equals the fp64 reference', () => {
    const threshold = 0.7;
    const mask = nablaMaskSync(q, k, { threshold, returnMap: true, ...CPU });
    const ref = refMask(q.data, k.data, { B: 1, H: 2, S: dims[2], D: 64 }, dims[2], { threshold });
    for (const p of mask.map!) expect(Number.isFinite(p)).toBe(true);
    // fp32 pooling moves logits of ~800 by ~1e-4, so probabilities agree to about that
    expect(relMaxError(mask.map!, ref.prob)).toBeLessThan(1e-3);
    const dense = mask.toDense();
    let mismatches = 0;
    for (let i = 0; i < dense.length; i++)
      if (dense[i] !== ref.dense[i] && Math.abs(ref.runningAt[i] - (1 - threshold)) > 1e-3) mismatches++;
    expect(mismatches).toBe(0);
    // the case is not degenerate: the reference keeps several blocks in most rows
    const counts = keptRows(mask).map((row) => row.length);
    expect(counts.filter((c) => c >= 2).length).toBeGreaterThan(counts.length / 2);
  });
});

describe('tiny threshold', () => {
  // thr = 1e-30: 1 - thr rounds to 1 in fp64, and the running sum of a row's probabilities ends
  // just below 1 in many rows; "keep at least one block" must still keep the largest.
  const dims: [number, number, number, number] = [2, 8, 32 * 64, 16];
  const q = filled(dims, 0, 1, 41);
  const k = filled(dims, 0, 1, 42);

  test('every row keeps at least its most probable block', () => {
    const mask = nablaMaskSync(q, k, { threshold: 1e-30, returnMap: true, ...CPU });
    const nk = dims[2] / 64;
    expect(mask.kvCounts.length).toBe(512);
    keptRows(mask).forEach((row, r) => {
      expect(row.length).toBeGreaterThanOrEqual(1);
      const p = mask.map!.subarray(r * nk, (r + 1) * nk);
      const best = p.indexOf(Math.max(...p));
      expect(row).toContain(best);
    });
  });
});

describe('an empty row writes zeros over whatever the output held', () => {
  // The native op is called directly with an output full of NaN (all bits set), as a reused or
  // device-provided buffer may be: rows with no kept block must come back as zeros, the others as
  // attention over their kept blocks.
  const B = 1,
    H = 2,
    S = 4 * 64,
    nq = S / 64,
    nk = S / 64;
  // rows 0, 3, 5 empty; the others keep a few blocks (ascending, dropped ids after them)
  const keep: number[][] = [[], [0, 2], [1], [], [0, 1, 2, 3], [], [3], [1, 2]];
  const kvCounts = Int32Array.from(keep, (row) => row.length);
  const kvIndices = new Int32Array(B * H * nq * nk);
  const dense = new Uint8Array(B * H * nq * nk);
  keep.forEach((row, r) => {
    const dropped = [...Array(nk).keys()].filter((j) => !row.includes(j));
    kvIndices.set([...row, ...dropped], r * nk);
    for (const j of row) dense[r * nk + j] = 1;
  });

  interface Run {
    type: DType;
    D: number;
    Dv: number;
    backend: 'cpu' | 'cuda';
    kernel: 'auto' | 'fast' | 'fast2' | 'simple';
    async: boolean;
  }

  async function check({ type, D, Dv, backend, kernel, async }: Run) {
    const q = cast(tensor(randn(B * H * S * D, 51), [B, H, S, D]), type);
    const k = cast(tensor(randn(B * H * S * D, 52), [B, H, S, D]), type);
    const v = cast(tensor(randn(B * H * S * Dv, 53), [B, H, S, Dv]), type);
    const outElems = B * H * S * Dv;
    const Storage = type === 'float32' ? Float32Array : Uint16Array;
    const host = new Storage(outElems).fill(type === 'float32' ? NaN : 0xffff);
    const device = backend === 'cuda' ? new native.DeviceBuffer(0, host.byteLength) : undefined;
    device?.fill(0xff);
    const scale = 1 / Math.sqrt(D);
    const args = {
      q: q.data,
      k: k.data,
      v: v.data,
      out: device ?? host,
      dtype: DTYPE_CODE[type],
      batch: B,
      heads: H,
      seqQ: S,
      seqKv: S,
      headDim: D,
      valueDim: Dv,
      scale,
      kernel,
      kvCounts,
      kvIndices,
      backend,
      device: 0,
    };
    if (async) await native.attention(args, true);
    else native.attention(args, false);
    if (device) {
      device.download(host, false);
      device.dispose();
    }
    const out = toFloat32Array({ type, dims: [B, H, S, Dv], data: host });
    const ref = refAttention(
      toFloat32Array(q),
      toFloat32Array(k),
      toFloat32Array(v),
      { B, H, S, D },
      S,
      Dv,
      scale,
      dense,
    );
    keep.forEach((row, r) => {
      const rowOut = out.subarray(r * 64 * Dv, (r + 1) * 64 * Dv);
      const rowRef = ref.subarray(r * 64 * Dv, (r + 1) * 64 * Dv);
      if (row.length === 0) expect(rowOut.every((x) => x === 0)).toBe(true);
      else expect(relMaxError(rowOut, rowRef)).toBeLessThan(type === 'float32' ? 2e-5 : 1e-2);
    });
  }

  for (const async of [false, true])
    for (const type of ['float32', 'float16', 'bfloat16'] as const)
      test(`cpu ${type} ${async ? 'async' : 'sync'}`, () =>
        check({ type, D: 16, Dv: 24, backend: 'cpu', kernel: 'auto', async }));

  // the same on a device output (CUDA machines only): the simple kernel, and the tensor-core ones
  const cudaTest = backends().cuda ? test : test.skip;
  if (!backends().cuda) test.skip(`CUDA cases: skipped, ${backends().reason ?? 'no CUDA device'}`, () => undefined);
  cudaTest('cuda float32, simple kernel', () =>
    check({ type: 'float32', D: 16, Dv: 24, backend: 'cuda', kernel: 'simple', async: false }),
  );
  cudaTest('cuda float16, fast kernel', () =>
    check({ type: 'float16', D: 64, Dv: 64, backend: 'cuda', kernel: 'fast', async: false }),
  );
  cudaTest('cuda bfloat16, fast kernel, async', () =>
    check({ type: 'bfloat16', D: 128, Dv: 128, backend: 'cuda', kernel: 'fast', async: true }),
  );
  cudaTest('cuda float16, fast2 kernel', () =>
    check({ type: 'float16', D: 64, Dv: 64, backend: 'cuda', kernel: 'fast2', async: false }),
  );
  cudaTest('cuda bfloat16, fast2 kernel, async', () =>
    check({ type: 'bfloat16', D: 128, Dv: 128, backend: 'cuda', kernel: 'fast2', async: true }),
  );
});
