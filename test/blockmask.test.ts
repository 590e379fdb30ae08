// BlockMask construction and queries.
import { BlockMask } from '../lib';
import { rng } from './reference';

function catchError(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  return undefined;
}

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
    expect(() => BlockMask.fromKvBlocks(Int32Array.of(5, 0), kvIndices, [1, 1, 2, 4])).toThrow(
      /counts in \[0, 4\].*5 at row 0/,
    );
    expect(() => BlockMask.fromKvBlocks(Int32Array.of(3, 0), kvIndices, [1, 1, 2, 4])).toThrow(
      /block ids in \[0, 4\).*9 at row 0/,
    );
    expect(() =>
      BlockMask.fromKvBlocks(Int32Array.of(2, 0), Int32Array.of(1, 1, 0, 0, 0, 0, 0, 0), [1, 1, 2, 4]),
    ).toThrow(/distinct/);
    expect(() => BlockMask.fromKvBlocks(Int32Array.of(2), kvIndices, [1, 1, 2, 4])).toThrow(RangeError);
    expect(() => BlockMask.fromKvBlocks([2, 0] as unknown as Int32Array, kvIndices, [1, 1, 2, 4])).toThrow(TypeError);
  });

  test('fromDense checks its inputs', () => {
    expect(() => BlockMask.fromDense(dense, [2, 3, 4, 4])).toThrow(RangeError);
    expect(() => BlockMask.fromDense([1, 0] as unknown as Uint8Array, [1, 1, 1, 2])).toThrow(TypeError);
    expect(() => BlockMask.fromDense(dense, [2, 3, 4] as unknown as [number, number, number, number])).toThrow(
      RangeError,
    );
    expect(() => BlockMask.fromDense(dense, [2, 3, 4.5, 5] as unknown as [number, number, number, number])).toThrow(
      TypeError,
    );
  });

  test('a mask cannot be changed: kvCounts and kvIndices are copies', () => {
    const m = BlockMask.fromDense(dense, dims);
    const density = m.density();
    const heads = Array.from(m.headDensities());
    const counts = m.kvCounts;
    const indices = m.kvIndices;
    expect(m.kvCounts).not.toBe(counts);
    counts[0] = 1000000; // out of range if it reached the mask
    counts[1] = 5;
    indices.fill(0); // every row a repeat of block 0 if it reached the mask
    expect(Array.from(m.toDense())).toEqual(Array.from(dense));
    expect(m.density()).toBe(density);
    expect(Array.from(m.headDensities())).toEqual(heads);
    expect(Array.from(m.kvCounts)).toEqual(Array.from(BlockMask.fromDense(dense, dims).kvCounts));
    // dims, map and blockSize are fixed too (module code is strict: a write throws)
    expect(() => ((m as unknown as { dims: number[] }).dims = [1, 1, 1, 1])).toThrow(TypeError);
    expect(() => ((m.dims as unknown as number[])[0] = 1)).toThrow(TypeError);
    expect(() => ((m as unknown as { blockSize: number }).blockSize = 1)).toThrow(TypeError);
    expect(m.dims).toEqual(dims);
    expect(m.density()).toBe(density);
  });

  test('the constructor checks the lists and keeps its own copy', () => {
    const kvCounts = Int32Array.of(2, 1);
    const kvIndices = Int32Array.of(3, 1, 9, 9, 2, 0, 0, 0);
    const m = new BlockMask([1, 1, 2, 4], { kvCounts, kvIndices });
    expect(Array.from(m.kvCounts)).toEqual([2, 1]);
    expect(Array.from(m.kvIndices)).toEqual([1, 3, 0, 2, 2, 0, 1, 3]);
    kvCounts[1] = 4;
    kvIndices.fill(2);
    expect(m.density()).toBe(3 / 8);
    expect(Array.from(m.toDense())).toEqual([0, 1, 0, 1, 0, 0, 1, 0]);
    // a repeated id would count its block twice in the softmax and in density()
    expect(
      () =>
        new BlockMask([1, 1, 2, 4], {
          kvCounts: Int32Array.of(2, 0),
          kvIndices: Int32Array.of(1, 1, 0, 0, 0, 0, 0, 0),
        }),
    ).toThrow('Expected distinct block ids within a row for kvIndices but received 1 twice at row 0');
    expect(() => new BlockMask([1, 1, 2, 4], { kvCounts: Int32Array.of(5, 0), kvIndices })).toThrow(RangeError);
    expect(() => new BlockMask([1, 1, 2, 4], { kvCounts: [2, 0], kvIndices } as never)).toThrow(TypeError);
    expect(() => new BlockMask([1, 1, 2, 4], null as never)).toThrow(TypeError);
    expect(() => new BlockMask([1, 1, 2] as never, { kvCounts, kvIndices })).toThrow(RangeError);
    expect(
      () => new BlockMask([1, 1, 2, 4], { kvCounts: Int32Array.of(1, 1), kvIndices }, new Float32Array(3)),
    ).toThrow(RangeError);
    expect(() => new BlockMask([1, 1, 2, 4], { kvCounts: Int32Array.of(1, 1), kvIndices }, [0] as never)).toThrow(
      TypeError,
    );
  });

  test('fromKvBlocks keeps its own copy', () => {
    const kvCounts = Int32Array.of(1, 2);
    const kvIndices = Int32Array.of(0, 0, 0, 0, 3, 1, 0, 0);
    const m = BlockMask.fromKvBlocks(kvCounts, kvIndices, [1, 1, 2, 4]);
    kvIndices[4] = 1; // a repeat of block 1 in row 1 if it reached the mask
    expect(m.density()).toBe(3 / 8);
    expect(Array.from(m.toDense())).toEqual([1, 0, 0, 0, 0, 1, 0, 1]);
  });

  test('something that only looks like a mask is a TypeError naming mask', () => {
    const fake = Object.create(BlockMask.prototype) as BlockMask;
    const named =
      /^Expected a BlockMask \(see nablaMask, BlockMask.fromDense, BlockMask.fromKvBlocks\) for mask but received an object$/;
    const uses: [string, (m: BlockMask) => unknown][] = [
      ['density', (m) => m.density()],
      ['headDensities', (m) => m.headDensities()],
      ['toDense', (m) => m.toDense()],
      ['kvCounts', (m) => m.kvCounts],
      ['kvIndices', (m) => m.kvIndices],
      ['device', (m) => m.device],
      ['disposed', (m) => m.disposed],
      ['dispose', (m) => m.dispose()],
      ['toDevice', (m) => m.toDevice()],
      ['operands', (m) => m.operands()],
    ];
    for (const [name, use] of uses) {
      expect({ name, error: catchError(() => use(fake)) }).toEqual({ name, error: expect.any(TypeError) });
      expect({ name, message: (catchError(() => use(fake)) as Error).message }).toEqual({
        name,
        message: expect.stringMatching(named),
      });
    }
  });

  test('toDevice needs a CUDA device', () => {
    const m = BlockMask.fromDense(dense, dims);
    expect(m.device).toBeUndefined();
    if (!require('../lib').backends().cuda) expect(() => m.toDevice()).toThrow(/not available/);
  });
});
