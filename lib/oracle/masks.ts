// Random block masks for attention checks: every row keeps about half its key blocks (at least
// one), except the first query block of (batch 0, head 0), which keeps none (its output must be
// exact zeros).
import { BlockMask, MaskDims } from '../mask';
import { rng } from '../synthetic';

export interface CheckMask {
  dense: Uint8Array;
  mask: BlockMask;
  /** Kept blocks / all blocks. */
  density: number;
  /** The most key blocks any row keeps (rows of more than 32 exercise block lists staged in pieces). */
  maxKeptPerRow: number;
  /** Query-block rows that keep no block. */
  emptyRows: number;
}

/** A mask [B, H, nq, nk] keeping each block with probability `keep` (at least one per row); row 0 empty when there are other rows. */
export function randomBlockMask(dims: MaskDims, seed: number, keep = 0.5): CheckMask {
  const [B, H, nq, nk] = dims;
  const r = rng(seed);
  const dense = Uint8Array.from({ length: B * H * nq * nk }, () => (r() < keep ? 1 : 0));
  // one empty row, but never all of them: a mask with no kept block checks nothing of attention
  const rows = B * H * nq;
  for (let row = rows > 1 ? 1 : 0; row < rows; row++)
    if (!dense.subarray(row * nk, (row + 1) * nk).includes(1)) dense[row * nk + (row % nk)] = 1;
  if (rows > 1) dense.fill(0, 0, nk);
  let kept = 0,
    maxKeptPerRow = 0,
    emptyRows = 0;
  for (let row = 0; row < rows; row++) {
    let n = 0;
    for (let j = 0; j < nk; j++) n += dense[row * nk + j];
    kept += n;
    maxKeptPerRow = Math.max(maxKeptPerRow, n);
    if (n === 0) emptyRows++;
  }
  return { dense, mask: BlockMask.fromDense(dense, dims), density: kept / dense.length, maxKeptPerRow, emptyRows };
}

/** Output elements of the query blocks that keep nothing which are not exactly 0 ([B,H,Sq,Dv] values). */
export function nonZeroInEmptyRows(
  out: ArrayLike<number>,
  dense: Uint8Array,
  dims: MaskDims,
  valueDim: number,
): number {
  const [B, H, nq, nk] = dims;
  const block = out.length / (B * H * nq * valueDim);
  let count = 0;
  for (let row = 0; row < B * H * nq; row++) {
    let kept = 0;
    for (let j = 0; j < nk; j++) kept += dense[row * nk + j];
    if (kept) continue;
    for (let i = row * block * valueDim; i < (row + 1) * block * valueDim; i++) if (out[i] !== 0) count++;
  }
  return count;
}
