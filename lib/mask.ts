// Block masks and the ops that build them: blockPool and nablaMask (docs/nabla.md section 1).
import { DTYPE_CODE } from './dtype';
import { DeviceTensor, devicesOf, isDeviceTensor, operandOf } from './device';
import { describe, rangeError, typeError } from './errors';
import { NativeDeviceBuffer, NativeMaskArgs, NativeOperand, NativePlacement, native } from './native';
import {
  BLOCK_SIZE,
  DEFAULT_METHOD,
  DEFAULT_THRESHOLD,
  MAX_DIM,
  MaskMethod,
  StaWindow,
  TokenGrid,
  numel,
} from './shapes';
import { tileLayout } from './layout';
import {
  MASK_KERNEL,
  MaskKernel,
  MaskKernelRan,
  POOL_KERNEL,
  PlacementOptions,
  PoolKernel,
  PoolKernelRan,
  chooseKernel,
  resolvePlacement,
} from './backend';
import { Tensor } from './tensor';
import {
  AnyTensor,
  QKShape,
  check4d,
  checkCausal,
  checkFrames,
  checkGridTokens,
  checkMethod,
  checkOptions,
  checkPairGrid,
  checkQK,
  checkThreshold,
  checkTokenGrid,
  checkWindow,
} from './validate';

export type { MaskKernel, MaskKernelRan, PoolKernel, PoolKernelRan } from './backend';
export type MaskDims = readonly [batch: number, heads: number, queryBlocks: number, keyBlocks: number];

interface HostLists {
  kvCounts: Int32Array;
  kvIndices: Int32Array;
}

interface DeviceLists {
  device: number;
  kvCounts: NativeDeviceBuffer;
  kvIndices: NativeDeviceBuffer;
}

/**
 * Where a mask's lists live. Kept out of the object (a WeakMap, not a property) so that no caller
 * can reach and edit them: a mask is checked once, when it is built, and stays valid, so density()
 * and every op may trust it. `host` is also the cache of a device mask's lists once read.
 */
interface MaskLists {
  host?: HostLists;
  onDevice?: DeviceLists;
}

const listsOf = new WeakMap<BlockMask, MaskLists>();

/** Marks constructor calls from this module, whose lists are right by construction. */
const BUILT: unique symbol = Symbol('BlockMask.built');

const WHAT_MASK = 'a BlockMask (see nablaMask, BlockMask.fromDense, BlockMask.fromKvBlocks)';

/** The lists of a mask built by this module; anything else (a plain object, Object.create(BlockMask.prototype)) is refused. */
function stateOf(mask: unknown): MaskLists {
  const state = typeof mask === 'object' && mask !== null ? listsOf.get(mask as BlockMask) : undefined;
  if (state === undefined) throw typeError('mask', WHAT_MASK, mask);
  return state;
}

/**
 * Which 64x64 (query block, key block) tiles attention computes, in PyTorch FlexAttention's
 * `BlockMask.from_kv_blocks` layout: row r = (b*H + h)*nq + i keeps kvCounts[r] key blocks,
 * listed first (ascending) in kvIndices[r*nk .. (r+1)*nk); the rest of the row holds the dropped
 * ids ascending, so every entry is a valid block id.
 * A mask cannot be changed once built: `kvCounts` and `kvIndices` return copies.
 * A mask built on a CUDA device stays there until its lists are read (then they are downloaded once).
 */
export class BlockMask {
  readonly blockSize: number = BLOCK_SIZE;
  readonly dims: MaskDims;
  /** The block map P (softmax of pooled scores) [B, H, nq, nk], when requested with `returnMap`. */
  readonly map?: Float32Array;
  /**
   * The token grid (T, Ht, Wt) of the sequence the mask was built for (nablaMask with `grid`):
   * attention over this mask then uses its blocks (one per tile, edge tiles smaller).
   */
  readonly grid?: TokenGrid;

  /**
   * The mask of FlexAttention-style lists, checked and copied as by BlockMask.fromKvBlocks (the
   * arrays given stay the caller's).
   */
  constructor(dims: MaskDims, lists: { kvCounts: Int32Array; kvIndices: Int32Array }, map?: Float32Array);
  constructor(
    dims: MaskDims,
    lists: HostLists | DeviceLists,
    map?: Float32Array,
    built?: typeof BUILT,
    grid?: TokenGrid,
  ) {
    let state: MaskLists;
    if (built === BUILT) {
      state = 'device' in lists ? { onDevice: lists } : { host: lists };
    } else {
      dims = checkMaskDims(dims);
      if (typeof lists !== 'object' || lists === null)
        throw typeError('lists', 'an object { kvCounts, kvIndices }', lists);
      state = { host: listsFromDense(checkLists(lists.kvCounts, lists.kvIndices, dims), dims) };
      if (map !== undefined) {
        if (!(map instanceof Float32Array)) throw typeError('map', 'a Float32Array [B, H, nq, nk]', map);
        if (map.length !== numel(dims))
          throw rangeError('map', `${numel(dims)} elements for dims [${dims.join(', ')}]`, `${map.length}`);
      }
    }
    this.dims = Object.freeze([dims[0], dims[1], dims[2], dims[3]]) as MaskDims;
    if (map) this.map = map;
    if (built === BUILT && grid !== undefined) this.grid = Object.freeze([grid[0], grid[1], grid[2]]) as TokenGrid;
    listsOf.set(this, state);
    Object.freeze(this);
  }

  /**
   * Builds a mask from a dense 0/1 array [B, H, nq, nk] (any non-zero byte keeps the block). With
   * `grid` (a token grid of nq == nk blocks) the mask carries it, as nablaMask's masks do.
   */
  static fromDense(dense: Uint8Array, dims: MaskDims, grid?: TokenGrid): BlockMask {
    const d = checkMaskDims(dims);
    if (!(dense instanceof Uint8Array)) throw typeError('dense', 'a Uint8Array of 0/1 [B, H, nq, nk]', dense);
    if (dense.length !== numel(d))
      throw rangeError('dense', `${numel(d)} elements for dims [${d.join(', ')}]`, `${dense.length}`);
    return builtMask(d, listsFromDense(dense, d), undefined, grid !== undefined ? checkMaskGrid(grid, d) : undefined);
  }

  /**
   * Builds a mask from FlexAttention-style lists: kvCounts [B*H*nq] and kvIndices [B*H*nq*nk]
   * whose first kvCounts[r] entries of row r are its kept key blocks (distinct, any order; they
   * are stored ascending). The rest of each row is ignored and rewritten as the dropped ids.
   * The mask holds its own copy of the lists.
   */
  static fromKvBlocks(kvCounts: Int32Array, kvIndices: Int32Array, dims: MaskDims): BlockMask {
    return new BlockMask(dims, { kvCounts, kvIndices });
  }

  /** The CUDA device holding the lists, or undefined for host memory. */
  get device(): number | undefined {
    return stateOf(this).onDevice?.device;
  }

  /** True once dispose() freed the device lists (a host mask is never disposed). */
  get disposed(): boolean {
    const dev = stateOf(this).onDevice;
    return dev !== undefined && (dev.kvCounts.disposed || dev.kvIndices.disposed);
  }

  /** A copy of the kept-block counts, Int32Array [B*H*nq]: read it once, not in a loop. */
  get kvCounts(): Int32Array {
    return hostLists(this).kvCounts.slice();
  }

  /** A copy of the block ids, Int32Array [B*H*nq*nk] (176 MB at 720p): read it once, not in a loop. */
  get kvIndices(): Int32Array {
    return hostLists(this).kvIndices.slice();
  }

  /** Kept blocks / all blocks. */
  density(): number {
    let kept = 0;
    for (const c of hostLists(this).kvCounts) kept += c;
    return kept / numel(this.dims);
  }

  /** Density of every (batch, head) pair, [B*H] in row-major order. */
  headDensities(): Float64Array {
    const counts = hostLists(this).kvCounts;
    const [B, H, nq, nk] = this.dims;
    const out = new Float64Array(B * H);
    for (let bh = 0; bh < B * H; bh++) {
      let kept = 0;
      for (let i = 0; i < nq; i++) kept += counts[bh * nq + i];
      out[bh] = kept / (nq * nk);
    }
    return out;
  }

  /** The mask as 0/1 bytes [B, H, nq, nk]. */
  toDense(): Uint8Array {
    const { kvCounts, kvIndices } = hostLists(this);
    const nk = this.dims[3];
    const dense = new Uint8Array(kvIndices.length);
    for (let r = 0; r < kvCounts.length; r++)
      for (let j = 0; j < kvCounts[r]; j++) dense[r * nk + kvIndices[r * nk + j]] = 1;
    return dense;
  }

  /** A copy of the lists on a CUDA device (kept there for device attention). */
  toDevice(options: { device?: number } = {}): BlockMask {
    const { kvCounts, kvIndices } = hostLists(this);
    const place = resolvePlacement({ backend: 'cuda', device: options.device }, []);
    const counts = new native.DeviceBuffer(place.device, kvCounts.byteLength);
    const indices = new native.DeviceBuffer(place.device, kvIndices.byteLength);
    counts.upload(kvCounts);
    indices.upload(kvIndices);
    return builtMask(this.dims, { device: place.device, kvCounts: counts, kvIndices: indices }, this.map, this.grid);
  }

  /** Frees device lists now (host lists are left to the garbage collector). */
  dispose(): void {
    const dev = stateOf(this).onDevice;
    dev?.kvCounts.dispose();
    dev?.kvIndices.dispose();
  }

  /**
   * @internal The lists as native operands: the device buffers of a device mask, copies of the host
   * lists otherwise (the ops themselves read the lists through maskOperands, without a copy).
   */
  operands(): { kvCounts: NativeOperand; kvIndices: NativeOperand; device?: number } {
    const ops = maskOperands(this);
    if (ops.device !== undefined) return ops;
    return { kvCounts: (ops.kvCounts as Int32Array).slice(), kvIndices: (ops.kvIndices as Int32Array).slice() };
  }
}

type TrustedConstructor = new (
  dims: MaskDims,
  lists: HostLists | DeviceLists,
  map: Float32Array | undefined,
  built: typeof BUILT,
  grid?: TokenGrid,
) => BlockMask;

/** A mask of lists built by this module (host or device), taken as they are. */
function builtMask(dims: MaskDims, lists: HostLists | DeviceLists, map?: Float32Array, grid?: TokenGrid): BlockMask {
  return new (BlockMask as unknown as TrustedConstructor)(dims, lists, map, BUILT, grid);
}

/** @internal Frees what an op returned: a device tensor or a mask's device lists; host tensors need nothing. */
export function release(x: Tensor | DeviceTensor | BlockMask): void {
  if (x instanceof DeviceTensor) x.dispose();
  else if (x instanceof BlockMask) x.dispose();
}

/**
 * @internal What an op passes to native code for `mask`: its own lists (device buffers where the
 * mask lives on a device: no upload per call). Throws a TypeError naming `mask` for anything that
 * is not a live mask built by this module.
 */
export function maskOperands(mask: unknown): { kvCounts: NativeOperand; kvIndices: NativeOperand; device?: number } {
  const state = stateOf(mask);
  if (state.onDevice) {
    checkLive(state.onDevice);
    return { ...state.onDevice };
  }
  return { ...(state.host as HostLists) };
}

function checkLive(dev: DeviceLists): void {
  if (dev.kvCounts.disposed || dev.kvIndices.disposed)
    throw typeError('mask', 'a BlockMask whose device lists are live', 'a disposed device mask');
}

/** The host lists of a mask, downloading a device mask's lists the first time. */
function hostLists(mask: BlockMask): HostLists {
  const state = stateOf(mask);
  if (!state.host) {
    const dev = state.onDevice as DeviceLists;
    checkLive(dev);
    const kvCounts = new Int32Array(dev.kvCounts.bytes / 4);
    const kvIndices = new Int32Array(dev.kvIndices.bytes / 4);
    dev.kvCounts.download(kvCounts, false);
    dev.kvIndices.download(kvIndices, false);
    state.host = { kvCounts, kvIndices };
  }
  return state.host;
}

/** The lists of a dense 0/1 mask: each row's kept ids ascending, then its dropped ids ascending. */
function listsFromDense(dense: Uint8Array, d: MaskDims): HostLists {
  const nk = d[3];
  const rows = d[0] * d[1] * d[2];
  const kvCounts = new Int32Array(rows);
  const kvIndices = new Int32Array(rows * nk);
  for (let r = 0; r < rows; r++) {
    let next = r * nk;
    for (let j = 0; j < nk; j++) if (dense[r * nk + j]) kvIndices[next++] = j;
    kvCounts[r] = next - r * nk;
    for (let j = 0; j < nk; j++) if (!dense[r * nk + j]) kvIndices[next++] = j;
  }
  return { kvCounts, kvIndices };
}

/**
 * Checks FlexAttention-style lists against dims: kvCounts[r] in [0, nk], and the first kvCounts[r]
 * ids of row r distinct and in [0, nk). Returns the dense 0/1 mask they describe.
 */
function checkLists(kvCounts: unknown, kvIndices: unknown, d: MaskDims): Uint8Array {
  const rows = d[0] * d[1] * d[2];
  const nk = d[3];
  if (!(kvCounts instanceof Int32Array)) throw typeError('kvCounts', 'an Int32Array', kvCounts);
  if (!(kvIndices instanceof Int32Array)) throw typeError('kvIndices', 'an Int32Array', kvIndices);
  if (kvCounts.length !== rows) throw rangeError('kvCounts', `${rows} elements (B*H*nq)`, `${kvCounts.length}`);
  if (kvIndices.length !== rows * nk)
    throw rangeError('kvIndices', `${rows * nk} elements (B*H*nq*nk)`, `${kvIndices.length}`);
  const dense = new Uint8Array(rows * nk);
  for (let r = 0; r < rows; r++) {
    const count = kvCounts[r];
    if (count < 0 || count > nk) throw rangeError('kvCounts', `counts in [0, ${nk}]`, `${count} at row ${r}`);
    for (let j = 0; j < count; j++) {
      const id = kvIndices[r * nk + j];
      if (id < 0 || id >= nk) throw rangeError('kvIndices', `block ids in [0, ${nk})`, `${id} at row ${r}`);
      if (dense[r * nk + id])
        throw rangeError('kvIndices', 'distinct block ids within a row', `${id} twice at row ${r}`);
      dense[r * nk + id] = 1;
    }
  }
  return dense;
}

/** A token grid whose block count is both nq and nk of dims. */
function checkMaskGrid(grid: unknown, d: MaskDims): TokenGrid {
  const g = checkTokenGrid(grid);
  const nb = tileLayout(g).blocks;
  if (d[2] !== nb || d[3] !== nb)
    throw rangeError(
      'grid',
      `a token grid of ${d[2]} x ${d[3]} blocks like dims [${d.join(', ')}]`,
      `${describe(grid)} (${nb} blocks)`,
    );
  return g;
}

function checkMaskDims(dims: unknown): MaskDims {
  const what = '4 positive integers [batch, heads, queryBlocks, keyBlocks]';
  if (!Array.isArray(dims) || dims.some((d) => !Number.isInteger(d))) throw typeError('dims', what, dims);
  // below MAX_DIM: block counts and ids are stored in int32 lists
  if (dims.length !== 4 || dims.some((d) => d < 1 || d >= MAX_DIM)) throw rangeError('dims', what, describe(dims));
  return [dims[0], dims[1], dims[2], dims[3]];
}

// ---------------------------------------------------------------------------------------------
// blockPool: the public ops check their arguments once, then run the checked call.

export interface PoolOptions extends PlacementOptions {
  /** Token grid (T, Ht, Wt) of the tile-ordered sequence: one block per tile (edge tiles smaller). */
  grid?: TokenGrid;
  /**
   * CUDA pooling kernel: 'simple' (one block of threads per pooled block), 'fast2' (one warp per
   * pooled block, 16-byte loads; the simple kernel runs where it does not apply: head dims that are
   * not a multiple of 8, tensors not 16-byte aligned) or 'auto' (fast2). Both give the same bits.
   * Default: NABLA_POOL_KERNEL or 'auto'. Ignored on the CPU.
   */
  poolKernel?: PoolKernel;
}
type Pooled<T> = T extends DeviceTensor ? DeviceTensor : Tensor;

interface PoolCall {
  x: AnyTensor & { dims: readonly [number, number, number, number] };
  grid?: TokenGrid;
  place: NativePlacement;
  poolKernel: PoolKernel;
}

function checkPool(x: unknown, options: unknown): PoolCall {
  const opts = checkOptions<PoolOptions>(options);
  const t = check4d(x, 'x', opts.grid !== undefined);
  const grid = opts.grid !== undefined ? checkGridTokens(opts.grid, t.dims[2]) : undefined;
  const poolKernel = chooseKernel(POOL_KERNEL, opts.poolKernel);
  return { x: t, grid, place: resolvePlacement(opts, devicesOf(t)), poolKernel };
}

/** Blocks of a sequence of `seq` tokens: one per tile of the grid, else one per 64 tokens. */
export function blockCount(seq: number, grid?: TokenGrid): number {
  return grid !== undefined ? tileLayout(grid).blocks : seq / BLOCK_SIZE;
}

function poolOp({ x, grid, place, poolKernel }: PoolCall) {
  const [B, H, S, D] = x.dims;
  const dims = [B, H, blockCount(S, grid), D];
  const out: Tensor | DeviceTensor = isDeviceTensor(x)
    ? new DeviceTensor('float32', dims, x.device, new native.DeviceBuffer(x.device, numel(dims) * 4))
    : { type: 'float32', dims, data: new Float32Array(numel(dims)) };
  const args = {
    x: operandOf(x),
    dtype: DTYPE_CODE[x.type],
    rows: B * H,
    seq: S,
    headDim: D,
    out: operandOf(out),
    tokenGrid: grid ? Int32Array.from(grid) : undefined,
    poolKernel,
    ...place,
  };
  return { args, out };
}

/**
 * [B, H, S, D] -> [B, H, nb, D]: the fp32 mean of every block's own tokens (blocks of 64 tokens,
 * or one per tile of `grid`). Off the main thread.
 */
export async function blockPool<T extends AnyTensor>(x: T, options?: PoolOptions): Promise<Pooled<T>> {
  const { args, out } = poolOp(checkPool(x, options));
  await native.blockPool(args, true);
  return out as Pooled<T>;
}

export function blockPoolSync<T extends AnyTensor>(x: T, options?: PoolOptions): Pooled<T> {
  return blockPoolRan(x, options).pooled;
}

/** @internal blockPoolSync, reporting which kernel pooled (for tests and benchmarks). */
export function blockPoolRan<T extends AnyTensor>(
  x: T,
  options?: PoolOptions,
): { pooled: Pooled<T>; kernel: PoolKernelRan } {
  const { args, out } = poolOp(checkPool(x, options));
  const kernel = native.blockPool(args, false);
  return { pooled: out as Pooled<T>, kernel };
}

// ---------------------------------------------------------------------------------------------
// nablaMask

export interface MaskOptions extends PlacementOptions {
  /** CDF mass to keep (cdf) or fraction of blocks (topk), in (0, 1]. Default 0.7. */
  threshold?: number;
  /** 'cdf' (NABLA) or 'topk'. Default 'cdf'. */
  method?: MaskMethod;
  /**
   * Token grid (T, Ht, Wt) of the tile-ordered sequence (any positive sizes; Sq == Skv == T*Ht*Wt):
   * one block per tile. Required with sta, frames or causal.
   */
  grid?: TokenGrid;
  /** Frame-causal: a query block sees only key blocks of its own and earlier frames (needs grid). */
  causal?: boolean;
  /** STA window (frames, block rows, block cols) in blocks, ORed into the mask. */
  sta?: StaWindow;
  /** Document boundaries in frames, e.g. [0, 10, 21]: attention stays inside each document. */
  frames?: readonly number[];
  /** Keep the block map P on the result (mask.map); host masks only. */
  returnMap?: boolean;
  /**
   * CUDA mask kernel: 'fast2' (16 rows per block, keys in registers, one vectorised pooling launch;
   * an error where it does not apply: head dims not a multiple of 4, rows of more than 1280 key
   * blocks, or 16 rows of logits beyond the device's shared memory), 'fast' (one warp per row; the
   * same masks as fast2), 'simple' (one block of threads per row) or 'auto' (fast2 where it applies,
   * else fast, else simple). Default: NABLA_MASK_KERNEL or 'auto'. Ignored on the CPU.
   */
  maskKernel?: MaskKernel;
}

/** The checked mask options of one call on q and k of `shape`. */
export interface MaskRule {
  threshold: number;
  method: MaskMethod;
  tokenGrid?: TokenGrid;
  grid?: readonly [number, number, number]; // block grid (T, ceil(Ht/8), ceil(Wt/8))
  window?: StaWindow;
  causal: boolean;
  frames?: number[];
  returnMap: boolean;
  maskKernel: MaskKernel;
}

/** @internal A checked nablaMask call: q and k of `shape`, its rule and where it runs. */
export interface MaskCall extends MaskRule {
  q: AnyTensor;
  k: AnyTensor;
  shape: QKShape;
  place: NativePlacement;
}

/**
 * @internal Checks the mask options for q and k of a checked shape; `kvParam` names the key length
 * in errors (a token grid needs Skv == Sq).
 */
export function checkMaskRule(
  opts: Partial<MaskOptions>,
  shape: QKShape,
  onDevice: boolean,
  kvParam = 'k.dims',
): MaskRule {
  const threshold = checkThreshold(opts.threshold ?? DEFAULT_THRESHOLD);
  const method = checkMethod(opts.method ?? DEFAULT_METHOD);
  const needsGrid = opts.sta !== undefined || opts.frames !== undefined;
  if (needsGrid && opts.grid === undefined)
    throw typeError('grid', 'a token grid [T, Ht, Wt] (required with sta or frames)', undefined);
  const tokenGrid = opts.grid !== undefined ? checkPairGrid(opts.grid, shape, 'grid', kvParam) : undefined;
  const causal = checkCausal(opts.causal, tokenGrid !== undefined);
  const layout = tokenGrid !== undefined ? tileLayout(tokenGrid) : undefined;
  const grid = layout !== undefined ? ([layout.grid[0], layout.tilesH, layout.tilesW] as const) : undefined;
  const window = opts.sta !== undefined ? checkWindow(opts.sta) : undefined;
  const frames = opts.frames !== undefined ? checkFrames(opts.frames, (grid as TokenGrid)[0]) : undefined;
  if (opts.returnMap !== undefined && typeof opts.returnMap !== 'boolean')
    throw typeError('returnMap', 'a boolean', opts.returnMap);
  if (onDevice && opts.returnMap)
    throw typeError('returnMap', 'false for device inputs (the map is a host picture aid)', true);
  const maskKernel = chooseKernel(MASK_KERNEL, opts.maskKernel);
  return { threshold, method, tokenGrid, grid, window, causal, frames, returnMap: opts.returnMap ?? false, maskKernel };
}

function checkMask(q: unknown, k: unknown, options: unknown): MaskCall {
  const opts = checkOptions<MaskOptions>(options);
  const shape = checkQK(q, k, opts.grid !== undefined);
  const devices = devicesOf(q as AnyTensor, k as AnyTensor);
  const rule = checkMaskRule(opts, shape, devices.length > 0);
  return { ...rule, q: q as AnyTensor, k: k as AnyTensor, shape, place: resolvePlacement(opts, devices) };
}

function maskOp(call: MaskCall) {
  const { shape, place } = call;
  const nq = blockCount(shape.seqQ, call.tokenGrid);
  const nk = blockCount(shape.seqKv, call.tokenGrid);
  const rows = shape.batch * shape.heads * nq;
  const dims: MaskDims = [shape.batch, shape.heads, nq, nk];
  // device inputs get device lists; host inputs get host lists on either backend
  const lists: HostLists | DeviceLists =
    devicesOf(call.q, call.k).length > 0
      ? {
          device: place.device,
          kvCounts: new native.DeviceBuffer(place.device, rows * 4),
          kvIndices: new native.DeviceBuffer(place.device, rows * nk * 4),
        }
      : { kvCounts: new Int32Array(rows), kvIndices: new Int32Array(rows * nk) };
  const map = call.returnMap ? new Float32Array(rows * nk) : undefined;
  const args: NativeMaskArgs = {
    q: operandOf(call.q),
    k: operandOf(call.k),
    dtype: DTYPE_CODE[shape.type],
    batch: shape.batch,
    heads: shape.heads,
    seqQ: shape.seqQ,
    seqKv: shape.seqKv,
    headDim: shape.headDim,
    threshold: call.threshold,
    method: call.method,
    sta: call.window !== undefined,
    grid: call.grid ? Int32Array.from(call.grid) : undefined,
    window: call.window ? Int32Array.from(call.window) : undefined,
    frames: call.frames ? Int32Array.from(call.frames) : undefined,
    tokenGrid: call.tokenGrid ? Int32Array.from(call.tokenGrid) : undefined,
    causal: call.causal,
    kvCounts: lists.kvCounts,
    kvIndices: lists.kvIndices,
    map,
    maskKernel: call.maskKernel,
    ...place,
  };
  return { args, mask: builtMask(dims, lists, map, call.tokenGrid) };
}

/** @internal A mask and the kernel that built it. */
export interface MaskRan {
  mask: BlockMask;
  kernel: MaskKernelRan;
}

/** @internal Runs a checked nablaMask call; reports which kernel built the mask. */
export function runMask(call: MaskCall, async: false): MaskRan;
export function runMask(call: MaskCall, async: true): Promise<MaskRan>;
export function runMask(call: MaskCall, async: boolean): MaskRan | Promise<MaskRan> {
  const { args, mask } = maskOp(call);
  if (!async) return { mask, kernel: native.nablaMask(args, false) };
  return native.nablaMask(args, true).then((kernel) => ({ mask, kernel }));
}

/** @internal nablaMask, reporting which kernel built the mask (for tests and benchmarks). */
export function nablaMaskRan(q: AnyTensor, k: AnyTensor, options: MaskOptions | undefined, async: false): MaskRan;
export function nablaMaskRan(
  q: AnyTensor,
  k: AnyTensor,
  options: MaskOptions | undefined,
  async: true,
): Promise<MaskRan>;
export function nablaMaskRan(
  q: AnyTensor,
  k: AnyTensor,
  options: MaskOptions | undefined,
  async: boolean,
): MaskRan | Promise<MaskRan> {
  const call = checkMask(q, k, options);
  return async ? runMask(call, true) : runMask(call, false);
}

/** The NABLA block mask of q and k ([B, H, S, D], tile order). Runs off the main thread. */
export async function nablaMask(q: AnyTensor, k: AnyTensor, options?: MaskOptions): Promise<BlockMask> {
  return (await runMask(checkMask(q, k, options), true)).mask;
}

export function nablaMaskSync(q: AnyTensor, k: AnyTensor, options?: MaskOptions): BlockMask {
  return runMask(checkMask(q, k, options), false).mask;
}
