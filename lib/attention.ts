// Attention over a block mask (docs/nabla.md section 4): blockSparseAttention, dense attention, and
// nablaAttention (mask, then attention, in one call). Each public op checks its arguments once,
// then runs the checked call (the native boundary checks again: memory safety depends on it).
import { DTYPE_CODE, storageOf } from './dtype';
import { DeviceTensor, devicesOf, isDeviceTensor, operandOf } from './device';
import { rangeError, typeError } from './errors';
import {
  BlockMask,
  MaskCall,
  MaskKernelRan,
  MaskOptions,
  MaskRan,
  MaskRule,
  blockCount,
  checkMaskRule,
  maskOperands,
  runMask,
} from './mask';
import { NativeAttentionArgs, NativeOperand, NativePlacement, native } from './native';
import { TokenGrid, numel } from './shapes';
import {
  ATTENTION_KERNEL,
  AttentionKernel,
  AttentionKernelRan,
  CPU_KERNEL,
  CpuKernel,
  PlacementOptions,
  chooseKernel,
  resolvePlacement,
} from './backend';
import { Tensor } from './tensor';
import { AnyTensor, QKVShape, checkOptions, checkPairGrid, checkQKV, checkScale } from './validate';

export type { AttentionKernel, AttentionKernelRan, CpuKernel } from './backend';

export interface AttentionOptions extends PlacementOptions {
  /** Softmax scale; default 1/sqrt(headDim). */
  scale?: number;
  /**
   * CUDA kernel: 'fast' (tensor cores, fp16/bf16, head dim 64/128), 'simple' (scalar reference
   * kernel, every shape), 'hopper' (wgmma, sm_90 only, opt-in), 'fast2' (tensor cores with a 2x2
   * warp grid, the fast kernel's inputs, opt-in) or 'auto' (fast where it applies).
   * Default: NABLA_ATTENTION_KERNEL or 'auto'. Ignored on the CPU.
   */
  kernel?: AttentionKernel;
  /**
   * CPU kernel: 'avx2' (AVX2 + FMA + F16C; an Error with code ERR_NABLA_KERNEL_UNAVAILABLE where the
   * CPU lacks them), 'scalar' (portable C++) or 'auto' (avx2 where the CPU has it).
   * Default: NABLA_CPU_ISA or 'auto'. Ignored on CUDA.
   */
  cpuKernel?: CpuKernel;
}

export interface DenseAttentionOptions extends AttentionOptions {
  /**
   * Token grid (T, Ht, Wt) of the tile-ordered sequence (Sq == Skv == T*Ht*Wt); any sizes. Dense
   * attention is the same with or without it; it picks the blocks the kernel walks.
   */
  grid?: TokenGrid;
}

type Output<T> = T extends DeviceTensor ? DeviceTensor : Tensor;

type MaskOperands = { kvCounts: NativeOperand; kvIndices: NativeOperand };

/** @internal A checked attention call. */
export interface AttentionCall {
  q: AnyTensor;
  k: AnyTensor;
  v: AnyTensor;
  shape: QKVShape;
  scale: number;
  kernel: AttentionKernel;
  cpuKernel: CpuKernel;
  place: NativePlacement;
  /** The token grid whose tiles are the blocks; blocks of 64 tokens without one. */
  grid?: TokenGrid;
  /** The mask's lists; dense attention without them. */
  lists?: MaskOperands;
}

/** The attention options of a call on a checked shape. */
function checkAttentionOptions(opts: Partial<AttentionOptions>, shape: QKVShape) {
  return {
    scale: opts.scale === undefined ? 1 / Math.sqrt(shape.headDim) : checkScale(opts.scale),
    kernel: chooseKernel(ATTENTION_KERNEL, opts.kernel),
    cpuKernel: chooseKernel(CPU_KERNEL, opts.cpuKernel),
  };
}

/**
 * @internal A checked attention call. The token grid comes from the mask (blockSparseAttention) or from
 * options.grid (dense attention); a mask's dims must match its grid's block count (or Sq/64 and
 * Skv/64 without a grid).
 */
export function checkAttention(q: unknown, k: unknown, v: unknown, mask: unknown, options: unknown): AttentionCall {
  const opts = checkOptions<DenseAttentionOptions>(options);
  if (mask !== undefined) maskOperands(mask); // a TypeError naming mask for anything but a live BlockMask
  const given = mask !== undefined ? (mask as BlockMask).grid : opts.grid;
  const shape = checkQKV(q, k, v, given !== undefined);
  const grid = given !== undefined ? checkPairGrid(given, shape, mask !== undefined ? 'mask.grid' : 'grid') : undefined;
  const attend = checkAttentionOptions(opts, shape);
  const tensors = [q, k, v] as AnyTensor[];
  const devices = devicesOf(...tensors);
  let lists: MaskOperands | undefined;
  if (mask !== undefined) {
    const ops = maskOperands(mask);
    const dims = (mask as BlockMask).dims;
    const want = [shape.batch, shape.heads, blockCount(shape.seqQ, grid), blockCount(shape.seqKv, grid)];
    if (dims.some((d, i) => d !== want[i]))
      throw rangeError(
        'mask.dims',
        `[${want.join(', ')}] (B, H, ${grid ? 'nb, nb: the blocks of the grid' : 'Sq/64, Skv/64'})`,
        `[${dims.join(', ')}]`,
      );
    if (ops.device !== undefined) devices.push(ops.device);
    lists = { kvCounts: ops.kvCounts, kvIndices: ops.kvIndices };
  }
  const [qt, kt, vt] = tensors;
  return { q: qt, k: kt, v: vt, shape, ...attend, place: resolvePlacement(opts, devices), grid, lists };
}

/** @internal The native arguments of a checked call that writes into `out`. */
export function attentionArgs(call: AttentionCall, out: NativeOperand): NativeAttentionArgs {
  const { shape, place } = call;
  return {
    q: operandOf(call.q),
    k: operandOf(call.k),
    v: operandOf(call.v),
    out,
    dtype: DTYPE_CODE[shape.type],
    batch: shape.batch,
    heads: shape.heads,
    seqQ: shape.seqQ,
    seqKv: shape.seqKv,
    headDim: shape.headDim,
    valueDim: shape.valueDim,
    scale: call.scale,
    kernel: call.kernel,
    cpuKernel: call.cpuKernel,
    tokenGrid: call.grid ? Int32Array.from(call.grid) : undefined,
    ...call.lists,
    ...place,
  };
}

function attentionOp(call: AttentionCall) {
  const { shape, place } = call;
  const dims = [shape.batch, shape.heads, shape.seqQ, shape.valueDim];
  const onDevice = [call.q, call.k, call.v].some(isDeviceTensor);
  const bytes = numel(dims) * storageOf(shape.type).BYTES_PER_ELEMENT;
  const out: Tensor | DeviceTensor = onDevice
    ? new DeviceTensor(shape.type, dims, place.device, new native.DeviceBuffer(place.device, bytes))
    : { type: shape.type, dims, data: new (storageOf(shape.type))(numel(dims)) };
  return { args: attentionArgs(call, operandOf(out)), out };
}

/** @internal An attention output and the kernel that computed it. */
export interface AttentionRan<O = Tensor | DeviceTensor> {
  output: O;
  kernel: AttentionKernelRan;
}

/** @internal Runs a checked attention call; reports which kernel ran. */
export function runAttention(call: AttentionCall, async: false): AttentionRan;
export function runAttention(call: AttentionCall, async: true): Promise<AttentionRan>;
export function runAttention(call: AttentionCall, async: boolean): AttentionRan | Promise<AttentionRan> {
  const { args, out } = attentionOp(call);
  if (!async) return { output: out, kernel: native.attention(args, false) };
  return native.attention(args, true).then((kernel) => ({ output: out, kernel }));
}

/**
 * @internal blockSparseAttention (mask given) or attention (mask undefined), reporting which kernel
 * ran: how the tests assert that the kernel they ask for is the one they check.
 */
export function attentionRan<T extends AnyTensor>(
  q: T,
  k: AnyTensor,
  v: AnyTensor,
  mask: BlockMask | undefined,
  options: DenseAttentionOptions | undefined,
  async: false,
): AttentionRan<Output<T>>;
export function attentionRan<T extends AnyTensor>(
  q: T,
  k: AnyTensor,
  v: AnyTensor,
  mask: BlockMask | undefined,
  options: DenseAttentionOptions | undefined,
  async: true,
): Promise<AttentionRan<Output<T>>>;
export function attentionRan(
  q: AnyTensor,
  k: AnyTensor,
  v: AnyTensor,
  mask: BlockMask | undefined,
  options: DenseAttentionOptions | undefined,
  async: boolean,
) {
  const call = checkAttention(q, k, v, mask, options);
  return async ? runAttention(call, true) : runAttention(call, false);
}

function checkMaskGiven(mask: unknown, dense: string): void {
  if (mask === undefined) throw typeError('mask', `a BlockMask (use ${dense}() for dense attention)`, mask);
}

/**
 * out[b,h,s] = sum_t softmax_t(q[b,h,s] . k[b,h,t] * scale) v[b,h,t] over the keys of the blocks the
 * mask keeps for s's query block. A query block with no kept block outputs zeros. Off the main thread.
 */
export async function blockSparseAttention<T extends AnyTensor>(
  q: T,
  k: AnyTensor,
  v: AnyTensor,
  mask: BlockMask,
  options?: AttentionOptions,
): Promise<Output<T>> {
  checkMaskGiven(mask, 'attention');
  return (await runAttention(checkAttention(q, k, v, mask, options), true)).output as Output<T>;
}

export function blockSparseAttentionSync<T extends AnyTensor>(
  q: T,
  k: AnyTensor,
  v: AnyTensor,
  mask: BlockMask,
  options?: AttentionOptions,
): Output<T> {
  checkMaskGiven(mask, 'attentionSync');
  return runAttention(checkAttention(q, k, v, mask, options), false).output as Output<T>;
}

/** Dense attention (every block kept): the baseline. Off the main thread. */
export async function attention<T extends AnyTensor>(
  q: T,
  k: AnyTensor,
  v: AnyTensor,
  options?: DenseAttentionOptions,
): Promise<Output<T>> {
  return (await runAttention(checkAttention(q, k, v, undefined, options), true)).output as Output<T>;
}

export function attentionSync<T extends AnyTensor>(
  q: T,
  k: AnyTensor,
  v: AnyTensor,
  options?: DenseAttentionOptions,
): Output<T> {
  return runAttention(checkAttention(q, k, v, undefined, options), false).output as Output<T>;
}

export type NablaAttentionOptions = MaskOptions & AttentionOptions;

/** @internal What nablaAttention returns, and the kernels that ran. */
export interface NablaAttentionRan<O = Tensor | DeviceTensor> {
  output: O;
  mask: BlockMask;
  kernels: { mask: MaskKernelRan; attention: AttentionKernelRan };
}

/** @internal A checked nablaAttention call, before its tensors are bound. */
export interface NablaPlan {
  shape: QKVShape;
  rule: MaskRule;
  attend: ReturnType<typeof checkAttentionOptions>;
  place: NativePlacement;
}

/**
 * @internal One check for both steps, on q, k and v of a checked shape: every option before any
 * work (a bad attention option costs no mask), placement once. `devices` are the inputs' devices;
 * `maskOnDevice` whether q and k live on one (the mask's lists then do too). `kvParam` names the
 * key length in errors (a token grid needs Skv == Sq).
 */
export function planNablaAttention(
  opts: Partial<NablaAttentionOptions>,
  shape: QKVShape,
  devices: number[],
  maskOnDevice: boolean,
  kvParam = 'k.dims',
): NablaPlan {
  const rule = checkMaskRule(opts, shape, maskOnDevice, kvParam);
  const attend = checkAttentionOptions(opts, shape);
  return { shape, rule, attend, place: resolvePlacement(opts, devices) };
}

function checkNablaAttention(q: unknown, k: unknown, v: unknown, options: unknown): NablaPlan {
  const opts = checkOptions<NablaAttentionOptions>(options);
  const shape = checkQKV(q, k, v, opts.grid !== undefined);
  const [qt, kt, vt] = [q, k, v] as AnyTensor[];
  return planNablaAttention(opts, shape, devicesOf(qt, kt, vt), devicesOf(qt, kt).length > 0);
}

/** A mask the caller never receives (its attention failed): its device lists go back to the pool now. */
function disposeUnseen(mask: BlockMask): void {
  try {
    mask.dispose();
  } catch {
    // still in use by a pending op: garbage collection frees it once that op is done
  }
}

/** The plan's mask step on q and k. */
function maskStep({ shape, rule, place }: NablaPlan, q: AnyTensor, k: AnyTensor): MaskCall {
  return { ...rule, q, k, shape, place };
}

/** The plan's attention step over the lists of `mask`. */
function attentionStep(
  { shape, rule, attend, place }: NablaPlan,
  q: AnyTensor,
  k: AnyTensor,
  v: AnyTensor,
  mask: BlockMask,
): AttentionCall {
  return { q, k, v, shape, ...attend, place, grid: rule.tokenGrid, lists: maskOperands(mask) };
}

function nablaRan(built: MaskRan, ran: AttentionRan): NablaAttentionRan {
  return { output: ran.output, mask: built.mask, kernels: { mask: built.kernel, attention: ran.kernel } };
}

/** @internal Runs a planned nablaAttention on q, k and v of its shape: the mask, then attention over it. */
export async function runNablaAttention(
  plan: NablaPlan,
  q: AnyTensor,
  k: AnyTensor,
  v: AnyTensor,
): Promise<NablaAttentionRan> {
  const built = await runMask(maskStep(plan, q, k), true);
  try {
    return nablaRan(built, await runAttention(attentionStep(plan, q, k, v, built.mask), true));
  } catch (err) {
    disposeUnseen(built.mask);
    throw err;
  }
}

function runNablaAttentionSync(plan: NablaPlan, q: AnyTensor, k: AnyTensor, v: AnyTensor): NablaAttentionRan {
  const built = runMask(maskStep(plan, q, k), false);
  try {
    return nablaRan(built, runAttention(attentionStep(plan, q, k, v, built.mask), false));
  } catch (err) {
    disposeUnseen(built.mask);
    throw err;
  }
}

/** @internal nablaAttention, reporting which kernels ran. */
export async function nablaAttentionRan<T extends AnyTensor>(
  q: T,
  k: AnyTensor,
  v: AnyTensor,
  options?: NablaAttentionOptions,
): Promise<NablaAttentionRan<Output<T>>> {
  const plan = checkNablaAttention(q, k, v, options);
  return (await runNablaAttention(plan, q, k, v)) as NablaAttentionRan<Output<T>>;
}

export function nablaAttentionRanSync<T extends AnyTensor>(
  q: T,
  k: AnyTensor,
  v: AnyTensor,
  options?: NablaAttentionOptions,
): NablaAttentionRan<Output<T>> {
  const plan = checkNablaAttention(q, k, v, options);
  return runNablaAttentionSync(plan, q, k, v) as NablaAttentionRan<Output<T>>;
}

/** The NABLA mask of q and k, then block-sparse attention over it. */
export async function nablaAttention<T extends AnyTensor>(
  q: T,
  k: AnyTensor,
  v: AnyTensor,
  options?: NablaAttentionOptions,
): Promise<{ output: Output<T>; mask: BlockMask }> {
  const { output, mask } = await nablaAttentionRan(q, k, v, options);
  return { output, mask };
}

export function nablaAttentionSync<T extends AnyTensor>(
  q: T,
  k: AnyTensor,
  v: AnyTensor,
  options?: NablaAttentionOptions,
): { output: Output<T>; mask: BlockMask } {
  const { output, mask } = nablaAttentionRanSync(q, k, v, options);
  return { output, mask };
}
