// Ragged token grids (edge tiles smaller than 8x8) and frame-causal masks on the CPU, against the
// float64 reference with a token -> block map (lib/oracle/reference.ts) and the layout formula of
// docs/nabla.md section 2.
import {
  BlockMask,
  attentionSync,
  blockPoolSync,
  blockSparseAttentionSync,
  fromFloat32,
  fromTiles,
  nablaAttentionSync,
  nablaMaskSync,
  tensor,
  tileOrder,
  toFloat32,
  toTiles,
} from '../lib';
import { blockLength, blockStart, tileLayout, tokenBlocks } from '../lib/layout';
import { maxAbsDiff } from '../lib/oracle';
import { TokenGrid } from '../lib/shapes';
import { CPU, causalChecks, qkCase } from './helpers';
import { randn, refAttention, refMask, refPool } from './reference';

type Grid = [number, number, number];

/** Token grids: 1-token blocks (1x9x9: last column 8x1, corner 1x1), one tile smaller than 8x8, a 720p-like edge. */
const GRIDS: Grid[] = [
  [1, 9, 9],
  [1, 3, 5],
  [2, 13, 20],
  [3, 5, 17],
  [2, 16, 16],
];

const dimsOf = (grid: Grid, B: number, H: number, D: number) => ({
  B,
  H,
  S: grid[0] * grid[1] * grid[2],
  D,
  blocks: tokenBlocks(tileLayout(grid)),
});

describe('layout', () => {
  test('blocks partition the sequence in order; lengths are (rows in band) x (cols in tile)', () => {
    for (const grid of GRIDS) {
      const l = tileLayout(grid);
      expect(l.blocks).toBe(grid[0] * Math.ceil(grid[1] / 8) * Math.ceil(grid[2] / 8));
      let next = 0;
      for (let b = 0; b < l.blocks; b++) {
        expect(blockStart(l, b)).toBe(next);
        const r = Math.floor((b % (l.tilesH * l.tilesW)) / l.tilesW),
          c = b % l.tilesW;
        expect(blockLength(l, b)).toBe(Math.min(8, grid[1] - 8 * r) * Math.min(8, grid[2] - 8 * c));
        next += blockLength(l, b);
      }
      expect(next).toBe(grid[0] * grid[1] * grid[2]);
    }
  });

  test('1x9x9 has blocks of 64, 8, 8 and 1 tokens', () => {
    const l = tileLayout([1, 9, 9]);
    expect([0, 1, 2, 3].map((b) => blockLength(l, b))).toEqual([64, 8, 8, 1]);
    expect([0, 1, 2, 3].map((b) => blockStart(l, b))).toEqual([0, 64, 72, 80]);
  });
});

describe('tileOrder on ragged grids', () => {
  test('each block is one tile of one frame, its tokens row-major', () => {
    for (const grid of GRIDS) {
      const [T, Ht, Wt] = grid;
      const order = tileOrder(grid);
      const l = tileLayout(grid);
      expect([...order].sort((a, b) => a - b)).toEqual([...Array(T * Ht * Wt).keys()]);
      for (let b = 0; b < l.blocks; b++) {
        const f = Math.floor(b / (l.tilesH * l.tilesW)),
          r = Math.floor((b % (l.tilesH * l.tilesW)) / l.tilesW),
          c = b % l.tilesW;
        const cols = Math.min(8, Wt - 8 * c);
        for (let n = 0; n < blockLength(l, b); n++) {
          const y = 8 * r + Math.floor(n / cols),
            x = 8 * c + (n % cols);
          expect(order[blockStart(l, b) + n]).toBe((f * Ht + y) * Wt + x);
        }
      }
    }
  });

  test('toTiles and fromTiles invert each other', () => {
    for (const grid of GRIDS) {
      const S = grid[0] * grid[1] * grid[2];
      const x = tensor(
        Float32Array.from({ length: 2 * S * 3 }, (_, i) => i),
        [2, S, 3],
      );
      const tiled = toTiles(x, grid);
      const order = tileOrder(grid);
      for (let o = 0; o < 2; o++)
        for (let i = 0; i < S; i++)
          for (let c = 0; c < 3; c++) expect(tiled.data[(o * S + i) * 3 + c]).toBe(x.data[(o * S + order[i]) * 3 + c]);
      expect(Array.from(fromTiles(tiled, grid).data)).toEqual(Array.from(x.data));
    }
  });
});

describe('blockPool on ragged grids', () => {
  test("is the exact mean of each block's own tokens", () => {
    for (const grid of GRIDS) {
      const { q } = qkCase(1, 2, grid, 16, 3);
      const pooled = blockPoolSync(q, { grid, ...CPU });
      const dims = dimsOf(grid, 1, 2, 16);
      expect(pooled.dims).toEqual([1, 2, tileLayout(grid).blocks, 16]);
      const ref = refPool(q.data, dims);
      // fp64 sums rounded once: within one fp32 rounding of the reference
      for (let i = 0; i < ref.length; i++)
        expect(Math.abs(pooled.data[i] - ref[i])).toBeLessThanOrEqual(Math.abs(ref[i]) * 2 ** -23 + 1e-30);
    }
  });

  test('a 1-token block is that token', () => {
    const { q } = qkCase(1, 1, [1, 9, 9], 8, 5);
    const pooled = blockPoolSync(q, { grid: [1, 9, 9], ...CPU });
    expect(Array.from(pooled.data.subarray(3 * 8, 4 * 8))).toEqual(Array.from(q.data.subarray(80 * 8, 81 * 8)));
  });
});

describe('nablaMask on ragged grids equals the reference', () => {
  for (const grid of GRIDS)
    for (const method of ['cdf', 'topk'] as const)
      test(`grid ${grid} ${method}`, () => {
        const { q, k, blockGrid } = qkCase(2, 2, grid, 16, 11);
        const threshold = 0.6;
        const mask = nablaMaskSync(q, k, { grid, threshold, method, ...CPU });
        const nb = tileLayout(grid).blocks;
        expect(mask.dims).toEqual([2, 2, nb, nb]);
        expect(mask.grid).toEqual(grid);
        const ref = refMask(q.data, k.data, dimsOf(grid, 2, 2, 16), grid[0] * grid[1] * grid[2], {
          threshold,
          method,
          blockGrid,
        });
        expect(Array.from(mask.toDense())).toEqual(Array.from(ref.dense));
      });

  test('with STA and documents', () => {
    const grid: Grid = [4, 13, 20];
    const { q, k, blockGrid } = qkCase(1, 2, grid, 16, 9);
    const sta: Grid = [1, 3, 1];
    const frames = [0, 1, 4];
    const mask = nablaMaskSync(q, k, { grid, threshold: 0.4, sta, frames, ...CPU });
    const ref = refMask(q.data, k.data, dimsOf(grid, 1, 2, 16), 4 * 13 * 20, {
      threshold: 0.4,
      blockGrid,
      sta,
      frames,
    });
    expect(Array.from(mask.toDense())).toEqual(Array.from(ref.dense));
  });
});

describe('frame-causal masks', () => {
  const grid: Grid = [4, 11, 16];
  const l = tileLayout(grid);
  const plane = l.tilesH * l.tilesW;
  const { frameOf, futureKept, expectCausalMap } = causalChecks(grid);

  const variants: { name: string; opts: { sta?: Grid; frames?: number[]; method?: 'cdf' | 'topk' } }[] = [
    { name: 'cdf', opts: {} },
    { name: 'topk', opts: { method: 'topk' } },
    { name: 'STA', opts: { sta: [3, 3, 3] } },
    { name: 'documents', opts: { frames: [0, 2, 4] } },
    { name: 'topk, documents and STA', opts: { method: 'topk', frames: [0, 1, 4], sta: [5, 1, 1] } },
  ];
  for (const v of variants)
    test(`${v.name}: equals the reference, keeps no future frame`, () => {
      const { q, k, blockGrid } = qkCase(1, 2, grid, 16, 21);
      const threshold = 0.5;
      const mask = nablaMaskSync(q, k, { grid, threshold, causal: true, ...v.opts, ...CPU });
      const ref = refMask(q.data, k.data, dimsOf(grid, 1, 2, 16), 4 * 11 * 16, {
        threshold,
        blockGrid,
        causal: true,
        ...v.opts,
      });
      expect(Array.from(mask.toDense())).toEqual(Array.from(ref.dense));
      expect(futureKept(mask)).toBe(0);
      // without causal, STA and the rule do keep future frames here: the property is not vacuous
      const open = nablaMaskSync(q, k, { grid, threshold, ...v.opts, ...CPU });
      expect(futureKept(open)).toBeGreaterThan(0);
    });

  test('topk keeps max(1, floor(thr * visible blocks)) per row', () => {
    const { q, k } = qkCase(1, 1, grid, 16, 4);
    const threshold = 0.5;
    const counts = nablaMaskSync(q, k, { grid, threshold, method: 'topk', causal: true, ...CPU }).kvCounts;
    for (let i = 0; i < l.blocks; i++)
      expect(counts[i]).toBe(Math.max(1, Math.floor(threshold * (frameOf(i) + 1) * plane)));
  });

  test('the pooled softmax of a row sums to 1 over its visible blocks only', () => {
    const { q, k } = qkCase(1, 1, grid, 16, 6);
    const mask = nablaMaskSync(q, k, { grid, threshold: 0.5, causal: true, returnMap: true, ...CPU });
    const map = mask.map as Float32Array;
    expectCausalMap(map);
  });
});

describe('attention on ragged grids equals the reference', () => {
  const kernels = ['scalar', 'avx2'] as const;
  for (const grid of GRIDS)
    for (const cpuKernel of kernels)
      test(`grid ${grid} ${cpuKernel}: dense and block-sparse`, () => {
        const S = grid[0] * grid[1] * grid[2];
        const [B, H, D, Dv] = [1, 2, 16, 12];
        const q = tensor(randn(B * H * S * D, 1), [B, H, S, D]);
        const k = tensor(randn(B * H * S * D, 2), [B, H, S, D]);
        const v = tensor(randn(B * H * S * Dv, 3), [B, H, S, Dv]);
        const dims = dimsOf(grid, B, H, D);
        const scale = 1 / Math.sqrt(D);
        const dense = attentionSync(q, k, v, { grid, cpuKernel, ...CPU });
        expect(maxAbsDiff(dense.data, refAttention(q.data, k.data, v.data, dims, S, Dv, scale))).toBeLessThan(1e-5);
        // a sparse mask on the grid (about 2 in 5 blocks, the first row empty) drives the same kernel
        const nb = tileLayout(grid).blocks;
        const keep = Uint8Array.from({ length: B * H * nb * nb }, (_, i) => ((i * 7 + 3) % 5 < 2 ? 1 : 0));
        for (let r = 0; r < B * H * nb; r++)
          if (!keep.subarray(r * nb, (r + 1) * nb).includes(1)) keep[r * nb + (r % nb)] = 1;
        keep.fill(0, 0, nb);
        const out = blockSparseAttentionSync(q, k, v, BlockMask.fromDense(keep, [B, H, nb, nb], grid), {
          cpuKernel,
          ...CPU,
        });
        const ref = refAttention(q.data, k.data, v.data, dims, S, Dv, scale, keep);
        expect(maxAbsDiff(out.data, ref)).toBeLessThan(1e-5);
        // the empty first query block writes exact zeros
        expect(Array.from(out.data.subarray(0, blockLength(tileLayout(grid), 0) * Dv)).every((x) => x === 0)).toBe(
          true,
        );
      });

  test('fp16 and bf16 on a ragged grid', () => {
    const grid: Grid = [2, 9, 13];
    const S = 2 * 9 * 13;
    for (const type of ['float16', 'bfloat16'] as const)
      for (const cpuKernel of kernels) {
        const mk = (seed: number, d: number) => tensor(randn(S * d, seed), [1, 1, S, d]);
        const [q32, k32, v32] = [mk(1, 16), mk(2, 16), mk(3, 16)];
        const q = { type, dims: q32.dims, data: fromFloat32(q32.data, type) };
        const k = { type, dims: k32.dims, data: fromFloat32(k32.data, type) };
        const v = { type, dims: v32.dims, data: fromFloat32(v32.data, type) };
        const got = toFloat32(attentionSync(q, k, v, { grid, cpuKernel, ...CPU }).data, type);
        const ref = refAttention(
          toFloat32(q.data, type),
          toFloat32(k.data, type),
          toFloat32(v.data, type),
          dimsOf(grid, 1, 1, 16),
          S,
          16,
          0.25,
        );
        expect(maxAbsDiff(got, ref)).toBeLessThan(type === 'float16' ? 4e-3 : 3e-2);
      }
  });

  test('nablaAttention: the mask carries the grid into attention, causal included', () => {
    const grid: Grid = [3, 9, 9];
    const { q, k } = qkCase(1, 2, grid, 16, 8);
    const S = 3 * 81;
    const v = tensor(randn(2 * S * 16, 5), [1, 2, S, 16]);
    const { output, mask } = nablaAttentionSync(q, k, v, { grid, threshold: 0.5, causal: true, ...CPU });
    expect(mask.grid).toEqual(grid);
    const ref = refAttention(q.data, k.data, v.data, dimsOf(grid, 1, 2, 16), S, 16, 0.25, mask.toDense());
    expect(maxAbsDiff(output.data, ref)).toBeLessThan(1e-5);
  });

  test('a 1-token query block that keeps nothing writes zeros into its one row only', () => {
    const grid: Grid = [1, 9, 9];
    const S = 81;
    const q = tensor(randn(S * 8, 1), [1, 1, S, 8]);
    const k = tensor(randn(S * 8, 2), [1, 1, S, 8]);
    const v = tensor(randn(S * 8, 3), [1, 1, S, 8]);
    // block 3 (the 1x1 corner, token 80) keeps nothing; the others keep only the 1-token key block
    const dense = Uint8Array.from({ length: 16 }, (_, i) => (i < 12 && i % 4 === 3 ? 1 : 0));
    for (const cpuKernel of ['scalar', 'avx2'] as const) {
      const out = blockSparseAttentionSync(q, k, v, BlockMask.fromDense(dense, [1, 1, 4, 4], grid), {
        cpuKernel,
        ...CPU,
      });
      // one key: every query of blocks 0..2 outputs that key's value exactly (softmax of one score)
      for (let i = 0; i < 80; i++)
        expect(Array.from(out.data.subarray(i * 8, i * 8 + 8))).toEqual(Array.from(v.data.subarray(80 * 8, 81 * 8)));
      expect(Array.from(out.data.subarray(80 * 8))).toEqual(new Array(8).fill(0));
    }
  });
});

describe('bad input', () => {
  const grid: TokenGrid = [1, 9, 9];
  const { q, k } = qkCase(1, 1, [1, 9, 9], 8, 1);
  const v = tensor(randn(81 * 8, 3), [1, 1, 81, 8]);

  test('a grid whose product is not S', () => {
    expect(() => nablaMaskSync(q, k, { grid: [1, 9, 10], ...CPU })).toThrow(RangeError);
    expect(() => nablaMaskSync(q, k, { grid: [1, 9, 10], ...CPU })).toThrow(
      /81 tokens .* for grid but received \[1, 9, 10\] = 90 tokens/,
    );
    expect(() => blockPoolSync(q, { grid: [1, 8, 8], ...CPU })).toThrow(
      /81 tokens .* for grid but received \[1, 8, 8\] = 64 tokens/,
    );
    expect(() => attentionSync(q, k, v, { grid: [3, 3, 3], ...CPU })).toThrow(/81 tokens .* for grid but received/);
  });

  test('a grid on a q/k pair whose lengths differ', () => {
    const k2 = tensor(randn(64 * 8, 2), [1, 1, 64, 8]);
    expect(() => nablaMaskSync(q, k2, { grid, ...CPU })).toThrow(RangeError);
    expect(() => nablaMaskSync(q, k2, { grid, ...CPU })).toThrow(
      /81 tokens like q .* for k\.dims but received 64 tokens/,
    );
    const v2 = tensor(randn(64 * 8, 3), [1, 1, 64, 8]);
    expect(() => attentionSync(q, k2, v2, { grid, ...CPU })).toThrow(/for k\.dims/);
  });

  test('causal without a grid, or not a boolean', () => {
    const q64 = tensor(randn(128 * 8, 1), [1, 1, 128, 8]);
    expect(() => nablaMaskSync(q64, q64, { causal: true, ...CPU })).toThrow(RangeError);
    expect(() => nablaMaskSync(q64, q64, { causal: true, ...CPU })).toThrow(
      /with a token grid .* for causal but received causal: true without a grid/,
    );
    expect(() => nablaMaskSync(q, k, { grid, causal: 1 as never, ...CPU })).toThrow(TypeError);
    expect(() => nablaMaskSync(q, k, { grid, causal: 1 as never, ...CPU })).toThrow(
      /a boolean for causal but received 1/,
    );
  });

  test('BlockMask.fromDense refuses a grid of another block count', () => {
    expect(() => BlockMask.fromDense(new Uint8Array(9), [1, 1, 3, 3], grid)).toThrow(RangeError);
    expect(() => BlockMask.fromDense(new Uint8Array(9), [1, 1, 3, 3], grid)).toThrow(
      /3 x 3 blocks .* for grid but received \[1, 9, 9\] \(4 blocks\)/,
    );
  });

  test("a mask whose dims do not match the grid's block count", () => {
    const wrong = BlockMask.fromDense(new Uint8Array(4), [1, 1, 2, 2]);
    // without a grid on the mask, S = 81 is no multiple of 64
    expect(() => blockSparseAttentionSync(q, k, v, wrong, CPU)).toThrow(/multiple of 64/);
    const q2 = tensor(randn(2 * 81 * 8, 1), [1, 1, 162, 8]);
    const m1 = nablaMaskSync(q, k, { grid, ...CPU });
    // the mask's grid (81 tokens) against 162-token tensors
    expect(() => blockSparseAttentionSync(q2, q2, q2, m1, CPU)).toThrow(
      /162 tokens .* for mask\.grid but received \[1, 9, 9\] = 81 tokens/,
    );
    // a grid with the same token count but another block count
    const m2 = nablaMaskSync(tensor(q.data, [1, 1, 81, 8]), tensor(k.data, [1, 1, 81, 8]), {
      grid: [1, 1, 81],
      ...CPU,
    });
    expect(m2.dims).toEqual([1, 1, 11, 11]);
    const m3 = nablaMaskSync(q, k, { grid: [1, 81, 1], ...CPU });
    expect(m3.dims).toEqual([1, 1, 11, 11]);
    const fromOther = nablaMaskSync(
      tensor(randn(2 * 81 * 8, 4), [2, 1, 81, 8]),
      tensor(randn(2 * 81 * 8, 5), [2, 1, 81, 8]),
      { grid, ...CPU },
    );
    expect(() => blockSparseAttentionSync(q, k, v, fromOther, CPU)).toThrow(RangeError);
    expect(() => blockSparseAttentionSync(q, k, v, fromOther, CPU)).toThrow(
      /\[1, 1, 4, 4\] .* for mask\.dims but received \[2, 1, 4, 4\]/,
    );
  });

  /** The error `fn` throws; native errors come from another realm under jest: compare constructor names. */
  function thrown(fn: () => unknown): Error {
    try {
      fn();
    } catch (e) {
      return e as Error;
    }
    throw new Error('nothing thrown');
  }

  test('the native layer checks tokenGrid itself', () => {
    const { native } = jest.requireActual('../lib/native');
    const base = {
      dtype: 0,
      rows: 1,
      seq: 81,
      headDim: 8,
      x: q.data,
      out: new Float32Array(4 * 8),
      backend: 'cpu',
      device: 0,
    };
    expect(
      thrown(() => native.blockPool({ ...base, tokenGrid: Int32Array.of(1, 9, 10) }, false)).constructor.name,
    ).toBe('RangeError');
    expect(() => native.blockPool({ ...base, tokenGrid: Int32Array.of(1, 9, 10) }, false)).toThrow(
      /90 tokens .* for seq but received 81/,
    );
    expect(() => native.blockPool({ ...base, tokenGrid: Int32Array.of(1, 0, 81) }, false)).toThrow(/for tokenGrid/);
    expect(() => native.blockPool({ ...base, tokenGrid: Int32Array.of(65536, 65536, 2) }, false)).toThrow(
      /fewer than 2\^31 tokens for tokenGrid/,
    );
    expect(thrown(() => native.blockPool({ ...base, tokenGrid: [1, 9, 9] }, false)).constructor.name).toBe('TypeError');
    expect(() => native.blockPool({ ...base, tokenGrid: Int32Array.of(1, 9, 9) }, false)).not.toThrow();
  });

  test('the native mask checks causal and the grid against both sequence lengths', () => {
    const { native } = jest.requireActual('../lib/native');
    const args = (over: object) => ({
      q: new Float32Array(128 * 8),
      k: new Float32Array(128 * 8),
      dtype: 0,
      batch: 1,
      heads: 1,
      seqQ: 128,
      seqKv: 128,
      headDim: 8,
      threshold: 0.5,
      method: 'cdf',
      sta: false,
      kvCounts: new Int32Array(2),
      kvIndices: new Int32Array(4),
      backend: 'cpu',
      device: 0,
      ...over,
    });
    const noGrid = thrown(() => native.nablaMask(args({ causal: true }), false));
    expect([noGrid.constructor.name, noGrid.message]).toEqual([
      'RangeError',
      'Expected a token grid (tokenGrid) with causal: true for causal but received no tokenGrid',
    ]);
    const notBool = thrown(() => native.nablaMask(args({ causal: 'yes' }), false));
    expect(notBool.constructor.name).toBe('TypeError');
    expect(notBool.message).toMatch(/a boolean for causal/);
    const seqKv = thrown(() =>
      native.nablaMask(args({ tokenGrid: Int32Array.of(2, 8, 8), seqKv: 64, k: new Float32Array(64 * 8) }), false),
    );
    expect(seqKv.constructor.name).toBe('RangeError');
    expect(seqKv.message).toMatch(/128 tokens \(the product of tokenGrid 2 x 8 x 8\) for seqKv but received 64/);
    expect(() => native.nablaMask(args({ tokenGrid: Int32Array.of(2, 8, 8), causal: true }), false)).not.toThrow();
  });
});
