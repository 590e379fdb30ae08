// warmUp: one request of a service's shape at boot, so that its first real request finds the
// CUDA context, the kernels, the memory pool and the host-copy paths already made.
import { AttentionKernelRan, NablaAttentionOptions, planNablaAttention, runNablaAttention } from './attention';
import { MaskKernelRan } from './backend';
import { DType, checkDType } from './dtype';
import { DeviceTensor, emptyDevice, toHost } from './device';
import { typeError } from './errors';
import { blockPool, release } from './mask';
import { BLOCK_SIZE, MIN_HEAD_DIM } from './shapes';
import { checkDims, zeros } from './tensor';
import {
  AnyTensor,
  QKVShape,
  check4dDims,
  checkHeadDim,
  checkOptions,
  checkPositiveInteger,
  checkTokens,
} from './validate';

/** The shape of the requests a service will serve: q is `dims`, k and v follow from it. */
export interface WarmUpSpec {
  /** q's dims [batch, heads, tokens, headDim], by the rules of nablaAttention's q. */
  dims: readonly number[];
  type: DType;
  /** v's head dim; default q's. */
  valueDim?: number;
  /** Key and value tokens (cross attention); default q's (a token grid needs them equal). */
  kvSeq?: number;
}

export interface WarmUpReport {
  /** Wall time of the warm-up in ms: context creation, kernel loading, pool growth and the request. */
  ms: number;
  backend: 'cpu' | 'cuda';
  /** The CUDA device (0 on the CPU backend). */
  device: number;
  /** The kernels that ran: what later requests of this shape and these options run. */
  kernels: { mask: MaskKernelRan; attention: AttentionKernelRan };
}

const WHAT_SPEC = 'a request shape { dims: [B, H, S, D], type, valueDim?, kvSeq? }';

/** The q, k, v shape a spec describes, by the rules the ops apply to q, k and v themselves. */
function checkSpec(spec: unknown, gridded: boolean): QKVShape {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec) || ArrayBuffer.isView(spec))
    throw typeError('spec', WHAT_SPEC, spec);
  const s = spec as Partial<WarmUpSpec>;
  const type = checkDType(s.type, 'spec.type');
  const [batch, heads, seqQ, headDim] = check4dDims(checkDims(s.dims, 'spec.dims'), 'spec.dims', gridded);
  const seqKv =
    s.kvSeq === undefined
      ? seqQ
      : checkTokens(checkPositiveInteger(s.kvSeq, 'spec.kvSeq', 'a positive token count'), 'spec.kvSeq', gridded);
  const valueDim =
    s.valueDim === undefined
      ? headDim
      : checkHeadDim(checkPositiveInteger(s.valueDim, 'spec.valueDim', 'a positive head dim'), 'spec.valueDim');
  return { type, batch, heads, seqQ, seqKv, headDim, valueDim };
}

/** A zero-filled device tensor (fill is a memset on the device's stream). */
function zeroDevice(dims: number[], type: DType, device: number): DeviceTensor {
  const t = emptyDevice(dims, type, { device });
  try {
    t.buffer.fill(0);
  } catch (err) {
    t.dispose();
    throw err;
  }
  return t;
}

/**
 * Runs one nablaAttention of the given shape and options through the paths a later request of that
 * shape takes, so that request does not pay for them: on CUDA the device's context, this package's
 * stream and memory pool (created by a small async op first, off the main thread), the lazily
 * loaded pooling, mask and attention kernels of this dtype and head dim, their shared-memory
 * settings, the pool grown to the request's peak (inputs, mask lists, scratch, output; the pool
 * keeps it reserved for reuse, see deviceMemory().reserved) and a download of the output to the
 * host; on the CPU backend, the thread pool. Every tensor and the mask it makes are freed before it
 * resolves: deviceMemory().inUse is back where it was.
 *
 * The inputs are zeros: q and k pool to equal logits, so every row's softmax is uniform over its
 * n visible key blocks and 'cdf' keeps about ceil(threshold * n) of them ('topk' keeps
 * max(1, floor(threshold * n))): a density of about `threshold` (plus the STA window), often more
 * than real inputs keep. The kernels and the memory are those of any input of this shape: neither
 * depends on the values.
 *
 * `options` are nablaAttention's, checked by the same code, and errors are the ops' errors (the
 * shape's parameters named `spec.dims`, `spec.type`, `spec.valueDim`, `spec.kvSeq`). On CUDA the
 * inputs are device tensors, so `returnMap` must be false there, as for device inputs. Another
 * shape, dtype or head dim, or other kernel options, still load their own kernels on first use.
 */
export async function warmUp(spec: WarmUpSpec, options?: NablaAttentionOptions): Promise<WarmUpReport> {
  const started = performance.now();
  const opts = checkOptions<NablaAttentionOptions>(options);
  const shape = checkSpec(spec, opts.grid !== undefined);
  // checked as for host inputs first (nablaAttention's order of checks), then, on CUDA, as for the
  // device inputs the request then gets (only returnMap's rule differs)
  const host = planNablaAttention(opts, shape, [], false, 'spec.kvSeq');
  const onDevice = host.place.backend === 'cuda';
  const plan = onDevice ? planNablaAttention(opts, shape, [], true, 'spec.kvSeq') : host;
  const { device } = plan.place;
  // the first CUDA call creates the context: an async op makes it on a worker thread, not this one
  // (its kernel named, so that NABLA_POOL_KERNEL, which nablaAttention never reads, is not read)
  if (onDevice)
    await blockPool(zeros([1, 1, BLOCK_SIZE, MIN_HEAD_DIM]), { backend: 'cuda', device, poolKernel: 'simple' });

  const { batch: B, heads: H, seqQ, seqKv, headDim, valueDim, type } = shape;
  const dims = [
    [B, H, seqQ, headDim],
    [B, H, seqKv, headDim],
    [B, H, seqKv, valueDim],
  ];
  const inputs: AnyTensor[] = [];
  try {
    for (const d of dims) inputs.push(onDevice ? zeroDevice(d, type, device) : zeros(d, type));
    const [q, k, v] = inputs;
    const ran = await runNablaAttention(plan, q, k, v);
    try {
      await toHost(ran.output);
    } finally {
      release(ran.output);
      release(ran.mask);
    }
    return { ms: performance.now() - started, backend: plan.place.backend, device, kernels: ran.kernels };
  } finally {
    for (const t of inputs) release(t);
  }
}
