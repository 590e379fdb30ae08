#!/usr/bin/env node
// @ts-check
// GPU check: correctness of every CUDA op against the CPU backend (the oracle) and an fp64
// reference, then timings of the mask, block-sparse and dense attention at a small shape and at
// the wan2.1-14b-720p preset. Both mma.sync kernels, 'fast' and the opt-in 'fast2', are checked and
// timed in the same run on the same inputs and masks (one dense row and one sparse row per
// threshold each, the sparse rate against the same kernel's dense rate). Plain CommonJS on the compiled package (dist/) and the addon
// (build/Release): no npm needed, so it runs on the GPU machine as it is (see bench/gpu-run.sh).
// The oracle (fp64 reference, comparisons, check masks, poisoned-output runner) is dist/oracle,
// the one the jest suites use; test/gpu-check.test.ts runs this script's --backend cpu self-test.
//
//   node bench/gpu-check.js [--quick] [--out DIR] [--export-dir DIR] [--iters N] [--require-cuda]
//                           [--sanitizer] [--no-720p] [--gen-heads N] [--backend cpu]
//
// --quick          fewer timing iterations (3) and fewer distinct 720p heads
// --out DIR        also write gpu-check.md (all tables), gpu-check.json (all rows), meta.json, and
//                  the .npy files for bench/compare_torch.py: every timed shape's masks, and the
//                  small shape's q/k/v and output
// --export-dir D   where the (large) .npy files go; default: the --out DIR
// --iters N        timed iterations per measurement (median reported; default 10, 3 with --quick)
// --require-cuda   exit 1 (not 0) when no CUDA device can be used (also NABLA_REQUIRE_CUDA=1)
// --sanitizer      (alias --sanitizer-shape) correctness section only, on tiny shapes, for
//                  compute-sanitizer runs; no timings, no files
// --no-720p        skip the 720p preset in the timing section
// --gen-heads N    distinct heads generated for the 720p inputs (replicated to 40; default 4)
// --backend cpu    DEVELOPER SELF-TEST OF THIS SCRIPT: runs the same code paths on the CPU backend
//                  at tiny shapes (CPU vs CPU). Its numbers say nothing about the GPU.
//
// Exit code: 0 when every correctness row passes (or when there is no CUDA device), 1 otherwise.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const nabla = require('../dist');
const { saveNpy } = require('../dist/npy');
const { attentionFlops } = require('../dist/flops');
const { REFERENCE_PRESET, THRESHOLD_SWEEP, findPreset } = require('../dist/presets');
const { randn, uniform, waveTokens } = require('../dist/synthetic');
const { summarize } = require('../dist/timing');
const oracle = require('../dist/oracle');
const { markdownTable } = require('./common');
const { blockPoolRan, nablaMaskRan } = require('../dist/mask');

/**
 * @typedef {import('../dist').DType} DType
 * @typedef {import('../dist').Tensor} Tensor
 * @typedef {import('../dist').DeviceTensor} DeviceTensor
 * @typedef {import('../dist').BlockMask} BlockMask
 * @typedef {import('../dist').MaskOptions} MaskOptions
 * @typedef {import('../dist').MaskKernel} MaskKernel
 * @typedef {import('../dist').TokenGrid} TokenGrid
 * @typedef {Record<string, unknown>} Row a table row: column -> cell
 */

// ---------------------------------------------------------------------------------------------
// Arguments

const USAGE = `usage: node bench/gpu-check.js [--quick] [--out DIR] [--export-dir DIR] [--iters N] [--require-cuda]
                                  [--sanitizer] [--no-720p] [--gen-heads N] [--backend cpu]`;

/**
 * @typedef {{ quick: boolean, out?: string, exportDir?: string, iters?: number, requireCuda: boolean,
 *   sanitizer: boolean, big: boolean, genHeads?: number, backend: string }} Args
 */

/**
 * @param {string[]} argv
 * @returns {Args}
 */
function parseArgs(argv) {
  /** @type {Args} */
  const a = {
    quick: false,
    out: undefined,
    exportDir: undefined,
    iters: undefined,
    requireCuda: false,
    sanitizer: false,
    big: true,
    genHeads: undefined,
    backend: 'cuda',
  };
  /**
   * @param {number} i
   * @param {string} name
   */
  const value = (i, name) => {
    if (i + 1 >= argv.length) throw new Error(`${name} needs a value\n${USAGE}`);
    return argv[i + 1];
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    if (f === '--quick') a.quick = true;
    else if (f === '--out') a.out = value(i++, f);
    else if (f === '--export-dir') a.exportDir = value(i++, f);
    else if (f === '--iters') a.iters = Number(value(i++, f));
    else if (f === '--require-cuda') a.requireCuda = true;
    else if (f === '--sanitizer' || f === '--sanitizer-shape') a.sanitizer = true;
    else if (f === '--no-720p') a.big = false;
    else if (f === '--gen-heads') a.genHeads = Number(value(i++, f));
    else if (f === '--backend') a.backend = value(i++, f);
    else if (f === '--help' || f === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${f}\n${USAGE}`);
  }
  if (!['cuda', 'cpu'].includes(a.backend)) throw new Error(`--backend must be cuda or cpu\n${USAGE}`);
  if (a.iters !== undefined && !(Number.isInteger(a.iters) && a.iters >= 1))
    throw new Error('--iters must be a positive integer');
  if (a.genHeads !== undefined && !(Number.isInteger(a.genHeads) && a.genHeads >= 1))
    throw new Error('--gen-heads must be a positive integer');
  if (process.env.NABLA_REQUIRE_CUDA === '1') a.requireCuda = true;
  return a;
}

/** @type {Args} */
let args;
try {
  args = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(`gpu-check: ${e instanceof Error ? e.message : e}`);
  process.exit(2);
}

const SELF_TEST = args.backend === 'cpu';
const info = nabla.backends();
if (!SELF_TEST && !info.cuda) {
  console.log(`gpu-check: no CUDA device (${info.reason ?? 'unknown reason'})`);
  process.exit(args.requireCuda ? 1 : 0);
}

const CPU = /** @type {const} */ ({ backend: 'cpu' });
/** Where the checked ops run: CUDA, or the CPU backend in the developer self-test. */
const DEV = SELF_TEST ? /** @type {const} */ ({ backend: 'cpu' }) : /** @type {const} */ ({ backend: 'cuda' });
const DEVICE_INDEX = SELF_TEST ? 0 : info.devices[0].index;
const ITERS = args.iters ?? (args.quick ? 3 : 10);
const WARMUP = 2;
const SELF_TEST_BANNER =
  'SELF-TEST OF bench/gpu-check.js ON THE CPU BACKEND (CPU vs CPU, tiny shapes): NOT A GPU RESULT';

// ---------------------------------------------------------------------------------------------
// Helpers

/**
 * Host tensor -> device tensor (or the host tensor itself in the self-test).
 * @param {Tensor} t
 * @returns {Tensor | DeviceTensor}
 */
function put(t) {
  return SELF_TEST ? t : nabla.toDeviceSync(t, { device: DEVICE_INDEX });
}

/**
 * Any op result -> host tensor.
 * @param {Tensor | DeviceTensor} t
 * @returns {Tensor}
 */
function host(t) {
  return t instanceof nabla.DeviceTensor ? t.toHostSync() : t;
}

/** @param {...(Tensor | DeviceTensor | BlockMask)} xs */
function free(...xs) {
  for (const x of xs) {
    if (x instanceof nabla.DeviceTensor && !x.disposed) x.dispose();
    else if (x instanceof nabla.BlockMask) x.dispose();
  }
}

/**
 * fp32 values rounded to `type`, as a host tensor.
 * @param {ArrayLike<number>} values
 * @param {number[]} dims
 * @param {DType} type
 */
function asType(values, dims, type) {
  return nabla.tensor(nabla.fromFloat32(values, type), dims, type);
}

/**
 * The value of `x` rounded to `type` (a number).
 * @param {DType} type
 * @returns {(x: number) => number}
 */
function rounder(type) {
  if (type === 'float32') return Math.fround;
  if (type === 'float16') return (x) => nabla.float16ToFloat(nabla.floatToFloat16(x));
  return (x) => nabla.bfloat16ToFloat(nabla.floatToBfloat16(x));
}

/** @type {Record<DType, string>} */
const SHORT = { float32: 'fp32', float16: 'fp16', bfloat16: 'bf16' };
/** @type {DType[]} */
const HALF_TYPES = ['bfloat16', 'float16'];

/**
 * @param {unknown} x
 * @param {number} [digits]
 */
function fmt(x, digits = 3) {
  if (typeof x !== 'number') return x;
  if (x === 0) return '0';
  if (!Number.isFinite(x)) return String(x);
  return Math.abs(x) >= 1e-3 && Math.abs(x) < 1e5 ? x.toPrecision(digits) : x.toExponential(digits - 1);
}

/** @param {unknown} e */
const firstLine = (e) => String(e instanceof Error ? e.message : e).split('\n')[0];

function gitHead() {
  const cwd = path.join(__dirname, '..');
  const r = spawnSync('git', ['rev-parse', 'HEAD'], { cwd, encoding: 'utf8' });
  if (r.status === 0) {
    const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd, encoding: 'utf8' });
    return r.stdout.trim() + (dirty.status === 0 && dirty.stdout.trim() ? ' (+ uncommitted changes)' : '');
  }
  return 'n/a (no git checkout here)';
}

/**
 * Median/min/max ms of `ITERS` runs of a synchronous op after `WARMUP` runs; `dispose` frees each result untimed.
 * @template T
 * @param {() => T} fn
 * @param {(result: T) => void} dispose
 */
function timeSync(fn, dispose) {
  for (let i = 0; i < WARMUP; i++) dispose(fn());
  /** @type {number[]} */
  const times = [];
  for (let i = 0; i < ITERS; i++) {
    const t0 = process.hrtime.bigint();
    const r = fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    dispose(r);
  }
  return { ...summarize(times), iters: ITERS };
}

/**
 * Everything measured, for gpu-check.json.
 * @type {{ header: Record<string, unknown>, correctness: { pool: Row[], mask: Row[], attention: Row[] }, timings: Row[], errors: string[] }}
 */
const report = { header: {}, correctness: { pool: [], mask: [], attention: [] }, timings: [], errors: [] };
/** @type {string[]} */
const markdown = [];
function say(text = '') {
  console.log(text);
  markdown.push(text);
}
/** @param {Row[]} rows */
function table(rows) {
  say(markdownTable(rows));
  say();
}
/**
 * @param {string} section
 * @param {unknown} err
 */
function sectionError(section, err) {
  const msg = `${section}: ${err instanceof Error && err.stack ? err.stack : err}`;
  console.error(`gpu-check: ERROR in ${msg}`);
  report.errors.push(msg);
  markdown.push(`**ERROR in ${section}:** \`${firstLine(err)}\`\n`);
}

// ---------------------------------------------------------------------------------------------
// Header

function header() {
  const dev = SELF_TEST ? undefined : info.devices[0];
  const h = {
    device: dev
      ? `${dev.name} (cc ${dev.computeCapability}, ${(dev.memoryBytes / 2 ** 30).toFixed(1)} GiB), device ${dev.index} of ${info.devices.length}`
      : 'none: CPU backend self-test',
    build: info.build,
    version: nabla.VERSION,
    date: new Date().toISOString(),
    git: gitHead(),
    node: process.version,
    mode: SELF_TEST
      ? 'self-test (--backend cpu)'
      : args.sanitizer
        ? 'sanitizer (tiny correctness only)'
        : args.quick
          ? 'quick'
          : 'full',
    iters: ITERS,
    warmup: WARMUP,
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('NABLA_'))),
  };
  report.header = h;
  if (SELF_TEST) {
    say(`# ${SELF_TEST_BANNER}`);
    say();
  }
  say(`# nabla-attention ${h.version} gpu-check`);
  say();
  say(`- device: ${h.device}`);
  const b = h.build;
  say(
    `- build: CUDA compiled ${b.cudaCompiled}, archs ${b.cudaArchs || 'none'}, CUDA runtime ${b.cudaRuntimeVersion}, CPU threads ${b.cpuThreads}, Node-API ${b.napiVersion}`,
  );
  say(`- package ${h.version}, git ${h.git}, node ${h.node}, ${h.date}`);
  if (dev) {
    const cc = dev.computeCapability.replace('.', '');
    if (!new RegExp(`(^|;)${cc}`).test(b.cudaArchs || ''))
      say(
        `- WARNING: this binary has no SASS/PTX target for cc ${dev.computeCapability} (archs ${b.cudaArchs}): kernels run via JIT or not at all`,
      );
  }
  say(
    `- mode ${h.mode}; timings: warm-up ${WARMUP}, median of ${ITERS}${Object.keys(h.env).length ? `; env ${JSON.stringify(h.env)}` : ''}`,
  );
  say();
}

// ---------------------------------------------------------------------------------------------
// Correctness: blockPool

function checkPool() {
  say('## Correctness: blockPool (device vs CPU; pass: max |diff| <= 1e-5 x max(1, max |cpu|))');
  say();
  say("Kernels: 'simple' (one CTA per pooled block) and 'fast2' (one warp per pooled block, 16-byte loads; the simple");
  say('kernel where the head dim is not a multiple of 8). Both add each column in the same order: fast2 must give');
  say(
    "simple's bits (column 'same bits as simple'), whatever the data. Column 'ran': the kernel the op reports; a row",
  );
  say('passes only if that is the one asked for where it applies, so a silent fallback cannot pass as the same bits.');
  say();
  /** @type {{ dims: number[], grid?: TokenGrid }[]} */
  const shapes = args.sanitizer
    ? [{ dims: [1, 2, 128, 40] }, { dims: [1, 1, 117, 64], grid: [1, 9, 13] }]
    : [{ dims: [2, 3, 256, 40] }, { dims: [1, 4, 1024, 128] }, { dims: [1, 2, 1170, 64], grid: [2, 45, 13] }];
  for (const { dims, grid } of shapes) {
    // values over many binades: a different summation order would change the bits
    const values = randn(
      dims.reduce((a, b) => a * b),
      1,
    ).map((v, i) => v * 2 ** ((i % 23) - 11));
    for (const type of nabla.DTYPES) {
      const x = asType(values, dims, type);
      const xd = put(x);
      const want = nabla.blockPoolSync(x, { grid, ...CPU }).data;
      const scale = Math.max(1, ...Array.from(want, Math.abs));
      /** @type {Float32Array | undefined} */
      let simple;
      for (const kernel of POOL_KERNELS) {
        const { pooled, kernel: ran } = blockPoolRan(xd, { grid, poolKernel: kernel, ...DEV });
        const got = /** @type {Float32Array} */ (host(pooled).data);
        free(pooled);
        if (kernel === 'simple') simple = got;
        const diff = oracle.maxAbsDiff(got, want);
        const sameBits = simple !== undefined && oracle.sameBits(got, simple);
        const wantRan = expectedPoolRan(kernel, dims[3]);
        report.correctness.pool.push({
          op: 'blockPool',
          kernel,
          ran: ranCell(ran, wantRan),
          dtype: SHORT[type],
          shape: `[${dims}]${grid ? ` grid ${grid.join('x')}` : ''}`,
          'max abs diff': fmt(diff),
          'same bits as simple': kernel === 'simple' ? '' : sameBits ? 'yes' : 'NO',
          result: diff <= 1e-5 * scale && (kernel === 'simple' || sameBits) && ran === wantRan ? 'PASS' : 'FAIL',
        });
      }
      free(xd);
    }
  }
  table(report.correctness.pool);
}

/**
 * The kernel a blockPool row must report: 'cuda-fast2' for fast2 where it applies (whole 8-element
 * pieces, pool_split.h; the inputs here come from toDeviceSync and the outputs from the op, both on
 * cudaMalloc's 256-byte boundaries), else the per-block kernel ('cuda'); 'cpu' in the self-test.
 * @param {'simple' | 'fast2'} kernel
 * @param {number} headDim
 */
function expectedPoolRan(kernel, headDim) {
  if (SELF_TEST) return 'cpu';
  return kernel === 'fast2' && headDim % 8 === 0 ? 'cuda-fast2' : 'cuda';
}

// ---------------------------------------------------------------------------------------------
// Correctness: nablaMask

/** The CUDA mask kernels (nablaMask's maskKernel option), each checked and timed by name. */
const MASK_KERNELS = /** @type {MaskKernel[]} */ (['fast', 'simple', 'fast2']);
/** The CUDA pooling kernels (blockPool's poolKernel option). */
const POOL_KERNELS = /** @type {const} */ (['simple', 'fast2']);

/**
 * read(mask) of the device mask of q, k built by mask kernel `kernel`, with the kernel the op
 * reports having run; the mask is freed after.
 * @template T
 * @param {MaskKernel} kernel
 * @param {Tensor | DeviceTensor} qd
 * @param {Tensor | DeviceTensor} kd
 * @param {MaskOptions} opts
 * @param {(mask: BlockMask) => T} read
 * @returns {{ value: T, ran: string }}
 */
function readDeviceMask(kernel, qd, kd, opts, read) {
  const { mask, kernel: ran } = nablaMaskRan(qd, kd, { ...opts, ...DEV, maskKernel: kernel }, false);
  try {
    return { value: read(mask), ran };
  } finally {
    free(mask);
  }
}

/**
 * The kernel a nablaMask row must report: the one it asked for by name; 'cpu' in the self-test.
 * @param {string} kernel
 */
function expectedMaskRan(kernel) {
  return SELF_TEST ? 'cpu' : `cuda-${kernel}`;
}

/**
 * The 'ran' cell: the reported kernel, flagged where it is not the expected one.
 * @param {string} ran
 * @param {string} want
 */
function ranCell(ran, want) {
  return ran === want ? ran : `${ran} (NOT ${want})`;
}

function checkMask() {
  const tol = oracle.CUT_TOLERANCE;
  say('## Correctness: nablaMask (device vs CPU; pass: every differing block lies at the cut)');
  say();
  say(
    `A differing block is "at the cut" for cdf when its ascending running sum in the CPU map is within ${tol.cdf} of 1 - thr;`,
  );
  say(`for topk when it swapped with a block of the same row whose probability is within ${tol.topk} (a near tie).`);
  say("fast2 pools in the per-block kernel's order and computes the same fp32 logits and selection as fast: its lists");
  say("must equal fast's exactly (column 'same as fast'); a difference there is a bug, not rounding at the cut.");
  say("Column 'ran': the kernel the op reports; a row passes only if it is the one asked for.");
  say();
  /** @type {{ grid: TokenGrid, H: number, D: number }[]} */
  const shapes = args.sanitizer
    ? [{ grid: [3, 16, 16], H: 1, D: 64 }]
    : [
        { grid: [6, 16, 16], H: 2, D: 64 },
        { grid: [5, 24, 32], H: 3, D: 128 },
      ];
  for (const s of shapes) {
    const T = s.grid[0];
    const S = s.grid[0] * s.grid[1] * s.grid[2];
    const dims = [1, s.H, S, s.D];
    const grid = s.grid;
    const f2 = [0, Math.max(1, Math.floor(T / 3)), T];
    const f3 = [0, 1, Math.max(2, Math.floor(T / 2)), T].filter((v, i, a) => i === 0 || v > a[i - 1]);
    /** @type {{ name: string, opts: MaskOptions & { threshold: number } }[]} */
    const cases = [
      { name: 'cdf 0.4', opts: { threshold: 0.4 } },
      { name: 'cdf 0.7', opts: { threshold: 0.7 } },
      { name: 'cdf 0.9', opts: { threshold: 0.9 } },
      { name: 'topk 0.3', opts: { threshold: 0.3, method: 'topk' } },
      { name: 'cdf 0.5 + sta 3,1,1', opts: { threshold: 0.5, grid, sta: [3, 1, 1] } },
      { name: `cdf 0.6 + frames ${f2}`, opts: { threshold: 0.6, grid, frames: f2 } },
      { name: `cdf 0.4 + frames ${f3} + sta 5,3,3`, opts: { threshold: 0.4, grid, frames: f3, sta: [5, 3, 3] } },
      {
        name: `topk 0.5 + frames ${f2} + sta 3,1,1`,
        opts: { threshold: 0.5, method: 'topk', grid, frames: f2, sta: [3, 1, 1] },
      },
    ];
    const qv = waveTokens(1, s.H, grid, s.D, 11 + s.D);
    const kv = waveTokens(1, s.H, grid, s.D, 12 + s.D);
    for (const type of nabla.DTYPES) {
      if (args.sanitizer && type === 'float16') continue;
      const q = asType(qv, dims, type),
        k = asType(kv, dims, type);
      const qd = put(q),
        kd = put(k);
      try {
        for (const c of cases) {
          const cpu = nabla.nablaMaskSync(q, k, { ...c.opts, returnMap: true, ...CPU });
          /** @type {Record<string, Int32Array[]>} */
          const lists = {};
          for (const kernel of MASK_KERNELS) {
            const { value: dense, ran } = readDeviceMask(kernel, qd, kd, c.opts, (m) => {
              lists[kernel] = [m.kvCounts, m.kvIndices];
              return m.toDense();
            });
            const { differing, offCut } = oracle.compareMasks(dense, cpu, c.opts.method ?? 'cdf', c.opts.threshold);
            const sameAsFast = kernel !== 'fast2' || sameLists(lists.fast2, lists.fast);
            const wantRan = expectedMaskRan(kernel);
            report.correctness.mask.push({
              op: 'nablaMask',
              kernel,
              ran: ranCell(ran, wantRan),
              case: c.name,
              dtype: SHORT[type],
              shape: `H${s.H} grid ${grid.join('x')} D${s.D}`,
              'cpu density': fmt(cpu.density()),
              'blocks differing': differing,
              'all at cut': offCut.length === 0 ? 'yes' : `no (${offCut.length} not)`,
              'same as fast': kernel === 'fast2' ? (sameAsFast ? 'yes' : 'NO') : '',
              result: offCut.length === 0 && sameAsFast && ran === wantRan ? 'PASS' : 'FAIL',
            });
          }
        }
      } finally {
        free(qd, kd);
      }
    }
  }
  checkMaskTies();
  table(report.correctness.mask);
}

/**
 * Whether two masks' lists (kvCounts, kvIndices) are equal.
 * @param {Int32Array[]} a
 * @param {Int32Array[]} b
 */
function sameLists(a, b) {
  return a.every((list, n) => oracle.sameValues(list, b[n]));
}

/**
 * Exact ties: constant q and k with 8 blocks make every P exactly 1/8 and every running sum exact,
 * so both backends must agree block for block (equal probabilities keep the lower index).
 */
function checkMaskTies() {
  const dims = [1, 2, 512, 16];
  const q = nabla.tensor(new Float32Array(2 * 512 * 16).fill(0.25), dims);
  const qd = put(q);
  try {
    /** @type {(MaskOptions & { threshold: number })[]} */
    const cases = [{ threshold: 0.5 }, { threshold: 0.5, method: 'topk' }, { threshold: 0.3 }];
    for (const opts of cases) {
      const cpu = nabla.nablaMaskSync(q, q, { ...opts, ...CPU });
      for (const kernel of MASK_KERNELS) {
        const { value: same, ran } = readDeviceMask(kernel, qd, qd, opts, (m) =>
          sameLists([m.kvCounts, m.kvIndices], [cpu.kvCounts, cpu.kvIndices]),
        );
        const wantRan = expectedMaskRan(kernel);
        report.correctness.mask.push({
          op: 'nablaMask',
          kernel,
          ran: ranCell(ran, wantRan),
          case: `exact ties, ${opts.method ?? 'cdf'} ${opts.threshold}`,
          dtype: 'fp32',
          shape: 'H2 8 blocks, constant q = k',
          'cpu density': fmt(cpu.density()),
          'blocks differing': same ? 0 : 'lists differ',
          'all at cut': same ? 'yes' : 'no',
          'same as fast': '',
          result: same && ran === wantRan ? 'PASS' : 'FAIL',
        });
      }
    }
  } finally {
    free(qd);
  }
}

// ---------------------------------------------------------------------------------------------
// Correctness: attention

/**
 * @typedef {{ B: number, H: number, Sq: number, Skv: number, D: number, Dv: number }} AttnShape
 * @typedef {{ kernel: 'fast' | 'fast2' | 'simple', type: DType, shape: string, sparse: boolean }} AttnCase
 */

/**
 * Shapes of the attention checks (tiny ones for compute-sanitizer). Every sparse case has a query
 * block with no kept block; `long` has rows of more than 32 kept blocks, since a kernel may stage
 * the block list in 32-entry pieces: a case that misses its purpose fails.
 * @param {boolean} tiny
 * @returns {Record<string, AttnShape & { minKeptPerRow?: number }>}
 */
function attentionShapes(tiny) {
  return {
    a64: tiny ? { B: 1, H: 1, Sq: 128, Skv: 128, D: 64, Dv: 64 } : { B: 1, H: 2, Sq: 256, Skv: 256, D: 64, Dv: 64 },
    c128: tiny
      ? { B: 1, H: 1, Sq: 128, Skv: 192, D: 128, Dv: 128 }
      : { B: 2, H: 1, Sq: 192, Skv: 320, D: 128, Dv: 128 },
    odd: tiny ? { B: 1, H: 1, Sq: 128, Skv: 128, D: 40, Dv: 24 } : { B: 1, H: 2, Sq: 128, Skv: 192, D: 40, Dv: 24 },
    long: {
      ...(tiny
        ? { B: 1, H: 1, Sq: 128, Skv: 64 * 80, D: 64, Dv: 64 }
        : { B: 1, H: 1, Sq: 128, Skv: 64 * 80, D: 128, Dv: 128 }),
      minKeptPerRow: 33,
    },
  };
}

/**
 * The mma.sync attention kernels, checked and timed side by side: 'fast' and the opt-in 'fast2'.
 * @type {readonly ('fast' | 'fast2')[]}
 */
const TENSOR_CORE_KERNELS = ['fast', 'fast2'];
/** @type {readonly ('fast' | 'fast2' | 'simple')[]} */
const TENSOR_CORE_AND_SIMPLE = [...TENSOR_CORE_KERNELS, 'simple'];

/** @returns {AttnCase[]} */
function attentionCases() {
  /** @type {AttnCase[]} */
  const cases = [];
  for (const kernel of TENSOR_CORE_AND_SIMPLE)
    for (const type of HALF_TYPES)
      for (const shape of ['a64', 'c128']) cases.push({ kernel, type, shape, sparse: true });
  for (const kernel of TENSOR_CORE_AND_SIMPLE) cases.push({ kernel, type: 'bfloat16', shape: 'c128', sparse: false });
  cases.push({ kernel: 'simple', type: 'float32', shape: 'a64', sparse: true });
  cases.push({ kernel: 'simple', type: 'float32', shape: 'odd', sparse: true });
  cases.push({ kernel: 'simple', type: 'float32', shape: 'odd', sparse: false });
  cases.push({ kernel: 'simple', type: 'bfloat16', shape: 'odd', sparse: true });
  for (const kernel of TENSOR_CORE_AND_SIMPLE) cases.push({ kernel, type: 'bfloat16', shape: 'long', sparse: true });
  for (const kernel of TENSOR_CORE_KERNELS) cases.push({ kernel, type: 'bfloat16', shape: 'long', sparse: false });
  return cases;
}

/**
 * One attention case: the device output (poisoned first) against the CPU backend and the fp64
 * reference, with the FlashAttention rule against the naive same-precision computation.
 * @param {AttnCase} cs
 * @param {AttnShape & { minKeptPerRow?: number }} c
 * @returns {Row}
 */
function attentionRow(cs, c) {
  const seed = c.D * 10 + c.Skv;
  const q = asType(randn(c.B * c.H * c.Sq * c.D, seed + 1), [c.B, c.H, c.Sq, c.D], cs.type);
  const k = asType(randn(c.B * c.H * c.Skv * c.D, seed + 2), [c.B, c.H, c.Skv, c.D], cs.type);
  const v = asType(randn(c.B * c.H * c.Skv * c.Dv, seed + 3), [c.B, c.H, c.Skv, c.Dv], cs.type);
  const checkMask = cs.sparse ? oracle.randomBlockMask([c.B, c.H, c.Sq / 64, c.Skv / 64], seed) : undefined;
  const mask = checkMask?.mask;
  const qd = put(q),
    kd = put(k),
    vd = put(v);
  const md = mask && !SELF_TEST ? mask.toDevice({ device: DEVICE_INDEX }) : mask;
  let got;
  try {
    got = oracle.poisonedAttentionSync(qd, kd, vd, md, { ...DEV, device: DEVICE_INDEX, kernel: cs.kernel });
  } finally {
    free(qd, kd, vd);
    if (md && md !== mask) md.dispose();
  }
  const cpu = nabla.toFloat32Array(
    mask ? nabla.blockSparseAttentionSync(q, k, v, mask, CPU) : nabla.attentionSync(q, k, v, CPU),
  );
  const [qf, kf, vf] = [q, k, v].map(nabla.toFloat32Array);
  const dims = { B: c.B, H: c.H, S: c.Sq, D: c.D };
  const scale = 1 / Math.sqrt(c.D);
  const ref = oracle.refAttention(qf, kf, vf, dims, c.Skv, c.Dv, scale, checkMask?.dense);
  const rnd = rounder(cs.type);
  const naive = oracle.refAttention(qf, kf, vf, dims, c.Skv, c.Dv, scale, checkMask?.dense, rnd);
  const nonFinite = got.reduce((n, x) => n + (Number.isFinite(x) ? 0 : 1), 0);
  const emptyNonZero = checkMask ? oracle.nonZeroInEmptyRows(got, checkMask.dense, checkMask.mask.dims, c.Dv) : 0;
  const nmse = oracle.normalisedMse(got, cpu);
  const errGpu = oracle.maxAbsDiff(got, ref);
  const errNaive = oracle.maxAbsDiff(naive, ref);
  const errRound = oracle.maxAbsDiff(ref.map(rnd), ref);
  const atol = 2 * Math.abs(rnd(0.3) - 0.3);
  const nmseLimit = cs.type === 'float32' ? 1e-8 : 5e-4;
  // fp32: the rule is meant for half precision (an fp32 kernel's ulp-level error is not 2x the naive one's); nMSE decides
  const faApplies = cs.type !== 'float32';
  const faOk = !faApplies || errGpu <= 2 * errNaive + atol;
  // the case must test what it is for: an empty row (sparse), and long rows where asked
  const purposeOk = !checkMask || (checkMask.emptyRows > 0 && checkMask.maxKeptPerRow >= (c.minKeptPerRow ?? 1));
  const ok = nmse <= nmseLimit && nonFinite === 0 && emptyNonZero === 0 && faOk && purposeOk;
  return {
    density: checkMask ? fmt(checkMask.density) : 1,
    'max kept / row': checkMask ? checkMask.maxKeptPerRow : c.Skv / 64,
    'nMSE vs cpu': fmt(nmse),
    'max abs vs cpu': fmt(oracle.maxAbsDiff(got, cpu)),
    'err vs fp64': fmt(errGpu),
    'naive err': fmt(errNaive),
    'round-once err': fmt(errRound),
    'FA rule': `${!faApplies ? 'n/a fp32' : faOk ? 'ok' : 'VIOLATED'} (${fmt(errGpu / (2 * errNaive + atol), 2)})`,
    'non-finite': nonFinite,
    'empty rows != 0': checkMask ? emptyNonZero : 'n/a',
    result: ok ? 'PASS' : purposeOk ? 'FAIL' : 'FAIL (mask misses the case: no empty row or rows too short)',
  };
}

function checkAttention() {
  say('## Correctness: attention (device vs CPU and vs an fp64 reference)');
  say();
  say('Pass when all hold: nMSE = sum (gpu-cpu)^2 / sum cpu^2 <= 5e-4 (1e-8 for fp32); no non-finite output');
  say('(the output buffer is filled with 0xff = NaN before the call, so unwritten elements show); query blocks with');
  say(
    'no kept block are exactly zero; and the FlashAttention rule: max |gpu - fp64 ref| <= 2 x max |naive - fp64 ref|',
  );
  say('+ atol, where "naive" is the same-precision computation PyTorch\'s reference does (q*scale, scores, softmax');
  say(
    'probabilities and output each rounded to the dtype, fp32 accumulation) and atol = 2 x |round(0.3) - 0.3| in the',
  );
  say(
    "dtype (FlashAttention-3's rounding allowance); the rule is for fp16/bf16 (fp32 rows: nMSE decides; ratio shown).",
  );
  say(
    '"round-once" = max |round(fp64 ref) - fp64 ref|, for scale. FA rule column: verdict (err / (2 x naive + atol)).',
  );
  say(
    'Sparse masks keep about half the blocks, one query block none; the long shape needs rows of more than 32 kept blocks.',
  );
  say();
  const shapes = attentionShapes(args.sanitizer);
  for (const cs of attentionCases()) {
    const c = shapes[cs.shape];
    const label = {
      op: cs.sparse ? 'blockSparseAttention' : 'attention (dense)',
      kernel: cs.kernel,
      dtype: SHORT[cs.type],
      shape: `B${c.B} H${c.H} Sq${c.Sq} Skv${c.Skv} D${c.D} Dv${c.Dv}`,
    };
    try {
      report.correctness.attention.push({ ...label, ...attentionRow(cs, c) });
    } catch (e) {
      report.correctness.attention.push({ ...label, result: `FAIL (${firstLine(e)})` });
    }
  }
  const columns = Object.keys(
    report.correctness.attention.find((r) => 'density' in r) ?? report.correctness.attention[0],
  );
  table(report.correctness.attention.map((r) => Object.fromEntries(columns.map((col) => [col, r[col] ?? '']))));
}

// ---------------------------------------------------------------------------------------------
// Timings

/**
 * bf16 [B, H, S, D] bits of structured (DiT-like, tile-ordered) tokens: `genHeads` distinct heads
 * are generated and replicated over the H heads (generating 344M values in JS would take minutes).
 * @param {number} B
 * @param {number} H
 * @param {TokenGrid} grid
 * @param {number} D
 * @param {number} seed
 * @param {number} genHeads
 * @param {'structured' | 'uniform'} kind
 */
function structuredBf16(B, H, grid, D, seed, genHeads, kind) {
  const S = grid[0] * grid[1] * grid[2];
  const g = Math.min(genHeads, B * H);
  const pattern = kind === 'uniform' ? uniform(g * S * D, seed) : waveTokens(1, g, grid, D, seed);
  const bits = /** @type {Uint16Array} */ (nabla.fromFloat32(pattern, 'bfloat16'));
  if (g === B * H) return bits;
  const out = new Uint16Array(B * H * S * D);
  for (let bh = 0; bh < B * H; bh++) out.set(bits.subarray((bh % g) * S * D, ((bh % g) + 1) * S * D), bh * S * D);
  return out;
}

/**
 * @typedef {{ name: string, B: number, H: number, grid: TokenGrid, D: number, genHeads: number,
 *   denseKernels: readonly ('fast' | 'fast2' | 'simple')[], export: boolean }} TimedShape
 * @returns {TimedShape[]}
 */
function timingShapes() {
  if (SELF_TEST)
    return [
      {
        name: 'selftest-small',
        B: 1,
        H: 2,
        grid: [4, 16, 16],
        D: 128,
        genHeads: 2,
        denseKernels: TENSOR_CORE_AND_SIMPLE,
        export: true,
      },
      {
        name: 'selftest-large',
        B: 1,
        H: 2,
        grid: [3, 16, 32],
        D: 128,
        genHeads: 1,
        denseKernels: TENSOR_CORE_KERNELS,
        export: false,
      },
    ];
  /** @type {TimedShape[]} */
  const shapes = [
    {
      name: 'small',
      B: 1,
      H: 8,
      grid: [16, 32, 32],
      D: 128,
      genHeads: 8,
      denseKernels: TENSOR_CORE_AND_SIMPLE,
      export: true,
    },
  ];
  const preset = findPreset(REFERENCE_PRESET);
  if (args.big && preset)
    shapes.push({
      name: preset.name,
      B: 1,
      H: preset.heads,
      grid: preset.grid,
      D: preset.headDim,
      genHeads: args.genHeads ?? (args.quick ? 2 : 4),
      denseKernels: TENSOR_CORE_KERNELS,
      export: false,
    });
  return shapes;
}

/**
 * @typedef {{ npy(name: string, shape: number[], data: Float32Array | Uint8Array): string }} Exporter
 */

/**
 * @param {TimedShape} s
 * @param {Exporter | undefined} exporter
 */
function timeShape(s, exporter) {
  const { B, H, grid, D } = s;
  const S = grid[0] * grid[1] * grid[2];
  const dims = [B, H, S, D];
  const shapeText = `B${B} H${H} S${S} (${grid.join('x')}) D${D} bf16`;
  const t0 = Date.now();
  const qBits = structuredBf16(B, H, grid, D, 101, s.genHeads, 'structured');
  const kBits = structuredBf16(B, H, grid, D, 102, s.genHeads, 'structured');
  const vBits = structuredBf16(B, H, grid, D, 103, s.genHeads, 'uniform');
  const genSeconds = (Date.now() - t0) / 1000;
  const qh = nabla.tensor(qBits, dims, 'bfloat16'),
    kh = nabla.tensor(kBits, dims, 'bfloat16'),
    vh = nabla.tensor(vBits, dims, 'bfloat16');
  const qd = put(qh),
    kd = put(kh),
    vd = put(vh);
  console.error(
    `gpu-check: ${s.name}: inputs generated in ${genSeconds.toFixed(1)} s (${s.genHeads} distinct heads of ${B * H})`,
  );
  /** @type {Row[]} */
  const rows = [];
  const base = { shape: s.name, dims: shapeText, 'distinct heads': `${Math.min(s.genHeads, B * H)}/${B * H}` };
  const size = { batch: B, heads: H, seqQ: S, seqKv: S, headDim: D, valueDim: D };
  const flopsDense = attentionFlops(size);
  /** @type {{ name: string, B: number, H: number, S: number, D: number, grid: TokenGrid, dtype: string, scale: number, genHeads: number, denseFlops: number, masks: Record<string, Record<string, unknown>>, dense: Record<string, number>, files?: Record<string, string> }} */
  const exp = {
    name: s.name,
    B,
    H,
    S,
    D,
    grid,
    dtype: 'bfloat16',
    scale: 1 / Math.sqrt(D),
    genHeads: s.genHeads,
    denseFlops: flopsDense,
    masks: {},
    dense: {},
  };
  try {
    /** @type {Record<string, { median: number, min: number, max: number }>} */
    const dense = {};
    for (const kernel of s.denseKernels) {
      try {
        const t = timeSync(
          () => nabla.attentionSync(qd, kd, vd, { ...DEV, kernel }),
          (o) => free(o),
        );
        dense[kernel] = t;
        exp.dense[kernel] = t.median;
        rows.push({
          ...base,
          op: 'attention (dense)',
          kernel,
          threshold: '',
          density: 1,
          ms: t.median,
          'min-max ms': `${fmt(t.min)}-${fmt(t.max)}`,
          'TFLOP/s': flopsDense / t.median / 1e9,
        });
      } catch (e) {
        rows.push({
          ...base,
          op: 'attention (dense)',
          kernel,
          threshold: '',
          density: 1,
          ms: `error: ${firstLine(e)}`,
        });
      }
    }
    rows.push(...poolTimings(qd, grid, base));
    for (const threshold of THRESHOLD_SWEEP) {
      const label = { ...base, threshold: String(threshold) };
      try {
        /** @type {Record<string, { median: number, min: number, max: number } | string>} */
        const tms = {};
        for (const kernel of MASK_KERNELS) {
          try {
            tms[kernel] = timeSync(
              () => nabla.nablaMaskSync(qd, kd, { threshold, maskKernel: kernel, ...DEV }),
              (m) => free(m),
            );
          } catch (e) {
            tms[kernel] = `error: ${firstLine(e)}`;
          }
        }
        // the mask 'auto' runs: fast2 where it applies, else fast
        const tm = typeof tms.fast2 !== 'string' ? tms.fast2 : tms.fast;
        if (typeof tm === 'string') throw new Error(`nablaMask (fast): ${tm}`);
        const mask = nabla.nablaMaskSync(qd, kd, { threshold, ...DEV });
        try {
          const density = mask.density();
          for (const kernel of MASK_KERNELS) {
            const t = tms[kernel];
            rows.push({
              ...label,
              op: 'nablaMask',
              kernel,
              density,
              ms: typeof t === 'string' ? t : t.median,
              'min-max ms': typeof t === 'string' ? '' : `${fmt(t.min)}-${fmt(t.max)}`,
            });
          }
          // each tensor-core kernel on the same mask, against its own dense time
          /** @type {Record<string, { median: number, min: number, max: number }>} */
          const sparseTimes = {};
          for (const kernel of TENSOR_CORE_KERNELS) {
            const ta = timeSync(
              () => nabla.blockSparseAttentionSync(qd, kd, vd, mask, { ...DEV, kernel }),
              (o) => free(o),
            );
            sparseTimes[kernel] = ta;
            const tflops = attentionFlops(size, density) / ta.median / 1e9;
            const denseOwn = dense[kernel];
            const denseTflops = denseOwn ? flopsDense / denseOwn.median / 1e9 : undefined;
            rows.push({
              ...label,
              op: 'blockSparseAttention',
              kernel,
              density,
              ms: ta.median,
              'min-max ms': `${fmt(ta.min)}-${fmt(ta.max)}`,
              'TFLOP/s': tflops,
              'mask % of sparse': (100 * tm.median) / ta.median,
              '% of dense TFLOP/s': denseTflops ? (100 * tflops) / denseTflops : 'n/a',
              'ms / (density x dense ms)': denseOwn ? ta.median / (density * denseOwn.median) : 'n/a',
            });
          }
          const ta = sparseTimes.fast;
          const tflops = attentionFlops(size, density) / ta.median / 1e9;
          /** @type {Record<string, unknown>} */
          const entry = { density, maskMs: tm.median, oursMs: ta.median, oursTflops: tflops };
          if (exporter) {
            entry.file = exporter.npy(`${s.name}-mask-thr${threshold}.npy`, [B, H, S / 64, S / 64], mask.toDense());
            if (s.export && threshold === 0.7) {
              const out = nabla.blockSparseAttentionSync(qd, kd, vd, mask, { ...DEV, kernel: 'fast' });
              const o = host(out);
              free(out);
              entry.out = exporter.npy(`${s.name}-out-thr${threshold}.npy`, dims, nabla.toFloat32(o.data, 'bfloat16'));
            }
          }
          exp.masks[String(threshold)] = entry;
        } finally {
          free(mask);
        }
      } catch (e) {
        rows.push({
          ...label,
          op: 'nablaMask / blockSparseAttention',
          kernel: 'fast',
          density: '',
          ms: `error: ${firstLine(e)}`,
        });
      }
    }
    if (exporter && s.export) {
      exp.files = {
        q: exporter.npy(`${s.name}-q.npy`, dims, nabla.toFloat32(qBits, 'bfloat16')),
        k: exporter.npy(`${s.name}-k.npy`, dims, nabla.toFloat32(kBits, 'bfloat16')),
        v: exporter.npy(`${s.name}-v.npy`, dims, nabla.toFloat32(vBits, 'bfloat16')),
      };
    }
  } finally {
    free(qd, kd, vd);
  }
  return { rows, exp };
}

/**
 * blockPool of q alone with each pooling kernel: the mask's first step, timed by itself. The bytes
 * read are q's (B*H*S*D bf16); the floor is that at the device's memory bandwidth.
 * @param {Tensor | DeviceTensor} qd
 * @param {TokenGrid} grid
 * @param {Row} base
 * @returns {Row[]}
 */
function poolTimings(qd, grid, base) {
  const bytes = qd.dims.reduce((a, b) => a * b) * 2;
  return POOL_KERNELS.map((kernel) => {
    const label = { ...base, op: 'blockPool (q)', kernel, threshold: '', density: '' };
    try {
      const t = timeSync(
        () => blockPoolRan(qd, { grid, poolKernel: kernel, ...DEV }).pooled,
        (o) => free(o),
      );
      return {
        ...label,
        ms: t.median,
        'min-max ms': `${fmt(t.min)}-${fmt(t.max)}`,
        'GB/s': bytes / t.median / 1e6,
      };
    } catch (e) {
      return { ...label, ms: `error: ${firstLine(e)}` };
    }
  });
}

/** @param {Exporter | undefined} exporter */
function timings(exporter) {
  say(
    `## Timings (${SELF_TEST ? 'CPU backend self-test' : 'CUDA'}, device tensors, sync ops; warm-up ${WARMUP}, median of ${ITERS})`,
  );
  say();
  say('Inputs: waveTokens (smooth functions of (t, y, x) + noise, tile order) for q and k, uniform v, bf16;');
  say('large presets replicate a few generated heads over all heads. TFLOP/s counts kept blocks only:');
  say(
    '2*B*H*S^2*(D+Dv)*density / time (lib/flops.ts). "ms / (density x dense ms)" is 1 for a kernel that tracks the ideal sparse speedup.',
  );
  say();
  const exports = [];
  for (const s of timingShapes()) {
    try {
      const { rows, exp } = timeShape(s, exporter);
      report.timings.push(...rows);
      exports.push(exp);
    } catch (e) {
      sectionError(`timings ${s.name}`, e);
    }
  }
  const cols = [
    'shape',
    'dims',
    'distinct heads',
    'op',
    'kernel',
    'threshold',
    'density',
    'ms',
    'min-max ms',
    'GB/s',
    'TFLOP/s',
    'mask % of sparse',
    '% of dense TFLOP/s',
    'ms / (density x dense ms)',
  ];
  table(report.timings.map((r) => Object.fromEntries(cols.map((c) => [c, r[c] ?? '']))));
  return exports;
}

/**
 * @param {string} dir
 * @returns {Exporter}
 */
function makeExporter(dir) {
  fs.mkdirSync(dir, { recursive: true });
  return {
    npy(name, shape, data) {
      saveNpy(path.join(dir, name), shape, data);
      return name;
    },
  };
}

// ---------------------------------------------------------------------------------------------

function main() {
  header();
  /** @type {[string, () => void][]} */
  const sections = [
    ['blockPool', checkPool],
    ['nablaMask', checkMask],
    ['attention', checkAttention],
  ];
  for (const [name, fn] of sections) {
    try {
      fn();
    } catch (e) {
      sectionError(`correctness ${name}`, e);
    }
  }
  /** @type {ReturnType<typeof timings>} */
  let exports = [];
  const out = args.out === undefined ? undefined : path.resolve(args.out);
  const exportDir = args.exportDir === undefined ? out : path.resolve(args.exportDir);
  if (!args.sanitizer) exports = timings(out && exportDir ? makeExporter(exportDir) : undefined);
  const all = [...report.correctness.pool, ...report.correctness.mask, ...report.correctness.attention];
  const failed = all.filter((r) => !String(r.result).startsWith('PASS'));
  const summary =
    `correctness: ${all.length - failed.length} passed, ${failed.length} failed` +
    (report.errors.length ? `; ${report.errors.length} section error(s)` : '');
  say(`## Summary`);
  say();
  say(summary);
  for (const f of failed) say(`- FAIL: ${f.op} ${f.case ?? ''} ${f.kernel ?? ''} ${f.dtype} ${f.shape}: ${f.result}`);
  if (SELF_TEST) say(`\n(${SELF_TEST_BANNER})`);
  if (out && exportDir && !args.sanitizer) {
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'gpu-check.md'), markdown.join('\n') + '\n');
    fs.writeFileSync(
      path.join(out, 'gpu-check.json'),
      JSON.stringify({ selfTest: SELF_TEST, ...report, summary }, null, 1) + '\n',
    );
    const meta = {
      selfTest: SELF_TEST,
      version: nabla.VERSION,
      device: report.header.device,
      git: report.header.git,
      date: report.header.date,
      dataDir: exportDir,
      note:
        'q/k/v/out .npy are bf16 values widened exactly to float32 (NumPy has no bfloat16); masks are uint8 [B, H, S/64, S/64]; ' +
        'ms are medians of synchronous calls on device tensors (process.hrtime)',
      shapes: exports,
    };
    fs.writeFileSync(path.join(out, 'meta.json'), JSON.stringify(meta, null, 1) + '\n');
    if (exportDir !== out) fs.writeFileSync(path.join(exportDir, 'meta.json'), JSON.stringify(meta, null, 1) + '\n');
    console.log(
      `\ngpu-check: wrote ${path.join(out, 'gpu-check.md')}, gpu-check.json, meta.json; .npy files in ${exportDir}`,
    );
  }
  process.exitCode = failed.length || report.errors.length ? 1 : 0;
}

main();
