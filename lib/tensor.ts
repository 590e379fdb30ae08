// Host tensors: { type, dims, data } over a typed array (fp16/bf16 as raw bits in a Uint16Array).
import { DTYPE_TEXT, DType, HostData, checkNumbers, decodeFloat32, isDType, roundTo, storageOf } from './dtype';
import { describe, rangeError, typeError, typeErrorWorded } from './errors';
import { numel } from './shapes';
import { allocate, isDetached, typedArrayName } from './typedarray';

export interface Tensor {
  readonly type: DType;
  readonly dims: readonly number[];
  readonly data: HostData;
}

/** The class of typed array that stores `type`, by name (see typedArrayName). */
function storageName(type: DType): string {
  return storageOf(type).name;
}

/** Checks dims are positive integers (the product is checked against the data by the caller). */
export function checkDims(dims: unknown, param: string): readonly number[] {
  if (!Array.isArray(dims) || dims.length === 0) throw typeError(param, 'a non-empty array of positive integers', dims);
  for (const d of dims) {
    if (typeof d !== 'number' || !Number.isInteger(d)) throw typeError(param, 'an array of positive integers', dims);
    if (d < 1) throw rangeError(param, 'an array of positive integers', describe(dims));
  }
  return dims as number[];
}

/**
 * The data of a `type` tensor with `dims`: a real typed array of the type's storage (not a Proxy,
 * not another element type read number by number), not detached, with one element per index.
 */
export function checkHostData(data: unknown, type: DType, dims: readonly number[], param: string): HostData {
  const expected = storageName(type);
  if (typedArrayName(data) !== expected) throw typeError(param, `a ${expected} for type '${type}'`, data);
  const view = data as HostData;
  if (isDetached(view))
    throw typeErrorWorded(
      param,
      `a ${expected} whose buffer is still attached (not transferred away)`,
      `a detached ${expected}`,
    );
  const n = numel(dims);
  if (view.length !== n)
    throw rangeError(param, `${n} elements for dims [${dims.join(', ')}]`, `${view.length} elements`);
  return view;
}

/** A host tensor whose dims, type and data agree; `param` names it in errors. */
export function checkHostTensor(x: unknown, param: string): Tensor {
  if (typeof x !== 'object' || x === null) throw typeError(param, 'a tensor { type, dims, data } (see tensor())', x);
  const t = x as Partial<Tensor>;
  if (t.data === undefined && 'buffer' in t)
    throw typeErrorWorded(param, 'a host tensor (download device tensors with toHost())', 'a device tensor');
  if (!isDType(t.type)) throw typeError(`${param}.type`, DTYPE_TEXT, t.type);
  checkDims(t.dims, `${param}.dims`);
  checkHostData(t.data, t.type, t.dims as number[], `${param}.data`);
  return x as Tensor;
}

/**
 * Makes a tensor. `data` is a Float32Array (float32), a Uint16Array of raw fp16/bf16 bits (type
 * required), or plain numbers (rounded to `type`, float32 by default). The data is not copied.
 */
export function tensor(data: HostData | ArrayLike<number>, dims: readonly number[], type?: DType): Tensor {
  if (type !== undefined && !isDType(type)) throw typeError('type', DTYPE_TEXT, type);
  checkDims(dims, 'dims');
  const name = typedArrayName(data);
  let stored: HostData;
  if (name === 'Float32Array') {
    if (type !== undefined && type !== 'float32')
      throw typeError('data', `a Uint16Array of ${type} bits or plain numbers (type is '${type}')`, data);
    stored = data as Float32Array;
    type = 'float32';
  } else if (name === 'Uint16Array') {
    if (type !== 'float16' && type !== 'bfloat16')
      throw typeError('type', "'float16' or 'bfloat16' (how to read Uint16Array bits)", type);
    stored = data as Uint16Array;
  } else {
    type = type ?? 'float32';
    stored = roundTo(checkNumbers(data), type);
  }
  if (isDetached(stored))
    throw typeErrorWorded(
      'data',
      `a ${name} whose buffer is still attached (not transferred away)`,
      `a detached ${name}`,
    );
  const n = numel(dims);
  if (stored.length !== n)
    throw rangeError(
      'data',
      `${n} elements for dims [${dims.join(', ')}]`,
      `${describe(data)} with ${stored.length} elements`,
    );
  return { type, dims: [...dims], data: stored };
}

/** A new tensor of zeros. */
export function zeros(dims: readonly number[], type: DType = 'float32'): Tensor {
  if (!isDType(type)) throw typeError('type', DTYPE_TEXT, type);
  checkDims(dims, 'dims');
  const data: HostData = allocate<HostData>(storageOf(type), numel(dims), 'dims', `[${dims.join(', ')}]`);
  return { type, dims: [...dims], data };
}

/** The tensor's values as fp32 (the data itself for float32 tensors). */
export function toFloat32Array(t: Tensor): Float32Array {
  const x = checkHostTensor(t, 'tensor');
  return x.type === 'float32' ? (x.data as Float32Array) : decodeFloat32(x.data, x.type);
}

/** The same values rounded to another dtype (a copy). */
export function cast(t: Tensor, type: DType): Tensor {
  const x = checkHostTensor(t, 'tensor');
  if (!isDType(type)) throw typeError('type', DTYPE_TEXT, type);
  if (x.type === type) return { type, dims: [...x.dims], data: x.data.slice() };
  return { type, dims: [...x.dims], data: roundTo(toFloat32Array(x), type) };
}
