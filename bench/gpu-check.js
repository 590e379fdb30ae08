#!/usr/bin/env node
// GPU check: correctness of every CUDA op against the CPU backend (the oracle) and an fp64
// reference, then timings of the mask, block-sparse and dense attention at a small shape and at
// the wan2.1-14b-720p preset. Plain CommonJS on the compiled package (dist/) and the addon
// (build/Release): no npm needed, so it runs on the GPU machine as it is (see bench/gpu-run.sh).
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
const { native } = require('../dist/native');
const { saveNpy } = require('../dist/npy');
const { DTYPE_CODE } = require('../dist/dtype');
const { median, rng, waveTokens, uniform, markdownTable, attentionFlops } = require('./common');

// ---------------------------------------------------------------------------------------------
// Arguments

const USAGE = `usage: node bench/gpu-check.js [--quick] [--out DIR] [--export-dir DIR] [--iters N] [--require-cuda]
                                  [--sanitizer] [--no-720p] [--gen-heads N] [--backend cpu]`;

function parseArgs(argv) {
  const a = { quick: false, out: undefined, exportDir: undefined, iters: undefined, requireCuda: false,
    sanitizer: false, big: true, genHeads: undefined, backend: 'cuda' };
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
  if (a.iters !== undefined && !(Number.isInteger(a.iters) && a.iters >= 1)) throw new Error('--iters must be a positive integer');
  if (a.genHeads !== undefined && !(Number.isInteger(a.genHeads) && a.genHeads >= 1)) throw new Error('--gen-heads must be a positive integer');
  if (process.env.NABLA_REQUIRE_CUDA === '1') a.requireCuda = true;
  return a;
}

let args;
try {
  args = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(`gpu-check: ${e.message}`);
  process.exit(2);
}

const SELF_TEST = args.backend === 'cpu';
const info = nabla.backends();
if (!SELF_TEST && !info.cuda) {
  console.log(`gpu-check: no CUDA device (${info.reason ?? 'unknown reason'})`);
  process.exit(args.requireCuda ? 1 : 0);
}

const CPU = { backend: 'cpu' };
/** Where the checked ops run: CUDA, or the CPU backend in the developer self-test. */
const DEV = SELF_TEST ? { backend: 'cpu' } : { backend: 'cuda' };
const DEVICE_INDEX = SELF_TEST ? 0 : info.devices[0].index;
const ITERS = args.iters ?? (args.quick ? 3 : 10);
const WARMUP = 2;
const SELF_TEST_BANNER = 'SELF-TEST OF bench/gpu-check.js ON THE CPU BACKEND (CPU vs CPU, tiny shapes): NOT A GPU RESULT';

// ---------------------------------------------------------------------------------------------
// Helpers

/** Host tensor -> device tensor (or the host tensor itself in the self-test). */
function put(t) {
  return SELF_TEST ? t : nabla.toDeviceSync(t, { device: DEVICE_INDEX });
}

/** Any op result -> host tensor. */
function host(t) {
  return t instanceof nabla.DeviceTensor ? t.toHostSync() : t;
}

function free(...xs) {
  for (const x of xs) {
    if (x instanceof nabla.DeviceTensor && !x.disposed) x.dispose();
    else if (x instanceof nabla.BlockMask) x.dispose();
  }
}

/** Normal numbers (Box-Muller on mulberry32). */
function randn(n, seed, scale = 1) {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(r(), 1e-12), v = r();
    const m = scale * Math.sqrt(-2 * Math.log(u));
    out[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return out;
}

/** fp32 values rounded to `type`, as a host tensor. */
function asType(values, dims, type) {
  return type === 'float32' ? nabla.tensor(Float32Array.from(values), dims) : nabla.tensor(nabla.fromFloat32(values, type), dims, type);
}

/** The value of `x` rounded to `type` (a number). */
function rounder(type) {
  if (type === 'float32') return Math.fround;
  if (type === 'float16') return (x) => nabla.float16ToFloat(nabla.floatToFloat16(x));
  return (x) => nabla.bfloat16ToFloat(nabla.floatToBfloat16(x));
}

const SHORT = { float32: 'fp32', float16: 'fp16', bfloat16: 'bf16' };

function maxAbsDiff(a, b) {
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** sum (a-b)^2 / sum b^2 */
function normalisedMse(a, b) {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  const r = num / (den || 1);
  return Number.isNaN(r) ? Infinity : r;
}

function fmt(x, digits = 3) {
  if (typeof x !== 'number') return x;
  if (x === 0) return '0';
  if (!Number.isFinite(x)) return String(x);
  return Math.abs(x) >= 1e-3 && Math.abs(x) < 1e5 ? x.toPrecision(digits) : x.toExponential(digits - 1);
}

function gitHead() {
  const r = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: path.join(__dirname, '..'), encoding: 'utf8' });
  if (r.status === 0) {
    const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: path.join(__dirname, '..'), encoding: 'utf8' });
    return r.stdout.trim() + (dirty.status === 0 && dirty.stdout.trim() ? ' (+ uncommitted changes)' : '');
  }
  return 'n/a (no git checkout here)';
}

/** Median/min/max ms of `iters` runs of a synchronous op after `warmup` runs; `dispose` frees each result untimed. */
function timeSync(fn, dispose, { warmup = WARMUP, iters = ITERS } = {}) {
  for (let i = 0; i < warmup; i++) dispose(fn());
  const times = [];
  for (let i = 0; i < iters; i++) {
    const t0 = process.hrtime.bigint();
    const r = fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    dispose(r);
  }
  times.sort((a, b) => a - b);
  return { median: median(times), min: times[0], max: times[times.length - 1], iters };
}

const report = { header: {}, correctness: { pool: [], mask: [], attention: [] }, timings: [], errors: [] };
const markdown = [];
function say(text = '') {
  console.log(text);
  markdown.push(text);
}
function table(rows) {
  const t = markdownTable(rows);
  say(t);
  say();
}
function sectionError(section, err) {
  const msg = `${section}: ${err && err.stack ? err.stack : err}`;
  console.error(`gpu-check: ERROR in ${msg}`);
  report.errors.push(msg);
  markdown.push(`**ERROR in ${section}:** \`${String(err && err.message ? err.message : err).split('\n')[0]}\`\n`);
}

// ---------------------------------------------------------------------------------------------
// Header

function header() {
  const dev = SELF_TEST ? undefined : info.devices[0];
  const h = {
    device: dev ? `${dev.name} (cc ${dev.computeCapability}, ${(dev.memoryBytes / 2 ** 30).toFixed(1)} GiB), device ${dev.index} of ${info.devices.length}` : 'none: CPU backend self-test',
    build: info.build,
    version: nabla.VERSION,
    date: new Date().toISOString(),
    git: gitHead(),
    node: process.version,
    mode: SELF_TEST ? 'self-test (--backend cpu)' : args.sanitizer ? 'sanitizer (tiny correctness only)' : args.quick ? 'quick' : 'full',
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
  say(`- build: CUDA compiled ${b.cudaCompiled}, archs ${b.cudaArchs || 'none'}, CUDA runtime ${b.cudaRuntimeVersion}, CPU threads ${b.cpuThreads}, Node-API ${b.napiVersion}`);
  say(`- package ${h.version}, git ${h.git}, node ${h.node}, ${h.date}`);
  if (dev) {
    const cc = dev.computeCapability.replace('.', '');
    if (!new RegExp(`(^|;)${cc}`).test(b.cudaArchs || ''))
      say(`- WARNING: this binary has no SASS/PTX target for cc ${dev.computeCapability} (archs ${b.cudaArchs}): kernels run via JIT or not at all`);
  }
  say(`- mode ${h.mode}; timings: warm-up ${WARMUP}, median of ${ITERS}${Object.keys(h.env).length ? `; env ${JSON.stringify(h.env)}` : ''}`);
  say();
}

// ---------------------------------------------------------------------------------------------
// Correctness: blockPool

function checkPool() {
  say('## Correctness: blockPool (device vs CPU; pass: max |diff| <= 1e-5 x max(1, max |cpu|))');
  say();
  const dims = args.sanitizer ? [1, 2, 128, 40] : [2, 3, 256, 40];
  const values = randn(dims.reduce((a, b) => a * b), 1);
  for (const type of ['float32', 'float16', 'bfloat16']) {
    const x = asType(values, dims, type);
    const xd = put(x);
    const out = nabla.blockPoolSync(xd, DEV);
    const got = host(out).data;
    free(xd, out);
    const want = nabla.blockPoolSync(x, CPU).data;
    const diff = maxAbsDiff(got, want);
    const scale = Math.max(1, ...Array.from(want, Math.abs));
    report.correctness.pool.push({ op: 'blockPool', dtype: SHORT[type], shape: `[${dims}]`, 'max abs diff': fmt(diff), result: diff <= 1e-5 * scale ? 'PASS' : 'FAIL' });
  }
  table(report.correctness.pool);
}

// ---------------------------------------------------------------------------------------------
// Correctness: nablaMask

/**
 * Blocks where the two masks differ, and whether each lies at the cut: for 'cdf' its ascending
 * running sum of the CPU map is within 1e-4 of 1 - thr; for 'topk' it swapped places with a block
 * of the same row whose probability is within 1e-5 (a near tie).
 */
function compareMasks(gpuDense, cpu, method, threshold) {
  const map = cpu.map;
  const nk = cpu.dims[3];
  const want = cpu.toDense();
  let differing = 0, atCut = 0;
  const rows = want.length / nk;
  for (let r = 0; r < rows; r++) {
    const diffs = [];
    for (let j = 0; j < nk; j++) if (gpuDense[r * nk + j] !== want[r * nk + j]) diffs.push(j);
    if (diffs.length === 0) continue;
    differing += diffs.length;
    const row = Array.from(map.subarray(r * nk, (r + 1) * nk));
    if (method === 'cdf') {
      const order = [...row.keys()].sort((x, y) => row[x] - row[y] || y - x);
      const running = new Float64Array(nk);
      let sum = 0;
      for (const j of order) running[j] = sum += row[j];
      for (const j of diffs) if (Math.abs(running[j] - (1 - threshold)) <= 1e-4) atCut++;
    } else {
      for (const j of diffs)
        if (diffs.some((o) => o !== j && gpuDense[r * nk + o] !== gpuDense[r * nk + j] && Math.abs(row[o] - row[j]) <= 1e-5)) atCut++;
    }
  }
  return { differing, atCut };
}

/**
 * Runs fn() with the CUDA backend's mask kernel `kernel`: 'fast' (the default) or 'simple' (selected by
 * NABLA_MASK_KERNEL=simple, which the native side reads when each mask call starts; the CPU backend
 * ignores it). The caller's own setting is restored afterwards.
 */
const MASK_KERNELS = ['fast', 'simple'];
function withMaskKernel(kernel, fn) {
  const before = process.env.NABLA_MASK_KERNEL;
  if (kernel === 'simple') process.env.NABLA_MASK_KERNEL = 'simple';
  else delete process.env.NABLA_MASK_KERNEL;
  try {
    return fn();
  } finally {
    if (before === undefined) delete process.env.NABLA_MASK_KERNEL;
    else process.env.NABLA_MASK_KERNEL = before;
  }
}

function checkMask() {
  say('## Correctness: nablaMask (device vs CPU; pass: every differing block lies at the cut)');
  say();
  say('A differing block is "at the cut" for cdf when its ascending running sum in the CPU map is within 1e-4 of 1 - thr;');
  say('for topk when it swapped with a block of the same row whose probability is within 1e-5 (a near tie).');
  say();
  const shapes = args.sanitizer
    ? [{ grid: [3, 16, 16], H: 1, D: 64 }]
    : [{ grid: [6, 16, 16], H: 2, D: 64 }, { grid: [5, 24, 32], H: 3, D: 128 }];
  for (const s of shapes) {
    const T = s.grid[0];
    const S = s.grid[0] * s.grid[1] * s.grid[2];
    const dims = [1, s.H, S, s.D];
    const grid = s.grid;
    const f2 = [0, Math.max(1, Math.floor(T / 3)), T];
    const f3 = [0, 1, Math.max(2, Math.floor(T / 2)), T].filter((v, i, a) => i === 0 || v > a[i - 1]);
    const cases = [
      { name: 'cdf 0.4', opts: { threshold: 0.4 } },
      { name: 'cdf 0.7', opts: { threshold: 0.7 } },
      { name: 'cdf 0.9', opts: { threshold: 0.9 } },
      { name: 'topk 0.3', opts: { threshold: 0.3, method: 'topk' } },
      { name: 'cdf 0.5 + sta 3,1,1', opts: { threshold: 0.5, grid, sta: [3, 1, 1] } },
      { name: `cdf 0.6 + frames ${f2}`, opts: { threshold: 0.6, grid, frames: f2 } },
      { name: `cdf 0.4 + frames ${f3} + sta 5,3,3`, opts: { threshold: 0.4, grid, frames: f3, sta: [5, 3, 3] } },
      { name: `topk 0.5 + frames ${f2} + sta 3,1,1`, opts: { threshold: 0.5, method: 'topk', grid, frames: f2, sta: [3, 1, 1] } },
    ];
    const qv = waveTokens(1, s.H, grid, s.D, 11 + s.D);
    const kv = waveTokens(1, s.H, grid, s.D, 12 + s.D);
    for (const type of ['float32', 'bfloat16', 'float16']) {
      if (args.sanitizer && type === 'float16') continue;
      const q = asType(qv, dims, type), k = asType(kv, dims, type);
      const qd = put(q), kd = put(k);
      try {
        for (const c of cases) {
          const cpu = nabla.nablaMaskSync(q, k, { ...c.opts, returnMap: true, ...CPU });
          for (const kernel of MASK_KERNELS) {
            const dense = withMaskKernel(kernel, () => {
              const m = nabla.nablaMaskSync(qd, kd, { ...c.opts, ...DEV });
              try {
                return m.toDense();
              } finally {
                free(m);
              }
            });
            const { differing, atCut } = compareMasks(dense, cpu, c.opts.method ?? 'cdf', c.opts.threshold);
            report.correctness.mask.push({
              op: 'nablaMask', kernel, case: c.name, dtype: SHORT[type], shape: `H${s.H} grid ${grid.join('x')} D${s.D}`,
              'cpu density': fmt(cpu.density()), 'blocks differing': differing, 'all at cut': differing === atCut ? 'yes' : `no (${differing - atCut} not)`,
              result: differing === atCut ? 'PASS' : 'FAIL',
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
 * Exact ties: constant q and k with 8 blocks make every P exactly 1/8 and every running sum exact,
 * so both backends must agree block for block (equal probabilities keep the lower index).
 */
function checkMaskTies() {
  const dims = [1, 2, 512, 16];
  const q = nabla.tensor(new Float32Array(2 * 512 * 16).fill(0.25), dims);
  const qd = put(q);
  try {
    for (const opts of [{ threshold: 0.5 }, { threshold: 0.5, method: 'topk' }, { threshold: 0.3 }]) {
      const cpu = nabla.nablaMaskSync(q, q, { ...opts, ...CPU });
      for (const kernel of MASK_KERNELS) {
        const same = withMaskKernel(kernel, () => {
          const m = nabla.nablaMaskSync(qd, qd, { ...opts, ...DEV });
          try {
            return m.kvCounts.every((c, i) => c === cpu.kvCounts[i]) && m.kvIndices.every((x, i) => x === cpu.kvIndices[i]);
          } finally {
            free(m);
          }
        });
        report.correctness.mask.push({
          op: 'nablaMask', kernel, case: `exact ties, ${opts.method ?? 'cdf'} ${opts.threshold}`, dtype: 'fp32', shape: 'H2 8 blocks, constant q = k',
          'cpu density': fmt(cpu.density()), 'blocks differing': same ? 0 : 'lists differ', 'all at cut': same ? 'yes' : 'no',
          result: same ? 'PASS' : 'FAIL',
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
 * Attention over a dense 0/1 block mask (or all blocks when `dense` is undefined) in one of two
 * arithmetics: `rnd` undefined = fp64 throughout (the reference); otherwise the naive computation
 * in the inputs' precision, as PyTorch's reference (FlashAttention's tests, attention_ref with
 * upcast=False) does it: q*scale rounded, scores accumulated in fp32 and rounded, softmax in fp32
 * rounded to the dtype, P.V accumulated in fp32 and rounded. Rows with no kept block give zeros.
 */
function attentionRef(qf, kf, vf, c, dense, scale, rnd) {
  const { B, H, Sq, Skv, D, Dv } = c;
  const nq = Sq / 64, nk = Skv / 64;
  const out = new Float64Array(B * H * Sq * Dv);
  const f = Math.fround;
  const qs = new Float64Array(D);
  const s = new Float64Array(Skv);
  const acc = new Float64Array(Dv);
  for (let bh = 0; bh < B * H; bh++) {
    const b = Math.floor(bh / H), h = bh % H;
    for (let i = 0; i < Sq; i++) {
      const row = ((b * H + h) * nq + Math.floor(i / 64)) * nk;
      const keys = [];
      for (let kb = 0; kb < nk; kb++) if (!dense || dense[row + kb]) for (let t = kb * 64; t < kb * 64 + 64; t++) keys.push(t);
      if (keys.length === 0) continue;
      const qo = (bh * Sq + i) * D;
      for (let d = 0; d < D; d++) qs[d] = rnd ? rnd(qf[qo + d] * scale) : qf[qo + d] * scale;
      let m = -Infinity;
      for (const t of keys) {
        const ko = (bh * Skv + t) * D;
        let dot = 0;
        if (rnd) {
          for (let d = 0; d < D; d++) dot = f(dot + qs[d] * kf[ko + d]);
          dot = rnd(dot);
        } else for (let d = 0; d < D; d++) dot += qs[d] * kf[ko + d];
        s[t] = dot;
        if (dot > m) m = dot;
      }
      let l = 0;
      for (const t of keys) {
        s[t] = rnd ? f(Math.exp(s[t] - m)) : Math.exp(s[t] - m);
        l = rnd ? f(l + s[t]) : l + s[t];
      }
      acc.fill(0);
      for (const t of keys) {
        const p = rnd ? rnd(s[t] / l) : s[t] / l;
        const vo = (bh * Skv + t) * Dv;
        if (rnd) for (let d = 0; d < Dv; d++) acc[d] = f(acc[d] + p * vf[vo + d]);
        else for (let d = 0; d < Dv; d++) acc[d] += p * vf[vo + d];
      }
      const oo = (bh * Sq + i) * Dv;
      for (let d = 0; d < Dv; d++) out[oo + d] = rnd ? rnd(acc[d]) : acc[d];
    }
  }
  return out;
}

/** native.attention into an output poisoned with 0xff bytes (NaN), so unwritten elements show. */
function poisonedAttention(qd, kd, vd, maskDev, c, type, kernel) {
  const n = c.B * c.H * c.Sq * c.Dv;
  const Storage = type === 'float32' ? Float32Array : Uint16Array;
  const hostOut = new Storage(n);
  let out = hostOut;
  if (SELF_TEST) new Uint8Array(hostOut.buffer).fill(0xff);
  else {
    out = new native.DeviceBuffer(DEVICE_INDEX, hostOut.byteLength);
    out.fill(0xff);
  }
  const operand = (t) => (t instanceof nabla.DeviceTensor ? t.buffer : t.data);
  const lists = maskDev ? maskDev.operands() : undefined;
  try {
    native.attention({
      q: operand(qd), k: operand(kd), v: operand(vd), out, dtype: DTYPE_CODE[type], batch: c.B, heads: c.H,
      seqQ: c.Sq, seqKv: c.Skv, headDim: c.D, valueDim: c.Dv, scale: 1 / Math.sqrt(c.D), kernel,
      ...(lists ? { kvCounts: lists.kvCounts, kvIndices: lists.kvIndices } : {}),
      backend: DEV.backend, device: DEVICE_INDEX,
    }, false);
    if (!SELF_TEST) out.download(hostOut, false);
  } finally {
    if (!SELF_TEST) out.dispose();
  }
  return nabla.toFloat32(hostOut, type);
}

function checkAttention() {
  say('## Correctness: attention (device vs CPU and vs an fp64 reference)');
  say();
  say('Pass when all hold: nMSE = sum (gpu-cpu)^2 / sum cpu^2 <= 5e-4 (1e-8 for fp32); no non-finite output');
  say('(the output buffer is filled with 0xff = NaN before the call, so unwritten elements show); query blocks with');
  say('no kept block are exactly zero; and the FlashAttention rule: max |gpu - fp64 ref| <= 2 x max |naive - fp64 ref|');
  say('+ atol, where "naive" is the same-precision computation PyTorch\'s reference does (q*scale, scores, softmax');
  say('probabilities and output each rounded to the dtype, fp32 accumulation) and atol = 2 x |round(0.3) - 0.3| in the');
  say('dtype (FlashAttention-3\'s rounding allowance); the rule is for fp16/bf16 (fp32 rows: nMSE decides; ratio shown).');
  say('"round-once" = max |round(fp64 ref) - fp64 ref|, for scale. FA rule column: verdict (err / (2 x naive + atol)).');
  say();
  const tiny = args.sanitizer;
  const shapes = {
    a64: tiny ? { B: 1, H: 1, Sq: 128, Skv: 128, D: 64, Dv: 64 } : { B: 1, H: 2, Sq: 256, Skv: 256, D: 64, Dv: 64 },
    c128: tiny ? { B: 1, H: 1, Sq: 128, Skv: 192, D: 128, Dv: 128 } : { B: 2, H: 1, Sq: 192, Skv: 320, D: 128, Dv: 128 },
    odd: tiny ? { B: 1, H: 1, Sq: 128, Skv: 128, D: 40, Dv: 24 } : { B: 1, H: 2, Sq: 128, Skv: 192, D: 40, Dv: 24 },
    // rows of more than 32 kept blocks (a kernel may stage the block list in 32-entry pieces)
    long: tiny ? { B: 1, H: 1, Sq: 64, Skv: 64 * 72, D: 64, Dv: 64 } : { B: 1, H: 1, Sq: 128, Skv: 64 * 80, D: 128, Dv: 128 },
  };
  const cases = [];
  for (const kernel of ['fast', 'simple'])
    for (const type of ['bfloat16', 'float16'])
      for (const shape of ['a64', 'c128']) cases.push({ kernel, type, shape, sparse: true });
  for (const kernel of ['fast', 'simple']) cases.push({ kernel, type: 'bfloat16', shape: 'c128', sparse: false });
  cases.push({ kernel: 'simple', type: 'float32', shape: 'a64', sparse: true });
  cases.push({ kernel: 'simple', type: 'float32', shape: 'odd', sparse: true });
  cases.push({ kernel: 'simple', type: 'float32', shape: 'odd', sparse: false });
  cases.push({ kernel: 'simple', type: 'bfloat16', shape: 'odd', sparse: true });
  for (const kernel of ['fast', 'simple']) cases.push({ kernel, type: 'bfloat16', shape: 'long', sparse: true });
  cases.push({ kernel: 'fast', type: 'bfloat16', shape: 'long', sparse: false });

  for (const cs of cases) {
    const c = shapes[cs.shape];
    const label = { op: cs.sparse ? 'blockSparseAttention' : 'attention (dense)', kernel: cs.kernel, dtype: SHORT[cs.type], shape: `B${c.B} H${c.H} Sq${c.Sq} Skv${c.Skv} D${c.D} Dv${c.Dv}` };
    try {
      const seed = c.D * 10 + c.Skv;
      const q = asType(randn(c.B * c.H * c.Sq * c.D, seed + 1), [c.B, c.H, c.Sq, c.D], cs.type);
      const k = asType(randn(c.B * c.H * c.Skv * c.D, seed + 2), [c.B, c.H, c.Skv, c.D], cs.type);
      const v = asType(randn(c.B * c.H * c.Skv * c.Dv, seed + 3), [c.B, c.H, c.Skv, c.Dv], cs.type);
      const nq = c.Sq / 64, nk = c.Skv / 64;
      let dense, mask;
      if (cs.sparse) {
        const r = rng(seed);
        dense = Uint8Array.from({ length: c.B * c.H * nq * nk }, () => (r() < 0.5 ? 1 : 0));
        dense.fill(0, 0, nk); // query block 0 of (b=0, h=0) keeps nothing: its output must be zeros
        dense[nk + 0] = 1; // and some row keeps at least one block
        mask = nabla.BlockMask.fromDense(dense, [c.B, c.H, nq, nk]);
      }
      const qd = put(q), kd = put(k), vd = put(v);
      const md = mask && !SELF_TEST ? mask.toDevice({ device: DEVICE_INDEX }) : mask;
      let got;
      try {
        got = poisonedAttention(qd, kd, vd, md, c, cs.type, cs.kernel);
      } finally {
        free(qd, kd, vd);
        if (md && md !== mask) md.dispose();
      }
      const cpu = nabla.toFloat32Array(cs.sparse ? nabla.blockSparseAttentionSync(q, k, v, mask, CPU) : nabla.attentionSync(q, k, v, CPU));
      const qf = nabla.toFloat32Array(q), kf = nabla.toFloat32Array(k), vf = nabla.toFloat32Array(v);
      const scale = 1 / Math.sqrt(c.D);
      const ref = attentionRef(qf, kf, vf, c, dense, scale, undefined);
      const rnd = rounder(cs.type);
      const naive = attentionRef(qf, kf, vf, c, dense, scale, rnd);
      let nonFinite = 0;
      for (const x of got) if (!Number.isFinite(x)) nonFinite++;
      let emptyNonZero = 0;
      if (dense)
        for (let row = 0; row < c.B * c.H * nq; row++) {
          let kept = 0;
          for (let j = 0; j < nk; j++) kept += dense[row * nk + j];
          if (kept) continue;
          const bh = Math.floor(row / nq), i = row % nq;
          for (let s = i * 64; s < i * 64 + 64; s++)
            for (let d = 0; d < c.Dv; d++) if (got[(bh * c.Sq + s) * c.Dv + d] !== 0) emptyNonZero++;
        }
      const nmse = normalisedMse(got, cpu);
      const errGpu = maxAbsDiff(got, ref);
      const errNaive = maxAbsDiff(naive, ref);
      let errRound = 0;
      for (let i = 0; i < ref.length; i++) errRound = Math.max(errRound, Math.abs(rnd(ref[i]) - ref[i]));
      const atol = 2 * Math.abs(rnd(0.3) - 0.3);
      const nmseLimit = cs.type === 'float32' ? 1e-8 : 5e-4;
      // fp32: the rule is meant for half precision (an fp32 kernel's ulp-level error is not 2x the naive one's); nMSE decides
      const faApplies = cs.type !== 'float32';
      const faOk = !faApplies || errGpu <= 2 * errNaive + atol;
      const ok = nmse <= nmseLimit && nonFinite === 0 && emptyNonZero === 0 && faOk;
      report.correctness.attention.push({
        ...label, density: cs.sparse ? fmt(dense.reduce((a, b) => a + b, 0) / dense.length) : 1,
        'nMSE vs cpu': fmt(nmse), 'max abs vs cpu': fmt(maxAbsDiff(got, cpu)), 'err vs fp64': fmt(errGpu),
        'naive err': fmt(errNaive), 'round-once err': fmt(errRound), 'FA rule': `${!faApplies ? 'n/a fp32' : faOk ? 'ok' : 'VIOLATED'} (${fmt(errGpu / (2 * errNaive + atol), 2)})`,
        'non-finite': nonFinite, 'empty rows != 0': dense ? emptyNonZero : 'n/a', result: ok ? 'PASS' : 'FAIL',
      });
    } catch (e) {
      report.correctness.attention.push({ ...label, density: '', 'nMSE vs cpu': '', 'max abs vs cpu': '', 'err vs fp64': '', 'naive err': '', 'round-once err': '', 'FA rule': '', 'non-finite': '', 'empty rows != 0': '', result: `FAIL (${String(e.message).split('\n')[0]})` });
    }
  }
  table(report.correctness.attention);
}

// ---------------------------------------------------------------------------------------------
// Timings

/**
 * bf16 [B, H, S, D] bits of structured (DiT-like, tile-ordered) tokens: `genHeads` distinct heads
 * are generated and replicated over the H heads (generating 344M values in JS would take minutes).
 */
function structuredBf16(B, H, grid, D, seed, genHeads, kind) {
  const S = grid[0] * grid[1] * grid[2];
  const g = Math.min(genHeads, B * H);
  const pattern = kind === 'uniform' ? uniform(g * S * D, seed) : waveTokens(1, g, grid, D, seed);
  const bits = nabla.fromFloat32(pattern, 'bfloat16');
  if (g === B * H) return bits;
  const out = new Uint16Array(B * H * S * D);
  for (let bh = 0; bh < B * H; bh++) out.set(bits.subarray((bh % g) * S * D, (bh % g + 1) * S * D), bh * S * D);
  return out;
}

function timingShapes() {
  if (SELF_TEST)
    return [
      { name: 'selftest-small', B: 1, H: 2, grid: [4, 16, 16], D: 128, genHeads: 2, denseKernels: ['fast', 'simple'], export: true },
      { name: 'selftest-large', B: 1, H: 2, grid: [3, 16, 32], D: 128, genHeads: 1, denseKernels: ['fast'], export: false },
    ];
  const shapes = [{ name: 'small', B: 1, H: 8, grid: [16, 32, 32], D: 128, genHeads: 8, denseKernels: ['fast', 'simple'], export: true }];
  if (args.big) shapes.push({ name: 'wan2.1-14b-720p', B: 1, H: 40, grid: [21, 40, 80], D: 128, genHeads: args.genHeads ?? (args.quick ? 2 : 4), denseKernels: ['fast'], export: false });
  return shapes;
}

const THRESHOLDS = [0.4, 0.7, 0.9];

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
  const qh = nabla.tensor(qBits, dims, 'bfloat16'), kh = nabla.tensor(kBits, dims, 'bfloat16'), vh = nabla.tensor(vBits, dims, 'bfloat16');
  const qd = put(qh), kd = put(kh), vd = put(vh);
  console.error(`gpu-check: ${s.name}: inputs generated in ${genSeconds.toFixed(1)} s (${s.genHeads} distinct heads of ${B * H})`);
  const rows = [];
  const base = { shape: s.name, dims: shapeText, 'distinct heads': `${Math.min(s.genHeads, B * H)}/${B * H}` };
  const flopsDense = attentionFlops(B, H, S, S, D);
  const exp = { name: s.name, B, H, S, D, grid, dtype: 'bfloat16', scale: 1 / Math.sqrt(D), genHeads: s.genHeads, masks: {}, dense: {} };
  try {
    // dense attention
    const dense = {};
    for (const kernel of s.denseKernels) {
      try {
        const t = timeSync(() => nabla.attentionSync(qd, kd, vd, { ...DEV, kernel }), (o) => free(o));
        dense[kernel] = t;
        exp.dense[kernel] = t.median;
        rows.push({ ...base, op: 'attention (dense)', kernel, threshold: '', density: 1, ms: t.median, 'min-max ms': `${fmt(t.min)}-${fmt(t.max)}`,
          'TFLOP/s': flopsDense / t.median / 1e9, 'mask % of sparse': '', '% of dense TFLOP/s': '', 'ms / (density x dense ms)': '' });
      } catch (e) {
        rows.push({ ...base, op: 'attention (dense)', kernel, threshold: '', density: 1, ms: `error: ${String(e.message).split('\n')[0]}` });
      }
    }
    const denseFast = dense.fast;
    for (const threshold of THRESHOLDS) {
      const label = { ...base, threshold: String(threshold) };
      try {
        const tms = Object.fromEntries(MASK_KERNELS.map((kernel) =>
          [kernel, withMaskKernel(kernel, () => timeSync(() => nabla.nablaMaskSync(qd, kd, { threshold, ...DEV }), (m) => free(m)))]));
        const tm = tms.fast;
        const mask = nabla.nablaMaskSync(qd, kd, { threshold, ...DEV });
        try {
          const density = mask.density();
          for (const kernel of MASK_KERNELS)
            rows.push({ ...label, op: 'nablaMask', kernel, density, ms: tms[kernel].median, 'min-max ms': `${fmt(tms[kernel].min)}-${fmt(tms[kernel].max)}`,
              'TFLOP/s': '', 'mask % of sparse': '', '% of dense TFLOP/s': '', 'ms / (density x dense ms)': '' });
          const ta = timeSync(() => nabla.blockSparseAttentionSync(qd, kd, vd, mask, { ...DEV, kernel: 'fast' }), (o) => free(o));
          const tflops = attentionFlops(B, H, S, S, D, density) / ta.median / 1e9;
          const denseTflops = denseFast ? flopsDense / denseFast.median / 1e9 : undefined;
          rows.push({ ...label, op: 'blockSparseAttention', kernel: 'fast', density, ms: ta.median, 'min-max ms': `${fmt(ta.min)}-${fmt(ta.max)}`,
            'TFLOP/s': tflops, 'mask % of sparse': (100 * tm.median) / ta.median,
            '% of dense TFLOP/s': denseTflops ? (100 * tflops) / denseTflops : 'n/a',
            'ms / (density x dense ms)': denseFast ? ta.median / (density * denseFast.median) : 'n/a' });
          const entry = { density, maskMs: tm.median, oursMs: ta.median, oursTflops: tflops };
          if (exporter) {
            const dn = mask.toDense();
            entry.file = exporter.npy(`${s.name}-mask-thr${threshold}.npy`, [B, H, S / 64, S / 64], dn);
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
        rows.push({ ...label, op: 'nablaMask / blockSparseAttention', kernel: 'fast', density: '', ms: `error: ${String(e.message).split('\n')[0]}` });
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

function timings(exporter) {
  say(`## Timings (${SELF_TEST ? 'CPU backend self-test' : 'CUDA'}, device tensors, sync ops; warm-up ${WARMUP}, median of ${ITERS})`);
  say();
  say('Inputs: waveTokens (smooth functions of (t, y, x) + noise, tile order) for q and k, uniform v, bf16;');
  say('large presets replicate a few generated heads over all heads. TFLOP/s counts kept blocks only:');
  say('4*B*H*S^2*D*density / time. "ms / (density x dense ms)" is 1 for a kernel that tracks the ideal sparse speedup.');
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
  const cols = ['shape', 'dims', 'distinct heads', 'op', 'kernel', 'threshold', 'density', 'ms', 'min-max ms', 'TFLOP/s', 'mask % of sparse', '% of dense TFLOP/s', 'ms / (density x dense ms)'];
  table(report.timings.map((r) => Object.fromEntries(cols.map((c) => [c, r[c] ?? '']))));
  return exports;
}

function makeExporter(dir) {
  fs.mkdirSync(dir, { recursive: true });
  return {
    dir,
    npy(name, shape, data) {
      saveNpy(path.join(dir, name), shape, data);
      return name;
    },
  };
}

// ---------------------------------------------------------------------------------------------

function main() {
  header();
  for (const [name, fn] of [['blockPool', checkPool], ['nablaMask', checkMask], ['attention', checkAttention]]) {
    try {
      fn();
    } catch (e) {
      sectionError(`correctness ${name}`, e);
    }
  }
  let exports = [];
  const exportDir = args.exportDir ?? args.out;
  if (!args.sanitizer) {
    const exporter = args.out ? makeExporter(path.resolve(exportDir)) : undefined;
    exports = timings(exporter);
  }
  const all = [...report.correctness.pool, ...report.correctness.mask, ...report.correctness.attention];
  const failed = all.filter((r) => !String(r.result).startsWith('PASS'));
  const summary = `correctness: ${all.length - failed.length} passed, ${failed.length} failed` +
    (report.errors.length ? `; ${report.errors.length} section error(s)` : '');
  say(`## Summary`);
  say();
  say(summary);
  for (const f of failed) say(`- FAIL: ${f.op} ${f.case ?? ''} ${f.kernel ?? ''} ${f.dtype} ${f.shape}: ${f.result}`);
  if (SELF_TEST) say(`\n(${SELF_TEST_BANNER})`);
  if (args.out && !args.sanitizer) {
    const out = path.resolve(args.out);
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'gpu-check.md'), markdown.join('\n') + '\n');
    fs.writeFileSync(path.join(out, 'gpu-check.json'), JSON.stringify({ selfTest: SELF_TEST, ...report, summary }, null, 1) + '\n');
    const meta = {
      selfTest: SELF_TEST, version: nabla.VERSION, device: report.header.device, git: report.header.git, date: report.header.date,
      dataDir: path.resolve(exportDir),
      note: 'q/k/v/out .npy are bf16 values widened exactly to float32 (NumPy has no bfloat16); masks are uint8 [B, H, S/64, S/64]; ' +
        'ms are medians of synchronous calls on device tensors (process.hrtime)',
      shapes: exports,
    };
    fs.writeFileSync(path.join(out, 'meta.json'), JSON.stringify(meta, null, 1) + '\n');
    if (path.resolve(exportDir) !== out) fs.writeFileSync(path.join(path.resolve(exportDir), 'meta.json'), JSON.stringify(meta, null, 1) + '\n');
    console.log(`\ngpu-check: wrote ${path.join(out, 'gpu-check.md')}, gpu-check.json, meta.json; .npy files in ${path.resolve(exportDir)}`);
  }
  process.exitCode = failed.length || report.errors.length ? 1 : 0;
}

main();
