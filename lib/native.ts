// Loads the native addon and declares its whole surface: the JS/native boundary in one place.
// Search order follows node-gyp-build: build/Release (a local source build), then the prebuilt
// binary in prebuilds/<platform>-<arch>/ that the npm package ships. NABLA_NATIVE_PATH overrides both.
import * as fs from 'fs';
import * as path from 'path';

/** Memory on a CUDA device (csrc/napi/device_buffer.h). */
export interface NativeDeviceBuffer {
  readonly bytes: number;
  readonly device: number;
  readonly disposed: boolean;
  dispose(): void;
  upload(host: ArrayBufferView, async?: false): void;
  upload(host: ArrayBufferView, async: true): Promise<void>;
  download(host: ArrayBufferView, async: false): void;
  download(host: ArrayBufferView, async: true): Promise<void>;
  fill(byteValue: number): void;
  /** The device address (throws once disposed). */
  readonly pointer: bigint;
  /** Whether the memory is another library's, wrapped (never freed by this package). */
  readonly external: boolean;
}

/** How the native layer wraps another library's device memory (csrc/napi/device_buffer.h). */
export interface NativeExternalMemory {
  pointer: bigint;
  /** Referenced by the buffer until dispose() or its finaliser. */
  owner: unknown;
  /** Bytes per element: the pointer must be a multiple (2 or 4). */
  elementBytes: number;
}

/** A CUDA event recorded on a device's stream (csrc/napi/device_interop.h). */
export interface NativeDeviceEvent {
  /** The cudaEvent_t (throws once disposed). */
  readonly handle: bigint;
  readonly device: number;
  readonly disposed: boolean;
  dispose(): void;
}

export interface NativeMemoryUsage {
  inUse: number;
  reserved: number;
}

export type NativeOperand = ArrayBufferView | NativeDeviceBuffer;

export interface NativePlacement {
  backend: 'cpu' | 'cuda';
  device: number;
}

export type NativeAttentionKernel = 'auto' | 'fast' | 'simple' | 'hopper' | 'fast2';
export type NativeCpuKernel = 'auto' | 'avx2' | 'scalar';
export type NativeMaskKernel = 'auto' | 'fast' | 'simple' | 'fast2';
export type NativePoolKernel = 'auto' | 'simple' | 'fast2';

/** The kernel an op ran, as each op reports it. */
export type NativeAttentionKernelRan =
  | 'cpu-avx2'
  | 'cpu-scalar'
  | 'cuda-fast'
  | 'cuda-simple'
  | 'cuda-hopper'
  | 'cuda-fast2';
export type NativeMaskKernelRan = 'cpu' | 'cuda-fast' | 'cuda-simple' | 'cuda-fast2';
/** 'cuda': the per-block kernel ('simple'). */
export type NativePoolKernelRan = 'cpu' | 'cuda' | 'cuda-fast2';

export interface NativePoolArgs extends NativePlacement {
  x: NativeOperand;
  dtype: number;
  rows: number;
  seq: number;
  headDim: number;
  out: NativeOperand;
  /** Token grid (T, Ht, Wt) with T*Ht*Wt == seq: one block per tile; absent: blocks of 64 tokens. */
  tokenGrid?: Int32Array;
  /** CUDA pooling kernel; undefined = 'auto' (fast2 where it applies). 'auto' and 'fast2' run the per-block kernel where fast2 does not apply. */
  poolKernel?: NativePoolKernel;
}

export interface NativeMaskArgs extends NativePlacement {
  q: NativeOperand;
  k: NativeOperand;
  dtype: number;
  batch: number;
  heads: number;
  seqQ: number;
  seqKv: number;
  headDim: number;
  threshold: number;
  method: 'cdf' | 'topk';
  sta: boolean;
  grid?: Int32Array; // block grid (T, ceil(Ht/8), ceil(Wt/8))
  window?: Int32Array; // STA window in blocks
  frames?: Int32Array; // document boundaries in frames
  /** Token grid (T, Ht, Wt), seqQ == seqKv == T*Ht*Wt: one block per tile; absent: blocks of 64 tokens. */
  tokenGrid?: Int32Array;
  /** Frame-causal: key blocks of later frames hidden (needs tokenGrid). */
  causal?: boolean;
  kvCounts: NativeOperand;
  kvIndices: NativeOperand;
  map?: NativeOperand;
  /** CUDA mask kernel; undefined = 'auto' (fast2 where it applies, else fast where it does, else simple). Ignored by the CPU backend. */
  maskKernel?: NativeMaskKernel;
}

export interface NativeAttentionArgs extends NativePlacement {
  q: NativeOperand;
  k: NativeOperand;
  v: NativeOperand;
  out: NativeOperand;
  dtype: number;
  batch: number;
  heads: number;
  seqQ: number;
  seqKv: number;
  headDim: number;
  valueDim: number;
  scale: number;
  kernel: NativeAttentionKernel;
  /** CPU attention kernel; undefined = 'auto'. 'avx2' where it cannot run throws ERR_NABLA_KERNEL_UNAVAILABLE. */
  cpuKernel?: NativeCpuKernel;
  kvCounts?: NativeOperand;
  kvIndices?: NativeOperand;
  /** Token grid (T, Ht, Wt), seqQ == seqKv == T*Ht*Wt: one block per tile; absent: blocks of 64 tokens. */
  tokenGrid?: Int32Array;
}

export interface NativeBackends {
  cpu: true;
  cuda: boolean;
  devices: { index: number; name: string; computeCapability: string; memoryBytes: number }[];
  reason?: string;
  build: {
    cudaCompiled: boolean;
    cudaArchs: string;
    cudaRuntimeVersion: number;
    cpuThreads: number;
    napiVersion: number;
  };
}

/** An op: sync returns the kernel that ran, async resolves to it. */
type Op<A, Ran> = {
  (args: A, async: false): Ran;
  (args: A, async: true): Promise<Ran>;
};

export interface NativeAddon {
  backends(): NativeBackends;
  staMask(args: { grid: Int32Array; window: Int32Array; out: Uint8Array }): void;
  blockPool: Op<NativePoolArgs, NativePoolKernelRan>;
  nablaMask: Op<NativeMaskArgs, NativeMaskKernelRan>;
  attention: Op<NativeAttentionArgs, NativeAttentionKernelRan>;
  DeviceBuffer: new (device: number, bytes: number, external?: NativeExternalMemory) => NativeDeviceBuffer;
  /** Creates an event and records it on the device's stream. */
  DeviceEvent: new (
    device: number,
  ) => NativeDeviceEvent;
  /** The cudaStream_t that every op on the device runs on. */
  deviceStream(device: number): bigint;
  /** The device's stream waits for a stream's work so far or an event: exactly one of them given. */
  waitForExternal(device: number, stream: bigint | undefined, event: bigint | undefined): void;
  /** Bytes of this package's memory pool on the device: handed out, and held from the device. */
  deviceMemory(device: number): NativeMemoryUsage;
  /** Waits for the device's stream, then returns the pool's unused memory to the device. */
  trimDeviceMemory(device: number): void;
  /**
   * Device time of CUDA op bodies (CUDA events around each op's work) accumulated since the
   * previous call, which it resets; `enable` turns the events on or off. For bench/overhead.js.
   */
  bodyTime(enable: boolean): { ms: number; ops: number };
  limits: {
    blockSize: number;
    tileSide: number;
    minHeadDim: number;
    maxHeadDim: number;
    /** Largest batch, head and token count (2^31). */
    maxDim: number;
    /** Largest softmax scale (2^16); larger scales are refused with a RangeError. */
    maxScale: number;
  };
}

const ROOT = path.resolve(__dirname, '..');

function candidates(): string[] {
  const found = [path.join(ROOT, 'build', 'Release', 'nabla_attention.node')];
  const prebuilds = path.join(ROOT, 'prebuilds', `${process.platform}-${process.arch}`);
  if (fs.existsSync(prebuilds)) {
    for (const f of fs.readdirSync(prebuilds).sort()) if (f.endsWith('.node')) found.push(path.join(prebuilds, f));
  } else {
    found.push(path.join(prebuilds, 'node.napi.node'));
  }
  return found;
}

function load(): NativeAddon {
  const tried: string[] = [];
  const override = process.env.NABLA_NATIVE_PATH;
  for (const file of override ? [path.resolve(override)] : candidates()) {
    if (!fs.existsSync(file)) {
      tried.push(`${file} (not found)`);
      continue;
    }
    try {
      return require(file) as NativeAddon;
    } catch (err) {
      tried.push(`${file} (${(err as Error).message.split('\n')[0]})`);
    }
  }
  throw new Error(
    `nabla-attention: no native binary loads on ${process.platform}-${process.arch} (Node ${process.version}, ` +
      `Node-API 8).\nTried:\n  ${tried.join('\n  ')}\n` +
      'Build it from source with `npm rebuild nabla-attention` (needs CMake or node-gyp and a C++17 compiler; ' +
      'nvcc on PATH adds the CUDA backend).',
  );
}

export const native: NativeAddon = load();
