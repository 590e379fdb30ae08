// Which GPU code in the binary a CUDA device runs: machine code (a cubin) built for it, or PTX that
// the driver compiles when a kernel is first used (a one-off delay per kernel, cached on disk by the
// driver afterwards). Pure: the compiled list (backends().build.cudaArchs) and a compute capability in.
//
// Compatibility (CUDA programming guide, "binary compatibility"):
//   cubin sm_XY   runs on X.y for every y >= Y        (sm_100 on 10.0 and 10.3; sm_120 on 12.0, 12.1)
//   cubin sm_XYf  runs on X.y for y >= Y, too           (family-specific: same major)
//   cubin sm_XYa  runs on X.Y only                      (sm_90a: Hopper 9.0, not Blackwell)
//   PTX compute_XY is compiled by the driver for any device of compute capability >= X.Y
//   PTX compute_XYa only for X.Y

/** One entry of a CMake CUDA_ARCHITECTURES list: "90a-real" (cubin), "90-virtual" (PTX), "100" (both). */
export interface CudaArch {
  /** major * 10 + minor, e.g. 90, 100, 120 */
  sm: number;
  /** '' portable, 'a' only this exact version, 'f' this major's family */
  variant: '' | 'a' | 'f';
  cubin: boolean;
  ptx: boolean;
}

export type KernelImage =
  /** a cubin for this device is in the binary: no compilation at first use */
  | { kind: 'native'; arch: string }
  /** only PTX applies: the driver compiles it when a kernel is first used */
  | { kind: 'ptx'; arch: string }
  /** nothing in the binary runs on this device (kernels fail with "no kernel image") */
  | { kind: 'none' }
  /** the list holds entries that name no version ("native", "all"): cannot tell */
  | { kind: 'unknown' };

const ENTRY = /^(\d+)([af]?)(?:-(real|virtual))?$/;

/** The entries of a CMake CUDA_ARCHITECTURES list (';' or space separated); null for names like "native". */
export function parseCudaArchs(list: string): (CudaArch | null)[] {
  return list
    .split(/[;\s]+/)
    .filter((s) => s !== '')
    .map((entry) => {
      const m = ENTRY.exec(entry);
      if (m === null) return null;
      const kind = m[3]; // no suffix: both the cubin and the PTX
      return {
        sm: Number(m[1]),
        variant: m[2] as CudaArch['variant'],
        cubin: kind !== 'virtual',
        ptx: kind !== 'real',
      };
    });
}

/** "9.0" -> [9, 0]; null when it is not MAJOR.MINOR. */
function versionOf(computeCapability: string): [major: number, minor: number] | null {
  const m = /^(\d+)\.(\d+)$/.exec(computeCapability);
  return m === null ? null : [Number(m[1]), Number(m[2])];
}

function cubinRuns(a: CudaArch, major: number, minor: number): boolean {
  const [archMajor, archMinor] = [Math.floor(a.sm / 10), a.sm % 10];
  if (a.variant === 'a') return major === archMajor && minor === archMinor;
  return major === archMajor && minor >= archMinor;
}

function ptxRuns(a: CudaArch, major: number, minor: number): boolean {
  if (a.variant !== '') return major * 10 + minor === a.sm;
  return major * 10 + minor >= a.sm;
}

/**
 * What the device of `computeCapability` runs from a binary built for `cudaArchs`: the newest
 * cubin that runs on it, else the newest PTX the driver can compile for it.
 */
export function kernelImageFor(computeCapability: string, cudaArchs: string): KernelImage {
  const version = versionOf(computeCapability);
  const archs = parseCudaArchs(cudaArchs);
  if (version === null) return { kind: 'unknown' };
  const [major, minor] = version;
  const known = archs.filter((a): a is CudaArch => a !== null).sort((a, b) => b.sm - a.sm);
  const cubin = known.find((a) => a.cubin && cubinRuns(a, major, minor));
  if (cubin) return { kind: 'native', arch: `sm_${cubin.sm}${cubin.variant}` };
  if (archs.includes(null)) return { kind: 'unknown' }; // "native" or "all" may have held a cubin for it
  const ptx = known.find((a) => a.ptx && ptxRuns(a, major, minor));
  return ptx ? { kind: 'ptx', arch: `compute_${ptx.sm}${ptx.variant}` } : { kind: 'none' };
}
