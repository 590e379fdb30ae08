// `nabla info`: version, backends and devices, and how the native binary was built.
import { backends } from '../backend';
import { VERSION } from '../version';
import { CommandSpec, Flags } from './args';

export const spec: CommandSpec = {
  name: 'info',
  summary: 'show the package version, the CPU and CUDA backends, devices and build facts',
  flags: [{ name: 'json', help: 'Print the facts as one JSON object', default: 'off' }],
};

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

/** cudaRuntimeGetVersion() encodes 12.4 as 12040. */
function cudaVersion(code: number): string {
  return code > 0 ? `${Math.floor(code / 1000)}.${Math.floor((code % 1000) / 10)}` : 'none';
}

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
    ...info.devices.map((d) => `device ${d.index}:  ${d.name}, compute capability ${d.computeCapability}, ${gib(d.memoryBytes)}`),
    `build:     CUDA compiled in: ${build.cudaCompiled ? `yes (archs ${build.cudaArchs || 'unknown'})` : 'no'}, ` +
      `CUDA runtime ${cudaVersion(build.cudaRuntimeVersion)}, CPU threads ${build.cpuThreads}, Node-API ${build.napiVersion}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}
