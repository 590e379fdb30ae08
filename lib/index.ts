// nabla-attention: NABLA sparse attention for Node.js (CPU and CUDA backends).
export { backends } from './backend';
export type { Backend, Backends, DeviceInfo, PlacementOptions } from './backend';
export type { KernelImage } from './archs';
export {
  DTYPES,
  bfloat16ToFloat,
  float16ToFloat,
  floatToBfloat16,
  floatToFloat16,
  fromFloat32,
  toFloat32,
} from './dtype';
export type { DType, HostData } from './dtype';
export { tensor, zeros, cast, toFloat32Array } from './tensor';
export type { Tensor } from './tensor';
export { DeviceTensor, toDevice, toDeviceSync, toHost, emptyDevice, deviceMemory, trimDeviceMemory } from './device';
export type { DeviceMemory } from './device';
export { fromDevicePointer, deviceStream, waitForExternal, recordEvent } from './interop';
export type { DeviceEvent, DevicePointerSpec, ExternalWork } from './interop';
export { BlockMask, blockPool, blockPoolSync, nablaMask, nablaMaskSync } from './mask';
export type { MaskDims, MaskKernel, MaskKernelRan, MaskOptions, PoolKernel, PoolOptions } from './mask';
export { staMask, tileOrder, toTiles, fromTiles } from './tiles';
export type { TileOptions } from './tiles';
export {
  attention,
  attentionSync,
  blockSparseAttention,
  blockSparseAttentionSync,
  nablaAttention,
  nablaAttentionSync,
} from './attention';
export type {
  AttentionKernel,
  AttentionKernelRan,
  AttentionOptions,
  CpuKernel,
  DenseAttentionOptions,
  NablaAttentionOptions,
} from './attention';
export { warmUp } from './warmup';
export type { WarmUpReport, WarmUpSpec } from './warmup';
export { BLOCK_SIZE, DEFAULT_METHOD, DEFAULT_THRESHOLD, MAX_HEAD_DIM, MIN_HEAD_DIM } from './shapes';
export type { BlockGrid, MaskMethod, StaWindow, TokenGrid } from './shapes';
export { VERSION } from './version';
export { loadNpy, saveNpy, readNpy, writeNpy, npyToTensor, tensorToNpy } from './npy';
export type { NpyArray, NpyData, NpyDType } from './npy';
