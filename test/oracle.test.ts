// The oracle shared by the jest suites and bench/gpu-check.js (lib/oracle), checked on the CPU so
// that the GPU checks built on it are sound before any GPU runs them.
import {
  BlockMask,
  attentionSync,
  bfloat16ToFloat,
  blockSparseAttentionSync,
  cast,
  floatToBfloat16,
  nablaMaskSync,
  tensor,
  tileOrder,
  toFloat32Array,
} from '../lib';
import { attentionFlops } from '../lib/flops';
import {
  CUT_TOLERANCE,
  ascendingRunningSums,
  compareMasks,
  maxAbsDiff,
  nonZeroInEmptyRows,
  normalisedMse,
  poisonedAttentionSync,
  randomBlockMask,
  refAttention,
} from '../lib/oracle';
import { median, summarize } from '../lib/timing';
import { randn, tileCoordinates } from '../lib/synthetic';
import { CPU, qkCase } from './helpers';

describe('comparisons', () => {
  test('normalisedMse = sum (a-b)^2 / sum b^2; NaN anywhere reads as Infinity', () => {
    expect(normalisedMse([1, 2, 4], [1, 2, 3])).toBeCloseTo(1 / 14, 15);
    expect(normalisedMse([0, 0], [0, 0])).toBe(0);
    expect(normalisedMse([NaN, 2], [1, 2])).toBe(Infinity);
  });

  test('maxAbsDiff is the largest |a - b|; NaN anywhere reads as Infinity', () => {
    expect(maxAbsDiff([1, 5, -3], [1, 2, -1])).toBe(3);
    expect(maxAbsDiff([1, NaN, 0], [1, 2, 9])).toBe(Infinity);
  });

  test('ascending running sums: equal values put the higher index first', () => {
    expect(Array.from(ascendingRunningSums([0.5, 0.25, 0.25]))).toEqual([1, 0.5, 0.25]);
  });
});

describe('compareMasks: masks may differ only at the cut', () => {
  const { q, k } = qkCase(1, 2, [4, 16, 16], 32, 7);
  const threshold = 0.7;
  const cpu = nablaMaskSync(q, k, { threshold, returnMap: true, ...CPU });
  const nk = cpu.dims[3];
  const map = cpu.map as Float32Array;

  /** The block of row 0 whose running sum is nearest to / farthest from the cut 1 - thr. */
  function blockByDistance(nearest: boolean): number {
    const running = ascendingRunningSums(map.subarray(0, nk));
    const distance = Array.from(running, (x) => Math.abs(x - (1 - threshold)));
    const best = nearest ? Math.min(...distance) : Math.max(...distance);
    return distance.indexOf(best);
  }

  test('the same mask: nothing differs', () => {
    expect(compareMasks(cpu.toDense(), cpu, 'cdf', threshold)).toEqual({ differing: 0, offCut: [] });
  });

  test('a block flipped far from the cut is reported; one at the cut (within the tolerance) is not', () => {
    const far = cpu.toDense();
    const j = blockByDistance(false);
    far[j] ^= 1;
    expect(compareMasks(far, cpu, 'cdf', threshold)).toEqual({ differing: 1, offCut: [{ row: 0, block: j }] });
    // the cut moved onto a block: compare at the threshold that puts that block exactly at the cut
    const near = blockByDistance(true);
    const running = ascendingRunningSums(map.subarray(0, nk));
    const atCut = cpu.toDense();
    atCut[near] ^= 1;
    const thrAtBlock = 1 - running[near] + CUT_TOLERANCE.cdf / 2;
    expect(compareMasks(atCut, cpu, 'cdf', thrAtBlock).offCut).toEqual([]);
  });

  test('topk: a swap of two blocks of unequal probability is reported', () => {
    const top = nablaMaskSync(q, k, { threshold: 0.5, method: 'topk', returnMap: true, ...CPU });
    const dense = top.toDense();
    const row = Array.from((top.map as Float32Array).subarray(0, nk));
    const kept = row
      .map((p, j) => [p, j])
      .filter(([, j]) => dense[j])
      .sort((a, b) => b[0] - a[0]);
    const dropped = row
      .map((p, j) => [p, j])
      .filter(([, j]) => !dense[j])
      .sort((a, b) => a[0] - b[0]);
    const [best, worst] = [kept[0][1], dropped[0][1]];
    expect(row[best] - row[worst]).toBeGreaterThan(CUT_TOLERANCE.topk);
    dense[best] = 0;
    dense[worst] = 1;
    const d = compareMasks(dense, top, 'topk', 0.5);
    expect(d.differing).toBe(2);
    expect(d.offCut.map((x) => x.block).sort((a, b) => a - b)).toEqual([best, worst].sort((a, b) => a - b));
  });

  test('needs the block map of the mask it compares with', () => {
    const noMap = nablaMaskSync(q, k, { threshold, ...CPU });
    expect(() => compareMasks(noMap.toDense(), noMap, 'cdf', threshold)).toThrow(/returnMap/);
  });
});

describe('check masks', () => {
  test("row 0 keeps nothing, every other row keeps at least one block; the counts are the mask's", () => {
    for (const dims of [
      [1, 1, 2, 2],
      [2, 3, 4, 5],
      [1, 1, 2, 80],
    ] as const) {
      const m = randomBlockMask(dims, 3);
      const [B, H, nq, nk] = dims;
      const perRow = Array.from({ length: B * H * nq }, (_, r) =>
        m.dense.subarray(r * nk, (r + 1) * nk).reduce((a, b) => a + b, 0),
      );
      expect(perRow[0]).toBe(0);
      expect(perRow.slice(1).every((n) => n >= 1)).toBe(true);
      expect(m.emptyRows).toBe(1);
      expect(m.maxKeptPerRow).toBe(Math.max(...perRow));
      expect(m.density).toBe(perRow.reduce((a, b) => a + b, 0) / m.dense.length);
      expect(Array.from(m.mask.toDense())).toEqual(Array.from(m.dense));
    }
    // 80 key blocks kept with probability 1/2: rows of more than 32 kept blocks
    expect(randomBlockMask([1, 1, 2, 80], 3).maxKeptPerRow).toBeGreaterThan(32);
  });

  test('nonZeroInEmptyRows counts only elements of the rows that keep no block', () => {
    const m = randomBlockMask([1, 1, 2, 2], 1);
    const out = new Float32Array(128 * 4).fill(1); // [1, 1, 128, Dv=4]: rows 0..63 belong to query block 0
    expect(nonZeroInEmptyRows(out, m.dense, m.mask.dims, 4)).toBe(64 * 4);
    out.fill(0, 0, 64 * 4);
    expect(nonZeroInEmptyRows(out, m.dense, m.mask.dims, 4)).toBe(0);
  });
});

describe('the fp64 reference and the poisoned-output runner', () => {
  const c = { B: 1, H: 2, Sq: 128, Skv: 192, D: 40, Dv: 24 };
  const q = tensor(randn(c.B * c.H * c.Sq * c.D, 1), [c.B, c.H, c.Sq, c.D]);
  const k = tensor(randn(c.B * c.H * c.Skv * c.D, 2), [c.B, c.H, c.Skv, c.D]);
  const v = tensor(randn(c.B * c.H * c.Skv * c.Dv, 3), [c.B, c.H, c.Skv, c.Dv]);
  const { dense, mask } = randomBlockMask([c.B, c.H, c.Sq / 64, c.Skv / 64], 4);
  const dims = { B: c.B, H: c.H, S: c.Sq, D: c.D };
  const scale = 1 / Math.sqrt(c.D);

  test.each(['float32', 'bfloat16'] as const)(
    "%s: the runner gives the library op's output, sparse and dense, on the CPU",
    (type) => {
      const [qt, kt, vt] = [q, k, v].map((t) => cast(t, type));
      const sparse = poisonedAttentionSync(qt, kt, vt, mask, { backend: 'cpu' });
      expect(Array.from(sparse)).toEqual(Array.from(toFloat32Array(blockSparseAttentionSync(qt, kt, vt, mask, CPU))));
      expect(nonZeroInEmptyRows(sparse, dense, mask.dims, c.Dv)).toBe(0);
      const full = poisonedAttentionSync(qt, kt, vt, undefined, { backend: 'cpu', scale: 0.5 });
      expect(Array.from(full)).toEqual(Array.from(toFloat32Array(attentionSync(qt, kt, vt, { ...CPU, scale: 0.5 }))));
    },
  );

  test("a ragged grid: the runner follows the mask's grid, writes every real token and matches the op", () => {
    const grid = [1, 9, 9] as const; // blocks of 64, 8, 8 and 1 tokens
    const S = 81;
    const [qr, kr, vr] = [5, 6, 7].map((seed) => tensor(randn(2 * S * 16, seed), [1, 2, S, 16]));
    const m = nablaMaskSync(qr, kr, { ...CPU, grid, threshold: 0.5 });
    const out = poisonedAttentionSync(qr, kr, vr, m, { backend: 'cpu' });
    expect(out.every(Number.isFinite)).toBe(true);
    expect(Array.from(out)).toEqual(Array.from(toFloat32Array(blockSparseAttentionSync(qr, kr, vr, m, CPU))));
  });

  test('the runner checks its arguments like the library', () => {
    expect(() =>
      poisonedAttentionSync(q, k, tensor(new Float32Array(8), [1, 1, 1, 8]), mask, { backend: 'cpu' }),
    ).toThrow(RangeError);
  });

  test('fp64 reference equals the CPU backend in fp32; the naive fp32 arithmetic is fp32-close, the naive bf16 one is not', () => {
    const [qf, kf, vf] = [q, k, v].map(toFloat32Array);
    const ref = refAttention(qf, kf, vf, dims, c.Skv, c.Dv, scale, dense);
    const cpu = toFloat32Array(blockSparseAttentionSync(q, k, v, mask, CPU));
    expect(maxAbsDiff(cpu, ref)).toBeLessThan(1e-5);
    const naive32 = refAttention(qf, kf, vf, dims, c.Skv, c.Dv, scale, dense, Math.fround);
    expect(maxAbsDiff(naive32, ref)).toBeLessThan(1e-5);
    const bf16 = (x: number) => bfloat16ToFloat(floatToBfloat16(x));
    const naive16 = refAttention(qf, kf, vf, dims, c.Skv, c.Dv, scale, dense, bf16);
    expect(maxAbsDiff(naive16, ref)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(naive16, ref)).toBeLessThan(0.05);
    // rows with no kept block are zeros in every arithmetic
    expect(nonZeroInEmptyRows(naive16, dense, mask.dims, c.Dv)).toBe(0);
  });
});

describe('one FLOP count, one median, one tile order', () => {
  test('attentionFlops = 2*B*H*Sq*Skv*(D+Dv)*density: 4*...*D when Dv = D', () => {
    const size = { batch: 2, heads: 3, seqQ: 128, seqKv: 192, headDim: 64, valueDim: 64 };
    expect(attentionFlops(size)).toBe(4 * 2 * 3 * 128 * 192 * 64);
    expect(attentionFlops({ ...size, valueDim: 32 }, 0.5)).toBe(2 * 2 * 3 * 128 * 192 * (64 + 32) * 0.5);
  });

  test('median: the middle value, or the mean of the middle two; summarize sorts first', () => {
    expect(median([1, 2, 9])).toBe(2);
    expect(median([1, 2, 4, 9])).toBe(3);
    expect(summarize([9, 1, 4, 2])).toEqual({ median: 3, min: 1, max: 9 });
  });

  test('tileCoordinates: (t, y, x) of each tile-order position, per the formula of lib/tiles.ts', () => {
    const grid = [2, 16, 24] as const;
    const coords = tileCoordinates(grid);
    const order = tileOrder(grid);
    for (let pos = 0; pos < order.length; pos++) {
      const [t, y, x] = coords.subarray(pos * 3, pos * 3 + 3);
      expect((t * 16 + y) * 24 + x).toBe(order[pos]);
      expect(t * 16 * 24 + (Math.floor(y / 8) * 3 + Math.floor(x / 8)) * 64 + (y % 8) * 8 + (x % 8)).toBe(pos);
    }
  });
});

test('BlockMask round trip of a check mask keeps its lists', () => {
  const m = randomBlockMask([1, 2, 3, 4], 9);
  const again = BlockMask.fromKvBlocks(m.mask.kvCounts, m.mask.kvIndices, m.mask.dims);
  expect(Array.from(again.toDense())).toEqual(Array.from(m.dense));
});
