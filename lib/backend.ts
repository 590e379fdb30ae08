// Backend discovery and choice: 'cpu', 'cuda', or 'auto' (CUDA when a device is present).
import { KernelImage, kernelImageFor } from './archs';
import { typeError, rangeError, describe } from './errors';
import {
  NativeAttentionKernel,
  NativeAttentionKernelRan,
  NativeBackends,
  NativeCpuKernel,
  NativeMaskKernel,
  NativeMaskKernelRan,
  NativePlacement,
  NativePoolKernel,
  NativePoolKernelRan,
  native,
} from './native';

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
  const devices = info.devices.map((d) => ({
    ...d,
    kernelImage: kernelImageFor(d.computeCapability, info.build.cudaArchs),
  }));
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
      throw typeError(
        'backend',
        "'cuda' or 'auto' for device tensors (download them with toHost() for the CPU)",
        backend,
      );
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
    const err = new Error(`backend 'cuda' is not available: ${cuda.reason ?? 'no CUDA device'}`) as Error & {
      code: string;
    };
    err.code = 'ERR_NABLA_CUDA_UNAVAILABLE';
    throw err;
  }
  if (device >= cuda.deviceCount)
    throw rangeError('device', `a CUDA device index below ${cuda.deviceCount}`, String(device));
  return { backend: 'cuda', device };
}

// ---------------------------------------------------------------------------------------------
// Kernel choice: one mechanism for every kernel. An op option names the kernel; its default comes
// from an environment variable read here, on the JS thread, when the op is called (native code reads
// no environment: a libuv thread calling getenv races process.env writes), then 'auto'.

/**
 * CUDA attention: tensor cores ('fast'), the scalar reference ('simple'), Hopper wgmma ('hopper'),
 * tensor cores with a 2x2 warp grid ('fast2', opt-in).
 */
export type AttentionKernel = NativeAttentionKernel;
/**
 * CUDA mask: 16 rows per block with each row's keys in registers and q and k pooled in one
 * vectorised launch ('fast2', what 'auto' runs where it applies), one warp per row ('fast', what
 * 'auto' runs elsewhere), or one block of threads per row ('simple').
 */
export type MaskKernel = NativeMaskKernel;
/** CUDA blockPool: one warp per pooled block with 16-byte loads ('fast2', what 'auto' runs where it applies) or one block of threads per pooled block ('simple'). */
export type PoolKernel = NativePoolKernel;
/** CPU attention: AVX2 + FMA + F16C ('avx2') or portable C++ ('scalar'). */
export type CpuKernel = NativeCpuKernel;

/** The kernel that ran, as the native op reports it. */
export type AttentionKernelRan = NativeAttentionKernelRan;
export type MaskKernelRan = NativeMaskKernelRan;
export type PoolKernelRan = NativePoolKernelRan;

export interface KernelSwitch<K extends string> {
  /** The op option. */
  option: string;
  /** The environment variable that gives its default. */
  env: string;
  values: readonly K[];
}

export const ATTENTION_KERNEL: KernelSwitch<AttentionKernel> = {
  option: 'kernel',
  env: 'NABLA_ATTENTION_KERNEL',
  values: ['auto', 'fast', 'simple', 'hopper', 'fast2'],
};
export const MASK_KERNEL: KernelSwitch<MaskKernel> = {
  option: 'maskKernel',
  env: 'NABLA_MASK_KERNEL',
  values: ['auto', 'fast', 'simple', 'fast2'],
};
export const POOL_KERNEL: KernelSwitch<PoolKernel> = {
  option: 'poolKernel',
  env: 'NABLA_POOL_KERNEL',
  values: ['auto', 'simple', 'fast2'],
};
export const CPU_KERNEL: KernelSwitch<CpuKernel> = {
  option: 'cpuKernel',
  env: 'NABLA_CPU_ISA',
  values: ['auto', 'avx2', 'scalar'],
};

/** The wording of the native layer: one of 'auto', 'fast', 'simple'. */
function oneOf(values: readonly string[]): string {
  return `one of ${values.map((v) => `'${v}'`).join(', ')}`;
}

/**
 * The kernel an op runs: the option when given, else the environment variable when set and not
 * empty, else 'auto'. A bad value names the option or the variable it came from.
 */
export function chooseKernel<K extends string>(kernel: KernelSwitch<K>, value: unknown): K {
  const fromEnv = value === undefined;
  const chosen = fromEnv ? process.env[kernel.env] || 'auto' : value;
  const param = fromEnv ? kernel.env : kernel.option;
  if (typeof chosen !== 'string') throw typeError(param, oneOf(kernel.values), chosen);
  if (!(kernel.values as readonly string[]).includes(chosen))
    throw rangeError(param, oneOf(kernel.values), describe(chosen));
  return chosen as K;
}
