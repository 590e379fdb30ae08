// Mask defaults (docs/nabla.md section 5: the Wan2.1 releases use thr 0.7 with the CDF rule). Plain
// data without native imports; lib/shapes.ts re-exports them beside the native size limits.
export type MaskMethod = 'cdf' | 'topk';
export const MASK_METHODS: readonly MaskMethod[] = ['cdf', 'topk'];
export const DEFAULT_THRESHOLD = 0.7;
export const DEFAULT_METHOD: MaskMethod = 'cdf';
