// BlockMask construction and queries.
import { BlockMask } from '../lib';
import { rng } from './reference';

function randomDense(n: number, p: number, seed: number): Uint8Array {
  const r = rng(seed);
  return Uint8Array.from({ length: n }, () => (r() < p ? 1 : 0));
}

describe('BlockMask', () => {
  const dims = [2, 3, 4, 5] as const;
  const dense = randomDense(2 * 3 * 4 * 5, 0.4, 1);

  test('fromDense round trips and lists kept ids first, then the dropped ids', () => {
    const m = BlockMask.fromDense(dense, dims);
    expect(Array.from(m.toDense())).toEqual(Array.from(dense));
    for (let r = 0; r < 24; r++) {
      const row = Array.from(m.kvIndices.subarray(r * 5, r * 5 + 5));
      expect([...row].sort()).toEqual([0, 1, 2, 3, 4]);
      const kept = [0, 1, 2, 3, 4].filter((j) => dense[r * 5 + j]);
      expect(m.kvCounts[r]).toBe(kept.length);
      expect(row.slice(0, kept.length)).toEqual(kept);
    }
  });

  test('density and per-head densities', () => {
    const m = BlockMask.fromDense(dense, dims);
    const total = dense.reduce((a, b) => a + b, 0);
    expect(m.density()).toBeCloseTo(total / dense.length, 12);
    const heads = m.headDensities();
    expect(heads.length).toBe(6);
    for (let bh = 0; bh < 6; bh++) {
      const slice = dense.subarray(bh * 20, bh * 20 + 20);
      expect(heads[bh]).toBeCloseTo(slice.reduce((a, b) => a + b, 0) / 20, 12);
    }
  });

  test('fromKvBlocks accepts unordered lists and checks them', () => {
    const kvCounts = Int32Array.of(2, 0);
    const kvIndices = Int32Array.of(3, 1, 9, 9, 0, 0, 0, 0);
    const m = BlockMask.fromKvBlocks(kvCounts, kvIndices, [1, 1, 2, 4]);
    expect(Array.from(m.kvIndices)).toEqual([1, 3, 0, 2, 0, 1, 2, 3]);
    expect(Array.from(m.toDense())).toEqual([0, 1, 0, 1, 0, 0, 0, 0]);
    expect(() => BlockMask.fromKvBlocks(Int32Array.of(5, 0), kvIndices, [1, 1, 2, 4])).toThrow(/counts in \[0, 4\].*5 at row 0/);
    expect(() => BlockMask.fromKvBlocks(Int32Array.of(3, 0), kvIndices, [1, 1, 2, 4])).toThrow(/block ids in \[0, 4\).*9 at row 0/);
    expect(() => BlockMask.fromKvBlocks(Int32Array.of(2, 0), Int32Array.of(1, 1, 0, 0, 0, 0, 0, 0), [1, 1, 2, 4])).toThrow(/distinct/);
    expect(() => BlockMask.fromKvBlocks(Int32Array.of(2), kvIndices, [1, 1, 2, 4])).toThrow(RangeError);
    expect(() => BlockMask.fromKvBlocks([2, 0] as unknown as Int32Array, kvIndices, [1, 1, 2, 4])).toThrow(TypeError);
  });

  test('fromDense checks its inputs', () => {
    expect(() => BlockMask.fromDense(dense, [2, 3, 4, 4])).toThrow(RangeError);
    expect(() => BlockMask.fromDense([1, 0] as unknown as Uint8Array, [1, 1, 1, 2])).toThrow(TypeError);
    expect(() => BlockMask.fromDense(dense, [2, 3, 4] as unknown as [number, number, number, number])).toThrow(RangeError);
    expect(() => BlockMask.fromDense(dense, [2, 3, 4.5, 5] as unknown as [number, number, number, number])).toThrow(TypeError);
  });

  test('toDevice checks the lists first: modified lists never reach a kernel', () => {
    const m = BlockMask.fromDense(dense, dims);
    m.kvCounts[0] = 1000000;
    expect(() => m.toDevice()).toThrow(/counts in \[0, 5\].*1000000 at row 0/);
    m.kvCounts[0] = 1;
    m.kvIndices[0] = -3;
    expect(() => m.toDevice()).toThrow(RangeError);
  });

  test('toDevice needs a CUDA device', () => {
    const m = BlockMask.fromDense(dense, dims);
    expect(m.device).toBeUndefined();
    if (!require('../lib').backends().cuda) expect(() => m.toDevice()).toThrow(/not available/);
  });
});
