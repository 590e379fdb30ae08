// Machine and build facts that several commands print (`nabla info`, the `nabla bench` header).
import * as fs from 'fs';
import { Backends, DeviceInfo } from '../backend';

/** cudaRuntimeGetVersion() encodes 12.4 as 12040; null when there is none. */
export function cudaVersionText(code: number): string | null {
  return code > 0 ? `${Math.floor(code / 1000)}.${Math.floor((code % 1000) / 10)}` : null;
}

export function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

/** "NAME (compute capability X.Y, N GiB)" */
export function deviceText(d: DeviceInfo): string {
  return `${d.name} (compute capability ${d.computeCapability}, ${gib(d.memoryBytes)})`;
}

/** How the native binary was built, in one line. */
export function buildText(build: Backends['build']): string {
  return (
    `CUDA compiled in: ${build.cudaCompiled ? `yes (archs ${build.cudaArchs || 'unknown'})` : 'no'}, ` +
    `CUDA runtime ${cudaVersionText(build.cudaRuntimeVersion) ?? 'none'}, Node-API ${build.napiVersion}`
  );
}

/** The NVIDIA kernel driver version, read from /proc (Linux), or null. */
export function nvidiaDriver(): string | null {
  try {
    const text = fs.readFileSync('/proc/driver/nvidia/version', 'utf8');
    return /Kernel Module\s+(?:for \S+\s+)?([\d.]+)/.exec(text)?.[1] ?? null;
  } catch {
    return null;
  }
}
