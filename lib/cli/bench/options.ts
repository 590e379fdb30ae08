// `nabla bench` options: the command's flags, the shape it times (a preset, a given shape or
// q/k/v files) and the run's settings, checked by the library's own rules.
import { ATTENTION_KERNEL, CPU_KERNEL, MASK_KERNEL, backends, resolvePlacement } from '../../backend';
import { DTYPES, DType } from '../../dtype';
import { attentionFlops } from '../../flops';
import { PRESETS, PRESET_NAMES, Preset, THRESHOLD_SWEEP, findPreset } from '../../presets';
import { BLOCK_SIZE, DEFAULT_METHOD, MASK_METHODS, MaskMethod, StaWindow, TokenGrid } from '../../shapes';
import { Tensor, cast } from '../../tensor';
import { MaskOptions } from '../../mask';
import {
  checkHeadDim,
  checkPairGrid,
  checkQKV,
  checkSeq,
  checkThreshold,
  checkTokenGrid,
  checkWindow,
} from '../../validate';
import { CommandSpec, Flags, UsageError, parseChoice, parseIntList, parseInteger, parseNumber } from '../args';
import {
  ATTENTION_KERNEL_FLAG,
  CPU_KERNEL_FLAG,
  KERNEL_NOTE,
  KernelOptions,
  MASK_KERNEL_FLAG,
  kernelOptions,
} from '../kernels';
import { loadTensor } from '../mask';

export type BenchBackend = 'cpu' | 'cuda';
const BACKEND_CHOICES = ['auto', 'cpu', 'cuda', 'all'] as const;
const DEFAULT_WARMUP = 1;
const DEFAULT_ITERS = 5;
const DEFAULT_MAX_SECONDS = 60;

export const spec: CommandSpec = {
  name: 'bench',
  summary:
    'time the NABLA mask, block-sparse and dense attention on model shapes; print ms, TFLOP/s, density, speedup, error',
  flags: [
    {
      name: 'preset',
      value: 'NAME',
      help: 'A model shape (list below); sets heads, head dim, grid, threshold and STA',
      default: 'none',
    },
    { name: 'batch', value: 'B', help: 'Batch size', default: '1' },
    { name: 'heads', value: 'H', help: 'Heads (with --seq or --grid and --head-dim)' },
    { name: 'seq', value: 'S', help: 'Tokens, a multiple of 64 (or --grid)' },
    {
      name: 'grid',
      value: 'T,H,W',
      help: 'Token grid (frames, token rows, token cols), any sizes: S = T*H*W; needed for --sta and --causal',
    },
    { name: 'head-dim', value: 'D', help: 'Head dim' },
    {
      name: 'dtype',
      value: DTYPES.join('|'),
      help: 'Element type of q, k, v',
      default: "bfloat16; with --q the files' type",
    },
    {
      name: 'threshold',
      value: 'T1,T2,..',
      help: 'Thresholds to sweep, each in (0, 1]',
      default: `the preset's; else ${THRESHOLD_SWEEP.join(',')}`,
    },
    {
      name: 'sta',
      value: 'wT,wH,wW',
      help: "STA window in blocks ORed into every mask, or 'none'",
      default: "the preset's; else none",
    },
    { name: 'method', value: 'cdf|topk', help: 'Block selection rule', default: DEFAULT_METHOD },
    {
      name: 'causal',
      help: 'Frame-causal masks: a query block sees only its own and earlier frames; needs a grid',
      default: 'off',
    },
    {
      name: 'backend',
      value: BACKEND_CHOICES.join('|'),
      help: 'Backends to time (auto: CUDA when present, else cpu; all: every available one)',
      default: 'auto',
    },
    { name: 'device', value: 'N', help: 'CUDA device index', default: '0' },
    ATTENTION_KERNEL_FLAG,
    MASK_KERNEL_FLAG,
    CPU_KERNEL_FLAG,
    { name: 'warmup', value: 'N', help: 'Untimed runs before the timed ones', default: String(DEFAULT_WARMUP) },
    {
      name: 'iters',
      value: 'N',
      help: 'Timed runs of every op (median, min and max are reported)',
      default: String(DEFAULT_ITERS),
    },
    {
      name: 'q',
      value: 'FILE',
      help: 'Real queries .npy [B, H, S, D] (tile order) instead of synthetic inputs; with --k, --v',
      default: 'synthetic',
    },
    { name: 'k', value: 'FILE', help: 'Real keys .npy [B, H, S, D]', default: 'synthetic' },
    { name: 'v', value: 'FILE', help: 'Real values .npy [B, H, S, Dv]', default: 'synthetic' },
    { name: 'json', help: 'Print one JSON array of row objects instead of the markdown table', default: 'off' },
    {
      name: 'csv',
      help: 'Print CSV (a header line, then one line per row) instead of the markdown table',
      default: 'off',
    },
    {
      name: 'png',
      value: 'DIR',
      help: 'Write mask-thr<T>.png per threshold and map.png (block map P) into DIR',
      default: 'none',
    },
    {
      name: 'scale-down',
      help: 'Shrink batch, heads and frames until the estimate fits --max-seconds',
      default: 'off',
    },
    {
      name: 'max-seconds',
      value: 'N',
      help: 'Time budget: longer estimates are refused (or scaled with --scale-down)',
      default: String(DEFAULT_MAX_SECONDS),
    },
  ],
  notes: [
    'Give one of: --preset NAME; --heads H (--seq S | --grid T,H,W) --head-dim D [--batch B]; or --q, --k, --v files.',
    "Synthetic q and k are smooth functions of each token's (t, y, x) plus noise, in tile order, so block maps",
    "are local like a video DiT's. Rows per backend: one dense row, then mask and sparse rows per threshold;",
    'rel. error is ||sparse - dense|| / ||dense|| (L2) of the attention output. Progress goes to stderr.',
    "The kernel column is the kernel that ran each row's op. " + KERNEL_NOTE,
    '',
    'Presets (docs/nabla.md section 5):',
    ...PRESETS.map(
      (p) =>
        `  ${p.name.padEnd(22)}${p.heads} x ${p.headDim}, grid ${p.grid.join('x')}, thr ${p.threshold}` +
        `${p.sta ? `, sta ${p.sta.join(',')}` : ''}  (${p.model})`,
    ),
    '',
    'Example: nabla bench --batch 1 --heads 2 --grid 4,16,16 --head-dim 64 --backend cpu',
  ],
};

// ---------------------------------------------------------------------------------------------
// The shape: tokens are `frames` frames of `frameTokens` tokens, so scaling can drop whole frames.

export interface Shape {
  batch: number;
  heads: number;
  headDim: number;
  valueDim: number;
  frames: number;
  frameTokens: number;
  /** Token rows and cols of a frame when the tokens come from a grid. */
  frameGrid?: readonly [number, number];
  /** Key tokens when they differ from the query tokens (cross attention from files). */
  seqKv?: number;
}

export const seqOf = (s: Shape) => s.frames * s.frameTokens;
export const seqKvOf = (s: Shape) => s.seqKv ?? seqOf(s);
export const gridOf = (s: Shape): TokenGrid | undefined =>
  s.frameGrid ? [s.frames, s.frameGrid[0], s.frameGrid[1]] : undefined;
export const dimsText = (s: Shape) => `${s.batch}x${s.heads}x${seqOf(s)}x${s.headDim}`;

/** Dense forward FLOPs of the shape (lib/flops.ts: 2*S*Skv*(D + Dv) per batch item and head). */
export function denseFlops(s: Shape): number {
  return attentionFlops({
    batch: s.batch,
    heads: s.heads,
    seqQ: seqOf(s),
    seqKv: seqKvOf(s),
    headDim: s.headDim,
    valueDim: s.valueDim,
  });
}

export interface Setup {
  shape: Shape;
  preset?: Preset;
  files?: { q: Tensor; k: Tensor; v: Tensor };
  type: DType;
  thresholds: number[];
  method: MaskMethod;
  sta?: StaWindow;
  causal: boolean;
  backends: BenchBackend[];
  device: number;
  /** The kernel flags given, as the options of the attention ops and of the mask (absent: the environment, then 'auto'). */
  kernels: { attention: KernelOptions; mask: KernelOptions };
  warmup: number;
  iters: number;
  maxSeconds: number;
  scaleDown: boolean;
  format: 'markdown' | 'json' | 'csv';
  pngDir?: string;
}

function positive(flags: Flags, name: string, fallback?: number): number | undefined {
  if (!flags.has(name)) return fallback;
  const n = parseInteger(flags.get(name) as string, name);
  if (n < 1) throw new UsageError(`Expected a positive integer for --${name} but received '${flags.get(name)}'`);
  return n;
}

/** The mask options a run's shape and rule give every mask: its grid (when known), STA, causal. */
export function gridRule(setup: Setup, s: Shape): Pick<MaskOptions, 'grid' | 'sta' | 'causal'> {
  const grid = gridOf(s);
  return grid ? { grid, ...(setup.sta ? { sta: setup.sta } : {}), ...(setup.causal ? { causal: true } : {}) } : {};
}

export function readSetup(flags: Flags): Setup {
  const text = (name: string) => flags.get(name) as string | undefined;
  const conflict = (a: string, b: string, why: string) => {
    if (flags.has(a) && flags.has(b)) throw new UsageError(`--${a} cannot be combined with --${b} (${why})`);
  };
  conflict('json', 'csv', 'one output format');
  const kernels = {
    attention: kernelOptions(flags, [ATTENTION_KERNEL, CPU_KERNEL]),
    mask: kernelOptions(flags, [MASK_KERNEL]),
  };
  const fileFlags = ['q', 'k', 'v'].filter((f) => flags.has(f));
  if (fileFlags.length > 0 && fileFlags.length < 3)
    throw new UsageError(`--q, --k and --v go together (missing --${['q', 'k', 'v'].find((f) => !flags.has(f))})`);
  const fromFiles = fileFlags.length === 3;
  for (const f of ['heads', 'seq', 'grid', 'head-dim']) conflict(f, 'preset', 'the preset sets the shape');
  conflict('q', 'preset', 'the files set the shape');
  for (const f of ['batch', 'heads', 'seq', 'head-dim']) conflict(f, 'q', 'the files set the shape');
  conflict('seq', 'grid', 'the grid sets the tokens');

  const type = flags.has('dtype') ? parseChoice(text('dtype') as string, 'dtype', DTYPES) : undefined;
  const grid = flags.has('grid')
    ? checkTokenGrid(parseIntList(text('grid') as string, 'grid', '3 comma-separated integers T,H,W', 3))
    : undefined;
  let shape: Shape;
  let preset: Preset | undefined;
  let files: Setup['files'];
  if (flags.has('preset')) {
    preset = findPreset(parseChoice(text('preset') as string, 'preset', PRESET_NAMES));
    const p = preset as Preset;
    shape = {
      batch: positive(flags, 'batch', 1) as number,
      heads: p.heads,
      headDim: p.headDim,
      valueDim: p.headDim,
      frames: p.grid[0],
      frameTokens: p.grid[1] * p.grid[2],
      frameGrid: [p.grid[1], p.grid[2]],
    };
  } else if (fromFiles) {
    const [q, k, v] = ['q', 'k', 'v'].map((f) => loadTensor(text(f) as string));
    // the library's own rules: 4-D, matching batch/heads/head dims, token counts multiples of 64
    // (without a grid) or T*H*W for both q and k (with one)
    const { batch, heads, seqQ, seqKv, headDim, valueDim } = checkQKV(q, k, v, grid !== undefined);
    if (grid) checkPairGrid(grid, { seqQ, seqKv });
    files = type && type !== q.type ? { q: cast(q, type), k: cast(k, type), v: cast(v, type) } : { q, k, v };
    shape =
      grid && seqKv === seqQ
        ? {
            batch,
            heads,
            headDim,
            valueDim,
            frames: grid[0],
            frameTokens: grid[1] * grid[2],
            frameGrid: [grid[1], grid[2]],
          }
        : { batch, heads, headDim, valueDim, frames: 1, frameTokens: seqQ, seqKv };
  } else if (flags.has('heads') || flags.has('seq') || flags.has('grid') || flags.has('head-dim')) {
    const heads = positive(flags, 'heads');
    const headDim = positive(flags, 'head-dim');
    if (heads === undefined) throw new UsageError('missing --heads H (see nabla bench --help)');
    if (headDim === undefined) throw new UsageError('missing --head-dim D (see nabla bench --help)');
    checkHeadDim(headDim, 'head-dim');
    const base = { batch: positive(flags, 'batch', 1) as number, heads, headDim, valueDim: headDim };
    if (grid) shape = { ...base, frames: grid[0], frameTokens: grid[1] * grid[2], frameGrid: [grid[1], grid[2]] };
    else if (flags.has('seq'))
      shape = {
        ...base,
        frames: checkSeq(positive(flags, 'seq') as number, 'seq') / BLOCK_SIZE,
        frameTokens: BLOCK_SIZE,
      };
    else throw new UsageError('missing --seq S or --grid T,H,W (see nabla bench --help)');
  } else {
    throw new UsageError(
      'give --preset NAME, a shape (--heads H --seq S|--grid T,H,W --head-dim D) or --q, --k, --v files (see nabla bench --help)',
    );
  }

  const thresholds = flags.has('threshold')
    ? (text('threshold') as string).split(',').map((t) => checkThreshold(parseNumber(t, 'threshold')))
    : preset
      ? [preset.threshold]
      : [...THRESHOLD_SWEEP];
  let sta: StaWindow | undefined = preset?.sta;
  if (flags.has('sta')) {
    sta =
      text('sta') === 'none'
        ? undefined
        : checkWindow(parseIntList(text('sta') as string, 'sta', "3 comma-separated integers wT,wH,wW or 'none'", 3));
    if (sta && !shape.frameGrid) throw new UsageError('--grid T,H,W is required with --sta');
  }
  const causal = flags.has('causal');
  if (causal && !shape.frameGrid) throw new UsageError('--grid T,H,W (or a preset) is required with --causal');
  const device = flags.has('device') ? parseInteger(text('device') as string, 'device') : 0;
  const choice = parseChoice(text('backend') ?? 'auto', 'backend', BACKEND_CHOICES);
  const maxSeconds = flags.has('max-seconds')
    ? parseNumber(text('max-seconds') as string, 'max-seconds')
    : DEFAULT_MAX_SECONDS;
  if (!(maxSeconds > 0))
    throw new UsageError(
      `Expected a positive number of seconds for --max-seconds but received '${text('max-seconds')}'`,
    );
  return {
    shape,
    preset,
    files,
    type: files ? files.q.type : (type ?? 'bfloat16'),
    thresholds,
    sta,
    causal,
    method: flags.has('method') ? parseChoice(text('method') as string, 'method', MASK_METHODS) : DEFAULT_METHOD,
    backends: chooseBackends(choice, device),
    device,
    kernels,
    warmup: flags.has('warmup') ? parseInteger(text('warmup') as string, 'warmup') : DEFAULT_WARMUP,
    iters: positive(flags, 'iters', DEFAULT_ITERS) as number,
    maxSeconds,
    scaleDown: flags.has('scale-down'),
    format: flags.has('json') ? 'json' : flags.has('csv') ? 'csv' : 'markdown',
    pngDir: text('png'),
  };
}

function chooseBackends(choice: (typeof BACKEND_CHOICES)[number], device: number): BenchBackend[] {
  if (choice === 'cuda') resolvePlacement({ backend: 'cuda', device }, []); // throws the library's "not available"
  if (choice === 'cpu') return ['cpu'];
  if (choice === 'cuda') return ['cuda'];
  const { cuda, reason } = backends();
  if (choice === 'all' && !cuda)
    process.stderr.write(`note: --backend all: cuda unavailable (${reason ?? 'no CUDA device'}); cpu only\n`);
  if (choice === 'all') return cuda ? ['cpu', 'cuda'] : ['cpu'];
  return cuda ? ['cuda'] : ['cpu'];
}
