// `nabla bench` run: times dense attention, then the mask and block-sparse attention per threshold,
// on one backend, and measures the error the mask costs against the dense output.
import { performance } from 'perf_hooks';
import { attention, blockSparseAttention } from '../../attention';
import { DeviceTensor, toDeviceSync, toHost } from '../../device';
import { BlockMask, MaskOptions, nablaMask } from '../../mask';
import { Tensor, toFloat32Array } from '../../tensor';
import { summarize } from '../../timing';
import { Inputs } from './inputs';
import { BenchBackend, Setup, Shape, denseFlops, dimsText, gridOf, gridRule } from './options';
import { Progress } from './progress';
import { BenchRow, RowBase, ms } from './report';

export type Upload = (t: Tensor) => Tensor | DeviceTensor;

export function uploader(backend: BenchBackend, device: number): Upload {
  return backend === 'cuda' ? (t) => toDeviceSync(t, { device }) : (t) => t;
}

export function release(x: Tensor | DeviceTensor | BlockMask): void {
  if (x instanceof DeviceTensor) x.dispose();
  else if (x instanceof BlockMask) x.dispose();
}

interface Timing {
  medianMs: number;
  minMs: number;
  maxMs: number;
}

async function timeRuns<T extends Tensor | DeviceTensor | BlockMask>(
  setup: Setup,
  op: () => Promise<T>,
  tick: () => void,
): Promise<{ timing: Timing; last: T }> {
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
  const { median, min, max } = summarize(times);
  return { timing: { medianMs: median, minMs: min, maxMs: max }, last: last as T };
}

async function hostFloats(t: Tensor | DeviceTensor): Promise<Float32Array> {
  return toFloat32Array(await toHost(t));
}

/** ||a - b|| / ||b|| in double precision. */
function relativeL2(a: Float32Array, b: Float32Array): number {
  let diff = 0,
    norm = 0;
  for (let i = 0; i < b.length; i++) {
    const d = a[i] - b[i];
    diff += d * d;
    norm += b[i] * b[i];
  }
  return norm > 0 ? Math.sqrt(diff / norm) : Math.sqrt(diff);
}

export async function benchBackend(
  backend: BenchBackend,
  setup: Setup,
  s: Shape,
  inputs: Inputs,
  rowBase: RowBase,
  device: string,
  progress: Progress,
): Promise<BenchRow[]> {
  const up = uploader(backend, setup.device);
  const [q, k, v] = [up(inputs.q), up(inputs.k), up(inputs.v)];
  const place = { backend, device: setup.device };
  const flops = denseFlops(s);
  const tick = () => progress.tick();
  const rows: BenchRow[] = [];
  const row = (op: BenchRow['op'], t: Timing, fields: Partial<BenchRow>): BenchRow =>
    ({
      op,
      backend,
      device,
      method: null,
      threshold: null,
      sta: null,
      density: 1,
      ...t,
      tflops: null,
      speedup: null,
      relError: null,
      ...rowBase,
      ...fields,
    }) as BenchRow;

  progress.step(`${backend} dense`);
  const grid = gridOf(s);
  const dense = await timeRuns(setup, () => attention(q, k, v, { ...place, ...(grid ? { grid } : {}) }), tick);
  const denseOut = await hostFloats(dense.last);
  release(dense.last);
  rows.push(
    row('dense', dense.timing, { tflops: flops / (dense.timing.medianMs / 1e3) / 1e12, speedup: 1, relError: 0 }),
  );
  progress.line(`bench: ${backend} dense ${dimsText(s)}: ${ms(dense.timing.medianMs)} ms`);

  for (const threshold of setup.thresholds) {
    const options: MaskOptions = { threshold, method: setup.method, ...place, ...gridRule(setup, s) };
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
    rows.push(
      row('sparse', sparse.timing, {
        ...rule,
        density,
        relError,
        tflops: (flops * density) / (sparse.timing.medianMs / 1e3) / 1e12,
        speedup: dense.timing.medianMs / sparse.timing.medianMs,
      }),
    );
    progress.line(
      `bench: ${backend} thr ${threshold}: density ${density.toFixed(4)}, mask ${ms(built.timing.medianMs)} ms, ` +
        `sparse ${ms(sparse.timing.medianMs)} ms, rel. error ${relError.toExponential(2)}`,
    );
  }
  [q, k, v].forEach(release);
  return rows;
}
