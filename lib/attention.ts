// Attention over a block mask (docs/nabla.md section 4): blockSparseAttention, dense attention, and
// nablaAttention (mask, then attention, in one call).
import { DTYPE_CODE, storageOf } from './dtype';
import { DeviceTensor, devicesOf, isDeviceTensor, operandOf } from './device';
import { describe, rangeError, typeError } from './errors';
import { BlockMask, MaskOptions, nablaMask, nablaMaskSync } from './mask';
import { NativeAttentionArgs, NativeOperand, native } from './native';
import { BLOCK_SIZE, numel } from './shapes';
import { PlacementOptions, resolvePlacement } from './backend';
import { Tensor } from './tensor';
import { AnyTensor, checkOptions, checkQKV, checkScale } from './validate';

export type AttentionKernel = 'auto' | 'fast' | 'simple';
const KERNELS: readonly AttentionKernel[] = ['auto', 'fast', 'simple'];

export interface AttentionOptions extends PlacementOptions {
  /** Softmax scale; default 1/sqrt(headDim). */
  scale?: number;
  /**
   * CUDA kernel: 'fast' (tensor cores, fp16/bf16, head dim 64/128), 'simple' (scalar reference
   * kernel, every shape) or 'auto' (fast where it applies). Default: NABLA_ATTENTION_KERNEL or 'auto'.
   * Ignored on the CPU.
   */
  kernel?: AttentionKernel;
}

type Output<T> = T extends DeviceTensor ? DeviceTensor : Tensor;

function checkKernel(kernel: unknown): AttentionKernel {
  const k = kernel ?? process.env.NABLA_ATTENTION_KERNEL ?? 'auto';
  const param = kernel === undefined ? 'NABLA_ATTENTION_KERNEL' : 'kernel';
  if (typeof k !== 'string') throw typeError(param, "'auto', 'fast' or 'simple'", k);
  if (!KERNELS.includes(k as AttentionKernel)) throw rangeError(param, "'auto', 'fast' or 'simple'", describe(k));
  return k as AttentionKernel;
}

function prepareAttention(q: unknown, k: unknown, v: unknown, mask: BlockMask | undefined, options: unknown) {
  const shape = checkQKV(q, k, v);
  const opts = checkOptions<AttentionOptions>(options);
  const scale = opts.scale === undefined ? 1 / Math.sqrt(shape.headDim) : checkScale(opts.scale);
  const kernel = checkKernel(opts.kernel);
  const tensors = [q, k, v] as AnyTensor[];
  const devices = devicesOf(...tensors);
  let lists: { kvCounts?: NativeOperand; kvIndices?: NativeOperand } = {};
  if (mask !== undefined) {
    if (!(mask instanceof BlockMask)) throw typeError('mask', 'a BlockMask (see nablaMask, BlockMask.fromDense)', mask);
    const want = [shape.batch, shape.heads, shape.seqQ / BLOCK_SIZE, shape.seqKv / BLOCK_SIZE];
    if (mask.dims.some((d, i) => d !== want[i]))
      throw rangeError('mask.dims', `[${want.join(', ')}] (B, H, Sq/64, Skv/64)`, `[${mask.dims.join(', ')}]`);
    const ops = mask.operands();
    if (ops.device !== undefined) devices.push(ops.device);
    lists = { kvCounts: ops.kvCounts, kvIndices: ops.kvIndices };
  }
  const place = resolvePlacement(opts, devices);
  const dims = [shape.batch, shape.heads, shape.seqQ, shape.valueDim];
  const onDevice = tensors.some(isDeviceTensor);
  const bytes = numel(dims) * storageOf(shape.type).BYTES_PER_ELEMENT;
  const out: Tensor | DeviceTensor = onDevice
    ? new DeviceTensor(shape.type, dims, place.device, new native.DeviceBuffer(place.device, bytes))
    : { type: shape.type, dims, data: new (storageOf(shape.type))(numel(dims)) };
  const args: NativeAttentionArgs = {
    q: operandOf(q as AnyTensor), k: operandOf(k as AnyTensor), v: operandOf(v as AnyTensor), out: operandOf(out),
    dtype: DTYPE_CODE[shape.type], batch: shape.batch, heads: shape.heads, seqQ: shape.seqQ, seqKv: shape.seqKv,
    headDim: shape.headDim, valueDim: shape.valueDim, scale, kernel, ...lists, ...place,
  };
  return { args, out };
}

/**
 * out[b,h,s] = sum_t softmax_t(q[b,h,s] . k[b,h,t] * scale) v[b,h,t] over the keys of the blocks the
 * mask keeps for s's query block. A query block with no kept block outputs zeros. Off the main thread.
 */
export async function blockSparseAttention<T extends AnyTensor>(q: T, k: AnyTensor, v: AnyTensor, mask: BlockMask, options?: AttentionOptions): Promise<Output<T>> {
  if (mask === undefined) throw typeError('mask', 'a BlockMask (use attention() for dense attention)', mask);
  const { args, out } = prepareAttention(q, k, v, mask, options);
  await native.attention(args, true);
  return out as Output<T>;
}

export function blockSparseAttentionSync<T extends AnyTensor>(q: T, k: AnyTensor, v: AnyTensor, mask: BlockMask, options?: AttentionOptions): Output<T> {
  if (mask === undefined) throw typeError('mask', 'a BlockMask (use attentionSync() for dense attention)', mask);
  const { args, out } = prepareAttention(q, k, v, mask, options);
  native.attention(args, false);
  return out as Output<T>;
}

/** Dense attention (every block kept): the baseline. Off the main thread. */
export async function attention<T extends AnyTensor>(q: T, k: AnyTensor, v: AnyTensor, options?: AttentionOptions): Promise<Output<T>> {
  const { args, out } = prepareAttention(q, k, v, undefined, options);
  await native.attention(args, true);
  return out as Output<T>;
}

export function attentionSync<T extends AnyTensor>(q: T, k: AnyTensor, v: AnyTensor, options?: AttentionOptions): Output<T> {
  const { args, out } = prepareAttention(q, k, v, undefined, options);
  native.attention(args, false);
  return out as Output<T>;
}

export type NablaAttentionOptions = MaskOptions & AttentionOptions;

function splitOptions(options: unknown): { mask: MaskOptions; attend: AttentionOptions } {
  const o = checkOptions<NablaAttentionOptions>(options);
  const { scale, kernel, ...mask } = o;
  // checked before the mask is built, so a bad attention option costs no work
  if (scale !== undefined) checkScale(scale);
  checkKernel(kernel);
  return { mask, attend: { scale, kernel, backend: o.backend, device: o.device } };
}

/** The NABLA mask of q and k, then block-sparse attention over it. */
export async function nablaAttention<T extends AnyTensor>(q: T, k: AnyTensor, v: AnyTensor, options?: NablaAttentionOptions): Promise<{ output: Output<T>; mask: BlockMask }> {
  const { mask: maskOptions, attend } = splitOptions(options);
  checkQKV(q, k, v);
  const mask = await nablaMask(q, k, maskOptions);
  const output = await blockSparseAttention(q, k, v, mask, attend);
  return { output, mask };
}

export function nablaAttentionSync<T extends AnyTensor>(q: T, k: AnyTensor, v: AnyTensor, options?: NablaAttentionOptions): { output: Output<T>; mask: BlockMask } {
  const { mask: maskOptions, attend } = splitOptions(options);
  checkQKV(q, k, v);
  const mask = nablaMaskSync(q, k, maskOptions);
  const output = blockSparseAttentionSync(q, k, v, mask, attend);
  return { output, mask };
}
