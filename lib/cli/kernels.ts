// The kernel flags: --kernel, --mask-kernel and --cpu-kernel name the op options kernel, maskKernel
// and cpuKernel. Their values, environment variables and 'auto' come from the KernelSwitch
// definitions in lib/backend.ts. A flag given is passed as the op option, so it wins over the
// environment variable; one not given leaves the op its default (the variable, then 'auto').
import { ATTENTION_KERNEL, CPU_KERNEL, KernelSwitch, MASK_KERNEL } from '../backend';
import type { NablaAttentionOptions } from '../attention';
import { FlagSpec, Flags, parseChoice } from './args';

/** The op options the kernel flags set. */
export type KernelOptions = Pick<NablaAttentionOptions, 'kernel' | 'maskKernel' | 'cpuKernel'>;

/** A switch's flag: its option in kebab case (maskKernel -> mask-kernel). */
function kernelFlagName(kernel: KernelSwitch<string>): string {
  return kernel.option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function kernelFlag(kernel: KernelSwitch<string>, what: string): FlagSpec {
  return {
    name: kernelFlagName(kernel),
    value: kernel.values.join('|'),
    help: `${what} (auto: see the kernel table in README's API section)`,
    default: `${kernel.env}, else auto`,
  };
}

export const ATTENTION_KERNEL_FLAG = kernelFlag(ATTENTION_KERNEL, 'CUDA attention kernel');
export const MASK_KERNEL_FLAG = kernelFlag(MASK_KERNEL, 'CUDA mask kernel');
export const CPU_KERNEL_FLAG = kernelFlag(CPU_KERNEL, 'CPU attention kernel');

/** What every command with kernel flags says about them in its notes. */
export const KERNEL_NOTE =
  'A kernel flag wins over its environment variable; one for a backend that does not run is checked and ignored.';

/**
 * The options of the kernel flags given among `switches`; a value outside the switch's list is a
 * usage error, found before any work.
 */
export function kernelOptions(flags: Flags, switches: readonly KernelSwitch<string>[]): KernelOptions {
  const options: Record<string, string> = {};
  for (const kernel of switches) {
    const name = kernelFlagName(kernel);
    if (flags.has(name)) options[kernel.option] = parseChoice(flags.get(name) as string, name, kernel.values);
  }
  return options as KernelOptions;
}
