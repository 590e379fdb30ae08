// Interop with other GPU code on a CUDA device: wrapping memory without copying (an op on wrapped
// tensors gives the CPU backend's result), owners kept alive exactly as long as the tensor, waits
// across streams and events in both directions, and pointers the runtime places elsewhere refused.
// "Other GPU code" is the test-only addon build/Release/nabla_interop_probe.node
// (test/native/interop_probe.cu, built by CUDA builds of a checkout). Skipped, with the reason
// printed, where no CUDA device can be used; NABLA_REQUIRE_CUDA=1 turns that skip into a failure.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import {
  DeviceTensor,
  attentionSync,
  backends,
  blockPoolSync,
  deviceMemory,
  deviceStream,
  emptyDevice,
  fromDevicePointer,
  recordEvent,
  tensor,
  toDeviceSync,
  waitForExternal,
} from '../lib';
import { native } from '../lib/native';
import { CPU, cudaSuite, relMaxError } from './helpers';
import { randn } from './reference';

const describeCuda = cudaSuite('CUDA interop tests');
const ROOT = path.resolve(__dirname, '..');
const PROBE_PATH = path.join(ROOT, 'build', 'Release', 'nabla_interop_probe.node');
/** Device time the probe's kernels sleep before they write: far longer than enqueueing what follows. */
const DELAY_MS = 300;

/** The probe addon's surface (test/native/interop_probe.cu). */
interface Probe {
  createStream(device: number): bigint;
  destroyStream(stream: bigint): void;
  malloc(device: number, bytes: number): bigint;
  free(pointer: bigint): void;
  mallocHost(bytes: number): bigint;
  freeHost(pointer: bigint): void;
  fillAfterDelay(stream: bigint, pointer: bigint, count: number, value: number, delayMs: number): void;
  recordEvent(stream: bigint): bigint;
  destroyEvent(event: bigint): void;
  waitEvent(stream: bigint, event: bigint): void;
  copy(stream: bigint, dst: bigint, src: bigint, bytes: number): void;
  synchronize(stream: bigint): void;
}

function loadProbe(): Probe {
  if (!fs.existsSync(PROBE_PATH))
    throw new Error(`${PROBE_PATH} is missing: build with CMake and nvcc (npm run build:native) to get it`);
  return require(PROBE_PATH) as Probe;
}

/** The error fn throws: its constructor's name (native errors come from another realm) and message. */
function thrown(fn: () => unknown): { kind: string; message: string } {
  try {
    fn();
  } catch (e) {
    return { kind: (e as Error).constructor.name, message: (e as Error).message };
  }
  throw new Error('expected a throw');
}

/** Every value of a float32 device tensor equals `value`: the count of those that do not. */
function differingFrom(t: DeviceTensor, value: number): number {
  return Array.from(t.toHostSync().data).filter((x) => x !== value).length;
}

describeCuda('wrapping device memory (fromDevicePointer)', () => {
  test('an op on wrapped tensors gives the CPU backend result, and the wrap aliases the memory', () => {
    const dims = [1, 2, 128, 64];
    const n = dims.reduce((a, b) => a * b, 1);
    const [qh, kh, vh] = [1, 2, 3].map((seed) => tensor(randn(n, seed), dims));
    const expected = attentionSync(qh, kh, vh, CPU);
    const [q, k, v] = [qh, kh, vh].map((t) => toDeviceSync(t));
    const before = deviceMemory(0).inUse;
    const [qw, kw, vw] = [q, k, v].map((t) =>
      fromDevicePointer({ pointer: t.pointer, dims: t.dims, type: t.type, device: t.device, owner: t }),
    );
    // wrapping allocates nothing (frees elsewhere can only lower inUse)
    expect(deviceMemory(0).inUse).toBeLessThanOrEqual(before);
    expect(qw.pointer).toBe(q.pointer);
    expect([qw.external, q.external]).toEqual([true, false]);
    expect(Array.from(qw.toHostSync().data)).toEqual(Array.from(qh.data));

    const out = attentionSync(qw, kw, vw);
    expect(relMaxError(out.toHostSync().data, expected.data)).toBeLessThan(1e-4);
    out.dispose();

    // a write through the wrap lands in the wrapped tensor: the same memory, not a copy
    const ones = new Float32Array(n).fill(1);
    qw.buffer.upload(ones, false);
    expect(Array.from(q.toHostSync().data)).toEqual(Array.from(ones));

    // dispose() of a wrap frees nothing: the owner's tensor keeps its contents
    for (const t of [qw, kw, vw]) t.dispose();
    expect(Array.from(k.toHostSync().data)).toEqual(Array.from(kh.data));
    for (const t of [q, k, v]) t.dispose();
  });

  test('a wrapped tensor read as another element type must be aligned to it (native check)', () => {
    const base = emptyDevice([2 * 64 * 64 + 2], 'float32');
    // float16 memory 2 bytes into a float32 tensor: aligned for float16, not for float32
    const pointer = base.pointer + 2n;
    const half = new native.DeviceBuffer(0, 64 * 64 * 4, { pointer, owner: base, elementBytes: 2 });
    const forged = new DeviceTensor('float32', [1, 1, 64, 64], 0, half);
    const error = thrown(() => blockPoolSync(forged));
    expect(error.kind).toBe('RangeError');
    expect(error.message).toBe(
      `Expected a device buffer aligned to 4 bytes for x but received 0x${pointer.toString(16)}`,
    );
    half.dispose();
    base.dispose();
  });

  test('page-locked host memory and addresses CUDA does not know are refused', () => {
    const probe = loadProbe();
    const host = probe.mallocHost(4096);
    try {
      const pinned = thrown(() =>
        fromDevicePointer({ pointer: host, dims: [1024], type: 'float32', device: 0, owner: null }),
      );
      expect(pinned.kind).toBe('RangeError');
      expect(pinned.message).toBe(
        `Expected an address of device memory on cuda:0 for pointer but received 0x${host.toString(16)} (page-locked host memory)`,
      );
    } finally {
      probe.freeHost(host);
    }
    const unknown = thrown(() =>
      fromDevicePointer({ pointer: 0x1000n, dims: [16], type: 'float32', device: 0, owner: null }),
    );
    expect(unknown.kind).toBe('RangeError');
    expect(unknown.message).toBe(
      'Expected an address of device memory on cuda:0 for pointer but received 0x1000 (an address CUDA does not know: pageable host memory, or none)',
    );
  });

  const twoDevices = backends().devices.length >= 2;
  if (!twoDevices)
    test.skip('memory and streams of another device: skipped, this machine has one CUDA device', () => undefined);
  (twoDevices ? test : test.skip)('memory and streams of another device are refused', () => {
    const probe = loadProbe();
    const other = probe.malloc(1, 4096);
    const stream = probe.createStream(1);
    try {
      const error = thrown(() =>
        fromDevicePointer({ pointer: other, dims: [1024], type: 'float32', device: 0, owner: null }),
      );
      expect(error).toEqual({
        kind: 'RangeError',
        message: `Expected an address of device memory on cuda:0 for pointer but received 0x${other.toString(16)} (device memory of cuda:1)`,
      });
      expect(thrown(() => waitForExternal(0, { stream }))).toEqual({
        kind: 'RangeError',
        message: 'Expected a stream of cuda:0 for stream but received a stream of cuda:1',
      });
    } finally {
      probe.destroyStream(stream);
      probe.free(other);
    }
  });

  test('the owner stays alive until dispose() or collection, and no longer (child process, --expose-gc)', () => {
    // FinalizationRegistry reports each owner once it is collected; gc() runs several times with
    // turns of the event loop between, so that the buffer's finaliser and the registry both run.
    const script = `
      const n = require('./dist');
      const collected = [];
      const registry = new FinalizationRegistry((name) => collected.push(name));
      const settle = async () => { for (let i = 0; i < 12; i++) { global.gc(); await new Promise((r) => setImmediate(r)); } };
      const wrapOf = (base, name) => {
        const owner = { name };
        registry.register(owner, name);
        return n.fromDevicePointer({ pointer: base.pointer, dims: base.dims, type: base.type, device: 0, owner });
      };
      (async () => {
        const base = n.toDeviceSync(n.tensor(new Float32Array(4096).fill(1.5), [1, 1, 64, 64]));
        let disposed = wrapOf(base, 'disposed');
        let dropped = wrapOf(base, 'dropped');
        let pending = wrapOf(base, 'pending');
        await settle();
        const whileLive = [...collected];
        disposed.dispose();
        dropped = undefined;
        const op = n.blockPool(pending, { backend: 'cuda' });
        pending = undefined;
        const pooled = await op;
        const pooledValues = Array.from(pooled.toHostSync().data);
        pooled.dispose();
        await settle();
        const values = Array.from(base.toHostSync().data);
        console.log(JSON.stringify({ whileLive, after: [...collected].sort(), baseIntact: values.every((x) => x === 1.5), pooledValues }));
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`the child process failed (status ${r.status}):\n${r.stderr}`);
    const result = JSON.parse(r.stdout.trim().split('\n').pop() as string);
    expect(result.whileLive).toEqual([]);
    expect(result.after).toEqual(['disposed', 'dropped', 'pending']);
    expect(result.baseIntact).toBe(true);
    // the op on the wrap whose tensor was dropped while it ran: the block mean of 1.5s
    expect(result.pooledValues).toEqual(new Array(64).fill(1.5));
  });
});

describeCuda('ordering across streams without synchronizing the device', () => {
  const N = 1 << 20;
  let probe: Probe;
  let stream: bigint;
  let memory: bigint;
  let wrapped: DeviceTensor;

  beforeAll(() => {
    probe = loadProbe();
    stream = probe.createStream(0);
    memory = probe.malloc(0, N * 4);
    wrapped = fromDevicePointer({ pointer: memory, dims: [N], type: 'float32', device: 0, owner: null });
  });
  afterAll(() => {
    wrapped?.dispose();
    if (memory) probe.free(memory);
    if (stream) probe.destroyStream(stream);
  });

  test('deviceStream() is one stream per device, the same at every call', () => {
    const s = deviceStream(0);
    expect(s).not.toBe(0n);
    expect(deviceStream(0)).toBe(s);
  });

  test("waitForExternal({ stream }): a read on our stream sees the other stream's late write", () => {
    wrapped.buffer.fill(0);
    probe.fillAfterDelay(stream, memory, N, 7, DELAY_MS);
    waitForExternal(0, { stream });
    expect(differingFrom(wrapped, 7)).toBe(0);
  });

  test("waitForExternal({ event }): a read on our stream waits for the other library's event", () => {
    wrapped.buffer.fill(0);
    probe.fillAfterDelay(stream, memory, N, 8, DELAY_MS);
    const event = probe.recordEvent(stream);
    waitForExternal(0, { event });
    probe.destroyEvent(event);
    expect(differingFrom(wrapped, 8)).toBe(0);
  });

  test('fromDevicePointer({ stream }) waits for the work that produces the memory', () => {
    wrapped.buffer.fill(0);
    probe.fillAfterDelay(stream, memory, N, 9, DELAY_MS);
    const ready = fromDevicePointer({ pointer: memory, dims: [N], type: 'float32', device: 0, owner: null, stream });
    expect(differingFrom(ready, 9)).toBe(0);
    ready.dispose();
  });

  test("recordEvent(): the other stream's copy waits for work still running on our stream", () => {
    const ours = emptyDevice([N], 'float32');
    ours.buffer.fill(0);
    wrapped.buffer.fill(0);
    // stands for an op of ours still in flight: a late write enqueued on our stream
    probe.fillAfterDelay(deviceStream(0), ours.pointer, N, 5, DELAY_MS);
    const event = recordEvent(0);
    expect(event.device).toBe(0);
    probe.waitEvent(stream, event.handle);
    probe.copy(stream, memory, ours.pointer, N * 4);
    event.dispose();
    expect(event.disposed).toBe(true);
    expect(thrown(() => event.handle)).toEqual({
      kind: 'TypeError',
      message: 'Expected a live device event for event but received a disposed one',
    });
    probe.synchronize(stream);
    expect(differingFrom(wrapped, 5)).toBe(0);
    // the copy read `ours` on the other stream: order its free after that work
    waitForExternal(0, { stream });
    ours.dispose();
  });
});
