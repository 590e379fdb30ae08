// `nabla info`: version, backends and devices, and how the native binary was built.
import { KernelImage } from '../archs';
import { backends } from '../backend';
import { VERSION } from '../version';
import { CommandSpec, Flags } from './args';
import { buildText, deviceText } from './facts';

export const spec: CommandSpec = {
  name: 'info',
  summary: 'show the package version, the CPU and CUDA backends, devices and build facts',
  flags: [{ name: 'json', help: 'Print the facts as one JSON object', default: 'off' }],
};

export async function run(flags: Flags): Promise<void> {
  const info = backends();
  if (flags.has('json')) {
    const facts = { version: VERSION, node: process.version, platform: `${process.platform}-${process.arch}`, ...info };
    process.stdout.write(JSON.stringify(facts, null, 2) + '\n');
    return;
  }
  const { build } = info;
  const lines = [
    `nabla-attention ${VERSION} (Node ${process.version}, ${process.platform}-${process.arch})`,
    `backends:  cpu${info.cuda ? `, cuda (${info.devices.length} device${info.devices.length === 1 ? '' : 's'})` : ''}`,
    ...(info.cuda ? [] : [`cuda:      unavailable: ${info.reason ?? 'no CUDA device'}`]),
    ...info.devices.map((d) => `device ${d.index}:  ${deviceText(d)}\n           ${kernelImageText(d.kernelImage)}`),
    `build:     ${buildText(build)}, CPU threads ${build.cpuThreads}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

/** Whether a device runs machine code from the binary or waits for the driver to compile PTX. */
export function kernelImageText(image: KernelImage): string {
  switch (image.kind) {
    case 'native':
      return `kernels: native code (${image.arch}) in the binary`;
    case 'ptx':
      return `kernels: PTX (${image.arch}), compiled by the driver at each kernel's first use (no native code for this GPU)`;
    case 'none':
      return 'kernels: none in the binary run on this GPU (before 8.0 none can; else rebuild with NABLA_CUDA_ARCHS naming it)';
    case 'unknown':
      return 'kernels: cannot tell from the architecture list whether native code is in the binary';
  }
}
