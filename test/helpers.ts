// Shared test fixtures: the CPU backend option and small structured inputs.
import { BlockMask, Tensor, backends, tensor } from '../lib';
import { tileLayout } from '../lib/layout';
import { structuredQK } from './reference';

export const CPU = { backend: 'cpu' } as const;

export interface QKCase {
  q: Tensor;
  k: Tensor;
  grid: [number, number, number];
  blockGrid: [number, number, number];
  dims: { B: number; H: number; S: number; D: number };
}

/** Tile-ordered q and k of a (T, Ht, Wt) token grid whose block maps are local. */
export function qkCase(B: number, H: number, grid: [number, number, number], D: number, seed: number): QKCase {
  const S = grid[0] * grid[1] * grid[2];
  return {
    q: tensor(structuredQK(B, H, grid, D, seed), [B, H, S, D]),
    k: tensor(structuredQK(B, H, grid, D, seed + 100), [B, H, S, D]),
    grid,
    blockGrid: [grid[0], Math.ceil(grid[1] / 8), Math.ceil(grid[2] / 8)],
    dims: { B, H, S, D },
  };
}

/** Largest |a - b| / max |b|. */
export function relMaxError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let err = 0,
    scale = 0;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return err / (scale || 1);
}

/**
 * `describe` where a CUDA device can be used, else `describe.skip` plus one skipped test whose
 * title names the reason (the closing summary prints it); with NABLA_REQUIRE_CUDA=1 (GPU
 * machines) a missing device is a failing test instead.
 */
export function cudaSuite(what: string): typeof describe {
  const info = backends();
  if (info.cuda) return describe;
  const reason = `no CUDA device (${info.reason ?? 'unknown reason'})`;
  if (process.env.NABLA_REQUIRE_CUDA === '1') {
    test('NABLA_REQUIRE_CUDA=1 needs a usable CUDA device', () => {
      throw new Error(`NABLA_REQUIRE_CUDA=1 but ${reason}`);
    });
  } else {
    console.warn(`${what} skipped: ${reason}. Set NABLA_REQUIRE_CUDA=1 to make this a failure.`);
    test.skip(`${what}: skipped, ${reason}`, () => undefined);
  }
  return describe.skip;
}

/**
 * Properties of frame-causal masks on a token grid: `futureKept(mask)` counts kept blocks of a
 * later frame than their row's (must be none); `expectCausalMap(map)` checks the pooled softmax
 * is 0 on future frames and sums to 1 over each row's visible blocks.
 */
export function causalChecks(grid: readonly [number, number, number]) {
  const l = tileLayout(grid);
  const frameOf = (b: number) => Math.floor(b / (l.tilesH * l.tilesW));
  return {
    frameOf,
    futureKept(mask: BlockMask): number {
      const dense = mask.toDense();
      let n = 0;
      for (let r = 0; r < dense.length / l.blocks; r++)
        for (let j = 0; j < l.blocks; j++) if (dense[r * l.blocks + j] && frameOf(j) > frameOf(r % l.blocks)) n++;
      return n;
    },
    expectCausalMap(map: Float32Array): void {
      for (let i = 0; i < l.blocks; i++) {
        let visible = 0;
        for (let j = 0; j < l.blocks; j++) {
          if (frameOf(j) > frameOf(i)) expect(map[i * l.blocks + j]).toBe(0);
          else visible += map[i * l.blocks + j];
        }
        expect(visible).toBeCloseTo(1, 5);
      }
    },
  };
}

/** Two fp32 arrays with the same bits, element for element (+0 and -0, NaN payloads told apart). */
/**
 * The same integers (mask lists) element for element; a mismatch names the first differing element
 * and how many differ, rather than diffing arrays of millions of entries.
 */
export function expectSameInts(got: Int32Array, want: Int32Array, what: string): void {
  expect(`${what}: ${got.length} elements`).toBe(`${what}: ${want.length} elements`);
  let first = -1,
    count = 0;
  for (let i = 0; i < want.length; i++)
    if (got[i] !== want[i]) {
      if (first < 0) first = i;
      count++;
    }
  expect(first < 0 ? 'same' : `${what}: ${count} differ, first element ${first}: ${got[first]} vs ${want[first]}`).toBe(
    'same',
  );
}

export function expectSameBits(got: Float32Array, want: Float32Array): void {
  expect(got.length).toBe(want.length);
  const a = new Uint32Array(got.buffer, got.byteOffset, got.length),
    b = new Uint32Array(want.buffer, want.byteOffset, want.length);
  let first = -1;
  for (let i = 0; i < b.length && first < 0; i++) if (a[i] !== b[i]) first = i;
  expect(first < 0 ? 'same bits' : `element ${first}: ${got[first]} vs ${want[first]}`).toBe('same bits');
}
