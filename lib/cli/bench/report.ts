// `nabla bench` report: the machine facts, the rows, and the table as markdown, JSON or CSV; the
// mask pictures of --png.
import * as os from 'os';
import * as path from 'path';
import { AttentionKernelRan, Backends, MaskKernelRan } from '../../backend';
import { DType } from '../../dtype';
import { MaskOptions, blockCount, nablaMask } from '../../mask';
import { mapPicture, maskPicture, writePicture } from '../../pictures';
import { MaskMethod } from '../../shapes';
import { VERSION } from '../../version';
import { buildText, cudaVersionText, deviceText, nvidiaDriver } from '../facts';
import { OutputFiles } from '../output';
import { Inputs, leading } from './inputs';
import { BenchBackend, Setup, Shape, dimsText, gridOf, gridRule, seqKvOf, seqOf } from './options';

export interface BenchRow {
  op: 'dense' | 'mask' | 'sparse';
  backend: BenchBackend;
  /** CPU model or GPU name. */
  device: string;
  /** The kernel that ran the op, as the op reports it: 'cpu-avx2', 'cuda-fast', ... (the mask on the CPU: 'cpu'). */
  kernel: AttentionKernelRan | MaskKernelRan;
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

/** The fields every row of one run shares. */
export type RowBase = Omit<
  BenchRow,
  | 'op'
  | 'backend'
  | 'device'
  | 'kernel'
  | 'method'
  | 'threshold'
  | 'sta'
  | 'density'
  | 'medianMs'
  | 'minMs'
  | 'maxMs'
  | 'tflops'
  | 'speedup'
  | 'relError'
>;

// ---------------------------------------------------------------------------------------------
// Machine facts (the header of the table, and fields of every row)

export interface Facts {
  cpu: string;
  gpu: string | null;
  cudaLine: string;
  driver: string | null;
  cudaRuntime: string | null;
  build: string;
}

export function machineFacts(info: Backends, device: number): Facts {
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

/** The markdown table's columns, in order. */
export const COLUMNS = [
  'op',
  'backend',
  'kernel',
  'shape',
  'threshold',
  'density',
  'median ms',
  'min-max ms',
  'TFLOP/s',
  'speedup',
  'rel. error',
];

export function ms(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

function markdownRow(r: BenchRow): string[] {
  return [
    r.op,
    r.backend,
    r.kernel,
    `${r.batch}x${r.heads}x${r.seq}x${r.headDim}`,
    r.threshold === null ? '-' : `${r.threshold}${r.sta ? ` +sta ${r.sta}` : ''}`,
    r.density.toFixed(4),
    ms(r.medianMs),
    `${ms(r.minMs)}-${ms(r.maxMs)}`,
    r.tflops === null ? '-' : r.tflops.toPrecision(3),
    r.speedup === null ? '-' : `${r.speedup.toFixed(2)}x`,
    r.relError === null ? '-' : r.relError === 0 ? '0' : r.relError.toExponential(2),
  ];
}

function markdown(rows: BenchRow[], header: string[]): string {
  const table = [
    `| ${COLUMNS.join(' | ')} |`,
    `|${COLUMNS.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${markdownRow(r).join(' | ')} |`),
  ];
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

/** The header lines of the markdown table: what ran, where, with which build. */
export function headerLines(
  setup: Setup,
  shape: Shape,
  scaled: string | null,
  inputs: 'synthetic' | 'npy',
  facts: Facts,
): string[] {
  const name = setup.preset ? `${setup.preset.name} (${setup.preset.model})` : dimsText(setup.shape);
  const grid = gridOf(shape);
  return [
    `### nabla bench: ${name}${scaled ? `; ${scaled}` : ''}`,
    `shape ${dimsText(shape)} (B x H x S x D)${grid ? `, grid ${grid.join('x')}` : ''}, ${setup.type}, ${setup.method}` +
      `${setup.sta ? `, sta ${setup.sta.join(',')}` : ''}${setup.causal ? ', causal' : ''}, ${inputs} inputs, warmup ${setup.warmup}, iters ${setup.iters}`,
    `nabla-attention ${VERSION}, Node ${process.version}, ${process.platform}-${process.arch}`,
    `cpu: ${facts.cpu}`,
    facts.cudaLine,
    `build: ${facts.build}`,
  ].map((line, i) => (i === 0 ? line : `- ${line}`));
}

/** The rows in the chosen format: a markdown table under `header`, one JSON array, or CSV. */
export function formatRows(rows: BenchRow[], format: Setup['format'], header: string[]): string {
  if (format === 'json') return JSON.stringify(rows, null, 2) + '\n';
  if (format === 'csv') return csv(rows);
  return markdown(rows, header);
}

/** Mask pictures per threshold and the block map, from CPU masks of the first heads of batch 0. */
/** The files of --png DIR: mask-thr<T>.png per threshold and map.png (the first threshold's map). */
export function pictureFiles(dir: string, setup: Setup): string[] {
  return [...setup.thresholds.map((t) => path.join(dir, `mask-thr${t}.png`)), path.join(dir, 'map.png')];
}

/** Stages the pictures of pictureFiles() in `outputs` (planned before the run); returns their paths. */
export async function stagePictures(
  outputs: OutputFiles,
  dir: string,
  setup: Setup,
  s: Shape,
  inputs: Pick<Inputs, 'q' | 'k'>,
): Promise<string[]> {
  const nq = blockCount(seqOf(s), gridOf(s)),
    nk = blockCount(seqKvOf(s), gridOf(s));
  // at most 16 panels, and a map of at most 2^26 floats (256 MiB)
  const heads = Math.max(1, Math.min(s.heads, 16, Math.floor(2 ** 26 / (nq * nk))));
  const q = leading(inputs.q, 1, heads, seqOf(s));
  const k = leading(inputs.k, 1, heads, seqKvOf(s));
  const [mapFile, ...maskFiles] = [...pictureFiles(dir, setup)].reverse();
  maskFiles.reverse();
  for (const [i, threshold] of setup.thresholds.entries()) {
    const options: MaskOptions = {
      threshold,
      method: setup.method,
      backend: 'cpu',
      returnMap: i === 0,
      ...gridRule(setup, s),
    };
    const mask = await nablaMask(q, k, options);
    outputs.stage(maskFiles[i], (temp) => writePicture(temp, maskPicture(mask.toDense(), mask.dims, { threshold })));
    const map = mask.map;
    if (map)
      outputs.stage(mapFile, (temp) =>
        writePicture(temp, mapPicture(map, mask.dims, { threshold, densities: mask.headDensities() })),
      );
  }
  return [...maskFiles, mapFile];
}
