// The oracle shared by the jest suites (test/) and the GPU check (bench/gpu-check.js): the fp64
// reference, the comparisons and their tolerances, random check masks and the poisoned-output
// runner. Internal: not part of the package's API (dist/oracle).
export { Dims4, RefMask, RefMaskOptions, Rounding, ascendingRunningSums, docOfBlock, refAttention, refMask, refPool, staPair } from './reference';
export { CUT_TOLERANCE, MaskDifference, compareMasks, maxAbsDiff, normalisedMse } from './compare';
export { CheckMask, nonZeroInEmptyRows, randomBlockMask } from './masks';
export { PoisonedOptions, poisonedAttentionSync } from './poisoned';
