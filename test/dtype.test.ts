// fp16 / bf16 conversion: known bit patterns, rounding, and agreement with the native side.
import {
  blockPoolSync,
  bfloat16ToFloat,
  float16ToFloat,
  floatToBfloat16,
  floatToFloat16,
  fromFloat32,
  tensor,
  toFloat32,
} from '../lib';
import { CPU } from './helpers';

describe('float16', () => {
  test.each([
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [65519, 0x7bff],
    [65520, 0x7c00],
    [Infinity, 0x7c00],
    [2 ** -24, 0x0001],
    [2 ** -25, 0x0000],
    [3 * 2 ** -25, 0x0002],
    [2 ** -14, 0x0400],
    [0.1, 0x2e66],
    [-0, 0x8000],
  ])('%p -> 0x%s', (value, bits) => {
    expect(floatToFloat16(value)).toBe(bits);
  });

  test('NaN stays NaN; every finite pattern round trips', () => {
    expect(Number.isNaN(float16ToFloat(floatToFloat16(NaN)))).toBe(true);
    for (let bits = 0; bits < 0x10000; bits++) {
      if ((bits & 0x7c00) === 0x7c00) continue;
      expect(floatToFloat16(float16ToFloat(bits))).toBe(bits);
    }
  });
});

describe('bfloat16', () => {
  test('round to nearest even', () => {
    expect(floatToBfloat16(1)).toBe(0x3f80);
    expect(bfloat16ToFloat(0x3f80)).toBe(1);
    expect(floatToBfloat16(1 + 2 ** -8)).toBe(0x3f80); // tie -> even
    expect(floatToBfloat16(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie -> even (up)
    expect(floatToBfloat16(1 + 2 ** -8 + 2 ** -12)).toBe(0x3f81);
    expect(Number.isNaN(bfloat16ToFloat(floatToBfloat16(NaN)))).toBe(true);
  });
});

describe('native decoding agrees', () => {
  test.each(['float16', 'bfloat16'] as const)('%s', (type) => {
    // one block of 64 tokens x 8 dims holding the same value: the pooled mean is the decoded value
    const patterns =
      type === 'float16'
        ? [0x3c00, 0x0001, 0x7bff, 0xc000, 0x2e66, 0x8400]
        : [0x3f80, 0x0001, 0x7f7f, 0xc000, 0x3dcd, 0x8080];
    for (const bits of patterns) {
      const x = tensor(new Uint16Array(64 * 8).fill(bits), [1, 1, 64, 8], type);
      const decoded = type === 'float16' ? float16ToFloat(bits) : bfloat16ToFloat(bits);
      expect(blockPoolSync(x, CPU).data[0]).toBe(Math.fround(decoded));
    }
  });
});

describe('toFloat32 / fromFloat32 arguments', () => {
  const expectForm = (fn: () => unknown, message: RegExp) => {
    expect(fn).toThrow(TypeError);
    expect(fn).toThrow(message);
  };

  test('an unknown type is refused instead of being read as bfloat16 or float16', () => {
    for (const type of ['float64', 'int8', 3, undefined])
      expectForm(
        () => toFloat32(Uint16Array.of(0x3c00), type as never),
        /^Expected 'float32', 'float16' or 'bfloat16' for type but received /,
      );
    for (const type of ['float64', 'int8', 3, undefined])
      expectForm(
        () => fromFloat32([1], type as never),
        /^Expected 'float32', 'float16' or 'bfloat16' for type but received /,
      );
  });

  test('data of the wrong kind for the type, or not numbers, is refused', () => {
    expectForm(
      () => toFloat32(Float32Array.of(1) as never, 'float16'),
      /^Expected a Uint16Array for type 'float16' for data but received Float32Array\(1\)$/,
    );
    expectForm(
      () => toFloat32(Uint16Array.of(1) as never, 'float32'),
      /^Expected a Float32Array for type 'float32' for data but received Uint16Array\(1\)$/,
    );
    expectForm(() => toFloat32(new Proxy(Uint16Array.of(1), {}), 'float16'), /for data but received an object$/);
    expectForm(() => fromFloat32([1, 2n] as never, 'float16'), /^Expected a number for values\[1\] but received 2$/);
    expectForm(
      () => fromFloat32(new BigInt64Array(2) as never, 'float32'),
      /for values but received BigInt64Array\(2\)$/,
    );
    expect(Array.from(toFloat32(fromFloat32([1, -2.5], 'bfloat16'), 'bfloat16'))).toEqual([1, -2.5]);
  });
});
