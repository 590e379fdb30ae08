#!/usr/bin/env node
// @ts-check
// Exactly one attention launch on device tensors, for a profiler (Nsight Compute with
// `--kernel-name regex:Attention --launch-count 1`, see bench/gpu-run.sh): dense attention, or
// block-sparse attention over the NABLA mask at a threshold (the mask kernels run first; their
// names do not contain "Attention"). Inputs as gpu-check's timings: structured q and k (waveTokens,
// local block maps), uniform v, bf16.
//
//   node bench/one-launch.js dense|sparse [--shape small|720p] [--threshold T] [--kernel K] [--backend cpu]
//
// --shape      small = B1 H8 S16384 (16x32x32) D128 (default); 720p = the REFERENCE_PRESET
//              (wan2.1-14b-720p, 2 generated heads replicated over its 40)
// --threshold  NABLA cdf threshold of the sparse mask (default 0.7)
// --kernel     attention kernel option (default: NABLA_ATTENTION_KERNEL or 'auto')
// --backend    cpu: run the same code on the CPU backend at the tiny self-test shape (checks the
//              script without a GPU; nothing to profile)
'use strict';
const nabla = require('../dist');
const { REFERENCE_PRESET, findPreset } = require('../dist/presets');
const { uniform, waveTokens } = require('../dist/synthetic');

/** @typedef {import('../dist').TokenGrid} TokenGrid */

const USAGE =
  'usage: node bench/one-launch.js dense|sparse [--shape small|720p] [--threshold T] [--kernel K] [--backend cpu]';

/** @param {string[]} argv */
function parseArgs(argv) {
  /** @type {{ what?: string, shape: string, threshold: number, kernel?: string, backend: string }} */
  const a = { what: undefined, shape: 'small', threshold: 0.7, kernel: undefined, backend: 'cuda' };
  /** @param {number} i @param {string} name */
  const value = (i, name) => {
    if (i + 1 >= argv.length) throw new Error(`${name} needs a value`);
    return argv[i + 1];
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    if (f === 'dense' || f === 'sparse') a.what = f;
    else if (f === '--shape') a.shape = value(i++, f);
    else if (f === '--threshold') a.threshold = Number(value(i++, f));
    else if (f === '--kernel') a.kernel = value(i++, f);
    else if (f === '--backend') a.backend = value(i++, f);
    else if (f === '--help' || f === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${f}`);
  }
  if (a.what === undefined) throw new Error('say dense or sparse');
  if (!['small', '720p'].includes(a.shape)) throw new Error(`--shape must be small or 720p, not ${a.shape}`);
  if (!['cuda', 'cpu'].includes(a.backend)) throw new Error(`--backend must be cuda or cpu, not ${a.backend}`);
  if (!(a.threshold > 0 && a.threshold <= 1)) throw new Error('--threshold must be in (0, 1]');
  return a;
}

/** @type {ReturnType<typeof parseArgs>} */
let args;
try {
  args = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(`one-launch: ${e instanceof Error ? e.message : e}\n${USAGE}`);
  process.exit(2);
}

const ON_CUDA = args.backend === 'cuda';
if (ON_CUDA && !nabla.backends().cuda) {
  console.error(`one-launch: no CUDA device (${nabla.backends().reason ?? 'unknown reason'})`);
  process.exit(1);
}

/** @returns {{ name: string, H: number, grid: TokenGrid, D: number, genHeads: number }} */
function shapeOf() {
  if (!ON_CUDA) return { name: 'selftest', H: 2, grid: [2, 16, 16], D: 64, genHeads: 2 };
  if (args.shape === 'small') return { name: 'small', H: 8, grid: [16, 32, 32], D: 128, genHeads: 8 };
  const preset = findPreset(REFERENCE_PRESET);
  if (!preset) throw new Error(`no preset ${REFERENCE_PRESET}`);
  return { name: preset.name, H: preset.heads, grid: [...preset.grid], D: preset.headDim, genHeads: 2 };
}

const s = shapeOf();
const S = s.grid[0] * s.grid[1] * s.grid[2];
const dims = [1, s.H, S, s.D];

/**
 * bf16 bits of `genHeads` generated heads replicated over H.
 * @param {number} seed
 * @param {boolean} structured
 */
function input(seed, structured) {
  const one = structured ? waveTokens(1, s.genHeads, s.grid, s.D, seed) : uniform(s.genHeads * S * s.D, seed);
  const bits = /** @type {Uint16Array} */ (nabla.fromFloat32(one, 'bfloat16'));
  const out = new Uint16Array(s.H * S * s.D);
  for (let h = 0; h < s.H; h++)
    out.set(bits.subarray((h % s.genHeads) * S * s.D, ((h % s.genHeads) + 1) * S * s.D), h * S * s.D);
  return nabla.tensor(out, dims, 'bfloat16');
}

const place = /** @type {const} */ ({ backend: ON_CUDA ? 'cuda' : 'cpu' });
/** @param {import('../dist').Tensor} t */
const put = (t) => (ON_CUDA ? nabla.toDeviceSync(t) : t);
const q = put(input(101, true)),
  k = put(input(102, true)),
  v = put(input(103, false));
const options = {
  ...place,
  ...(args.kernel ? { kernel: /** @type {import('../dist').AttentionKernel} */ (args.kernel) } : {}),
};
const nq = S / nabla.BLOCK_SIZE;
let density = 1;
let tiles = s.H * nq * nq; // (query block, key block) pairs the launch computes
const t0 = process.hrtime.bigint();
if (args.what === 'dense') {
  nabla.attentionSync(q, k, v, options);
} else {
  const mask = nabla.nablaMaskSync(q, k, { threshold: args.threshold, ...place });
  const t1 = process.hrtime.bigint();
  nabla.blockSparseAttentionSync(q, k, v, mask, options);
  const ms = Number(process.hrtime.bigint() - t1) / 1e6;
  density = mask.density(); // read after the launch: reading it downloads the lists
  tiles = mask.kvCounts.reduce((sum, n) => sum + n, 0);
  console.log(`one-launch: sparse attention ${ms.toFixed(3)} ms (one launch, untuned clocks)`);
}
const total = Number(process.hrtime.bigint() - t0) / 1e6;
console.log(
  `one-launch: ${args.what} ${s.name} B1 H${s.H} S${S} (${s.grid.join('x')}) D${s.D} bf16` +
    `${args.what === 'sparse' ? ` thr ${args.threshold} density ${density.toFixed(4)}` : ''}, ${place.backend}, ${total.toFixed(3)} ms in all`,
);
// read by bench/ncu_table.py to put the profiler's counts per tile
console.log(`one-launch: tiles ${tiles}`);
