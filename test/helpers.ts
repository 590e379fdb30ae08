// Shared test fixtures: the CPU backend option and small structured inputs.
import { Tensor, backends, tensor } from '../lib';
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
