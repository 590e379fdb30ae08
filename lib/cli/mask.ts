// `nabla mask`: the NABLA block mask of q and k .npy files, written as a dense uint8 .npy.
// Also the mask and placement flags that `nabla attend` shares.
import { performance } from 'perf_hooks';
import { BACKENDS, Backend, MASK_KERNEL, PlacementOptions, resolvePlacement } from '../backend';
import { BlockMask, MaskOptions, nablaMaskRan } from '../mask';
import { loadNpy, npyToTensor, saveNpy } from '../npy';
import { DEFAULT_METHOD, DEFAULT_THRESHOLD, MASK_METHODS } from '../defaults';
import { numel } from '../shapes';
import { mapPicture, maskPicture, writePicture } from '../pictures';
import { Tensor } from '../tensor';
import { CommandSpec, FlagSpec, Flags, UsageError, parseChoice, parseIntList, parseInteger, parseNumber } from './args';
import { KERNEL_NOTE, MASK_KERNEL_FLAG, kernelOptions } from './kernels';
import { OutputFiles, writeAllOrNothing } from './output';

export const MASK_FLAGS: FlagSpec[] = [
  {
    name: 'threshold',
    value: 'THR',
    help: 'CDF mass (cdf) or block fraction (topk) to keep, in (0, 1]',
    default: String(DEFAULT_THRESHOLD),
  },
  { name: 'method', value: 'cdf|topk', help: 'Block selection rule', default: DEFAULT_METHOD },
  {
    name: 'grid',
    value: 'T,H,W',
    help: 'Token grid (frames, token rows, token cols) of the tile-ordered sequence, any sizes (S = T*H*W): one block per 8x8 tile, edge tiles smaller',
    default: 'none',
  },
  { name: 'sta', value: 'wT,wH,wW', help: 'STA window in blocks, ORed into the mask; needs --grid', default: 'none' },
  {
    name: 'frames',
    value: 'F0,F1,..',
    help: 'Document boundaries in frames, e.g. 0,10,21; needs --grid',
    default: 'none',
  },
  {
    name: 'causal',
    help: 'Frame-causal: a query block sees only key blocks of its own and earlier frames; needs --grid',
    default: 'off',
  },
  MASK_KERNEL_FLAG,
];

export const PLACEMENT_FLAGS: FlagSpec[] = [
  {
    name: 'backend',
    value: 'auto|cpu|cuda',
    help: 'Where to run (auto: CUDA when a device is present)',
    default: 'auto',
  },
  { name: 'device', value: 'N', help: 'CUDA device index', default: '0' },
];

export const spec: CommandSpec = {
  name: 'mask',
  summary: 'compute the NABLA block mask of q and k (.npy [B, H, S, D], float32 or float16, tile order)',
  flags: [
    { name: 'q', value: 'FILE', help: 'Queries .npy [B, H, S, D]', required: true },
    { name: 'k', value: 'FILE', help: 'Keys .npy [B, H, S, D]', required: true },
    ...MASK_FLAGS,
    ...PLACEMENT_FLAGS,
    {
      name: 'out',
      value: 'FILE',
      help: "Output .npy: the mask as uint8 0/1 [B, H, nb, nb] (nb = S/64, or the grid's tile count)",
      required: true,
    },
    {
      name: 'png',
      value: 'FILE',
      help: 'Also draw the mask (a panel per head) to FILE and the block map P beside it (m.png -> m-map.png)',
      default: 'none',
    },
  ],
  notes: ['Prints the density of every (batch, head) pair and of the whole mask.', KERNEL_NOTE],
};

const MASK_FLAG_NAMES = MASK_FLAGS.map((f) => f.name);

/** Mask flags -> MaskOptions; only the flags given (the library fills in its defaults). */
export function maskOptions(flags: Flags): MaskOptions {
  const options: MaskOptions = kernelOptions(flags, [MASK_KERNEL]);
  const text = (name: string) => flags.get(name) as string;
  if (flags.has('threshold')) options.threshold = parseNumber(text('threshold'), 'threshold');
  if (flags.has('method')) options.method = parseChoice(text('method'), 'method', MASK_METHODS);
  const grid = gridFlag(flags);
  if (grid) options.grid = grid;
  if (flags.has('sta'))
    options.sta = parseIntList(text('sta'), 'sta', '3 comma-separated integers wT,wH,wW', 3) as [
      number,
      number,
      number,
    ];
  if (flags.has('frames'))
    options.frames = parseIntList(text('frames'), 'frames', 'comma-separated frame boundaries such as 0,10,21');
  if (flags.has('causal')) options.causal = true;
  if ((options.sta || options.frames || options.causal) && !options.grid)
    throw new UsageError(
      `--grid T,H,W is required with ${options.sta ? '--sta' : options.frames ? '--frames' : '--causal'}`,
    );
  return options;
}

/** --grid T,H,W, if given. */
export function gridFlag(flags: Flags): [number, number, number] | undefined {
  return flags.has('grid')
    ? (parseIntList(flags.get('grid') as string, 'grid', '3 comma-separated integers T,H,W', 3) as [
        number,
        number,
        number,
      ])
    : undefined;
}

/**
 * The first mask flag given, if any: attend refuses them next to --mask (the rule and the mask kernel
 * of a mask it does not compute); --grid goes with a mask file.
 */
export function firstMaskFlag(flags: Flags): string | undefined {
  return MASK_FLAG_NAMES.find((name) => name !== 'grid' && flags.has(name));
}

export function placement(flags: Flags): PlacementOptions {
  const options: PlacementOptions = {};
  if (flags.has('backend'))
    options.backend = parseChoice(flags.get('backend') as string, 'backend', BACKENDS as Backend[]);
  if (flags.has('device')) options.device = parseInteger(flags.get('device') as string, 'device');
  return options;
}

/** Where the op runs, in words: 'cpu' or 'cuda:0'. */
export function placementText(options: PlacementOptions): string {
  const place = resolvePlacement(options, []);
  return place.backend === 'cpu' ? 'cpu' : `cuda:${place.device}`;
}

export function loadTensor(file: string): Tensor {
  return npyToTensor(loadNpy(file), file);
}

export function shapeText(dims: readonly number[]): string {
  return `[${dims.join(', ')}]`;
}

/** Kept blocks / all blocks, in words. */
export function densityLine(mask: BlockMask): string {
  const kept = mask.kvCounts.reduce((a, c) => a + c, 0);
  const total = numel(mask.dims);
  return `density ${mask.density().toFixed(4)} (${kept} of ${total} blocks kept)`;
}

/** The rule in words: 'threshold 0.7 (cdf), sta 11,3,3, frames 0,10,21'. */
export function ruleText(options: MaskOptions): string {
  const parts = [`threshold ${options.threshold ?? DEFAULT_THRESHOLD} (${options.method ?? DEFAULT_METHOD})`];
  if (options.sta) parts.push(`sta ${options.sta.join(',')}`);
  if (options.frames) parts.push(`frames ${options.frames.join(',')}`);
  if (options.causal) parts.push('causal');
  return parts.join(', ');
}

/** One row per (batch, head): b, h, density; then the overall density. */
export function densityTable(mask: BlockMask): string {
  const [B, H] = mask.dims;
  const perHead = mask.headDensities();
  const rows = ['   b    h  density'];
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      rows.push(`${String(b).padStart(4)} ${String(h).padStart(4)}  ${perHead[b * H + h].toFixed(4)}`);
  rows.push(densityLine(mask));
  return rows.join('\n');
}

export async function run(flags: Flags): Promise<void> {
  const options: MaskOptions = { ...maskOptions(flags), ...placement(flags) };
  const where = placementText(options);
  const qFile = flags.get('q') as string;
  const kFile = flags.get('k') as string;
  const out = flags.get('out') as string;
  const png = flags.get('png') as string | undefined;
  const outputs = new OutputFiles({ q: qFile, k: kFile });
  outputs.plan('out', out);
  if (png !== undefined) for (const file of pictureFiles(png)) outputs.plan('png', file);

  const report = await writeAllOrNothing(outputs, async () => {
    const q = loadTensor(qFile);
    const k = loadTensor(kFile);
    const start = performance.now();
    // q and k are host tensors, so either backend can return the block map beside the mask
    const { mask, kernel } = await nablaMaskRan(q, k, { ...options, returnMap: png !== undefined }, true);
    const ms = performance.now() - start;
    const dense = mask.toDense();
    outputs.stage(out, (temp) => saveNpy(temp, mask.dims, dense));
    return (
      `mask of ${qFile} ${shapeText(q.dims)} ${q.type}: ${ruleText(options)} on ${where} (kernel ${kernel}) in ${ms.toFixed(1)} ms\n` +
      `${densityTable(mask)}\nwrote ${out}: uint8 ${shapeText(mask.dims)}\n` +
      (png === undefined ? '' : stageMaskPictures(outputs, png, mask, dense, options.threshold ?? DEFAULT_THRESHOLD))
    );
  });
  process.stdout.write(report);
}

/** FILE and FILE-map.png: the mask picture and the block map picture of --png FILE. */
function pictureFiles(file: string): [string, string] {
  return [file, file.replace(/(\.png)?$/i, '-map.png')];
}

/** Stages the mask picture (`dense`, 0/1 per block) and the block map picture of --png `file`. */
function stageMaskPictures(
  outputs: OutputFiles,
  file: string,
  mask: BlockMask,
  dense: Uint8Array,
  threshold: number,
): string {
  const [maskFile, mapFile] = pictureFiles(file);
  outputs.stage(maskFile, (temp) => writePicture(temp, maskPicture(dense, mask.dims, { threshold })));
  outputs.stage(mapFile, (temp) =>
    writePicture(temp, mapPicture(mask.map as Float32Array, mask.dims, { threshold, densities: mask.headDensities() })),
  );
  return `wrote ${maskFile}: mask picture\nwrote ${mapFile}: block map P, log scale\n`;
}
