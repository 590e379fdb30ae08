// The one FLOP count of attention (docs/nabla.md section 7), used by `nabla bench` and bench/.
import type { QKVShape } from './validate';

/** The sizes of one attention call (checkQKV's shape without the element type). */
export type AttentionSize = Omit<QKVShape, 'type'>;

/**
 * Forward FLOPs of the kept blocks: 2*Sq*Skv*D for q.k^T plus 2*Sq*Skv*Dv for P.v, per (batch,
 * head), times density (a sparse run is credited only for the blocks it keeps, so its TFLOP/s is
 * comparable with the dense rate). 4*B*H*Sq*Skv*D when Dv = D.
 */
export function attentionFlops(s: AttentionSize, density = 1): number {
  return 2 * s.batch * s.heads * s.seqQ * s.seqKv * (s.headDim + s.valueDim) * density;
}
