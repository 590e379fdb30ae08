// Backend discovery and choice: 'cpu', 'cuda', or 'auto' (CUDA when a device is present).
import { KernelImage, kernelImageFor } from './archs';
import { typeError, rangeError, describe } from './errors';
import { NativeBackends, NativePlacement, native } from './native';

export type Backend = 'auto' | 'cpu' | 'cuda';
export const BACKENDS: readonly Backend[] = ['auto', 'cpu', 'cuda'];

export interface DeviceInfo {
  index: number;
  name: string;
  /** e.g. "9.0" */
  computeCapability: string;
  memoryBytes: number;
  /** The binary's code for this device: a native cubin, or PTX the driver compiles at first use. */
  kernelImage: KernelImage;
}

export interface Backends {
  cpu: true;
  cuda: boolean;
  devices: DeviceInfo[];
  /** Why CUDA is unavailable (absent when it is available). */
  reason?: string;
  build: NativeBackends['build'];
}

/** What this binary and machine can run on, read from the CUDA runtime at each call. */
export function backends(): Backends {
  const info = native.backends();
  const devices = info.devices.map((d) => ({ ...d, kernelImage: kernelImageFor(d.computeCapability, info.build.cudaArchs) }));
  return { ...info, devices };
}

/** What placement needs from the CUDA runtime, asked once: its device count is fixed for the process. */
interface CudaProbe {
  cuda: boolean;
  deviceCount: number;
  reason?: string;
}

let cudaProbe: CudaProbe | undefined;

function probeCuda(): CudaProbe {
  if (cudaProbe === undefined) {
    const info = native.backends();
    cudaProbe = { cuda: info.cuda, deviceCount: info.devices.length, reason: info.reason };
  }
  return cudaProbe;
}

export interface PlacementOptions {
  backend?: Backend;
  /** CUDA device index (default 0, or the device of the inputs). */
  device?: number;
}

/**
 * Resolves where an op runs. Device tensors among the inputs force CUDA on their device; 'auto'
 * uses CUDA when a device is present. 'cuda' without one throws an Error with code
 * ERR_NABLA_CUDA_UNAVAILABLE.
 */
export function resolvePlacement(options: PlacementOptions, inputDevices: number[]): NativePlacement {
  const backend = options.backend ?? 'auto';
  if (typeof backend !== 'string') throw typeError('backend', "'auto', 'cpu' or 'cuda'", backend);
  if (!BACKENDS.includes(backend)) throw rangeError('backend', "'auto', 'cpu' or 'cuda'", describe(backend));
  if (options.device !== undefined) {
    if (typeof options.device !== 'number' || !Number.isInteger(options.device))
      throw typeError('device', 'a CUDA device index (integer)', options.device);
    if (options.device < 0) throw rangeError('device', 'a non-negative CUDA device index', describe(options.device));
  }
  if (inputDevices.length > 0) {
    if (backend === 'cpu')
      throw typeError('backend', "'cuda' or 'auto' for device tensors (download them with toHost() for the CPU)", backend);
    const device = inputDevices[0];
    if (options.device !== undefined && options.device !== device)
      throw rangeError('device', `cuda:${device}, where the inputs are`, `cuda:${options.device}`);
    return { backend: 'cuda', device };
  }
  const device = options.device ?? 0;
  if (backend === 'cpu') return { backend: 'cpu', device: 0 };
  const cuda = probeCuda();
  if (backend === 'auto' && !cuda.cuda) return { backend: 'cpu', device: 0 };
  if (!cuda.cuda) {
    const err = new Error(`backend 'cuda' is not available: ${cuda.reason ?? 'no CUDA device'}`) as Error & { code: string };
    err.code = 'ERR_NABLA_CUDA_UNAVAILABLE';
    throw err;
  }
  if (device >= cuda.deviceCount)
    throw rangeError('device', `a CUDA device index below ${cuda.deviceCount}`, String(device));
  return { backend: 'cuda', device };
}
