// `nabla bench`: times the NABLA mask, block-sparse attention over it and dense attention on a
// model's real shape (--preset), a given shape or q/k/v .npy files, and prints one table: ms,
// effective TFLOP/s, density, speedup and the error the mask costs. Never asserts timings.
//
// bench/options.ts reads the flags, bench/estimate.ts refuses or scales down a run over
// --max-seconds, bench/run.ts times each backend, bench/report.ts prints the rows.
import { backends } from '../backend';
import { VERSION } from '../version';
import * as fs from 'fs';
import { Flags } from './args';
import { OutputFiles, writeAllOrNothing } from './output';
import { duration, plan } from './bench/estimate';
import { makeInputs } from './bench/inputs';
import { Setup, gridOf, readSetup, seqOf } from './bench/options';
import { Progress } from './bench/progress';
import { BenchRow, RowBase, formatRows, headerLines, machineFacts, pictureFiles, stagePictures } from './bench/report';
import { benchBackend } from './bench/run';

export { spec } from './bench/options';
export type { BenchRow } from './bench/report';

export async function run(flags: Flags): Promise<void> {
  const asked = readSetup(flags);
  // --png DIR is made if missing, and its files are checked before any work (all or nothing)
  const outputs = new OutputFiles({
    q: flags.get('q') as string | undefined,
    k: flags.get('k') as string | undefined,
    v: flags.get('v') as string | undefined,
  });
  const madeDir = asked.pngDir !== undefined && !fs.existsSync(asked.pngDir);
  if (asked.pngDir !== undefined) {
    fs.mkdirSync(asked.pngDir, { recursive: true });
    for (const file of pictureFiles(asked.pngDir, asked)) outputs.plan('png', file);
  }
  try {
    await writeAllOrNothing(outputs, () => measure(asked, outputs));
  } catch (err) {
    if (madeDir) fs.rmdirSync(asked.pngDir as string); // the folder this run made (empty again: nothing was committed)
    throw err;
  }
}

async function measure(asked: Setup, outputs: OutputFiles): Promise<void> {
  const facts = machineFacts(backends(), asked.device);
  const { shape, scaled, estimate, planned } = await plan(asked);
  const setup: Setup = { ...asked, shape };
  const progress = new Progress(
    setup.backends.length * (setup.warmup + setup.iters) * (1 + 2 * setup.thresholds.length),
  );
  if (scaled)
    progress.line(
      `note: ${scaled} (estimated ${duration(planned)}, full shape ${duration(estimate)}; --max-seconds ${setup.maxSeconds})`,
    );

  progress.step(setup.files ? 'inputs' : 'synthetic inputs');
  const inputs = makeInputs(setup, shape);
  const grid = gridOf(shape);
  const rowBase: RowBase = {
    preset: setup.preset?.name ?? null,
    batch: shape.batch,
    heads: shape.heads,
    seq: seqOf(shape),
    headDim: shape.headDim,
    grid: grid ? grid.join('x') : null,
    dtype: setup.type,
    warmup: setup.warmup,
    iters: setup.iters,
    inputs: setup.files ? 'npy' : 'synthetic',
    scaled,
    version: VERSION,
    node: process.version,
    cudaRuntime: facts.cudaRuntime,
    driver: facts.driver,
    build: facts.build,
  };
  const rows: BenchRow[] = [];
  for (const b of setup.backends)
    rows.push(
      ...(await benchBackend(
        b,
        setup,
        shape,
        inputs,
        rowBase,
        b === 'cuda' ? (facts.gpu ?? 'cuda') : facts.cpu,
        progress,
      )),
    );
  let pictures: string[] = [];
  if (setup.pngDir !== undefined) {
    progress.step('pictures');
    pictures = await stagePictures(outputs, setup.pngDir, setup, shape, inputs);
  }
  progress.finish();
  for (const file of pictures) process.stderr.write(`wrote ${file}\n`);
  process.stdout.write(formatRows(rows, setup.format, headerLines(asked, shape, scaled, rowBase.inputs, facts)));
}
