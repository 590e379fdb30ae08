// Types of scripts/fatbin.js (a plain script so that scripts/prebuilds.js can use it without a build).
/// <reference types="node" />

export interface GpuCode {
  kind: 'elf' | 'ptx' | string;
  /** SM version, major * 10 + minor */
  sm: number;
  /** "sm_90a" for machine code, "compute_90" for PTX */
  arch: string;
}

export function binaryGpuCode(file: Buffer): GpuCode[];
export function fatbinEntries(bytes: Buffer): GpuCode[];
export function elfSection(file: Buffer, name: string): [offset: number, size: number] | null;
export function wantedGpuCode(cudaArchs: string): string[];
export function missingGpuCode(code: GpuCode[], cudaArchs: string): string[];
