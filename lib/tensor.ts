// Host tensors: { type, dims, data } over a typed array (fp16/bf16 as raw bits in a Uint16Array).
import { DType, HostData, fromFloat32, isDType, storageOf, toFloat32 } from './dtype';
import { describe, rangeError, typeError } from './errors';
import { numel } from './shapes';

export interface Tensor {
  readonly type: DType;
  readonly dims: readonly number[];
  readonly data: HostData;
}

export function isHostTensor(x: unknown): x is Tensor {
  if (typeof x !== 'object' || x === null) return false;
  const t = x as Partial<Tensor>;
  return isDType(t.type) && Array.isArray(t.dims) && (t.data instanceof Float32Array || t.data instanceof Uint16Array);
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
 * Makes a tensor. `data` is a Float32Array (float32), a Uint16Array of raw fp16/bf16 bits (type
 * required), or plain numbers (rounded to `type`, float32 by default). The data is not copied.
 */
export function tensor(data: HostData | ArrayLike<number>, dims: readonly number[], type?: DType): Tensor {
  if (type !== undefined && !isDType(type)) throw typeError('type', "'float32', 'float16' or 'bfloat16'", type);
  checkDims(dims, 'dims');
  let stored: HostData;
  if (data instanceof Float32Array) {
    if (type !== undefined && type !== 'float32')
      throw typeError('data', `a Uint16Array of ${type} bits or plain numbers (type is '${type}')`, data);
    stored = data;
    type = 'float32';
  } else if (data instanceof Uint16Array) {
    if (type !== 'float16' && type !== 'bfloat16')
      throw typeError('type', "'float16' or 'bfloat16' (how to read Uint16Array bits)", type);
    stored = data;
  } else if (Array.isArray(data) || (ArrayBuffer.isView(data) && !(data instanceof DataView))) {
    type = type ?? 'float32';
    stored = fromFloat32(data as ArrayLike<number>, type);
  } else {
    throw typeError('data', 'a Float32Array, a Uint16Array or an array of numbers', data);
  }
  const n = numel(dims);
  if (stored.length !== n)
    throw rangeError('data', `${n} elements for dims [${dims.join(', ')}]`, `${describe(data)} with ${stored.length} elements`);
  return { type, dims: [...dims], data: stored };
}

/** A new tensor of zeros. */
export function zeros(dims: readonly number[], type: DType = 'float32'): Tensor {
  if (!isDType(type)) throw typeError('type', "'float32', 'float16' or 'bfloat16'", type);
  checkDims(dims, 'dims');
  const Storage = storageOf(type);
  return { type, dims: [...dims], data: new Storage(numel(dims)) };
}

/** The tensor's values as fp32. */
export function toFloat32Array(t: Tensor): Float32Array {
  return t.type === 'float32' ? (t.data as Float32Array) : toFloat32(t.data, t.type);
}

/** The same values rounded to another dtype (a copy). */
export function cast(t: Tensor, type: DType): Tensor {
  if (!isHostTensor(t)) throw typeError('tensor', 'a host tensor { type, dims, data }', t);
  if (!isDType(type)) throw typeError('type', "'float32', 'float16' or 'bfloat16'", type);
  if (t.type === type) return { type, dims: [...t.dims], data: t.data.slice() };
  return { type, dims: [...t.dims], data: fromFloat32(toFloat32Array(t), type) };
}
