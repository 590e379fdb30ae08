#!/usr/bin/env node
// GPU ladder rung R6-probe (bench/hopper/ladder.sh): does the whole Hopper kernel return, case by
// case, from the smallest shape with work upwards? Each case runs in its own process under a time
// limit and prints its line as soon as it ends, so a hang names its case (the line says HANG), a
// trap of the spin limit (NABLA_HOPPER_SPIN_LIMIT_NS) shows as the CUDA error it raises, and one
// case's dead CUDA context does not fail the next. No fp64 reference (R6, full-kernel.js, is the
// accuracy check and spends seconds of JS per case on it): the Hopper output is compared with the
// fast kernel's on the same device inputs.
//
//   node bench/hopper/probe.js [--limit SECONDS] [--case N]
//
// Verdict per case: ok when the call returned, every output element was written and is finite
// (NaN-poisoned output), the rows that keep no block are exactly zero, and
// max |hopper - fast| <= 8 unit roundoffs of the element type x max |fast|: room for the two
// kernels' different rounding of P (its error averages out over a row's keys) and of the output,
// far below the error of a misplaced tile or fragment (of the order of the output itself).
// Exit status 0 when every case is ok.
'use strict';
const { spawnSync } = require('child_process');
const nabla = require('../../dist');
const { maxAbsDiff, nonZeroInEmptyRows, poisonedAttentionSync, randomBlockMask } = require('../../dist/oracle');
const { uniform } = require('../../dist/synthetic');

// From the least the kernel can do with work upwards; each line adds one condition.
const CASES = [
  { what: 'one row, one key block (1 CTA, one consumer idle)', type: 'bfloat16', B: 1, H: 1, Sq: 64, Skv: 64, D: 64 },
  {
    what: "2 rows x 2 blocks, host tensors, grid 2x8x8 (test/cuda.test.ts's call)",
    type: 'bfloat16',
    B: 1,
    H: 1,
    Sq: 128,
    Skv: 128,
    D: 64,
    grid: [2, 8, 8],
  },
  {
    what: '2 rows x 2 blocks, head dim 128 (3 stages, 2 TMA boxes per tile)',
    type: 'bfloat16',
    B: 1,
    H: 1,
    Sq: 128,
    Skv: 128,
    D: 128,
  },
  { what: 'one row of 9 blocks (the ring wraps twice)', type: 'bfloat16', B: 1, H: 1, Sq: 64, Skv: 64 * 9, D: 64 },
  { what: 'float16', type: 'float16', B: 1, H: 1, Sq: 128, Skv: 128, D: 64 },
  {
    what: 'sparse: row order on the device, an empty row among rows with work',
    type: 'bfloat16',
    B: 1,
    H: 2,
    Sq: 256,
    Skv: 256,
    D: 64,
    sparse: true,
  },
  { what: 'sparse, Sq != Skv, batches', type: 'bfloat16', B: 2, H: 1, Sq: 192, Skv: 320, D: 128, sparse: true },
  {
    what: 'sparse, 3 heads, lists of ~20 blocks',
    type: 'float16',
    B: 1,
    H: 3,
    Sq: 640,
    Skv: 2560,
    D: 128,
    sparse: true,
  },
  { what: 'one row of 300 blocks', type: 'bfloat16', B: 1, H: 1, Sq: 64, Skv: 64 * 300, D: 128 },
  {
    what: '512 rows of 16 blocks: more rows than the 264 consumer warpgroups of 132 SMs (tickets, Q slot reused)',
    type: 'bfloat16',
    B: 1,
    H: 4,
    Sq: 8192,
    Skv: 1024,
    D: 128,
  },
  {
    what: "512 sparse rows of 0-2 blocks: a row's every tile loads before its Q slot is free",
    type: 'bfloat16',
    B: 1,
    H: 4,
    Sq: 8192,
    Skv: 128,
    D: 64,
    sparse: true,
  },
];

const UNIT_ROUNDOFF = { bfloat16: 2 ** -8, float16: 2 ** -11 };

function label(c) {
  return `${c.type} B${c.B} H${c.H} Sq${c.Sq} Skv${c.Skv} D${c.D}${c.sparse ? ' sparse' : ' dense'}`;
}

// One case in this process: prints one JSON line.
function runCase(c) {
  const make = (n, seed, seq) => nabla.cast(nabla.tensor(uniform(n, seed), [c.B, c.H, seq, c.D]), c.type);
  const host = [
    make(c.B * c.H * c.Sq * c.D, 1, c.Sq),
    make(c.B * c.H * c.Skv * c.D, 2, c.Skv),
    make(c.B * c.H * c.Skv * c.D, 3, c.Skv),
  ];
  const dims = [c.B, c.H, c.Sq / 64, c.Skv / 64];
  const check = c.sparse ? randomBlockMask(dims, c.D + c.Sq) : null;
  const scale = 1 / Math.sqrt(c.D);
  let call;
  if (c.grid) {
    // host tensors through the public op (its output is not poisoned: unwritten elements would
    // show only as a difference from the fast kernel)
    call = (kernel) =>
      nabla.toFloat32Array(
        nabla.attentionSync(host[0], host[1], host[2], { backend: 'cuda', grid: c.grid, kernel, scale }),
      );
  } else {
    const [q, k, v] = host.map((t) => nabla.toDeviceSync(t));
    const mask = check ? check.mask.toDevice() : undefined;
    call = (kernel) => poisonedAttentionSync(q, k, v, mask, { backend: 'cuda', device: 0, kernel, scale });
  }
  const start = process.hrtime.bigint();
  const hopper = call('hopper');
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const fast = call('fast');
  let peak = 0;
  for (const x of fast) peak = Math.max(peak, Math.abs(x));
  return {
    ms,
    unwritten: hopper.filter((x) => !Number.isFinite(x)).length,
    emptyNonZero: check ? nonZeroInEmptyRows(hopper, check.dense, dims, c.D) : 0,
    diff: maxAbsDiff(hopper, fast),
    limit: 8 * UNIT_ROUNDOFF[c.type] * peak,
  };
}

function verdictOf(r) {
  if (r.unwritten > 0) return `FAIL: ${r.unwritten} elements unwritten or not finite`;
  if (r.emptyNonZero > 0) return `FAIL: ${r.emptyNonZero} non-zero elements in rows with no kept block`;
  if (!(r.diff <= r.limit)) return 'FAIL: differs from the fast kernel';
  return 'ok';
}

function main() {
  const args = process.argv.slice(2);
  const at = (flag) => {
    const i = args.indexOf(flag);
    return i >= 0 ? Number(args[i + 1]) : undefined;
  };
  const only = at('--case');
  if (only !== undefined) {
    try {
      console.log(JSON.stringify(runCase(CASES[only])));
    } catch (e) {
      console.log(JSON.stringify({ error: String(e.message).split('\n')[0] }));
    }
    return 0;
  }
  if (!nabla.backends().cuda) {
    console.log(`no CUDA device: ${nabla.backends().reason}`);
    return 1;
  }
  // a case is a few ms of kernel; the limit covers node and CUDA start-up and the inputs
  const limit = at('--limit') ?? 20;
  console.log(`Hopper kernel probe: each case in its own process, ${limit} s each; hopper vs the fast kernel`);
  console.log('| # | case | what it adds | hopper call ms | max abs diff (limit) | verdict |');
  console.log('|---|---|---|---|---|---|');
  let failed = 0;
  CASES.forEach((c, i) => {
    const child = spawnSync(process.execPath, [__filename, '--case', String(i)], {
      encoding: 'utf8',
      timeout: limit * 1000,
      killSignal: 'SIGKILL',
    });
    let cells;
    if (child.error && child.error.code === 'ETIMEDOUT') cells = ['-', '-', `HANG: no return within ${limit} s`];
    else {
      const line = (child.stdout ?? '').trim().split('\n').pop() ?? '';
      let r;
      try {
        r = JSON.parse(line);
      } catch {
        r = { error: `exit ${child.status}: ${(child.stderr ?? '').trim().split('\n').slice(-1)[0] ?? ''}` };
      }
      cells = r.error
        ? ['-', '-', `FAIL: ${r.error}`]
        : [r.ms.toFixed(2), `${r.diff.toExponential(2)} (${r.limit.toExponential(2)})`, verdictOf(r)];
    }
    if (cells[2] !== 'ok') failed++;
    console.log(`| ${i} | ${label(c)} | ${c.what} | ${cells.join(' | ')} |`);
  });
  console.log(`hopper probe: ${CASES.length - failed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

process.exitCode = main();
