// `nabla attend`: block-sparse attention of q, k, v .npy files over a mask file (--mask) or over
// the NABLA mask computed on the fly; the output is written as float32 .npy [B, H, S, Dv].
import { performance } from 'perf_hooks';
import { NablaAttentionOptions, attentionRan, nablaAttentionRan } from '../attention';
import { ATTENTION_KERNEL, CPU_KERNEL } from '../backend';
import { BlockMask } from '../mask';
import { loadNpy, saveNpy } from '../npy';
import { Tensor, toFloat32Array } from '../tensor';
import { CommandSpec, Flags, UsageError, parseNumber } from './args';
import { ATTENTION_KERNEL_FLAG, CPU_KERNEL_FLAG, KERNEL_NOTE, kernelOptions } from './kernels';
import { OutputFiles, writeAllOrNothing } from './output';
import {
  MASK_FLAGS,
  PLACEMENT_FLAGS,
  densityLine,
  firstMaskFlag,
  gridFlag,
  loadTensor,
  maskOptions,
  placement,
  placementText,
  ruleText,
  shapeText,
} from './mask';

export const spec: CommandSpec = {
  name: 'attend',
  summary: 'block-sparse attention of q, k, v (.npy [B, H, S, D], float32 or float16, tile order)',
  flags: [
    { name: 'q', value: 'FILE', help: 'Queries .npy [B, H, Sq, D]', required: true },
    { name: 'k', value: 'FILE', help: 'Keys .npy [B, H, Skv, D]', required: true },
    { name: 'v', value: 'FILE', help: 'Values .npy [B, H, Skv, Dv]', required: true },
    {
      name: 'mask',
      value: 'FILE',
      help: "Block mask .npy, uint8 0/1 [B, H, nq, nk] (as nabla mask writes it; with --grid, nq = nk = the grid's tile count)",
      default: 'compute the NABLA mask',
    },
    ...MASK_FLAGS,
    { name: 'scale', value: 'S', help: 'Softmax scale', default: '1/sqrt(D)' },
    ...PLACEMENT_FLAGS,
    ATTENTION_KERNEL_FLAG,
    CPU_KERNEL_FLAG,
    { name: 'out', value: 'FILE', help: 'Output .npy: float32 [B, H, Sq, Dv]', required: true },
    { name: 'mask-out', value: 'FILE', help: 'Also write the mask used, uint8 [B, H, nq, nk]', default: 'none' },
  ],
  notes: [
    'Without --mask the NABLA mask is computed from q and k with the mask flags (as in nabla mask);',
    'with --mask those flags (--mask-kernel too) are refused except --grid, which gives the mask file its token grid.',
    'float16 outputs are written as float32.',
    KERNEL_NOTE,
  ],
};

export async function run(flags: Flags): Promise<void> {
  const maskFile = flags.get('mask') as string | undefined;
  const ruleFlag = firstMaskFlag(flags);
  if (maskFile !== undefined && ruleFlag !== undefined)
    throw new UsageError(`--${ruleFlag} cannot be combined with --mask (the mask file already decides the blocks)`);
  const options: NablaAttentionOptions = {
    ...(maskFile === undefined ? maskOptions(flags) : {}),
    ...placement(flags),
    ...kernelOptions(flags, [ATTENTION_KERNEL, CPU_KERNEL]),
  };
  if (flags.has('scale')) options.scale = parseNumber(flags.get('scale') as string, 'scale');

  const where = placementText(options);
  const qFile = flags.get('q') as string;
  const kFile = flags.get('k') as string;
  const vFile = flags.get('v') as string;
  const out = flags.get('out') as string;
  const maskOut = flags.get('mask-out') as string | undefined;
  const outputs = new OutputFiles({ q: qFile, k: kFile, v: vFile, mask: maskFile });
  outputs.plan('out', out);
  if (maskOut !== undefined) outputs.plan('mask-out', maskOut);

  const report = await writeAllOrNothing(outputs, async () => {
    const q = loadTensor(qFile);
    const k = loadTensor(kFile);
    const v = loadTensor(vFile);
    let given: BlockMask | undefined;
    if (maskFile !== undefined) {
      const dense = loadNpy(maskFile);
      if (dense.dtype !== 'uint8' || dense.shape.length !== 4)
        throw new Error(
          `Expected a uint8 mask [B, H, nq, nk] for ${maskFile} but received '${dense.descr}' ${shapeText(dense.shape)}`,
        );
      given = BlockMask.fromDense(
        dense.data as Uint8Array,
        dense.shape as [number, number, number, number],
        gridFlag(flags),
      );
    }

    const start = performance.now();
    const { output, mask, kernels } = given
      ? await overMask(q, k, v, given, options)
      : await nablaAttentionRan(q, k, v, options);
    const ms = performance.now() - start;

    outputs.stage(out, (temp) => saveNpy(temp, output.dims, toFloat32Array(output)));
    if (maskOut !== undefined) outputs.stage(maskOut, (temp) => saveNpy(temp, mask.dims, mask.toDense()));

    const source = given ? `the mask in ${maskFile}` : `the NABLA mask, ${ruleText(options)}`;
    return (
      `attention of ${qFile} ${shapeText(q.dims)} ${q.type} over ${source} on ${where}\n` +
      `${kernelsLine(kernels)}\n` +
      `${densityLine(mask)}\ntime ${ms.toFixed(1)} ms${given ? '' : ' (mask + attention)'}\n` +
      `wrote ${out}: float32 ${shapeText(output.dims)}\n` +
      (maskOut !== undefined ? `wrote ${maskOut}: uint8 ${shapeText(mask.dims)}\n` : '')
    );
  });
  process.stdout.write(report);
}

/** Attention over a given mask, in the shape of nablaAttentionRan's result (no mask kernel ran). */
async function overMask(q: Tensor, k: Tensor, v: Tensor, mask: BlockMask, options: NablaAttentionOptions) {
  const ran = await attentionRan(q, k, v, mask, options, true);
  return { output: ran.output, mask, kernels: { attention: ran.kernel } };
}

/** The kernels that ran, as the ops report them: 'kernels: mask cpu, attention cpu-avx2'. */
function kernelsLine(kernels: { mask?: string; attention: string }): string {
  return `kernels: ${kernels.mask === undefined ? '' : `mask ${kernels.mask}, `}attention ${kernels.attention}`;
}
