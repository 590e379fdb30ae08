// The oracle shared by the jest suites (test/) and the GPU check (bench/gpu-check.js): the fp64
// reference, the comparisons and their tolerances, random check masks and the poisoned-output
// runner. Internal: not part of the package's API (dist/oracle).
export { ascendingRunningSums, docOfBlock, refAttention, refMask, refPool, staPair } from './reference';
export type { Dims4, RefMask, RefMaskOptions, Rounding } from './reference';
export { CUT_TOLERANCE, compareMasks, maxAbsDiff, normalisedMse, sameBits, sameValues } from './compare';
export type { MaskDifference } from './compare';
export { nonZeroInEmptyRows, randomBlockMask } from './masks';
export type { CheckMask } from './masks';
export { poisonedAttentionSync } from './poisoned';
export type { PoisonedOptions } from './poisoned';
