// Interop with other GPU code on a CUDA device: wrapping memory without copying (an op on wrapped
// tensors gives the CPU backend's result), owners kept alive exactly as long as the tensor, waits
// across streams and events in both directions, and pointers the runtime places elsewhere refused.
// "Other GPU code" is the test-only addon build/Release/nabla_interop_probe.node
// (test/native/interop_probe*, built by CMake CUDA builds of a checkout). Skipped, with the reason
// printed, where no CUDA device can be used; NABLA_REQUIRE_CUDA=1 turns that skip into a failure.
// The tests that need the probe are skipped, with the reason printed, where it was not built (a
// node-gyp or prebuilt binary).
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

/** The probe addon's surface (test/native/interop_probe.h). */
interface Probe {
  createStream(device: number): bigint;
  destroyStream(stream: bigint): void;
  malloc(device: number, bytes: number): bigint;
  free(pointer: bigint): void;
  mallocHost(bytes: number): bigint;
  freeHost(pointer: bigint): void;
  fillAfterDelay(device: number, stream: bigint, pointer: bigint, count: number, value: number, delayMs: number): void;
  recordEvent(stream: bigint): bigint;
  destroyEvent(event: bigint): void;
  waitEvent(stream: bigint, event: bigint): void;
  copy(device: number, stream: bigint, dst: bigint, src: bigint, bytes: number): void;
  synchronize(stream: bigint): void;
  currentDevice(): number;
}

const PROBE_MISSING = fs.existsSync(PROBE_PATH)
  ? undefined
  : `no ${path.relative(ROOT, PROBE_PATH)} (a CMake build with nvcc makes it; node-gyp and prebuilt binaries do not)`;
/** A test that needs the probe: skipped, with the reason in its title and on the console, without it. */
function probeTest(name: string, fn: () => void): void {
  if (PROBE_MISSING === undefined) test(name, fn);
  else test.skip(`${name}: skipped, ${PROBE_MISSING}`, () => undefined);
}
if (PROBE_MISSING !== undefined && backends().cuda)
  console.warn(`CUDA interop tests that need the probe addon skipped: ${PROBE_MISSING}`);

function loadProbe(): Probe {
  return require(PROBE_PATH) as Probe;
}

/** The error fn throws: its constructor's name (native errors come from another realm), message, code. */
function thrown(fn: () => unknown): { kind: string; message: string; code?: string } {
  try {
    fn();
  } catch (e) {
    const err = e as Error & { code?: string };
    return { kind: err.constructor.name, message: err.message, ...(err.code === undefined ? {} : { code: err.code }) };
  }
  throw new Error('expected a throw');
}

/** Runs `script` in a fresh node (--expose-gc) in the package root; its last stdout line is JSON. */
function runChild(script: string): Record<string, unknown> {
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0 || r.signal !== null)
    throw new Error(`the child process failed (status ${r.status}, signal ${r.signal}):\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string);
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

    // dispose() of a wrap frees nothing: the owner's tensor keeps its contents, and the pool's
    // bytes in use stay the same (read after toHostSync() has drained the stream)
    const inUseBeforeDispose = deviceMemory(0).inUse;
    for (const t of [qw, kw, vw]) t.dispose();
    expect(Array.from(k.toHostSync().data)).toEqual(Array.from(kh.data));
    expect(deviceMemory(0).inUse).toBe(inUseBeforeDispose);
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

  probeTest('page-locked host memory is refused', () => {
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
  });

  test('addresses CUDA does not know are refused', () => {
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
  else
    probeTest('memory and streams of another device are refused', () => {
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
        // The stream's device is known where the runtime (12.8 and later) and the driver have
        // cudaStreamGetDevice: a RangeError. Elsewhere recording our event on their stream fails.
        const wait = thrown(() => waitForExternal(0, { stream }));
        if (wait.kind === 'RangeError') {
          expect(backends().build.cudaRuntimeVersion).toBeGreaterThanOrEqual(12080);
          expect(wait.message).toBe('Expected a stream of cuda:0 for stream but received a stream of cuda:1');
        } else {
          expect(wait).toEqual({
            kind: 'Error',
            code: expect.stringMatching(/^cudaError/),
            message: expect.stringMatching(/^waitForExternal: cudaEventRecord\(event, stream\) failed: /),
          });
        }
      } finally {
        probe.destroyStream(stream);
        probe.free(other);
      }
    });

  if (!twoDevices)
    test.skip('the JS thread keeps its current device: skipped, this machine has one CUDA device', () => undefined);
  else
    probeTest('calls on device 0 give the JS thread back the device other code made current', () => {
      const probe = loadProbe();
      const stream = probe.createStream(1); // makes device 1 current on this thread, as another addon would
      try {
        expect(probe.currentDevice()).toBe(1);
        // an interop call, an event and its dispose(), an allocation, a sync op and a free, all on device 0
        expect(deviceStream(0)).not.toBe(0n);
        recordEvent(0).dispose();
        const t = emptyDevice([64], 'float32');
        t.buffer.fill(0);
        expect(differingFrom(t, 0)).toBe(0);
        t.dispose();
        expect(probe.currentDevice()).toBe(1);
      } finally {
        probe.destroyStream(stream);
      }
    });

  test('the owner stays alive until dispose() or collection, and no longer; the wraps free nothing (child process, --expose-gc)', () => {
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
        const inUseWhileLive = n.deviceMemory(0).inUse;
        disposed.dispose();
        dropped = undefined;
        const op = n.blockPool(pending, { backend: 'cuda' });
        pending = undefined;
        const pooled = await op;
        const pooledValues = Array.from(pooled.toHostSync().data);
        pooled.dispose();
        await settle();
        const values = Array.from(base.toHostSync().data);
        // read after toHostSync() drained the stream: the wraps' dispose() and collection freed nothing
        const inUseAfter = n.deviceMemory(0).inUse;
        console.log(JSON.stringify({ whileLive, after: [...collected].sort(), baseIntact: values.every((x) => x === 1.5),
          pooledValues, inUseWhileLive, inUseAfter }));
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const result = runChild(script);
    expect(result.whileLive).toEqual([]);
    expect(result.after).toEqual(['disposed', 'dropped', 'pending']);
    expect(result.baseIntact).toBe(true);
    expect(result.inUseAfter).toBe(result.inUseWhileLive);
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
    if (PROBE_MISSING !== undefined) return;
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

  probeTest("waitForExternal({ stream }): a read on our stream sees the other stream's late write", () => {
    wrapped.buffer.fill(0);
    probe.fillAfterDelay(0, stream, memory, N, 7, DELAY_MS);
    waitForExternal(0, { stream });
    expect(differingFrom(wrapped, 7)).toBe(0);
  });

  probeTest("waitForExternal({ event }): a read on our stream waits for the other library's event", () => {
    wrapped.buffer.fill(0);
    probe.fillAfterDelay(0, stream, memory, N, 8, DELAY_MS);
    const event = probe.recordEvent(stream);
    waitForExternal(0, { event });
    probe.destroyEvent(event);
    expect(differingFrom(wrapped, 8)).toBe(0);
  });

  probeTest('fromDevicePointer({ stream }) waits for the work that produces the memory', () => {
    wrapped.buffer.fill(0);
    probe.fillAfterDelay(0, stream, memory, N, 9, DELAY_MS);
    const ready = fromDevicePointer({ pointer: memory, dims: [N], type: 'float32', device: 0, owner: null, stream });
    expect(differingFrom(ready, 9)).toBe(0);
    ready.dispose();
  });

  probeTest("recordEvent(): the other stream's copy waits for work still running on our stream", () => {
    const ours = emptyDevice([N], 'float32');
    ours.buffer.fill(0);
    wrapped.buffer.fill(0);
    // stands for an op of ours still in flight: a late write enqueued on our stream
    probe.fillAfterDelay(0, deviceStream(0), ours.pointer, N, 5, DELAY_MS);
    const event = recordEvent(0);
    expect(event.device).toBe(0);
    probe.waitEvent(stream, event.handle);
    probe.copy(0, stream, memory, ours.pointer, N * 4);
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

describeCuda('the two native classes never take one for the other', () => {
  test('each method and getter of DeviceBuffer on a DeviceEvent, and of DeviceEvent on a DeviceBuffer, is a TypeError (child process)', () => {
    // Each method checks its class's type tag before it unwraps `this`: an unchecked unwrap would
    // read one class as the other (a crash, or wrong values), which the child process keeps from
    // ending jest.
    const script = `
      const n = require('./dist');
      const tensor = n.emptyDevice([64], 'float32');
      tensor.buffer.fill(3); // every byte 3 (fill is a memset)
      const event = n.recordEvent(0);
      const handle = event.handle;
      const buffer = Object.getPrototypeOf(tensor.buffer), eventProto = Object.getPrototypeOf(event);
      const calls = {
        'DeviceBuffer.dispose': () => buffer.dispose.call(event),
        'DeviceBuffer.fill': () => buffer.fill.call(event, 0),
        'DeviceBuffer.upload': () => buffer.upload.call(event, new Float32Array(64), false),
        'DeviceBuffer.download': () => buffer.download.call(event, new Float32Array(64), false),
        'DeviceEvent.dispose': () => eventProto.dispose.call(tensor.buffer),
      };
      for (const getter of ['bytes', 'device', 'disposed', 'pointer', 'external'])
        calls['DeviceBuffer.' + getter] = () => Object.getOwnPropertyDescriptor(buffer, getter).get.call(event);
      for (const getter of ['handle', 'device', 'disposed'])
        calls['DeviceEvent.' + getter] = () => Object.getOwnPropertyDescriptor(eventProto, getter).get.call(tensor.buffer);
      const outcomes = {};
      for (const [name, call] of Object.entries(calls)) {
        try { call(); outcomes[name] = 'no throw'; } catch (e) { outcomes[name] = e.constructor.name + ': ' + e.message; }
      }
      // both objects untouched: the event live with its handle, the buffer's contents intact
      const intact = event.disposed === false && event.handle === handle && tensor.disposed === false &&
        new Uint8Array(tensor.toHostSync().data.buffer).every((x) => x === 3);
      event.dispose();
      tensor.dispose();
      console.log(JSON.stringify({ outcomes, intact }));`;
    const result = runChild(script) as { outcomes: Record<string, string>; intact: boolean };
    const expected: Record<string, string> = {};
    for (const name of Object.keys(result.outcomes))
      expected[name] = `TypeError: Expected a ${name.split('.')[0]} for this but received an object`;
    expect(Object.keys(result.outcomes)).toHaveLength(13);
    expect(result.outcomes).toEqual(expected);
    expect(result.intact).toBe(true);
  });
});
