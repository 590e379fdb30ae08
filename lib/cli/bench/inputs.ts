// `nabla bench` inputs: synthetic tokens of the shape's grid, or the leading part of q/k/v files.
import { BLOCK_SIZE, TILE_SIDE, TokenGrid } from '../../shapes';
import { syntheticQKV } from '../../synthetic';
import { Tensor } from '../../tensor';
import { Setup, Shape, gridOf, seqKvOf, seqOf } from './options';

export interface Inputs {
  q: Tensor;
  k: Tensor;
  v: Tensor;
}

/** A single-frame grid of `blocks` 8x8 tiles, as square as the count allows (for --seq shapes). */
function squareGrid(blocks: number): [number, number] {
  let rows = Math.floor(Math.sqrt(blocks));
  while (blocks % rows !== 0) rows--;
  return [rows * TILE_SIDE, (blocks / rows) * TILE_SIDE];
}

/** [0:batch, 0:heads, 0:seq, :] of a [B, H, S, D] tensor (a copy; the tensor itself when whole). */
export function leading(t: Tensor, batch: number, heads: number, seq: number): Tensor {
  const [B, H, S, D] = t.dims;
  if (batch === B && heads === H && seq === S) return t;
  const data = new (t.data.constructor as Float32ArrayConstructor | Uint16ArrayConstructor)(batch * heads * seq * D);
  for (let b = 0; b < batch; b++)
    for (let h = 0; h < heads; h++) {
      const from = (b * H + h) * S * D;
      data.set(t.data.subarray(from, from + seq * D), (b * heads + h) * seq * D);
    }
  return { type: t.type, dims: [batch, heads, seq, D], data };
}

export function makeInputs(setup: Setup, s: Shape): Inputs {
  if (setup.files) {
    const { q, k, v } = setup.files;
    return {
      q: leading(q, s.batch, s.heads, seqOf(s)),
      k: leading(k, s.batch, s.heads, seqKvOf(s)),
      v: leading(v, s.batch, s.heads, seqKvOf(s)),
    };
  }
  const grid = gridOf(s) ?? ([1, ...squareGrid(seqOf(s) / BLOCK_SIZE)] as TokenGrid);
  return syntheticQKV(s.batch, s.heads, grid, s.headDim, setup.type);
}
