// warmUp: its argument errors are the ops' own, it reports the kernels the ops run, it leaves no
// memory in use, and a request after it gives the bits of a request in a process without it.
import { spawnSync } from 'child_process';
import * as path from 'path';
import {
  DType,
  DeviceMemory,
  NablaAttentionOptions,
  Tensor,
  WarmUpSpec,
  deviceMemory,
  nablaAttentionSync,
  toDeviceSync,
  warmUp,
  zeros,
} from '../lib';
import { nablaAttentionRan } from '../lib/attention';
import { CPU, cudaSuite } from './helpers';

const ROOT = path.resolve(__dirname, '..');
const GRID = [2, 16, 16] as const; // 512 tokens, 8 blocks
const DIMS = [1, 2, 512, 64] as const;
const SPEC: WarmUpSpec = { dims: DIMS, type: 'bfloat16' };

/** What a call threw or rejected with: its class name and message (undefined if it did not). */
async function failure(fn: () => unknown): Promise<{ kind: string; message: string } | undefined> {
  try {
    await fn();
  } catch (e) {
    const err = e as Error;
    return { kind: err.constructor.name, message: err.message };
  }
  return undefined;
}

/** q, k, v host tensors of a spec's shape (zeros: only their shapes matter to the checks). */
function inputsOf(spec: { dims: readonly number[]; type: DType; valueDim?: number; kvSeq?: number }): Tensor[] {
  const [B, H, S, D] = spec.dims;
  const Skv = spec.kvSeq ?? S;
  return [
    zeros([B, H, S, D], spec.type),
    zeros([B, H, Skv, D], spec.type),
    zeros([B, H, Skv, spec.valueDim ?? D], spec.type),
  ];
}

/**
 * Runs in a fresh node: with `warm`, warmUp(spec, options) first; then one request (q, k, v of
 * spec.dims and fixed seeds, on device tensors when `device`), printing a hash of the output and
 * mask bits. With `device` and `warm` it also prints deviceMemory() before and right after the
 * warm-up, and inUse once the device's pending frees are done (trimDeviceMemory waits for them):
 * in a fresh process nothing else holds memory of the pool or frees any.
 */
const REQUEST_CHILD = `
const n = require('./dist');
const { uniform } = require('./dist/synthetic');
const { createHash } = require('crypto');
const { spec, options, warm, device } = JSON.parse(process.argv[1]);
(async () => {
  const before = device && warm ? n.deviceMemory(0) : undefined;
  const report = warm ? await n.warmUp(spec, options) : undefined;
  const after = before ? n.deviceMemory(0) : undefined;
  if (before) n.trimDeviceMemory(0);
  const memory = before ? { before, after, inUseSettled: n.deviceMemory(0).inUse } : undefined;
  const dims = [spec.dims, spec.dims, spec.dims];
  const host = dims.map((d, i) => n.tensor(n.fromFloat32(uniform(d.reduce((a, b) => a * b), 7 + i), spec.type), d, spec.type));
  const [q, k, v] = device ? host.map((t) => n.toDeviceSync(t)) : host;
  const { output, mask } = await n.nablaAttention(q, k, v, options);
  const out = await n.toHost(output);
  const hash = createHash('sha256');
  for (const a of [out.data, mask.kvCounts, mask.kvIndices]) hash.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  console.log(JSON.stringify({ report, memory, hash: hash.digest('hex'), density: mask.density() }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

function requestInChild(args: { spec: WarmUpSpec; options: NablaAttentionOptions; warm: boolean; device: boolean }) {
  const r = spawnSync(process.execPath, ['-e', REQUEST_CHILD, JSON.stringify(args)], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0 || r.signal !== null)
    throw new Error(`the child process failed (status ${r.status}, signal ${r.signal}):\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string) as {
    report?: { backend: string; device: number; kernels: object };
    memory?: { before: DeviceMemory; after: DeviceMemory; inUseSettled: number };
    hash: string;
    density: number;
  };
}

describe('warmUp: argument errors are those of nablaAttention', () => {
  const bad: NablaAttentionOptions[] = [
    { threshold: 0 },
    { threshold: '0.5' as unknown as number },
    { method: 'top' as 'topk' },
    { grid: [2, 16, 15] },
    { sta: [3, 1, 1] },
    { grid: GRID, frames: [0, 3] },
    { causal: 1 as unknown as boolean },
    { causal: true },
    { backend: 'gpu' as 'cuda' },
    { device: -1 },
    { device: 1.5 },
    { kernel: 'turbo' as 'fast' },
    { maskKernel: 'x' as 'fast' },
    { cpuKernel: 'x' as 'avx2' },
    { scale: 0 },
    { returnMap: 'yes' as unknown as boolean },
    { threshold: 2, kernel: 'turbo' as 'fast', backend: 'gpu' as 'cuda' }, // the first one checked is named
    5 as unknown as NablaAttentionOptions,
    [] as unknown as NablaAttentionOptions,
  ];
  test.each(bad.map((o) => [JSON.stringify(o), o]))('options %s', async (_, options) => {
    const [q, k, v] = inputsOf(SPEC);
    const expected = await failure(() => nablaAttentionSync(q, k, v, { ...CPU, ...options }));
    const isObject = typeof options === 'object' && !Array.isArray(options);
    const op = isObject ? expected : await failure(() => nablaAttentionSync(q, k, v, options));
    expect(op).toBeDefined();
    expect(await failure(() => warmUp(SPEC, isObject ? { ...CPU, ...options } : options))).toEqual(op);
  });

  test('a bad kernel from the environment names the variable, as the ops do', async () => {
    const [q, k, v] = inputsOf(SPEC);
    process.env.NABLA_ATTENTION_KERNEL = 'turbo';
    try {
      const expected = await failure(() => nablaAttentionSync(q, k, v, CPU));
      expect(expected?.message).toContain('NABLA_ATTENTION_KERNEL');
      expect(await failure(() => warmUp(SPEC, CPU))).toEqual(expected);
    } finally {
      delete process.env.NABLA_ATTENTION_KERNEL;
    }
  });

  // q's rules, named spec.dims / spec.type instead of q.dims / q.type
  const badQ: [string, readonly number[], string][] = [
    ['tokens not a multiple of 64', [1, 2, 500, 64], 'bfloat16'],
    ['a head dim below the least', [1, 2, 512, 4], 'bfloat16'],
    ['a head dim above the most', [1, 2, 512, 512], 'bfloat16'],
    ['3 dims', [1, 2, 512], 'bfloat16'],
    ['a zero dim', [0, 2, 512, 64], 'bfloat16'],
    ['a fractional dim', [1, 2.5, 512, 64], 'bfloat16'],
    ['a dtype the package lacks', [1, 2, 512, 64], 'int8'],
  ];
  test.each(badQ)('spec with %s: the error of a q of that shape', async (_, dims, type) => {
    const positive = dims.every((d) => Number.isInteger(d) && d > 0);
    const q = { type, dims, data: positive ? new Uint16Array(dims.reduce((a, b) => a * b, 1)) : new Uint16Array(0) };
    const expected = await failure(() => nablaAttentionSync(q as Tensor, q as Tensor, q as Tensor, CPU));
    expect(expected?.message).toMatch(/for q\.(dims|type)/);
    const spec = { dims, type } as unknown as WarmUpSpec;
    expect(await failure(() => warmUp(spec, CPU))).toEqual({
      kind: expected?.kind,
      message: expected?.message.replace(/for q\./, 'for spec.'),
    });
  });

  test('spec itself, valueDim and kvSeq are named', async () => {
    const cases: [unknown, string, string][] = [
      [undefined, 'TypeError', 'for spec but received undefined'],
      [[1, 2, 512, 64], 'TypeError', 'for spec but received [1, 2, 512, 64]'],
      [{ ...SPEC, valueDim: 1.5 }, 'TypeError', 'Expected a positive head dim for spec.valueDim but received 1.5'],
      [{ ...SPEC, valueDim: 0 }, 'RangeError', 'Expected a positive head dim for spec.valueDim but received 0'],
      [{ ...SPEC, valueDim: 300 }, 'RangeError', 'Expected a head dim in [8, 256] for spec.valueDim but received 300'],
      [{ ...SPEC, kvSeq: '512' }, 'TypeError', "Expected a positive token count for spec.kvSeq but received '512'"],
      [
        { ...SPEC, kvSeq: 100 },
        'RangeError',
        'Expected a sequence length that is a multiple of 64 (at most 2^31) for spec.kvSeq but received 100',
      ],
    ];
    for (const [spec, kind, message] of cases) {
      const got = await failure(() => warmUp(spec as WarmUpSpec, CPU));
      expect(got?.kind).toBe(kind);
      expect(got?.message).toContain(message);
    }
  });

  test("with a token grid, kvSeq must be q's length: the rule of k.dims, named spec.kvSeq", async () => {
    const spec = { ...SPEC, kvSeq: 256 };
    const [q, k, v] = inputsOf(spec);
    const expected = await failure(() => nablaAttentionSync(q, k, v, { ...CPU, grid: GRID }));
    expect(expected?.message).toContain('for k.dims');
    expect(await failure(() => warmUp(spec, { ...CPU, grid: GRID }))).toEqual({
      kind: expected?.kind,
      message: expected?.message.replace('for k.dims', 'for spec.kvSeq'),
    });
  });

  test('errors are rejections, never synchronous throws', () => {
    const p = warmUp(undefined as unknown as WarmUpSpec);
    expect(p).toBeInstanceOf(Promise);
    return expect(p).rejects.toThrow(TypeError);
  });
});

describe('warmUp on the CPU backend', () => {
  test.each([
    ['a token grid, the default kernels', SPEC, { threshold: 0.7, grid: GRID }],
    [
      'cross attention, the scalar kernel, topk',
      { dims: DIMS, type: 'float32', valueDim: 32, kvSeq: 256 },
      { cpuKernel: 'scalar', method: 'topk' },
    ],
  ] as [string, WarmUpSpec, NablaAttentionOptions][])(
    '%s: reports the backend and the kernels that nablaAttention runs',
    async (_, spec, options) => {
      const report = await warmUp(spec, { ...CPU, ...options });
      expect(Object.keys(report).sort()).toEqual(['backend', 'device', 'kernels', 'ms']);
      expect(report.ms).toBeGreaterThan(0);
      expect({ backend: report.backend, device: report.device }).toEqual({ backend: 'cpu', device: 0 });
      const [q, k, v] = inputsOf(spec);
      const ran = await nablaAttentionRan(q, k, v, { ...CPU, ...options });
      expect(report.kernels).toEqual(ran.kernels);
      if (options.cpuKernel === 'scalar') expect(report.kernels.attention).toBe('cpu-scalar');
    },
  );

  test('a request after warmUp gives the bits of a request in a process without it', () => {
    const options = { ...CPU, threshold: 0.7, grid: [...GRID] as [number, number, number] };
    const cold = requestInChild({ spec: SPEC, options, warm: false, device: false });
    const warm = requestInChild({ spec: SPEC, options, warm: true, device: false });
    expect(warm.report?.backend).toBe('cpu');
    expect(cold.report).toBeUndefined();
    expect(warm.hash).toBe(cold.hash);
    // a mask that keeps some blocks and drops others, so the hash covers a real selection
    expect(cold.density).toBeGreaterThan(0);
    expect(cold.density).toBeLessThan(1);
  });
});

const describeCuda = cudaSuite('warmUp on CUDA');

describeCuda('warmUp on CUDA', () => {
  const spec: WarmUpSpec = { dims: [1, 8, 4096, 128], type: 'bfloat16' };
  const options = { threshold: 0.7, grid: [4, 32, 32] as [number, number, number] };

  // in fresh processes (no other test's tensors in the pool, no garbage collected meanwhile)
  let cold: ReturnType<typeof requestInChild>;
  let warm: ReturnType<typeof requestInChild>;
  beforeAll(() => {
    cold = requestInChild({ spec, options, warm: false, device: true });
    warm = requestInChild({ spec, options, warm: true, device: true });
  });

  test('frees what it makes: inUse is back, the pool keeps at least the request reserved', () => {
    const { before, after, inUseSettled } = warm.memory as NonNullable<typeof warm.memory>;
    expect(inUseSettled).toBe(before.inUse);
    expect(after.reserved).toBeGreaterThanOrEqual(before.reserved);
    // q, k, v and the output were live together: the pool grew to hold them and kept them
    const tensorBytes = 4 * (1 * 8 * 4096 * 128 * 2);
    expect(after.reserved).toBeGreaterThanOrEqual(before.inUse + tensorBytes);
    expect({ backend: warm.report?.backend, device: warm.report?.device }).toEqual({ backend: 'cuda', device: 0 });
  });

  test('a request after warmUp gives the bits of a request in a process without it', () => {
    expect(cold.report).toBeUndefined();
    expect(warm.hash).toBe(cold.hash);
    expect(cold.density).toBeGreaterThan(0);
    expect(cold.density).toBeLessThan(1);
  });

  test('reports the kernels that nablaAttention runs on device tensors of that shape', async () => {
    const report = await warmUp(spec, options);
    const [q, k, v] = inputsOf(spec).map((t) => toDeviceSync(t));
    const ran = await nablaAttentionRan(q, k, v, options);
    try {
      expect(report.kernels).toEqual(ran.kernels);
      expect(report.kernels.attention.startsWith('cuda-')).toBe(true);
    } finally {
      for (const t of [q, k, v, ran.output]) t.dispose();
      ran.mask.dispose();
    }
  });

  test('returnMap is refused as for device inputs, and a refused warm-up allocates nothing', async () => {
    const [q, k] = inputsOf(spec).map((t) => toDeviceSync(t));
    const expected = await failure(() => nablaAttentionSync(q, k, k, { ...options, returnMap: true }));
    for (const t of [q, k]) t.dispose();
    expect(expected?.message).toContain('returnMap');
    const before = deviceMemory(0).inUse;
    expect(await failure(() => warmUp(spec, { ...options, returnMap: true }))).toEqual(expected);
    // frees elsewhere (other files' garbage) can only lower inUse
    expect(deviceMemory(0).inUse).toBeLessThanOrEqual(before);
  });
});
