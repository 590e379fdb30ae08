// Tensors made by other libraries. onnxruntime-node's Tensor has our { type, dims, data } shape
// (as prototype getters, beside location, size, getData, dispose): the objects here have that
// shape, without depending on onnxruntime. Also typed arrays over a SharedArrayBuffer (e.g. shared
// with worker threads). Every accepted input must give exactly the result of our own tensor.
import {
  BlockMask,
  Tensor,
  attentionSync,
  blockSparseAttentionSync,
  blockPool,
  blockPoolSync,
  cast,
  floatToFloat16,
  nablaMaskSync,
  tensor,
} from '../lib';
import { randn } from './reference';
import { CPU } from './helpers';

const dims = [1, 2, 128, 32];
const n = dims.reduce((a, b) => a * b, 1);
const grid: [number, number, number] = [2, 8, 8];

/** The shape of an onnxruntime-common Tensor: data behind a getter that throws off the CPU. */
class OrtLikeTensor {
  constructor(
    private readonly typeName: string,
    private readonly cpuData: ArrayBufferView | undefined,
    private readonly shape: readonly number[],
    readonly location: 'cpu' | 'cpu-pinned' | 'gpu-buffer' = 'cpu',
  ) {}
  get type(): string {
    return this.typeName;
  }
  get dims(): readonly number[] {
    return this.shape;
  }
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  get data(): ArrayBufferView {
    if (this.location === 'gpu-buffer' || this.cpuData === undefined)
      throw new Error('The data is not on CPU. Use `getData()` to download GPU data to CPU.');
    return this.cpuData;
  }
  get gpuBuffer(): unknown {
    return this.location === 'gpu-buffer' ? { size: this.size * 4, mapState: 'unmapped' } : undefined;
  }
  async getData(): Promise<ArrayBufferView | undefined> {
    return this.cpuData;
  }
  dispose(): void {}
}

const ours = (seed: number) => tensor(randn(n, seed), dims);
const asOrt = (t: Tensor, location: 'cpu' | 'cpu-pinned' = 'cpu') =>
  new OrtLikeTensor(t.type, t.data, t.dims, location) as unknown as Tensor;

/** The error fn throws: its constructor's name and message. */
function thrown(fn: () => unknown): { kind: string; message: string } {
  try {
    fn();
  } catch (e) {
    return { kind: (e as Error).constructor.name, message: (e as Error).message };
  }
  throw new Error('expected a throw');
}

describe('onnxruntime-node shaped tensors as inputs', () => {
  test.each([
    ['float32', 'cpu'],
    ['float16', 'cpu'],
    ['float32', 'cpu-pinned'],
  ] as const)("type '%s' at location '%s' gives the same results as our tensor", async (type, location) => {
    const [q, k, v] = [1, 2, 3].map((seed) => cast(ours(seed), type));
    const [oq, ok, ov] = [q, k, v].map((t) => asOrt(t, location));
    expect(Array.from(attentionSync(oq, ok, ov, CPU).data)).toEqual(Array.from(attentionSync(q, k, v, CPU).data));
    expect(Array.from((await blockPool(oq, CPU)).data)).toEqual(Array.from(blockPoolSync(q, CPU).data));
    const mask = nablaMaskSync(oq, ok, { ...CPU, grid, threshold: 0.6 });
    const expected = nablaMaskSync(q, k, { ...CPU, grid, threshold: 0.6 });
    expect(Array.from(mask.kvCounts)).toEqual(Array.from(expected.kvCounts));
    expect(Array.from(mask.kvIndices)).toEqual(Array.from(expected.kvIndices));
  });

  test('float16 is read from the raw bits in a Uint16Array, as onnxruntime stores them', () => {
    const x = tensor(randn(n, 4), dims);
    const bits = new Uint16Array(n);
    for (let i = 0; i < n; i++) bits[i] = floatToFloat16(x.data[i]);
    const pooled = blockPoolSync(asOrt({ type: 'float16', dims, data: bits }), CPU);
    expect(Array.from(pooled.data)).toEqual(Array.from(blockPoolSync(cast(x, 'float16'), CPU).data));
  });

  test.each([
    ['uint16', new Uint16Array(n)], // same array class as float16, different meaning: never reinterpreted
    ['float64', new Float64Array(n)],
    ['int32', new Int32Array(n)],
    ['int8', new Int8Array(n)],
  ])("type '%s' is a TypeError naming x.type", (type, data) => {
    const error = thrown(() => blockPoolSync(asOrt({ type: type as never, dims, data: data as never }), CPU));
    expect(error.kind).toBe('TypeError');
    expect(error.message).toMatch(new RegExp(`^Expected .* for x\\.type but received '${type}'`));
  });

  test("location 'gpu-buffer' is refused: its data getter throws before any op runs", () => {
    const gpu = new OrtLikeTensor('float32', undefined, dims, 'gpu-buffer') as unknown as Tensor;
    expect(() => blockPoolSync(gpu, CPU)).toThrow(/not on CPU/);
  });

  test('float16 data that is not a Uint16Array (a Float16Array likewise) is a TypeError naming x.data', () => {
    const error = thrown(() =>
      blockPoolSync(asOrt({ type: 'float16', dims, data: new Float32Array(n) as never }), CPU),
    );
    expect(error.kind).toBe('TypeError');
    expect(error.message).toMatch(/for x\.data but received/);
  });
});

describe('typed arrays over a SharedArrayBuffer', () => {
  function shared<T extends Float32Array | Uint16Array>(a: T, offsetElements = 0): T {
    const Ctor = a.constructor as new (b: SharedArrayBuffer, offset: number, length: number) => T;
    const buffer = new SharedArrayBuffer(a.byteLength + offsetElements * a.BYTES_PER_ELEMENT);
    const s = new Ctor(buffer, offsetElements * a.BYTES_PER_ELEMENT, a.length);
    s.set(a);
    return s;
  }

  test.each(['float32', 'float16', 'bfloat16'] as const)(
    '%s inputs, sync and async, at an offset: the same results',
    async (type) => {
      const [q, k, v] = [5, 6, 7].map((seed) => cast(ours(seed), type));
      const [sq, sk, sv] = [q, k, v].map((t, i) => ({ ...t, data: shared(t.data, i * 3) }));
      expect(sq.data.buffer).toBeInstanceOf(SharedArrayBuffer);
      const expected = Array.from(attentionSync(q, k, v, CPU).data);
      expect(Array.from(attentionSync(sq, sk, sv, CPU).data)).toEqual(expected);
      expect(Array.from((await blockPool(sq, CPU)).data)).toEqual(Array.from(blockPoolSync(q, CPU).data));
    },
  );

  test('mask lists over a SharedArrayBuffer drive attention like plain ones', () => {
    const [q, k, v] = [8, 9, 10].map((seed) => ours(seed));
    const mask = nablaMaskSync(q, k, { ...CPU, grid, threshold: 0.5 });
    const counts = mask.kvCounts,
      indices = mask.kvIndices;
    const sharedCounts = new Int32Array(new SharedArrayBuffer(counts.byteLength));
    const sharedIndices = new Int32Array(new SharedArrayBuffer(indices.byteLength));
    sharedCounts.set(counts);
    sharedIndices.set(indices);
    const fromShared = BlockMask.fromKvBlocks(sharedCounts, sharedIndices, mask.dims);
    expect(Array.from(blockSparseAttentionSync(q, k, v, fromShared, CPU).data)).toEqual(
      Array.from(blockSparseAttentionSync(q, k, v, mask, CPU).data),
    );
  });
});
