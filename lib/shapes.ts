// Shape rules and defaults: the single TS source of truth (sizes come from the native build).
import { native } from './native';

/** Tokens per block: every kept (query block, key block) pair is a full 64 x 64 tile. */
export const BLOCK_SIZE: number = native.limits.blockSize;
/** A 64-token block is one TILE_SIDE x TILE_SIDE spatial tile of one frame. */
export const TILE_SIDE: number = native.limits.tileSide;
export const MIN_HEAD_DIM: number = native.limits.minHeadDim;
export const MAX_HEAD_DIM: number = native.limits.maxHeadDim;
/** Largest batch, head or token count (the native layer's own limit, so TS and C++ cannot drift). */
export const MAX_DIM: number = native.limits.maxDim;
/**
 * Largest softmax scale: the logits q.k * scale must stay finite in fp32. A scale near fp32's
 * maximum (3.4e38) overflows them, beyond it the scale itself rounds to infinity, and every output
 * is NaN; 65536 is far above any useful scale (1/sqrt(D) <= 0.36).
 */
export const MAX_SCALE: number = native.limits.maxScale;
/** Largest STA window size (blocks): the native layer reads windows as int32. */
export const MAX_WINDOW = 2 ** 31 - 1;
export { DEFAULT_METHOD, DEFAULT_THRESHOLD, MASK_METHODS } from './defaults';
export type { MaskMethod } from './defaults';

/** Token grid (frames T, token rows Ht, token cols Wt) of a video latent. */
export type TokenGrid = readonly [number, number, number];
/** Block grid (T, Ht/8, Wt/8): one block per 8x8 tile of one frame. */
export type BlockGrid = readonly [number, number, number];
/** STA window sizes in blocks (frames, block rows, block cols). */
export type StaWindow = readonly [number, number, number];

export function numel(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}
