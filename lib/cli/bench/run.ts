// `nabla bench` run: times dense attention, then the mask and block-sparse attention per threshold,
// on one backend, and measures the error the mask costs against the dense output.
import { performance } from 'perf_hooks';
import { AttentionRan, attentionRan } from '../../attention';
import { DeviceTensor, toDeviceSync, toHost } from '../../device';
import { BlockMask, MaskOptions, nablaMaskRan, release } from '../../mask';
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

interface Timing {
  medianMs: number;
  minMs: number;
  maxMs: number;
}

/** What one run of an op gives: its result and the kernel that computed it (as the op reports it). */
interface Ran<T> {
  result: T;
  kernel: BenchRow['kernel'];
}

/** Times warmup + iters runs of `op`; returns the timing and the last run's result and kernel. */
async function timeRuns<T extends Tensor | DeviceTensor | BlockMask>(
  setup: Setup,
  op: () => Promise<Ran<T>>,
  tick: () => void,
): Promise<{ timing: Timing } & Ran<T>> {
  const times: number[] = [];
  let last: Ran<T> | undefined;
  for (let i = 0; i < setup.warmup + setup.iters; i++) {
    const start = performance.now();
    const ran = await op();
    const ms = performance.now() - start;
    if (i >= setup.warmup) times.push(ms);
    if (last !== undefined) release(last.result);
    last = ran;
    tick();
  }
  const { median, min, max } = summarize(times);
  return { timing: { medianMs: median, minMs: min, maxMs: max }, ...(last as Ran<T>) };
}

/** attentionRan's report as a Ran. */
function attentionResult(ran: AttentionRan): Ran<Tensor | DeviceTensor> {
  return { result: ran.output, kernel: ran.kernel };
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
  const attend = { ...place, ...setup.kernels.attention };
  const flops = denseFlops(s);
  const tick = () => progress.tick();
  const rows: BenchRow[] = [];
  const row = (op: BenchRow['op'], kernel: BenchRow['kernel'], t: Timing, fields: Partial<BenchRow>): BenchRow =>
    ({
      op,
      backend,
      device,
      kernel,
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
  const dense = await timeRuns(
    setup,
    () => attentionRan(q, k, v, undefined, { ...attend, ...(grid ? { grid } : {}) }, true).then(attentionResult),
    tick,
  );
  const denseOut = await hostFloats(dense.result);
  release(dense.result);
  rows.push(
    row('dense', dense.kernel, dense.timing, {
      tflops: flops / (dense.timing.medianMs / 1e3) / 1e12,
      speedup: 1,
      relError: 0,
    }),
  );
  progress.line(`bench: ${backend} dense ${dimsText(s)}: ${ms(dense.timing.medianMs)} ms`);

  for (const threshold of setup.thresholds) {
    const options: MaskOptions = {
      threshold,
      method: setup.method,
      ...place,
      ...setup.kernels.mask,
      ...gridRule(setup, s),
    };
    const rule = { method: setup.method, threshold, sta: setup.sta ? setup.sta.join(',') : null };
    progress.step(`${backend} mask thr ${threshold}`);
    const built = await timeRuns(
      setup,
      () => nablaMaskRan(q, k, options, true).then((ran) => ({ result: ran.mask, kernel: ran.kernel })),
      tick,
    );
    const mask = built.result;
    const density = mask.density();
    rows.push(row('mask', built.kernel, built.timing, { ...rule, density }));
    progress.step(`${backend} sparse thr ${threshold}`);
    const sparse = await timeRuns(setup, () => attentionRan(q, k, v, mask, attend, true).then(attentionResult), tick);
    const relError = relativeL2(await hostFloats(sparse.result), denseOut);
    release(sparse.result);
    release(mask);
    rows.push(
      row('sparse', sparse.kernel, sparse.timing, {
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
