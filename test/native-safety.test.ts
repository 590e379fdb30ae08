// The native layer under hostile use: worker threads torn down under pending ops, inputs
// transferred or shrunk while an async op runs, SharedArrayBuffer-backed arrays, repeated block
// ids, block grids whose products overflow, and the kernel choice. Cases that crashed the process
// run in a child process, so that a crash fails the test instead of ending jest.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { native } from '../lib/native';

const ROOT = path.resolve(__dirname, '..');

// Loaded by every child: the addon (through dist/, honouring NABLA_NATIVE_PATH) and a seeded
// dense attention problem whose q, k and v have buffers of their own.
const PRELUDE = `
const { native } = require(${JSON.stringify(path.join(ROOT, 'dist', 'native'))});
function problem(S, D, seed) {
  let x = seed >>> 0;
  const fill = (a) => { for (let i = 0; i < a.length; i++) { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; a[i] = x / 2 ** 32 - 0.5; } return a; };
  return {
    q: fill(new Float32Array(S * D)), k: fill(new Float32Array(S * D)), v: fill(new Float32Array(S * D)),
    out: new Float32Array(S * D), dtype: 0, batch: 1, heads: 1, seqQ: S, seqKv: S, headDim: D, valueDim: D,
    scale: 1 / Math.sqrt(D), kernel: 'auto', backend: 'cpu', device: 0,
  };
}
// Takes q and k away from their owner while an async op runs: q's new owner overwrites the memory
// the op would read in place; k is transferred into a closed port, so its memory is freed, and new
// arrays of fillerLength elements reuse it (returned: keep them until the op settles).
function takeAway(q, k, fillerLength) {
  const moved = new Float32Array(structuredClone(q.buffer, { transfer: [q.buffer] }));
  moved.fill(NaN);
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(k.buffer, [k.buffer]);
  port1.close(); port2.close();
  global.gc();
  const filler = []; for (let i = 0; i < 8; i++) filler.push(new Float32Array(fillerLength).fill(1e30));
  return filler;
}
function sameBits(a, b) {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length), y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}
`;

interface ChildResult {
  status: number | null;
  signal: string | null;
  output: string;
  result: Record<string, unknown>;
}

/** Runs `body` (async, after the prelude) in a fresh node; its last stdout line is JSON. */
function runChild(body: string): ChildResult {
  const script = `${PRELUDE}\n(async () => {\n${body}\n})().catch((e) => { console.error(e); process.exit(1); });`;
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120000,
  });
  const lines = (r.stdout ?? '').trim().split('\n');
  let result: Record<string, unknown> = {};
  try {
    result = JSON.parse(lines[lines.length - 1]);
  } catch {
    // no result line: status/signal and output tell why
  }
  return { status: r.status, signal: r.signal, output: `${r.stdout}\n${r.stderr}`.slice(-4000), result };
}

function expectClean(r: ChildResult) {
  if (r.status !== 0 || r.signal !== null)
    throw new Error(`child ended with status ${r.status}, signal ${r.signal}:\n${r.output}`);
}

function thrown(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a throw');
}

// dense attention args of a small problem (S = 256, D = 16) and its sync reference output
function smallProblem(seed: number) {
  const S = 256,
    D = 16;
  let x = seed;
  // LCG x' = 1664525 x + 1013904223 (mod 2^32), scaled to [-0.5, 0.5)
  const next = () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32 - 0.5;
  };
  const fill = (a: Float32Array) => a.map(next);
  return {
    q: fill(new Float32Array(S * D)),
    k: fill(new Float32Array(S * D)),
    v: fill(new Float32Array(S * D)),
    out: new Float32Array(S * D),
    dtype: 0,
    batch: 1,
    heads: 1,
    seqQ: S,
    seqKv: S,
    headDim: D,
    valueDim: D,
    scale: 0.25,
    kernel: 'auto' as const,
    backend: 'cpu' as const,
    device: 0,
  };
}

function shared<T extends Float32Array | Int32Array | Uint8Array>(a: T): T {
  const Ctor = a.constructor as new (b: SharedArrayBuffer) => T;
  const s = new Ctor(new SharedArrayBuffer(a.byteLength));
  s.set(a as never);
  return s;
}

describe('worker threads', () => {
  test('terminating a worker (or process.exit in it) with async ops pending leaves the process and other workers running', () => {
    const r = runChild(`
      const { Worker } = require('worker_threads');
      const source = ${JSON.stringify(PRELUDE)} + \`
        const { parentPort, workerData } = require('worker_threads');
        const a = problem(1024, 64, 7);
        const pending = [];
        for (let i = 0; i < 4; i++) pending.push(native.attention({ ...a, out: new Float32Array(a.out.length) }, true));
        if (workerData.mode === 'exit') setImmediate(() => process.exit(3));
        else if (workerData.mode === 'terminate') parentPort.postMessage('started');
        else Promise.all(pending).then((kernels) => {
          const out = new Float32Array(a.out.length);
          native.attention({ ...a, out }, true).then((kernel) => parentPort.postMessage({ kernels: [...kernels, kernel], out }));
        });
      \`;
      const start = (mode) => new Worker(source, { eval: true, workerData: { mode } });
      const ended = (w) => new Promise((resolve) => w.on('exit', resolve));
      const exits = [];
      for (let round = 0; round < 3; round++) {
        const doomed = [start('terminate'), start('terminate'), start('exit')];
        for (const w of doomed.slice(0, 2)) w.once('message', () => w.terminate());
        exits.push(...(await Promise.all(doomed.map(ended))));
      }
      // a worker that lets its ops finish gets the same result as the main thread
      const survivor = start('finish');
      const survivorEnded = ended(survivor);
      const message = await new Promise((resolve) => survivor.once('message', resolve));
      await survivorEnded;
      const a = problem(1024, 64, 7);
      native.attention(a, false);
      global.gc();
      console.log(JSON.stringify({ exits, kernels: message.kernels, equal: sameBits(message.out, a.out) }));
    `);
    expectClean(r);
    // terminate() gives exit code 1, or 0 where the worker's ops all finished before it took effect
    const exits = r.result.exits as number[];
    expect(exits).toHaveLength(9);
    exits.forEach((code, i) => expect(i % 3 === 2 ? [3] : [0, 1]).toContain(code));
    expect((r.result.kernels as string[]).every((k) => k === 'cpu-avx2' || k === 'cpu-scalar')).toBe(true);
    expect(r.result.kernels).toHaveLength(5);
    expect(r.result.equal).toBe(true);
  });

  test('several workers load the addon and recognise its device buffers independently', () => {
    const r = runChild(`
      const { Worker } = require('worker_threads');
      const source = ${JSON.stringify(PRELUDE)} + \`
        const { parentPort } = require('worker_threads');
        let message = '';
        try {
          native.blockPool({ x: Object.create(native.DeviceBuffer.prototype), dtype: 0, rows: 1, seq: 64, headDim: 8,
            out: new Float32Array(8), backend: 'cpu', device: 0 }, false);
        } catch (e) { message = e.constructor.name + ': ' + e.message; }
        const a = problem(256, 16, 3);
        native.attention(a, false);
        parentPort.postMessage({ message, out: a.out });
      \`;
      const workers = [0, 1, 2, 3].map(() => new Worker(source, { eval: true }));
      const messages = await Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve))));
      const a = problem(256, 16, 3);
      native.attention(a, false);
      console.log(JSON.stringify({ messages: messages.map((m) => m.message), equal: messages.every((m) => sameBits(m.out, a.out)) }));
    `);
    expectClean(r);
    for (const m of r.result.messages as string[])
      expect(m).toBe('TypeError: Expected a Float32Array or a device buffer for x but received an object');
    expect(r.result.equal).toBe(true);
  });
});

describe('async ops settle like their sync twins', () => {
  const cudaUsable = native.backends().cuda;
  (cudaUsable ? test.skip : test)(
    'a failing op rejects with the error, code and cudaError the sync call throws',
    async () => {
      const a = { ...smallProblem(3), backend: 'cuda' as const };
      const sync = thrown(() => native.attention(a, false)) as Error & { code?: string; cudaError?: number };
      expect(typeof sync.code).toBe('string');
      expect(sync.code!.length).toBeGreaterThan(0);
      const rejected = await native.attention(a, true).then(
        () => null,
        (e: Error & { code?: string; cudaError?: number }) => e,
      );
      expect(rejected?.constructor.name).toBe('Error'); // native errors come from another realm under jest
      expect({ message: rejected!.message, code: rejected!.code, cudaError: rejected!.cudaError }).toEqual({
        message: sync.message,
        code: sync.code,
        cudaError: sync.cudaError,
      });
    },
  );
});

describe('inputs of async ops are read as they were at call time', () => {
  test('an input transferred away (structuredClone, postMessage), overwritten and collected', () => {
    const r = runChild(`
      const a = problem(2048, 64, 11);
      const reference = new Float32Array(a.out.length);
      native.attention({ ...a, out: reference }, false);
      const results = [];
      for (let round = 0; round < 3; round++) {
        const b = problem(2048, 64, 11);
        const pending = native.attention(b, true);
        const filler = takeAway(b.q, b.k, b.out.length);
        const kernel = await pending;
        results.push({ kernel, detached: b.q.length === 0 && b.k.length === 0, equal: sameBits(b.out, reference) });
      }
      console.log(JSON.stringify({ results }));
    `);
    expectClean(r);
    for (const one of r.result.results as { detached: boolean; equal: boolean }[])
      expect(one).toMatchObject({ detached: true, equal: true });
  });

  test('an async mask whose q and k are transferred away, overwritten and freed', () => {
    // the CPU mask pools q and k at call time instead of copying them: the op never reads them again
    const r = runChild(`
      const maskArgs = (p, map) => ({ q: p.q, k: p.k, dtype: 0, batch: 1, heads: 1, seqQ: 4096, seqKv: 4096, headDim: 32,
        threshold: 0.6, method: 'cdf', sta: false, kvCounts: new Int32Array(64), kvIndices: new Int32Array(4096), map,
        backend: 'cpu', device: 0 });
      const reference = maskArgs(problem(4096, 32, 21), new Float32Array(4096));
      native.nablaMask(reference, false);
      const results = [];
      for (let round = 0; round < 3; round++) {
        const b = maskArgs(problem(4096, 32, 21), new Float32Array(4096));
        const pending = native.nablaMask(b, true);
        const filler = takeAway(b.q, b.k, 4096 * 32);
        const kernel = await pending;
        results.push({ kernel, detached: b.q.length === 0 && b.k.length === 0,
          equal: sameBits(b.kvCounts, reference.kvCounts) && sameBits(b.kvIndices, reference.kvIndices) &&
            sameBits(b.map, reference.map) });
      }
      console.log(JSON.stringify({ results, kept: Array.from(reference.kvCounts).reduce((s, c) => s + c, 0) }));
    `);
    expectClean(r);
    expect(r.result.kept).toBeGreaterThan(64); // a real mask: more than one block per row kept
    expect(r.result.kept).toBeLessThan(4096);
    for (const one of r.result.results as { detached: boolean; equal: boolean }[])
      expect(one).toMatchObject({ kernel: 'cpu', detached: true, equal: true });
  });

  test('a resizable ArrayBuffer shrunk behind a length-tracking input view', () => {
    const r = runChild(`
      const a = problem(2048, 64, 12);
      const reference = new Float32Array(a.out.length);
      native.attention({ ...a, out: reference }, false);
      const results = [];
      for (let round = 0; round < 3; round++) {
        const bytes = a.v.byteLength;
        const resizable = new ArrayBuffer(bytes, { maxByteLength: bytes });
        const v = new Float32Array(resizable);  // length-tracking
        v.set(a.v);
        const out = new Float32Array(a.out.length);
        const pending = native.attention({ ...a, v, out }, true);
        resizable.resize(0);
        global.gc();
        await pending;
        results.push({ shrunk: v.length === 0, equal: sameBits(out, reference) });
      }
      console.log(JSON.stringify({ results }));
    `);
    expectClean(r);
    for (const one of r.result.results as { shrunk: boolean; equal: boolean }[])
      expect(one).toEqual({ shrunk: true, equal: true });
  });
});

describe('arguments changed by getters while the native layer reads them', () => {
  test('an input detached or shrunk by a later getter is refused, sync and async', () => {
    const r = runChild(`
      const catchIt = async (fn) => { try { await fn(); return 'no error'; } catch (e) { return e.constructor.name + ': ' + e.message; } };
      const results = [];
      for (const async of [false, true]) {
        // q is detached (transferred to a closed port, so its memory is freed) when backend is read
        const a = problem(256, 16, 21);
        const detaching = { ...a };
        Object.defineProperty(detaching, 'backend', { enumerable: true, get() {
          const { port1, port2 } = new MessageChannel();
          port1.postMessage(a.q.buffer, [a.q.buffer]); port1.close(); port2.close(); global.gc();
          return 'cpu';
        } });
        results.push(await catchIt(() => native.attention(detaching, async)));
        // v's resizable buffer shrinks to nothing when device is read
        const b = problem(256, 16, 22);
        const resizable = new ArrayBuffer(b.v.byteLength, { maxByteLength: b.v.byteLength });
        const v = new Float32Array(resizable); v.set(b.v);
        const shrinking = { ...b, v };
        Object.defineProperty(shrinking, 'device', { enumerable: true, get() { resizable.resize(0); return 0; } });
        results.push(await catchIt(() => native.attention(shrinking, async)));
      }
      console.log(JSON.stringify({ results }));
    `);
    expectClean(r);
    const changed = (name: string) =>
      `RangeError: Expected its 16384 bytes for the whole call for ${name} but received 0 bytes (changed while the arguments were read)`;
    expect(r.result.results).toEqual([changed('q'), changed('v'), changed('q'), changed('v')]);
  });
});

describe('SharedArrayBuffer-backed typed arrays are accepted by every op, as inputs and outputs', () => {
  test('attention, nablaMask, blockPool, staMask: same results as with plain arrays', async () => {
    const a = smallProblem(5);
    const expected = new Float32Array(a.out.length);
    native.attention({ ...a, out: expected }, false);
    const sharedArgs = { ...a, q: shared(a.q), k: shared(a.k), v: shared(a.v) };
    const syncOut = shared(a.out),
      asyncOut = shared(a.out);
    native.attention({ ...sharedArgs, out: syncOut }, false);
    await native.attention({ ...sharedArgs, out: asyncOut }, true);
    expect(Array.from(syncOut)).toEqual(Array.from(expected));
    expect(Array.from(asyncOut)).toEqual(Array.from(expected));

    const mask = (
      q: Float32Array,
      k: Float32Array,
      kvCounts: Int32Array,
      kvIndices: Int32Array,
      map: Float32Array,
    ) => ({
      q,
      k,
      dtype: 0,
      batch: 1,
      heads: 1,
      seqQ: 256,
      seqKv: 256,
      headDim: 16,
      threshold: 0.5,
      method: 'cdf' as const,
      sta: true,
      grid: shared(new Int32Array([1, 2, 2])),
      window: shared(new Int32Array([1, 1, 1])),
      kvCounts,
      kvIndices,
      map,
      backend: 'cpu' as const,
      device: 0,
    });
    const plain = mask(a.q, a.k, new Int32Array(4), new Int32Array(16), new Float32Array(16));
    const viaShared = mask(
      shared(a.q),
      shared(a.k),
      shared(new Int32Array(4)),
      shared(new Int32Array(16)),
      shared(new Float32Array(16)),
    );
    expect(native.nablaMask(plain, false)).toBe('cpu');
    expect(await native.nablaMask(viaShared, true)).toBe('cpu');
    expect(Array.from(viaShared.kvCounts as Int32Array)).toEqual(Array.from(plain.kvCounts));
    expect(Array.from(viaShared.kvIndices as Int32Array)).toEqual(Array.from(plain.kvIndices));
    expect(Array.from(viaShared.map as Float32Array)).toEqual(Array.from(plain.map));

    // a host mask in shared memory drives attention too
    const sparse = new Float32Array(a.out.length),
      sparseShared = shared(sparse);
    native.attention({ ...a, out: sparse, kvCounts: plain.kvCounts, kvIndices: plain.kvIndices }, false);
    native.attention(
      {
        ...sharedArgs,
        out: sparseShared,
        kvCounts: viaShared.kvCounts as Int32Array,
        kvIndices: viaShared.kvIndices as Int32Array,
      },
      false,
    );
    expect(Array.from(sparseShared)).toEqual(Array.from(sparse));

    const pool = (x: Float32Array, out: Float32Array) => ({
      x,
      dtype: 0,
      rows: 1,
      seq: 256,
      headDim: 16,
      out,
      backend: 'cpu' as const,
      device: 0,
    });
    const pooled = new Float32Array(64),
      pooledShared = shared(pooled);
    native.blockPool(pool(a.q, pooled), false);
    expect(await native.blockPool(pool(shared(a.q), pooledShared), true)).toBe('cpu');
    expect(Array.from(pooledShared)).toEqual(Array.from(pooled));
    // block means: out[0] is the mean of q[t * 16] over the first 64 tokens
    let mean = 0;
    for (let t = 0; t < 64; t++) mean += a.q[t * 16];
    expect(pooled[0]).toBeCloseTo(mean / 64, 5);

    const sta = new Uint8Array(16),
      staShared = shared(sta);
    native.staMask({ grid: new Int32Array([1, 2, 2]), window: new Int32Array([1, 3, 1]), out: sta });
    native.staMask({
      grid: shared(new Int32Array([1, 2, 2])),
      window: shared(new Int32Array([1, 3, 1])),
      out: staShared,
    });
    expect(Array.from(staShared)).toEqual(Array.from(sta));
    // blocks (h, w) = 0:(0,0) 1:(0,1) 2:(1,0) 3:(1,1); window h 3 (|dh| <= 1), w 1 (same column)
    expect(Array.from(sta).join('')).toBe('1010010110100101');
  });
});

describe('host masks: every row lists distinct ids, ascending', () => {
  const a = smallProblem(9);
  const lists = (row0: number[]) => {
    const kvCounts = new Int32Array([row0.length, 1, 1, 1]);
    const kvIndices = new Int32Array(16);
    kvIndices.set(row0);
    return { kvCounts, kvIndices };
  };
  test.each([
    [[1, 1], '1 after 1 at row 0'],
    [[0, 2, 1], '1 after 2 at row 0'],
    [[3, 0, 3], '0 after 3 at row 0'],
  ])('ids %j are refused, sync and async', (row0, received) => {
    for (const async of [false, true]) {
      const e = thrown(() =>
        native.attention({ ...a, out: new Float32Array(a.out.length), ...lists(row0) }, async as never),
      );
      expect(e.constructor.name).toBe('RangeError');
      expect(e.message).toBe(
        `Expected block ids rising strictly within each row for mask.kvIndices but received ${received}`,
      );
    }
  });

  test('ascending ids give the dense result when every block is listed', () => {
    const dense = new Float32Array(a.out.length),
      sparse = new Float32Array(a.out.length);
    native.attention({ ...a, out: dense }, false);
    const kvCounts = new Int32Array([4, 4, 4, 4]);
    const kvIndices = new Int32Array([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]);
    native.attention({ ...a, out: sparse, kvCounts, kvIndices }, false);
    expect(Array.from(sparse)).toEqual(Array.from(dense));
  });
});

describe('direct calls with sizes that overflow are refused, not wrapped', () => {
  test('staMask and nablaMask with block grids whose products wrap', () => {
    const r = runChild(`
      const catchIt = (fn) => { try { fn(); return 'no error'; } catch (e) { return e.constructor.name + ': ' + e.message; } };
      // 65536 * 65536 * 1 blocks: nb * nb = 2^64 wraps to 0 in 64 bits
      const sta = catchIt(() => native.staMask({ grid: new Int32Array([65536, 65536, 1]), window: new Int32Array([1, 1, 1]), out: new Uint8Array(0) }));
      // 111620 * 429509837 * 384773 = 2^64 + 4 wraps to the 4 blocks of 256 tokens; frames use the grid
      const S = 256, D = 16;
      const grid = new Int32Array([111620, 429509837, 384773]);
      const mask = catchIt(() => native.nablaMask({
        q: new Float32Array(S * D), k: new Float32Array(S * D), dtype: 0, batch: 1, heads: 1, seqQ: S, seqKv: S, headDim: D,
        threshold: 0.5, method: 'cdf', sta: false, grid, frames: new Int32Array([0, 111620]),
        kvCounts: new Int32Array(4), kvIndices: new Int32Array(16), backend: 'cpu', device: 0 }, false));
      console.log(JSON.stringify({ sta, mask }));
    `);
    expectClean(r);
    expect(r.result.sta).toBe(
      'RangeError: Expected a block grid of at most 94906265 blocks for grid but received 65536 x 65536 x 1',
    );
    expect(r.result.mask).toBe(
      'RangeError: Expected a block grid of at most 4 blocks for grid but received 111620 x 429509837 x 384773',
    );
  });

  test('STA windows up to 2^31 - 1 work', () => {
    // grid 2 x 2 x 2; windows: t and w everything, h only the same row
    const big = 2 ** 31 - 1;
    const out = new Uint8Array(64);
    native.staMask({ grid: new Int32Array([2, 2, 2]), window: new Int32Array([big, 1, big]), out });
    const expected = Array.from({ length: 64 }, (_, n) => {
      const i = Math.floor(n / 8),
        j = n % 8;
      return Math.floor(i / 2) % 2 === Math.floor(j / 2) % 2 ? 1 : 0;
    });
    expect(Array.from(out)).toEqual(expected);

    // in the mask (topk keeps 1 block per row, STA ORs in the rest): every row keeps all 8 blocks
    const S = 512,
      D = 8;
    const kvCounts = new Int32Array(8),
      kvIndices = new Int32Array(64);
    native.nablaMask(
      {
        q: new Float32Array(S * D).fill(0.5),
        k: new Float32Array(S * D).fill(0.25),
        dtype: 0,
        batch: 1,
        heads: 1,
        seqQ: S,
        seqKv: S,
        headDim: D,
        threshold: 0.01,
        method: 'topk',
        sta: true,
        grid: new Int32Array([2, 2, 2]),
        window: new Int32Array([big, big, big]),
        kvCounts,
        kvIndices,
        backend: 'cpu',
        device: 0,
      },
      false,
    );
    expect(Array.from(kvCounts)).toEqual(new Array(8).fill(8));
    for (let r = 0; r < 8; r++)
      expect(Array.from(kvIndices.subarray(r * 8, r * 8 + 8))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  test('grids with zero or negative sizes, or of the wrong length', () => {
    for (const grid of [new Int32Array([0, 2, 2]), new Int32Array([-1, 2, 2]), new Int32Array([2, 2])]) {
      const e = thrown(() => native.staMask({ grid, window: new Int32Array([1, 1, 1]), out: new Uint8Array(64) }));
      expect(e.constructor.name).toBe('RangeError');
      expect(e.message).toMatch(/^Expected 3 positive block-grid sizes for grid but received Int32Array\(\d\)$/);
    }
  });
});

describe('the kernel is chosen by the call, not by the environment', () => {
  const a = smallProblem(13);
  // 'avx2' either runs or is refused with a reason; 'auto' runs it exactly when it can
  const avx2 = (() => {
    try {
      return native.attention({ ...a, out: new Float32Array(a.out.length), cpuKernel: 'avx2' }, false);
    } catch (e) {
      const err = e as Error & { code?: string };
      expect(err.code).toBe('ERR_NABLA_KERNEL_UNAVAILABLE');
      expect(err.message).toMatch(
        /^Expected a CPU kernel this machine can run for cpuKernel but received 'avx2': this (CPU lacks|build has no)/,
      );
      return 'unavailable';
    }
  })();

  test('cpuKernel picks the kernel and the op reports it', async () => {
    const auto = new Float32Array(a.out.length),
      scalar = new Float32Array(a.out.length);
    expect(native.attention({ ...a, out: auto }, false)).toBe(avx2 === 'unavailable' ? 'cpu-scalar' : 'cpu-avx2');
    expect(await native.attention({ ...a, out: scalar, cpuKernel: 'scalar' }, true)).toBe('cpu-scalar');
    // the two kernels agree to fp32 rounding
    for (let i = 0; i < auto.length; i++) expect(Math.abs(auto[i] - scalar[i])).toBeLessThan(1e-5);
  });

  test('NABLA_CPU_ISA no longer reaches the native layer', () => {
    const before = process.env.NABLA_CPU_ISA;
    process.env.NABLA_CPU_ISA = 'scalar';
    try {
      expect(native.attention({ ...a, out: new Float32Array(a.out.length) }, false)).toBe(
        avx2 === 'unavailable' ? 'cpu-scalar' : 'cpu-avx2',
      );
    } finally {
      if (before === undefined) delete process.env.NABLA_CPU_ISA;
      else process.env.NABLA_CPU_ISA = before;
    }
  });

  test('unknown kernel names are refused', () => {
    const e = thrown(() => native.attention({ ...a, cpuKernel: 'sse' as never }, false));
    expect(e.constructor.name).toBe('RangeError');
    expect(e.message).toBe("Expected one of 'auto', 'avx2', 'scalar' for cpuKernel but received 'sse'");
    const m = thrown(() =>
      native.nablaMask(
        {
          q: a.q,
          k: a.k,
          dtype: 0,
          batch: 1,
          heads: 1,
          seqQ: 256,
          seqKv: 256,
          headDim: 16,
          threshold: 0.5,
          method: 'cdf',
          sta: false,
          kvCounts: new Int32Array(4),
          kvIndices: new Int32Array(16),
          backend: 'cpu',
          device: 0,
          maskKernel: 'turbo' as never,
        },
        false,
      ),
    );
    expect(m.constructor.name).toBe('RangeError');
    expect(m.message).toBe("Expected one of 'auto', 'fast', 'simple', 'fast2' for maskKernel but received 'turbo'");
    const pool = thrown(() =>
      native.blockPool(
        {
          x: new Float32Array(256 * 16),
          dtype: 0,
          rows: 1,
          seq: 256,
          headDim: 16,
          out: new Float32Array(4 * 16),
          backend: 'cpu',
          device: 0,
          poolKernel: 'wide' as never,
        },
        false,
      ),
    );
    expect(pool.constructor.name).toBe('RangeError');
    expect(pool.message).toBe("Expected one of 'auto', 'simple', 'fast2' for poolKernel but received 'wide'");
  });
});

describe('limits and the scale', () => {
  test('native.limits gives maxDim and maxScale', () => {
    expect(native.limits.maxDim).toBe(2 ** 31);
    expect(native.limits.maxScale).toBe(2 ** 16);
  });

  test('scales above maxScale are refused; maxScale itself gives finite output', () => {
    const a = smallProblem(17);
    for (const scale of [3e38, 65536.5, 0, -1]) {
      const e = thrown(() => native.attention({ ...a, scale }, false));
      expect(e.constructor.name).toBe('RangeError');
      expect(e.message).toBe(`Expected a positive number of at most 65536 for scale but received ${scale}`);
    }
    native.attention({ ...a, scale: 65536 }, false);
    expect(a.out.every(Number.isFinite)).toBe(true);
  });
});

describe('native errors keep the one format', () => {
  test('device buffers, spoofed operands, both-or-neither lists', () => {
    const cases: [() => unknown, string, RegExp][] = [
      [
        () => new native.DeviceBuffer('0' as never, 4),
        'TypeError',
        /^Expected a device index for device but received '0'$/,
      ],
      [
        () => new native.DeviceBuffer(0.5, 4),
        'RangeError',
        /^Expected a device index in \[0, 1023\] for device but received 0.5$/,
      ],
      [
        () => new native.DeviceBuffer(0, -1),
        'RangeError',
        /^Expected a byte count in \[0, 2\^53\) for bytes but received -1$/,
      ],
      [
        () =>
          native.blockPool(
            {
              x: new Proxy(new Float32Array(512), {}) as never,
              dtype: 0,
              rows: 1,
              seq: 64,
              headDim: 8,
              out: new Float32Array(8),
              backend: 'cpu',
              device: 0,
            },
            false,
          ),
        'TypeError',
        /^Expected a Float32Array or a device buffer for x but received an object$/,
      ],
      [
        () => (Object.create(native.DeviceBuffer.prototype) as { bytes: number }).bytes,
        'TypeError',
        /^Expected a DeviceBuffer for this but received an object$/,
      ],
      [
        () =>
          native.staMask({
            grid: new Int32Array([1, 1, 1]),
            window: new Int32Array([1, 1, 1]),
            out: new Uint16Array(1) as never,
          }),
        'TypeError',
        /^Expected a Uint8Array for out but received Uint16Array\(1\)$/,
      ],
    ];
    for (const [fn, kind, message] of cases) {
      const e = thrown(fn);
      expect(e.constructor.name).toBe(kind);
      expect(e.message).toMatch(message);
    }
  });
});

// The methods of the addon's two classes (DeviceBuffer, DeviceEvent) taken off the prototype and
// called on anything but an instance of their own class: a TypeError in the one format (each method
// checks the class's type tag before it unwraps `this`; the engine's "Illegal invocation" is not
// that format). Instances of either class need CUDA to exist, so each class's methods on the other
// class's instance are in test/cuda-interop.test.ts; here, objects any machine can make.
describe('class methods called on another object', () => {
  test('every DeviceBuffer and DeviceEvent method throws a TypeError naming this (child process)', () => {
    const r = runChild(`
      const classes = {
        DeviceBuffer: { proto: native.DeviceBuffer.prototype, methods: {
          dispose: [], upload: [new Float32Array(4), false], download: [new Float32Array(4), false], fill: [0] } },
        DeviceEvent: { proto: native.DeviceEvent.prototype, methods: { dispose: [] } },
      };
      const others = {
        plain: {},
        array: [],
        fn: function () {},
        bufferPrototype: Object.create(native.DeviceBuffer.prototype),
        eventPrototype: Object.create(native.DeviceEvent.prototype),
        proxy: new Proxy({}, {}),
      };
      const results = [];
      for (const [name, { proto, methods }] of Object.entries(classes))
        for (const [method, args] of Object.entries(methods))
          for (const [what, other] of Object.entries(others)) {
            let outcome = 'no throw';
            try {
              const value = proto[method].apply(other, args);
              if (value && typeof value.then === 'function') await value;
            } catch (e) {
              outcome = e.constructor.name + ': ' + e.message;
            }
            results.push({ call: name + '.' + method + ' on ' + what, outcome });
          }
      console.log(JSON.stringify({ results }));`);
    expectClean(r);
    const results = r.result.results as { call: string; outcome: string }[];
    expect(results).toHaveLength(5 * 6);
    for (const { call, outcome } of results) {
      const name = call.split('.')[0];
      expect({ call, outcome }).toEqual({
        call,
        outcome: expect.stringMatching(new RegExp(`^TypeError: Expected a ${name} for this but received `)),
      });
    }
  });
});
