// Device tensors: upload once, pass to every op, get device tensors back, download with toHost().
// Memory comes from a per-device pool in stream order; it is freed (without synchronizing the
// device) by dispose() or, as a safety net, when the garbage collector finalises the buffer.
import { DType, checkDType, storageOf } from './dtype';
import { rangeError, typeError, typeErrorWorded } from './errors';
import { NativeDeviceBuffer, NativeMemoryUsage, NativeOperand, native } from './native';
import { numel } from './shapes';
import { Tensor, checkDims, checkHostTensor } from './tensor';
import { resolvePlacement } from './backend';
import { checkOptions } from './options';

export class DeviceTensor {
  /** @internal */
  constructor(
    readonly type: DType,
    readonly dims: readonly number[],
    readonly device: number,
    /** @internal */ readonly buffer: NativeDeviceBuffer,
  ) {}

  get disposed(): boolean {
    return this.buffer.disposed;
  }

  /**
   * Frees the device memory now (in stream order); for a wrapped tensor, drops the reference to
   * its owner and frees nothing. Throws while a pending op still uses it.
   */
  dispose(): void {
    this.buffer.dispose();
  }

  /**
   * The device address of the first element, for other CUDA code in the process (see "Interop
   * with other GPU code" in README.md: the memory stays this package's, it is allocated and freed
   * in order on the device's stream, so other code's stream first waits for recordEvent(device)).
   * Throws once disposed.
   */
  get pointer(): bigint {
    this.checkLive();
    return this.buffer.pointer;
  }

  /** Whether this tensor wraps another library's memory (fromDevicePointer), which it never frees. */
  get external(): boolean {
    return this.buffer.external;
  }

  private checkLive(): void {
    checkDeviceTensor(this, 'tensor');
  }

  /** Copies to a new host tensor, off the main thread. */
  async toHost(): Promise<Tensor> {
    this.checkLive();
    const data = new (storageOf(this.type))(numel(this.dims));
    await this.buffer.download(data, true);
    return { type: this.type, dims: [...this.dims], data };
  }

  toHostSync(): Tensor {
    this.checkLive();
    const data = new (storageOf(this.type))(numel(this.dims));
    this.buffer.download(data, false);
    return { type: this.type, dims: [...this.dims], data };
  }
}

export function isDeviceTensor(x: unknown): x is DeviceTensor {
  return x instanceof DeviceTensor;
}

function dimsText(dims: readonly number[]): string {
  return `[${dims.join(', ')}]`;
}

/**
 * A device tensor made by this package: a live native buffer whose size matches its type and dims
 * (an object made with Object.create(DeviceTensor.prototype), or one whose buffer was replaced,
 * is refused here rather than crashing in native code).
 */
export function checkDeviceTensor(x: DeviceTensor, param: string): DeviceTensor {
  const buffer: unknown = x.buffer;
  if (!(buffer instanceof native.DeviceBuffer))
    throw typeError(
      `${param}.buffer`,
      'a device buffer made by toDevice(), emptyDevice() or fromDevicePointer()',
      buffer,
    );
  if (x.disposed) throw typeErrorWorded(param, 'a live device tensor', 'a disposed device tensor');
  checkDType(x.type, `${param}.type`);
  checkDims(x.dims, `${param}.dims`);
  const bytes = numel(x.dims) * storageOf(x.type).BYTES_PER_ELEMENT;
  if (bytes !== x.buffer.bytes)
    throw rangeError(
      `${param}.dims`,
      `dims of ${x.buffer.bytes} bytes of ${x.type} (the size of its buffer)`,
      `${dimsText(x.dims)} (${bytes} bytes)`,
    );
  return x;
}

/** Allocates an uninitialised device tensor. */
export function emptyDevice(dims: readonly number[], type: DType, options?: { device?: number }): DeviceTensor {
  checkDType(type);
  checkDims(dims, 'dims');
  const opts = checkOptions<{ device: number }>(options);
  const place = resolvePlacement({ backend: 'cuda', device: opts.device ?? 0 }, []);
  const bytes = numel(dims) * storageOf(type).BYTES_PER_ELEMENT;
  return new DeviceTensor(type, [...dims], place.device, new native.DeviceBuffer(place.device, bytes));
}

function checkHost(t: Tensor): void {
  checkHostTensor(t, 'tensor');
}

/** Uploads a host tensor to a CUDA device; the copy runs off the main thread. */
export async function toDevice(t: Tensor, options?: { device?: number }): Promise<DeviceTensor> {
  checkHost(t);
  const out = emptyDevice(t.dims, t.type, options);
  await out.buffer.upload(t.data, true);
  return out;
}

/** Uploads a host tensor to a CUDA device, blocking until the copy is done. */
export function toDeviceSync(t: Tensor, options?: { device?: number }): DeviceTensor {
  checkHost(t);
  const out = emptyDevice(t.dims, t.type, options);
  out.buffer.upload(t.data, false);
  return out;
}

/** Downloads any tensor to the host (host tensors are returned as they are). */
export async function toHost(t: Tensor | DeviceTensor): Promise<Tensor> {
  return t instanceof DeviceTensor ? t.toHost() : t;
}

/** The CUDA devices that the given tensors live on (host tensors add none). */
export function devicesOf(...tensors: (Tensor | DeviceTensor)[]): number[] {
  return tensors.filter(isDeviceTensor).map((t) => t.device);
}

/** What the native layer reads for a tensor: its device buffer or its typed array. */
export function operandOf(t: Tensor | DeviceTensor): NativeOperand {
  return isDeviceTensor(t) ? t.buffer : t.data;
}

/** Bytes of this package's memory pool on a CUDA device. */
export type DeviceMemory = NativeMemoryUsage;

function cudaDevice(device: number | undefined): number {
  return resolvePlacement({ backend: 'cuda', device }, []).device;
}

/**
 * This package's memory on a CUDA device (default 0): `inUse`, the bytes held by live device
 * tensors and running ops; `reserved`, the bytes the pool holds from the device (in use or kept
 * for reuse). Throws ERR_NABLA_CUDA_UNAVAILABLE without CUDA.
 */
export function deviceMemory(device?: number): DeviceMemory {
  return native.deviceMemory(cudaDevice(device));
}

/**
 * Returns the memory the pool keeps for reuse on a CUDA device (default 0) to the device, after
 * the device's pending work; live tensors keep theirs. Throws ERR_NABLA_CUDA_UNAVAILABLE without CUDA.
 */
export function trimDeviceMemory(device?: number): void {
  native.trimDeviceMemory(cudaDevice(device));
}
