// `nabla bench`: times the NABLA mask, block-sparse attention over it and dense attention on a
// model's real shape (--preset), a given shape or q/k/v .npy files, and prints one table: ms,
// effective TFLOP/s, density, speedup and the error the mask costs. Never asserts timings.
//
// Before running, a small dense calibration run per backend gives FLOP/s; the run's FLOPs over it
// estimate the wall time. Runs over --max-seconds are refused, or shrunk with --scale-down.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { attention, blockSparseAttention } from '../attention';
import { Backends, backends, resolvePlacement } from '../backend';
import { DeviceTensor, toDeviceSync, toHost } from '../device';
import { DTYPES, DType } from '../dtype';
import { BlockMask, MaskOptions, nablaMask } from '../mask';
import { mapPicture, maskPicture, writePicture } from '../pictures';
import { PRESETS, PRESET_NAMES, Preset, findPreset } from '../presets';
import { BLOCK_SIZE, DEFAULT_METHOD, MASK_METHODS, MaskMethod, StaWindow, TILE_SIDE, TokenGrid } from '../shapes';
import { syntheticQKV } from '../synthetic';
import { Tensor, cast, toFloat32Array, zeros } from '../tensor';
import { blockGridFor, checkHeadDim, checkQKV, checkSeq, checkThreshold, checkTokenGrid, checkWindow } from '../validate';
import { VERSION } from '../version';
import { CommandSpec, Flags, UsageError, parseChoice, parseIntList, parseInteger, parseNumber } from './args';
import { buildText, cudaVersionText, deviceText, nvidiaDriver } from './facts';
import { loadTensor } from './mask';

type BenchBackend = 'cpu' | 'cuda';
const BACKEND_CHOICES = ['auto', 'cpu', 'cuda', 'all'] as const;
const SWEEP = [0.4, 0.7, 0.9];
const DEFAULT_WARMUP = 1;
const DEFAULT_ITERS = 5;
const DEFAULT_MAX_SECONDS = 60;
/** Rough cost of one synthetic input value on one core (estimate only). */
const SYNTHETIC_NS_PER_VALUE = 25;

export const spec: CommandSpec = {
  name: 'bench',
  summary: 'time the NABLA mask, block-sparse and dense attention on model shapes; print ms, TFLOP/s, density, speedup, error',
  flags: [
    { name: 'preset', value: 'NAME', help: 'A model shape (list below); sets heads, head dim, grid, threshold and STA', default: 'none' },
    { name: 'batch', value: 'B', help: 'Batch size', default: '1' },
    { name: 'heads', value: 'H', help: 'Heads (with --seq or --grid and --head-dim)' },
    { name: 'seq', value: 'S', help: 'Tokens, a multiple of 64 (or --grid)' },
    { name: 'grid', value: 'T,H,W', help: 'Token grid (frames, token rows, token cols): S = T*H*W; needed for --sta' },
    { name: 'head-dim', value: 'D', help: 'Head dim' },
    { name: 'dtype', value: DTYPES.join('|'), help: 'Element type of q, k, v', default: 'bfloat16; with --q the files\' type' },
    { name: 'threshold', value: 'T1,T2,..', help: 'Thresholds to sweep, each in (0, 1]', default: `the preset's; else ${SWEEP.join(',')}` },
    { name: 'sta', value: 'wT,wH,wW', help: "STA window in blocks ORed into every mask, or 'none'", default: "the preset's; else none" },
    { name: 'method', value: 'cdf|topk', help: 'Block selection rule', default: DEFAULT_METHOD },
    { name: 'backend', value: BACKEND_CHOICES.join('|'), help: 'Backends to time (auto: CUDA when present, else cpu; all: every available one)', default: 'auto' },
    { name: 'device', value: 'N', help: 'CUDA device index', default: '0' },
    { name: 'warmup', value: 'N', help: 'Untimed runs before the timed ones', default: String(DEFAULT_WARMUP) },
    { name: 'iters', value: 'N', help: 'Timed runs of every op (median, min and max are reported)', default: String(DEFAULT_ITERS) },
    { name: 'q', value: 'FILE', help: 'Real queries .npy [B, H, S, D] (tile order) instead of synthetic inputs; with --k, --v', default: 'synthetic' },
    { name: 'k', value: 'FILE', help: 'Real keys .npy [B, H, S, D]', default: 'synthetic' },
    { name: 'v', value: 'FILE', help: 'Real values .npy [B, H, S, Dv]', default: 'synthetic' },
    { name: 'json', help: 'Print one JSON array of row objects instead of the markdown table', default: 'off' },
    { name: 'csv', help: 'Print CSV (a header line, then one line per row) instead of the markdown table', default: 'off' },
    { name: 'png', value: 'DIR', help: 'Write mask-thr<T>.png per threshold and map.png (block map P) into DIR', default: 'none' },
    { name: 'scale-down', help: 'Shrink batch, heads and frames until the estimate fits --max-seconds', default: 'off' },
    { name: 'max-seconds', value: 'N', help: 'Time budget: longer estimates are refused (or scaled with --scale-down)', default: String(DEFAULT_MAX_SECONDS) },
  ],
  notes: [
    'Give one of: --preset NAME; --heads H (--seq S | --grid T,H,W) --head-dim D [--batch B]; or --q, --k, --v files.',
    'Synthetic q and k are smooth functions of each token\'s (t, y, x) plus noise, in tile order, so block maps',
    'are local like a video DiT\'s. Rows per backend: one dense row, then mask and sparse rows per threshold;',
    'rel. error is ||sparse - dense|| / ||dense|| (L2) of the attention output. Progress goes to stderr.',
    '',
    'Presets (docs/nabla.md section 5):',
    ...PRESETS.map((p) => `  ${p.name.padEnd(22)}${p.heads} x ${p.headDim}, grid ${p.grid.join('x')}, thr ${p.threshold}` +
      `${p.sta ? `, sta ${p.sta.join(',')}` : ''}  (${p.model})`),
    '',
    'Example: nabla bench --batch 1 --heads 2 --grid 4,16,16 --head-dim 64 --backend cpu',
  ],
};

// ---------------------------------------------------------------------------------------------
// The shape: tokens are `frames` frames of `frameTokens` tokens, so scaling can drop whole frames.

interface Shape {
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

const seqOf = (s: Shape) => s.frames * s.frameTokens;
const seqKvOf = (s: Shape) => s.seqKv ?? seqOf(s);
const gridOf = (s: Shape): TokenGrid | undefined => (s.frameGrid ? [s.frames, s.frameGrid[0], s.frameGrid[1]] : undefined);
const dimsText = (s: Shape) => `${s.batch}x${s.heads}x${seqOf(s)}x${s.headDim}`;

/** Dense forward FLOPs: 2*S*Skv*D for q.k plus 2*S*Skv*Dv for p.v, per (batch, head). */
function denseFlops(s: Shape): number {
  return 2 * s.batch * s.heads * seqOf(s) * seqKvOf(s) * (s.headDim + s.valueDim);
}

/** A single-frame grid of `blocks` 8x8 tiles, as square as the count allows (for --seq shapes). */
function squareGrid(blocks: number): [number, number] {
  let rows = Math.floor(Math.sqrt(blocks));
  while (blocks % rows !== 0) rows--;
  return [rows * TILE_SIDE, (blocks / rows) * TILE_SIDE];
}

interface Setup {
  shape: Shape;
  preset?: Preset;
  files?: { q: Tensor; k: Tensor; v: Tensor };
  type: DType;
  thresholds: number[];
  method: MaskMethod;
  sta?: StaWindow;
  backends: BenchBackend[];
  device: number;
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

function setup(flags: Flags): Setup {
  const text = (name: string) => flags.get(name) as string | undefined;
  const conflict = (a: string, b: string, why: string) => {
    if (flags.has(a) && flags.has(b)) throw new UsageError(`--${a} cannot be combined with --${b} (${why})`);
  };
  conflict('json', 'csv', 'one output format');
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
      batch: positive(flags, 'batch', 1) as number, heads: p.heads, headDim: p.headDim, valueDim: p.headDim,
      frames: p.grid[0], frameTokens: p.grid[1] * p.grid[2], frameGrid: [p.grid[1], p.grid[2]],
    };
  } else if (fromFiles) {
    const [q, k, v] = ['q', 'k', 'v'].map((f) => loadTensor(text(f) as string));
    // the library's own rules: 4-D, matching batch/heads/head dims, token counts multiples of 64
    const { batch, heads, seqQ, seqKv, headDim, valueDim } = checkQKV(q, k, v);
    if (grid) blockGridFor(grid, seqQ);
    files = type && type !== q.type ? { q: cast(q, type), k: cast(k, type), v: cast(v, type) } : { q, k, v };
    shape = grid && seqKv === seqQ
      ? { batch, heads, headDim, valueDim, frames: grid[0], frameTokens: grid[1] * grid[2], frameGrid: [grid[1], grid[2]] }
      : { batch, heads, headDim, valueDim, frames: 1, frameTokens: seqQ, seqKv };
  } else if (flags.has('heads') || flags.has('seq') || flags.has('grid') || flags.has('head-dim')) {
    const heads = positive(flags, 'heads');
    const headDim = positive(flags, 'head-dim');
    if (heads === undefined) throw new UsageError('missing --heads H (see nabla bench --help)');
    if (headDim === undefined) throw new UsageError('missing --head-dim D (see nabla bench --help)');
    checkHeadDim(headDim, 'head-dim');
    const base = { batch: positive(flags, 'batch', 1) as number, heads, headDim, valueDim: headDim };
    if (grid) shape = { ...base, frames: grid[0], frameTokens: grid[1] * grid[2], frameGrid: [grid[1], grid[2]] };
    else if (flags.has('seq')) shape = { ...base, frames: checkSeq(positive(flags, 'seq') as number, 'seq') / BLOCK_SIZE, frameTokens: BLOCK_SIZE };
    else throw new UsageError('missing --seq S or --grid T,H,W (see nabla bench --help)');
  } else {
    throw new UsageError('give --preset NAME, a shape (--heads H --seq S|--grid T,H,W --head-dim D) or --q, --k, --v files (see nabla bench --help)');
  }

  const thresholds = flags.has('threshold')
    ? (text('threshold') as string).split(',').map((t) => checkThreshold(parseNumber(t, 'threshold')))
    : preset ? [preset.threshold] : SWEEP;
  let sta: StaWindow | undefined = preset?.sta;
  if (flags.has('sta')) {
    sta = text('sta') === 'none' ? undefined : checkWindow(parseIntList(text('sta') as string, 'sta', "3 comma-separated integers wT,wH,wW or 'none'", 3));
    if (sta && !shape.frameGrid) throw new UsageError('--grid T,H,W is required with --sta');
  }
  const device = flags.has('device') ? parseInteger(text('device') as string, 'device') : 0;
  const choice = parseChoice(text('backend') ?? 'auto', 'backend', BACKEND_CHOICES);
  const maxSeconds = flags.has('max-seconds') ? parseNumber(text('max-seconds') as string, 'max-seconds') : DEFAULT_MAX_SECONDS;
  if (!(maxSeconds > 0)) throw new UsageError(`Expected a positive number of seconds for --max-seconds but received '${text('max-seconds')}'`);
  return {
    shape, preset, files,
    type: files ? files.q.type : type ?? 'bfloat16',
    thresholds, sta,
    method: flags.has('method') ? parseChoice(text('method') as string, 'method', MASK_METHODS) : DEFAULT_METHOD,
    backends: chooseBackends(choice, device),
    device,
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
  if (choice === 'all' && !cuda) process.stderr.write(`note: --backend all: cuda unavailable (${reason ?? 'no CUDA device'}); cpu only\n`);
  if (choice === 'all') return cuda ? ['cpu', 'cuda'] : ['cpu'];
  return cuda ? ['cuda'] : ['cpu'];
}

// ---------------------------------------------------------------------------------------------
// Estimate and scale-down

function duration(seconds: number): string {
  if (seconds < 120) return `${seconds.toPrecision(2)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  if (seconds < 2 * 86400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} days`;
}

type Upload = (t: Tensor) => Tensor | DeviceTensor;

function uploader(backend: BenchBackend, device: number): Upload {
  return backend === 'cuda' ? (t) => toDeviceSync(t, { device }) : (t) => t;
}

function release(x: Tensor | DeviceTensor | BlockMask): void {
  if (x instanceof DeviceTensor) x.dispose();
  else if (x instanceof BlockMask) x.dispose();
}

/** Dense attention FLOP/s of a backend on a small zero input of the run's head dim and dtype. */
async function calibrate(backend: BenchBackend, setup: Setup): Promise<number> {
  const { shape, type, device } = setup;
  const seq = Math.min(backend === 'cuda' ? 8192 : 1024, seqOf(shape), seqKvOf(shape));
  const heads = Math.min(backend === 'cuda' ? 8 : 2, shape.heads);
  const probe: Shape = { batch: 1, heads, headDim: shape.headDim, valueDim: shape.valueDim, frames: 1, frameTokens: seq };
  const up = uploader(backend, device);
  const [q, k, v] = [up(zeros([1, heads, seq, shape.headDim], type)), up(zeros([1, heads, seq, shape.headDim], type)), up(zeros([1, heads, seq, shape.valueDim], type))];
  const place = { backend, device };
  let best = Infinity;
  for (let i = 0; i < (backend === 'cuda' ? 4 : 2); i++) {
    const start = performance.now();
    const out = await attention(q, k, v, place);
    if (i > 0) best = Math.min(best, performance.now() - start);
    release(out);
  }
  [q, k, v].forEach(release);
  return denseFlops(probe) / (best / 1e3);
}

/** Seconds of one backend's share: (warmup + iters) x (dense + one sparse run per threshold at density <= 1). */
function backendSeconds(s: Shape, rate: number, setup: Setup): number {
  return (setup.warmup + setup.iters) * (1 + setup.thresholds.length) * (denseFlops(s) / rate);
}

function totalSeconds(s: Shape, rates: Map<BenchBackend, number>, setup: Setup): number {
  const inputs = setup.files ? 0 : (s.batch * s.heads * seqOf(s) * (2 * s.headDim + s.valueDim) * SYNTHETIC_NS_PER_VALUE) / 1e9;
  let total = inputs;
  for (const [, rate] of rates) total += backendSeconds(s, rate, setup);
  return total;
}

/**
 * The largest shape under the budget: batch 1, then the most frames that still fit two heads,
 * then as many heads as fit. Frames are kept over heads: more frames = more blocks per row, which
 * is what makes real masks sparse; heads are statistically alike.
 */
function scaleDown(shape: Shape, fits: (s: Shape) => boolean): Shape | undefined {
  const base = { ...shape, batch: 1 };
  const fewHeads = Math.min(shape.heads, 2);
  for (let frames = shape.frames; frames >= 1; frames--) {
    if (!fits({ ...base, frames, heads: fewHeads })) continue;
    let heads = fewHeads;
    while (heads < shape.heads && fits({ ...base, frames, heads: heads + 1 })) heads++;
    return { ...base, frames, heads };
  }
  return fits({ ...base, frames: 1, heads: 1 }) ? { ...base, frames: 1, heads: 1 } : undefined;
}

function scalingNote(from: Shape, to: Shape, name: string): string {
  const parts: string[] = [];
  if (to.batch !== from.batch) parts.push(`batch ${from.batch} -> ${to.batch}`);
  if (to.heads !== from.heads) parts.push(`heads ${from.heads} -> ${to.heads}`);
  if (to.frames !== from.frames)
    parts.push(from.frameGrid ? `frames ${from.frames} -> ${to.frames}` : `tokens ${seqOf(from)} -> ${seqOf(to)}`);
  return `scaled ${name}: ${parts.join(', ')}`;
}

// ---------------------------------------------------------------------------------------------
// Inputs

/** [0:batch, 0:heads, 0:seq, :] of a [B, H, S, D] tensor (a copy; the tensor itself when whole). */
function leading(t: Tensor, batch: number, heads: number, seq: number): Tensor {
  const [B, H, S, D] = t.dims;
  if (batch === B && heads === H && seq === S) return t;
  const data = new (t.data.constructor as Float32ArrayConstructor | Uint16ArrayConstructor)(batch * heads * seq * D);
  for (let b = 0; b < batch; b++)
    for (let h = 0; h < heads; h++) {
      const from = (b * H + h) * S * D;
      data.set(t.data.subarray(from, from + seq * D), (b * heads + h) * seq * D);
    }
  return { type: t.type, dims: [batch, heads, seq, D], data };
}

function makeInputs(setup: Setup, s: Shape): { q: Tensor; k: Tensor; v: Tensor } {
  if (setup.files) {
    const { q, k, v } = setup.files;
    return { q: leading(q, s.batch, s.heads, seqOf(s)), k: leading(k, s.batch, s.heads, seqKvOf(s)), v: leading(v, s.batch, s.heads, seqKvOf(s)) };
  }
  const grid = gridOf(s) ?? ([1, ...squareGrid(seqOf(s) / BLOCK_SIZE)] as TokenGrid);
  return syntheticQKV(s.batch, s.heads, grid, s.headDim, setup.type);
}

// ---------------------------------------------------------------------------------------------
// Timing, rows, progress

export interface BenchRow {
  op: 'dense' | 'mask' | 'sparse';
  backend: BenchBackend;
  /** CPU model or GPU name. */
  device: string;
  preset: string | null;
  batch: number;
  heads: number;
  seq: number;
  headDim: number;
  /** Token grid 'TxHtxWt', when known. */
  grid: string | null;
  dtype: DType;
  method: MaskMethod | null;
  threshold: number | null;
  sta: string | null;
  /** Kept blocks / all blocks (1 for dense). */
  density: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** Attention FLOPs of the kept blocks per second / 1e12; null for the mask. */
  tflops: number | null;
  /** Dense median / this median (sparse and dense rows). */
  speedup: number | null;
  /** ||out - dense|| / ||dense|| (L2) of the attention output (sparse and dense rows). */
  relError: number | null;
  warmup: number;
  iters: number;
  inputs: 'synthetic' | 'npy';
  /** What --scale-down changed, if anything. */
  scaled: string | null;
  version: string;
  node: string;
  cudaRuntime: string | null;
  driver: string | null;
  build: string;
}

interface Timing {
  medianMs: number;
  minMs: number;
  maxMs: number;
}

async function timeRuns<T extends Tensor | DeviceTensor | BlockMask>(setup: Setup, op: () => Promise<T>, tick: () => void): Promise<{ timing: Timing; last: T }> {
  const times: number[] = [];
  let last: T | undefined;
  for (let i = 0; i < setup.warmup + setup.iters; i++) {
    const start = performance.now();
    const result = await op();
    const ms = performance.now() - start;
    if (i >= setup.warmup) times.push(ms);
    if (last !== undefined) release(last);
    last = result;
    tick();
  }
  times.sort((a, b) => a - b);
  const mid = times.length >> 1;
  const medianMs = times.length % 2 ? times[mid] : (times[mid - 1] + times[mid]) / 2;
  return { timing: { medianMs, minMs: times[0], maxMs: times[times.length - 1] }, last: last as T };
}

async function hostFloats(t: Tensor | DeviceTensor): Promise<Float32Array> {
  return toFloat32Array(await toHost(t));
}

/** ||a - b|| / ||b|| in double precision. */
function relativeL2(a: Float32Array, b: Float32Array): number {
  let diff = 0, norm = 0;
  for (let i = 0; i < b.length; i++) {
    const d = a[i] - b[i];
    diff += d * d;
    norm += b[i] * b[i];
  }
  return norm > 0 ? Math.sqrt(diff / norm) : Math.sqrt(diff);
}

/** Progress on stderr: a bar redrawn with \r on a terminal, plain lines otherwise. */
class Progress {
  private done = 0;
  private readonly tty = Boolean(process.stderr.isTTY);
  private label = '';

  constructor(private readonly total: number) {}

  /** One run finished (redraws the bar on a terminal). */
  tick(): void {
    this.done++;
    if (this.tty) this.draw();
  }

  /** Starts a step: its name is shown on the bar. */
  step(label: string): void {
    this.label = label;
    if (this.tty) this.draw();
  }

  /** A finished step's result, or a note: its own line. */
  line(text: string): void {
    if (this.tty) process.stderr.write(`\r\x1b[K${text}\n`);
    else process.stderr.write(`${text}\n`);
    if (this.tty && this.done < this.total) this.draw();
  }

  finish(): void {
    if (this.tty) process.stderr.write('\r\x1b[K');
  }

  private draw(): void {
    const width = 24;
    const filled = Math.round((width * Math.min(this.done, this.total)) / Math.max(this.total, 1));
    process.stderr.write(`\r\x1b[K[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${this.done}/${this.total} ${this.label}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Machine facts (the header of the table, and fields of every row)

interface Facts {
  cpu: string;
  gpu: string | null;
  cudaLine: string;
  driver: string | null;
  cudaRuntime: string | null;
  build: string;
}

function machineFacts(info: Backends, device: number): Facts {
  const cpus = os.cpus();
  const cpu = `${(cpus[0]?.model ?? 'unknown CPU').trim()} (${cpus.length} cores, ${info.build.cpuThreads} addon threads)`;
  const d = info.devices[device];
  const gpu = info.cuda && d ? deviceText(d) : null;
  const driver = info.cuda ? nvidiaDriver() : null;
  const cudaRuntime = cudaVersionText(info.build.cudaRuntimeVersion);
  const cudaLine = gpu
    ? `cuda: ${gpu}, driver ${driver ?? 'unknown'}, CUDA runtime ${cudaRuntime ?? 'unknown'}`
    : `cuda: unavailable: ${info.reason ?? 'no CUDA device'}`;
  const build = buildText(info.build);
  return { cpu, gpu, cudaLine, driver, cudaRuntime, build };
}

// ---------------------------------------------------------------------------------------------
// Output

const COLUMNS = ['op', 'backend', 'shape', 'threshold', 'density', 'median ms', 'min-max ms', 'TFLOP/s', 'speedup', 'rel. error'];

function ms(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

function markdownRow(r: BenchRow): string[] {
  return [
    r.op, r.backend, `${r.batch}x${r.heads}x${r.seq}x${r.headDim}`,
    r.threshold === null ? '-' : `${r.threshold}${r.sta ? ` +sta ${r.sta}` : ''}`,
    r.density.toFixed(4), ms(r.medianMs), `${ms(r.minMs)}-${ms(r.maxMs)}`,
    r.tflops === null ? '-' : r.tflops.toPrecision(3),
    r.speedup === null ? '-' : `${r.speedup.toFixed(2)}x`,
    r.relError === null ? '-' : r.relError === 0 ? '0' : r.relError.toExponential(2),
  ];
}

function markdown(rows: BenchRow[], header: string[]): string {
  const table = [`| ${COLUMNS.join(' | ')} |`, `|${COLUMNS.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${markdownRow(r).join(' | ')} |`)];
  return [...header, '', ...table, ''].join('\n');
}

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csv(rows: BenchRow[]): string {
  const keys = Object.keys(rows[0]) as (keyof BenchRow)[];
  return [keys.join(','), ...rows.map((r) => keys.map((k) => csvCell(r[k])).join(','))].join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// The run

async function benchBackend(
  backend: BenchBackend, setup: Setup, s: Shape, inputs: { q: Tensor; k: Tensor; v: Tensor }, rowBase: Omit<BenchRow, 'op' | 'backend' | 'device' | 'method' | 'threshold' | 'sta' | 'density' | 'medianMs' | 'minMs' | 'maxMs' | 'tflops' | 'speedup' | 'relError'>,
  device: string, progress: Progress,
): Promise<BenchRow[]> {
  const up = uploader(backend, setup.device);
  const [q, k, v] = [up(inputs.q), up(inputs.k), up(inputs.v)];
  const place = { backend, device: setup.device };
  const flops = denseFlops(s);
  const tick = () => progress.tick();
  const rows: BenchRow[] = [];
  const row = (op: BenchRow['op'], t: Timing, fields: Partial<BenchRow>): BenchRow => ({
    op, backend, device, method: null, threshold: null, sta: null, density: 1, ...t, tflops: null, speedup: null, relError: null, ...rowBase, ...fields,
  } as BenchRow);

  progress.step(`${backend} dense`);
  const dense = await timeRuns(setup, () => attention(q, k, v, place), tick);
  const denseOut = await hostFloats(dense.last);
  release(dense.last);
  rows.push(row('dense', dense.timing, { tflops: flops / (dense.timing.medianMs / 1e3) / 1e12, speedup: 1, relError: 0 }));
  progress.line(`bench: ${backend} dense ${dimsText(s)}: ${ms(dense.timing.medianMs)} ms`);

  for (const threshold of setup.thresholds) {
    const options: MaskOptions = { threshold, method: setup.method, ...place, ...(setup.sta ? { sta: setup.sta, grid: gridOf(s) } : {}) };
    const rule = { method: setup.method, threshold, sta: setup.sta ? setup.sta.join(',') : null };
    progress.step(`${backend} mask thr ${threshold}`);
    const built = await timeRuns(setup, () => nablaMask(q, k, options), tick);
    const mask = built.last;
    const density = mask.density();
    rows.push(row('mask', built.timing, { ...rule, density }));
    progress.step(`${backend} sparse thr ${threshold}`);
    const sparse = await timeRuns(setup, () => blockSparseAttention(q, k, v, mask, place), tick);
    const relError = relativeL2(await hostFloats(sparse.last), denseOut);
    release(sparse.last);
    release(mask);
    rows.push(row('sparse', sparse.timing, {
      ...rule, density, relError,
      tflops: (flops * density) / (sparse.timing.medianMs / 1e3) / 1e12,
      speedup: dense.timing.medianMs / sparse.timing.medianMs,
    }));
    progress.line(`bench: ${backend} thr ${threshold}: density ${density.toFixed(4)}, mask ${ms(built.timing.medianMs)} ms, ` +
      `sparse ${ms(sparse.timing.medianMs)} ms, rel. error ${relError.toExponential(2)}`);
  }
  [q, k, v].forEach(release);
  return rows;
}

/** Mask pictures per threshold and the block map, from CPU masks of the first heads of batch 0. */
async function writePictures(dir: string, setup: Setup, s: Shape, inputs: { q: Tensor; k: Tensor }): Promise<string[]> {
  fs.mkdirSync(dir, { recursive: true });
  const nq = seqOf(s) / BLOCK_SIZE, nk = seqKvOf(s) / BLOCK_SIZE;
  // at most 16 panels, and a map of at most 2^26 floats (256 MiB)
  const heads = Math.max(1, Math.min(s.heads, 16, Math.floor(2 ** 26 / (nq * nk))));
  const q = leading(inputs.q, 1, heads, seqOf(s));
  const k = leading(inputs.k, 1, heads, seqKvOf(s));
  const written: string[] = [];
  for (const [i, threshold] of setup.thresholds.entries()) {
    const options: MaskOptions = {
      threshold, method: setup.method, backend: 'cpu', returnMap: i === 0, ...(setup.sta ? { sta: setup.sta, grid: gridOf(s) } : {}),
    };
    const mask = await nablaMask(q, k, options);
    const file = path.join(dir, `mask-thr${threshold}.png`);
    writePicture(file, maskPicture(mask.toDense(), mask.dims, { threshold }));
    written.push(file);
    if (mask.map) {
      const mapFile = path.join(dir, 'map.png');
      writePicture(mapFile, mapPicture(mask.map, mask.dims, { threshold, densities: mask.headDensities() }));
      written.push(mapFile);
    }
  }
  return written;
}

export async function run(flags: Flags): Promise<void> {
  const setup0 = setup(flags);
  const info = backends();
  const facts = machineFacts(info, setup0.device);
  const name = setup0.preset?.name ?? dimsText(setup0.shape);

  // estimate, then refuse or scale down
  const rates = new Map<BenchBackend, number>();
  for (const b of setup0.backends) rates.set(b, await calibrate(b, setup0));
  const fits = (s: Shape) => totalSeconds(s, rates, setup0) <= setup0.maxSeconds;
  const estimate = totalSeconds(setup0.shape, rates, setup0);
  let shape = setup0.shape;
  let scaled: string | null = null;
  if (!fits(shape)) {
    const where = setup0.backends.join(' + ');
    if (!setup0.scaleDown)
      throw new Error(`estimated ${duration(estimate)} on ${where} for ${name} (${dimsText(shape)}, ${setup0.warmup + setup0.iters} runs of dense + ` +
        `${setup0.thresholds.length} threshold(s)), over --max-seconds ${setup0.maxSeconds}; use --scale-down or a smaller shape`);
    const smaller = scaleDown(shape, fits);
    if (!smaller)
      throw new Error(`even 1 head of 1 frame of ${name} is estimated at ${duration(totalSeconds({ ...shape, batch: 1, heads: 1, frames: 1 }, rates, setup0))} ` +
        `on ${where}, over --max-seconds ${setup0.maxSeconds}; raise --max-seconds`);
    scaled = scalingNote(shape, smaller, name);
    shape = smaller;
  }
  const setupFinal: Setup = { ...setup0, shape };
  const progress = new Progress(setupFinal.backends.length * (setupFinal.warmup + setupFinal.iters) * (1 + 2 * setupFinal.thresholds.length));
  if (scaled) progress.line(`note: ${scaled} (estimated ${duration(totalSeconds(shape, rates, setupFinal))}, full shape ${duration(estimate)}; --max-seconds ${setupFinal.maxSeconds})`);

  progress.step(setupFinal.files ? 'inputs' : 'synthetic inputs');
  const inputs = makeInputs(setupFinal, shape);
  const grid = gridOf(shape);
  const rowBase = {
    preset: setupFinal.preset?.name ?? null,
    batch: shape.batch, heads: shape.heads, seq: seqOf(shape), headDim: shape.headDim,
    grid: grid ? grid.join('x') : null, dtype: setupFinal.type,
    warmup: setupFinal.warmup, iters: setupFinal.iters, inputs: setupFinal.files ? 'npy' as const : 'synthetic' as const,
    scaled, version: VERSION, node: process.version, cudaRuntime: facts.cudaRuntime, driver: facts.driver, build: facts.build,
  };
  const rows: BenchRow[] = [];
  for (const b of setupFinal.backends)
    rows.push(...(await benchBackend(b, setupFinal, shape, inputs, rowBase, b === 'cuda' ? (facts.gpu ?? 'cuda') : facts.cpu, progress)));
  let pictures: string[] = [];
  if (setupFinal.pngDir !== undefined) {
    progress.step('pictures');
    pictures = await writePictures(setupFinal.pngDir, setupFinal, shape, inputs);
  }
  progress.finish();
  for (const file of pictures) process.stderr.write(`wrote ${file}\n`);

  if (setupFinal.format === 'json') {
    process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    return;
  }
  if (setupFinal.format === 'csv') {
    process.stdout.write(csv(rows));
    return;
  }
  const header = [
    `### nabla bench: ${setupFinal.preset ? `${setupFinal.preset.name} (${setupFinal.preset.model})` : name}${scaled ? `; ${scaled}` : ''}`,
    `shape ${dimsText(shape)} (B x H x S x D)${grid ? `, grid ${grid.join('x')}` : ''}, ${setupFinal.type}, ${setupFinal.method}` +
      `${setupFinal.sta ? `, sta ${setupFinal.sta.join(',')}` : ''}, ${rowBase.inputs} inputs, warmup ${setupFinal.warmup}, iters ${setupFinal.iters}`,
    `nabla-attention ${VERSION}, Node ${process.version}, ${process.platform}-${process.arch}`,
    `cpu: ${facts.cpu}`,
    facts.cudaLine,
    `build: ${facts.build}`,
  ].map((line, i) => (i === 0 ? line : `- ${line}`));
  process.stdout.write(markdown(rows, header));
}
