#!/usr/bin/env node
// @ts-check
// CPU benchmark (needs `npm install` first): dense and block-sparse attention against the machine's
// single-precision GEMM rate (NumPy, measured in the same run), and the cost of building the NABLA
// mask relative to the sparse attention it selects. Prints markdown tables; asserts nothing.
//
//   node bench/cpu-attention.js [--iters 5] [--seq 4096] [--heads 4] [--head-dim 64]
'use strict';
const { spawnSync } = require('child_process');
const os = require('os');
const nabla = require('../dist');
const { attentionFlops } = require('../dist/flops');
const { THRESHOLD_SWEEP } = require('../dist/presets');
const { rng, uniform, waveTokens } = require('../dist/synthetic');
const { timeIt, markdownTable, intFlag } = require('./common');

/**
 * @param {string} name
 * @param {number} fallback
 */
const flag = (name, fallback) => intFlag('cpu-attention', name, fallback);

const iters = flag('iters', 5);
const S = flag('seq', 4096),
  H = flag('heads', 4),
  D = flag('head-dim', 64),
  B = 1;
if (S % 1024 !== 0) {
  console.error('cpu-attention: --seq must be a multiple of 1024 (the mask rows use a T x 32 x 32 token grid)');
  process.exit(2);
}
const CPU = /** @type {const} */ ({ backend: 'cpu' });

/** NumPy float32 GEMM GFLOP/s (n x n x n, best of 5), or undefined without NumPy. */
/** @returns {{ gflops: number | undefined, note: string }} */
function numpyGemmGflops(n = 4096) {
  const code = `
import time, numpy as np
a = np.random.rand(${n}, ${n}).astype(np.float32); b = np.random.rand(${n}, ${n}).astype(np.float32)
a @ b
best = min((lambda t0: (a @ b, time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(5))
try:
    from threadpoolctl import threadpool_info
    info = [(i.get('internal_api'), i.get('architecture'), i.get('num_threads')) for i in threadpool_info()]
except Exception:
    info = 'threadpoolctl not installed'
print(2 * ${n}**3 / best / 1e9); print(info)`;
  // OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE pin an old kernel on some CPUs here: unset for this measurement only.
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const r = spawnSync('python3', ['-c', code], { env, encoding: 'utf8' });
  if (r.status !== 0) return { gflops: undefined, note: 'NumPy unavailable' };
  const [rate, info] = r.stdout.trim().split('\n');
  return { gflops: Number(rate), note: info };
}

/** A mask keeping ceil(density * nk) random key blocks in every row (at least the nominal density). */
/**
 * @param {number} density
 * @param {number} seed
 */
function maskOfDensity(density, seed) {
  const nq = S / 64,
    nk = S / 64;
  const keep = Math.max(1, Math.ceil(density * nk));
  const r = rng(seed);
  const dense = new Uint8Array(B * H * nq * nk);
  for (let row = 0; row < B * H * nq; row++) {
    const ids = [...Array(nk).keys()];
    for (let i = nk - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [ids[i], ids[j]] = [ids[j], ids[i]];
    }
    for (const j of ids.slice(0, keep)) dense[row * nk + j] = 1;
  }
  return nabla.BlockMask.fromDense(dense, [B, H, nq, nk]);
}

async function main() {
  const cpus = os.cpus();
  console.log(`# nabla-attention ${nabla.VERSION} CPU benchmark`);
  console.log(
    `machine: ${cpus[0].model.trim()} x ${cpus.length} threads, node ${process.version}, pool threads ${nabla.backends().build.cpuThreads}`,
  );
  const gemm = numpyGemmGflops();
  console.log(`NumPy sgemm 4096^3: ${gemm.gflops ? gemm.gflops.toFixed(1) + ' GFLOP/s' : 'n/a'} (${gemm.note})\n`);

  const q = nabla.tensor(uniform(B * H * S * D, 1), [B, H, S, D]);
  const k = nabla.tensor(uniform(B * H * S * D, 2), [B, H, S, D]);
  const v = nabla.tensor(uniform(B * H * S * D, 3), [B, H, S, D]);

  const dense = await timeIt(() => nabla.attention(q, k, v, CPU), { iters });
  // Shared 2-core machines are noisy: rates and ratios use the best run (the achievable time); the
  // median and range show the noise.
  const size = { batch: B, heads: H, seqQ: S, seqKv: S, headDim: D, valueDim: D };
  const denseGflops = attentionFlops(size) / dense.min / 1e6;
  const rows = [
    {
      op: 'attention (dense)',
      shape: `B${B} H${H} S${S} D${D} fp32`,
      density: 1,
      'median ms': dense.median,
      'min-max ms': `${dense.min.toFixed(1)}-${dense.max.toFixed(1)}`,
      'GFLOP/s': denseGflops,
      '% of sgemm': gemm.gflops ? (100 * denseGflops) / gemm.gflops : 'n/a',
      'best / (d x best dense)': 1,
      'CPU ms': dense.cpuMin,
      'CPU / (d x dense CPU)': 1,
    },
  ];
  for (const d of [0.1, 0.25, 0.5, 0.75, 1]) {
    const mask = maskOfDensity(d, Math.round(d * 100));
    const t = await timeIt(() => nabla.blockSparseAttention(q, k, v, mask, CPU), { iters });
    const density = mask.density();
    const gflops = attentionFlops(size, density) / t.min / 1e6;
    rows.push({
      op: 'blockSparseAttention',
      shape: `B${B} H${H} S${S} D${D} fp32`,
      density,
      'median ms': t.median,
      'min-max ms': `${t.min.toFixed(1)}-${t.max.toFixed(1)}`,
      'GFLOP/s': gflops,
      '% of sgemm': gemm.gflops ? (100 * gflops) / gemm.gflops : 'n/a',
      'best / (d x best dense)': t.min / (density * dense.min),
      'CPU ms': t.cpuMin,
      'CPU / (d x dense CPU)': t.cpuMin / (density * dense.cpuMin),
    });
  }
  console.log('## Attention (target: dense >= 50% of sgemm; sparse <= 1.15 x d x dense)\n');
  console.log('Rates use the best wall time; "CPU ms" is the least process CPU time of a run (both threads),');
  console.log("which stays steady when the machine's cores are shared.\n");
  console.log(markdownTable(rows));

  // NABLA mask cost on inputs whose block maps are local, as in a video DiT (grid 4 x 32 x 32 = 4096 tokens)
  /** @type {[number, number, number]} */
  const grid = [S / 1024, 32, 32];
  const qs = nabla.tensor(waveTokens(B, H, grid, D, 11), [B, H, S, D]);
  const ks = nabla.tensor(waveTokens(B, H, grid, D, 12), [B, H, S, D]);
  const maskRows = [];
  for (const threshold of THRESHOLD_SWEEP) {
    const build = await timeIt(() => nabla.nablaMask(qs, ks, { threshold, ...CPU }), { iters });
    const mask = await nabla.nablaMask(qs, ks, { threshold, ...CPU });
    const attend = await timeIt(() => nabla.blockSparseAttention(qs, ks, v, mask, CPU), { iters });
    maskRows.push({
      threshold,
      density: mask.density(),
      'mask ms (best)': build.min,
      'sparse attention ms (best)': attend.min,
      'mask / attention %': (100 * build.min) / attend.min,
      'mask / attention % (CPU time)': (100 * build.cpuMin) / attend.cpuMin,
    });
  }
  console.log('\n## NABLA mask build vs the sparse attention it selects (target <= 5%)\n');
  console.log(markdownTable(maskRows));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
