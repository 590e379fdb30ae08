// The attention op run into an output that was filled with 0xff bytes first: that is NaN in fp32,
// fp16 and bf16, so any element a kernel leaves unwritten shows up as non-finite. The public ops
// allocate their own output, so this one call passes its own to the library's checked call.
import { type AttentionKernel, attentionArgs, checkAttention } from '../attention';
import { storageOf, toFloat32 } from '../dtype';
import { BlockMask } from '../mask';
import { native } from '../native';
import { AnyTensor } from '../validate';

export interface PoisonedOptions {
  backend: 'cpu' | 'cuda';
  /** CUDA device index (default 0); q, k, v and the mask must already live there. */
  device?: number;
  kernel?: AttentionKernel;
  /** Softmax scale; default 1/sqrt(headDim). */
  scale?: number;
}

/** fp32 values of attention(q, k, v) over `mask` (dense when undefined) written into a poisoned output. */
export function poisonedAttentionSync(
  q: AnyTensor,
  k: AnyTensor,
  v: AnyTensor,
  mask: BlockMask | undefined,
  options: PoisonedOptions,
): Float32Array {
  // the library's own checks and native arguments, with this output in place of a fresh one
  const call = checkAttention(q, k, v, mask, options);
  const { shape } = call;
  const host = new (storageOf(shape.type))(shape.batch * shape.heads * shape.seqQ * shape.valueDim);
  new Uint8Array(host.buffer).fill(0xff);
  const deviceOut =
    call.place.backend === 'cuda' ? new native.DeviceBuffer(call.place.device, host.byteLength) : undefined;
  try {
    deviceOut?.fill(0xff);
    native.attention(attentionArgs(call, deviceOut ?? host), false);
    deviceOut?.download(host, false);
  } finally {
    deviceOut?.dispose();
  }
  return toFloat32(host, shape.type);
}
