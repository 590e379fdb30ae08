// Tile order (docs/nabla.md section 3) and the STA window (section 2).
import { fromTiles, staMask, tensor, tileOrder, toTiles, fromFloat32 } from '../lib';
import { staPair } from './reference';

describe('tileOrder', () => {
  test('maps raster token (t, y, x) to t*Ht*Wt + ((y/8)*(Wt/8) + x/8)*64 + (y%8)*8 + x%8', () => {
    const [T, Ht, Wt] = [3, 16, 24];
    const order = tileOrder([T, Ht, Wt]);
    expect(order.length).toBe(T * Ht * Wt);
    for (let t = 0; t < T; t++)
      for (let y = 0; y < Ht; y++)
        for (let x = 0; x < Wt; x++) {
          const pos = t * Ht * Wt + (Math.floor(y / 8) * (Wt / 8) + Math.floor(x / 8)) * 64 + (y % 8) * 8 + (x % 8);
          expect(order[pos]).toBe((t * Ht + y) * Wt + x);
        }
  });

  test('is a permutation whose 64-token blocks are 8x8 tiles of one frame', () => {
    const order = tileOrder([2, 8, 16]);
    expect([...order].sort((a, b) => a - b)).toEqual([...Array(256).keys()]);
    // second block of frame 0: rows 0..7, cols 8..15
    const block1 = Array.from(order.subarray(64, 128));
    expect(block1.every((r) => Math.floor(r / 128) === 0 && r % 16 >= 8)).toBe(true);
  });

  test('grids of non-positive, missing or fractional sizes are refused', () => {
    expect(() => tileOrder([2, 0, 16])).toThrow(RangeError);
    expect(() => tileOrder([2, 0, 16])).toThrow(/3 positive integers .* for grid but received \[2, 0, 16\]/);
    expect(() => tileOrder([2, 16] as unknown as [number, number, number])).toThrow(RangeError);
    expect(() => tileOrder([2, 16, 8.5])).toThrow(TypeError);
  });
});

describe('toTiles / fromTiles', () => {
  const grid: [number, number, number] = [2, 8, 16];
  const S = 256;

  test('round trip for every dtype, and toTiles gathers by tileOrder', () => {
    const values = Array.from({ length: 2 * S * 3 }, (_, i) => i % 997);
    for (const type of ['float32', 'float16', 'bfloat16'] as const) {
      const x = tensor(fromFloat32(values, type), [2, S, 3], type);
      const tiled = toTiles(x, grid);
      const order = tileOrder(grid);
      for (let b = 0; b < 2; b++)
        for (let i = 0; i < S; i++)
          for (let c = 0; c < 3; c++) expect(tiled.data[(b * S + i) * 3 + c]).toBe(x.data[(b * S + order[i]) * 3 + c]);
      expect(Array.from(fromTiles(tiled, grid).data)).toEqual(Array.from(x.data));
    }
  });

  test('axis option and shape errors', () => {
    const x = tensor(new Float32Array(S * 2), [S, 2]);
    expect(toTiles(x, grid, { axis: 0 }).dims).toEqual([S, 2]);
    expect(() => toTiles(x, grid, { axis: 1 })).toThrow(/256 tokens/);
    expect(() => toTiles(x, grid, { axis: 5 })).toThrow(RangeError);
  });
});

describe('staMask', () => {
  test('equals the window formula on the block grid', () => {
    const grid: [number, number, number] = [5, 24, 32];
    for (const w of [
      [11, 3, 3],
      [3, 5, 5],
      [2, 2, 4],
      [1, 1, 1],
    ] as [number, number, number][]) {
      const m = staMask(grid, w);
      const g: [number, number, number] = [5, 3, 4];
      const nb = 60;
      expect(m.dims).toEqual([1, 1, nb, nb]);
      const dense = m.toDense();
      for (let i = 0; i < nb; i++)
        for (let j = 0; j < nb; j++) expect(dense[i * nb + j]).toBe(staPair(g, w, i, j) ? 1 : 0);
    }
  });

  test('a 1x1x1 window is the diagonal; a huge one keeps all', () => {
    expect(staMask([2, 16, 16], [1, 1, 1]).density()).toBeCloseTo(1 / 8);
    expect(staMask([2, 16, 16], [9, 9, 9]).density()).toBe(1);
    expect(() => staMask([2, 16, 16], [0, 1, 1])).toThrow(RangeError);
  });
});
