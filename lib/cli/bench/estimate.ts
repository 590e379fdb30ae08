// `nabla bench` estimate: a small dense calibration run per backend gives FLOP/s; the run's FLOPs
// over it estimate the wall time. Runs over --max-seconds are refused, or shrunk with --scale-down.
import { performance } from 'perf_hooks';
import { attention } from '../../attention';
import { zeros } from '../../tensor';
import { BLOCK_SIZE } from '../../shapes';
import { BenchBackend, Setup, Shape, denseFlops, dimsText, seqKvOf, seqOf } from './options';
import { release } from '../../mask';
import { uploader } from './run';

/** Rough cost of one synthetic input value on one core (estimate only). */
const SYNTHETIC_NS_PER_VALUE = 25;

export function duration(seconds: number): string {
  if (seconds < 120) return `${seconds.toPrecision(2)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  if (seconds < 2 * 86400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} days`;
}

/** Dense attention FLOP/s of a backend on a small zero input of the run's head dim and dtype. */
async function calibrate(backend: BenchBackend, setup: Setup): Promise<number> {
  const { shape, type, device } = setup;
  // a multiple of 64 (blocks of 64, no grid): a ragged grid's token count is rounded down
  const seq = Math.max(
    BLOCK_SIZE,
    Math.floor(Math.min(backend === 'cuda' ? 8192 : 1024, seqOf(shape), seqKvOf(shape)) / BLOCK_SIZE) * BLOCK_SIZE,
  );
  const heads = Math.min(backend === 'cuda' ? 8 : 2, shape.heads);
  const probe: Shape = {
    batch: 1,
    heads,
    headDim: shape.headDim,
    valueDim: shape.valueDim,
    frames: 1,
    frameTokens: seq,
  };
  const up = uploader(backend, device);
  const [q, k, v] = [
    up(zeros([1, heads, seq, shape.headDim], type)),
    up(zeros([1, heads, seq, shape.headDim], type)),
    up(zeros([1, heads, seq, shape.valueDim], type)),
  ];
  // the kernel asked for, so that the estimate is that kernel's (a slow one may not fit)
  const options = { backend, device, ...setup.kernels.attention };
  let best = Infinity;
  for (let i = 0; i < (backend === 'cuda' ? 4 : 2); i++) {
    const start = performance.now();
    const out = await attention(q, k, v, options);
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
  const inputs = setup.files
    ? 0
    : (s.batch * s.heads * seqOf(s) * (2 * s.headDim + s.valueDim) * SYNTHETIC_NS_PER_VALUE) / 1e9;
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

export interface Plan {
  /** The shape to run: the asked one, or a smaller one under --scale-down. */
  shape: Shape;
  /** What --scale-down changed, if anything. */
  scaled: string | null;
  /** Estimated seconds of the asked shape and of the one to run. */
  estimate: number;
  planned: number;
}

/** Calibrates every backend, then keeps the shape, scales it down or refuses with the estimate. */
export async function plan(setup: Setup): Promise<Plan> {
  const name = setup.preset?.name ?? dimsText(setup.shape);
  const rates = new Map<BenchBackend, number>();
  for (const b of setup.backends) rates.set(b, await calibrate(b, setup));
  const fits = (s: Shape) => totalSeconds(s, rates, setup) <= setup.maxSeconds;
  const estimate = totalSeconds(setup.shape, rates, setup);
  const shape = setup.shape;
  if (fits(shape)) return { shape, scaled: null, estimate, planned: estimate };
  const where = setup.backends.join(' + ');
  if (!setup.scaleDown)
    throw new Error(
      `estimated ${duration(estimate)} on ${where} for ${name} (${dimsText(shape)}, ${setup.warmup + setup.iters} runs of dense + ` +
        `${setup.thresholds.length} threshold(s)), over --max-seconds ${setup.maxSeconds}; use --scale-down or a smaller shape`,
    );
  const smaller = scaleDown(shape, fits);
  if (!smaller)
    throw new Error(
      `even 1 head of 1 frame of ${name} is estimated at ${duration(totalSeconds({ ...shape, batch: 1, heads: 1, frames: 1 }, rates, setup))} ` +
        `on ${where}, over --max-seconds ${setup.maxSeconds}; raise --max-seconds`,
    );
  return {
    shape: smaller,
    scaled: scalingNote(shape, smaller, name),
    estimate,
    planned: totalSeconds(smaller, rates, setup),
  };
}
