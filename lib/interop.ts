// Zero-copy interop with other CUDA code in the process, in the spirit of DLPack and
// __cuda_array_interface__: wrap another library's device memory as a DeviceTensor, hand out our
// pointers and stream, and order work across streams with events instead of synchronizing the
// device. README.md, "Interop with other GPU code", states the ownership and ordering rules.
import { resolvePlacement } from './backend';
import { DeviceTensor } from './device';
import { DType, checkDType, storageOf } from './dtype';
import { rangeError, typeError, typeErrorWorded } from './errors';
import { NativeDeviceEvent, native } from './native';
import { numel } from './shapes';
import { checkDims } from './tensor';

const TWO_TO_64 = 2n ** 64n;

/** How messages write addresses and handles: `0x7f3a00000000` (csrc/napi/device_interop.cc alike). */
export function addressText(value: bigint): string {
  return value < 0n ? `-0x${(-value).toString(16)}` : `0x${value.toString(16)}`;
}

/** A bigint address or handle in [min, 2^64); `what` names it in errors ('a device address'). */
function checkAddress(value: unknown, param: string, what: string, min: bigint): bigint {
  if (typeof value !== 'bigint') throw typeError(param, `${what} as a bigint`, value);
  if (value < min || value >= TWO_TO_64) throw rangeError(param, `${what} in [${min}, 2^64)`, addressText(value));
  return value;
}

/** Interop calls name their device: no default, so that a wrong device is never assumed. */
function checkDevice(device: unknown): number {
  if (typeof device !== 'number') throw typeError('device', 'a CUDA device index (integer)', device);
  return resolvePlacement({ backend: 'cuda', device }, []).device;
}

/** Work of another stream or event that later work on a device must wait for. */
export type ExternalWork = { stream: bigint; event?: undefined } | { event: bigint; stream?: undefined };

/** The stream or event of `after` (exactly one): checked without CUDA. */
function checkExternalWork(after: unknown, param: string, optional: boolean): { stream?: bigint; event?: bigint } {
  if (typeof after !== 'object' || after === null || Array.isArray(after))
    throw typeError(param, 'an object { stream } or { event } (bigint handles)', after);
  const { stream, event } = after as { stream?: unknown; event?: unknown };
  if (stream !== undefined && event !== undefined)
    throw typeErrorWorded(param, 'exactly one of stream and event', 'both');
  if (stream === undefined && event === undefined) {
    if (optional) return {};
    throw typeErrorWorded(param, 'exactly one of stream and event', 'neither');
  }
  if (stream !== undefined) return { stream: checkAddress(stream, 'stream', 'a cudaStream_t handle', 0n) };
  return { event: checkAddress(event, 'event', 'a cudaEvent_t handle', 1n) };
}

/** What fromDevicePointer wraps. */
export interface DevicePointerSpec {
  /** Address of the first element, in device memory of `device` (never freed by this package). */
  pointer: bigint;
  dims: readonly number[];
  type: DType;
  /** The CUDA device the memory is on. */
  device: number;
  /**
   * The JS value that keeps the memory allocated (another library's tensor object, say): referenced
   * until the tensor is disposed or collected, and while a pending op uses it. Required; `null`
   * when nothing in JS owns the memory.
   */
  owner: unknown;
  /**
   * The memory is ready once the work enqueued so far on this stream is done (0n: legacy default
   * stream; 2n: the calling thread's per-thread stream). Needed for memory allocated in stream
   * order (cudaMallocAsync), which does not exist before its allocation has run.
   */
  stream?: bigint;
  /** The memory is ready once this event completes. */
  event?: bigint;
}

/**
 * Wraps another library's device memory as a DeviceTensor without copying. The tensor never frees
 * the memory: dispose() and the garbage collector only drop the reference to `owner`. With
 * `stream` or `event`, the device's stream first waits for that work (waitForExternal). Throws
 * RangeError for a pointer the runtime places in host memory or on another device, and
 * ERR_NABLA_CUDA_UNAVAILABLE without CUDA (after the checks that need no CUDA).
 */
export function fromDevicePointer(spec: DevicePointerSpec): DeviceTensor {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec))
    throw typeError('spec', 'an object { pointer, dims, type, device, owner }', spec);
  const pointer = checkAddress(spec.pointer, 'pointer', 'a device address', 1n);
  const type = checkDType(spec.type, 'type');
  const elementBytes = storageOf(type).BYTES_PER_ELEMENT;
  if (pointer % BigInt(elementBytes) !== 0n)
    throw rangeError(
      'pointer',
      `an address aligned to ${elementBytes} bytes (the size of an element)`,
      addressText(pointer),
    );
  const dims = checkDims(spec.dims, 'dims');
  const bytes = numel(dims) * elementBytes;
  if (!Number.isSafeInteger(bytes))
    throw rangeError('dims', 'dims of at most 2^53 - 1 bytes', `[${dims.join(', ')}] (${bytes} bytes)`);
  if (pointer + BigInt(bytes) - 1n >= TWO_TO_64)
    throw rangeError('dims', 'a size whose bytes end below 2^64', `${bytes} bytes from ${addressText(pointer)}`);
  if (!('owner' in spec))
    throw typeError('owner', 'the value that owns the memory (null when nothing in JS does)', undefined);
  const after = checkExternalWork(spec, 'spec', true);
  const device = checkDevice(spec.device);
  const buffer = new native.DeviceBuffer(device, bytes, { pointer, owner: spec.owner, elementBytes });
  if (after.stream !== undefined || after.event !== undefined) {
    try {
      native.waitForExternal(device, after.stream, after.event);
    } catch (err) {
      buffer.dispose();
      throw err;
    }
  }
  return new DeviceTensor(type, [...dims], device, buffer);
}

/**
 * The cudaStream_t of a CUDA device on which every op of this package on that device runs, in the
 * order the ops start (created on first use, never destroyed). Ops wait for it before they resolve.
 * Other code may enqueue on it and wait for it, never destroy it or capture it into a graph.
 */
export function deviceStream(device: number): bigint {
  return native.deviceStream(checkDevice(device));
}

/**
 * Orders every later op on a CUDA device after other code's work, without blocking the host or
 * synchronizing the device: the device's stream waits for the work enqueued so far on `stream`
 * (an event is recorded there; 0n is the legacy default stream, 2n (cudaStreamPerThread) the calling
 * JS thread's per-thread stream) or for `event`. The handle must be
 * a live stream or event of this process (the runtime cannot check that).
 */
export function waitForExternal(device: number, after: ExternalWork): void {
  const work = checkExternalWork(after, 'after', false);
  native.waitForExternal(checkDevice(device), work.stream, work.event);
}

/** A CUDA event on a device's stream; `handle` is the cudaEvent_t. */
export type DeviceEvent = NativeDeviceEvent;

/**
 * Records an event on a CUDA device's stream: it completes when the work enqueued there so far is
 * done, so other code can wait for it (cudaStreamWaitEvent) without synchronizing the device.
 * dispose() destroys it (or the garbage collector does): keep the DeviceEvent until other code
 * has enqueued its wait, which takes the event's state at that call.
 */
export function recordEvent(device: number): DeviceEvent {
  return new native.DeviceEvent(checkDevice(device));
}
