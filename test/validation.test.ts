// Every bad input gets a TypeError / RangeError naming the parameter, what was expected and what
// was received, in TS and again at the native boundary; nothing crashes or corrupts later calls.
import {
  attentionSync,
  blockPoolSync,
  blockSparseAttentionSync,
  BlockMask,
  nablaMask,
  nablaMaskSync,
  tensor,
  backends,
  toDevice,
  toDeviceSync,
  nablaAttentionSync,
  cast,
  zeros,
  toTiles,
  fromTiles,
  tileOrder,
  staMask,
  DeviceTensor,
  toFloat32Array,
} from '../lib';
import { native } from '../lib/native';
import { CPU, qkCase } from './helpers';

const { q, k, grid } = qkCase(1, 2, [2, 8, 16], 16, 1); // S = 256, 4 blocks
const v = q;

function expectError(fn: () => unknown, kind: typeof TypeError | typeof RangeError, message: RegExp) {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  // native errors come from another realm under jest: compare constructor names
  expect((caught as Error)?.constructor?.name).toBe(kind.name);
  expect((caught as Error).message).toMatch(/^Expected .+ for .+ but received .+/);
  expect((caught as Error).message).toMatch(message);
}

describe('tensor()', () => {
  test('wrong kinds and lengths', () => {
    expectError(() => tensor('abc' as never, [3]), TypeError, /for data but received 'abc'/);
    expectError(
      () => tensor(new Uint16Array(4), [4]),
      TypeError,
      /'float16' or 'bfloat16' .* for type but received undefined/,
    );
    expectError(() => tensor(new Float32Array(4), [2, 3]), RangeError, /6 elements for dims \[2, 3\].*4 elements/);
    expectError(() => tensor(new Float32Array(4), [4, 0]), RangeError, /dims/);
    expectError(() => tensor(new Float32Array(4), [4.5]), TypeError, /dims/);
    expectError(() => tensor(new Float32Array(4), [4], 'float64' as never), TypeError, /type.*'float64'/);
    expectError(() => tensor(new Float32Array(4), [4], 'float16'), TypeError, /Uint16Array/);
  });
});

describe('mask and pool arguments', () => {
  test('tensors', () => {
    expectError(() => nablaMaskSync({} as never, k, CPU), TypeError, /for q/);
    expectError(
      () => nablaMaskSync(tensor(new Float32Array(256 * 16), [256, 16]), k, CPU),
      RangeError,
      /4 dims .* for q\.dims but received \[256, 16\]/,
    );
    expectError(
      () => nablaMaskSync(tensor(new Float32Array(100 * 16), [1, 1, 100, 16]), k, CPU),
      RangeError,
      /multiple of 64.* for q\.dims\[2\] \(tokens\) but received 100/,
    );
    expectError(
      () => nablaMaskSync(tensor(new Float32Array(64 * 4), [1, 1, 64, 4]), k, CPU),
      RangeError,
      /head dim in \[8, 256\] for q\.dims\[3\] \(head dim\) but received 4$/,
    );
    expectError(
      () => nablaMaskSync(tensor(new Float32Array(64 * 512), [1, 1, 64, 512]), k, CPU),
      RangeError,
      /head dim.*512/,
    );
    expectError(
      () => nablaMaskSync(q, tensor(new Uint16Array(k.data.length), k.dims, 'float16'), CPU),
      TypeError,
      /'float32' \(the type of q\) for k\.type but received 'float16'/,
    );
    expectError(
      () => nablaMaskSync(q, tensor(new Float32Array(2 * 2 * 256 * 16), [2, 2, 256, 16]), CPU),
      RangeError,
      /for k\.dims but received \[2, 2, 256, 16\]/,
    );
    const broken = { type: 'float32', dims: [1, 2, 256, 16], data: new Float32Array(10) };
    expectError(
      () => nablaMaskSync(broken as never, k, CPU),
      RangeError,
      /8192 elements for dims \[1, 2, 256, 16\] for q\.data but received 10 elements/,
    );
    expectError(
      () => blockPoolSync({ type: 'float16', dims: [1, 1, 64, 8], data: new Float32Array(512) } as never, CPU),
      TypeError,
      /Uint16Array/,
    );
  });

  test('threshold, method, grid, sta, frames, backend', () => {
    expectError(
      () => nablaMaskSync(q, k, { threshold: 0, ...CPU }),
      RangeError,
      /a number in \(0, 1\] for threshold but received 0$/,
    );
    expectError(() => nablaMaskSync(q, k, { threshold: 1.5, ...CPU }), RangeError, /threshold/);
    expectError(() => nablaMaskSync(q, k, { threshold: NaN, ...CPU }), RangeError, /for threshold but received NaN/);
    expectError(() => nablaMaskSync(q, k, { threshold: '0.5' as never, ...CPU }), TypeError, /threshold/);
    expectError(
      () => nablaMaskSync(q, k, { method: 'top' as never, ...CPU }),
      RangeError,
      /'cdf' or 'topk' for method but received 'top'/,
    );
    expectError(
      () => nablaMaskSync(q, k, { sta: [3, 3, 3], ...CPU }),
      TypeError,
      /required with sta or frames\) for grid but received undefined/,
    );
    expectError(
      () => nablaMaskSync(q, k, { grid: [2, 8, 12], sta: [3, 3, 3], ...CPU }),
      RangeError,
      /256 tokens .* for grid but received \[2, 8, 12\] = 192 tokens/,
    );
    expectError(
      () => nablaMaskSync(q, k, { grid: [4, 8, 16], sta: [3, 3, 3], ...CPU }),
      RangeError,
      /256 tokens .* for grid but received \[4, 8, 16\] = 512 tokens/,
    );
    expectError(() => nablaMaskSync(q, k, { grid, sta: [3, 0, 3], ...CPU }), RangeError, /sta/);
    expectError(
      () => nablaMaskSync(q, k, { grid, frames: [0, 3], ...CPU }),
      RangeError,
      /from 0 to 2.* for frames but received \[0, 3\]/,
    );
    expectError(
      () => nablaMaskSync(q, k, { grid, frames: [0, 1, 1, 2], ...CPU }),
      RangeError,
      /^Expected frame boundaries rising strictly from 0 to 2, e\.g\. \[0, 1, 2\] for frames but received \[0, 1, 1, 2\]$/,
    );
    expectError(
      () => nablaMaskSync(q, k, { grid, frames: [0, 2, 1, 2], ...CPU }),
      RangeError,
      /^Expected frame boundaries rising strictly from 0 to 2, e\.g\. \[0, 1, 2\] for frames but received \[0, 2, 1, 2\]$/,
    );
    expectError(() => nablaMaskSync(q, k, { grid, frames: [0, 0.5, 2], ...CPU }), TypeError, /frames/);
    expectError(() => nablaMaskSync(q, k, { backend: 'gpu' as never }), RangeError, /for backend but received 'gpu'/);
    expectError(() => nablaMaskSync(q, k, { backend: 5 as never }), TypeError, /for backend but received 5/);
    expectError(() => nablaMaskSync(q, k, { device: 0.5, ...CPU }), TypeError, /for device but received 0.5/);
    expectError(() => nablaMaskSync(q, k, { device: -1, ...CPU }), RangeError, /for device but received -1/);
    expectError(() => nablaMaskSync(q, k, 'fast' as never), TypeError, /options/);
  });

  test("backend 'cuda' without CUDA is a clear Error with a code", () => {
    if (backends().cuda) return;
    expect(() => nablaMaskSync(q, k, { backend: 'cuda' })).toThrow(
      expect.objectContaining({ code: 'ERR_NABLA_CUDA_UNAVAILABLE' }),
    );
  });

  test('device tensors without CUDA: a clear Error with a code, sync and async', async () => {
    if (backends().cuda) return;
    const code = expect.objectContaining({ code: 'ERR_NABLA_CUDA_UNAVAILABLE' });
    expect(() => toDeviceSync(q)).toThrow(code);
    await expect(toDevice(q)).rejects.toEqual(code);
    expect(() => toDeviceSync({} as never)).toThrow(TypeError);
  });

  test('device upload options are checked before placement: the same TypeError with or without CUDA', async () => {
    expectError(
      () => toDeviceSync(q, null as never),
      TypeError,
      /^Expected an options object for options but received null$/,
    );
    await expect(toDevice(q, 'cuda' as never)).rejects.toThrow(
      /^Expected an options object for options but received 'cuda'$/,
    );
  });

  test('async forms reject (or throw) with the same errors', async () => {
    await expect(async () => nablaMask(q, k, { threshold: 2, ...CPU })).rejects.toThrow(RangeError);
  });
});

describe('attention arguments', () => {
  test('v, mask, scale, kernel', () => {
    expectError(
      () => attentionSync(q, k, tensor(new Float32Array(2 * 128 * 16), [1, 2, 128, 16]), CPU),
      RangeError,
      /v\.dims/,
    );
    const wrong = BlockMask.fromDense(new Uint8Array(2 * 4 * 3).fill(1), [1, 2, 4, 3]);
    expectError(
      () => blockSparseAttentionSync(q, k, v, wrong, CPU),
      RangeError,
      /\[1, 2, 4, 4\] .* for mask\.dims but received \[1, 2, 4, 3\]/,
    );
    expectError(() => blockSparseAttentionSync(q, k, v, {} as never, CPU), TypeError, /mask/);
    expectError(() => attentionSync(q, k, v, { scale: -1, ...CPU }), RangeError, /scale/);
    expectError(() => attentionSync(q, k, v, { scale: Infinity, ...CPU }), RangeError, /scale/);
    expectError(
      () => attentionSync(q, k, v, { kernel: 'turbo' as never, ...CPU }),
      RangeError,
      /for kernel but received 'turbo'/,
    );
    expectError(() => nablaAttentionSync(q, k, v, { scale: 0, ...CPU }), RangeError, /for scale but received 0/);
  });

  test('scales whose logits overflow fp32 are refused (they made every output NaN); the largest is accepted', () => {
    for (const scale of [3e38, 1e39, Number.MAX_VALUE, 65536.5])
      expectError(
        () => attentionSync(q, k, v, { scale, ...CPU }),
        RangeError,
        /^Expected a number in \(0, 65536\] for scale but received /,
      );
    expectError(
      () => nablaAttentionSync(q, k, v, { scale: 1e39, ...CPU }),
      RangeError,
      /for scale but received 1e\+39$/,
    );
    const small = tensor(
      Array.from({ length: 2 * 256 * 16 }, (_, i) => ((i * 37) % 11) * 1e-4),
      [1, 2, 256, 16],
    );
    const out = attentionSync(small, small, v, { scale: 65536, ...CPU });
    expect(Array.from(out.data).every(Number.isFinite)).toBe(true);
  });
});

describe('tensor data that is not what it claims', () => {
  const dims = [1, 2, 256, 16];
  const n = 2 * 256 * 16;
  const detached = () => {
    const data = new Float32Array(n);
    structuredClone(data.buffer, { transfer: [data.buffer] });
    return data;
  };

  test('cast() checks the kind and the length of the data, and detached buffers', () => {
    const halfBits = { type: 'float32', dims: [4], data: Uint16Array.of(1, 2, 3, 4) };
    expectError(
      () => cast(halfBits as never, 'float16'),
      TypeError,
      /^Expected a Float32Array for type 'float32' for tensor\.data but received Uint16Array\(4\)$/,
    );
    expectError(
      () => cast({ type: 'bfloat16', dims: [4], data: Float32Array.of(1, 2, 3, 4) } as never, 'float32'),
      TypeError,
      /Uint16Array for type 'bfloat16' for tensor\.data/,
    );
    expectError(
      () => cast({ type: 'float32', dims: [2, 3], data: new Float32Array(4) } as never, 'float16'),
      RangeError,
      /^Expected 6 elements for dims \[2, 3\] for tensor\.data but received 4 elements$/,
    );
    expectError(
      () => cast({ type: 'float32', dims: [n], data: detached() } as never, 'float16'),
      TypeError,
      /for tensor\.data but received a detached Float32Array$/,
    );
    expectError(() => toFloat32Array(halfBits as never), TypeError, /for tensor\.data/);
    expect(Array.from(cast(tensor(Float32Array.of(1, 2.5), [2]), 'bfloat16').data)).toEqual([0x3f80, 0x4020]);
  });

  test('a detached input is refused before native code reads it', () => {
    expectError(
      () => nablaMaskSync({ type: 'float32', dims, data: detached() } as never, k, CPU),
      TypeError,
      /for q\.data but received a detached Float32Array$/,
    );
    expectError(() => tensor(detached(), [n]), TypeError, /for data but received a detached Float32Array$/);
  });

  test('Proxy-wrapped data is not a typed array native code can read', () => {
    const proxied = { type: 'float32', dims, data: new Proxy(new Float32Array(n), {}) };
    expectError(
      () => nablaMaskSync(proxied as never, k, CPU),
      TypeError,
      /^Expected a Float32Array for type 'float32' for q\.data but received an object$/,
    );
    expectError(() => attentionSync(q, k, proxied as never, CPU), TypeError, /for v\.data but received an object$/);
    expectError(
      () => tensor(new Proxy(new Float32Array(4), {}) as never, [4]),
      TypeError,
      /for data but received an object$/,
    );
  });

  test('BigInt data is refused; plain numbers are required', () => {
    expectError(
      () => tensor(new BigInt64Array(4) as never, [4]),
      TypeError,
      /BigInt arrays hold no floats\) for data but received BigInt64Array\(4\)$/,
    );
    expectError(
      () => tensor(new BigUint64Array(4) as never, [4]),
      TypeError,
      /for data but received BigUint64Array\(4\)$/,
    );
    expectError(() => tensor([1, 2n, 3] as never, [3]), TypeError, /^Expected a number for data\[1\] but received 2$/);
    expectError(() => tensor([1, 'a', 3] as never, [3]), TypeError, /for data\[1\] but received 'a'$/);
    expect(Array.from(tensor(Float64Array.of(0.5, 1e40), [2]).data)).toEqual([0.5, Infinity]);
  });

  test('device tensors that this package did not make are refused', () => {
    const fake = new (DeviceTensor as unknown as new (...a: unknown[]) => DeviceTensor)('float32', dims, 0, null);
    expectError(
      () => nablaMaskSync(fake, k, CPU),
      TypeError,
      /^Expected a device buffer made by toDevice\(\), emptyDevice\(\) or fromDevicePointer\(\) for q\.buffer but received null$/,
    );
    expectError(
      () => nablaMaskSync(Object.create(DeviceTensor.prototype), k, CPU),
      TypeError,
      /for q\.buffer but received undefined$/,
    );
    const lying = new (DeviceTensor as unknown as new (...a: unknown[]) => DeviceTensor)('float32', dims, 0, {
      disposed: false,
      bytes: 4,
    });
    expectError(() => attentionSync(q, lying, v, CPU), TypeError, /for k\.buffer but received an object$/);
    expectError(() => fake.toHostSync(), TypeError, /for tensor\.buffer but received null$/);
  });
});

describe('sizes beyond what a typed array holds', () => {
  test('zeros, tileOrder and staMask refuse them before allocating, naming the parameter', () => {
    // counts beyond 2^53: over the typed array limit of every Node version (2^32 in Node 20)
    expectError(
      () => zeros([2 ** 27, 2 ** 27]),
      RangeError,
      /^Expected a size of at most 2\^\d+( - 1)? elements \(Node's typed array limit\) for dims but received \[134217728, 134217728\] \(18014398509481984 elements\)$/,
    );
    expectError(() => zeros([2 ** 26, 2 ** 26, 2 ** 26], 'float16'), RangeError, /for dims but received/);
    expectError(
      () => tileOrder([1, 8 * 2 ** 14, 8 * 2 ** 14]),
      RangeError,
      /^Expected a token grid of at most 2\^31 tokens for grid but received \[1, 131072, 131072\] = 17179869184 tokens$/,
    );
    expectError(
      () => staMask([2 ** 20, 128, 128], [1, 1, 1]),
      RangeError,
      /^Expected a size of at most .* for grid but received \[1048576, 128, 128\] \(268435456 blocks, a 268435456 x 268435456 mask\) \(\d+ elements\)$/,
    );
    expectError(() => staMask([2 ** 31, 8, 8], [1, 1, 1]), RangeError, /for grid but received/);
  });

  test('STA windows are int32 in native code: at most 2^31 - 1', () => {
    const what =
      /^Expected 3 positive window sizes in blocks \[frames, blockRows, blockCols\] of at most 2\^31 - 1 for/;
    expectError(() => staMask([2, 16, 16], [2 ** 31, 1, 1]), RangeError, what);
    expectError(
      () => staMask([2, 16, 16], [1, 1, 2 ** 32 + 1]),
      RangeError,
      /for window but received \[1, 1, 4294967297\]$/,
    );
    expectError(
      () => nablaMaskSync(q, k, { grid, sta: [1, 2 ** 31, 1], ...CPU }),
      RangeError,
      /for sta but received \[1, 2147483648, 1\]$/,
    );
    // the largest window is valid and keeps every pair, like any window wider than the grid
    expect(staMask([2, 16, 16], [2 ** 31 - 1, 2 ** 31 - 1, 2 ** 31 - 1]).density()).toBe(1);
  });
});

describe('toTiles / fromTiles options', () => {
  const x = tensor(new Float32Array(256 * 2), [256, 2]);
  test.each([
    ['a string', 'axis', /but received 'axis'$/],
    ['a number', 0, /but received 0$/],
    ['an array', [0], /but received \[0\]$/],
    ['a function', () => 0, /but received a function$/],
    ['null', null, /but received null$/],
  ] as [string, unknown, RegExp][])('%s is refused', (_name, options, received) => {
    for (const op of [toTiles, fromTiles]) {
      expectError(() => op(x, grid, options as never), TypeError, /^Expected an options object for options /);
      expectError(() => op(x, grid, options as never), TypeError, received);
    }
  });
  test('undefined and {} are the defaults', () => {
    expect(Array.from(toTiles(x, grid, undefined).data)).toEqual(Array.from(toTiles(x, grid, {}).data));
  });
});

describe('the native boundary checks again', () => {
  const base = () => ({
    x: new Float32Array(256 * 16),
    dtype: 0,
    rows: 1,
    seq: 256,
    headDim: 16,
    out: new Float32Array(4 * 16),
    backend: 'cpu' as const,
    device: 0,
  });
  test('kinds, lengths, ranges', () => {
    expectError(
      () => native.blockPool({ ...base(), x: new Float64Array(256 * 16) as never }, false),
      TypeError,
      /Float32Array for x.*Float64Array\(4096\)/,
    );
    expectError(
      () => native.blockPool({ ...base(), x: new Float32Array(10) }, false),
      RangeError,
      /4096 elements for x.*10/,
    );
    expectError(() => native.blockPool({ ...base(), dtype: 7 }, false), RangeError, /dtype/);
    expectError(() => native.blockPool({ ...base(), seq: 100 }, false), RangeError, /multiple of 64 for seq/);
    expectError(() => native.blockPool({ ...base(), headDim: 1000 }, false), RangeError, /headDim/);
    expectError(() => native.blockPool({ ...base(), rows: 1.5 }, false), TypeError, /integer for rows/);
    expectError(() => native.blockPool({ ...base(), backend: 'tpu' as never }, false), RangeError, /backend/);
    // sizes whose element counts overflow 32-bit (and 53-bit) index math are refused, not wrapped
    expectError(
      () => native.blockPool({ ...base(), rows: 2 ** 31, seq: 2 ** 31 - 64, headDim: 256 }, false),
      RangeError,
      /2\^53 elements for x/,
    );
    expectError(
      () => native.blockPool({ ...base(), rows: 2 ** 20, seq: 2 ** 20, headDim: 256 }, false),
      RangeError,
      /x/,
    );
  });

  test('host masks are range-checked before any kernel reads them', () => {
    const args = {
      q: q.data,
      k: k.data,
      v: v.data,
      out: new Float32Array(q.data.length),
      dtype: 0,
      batch: 1,
      heads: 2,
      seqQ: 256,
      seqKv: 256,
      headDim: 16,
      valueDim: 16,
      scale: 0.25,
      kernel: 'auto' as const,
      backend: 'cpu' as const,
      device: 0,
    };
    const kvCounts = new Int32Array(8).fill(1);
    const kvIndices = new Int32Array(32);
    kvIndices[4 * 3] = 99;
    expectError(
      () => native.attention({ ...args, kvCounts, kvIndices }, false),
      RangeError,
      /block ids in \[0, 4\) for mask\.kvIndices but received 99 at row 3/,
    );
    expectError(
      () => native.attention({ ...args, kvCounts: new Int32Array(8).fill(5), kvIndices: new Int32Array(32) }, false),
      RangeError,
      /counts in \[0, 4\] for mask\.kvCounts but received 5 at row 0/,
    );
    expect(() => native.attention({ ...args, kvCounts }, false)).toThrow(
      /Expected both \(block-sparse\) or neither \(dense\) for kvCounts and kvIndices but received Int32Array\(8\)/,
    );
  });

  test('later calls still work and give the same result', () => {
    const before = nablaMaskSync(q, k, { threshold: 0.5, ...CPU });
    for (let i = 0; i < 3; i++) expect(() => native.blockPool({ ...base(), x: new Float32Array(3) }, false)).toThrow();
    const after = nablaMaskSync(q, k, { threshold: 0.5, ...CPU });
    expect(Array.from(after.kvIndices)).toEqual(Array.from(before.kvIndices));
  });
});
