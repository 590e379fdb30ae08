// Argument checks that run before any native code. Wrong kinds -> TypeError; wrong shapes,
// lengths or ranges -> RangeError; every message: Expected <what> for <param> but received <value>.
import { DType } from './dtype';
import { DeviceTensor, checkDeviceTensor, isDeviceTensor } from './device';
import { describe, limitText, rangeError, typeError } from './errors';
import {
  BLOCK_SIZE,
  BlockGrid,
  MASK_METHODS,
  MAX_DIM,
  MAX_HEAD_DIM,
  MAX_SCALE,
  MAX_WINDOW,
  MIN_HEAD_DIM,
  MaskMethod,
  StaWindow,
  TILE_SIDE,
  TokenGrid,
  numel,
} from './shapes';
import { Tensor, checkHostTensor } from './tensor';
import { typedArrayName } from './typedarray';

export { checkOptions } from './options';

export type AnyTensor = Tensor | DeviceTensor;

function dimsText(dims: readonly number[]): string {
  return `[${dims.join(', ')}]`;
}

/** A host tensor whose data matches its dims and type, or a live device tensor. */
export function checkTensor(x: unknown, param: string): AnyTensor {
  if (isDeviceTensor(x)) return checkDeviceTensor(x, param);
  return checkHostTensor(x, param);
}

/** A positive integer (a count or a size); `what` words the rule in errors. */
export function checkPositiveInteger(x: unknown, param: string, what: string): number {
  if (typeof x !== 'number' || !Number.isInteger(x)) throw typeError(param, what, x);
  if (x < 1) throw rangeError(param, what, describe(x));
  return x;
}

/** A token count: a positive multiple of the block size. */
export function checkSeq(s: number, param: string): number {
  if (s % BLOCK_SIZE !== 0 || s > MAX_DIM)
    throw rangeError(
      param,
      `a sequence length that is a multiple of ${BLOCK_SIZE} (at most ${limitText(MAX_DIM)})`,
      String(s),
    );
  return s;
}

export function checkHeadDim(d: number, param: string): number {
  if (d < MIN_HEAD_DIM || d > MAX_HEAD_DIM)
    throw rangeError(param, `a head dim in [${MIN_HEAD_DIM}, ${MAX_HEAD_DIM}]`, String(d));
  return d;
}

/**
 * A token count of q, k or v: without a token grid (`gridded` false) a multiple of 64, with one
 * any length (the caller then checks it against the grid).
 */
export function checkTokens(s: number, param: string, gridded: boolean): number {
  if (!gridded) return checkSeq(s, param);
  if (s > MAX_DIM) throw rangeError(param, `a sequence length of at most ${limitText(MAX_DIM)}`, String(s));
  return s;
}

/** Dims [B, H, S, D] of a q, k or v (positive integers, as checkDims leaves them). */
export function check4dDims(dims: readonly number[], param: string, gridded = false): Dims4 {
  if (dims.length !== 4) throw rangeError(param, '4 dims [batch, heads, tokens, headDim]', dimsText(dims));
  for (const d of dims.slice(0, 2))
    if (d > MAX_DIM) throw rangeError(param, `batch and heads of at most ${limitText(MAX_DIM)}`, dimsText(dims));
  checkTokens(dims[2], `${param}[2] (tokens)`, gridded);
  checkHeadDim(dims[3], `${param}[3] (head dim)`);
  return dims as Dims4;
}

export type Dims4 = readonly [number, number, number, number];

/**
 * A [B, H, S, D] tensor. Without a token grid S is a multiple of 64; with one (`gridded`) any
 * length, which the caller then checks against the grid.
 */
export function check4d(x: unknown, param: string, gridded = false): AnyTensor & { dims: Dims4 } {
  const t = checkTensor(x, param);
  check4dDims(t.dims, `${param}.dims`, gridded);
  return t as AnyTensor & { dims: Dims4 };
}

export interface QKShape {
  type: DType;
  batch: number;
  heads: number;
  seqQ: number;
  seqKv: number;
  headDim: number;
}

export function checkQK(q: unknown, k: unknown, gridded = false): QKShape {
  const qt = check4d(q, 'q', gridded);
  const kt = check4d(k, 'k', gridded);
  if (kt.type !== qt.type) throw typeError('k.type', `'${qt.type}' (the type of q)`, kt.type);
  const [B, H, Sq, D] = qt.dims;
  if (kt.dims[0] !== B || kt.dims[1] !== H || kt.dims[3] !== D)
    throw rangeError('k.dims', `[${B}, ${H}, tokens, ${D}] to match q ${dimsText(qt.dims)}`, dimsText(kt.dims));
  return { type: qt.type, batch: B, heads: H, seqQ: Sq, seqKv: kt.dims[2], headDim: D };
}

export interface QKVShape extends QKShape {
  valueDim: number;
}

export function checkQKV(q: unknown, k: unknown, v: unknown, gridded = false): QKVShape {
  const shape = checkQK(q, k, gridded);
  const vt = check4d(v, 'v', gridded);
  if (vt.type !== shape.type) throw typeError('v.type', `'${shape.type}' (the type of q)`, vt.type);
  if (vt.dims[0] !== shape.batch || vt.dims[1] !== shape.heads || vt.dims[2] !== shape.seqKv)
    throw rangeError(
      'v.dims',
      `[${shape.batch}, ${shape.heads}, ${shape.seqKv}, valueDim] to match k`,
      dimsText(vt.dims),
    );
  return { ...shape, valueDim: vt.dims[3] };
}

export function checkThreshold(thr: unknown): number {
  if (typeof thr !== 'number') throw typeError('threshold', 'a number in (0, 1]', thr);
  if (!(thr > 0 && thr <= 1)) throw rangeError('threshold', 'a number in (0, 1]', describe(thr));
  return thr;
}

export function checkMethod(method: unknown): MaskMethod {
  if (typeof method !== 'string') throw typeError('method', "'cdf' or 'topk'", method);
  if (!(MASK_METHODS as readonly string[]).includes(method))
    throw rangeError('method', "'cdf' or 'topk'", describe(method));
  return method as MaskMethod;
}

/** A softmax scale in (0, MAX_SCALE]: larger ones overflow the fp32 logits into all-NaN outputs. */
export function checkScale(scale: unknown): number {
  const what = `a number in (0, ${limitText(MAX_SCALE)}]`;
  if (typeof scale !== 'number') throw typeError('scale', what, scale);
  if (!(scale > 0 && scale <= MAX_SCALE)) throw rangeError('scale', what, describe(scale));
  return scale;
}

/** Three integers in [1, max]. */
function checkTriple(x: unknown, param: string, what: string, max: number): [number, number, number] {
  if (!Array.isArray(x) && typedArrayName(x) !== 'Int32Array') throw typeError(param, what, x);
  const a = Array.from(x as ArrayLike<unknown>);
  if (a.length !== 3) throw rangeError(param, what, describe(x));
  for (const n of a) {
    if (typeof n !== 'number' || !Number.isInteger(n)) throw typeError(param, what, x);
    if (n < 1 || n > max) throw rangeError(param, what, describe(x));
  }
  return a as [number, number, number];
}

/** Token grid (T, Ht, Wt) of positive sizes (edge tiles are smaller when Ht or Wt is not a multiple of 8). */
export function checkTokenGrid(grid: unknown, param = 'grid'): TokenGrid {
  return checkTriple(
    grid,
    param,
    `3 positive integers [frames, tokenRows, tokenCols] of at most ${limitText(MAX_DIM)}`,
    MAX_DIM,
  );
}

/** A token grid whose size must be `seq` tokens. */
export function checkGridTokens(grid: unknown, seq: number, param = 'grid'): TokenGrid {
  const g = checkTokenGrid(grid, param);
  if (numel(g) !== seq)
    throw rangeError(
      param,
      `a token grid of ${seq} tokens (the sequence length)`,
      `${describe(grid)} = ${numel(g)} tokens`,
    );
  return g;
}

/** The block grid (T, ceil(Ht/8), ceil(Wt/8)) of a token grid whose size must be `seq` tokens. */
export function blockGridFor(grid: unknown, seq: number, param = 'grid'): BlockGrid {
  const g = checkGridTokens(grid, seq, param);
  return [g[0], Math.ceil(g[1] / TILE_SIDE), Math.ceil(g[2] / TILE_SIDE)];
}

/**
 * The token grid of a q/k pair of `shape`: T*Ht*Wt == Sq, and Sq == Skv (a grid describes one
 * sequence: self-attention only); `kvParam` names the key length in errors.
 */
export function checkPairGrid(
  grid: unknown,
  shape: { seqQ: number; seqKv: number },
  param = 'grid',
  kvParam = 'k.dims',
): TokenGrid {
  const g = checkGridTokens(grid, shape.seqQ, param);
  if (shape.seqKv !== shape.seqQ)
    throw rangeError(
      kvParam,
      `${shape.seqQ} tokens like q (a token grid needs self-attention)`,
      `${shape.seqKv} tokens`,
    );
  return g;
}

/** The causal option: a boolean, true only with a token grid (frames come from it). */
export function checkCausal(causal: unknown, hasGrid: boolean): boolean {
  if (causal === undefined) return false;
  if (typeof causal !== 'boolean') throw typeError('causal', 'a boolean', causal);
  if (causal && !hasGrid)
    throw rangeError(
      'causal',
      'causal: true together with a token grid (grid: [T, H, W])',
      'causal: true without a grid',
    );
  return causal;
}

export function checkWindow(window: unknown, param = 'sta'): StaWindow {
  // at most int32's largest value: the native layer reads windows as int32
  return checkTriple(
    window,
    param,
    `3 positive window sizes in blocks [frames, blockRows, blockCols] of at most ${limitText(MAX_WINDOW)}`,
    MAX_WINDOW,
  );
}

/** Frame boundaries [0, f1, ..., T] rising strictly. */
export function checkFrames(frames: unknown, frameCount: number, param = 'frames'): number[] {
  const what = `frame boundaries rising strictly from 0 to ${frameCount}, e.g. [0, ${Math.max(1, frameCount >> 1)}, ${frameCount}]`;
  if (!Array.isArray(frames) && typedArrayName(frames) !== 'Int32Array') throw typeError(param, what, frames);
  const f = Array.from(frames as ArrayLike<unknown>);
  if (f.some((x) => typeof x !== 'number' || !Number.isInteger(x))) throw typeError(param, what, frames);
  const n = f as number[];
  const ok =
    n.length >= 2 && n[0] === 0 && n[n.length - 1] === frameCount && n.every((x, i) => i === 0 || x > n[i - 1]);
  if (!ok) throw rangeError(param, what, describe(frames));
  return n;
}
