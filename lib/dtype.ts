// Element types and exact fp16 / bf16 <-> fp32 conversion (round to nearest even).
// fp16 and bf16 values travel as raw 16-bit patterns in a Uint16Array.
import { typeError, typeErrorWorded } from './errors';
import { isDetached, typedArrayName } from './typedarray';

export type DType = 'float32' | 'float16' | 'bfloat16';
export const DTYPES: readonly DType[] = ['float32', 'float16', 'bfloat16'];

/** Codes shared with csrc/core/dtype.h (enum class DType). */
export const DTYPE_CODE: Readonly<Record<DType, number>> = { float32: 0, float16: 1, bfloat16: 2 };

export type HostData = Float32Array | Uint16Array;

export function isDType(x: unknown): x is DType {
  return typeof x === 'string' && (DTYPES as readonly string[]).includes(x);
}

export const DTYPE_TEXT = "'float32', 'float16' or 'bfloat16'";

export function checkDType(type: unknown, param = 'type'): DType {
  if (!isDType(type)) throw typeError(param, DTYPE_TEXT, type);
  return type;
}

/** Plain numbers to round: an array of numbers or a typed array of a numeric kind, not detached. */
export function checkNumbers(data: unknown, param = 'data'): ArrayLike<number> {
  const what = 'a Float32Array, a Uint16Array or an array of numbers';
  const name = typedArrayName(data);
  if (name !== undefined) {
    if (name.startsWith('Big')) throw typeError(param, `${what} (BigInt arrays hold no floats)`, data);
    if (isDetached(data as ArrayBufferView))
      throw typeErrorWorded(param, `${what} whose buffer is still attached`, `a detached ${name}`);
    return data as ArrayLike<number>;
  }
  if (!Array.isArray(data)) throw typeError(param, what, data);
  for (let i = 0; i < data.length; i++)
    if (typeof data[i] !== 'number') throw typeError(`${param}[${i}]`, 'a number', data[i]);
  return data;
}

/** The typed array class that stores a dtype. */
export function storageOf(type: DType): Float32ArrayConstructor | Uint16ArrayConstructor {
  return type === 'float32' ? Float32Array : Uint16Array;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function bfloat16ToFloat(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0];
}

export function floatToBfloat16(value: number): number {
  f32[0] = value;
  return bfloat16FromBits(u32[0]);
}

/** bf16 bits of the fp32 value with bit pattern `u`: round to nearest even, NaN stays NaN. */
export function bfloat16FromBits(u: number): number {
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

export function float16ToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const man = bits & 0x3ff;
  if (exp === 0x1f) return man ? NaN : sign * Infinity;
  if (exp === 0) return sign * man * 2 ** -24;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

export function floatToFloat16(value: number): number {
  f32[0] = value; // fp32 first: the native side rounds from fp32 too
  const u = u32[0];
  const sign = (u >>> 16) & 0x8000;
  const a = u & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7e00;
  if (a >= 0x477ff000) return sign | 0x7c00;
  if (a < 0x38800000) {
    if (a < 0x33000000) return sign;
    const man = (a & 0x7fffff) | 0x800000;
    const shift = 126 - (a >>> 23); // value in units of 2^-24 is man >> shift
    let kept = man >>> shift;
    const rem = man & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && kept & 1)) kept++;
    return sign | kept;
  }
  return sign | (((a + 0xfff + ((a >>> 13) & 1)) >>> 13) - (112 << 10));
}

/** Converts 16-bit patterns of `type` (or fp32 values, copied) to fp32 values. */
export function toFloat32(data: HostData, type: DType): Float32Array {
  checkDType(type);
  const expected = storageOf(type).name;
  if (typedArrayName(data) !== expected) throw typeError('data', `a ${expected} for type '${type}'`, data);
  if (isDetached(data))
    throw typeErrorWorded('data', `a ${expected} whose buffer is still attached`, `a detached ${expected}`);
  return decodeFloat32(data, type);
}

/** toFloat32 for data already checked. */
export function decodeFloat32(data: HostData, type: DType): Float32Array {
  if (type === 'float32') return Float32Array.from(data as Float32Array);
  const out = new Float32Array(data.length);
  const decode = type === 'float16' ? float16ToFloat : bfloat16ToFloat;
  for (let i = 0; i < data.length; i++) out[i] = decode(data[i]);
  return out;
}

/** Rounds fp32 (or any numbers) to `type`; a Float32Array for float32, 16-bit patterns otherwise. */
export function fromFloat32(values: ArrayLike<number>, type: DType): HostData {
  checkDType(type);
  return roundTo(checkNumbers(values, 'values'), type);
}

/** fromFloat32 for values already checked. */
export function roundTo(values: ArrayLike<number>, type: DType): HostData {
  if (type === 'float32') return Float32Array.from(values);
  const out = new Uint16Array(values.length);
  const encode = type === 'float16' ? floatToFloat16 : floatToBfloat16;
  for (let i = 0; i < values.length; i++) out[i] = encode(values[i]);
  return out;
}
