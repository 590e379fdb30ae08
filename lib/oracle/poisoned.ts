// The attention op run into an output that was filled with 0xff bytes first: that is NaN in fp32,
// fp16 and bf16, so any element a kernel leaves unwritten shows up as non-finite. The public ops
// allocate their own output, so this one call builds the native arguments itself.
import type { AttentionKernel } from '../attention';
import { DTYPE_CODE, storageOf, toFloat32 } from '../dtype';
import { operandOf } from '../device';
import { BlockMask } from '../mask';
import { native } from '../native';
import { AnyTensor, checkQKV } from '../validate';

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
  const shape = checkQKV(q, k, v);
  const device = options.device ?? 0;
  const host = new (storageOf(shape.type))(shape.batch * shape.heads * shape.seqQ * shape.valueDim);
  new Uint8Array(host.buffer).fill(0xff);
  const deviceOut = options.backend === 'cuda' ? new native.DeviceBuffer(device, host.byteLength) : undefined;
  try {
    deviceOut?.fill(0xff);
    const lists = mask?.operands();
    native.attention(
      {
        q: operandOf(q),
        k: operandOf(k),
        v: operandOf(v),
        out: deviceOut ?? host,
        dtype: DTYPE_CODE[shape.type],
        batch: shape.batch,
        heads: shape.heads,
        seqQ: shape.seqQ,
        seqKv: shape.seqKv,
        headDim: shape.headDim,
        valueDim: shape.valueDim,
        scale: options.scale ?? 1 / Math.sqrt(shape.headDim),
        kernel: options.kernel ?? 'auto',
        ...(lists ? { kvCounts: lists.kvCounts, kvIndices: lists.kvIndices } : {}),
        backend: options.backend,
        device,
      },
      false,
    );
    deviceOut?.download(host, false);
  } finally {
    deviceOut?.dispose();
  }
  return toFloat32(host, shape.type);
}
