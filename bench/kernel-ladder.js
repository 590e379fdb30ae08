#!/usr/bin/env node
// @ts-check
// The fast2 kernels' ladder, the first step of a GPU round (bench/gpu-run.sh step `ladder`):
// one tiny case of one kernel per rung, each rung in a process of its own under a time limit, so
// that a kernel that faults (and so ends its process's CUDA context) or hangs fails its rung only
// and the table tells which layer is wrong: pooling, then the mask, then attention from the
// simplest case up. Each rung checks the new kernel against the verified one and the CPU backend,
// and that the op reports the new kernel ran. Prints a table last; exit 1 when a rung fails.
//
//   node bench/kernel-ladder.js [--backend cpu] [--list] [RUNG ...]
//
// --backend cpu  every rung on the CPU backend (the kernel options do not apply there, so the
//                comparisons are of the CPU with itself): checks the machinery without a GPU
// --list         prints the rung names
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');

const RUNGS = /** @type {const} */ ([
  ['pool', "blockPool poolKernel 'fast2': the simple kernel's bits, bf16/fp16/fp32, D 64/128, a ragged grid"],
  ['mask', "nablaMask maskKernel 'fast2': the fast kernel's lists and map bits, cdf, topk, causal + documents + STA"],
  ['attn-dense-d64', "attention kernel 'fast2', dense, bf16, D 64, 4 key blocks: CPU and fast"],
  ['attn-sparse-d128', "attention kernel 'fast2', sparse with an empty row, fp16, D 128, Sq != Skv"],
  ['attn-long', "attention kernel 'fast2', rows of 40 kept blocks (the pipeline's steady state), bf16, D 128"],
  ['attn-ragged', "attention kernel 'fast2', ragged grid 2 x 13 x 20 (blocks of 1..64 tokens), NABLA mask, bf16, D 64"],
]);
const LIMIT_MS = 60000;

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  console.log('usage: node bench/kernel-ladder.js [--backend cpu] [--list] [RUNG ...]');
  process.exit(0);
}
if (args.includes('--list')) {
  for (const [name] of RUNGS) console.log(name);
  process.exit(0);
}
const cpu = args.includes('--backend') && args[args.indexOf('--backend') + 1] === 'cpu';
const child = args.indexOf('--run');

if (child >= 0) runRung(args[child + 1], cpu);
else main();

function main() {
  const names = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--backend');
  for (const n of names)
    if (!RUNGS.some(([r]) => r === n)) {
      console.error(`kernel-ladder: unknown rung ${n} (rungs: ${RUNGS.map(([r]) => r).join(', ')})`);
      process.exit(2);
    }
  const rows = [];
  for (const [name, what] of RUNGS) {
    if (names.length > 0 && !names.includes(name)) continue;
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [__filename, '--run', name, ...(cpu ? ['--backend', 'cpu'] : [])], {
      encoding: 'utf8',
      timeout: LIMIT_MS,
      maxBuffer: 16 << 20,
    });
    const ms = Date.now() - t0;
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    const last = (r.stdout ?? '').trim().split('\n').pop() ?? '';
    let result, detail;
    if (r.error && /ETIMEDOUT/.test(String(r.error))) [result, detail] = ['TIMEOUT', `over ${LIMIT_MS / 1000}s`];
    else if (r.signal) [result, detail] = ['CRASH', `signal ${r.signal}: ${tail(out)}`];
    else {
      try {
        const parsed = JSON.parse(last);
        [result, detail] = [parsed.pass ? 'PASS' : 'FAIL', parsed.detail];
      } catch {
        [result, detail] = ['FAIL', `status ${r.status}: ${tail(out)}`];
      }
    }
    rows.push({ name, result, detail, ms });
    console.log(`--- ${name} (${what}): ${result} in ${ms} ms\n${out.trim()}`);
  }
  console.log(`\n## fast2 kernel ladder${cpu ? ' (CPU backend: machinery only)' : ''}\n`);
  console.log('| rung | result | ms | detail |\n|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.name} | ${r.result} | ${r.ms} | ${String(r.detail).replace(/\|/g, '/')} |`);
  const failed = rows.filter((r) => r.result !== 'PASS').length;
  console.log(`\nkernel-ladder: ${rows.length - failed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

/** The last 300 characters of a rung's output, on one line. @param {string} text */
function tail(text) {
  return text.trim().slice(-300).replace(/\s+/g, ' ');
}

/**
 * One rung, in this process: prints its checks, then one JSON line { pass, detail }.
 * @param {string} name
 * @param {boolean} onCpu
 */
function runRung(name, onCpu) {
  const nabla = require(path.join(__dirname, '..', 'dist'));
  const { nablaMaskRan, blockPoolRan } = require(path.join(__dirname, '..', 'dist', 'mask'));
  const { attentionRan } = require(path.join(__dirname, '..', 'dist', 'attention'));
  const oracle = require(path.join(__dirname, '..', 'dist', 'oracle'));
  const { uniform, waveTokens } = require(path.join(__dirname, '..', 'dist', 'synthetic'));
  const DEV = onCpu ? { backend: 'cpu' } : { backend: 'cuda' };
  const CPU = { backend: 'cpu' };
  // the kernel an op must report: the named CUDA kernel, or on the CPU backend any CPU kernel
  const ranIs = (/** @type {string} */ ran, /** @type {string} */ kernel) =>
    onCpu ? ran.startsWith('cpu') : ran === `cuda-${kernel}`;
  /** @type {string[]} */
  const failures = [];
  let checks = 0;
  /** @param {boolean} ok @param {string} what */
  const check = (ok, what) => {
    checks++;
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
    if (!ok) failures.push(what);
  };
  /** @param {string} type @param {[number, number, number]} grid @param {number} B @param {number} H @param {number} D @param {number} seed */
  const tokens = (type, grid, B, H, D, seed) => {
    const S = grid[0] * grid[1] * grid[2];
    return nabla.cast(nabla.tensor(waveTokens(B, H, grid, D, seed), [B, H, S, D]), type);
  };

  try {
    if (name === 'pool') {
      /** @type {[string, [number, number, number], number][]} */
      const cases = [
        ['bfloat16', [2, 16, 16], 64],
        ['float16', [2, 16, 16], 128],
        ['float32', [2, 16, 16], 64],
        ['bfloat16', [2, 13, 20], 64],
      ];
      for (const [type, grid, D] of cases) {
        const x = tokens(type, grid, 1, 2, D, 7);
        const fast2 = blockPoolRan(x, { ...DEV, grid, poolKernel: 'fast2' });
        const simple = blockPoolRan(x, { ...DEV, grid, poolKernel: 'simple' });
        const host = nabla.blockPoolSync(x, { ...CPU, grid });
        const label = `${type} D${D} grid ${grid.join('x')}`;
        check(ranIs(fast2.kernel, 'fast2'), `${label}: ran ${fast2.kernel}`);
        check(oracle.sameBits(toHost(fast2.pooled), toHost(simple.pooled)), `${label}: the simple kernel's bits`);
        const err = oracle.maxAbsDiff(toHost(fast2.pooled), toHost(host));
        check(err <= 1e-5, `${label}: max |fast2 - CPU| ${err.toExponential(2)} <= 1e-5`);
      }
    } else if (name === 'mask') {
      /** @type {[number, number, number]} */
      const grid = [4, 16, 16];
      const q = tokens('bfloat16', grid, 1, 2, 64, 11),
        k = tokens('bfloat16', grid, 1, 2, 64, 12);
      for (const opts of [
        { threshold: 0.7 },
        { threshold: 0.5, method: 'topk' },
        { threshold: 0.4, grid, causal: true, frames: [0, 1, 4], sta: [1, 3, 3] },
      ]) {
        const fast = nablaMaskRan(q, k, { ...opts, ...DEV, returnMap: true, maskKernel: 'fast' }, false);
        const fast2 = nablaMaskRan(q, k, { ...opts, ...DEV, returnMap: true, maskKernel: 'fast2' }, false);
        const label = JSON.stringify(opts);
        check(ranIs(fast2.kernel, 'fast2'), `${label}: ran ${fast2.kernel}`);
        check(
          oracle.sameValues(fast2.mask.kvCounts, fast.mask.kvCounts) &&
            oracle.sameValues(fast2.mask.kvIndices, fast.mask.kvIndices),
          `${label}: the fast kernel's lists`,
        );
        check(oracle.sameBits(fast2.mask.map, fast.mask.map), `${label}: the fast kernel's map bits`);
      }
    } else if (name.startsWith('attn-')) {
      const c = attentionCase(name);
      const q = tokens(c.type, c.grid, 1, 2, c.D, 21);
      const kv = c.kvGrid ?? c.grid;
      const k = tokens(c.type, kv, 1, 2, c.D, 22);
      const S = kv[0] * kv[1] * kv[2];
      const v = nabla.cast(nabla.tensor(uniform(2 * S * c.D, 23), [1, 2, S, c.D]), c.type);
      const mask =
        c.mask === 'nabla'
          ? nabla.nablaMaskSync(q, k, { threshold: 0.6, grid: c.grid, ...CPU })
          : c.mask === 'random'
            ? oracle.randomBlockMask(c.maskDims, 5, c.keep).mask
            : undefined;
      const ran = attentionRan(q, k, v, mask, { ...DEV, kernel: 'fast2' }, false).kernel;
      check(ranIs(ran, 'fast2'), `ran ${ran}`);
      const fast2 = oracle.poisonedAttentionSync(q, k, v, mask, { ...DEV, kernel: 'fast2' });
      const fast = oracle.poisonedAttentionSync(q, k, v, mask, { ...DEV, kernel: 'fast' });
      const cpuOut = oracle.poisonedAttentionSync(q, k, v, mask, CPU);
      check(fast2.every(Number.isFinite), 'every output element written (no NaN left from the poison)');
      const vsCpu = oracle.normalisedMse(fast2, cpuOut),
        fastVsCpu = oracle.normalisedMse(fast, cpuOut);
      check(
        vsCpu <= Math.max(2 * fastVsCpu, 1e-6),
        `nMSE vs CPU ${vsCpu.toExponential(2)} <= max(2 x fast's ${fastVsCpu.toExponential(2)}, 1e-6)`,
      );
      if (mask) {
        const dims = /** @type {[number, number, number, number]} */ (mask.dims);
        const empty = oracle.nonZeroInEmptyRows(fast2, mask.toDense(), dims, c.D);
        check(empty === 0, `rows without a kept block exactly zero (${empty} nonzero)`);
      }
    } else throw new Error(`unknown rung ${name}`);
  } catch (e) {
    failures.push(`error: ${e instanceof Error ? e.message : String(e)}`);
  }
  console.log(
    JSON.stringify({ pass: failures.length === 0, detail: failures.length ? failures.join('; ') : `${checks} checks` }),
  );
  process.exit(0);

  /** pooled means are float32 host tensors (host inputs give host outputs) @param {{ data: unknown }} t */
  function toHost(t) {
    return /** @type {Float32Array} */ (t.data);
  }
}

/**
 * @param {string} name
 * @returns {{ type: string, D: number, grid: [number, number, number], kvGrid?: [number, number, number],
 *   mask: 'dense' | 'random' | 'nabla', maskDims: number[], keep: number }}
 */
function attentionCase(name) {
  switch (name) {
    case 'attn-dense-d64':
      return { type: 'bfloat16', D: 64, grid: [1, 16, 16], mask: 'dense', maskDims: [], keep: 1 };
    case 'attn-sparse-d128':
      return {
        type: 'float16',
        D: 128,
        grid: [2, 16, 16],
        kvGrid: [3, 16, 16],
        mask: 'random',
        maskDims: [1, 2, 8, 12],
        keep: 0.5,
      };
    case 'attn-long':
      return {
        type: 'bfloat16',
        D: 128,
        grid: [1, 16, 16],
        kvGrid: [10, 16, 16],
        mask: 'random',
        maskDims: [1, 2, 4, 40],
        keep: 1,
      };
    case 'attn-ragged':
      return { type: 'bfloat16', D: 64, grid: [2, 13, 20], mask: 'nabla', maskDims: [], keep: 1 };
  }
  throw new Error(`unknown rung ${name}`);
}
