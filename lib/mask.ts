// Block masks and the ops that build them: blockPool and nablaMask (docs/nabla.md section 1).
import { DTYPE_CODE } from './dtype';
import { DeviceTensor, devicesOf, isDeviceTensor, operandOf } from './device';
import { describe, rangeError, typeError } from './errors';
import { NativeDeviceBuffer, NativeMaskArgs, NativeOperand, native } from './native';
import { BLOCK_SIZE, DEFAULT_METHOD, DEFAULT_THRESHOLD, MAX_DIM, MaskMethod, StaWindow, TokenGrid, numel } from './shapes';
import { PlacementOptions, resolvePlacement } from './backend';
import { Tensor } from './tensor';
import {
  AnyTensor, blockGridFor, check4d, checkFrames, checkMethod, checkOptions, checkQK, checkThreshold, checkWindow,
} from './validate';

export type MaskDims = readonly [batch: number, heads: number, queryBlocks: number, keyBlocks: number];

interface DeviceLists {
  device: number;
  kvCounts: NativeDeviceBuffer;
  kvIndices: NativeDeviceBuffer;
}

/**
 * Which 64x64 (query block, key block) tiles attention computes, in PyTorch FlexAttention's
 * `BlockMask.from_kv_blocks` layout: row r = (b*H + h)*nq + i keeps kvCounts[r] key blocks,
 * listed first (ascending) in kvIndices[r*nk .. (r+1)*nk); the rest of the row holds the dropped
 * ids ascending, so every entry is a valid block id.
 * A mask built on a CUDA device stays there until its lists are read (then they are downloaded once).
 */
export class BlockMask {
  readonly blockSize: number = BLOCK_SIZE;
  /** The block map P (softmax of pooled scores) [B, H, nq, nk], when requested with `returnMap`. */
  readonly map?: Float32Array;
  private host?: { kvCounts: Int32Array; kvIndices: Int32Array };
  private onDevice?: DeviceLists;

  /** @internal use fromDense / fromKvBlocks / nablaMask */
  constructor(
    readonly dims: MaskDims,
    lists: { kvCounts: Int32Array; kvIndices: Int32Array } | DeviceLists,
    map?: Float32Array,
  ) {
    if ('device' in lists) this.onDevice = lists;
    else this.host = lists;
    if (map) this.map = map;
  }

  /** Builds a mask from a dense 0/1 array [B, H, nq, nk] (any non-zero byte keeps the block). */
  static fromDense(dense: Uint8Array, dims: MaskDims): BlockMask {
    const d = checkMaskDims(dims);
    if (!(dense instanceof Uint8Array)) throw typeError('dense', 'a Uint8Array of 0/1 [B, H, nq, nk]', dense);
    if (dense.length !== numel(d)) throw rangeError('dense', `${numel(d)} elements for dims [${d.join(', ')}]`, `${dense.length}`);
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
    return new BlockMask(d, { kvCounts, kvIndices });
  }

  /**
   * Builds a mask from FlexAttention-style lists: kvCounts [B*H*nq] and kvIndices [B*H*nq*nk]
   * whose first kvCounts[r] entries of row r are its kept key blocks (distinct, any order; they
   * are stored ascending). The rest of each row is ignored and rewritten as the dropped ids.
   */
  static fromKvBlocks(kvCounts: Int32Array, kvIndices: Int32Array, dims: MaskDims): BlockMask {
    const d = checkMaskDims(dims);
    return BlockMask.fromDense(checkLists(kvCounts, kvIndices, d), d);
  }

  /** The CUDA device holding the lists, or undefined for host memory. */
  get device(): number | undefined {
    return this.onDevice?.device;
  }

  /** True once dispose() freed the device lists (a host mask is never disposed). */
  get disposed(): boolean {
    return this.onDevice !== undefined && (this.onDevice.kvCounts.disposed || this.onDevice.kvIndices.disposed);
  }

  get kvCounts(): Int32Array {
    return this.hostLists().kvCounts;
  }

  get kvIndices(): Int32Array {
    return this.hostLists().kvIndices;
  }

  /** Kept blocks / all blocks. */
  density(): number {
    let kept = 0;
    for (const c of this.kvCounts) kept += c;
    return kept / numel(this.dims);
  }

  /** Density of every (batch, head) pair, [B*H] in row-major order. */
  headDensities(): Float64Array {
    const [B, H, nq, nk] = this.dims;
    const out = new Float64Array(B * H);
    const counts = this.kvCounts;
    for (let bh = 0; bh < B * H; bh++) {
      let kept = 0;
      for (let i = 0; i < nq; i++) kept += counts[bh * nq + i];
      out[bh] = kept / (nq * nk);
    }
    return out;
  }

  /** The mask as 0/1 bytes [B, H, nq, nk]. */
  toDense(): Uint8Array {
    const nk = this.dims[3];
    const { kvCounts, kvIndices } = this.hostLists();
    const dense = new Uint8Array(kvIndices.length);
    for (let r = 0; r < kvCounts.length; r++)
      for (let j = 0; j < kvCounts[r]; j++) dense[r * nk + kvIndices[r * nk + j]] = 1;
    return dense;
  }

  /** A copy of the lists on a CUDA device (kept there for device attention). */
  toDevice(options: { device?: number } = {}): BlockMask {
    const { kvCounts, kvIndices } = this.hostLists();
    // the kernels index with these lists: check them (they may have been modified) before upload
    checkLists(kvCounts, kvIndices, this.dims);
    const place = resolvePlacement({ backend: 'cuda', device: options.device }, []);
    const counts = new native.DeviceBuffer(place.device, kvCounts.byteLength);
    const indices = new native.DeviceBuffer(place.device, kvIndices.byteLength);
    counts.upload(kvCounts);
    indices.upload(kvIndices);
    return new BlockMask(this.dims, { device: place.device, kvCounts: counts, kvIndices: indices }, this.map);
  }

  /** Frees device lists now (host lists are left to the garbage collector). */
  dispose(): void {
    this.onDevice?.kvCounts.dispose();
    this.onDevice?.kvIndices.dispose();
  }

  /** @internal The lists as native operands (device buffers where the mask lives on a device). */
  operands(): { kvCounts: NativeOperand; kvIndices: NativeOperand; device?: number } {
    // Device lists stay the operands even after a host copy was read: no per-call upload.
    if (this.onDevice) {
      this.checkLive();
      return { ...this.onDevice };
    }
    return this.hostLists();
  }

  private checkLive(): void {
    if (this.disposed) throw typeError('mask', 'a BlockMask whose device lists are live', 'a disposed device mask');
  }

  private hostLists(): { kvCounts: Int32Array; kvIndices: Int32Array } {
    if (!this.host) {
      this.checkLive();
      const dev = this.onDevice as DeviceLists;
      const kvCounts = new Int32Array(dev.kvCounts.bytes / 4);
      const kvIndices = new Int32Array(dev.kvIndices.bytes / 4);
      dev.kvCounts.download(kvCounts, false);
      dev.kvIndices.download(kvIndices, false);
      this.host = { kvCounts, kvIndices };
    }
    return this.host;
  }
}

/**
 * Checks FlexAttention-style lists against dims: kvCounts[r] in [0, nk], and the first kvCounts[r]
 * ids of row r distinct and in [0, nk). Returns the dense 0/1 mask they describe.
 */
function checkLists(kvCounts: Int32Array, kvIndices: Int32Array, d: MaskDims): Uint8Array {
  const rows = d[0] * d[1] * d[2];
  const nk = d[3];
  if (!(kvCounts instanceof Int32Array)) throw typeError('kvCounts', 'an Int32Array', kvCounts);
  if (!(kvIndices instanceof Int32Array)) throw typeError('kvIndices', 'an Int32Array', kvIndices);
  if (kvCounts.length !== rows) throw rangeError('kvCounts', `${rows} elements (B*H*nq)`, `${kvCounts.length}`);
  if (kvIndices.length !== rows * nk) throw rangeError('kvIndices', `${rows * nk} elements (B*H*nq*nk)`, `${kvIndices.length}`);
  const dense = new Uint8Array(rows * nk);
  for (let r = 0; r < rows; r++) {
    const count = kvCounts[r];
    if (count < 0 || count > nk) throw rangeError('kvCounts', `counts in [0, ${nk}]`, `${count} at row ${r}`);
    for (let j = 0; j < count; j++) {
      const id = kvIndices[r * nk + j];
      if (id < 0 || id >= nk) throw rangeError('kvIndices', `block ids in [0, ${nk})`, `${id} at row ${r}`);
      if (dense[r * nk + id]) throw rangeError('kvIndices', 'distinct block ids within a row', `${id} twice at row ${r}`);
      dense[r * nk + id] = 1;
    }
  }
  return dense;
}

function checkMaskDims(dims: unknown): MaskDims {
  const what = '4 positive integers [batch, heads, queryBlocks, keyBlocks]';
  if (!Array.isArray(dims) || dims.some((d) => !Number.isInteger(d))) throw typeError('dims', what, dims);
  // below MAX_DIM: block counts and ids are stored in int32 lists
  if (dims.length !== 4 || dims.some((d) => d < 1 || d >= MAX_DIM)) throw rangeError('dims', what, describe(dims));
  return [dims[0], dims[1], dims[2], dims[3]];
}

// ---------------------------------------------------------------------------------------------
// blockPool

export type PoolOptions = PlacementOptions;

function preparePool(x: unknown, options: unknown) {
  const t = check4d(x, 'x');
  const opts = checkOptions<PoolOptions>(options);
  const [B, H, S, D] = t.dims;
  const place = resolvePlacement(opts, devicesOf(t));
  const dims = [B, H, S / BLOCK_SIZE, D];
  const out: Tensor | DeviceTensor = isDeviceTensor(t)
    ? new DeviceTensor('float32', dims, t.device, new native.DeviceBuffer(t.device, numel(dims) * 4))
    : { type: 'float32', dims, data: new Float32Array(numel(dims)) };
  const args = { x: operandOf(t), dtype: DTYPE_CODE[t.type], rows: B * H, seq: S, headDim: D, out: operandOf(out), ...place };
  return { args, out };
}

/** [B, H, S, D] -> [B, H, S/64, D]: the fp32 mean of every 64-token block. Off the main thread. */
export async function blockPool<T extends AnyTensor>(x: T, options?: PoolOptions): Promise<T extends DeviceTensor ? DeviceTensor : Tensor> {
  const { args, out } = preparePool(x, options);
  await native.blockPool(args, true);
  return out as T extends DeviceTensor ? DeviceTensor : Tensor;
}

export function blockPoolSync<T extends AnyTensor>(x: T, options?: PoolOptions): T extends DeviceTensor ? DeviceTensor : Tensor {
  const { args, out } = preparePool(x, options);
  native.blockPool(args, false);
  return out as T extends DeviceTensor ? DeviceTensor : Tensor;
}

// ---------------------------------------------------------------------------------------------
// nablaMask

export interface MaskOptions extends PlacementOptions {
  /** CDF mass to keep (cdf) or fraction of blocks (topk), in (0, 1]. Default 0.7. */
  threshold?: number;
  /** 'cdf' (NABLA) or 'topk'. Default 'cdf'. */
  method?: MaskMethod;
  /** Token grid (T, Ht, Wt) of the tile-ordered sequence; required with sta or frames. */
  grid?: TokenGrid;
  /** STA window (frames, block rows, block cols) in blocks, ORed into the mask. */
  sta?: StaWindow;
  /** Document boundaries in frames, e.g. [0, 10, 21]: attention stays inside each document. */
  frames?: readonly number[];
  /** Keep the block map P on the result (mask.map); host masks only. */
  returnMap?: boolean;
}

function prepareMask(q: unknown, k: unknown, options: unknown) {
  const shape = checkQK(q, k);
  const opts = checkOptions<MaskOptions>(options);
  const threshold = checkThreshold(opts.threshold ?? DEFAULT_THRESHOLD);
  const method = checkMethod(opts.method ?? DEFAULT_METHOD);
  const needsGrid = opts.sta !== undefined || opts.frames !== undefined;
  if (needsGrid && opts.grid === undefined) throw typeError('grid', 'a token grid [T, Ht, Wt] (required with sta or frames)', undefined);
  if (needsGrid && shape.seqQ !== shape.seqKv)
    throw rangeError('k.dims', `${shape.seqQ} tokens like q (sta and frames need self-attention)`, `${shape.seqKv}`);
  const grid = opts.grid !== undefined ? blockGridFor(opts.grid, shape.seqQ) : undefined;
  const window = opts.sta !== undefined ? checkWindow(opts.sta) : undefined;
  const frames = opts.frames !== undefined ? checkFrames(opts.frames, (grid as TokenGrid)[0]) : undefined;
  if (opts.returnMap !== undefined && typeof opts.returnMap !== 'boolean') throw typeError('returnMap', 'a boolean', opts.returnMap);

  const qt = q as AnyTensor;
  const kt = k as AnyTensor;
  const place = resolvePlacement(opts, devicesOf(qt, kt));
  const nq = shape.seqQ / BLOCK_SIZE;
  const nk = shape.seqKv / BLOCK_SIZE;
  const rows = shape.batch * shape.heads * nq;
  const dims: MaskDims = [shape.batch, shape.heads, nq, nk];
  const onDevice = devicesOf(qt, kt).length > 0;
  if (onDevice && opts.returnMap) throw typeError('returnMap', 'false for device inputs (the map is a host picture aid)', true);
  const lists = onDevice
    ? { device: place.device, kvCounts: new native.DeviceBuffer(place.device, rows * 4), kvIndices: new native.DeviceBuffer(place.device, rows * nk * 4) }
    : { kvCounts: new Int32Array(rows), kvIndices: new Int32Array(rows * nk) };
  const map = opts.returnMap ? new Float32Array(rows * nk) : undefined;
  const args: NativeMaskArgs = {
    q: operandOf(qt), k: operandOf(kt), dtype: DTYPE_CODE[shape.type],
    batch: shape.batch, heads: shape.heads, seqQ: shape.seqQ, seqKv: shape.seqKv, headDim: shape.headDim,
    threshold, method, sta: window !== undefined,
    grid: grid ? Int32Array.from(grid) : undefined,
    window: window ? Int32Array.from(window) : undefined,
    frames: frames ? Int32Array.from(frames) : undefined,
    kvCounts: lists.kvCounts, kvIndices: lists.kvIndices, map, ...place,
  };
  return { args, mask: new BlockMask(dims, lists, map) };
}

/** The NABLA block mask of q and k ([B, H, S, D], tile order). Runs off the main thread. */
export async function nablaMask(q: AnyTensor, k: AnyTensor, options?: MaskOptions): Promise<BlockMask> {
  const { args, mask } = prepareMask(q, k, options);
  await native.nablaMask(args, true);
  return mask;
}

export function nablaMaskSync(q: AnyTensor, k: AnyTensor, options?: MaskOptions): BlockMask {
  const { args, mask } = prepareMask(q, k, options);
  native.nablaMask(args, false);
  return mask;
}

