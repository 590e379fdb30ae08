// How a result is compared with the oracle: normalised MSE, largest difference, and the rule for
// masks (two implementations may differ only at the cut, docs/nabla.md 1.3).
import { BlockMask } from '../mask';
import { MaskMethod } from '../shapes';
import { ascendingRunningSums } from './reference';

/** sum (a-b)^2 / sum b^2 (ggml's test-backend-ops metric); Infinity when it is NaN. */
export function normalisedMse(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0,
    den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  const r = num / (den || 1);
  return Number.isNaN(r) ? Infinity : r;
}

/** max |a - b|; Infinity when any difference is NaN. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** Whether a and b hold the same values, element for element (for integer lists: kvCounts, kvIndices). */
export function sameValues(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether two fp32 arrays hold the same bits (so -0 differs from 0, and a NaN equals its own bits). */
export function sameBits(a: Float32Array, b: Float32Array): boolean {
  return (
    a.length === b.length &&
    sameValues(new Uint32Array(a.buffer, a.byteOffset, a.length), new Uint32Array(b.buffer, b.byteOffset, b.length))
  );
}

/** Tolerances of the cut: a cdf running sum within `cdf` of 1 - thr; a topk swap within `topk` in probability. */
export const CUT_TOLERANCE = { cdf: 1e-4, topk: 1e-5 } as const;

export interface MaskDifference {
  /** (row, block) pairs where the masks disagree. */
  differing: number;
  /** Those not at the cut: each one is a wrong block. */
  offCut: { row: number; block: number }[];
}

/**
 * Compares a dense 0/1 mask `got` [B,H,nq,nk] with `want`, a mask built with `returnMap: true`.
 * A differing block is at the cut when, for cdf, its ascending running sum in want's map is within
 * CUT_TOLERANCE.cdf of 1 - threshold; for topk, when it swapped places with a block of the same
 * row whose probability is within CUT_TOLERANCE.topk (a near tie).
 */
export function compareMasks(got: Uint8Array, want: BlockMask, method: MaskMethod, threshold: number): MaskDifference {
  const map = want.map;
  if (!map) throw new Error('compareMasks needs the block map of `want` (build it with returnMap: true)');
  const nk = want.dims[3];
  const wantDense = want.toDense();
  const result: MaskDifference = { differing: 0, offCut: [] };
  for (let r = 0; r < wantDense.length / nk; r++) {
    const diffs: number[] = [];
    for (let j = 0; j < nk; j++) if (got[r * nk + j] !== wantDense[r * nk + j]) diffs.push(j);
    if (diffs.length === 0) continue;
    result.differing += diffs.length;
    const row = map.subarray(r * nk, (r + 1) * nk);
    const running = method === 'cdf' ? ascendingRunningSums(row) : undefined;
    for (const j of diffs) {
      const atCut = running
        ? Math.abs(running[j] - (1 - threshold)) <= CUT_TOLERANCE.cdf
        : diffs.some(
            (o) => o !== j && got[r * nk + o] !== got[r * nk + j] && Math.abs(row[o] - row[j]) <= CUT_TOLERANCE.topk,
          );
      if (!atCut) result.offCut.push({ row: r, block: j });
    }
  }
  return result;
}
