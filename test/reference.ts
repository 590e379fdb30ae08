// The fp64 reference of NABLA lives in lib/oracle (shared with bench/gpu-check.js); the tests'
// deterministic inputs live in lib/synthetic. This file gathers what the suites import.
import { TokenGrid } from '../lib/shapes';
import { randn, rng, tileCoordinates } from '../lib/synthetic';

export { docOfBlock, refAttention, refMask, refPool, staPair } from '../lib/oracle';
export type { Dims4, RefMask, RefMaskOptions } from '../lib/oracle';
export { randn, rng };

/**
 * q/k like a video DiT's: per (head, channel) 2 sin(ft t + fy y + fx x + phase) of the token's
 * (t, y, x) on a tile-ordered grid, plus normal noise, so block maps are local (nearby blocks
 * score high) rather than uniform.
 */
export function structuredQK(
  B: number,
  H: number,
  grid: TokenGrid,
  D: number,
  seed: number,
  noise = 0.3,
): Float32Array {
  const S = grid[0] * grid[1] * grid[2];
  const r = rng(seed);
  const out = new Float32Array(B * H * S * D);
  const freq = Array.from({ length: B * H * D }, () => [r() * 0.6, r() * 0.6, r() * 0.6, r() * 6.28]);
  const noiseVals = randn(out.length, seed + 1, noise);
  const coords = tileCoordinates(grid);
  for (let bh = 0; bh < B * H; bh++)
    for (let pos = 0; pos < S; pos++) {
      const [t, y, x] = coords.subarray(pos * 3, pos * 3 + 3);
      for (let d = 0; d < D; d++) {
        const [ft, fy, fx, ph] = freq[bh * D + d];
        out[(bh * S + pos) * D + d] = 2 * Math.sin(ft * t + fy * y + fx * x + ph) + noiseVals[(bh * S + pos) * D + d];
      }
    }
  return out;
}
