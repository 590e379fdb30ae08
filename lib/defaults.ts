// Mask defaults (docs/nabla.md section 5: the Wan2.1 releases use thr 0.7 with the CDF rule). Kept free
// of native imports so that CLI help can show them without loading the addon.
export type MaskMethod = 'cdf' | 'topk';
export const MASK_METHODS: readonly MaskMethod[] = ['cdf', 'topk'];
export const DEFAULT_THRESHOLD = 0.7;
export const DEFAULT_METHOD: MaskMethod = 'cdf';
