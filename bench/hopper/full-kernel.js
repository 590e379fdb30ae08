#!/usr/bin/env node
// GPU ladder rungs R6 and R7 (bench/hopper/ladder.sh): the whole Hopper attention kernel through the
// addon, on the compiled package (dist/) and build/Release like bench/gpu-check.js.
//
//   node bench/hopper/full-kernel.js check [--tiny]   R6: against an fp64 reference of the same
//        bf16/fp16 inputs and beside the fast kernel; NaN-poisoned outputs (an unwritten element
//        shows up), rows with no kept block must be exactly zero; bf16 and fp16, head dims 64 and
//        128, Sq != Skv, dense and sparse. Pass: finite, zeros where due, and FlashAttention's
//        rule as the fast kernel's checks apply it (bench/gpu-check.js): the largest error
//        against fp64 <= 2 x that of the naive same-precision computation (lib/oracle
//        refAttention with rounding) + 2 x the rounding error of 0.3. The fast kernel's error is
//        shown beside it. A case whose fp64 output is all zeros outside the emptied row tests
//        nothing and fails. Each case prints a line when it starts and its verdict when it ends
//        (written synchronously, so a hang names its case); the table comes last.
//        --tiny: one small case (for compute-sanitizer); every row but the emptied first keeps at
//        least one block.
//   node bench/hopper/full-kernel.js time [--iters N]  R7: fast vs Hopper, bf16, head dim 128,
//        B=1 H=8 S=32768, dense and random masks at the kept fractions of the 720p masks at
//        thresholds 0.4 / 0.7 / 0.9 (4% / 14% / 34%); medians of synchronous calls on device data.
//        The addon exposes no CUDA events, so a call's time is kernel time plus the fixed cost of
//        the call (launch, sync, and for the Hopper path one scratch allocation and free, the
//        ticket reset and the device row order). That fixed cost is measured apart, on a tiny
//        problem of the same path (dense or sparse) whose kernel takes microseconds, and the
//        table shows each kernel's time with its own fixed cost taken off ("kernel ms, est."),
//        so the two kernels are compared on kernel time. Each (case, kernel) prints a line
//        when it starts.
// Exit status 0 when every check passes.
'use strict';
const nabla = require('../../dist');
const { native } = require('../../dist/native');
const { refAttention, maxAbsDiff, poisonedAttentionSync, randomBlockMask } = require('../../dist/oracle');
const { rng, uniform } = require('../../dist/synthetic');
const { attentionFlops } = require('../../dist/flops');
const { summarize } = require('../../dist/timing');
const { markdownTable } = require('../common');

const [mode = 'check', ...rest] = process.argv.slice(2);
const tiny = rest.includes('--tiny');
const itersAt = rest.indexOf('--iters');
const ITERS = itersAt >= 0 ? Number(rest[itersAt + 1]) : 5;

// Blocks kept at random with probability `density`; emptyFirstRow: the first row (batch 0, head 0,
// query block 0) keeps nothing.
function randomMask(B, H, nq, nk, density, seed, emptyFirstRow = false) {
  const r = rng(seed);
  const dense = Uint8Array.from({ length: B * H * nq * nk }, () => (r() < density ? 1 : 0));
  if (emptyFirstRow) dense.fill(0, 0, nk);
  return nabla.BlockMask.fromDense(dense, [B, H, nq, nk]);
}

// attention into a device output filled with 0xff (NaN in fp16/bf16) by the oracle's poisoned
// runner; returns fp32 values.
function run(kernel, qd, kd, vd, maskDev, c) {
  return poisonedAttentionSync(qd, kd, vd, maskDev ?? undefined, {
    backend: 'cuda',
    device: 0,
    kernel,
    scale: 1 / Math.sqrt(c.D),
  });
}

// rounding to the storage type: the naive computation's arithmetic (lib/oracle refAttention)
function rounder(type) {
  if (type === 'float16') return (x) => nabla.float16ToFloat(nabla.floatToFloat16(x));
  return (x) => nabla.bfloat16ToFloat(nabla.floatToBfloat16(x));
}

function check() {
  const shapes = tiny
    ? [{ B: 1, H: 1, Sq: 128, Skv: 192, D: 64 }]
    : [
        { B: 1, H: 2, Sq: 256, Skv: 256, D: 64 },
        { B: 2, H: 1, Sq: 192, Skv: 320, D: 128 },
        { B: 1, H: 3, Sq: 640, Skv: 2560, D: 128 },
        { B: 1, H: 1, Sq: 64, Skv: 64 * 300, D: 128 }, // one row of 300 blocks
      ];
  const rows = [];
  let ok = true;
  for (const type of tiny ? ['bfloat16'] : ['bfloat16', 'float16'])
    for (const c of shapes)
      for (const density of tiny ? [0.5] : [0.5, 1]) {
        const make = (n, seed) =>
          nabla.cast(nabla.tensor(uniform(n, seed), [c.B, c.H, n / (c.B * c.H * c.D), c.D]), type);
        const q = make(c.B * c.H * c.Sq * c.D, 1),
          k = make(c.B * c.H * c.Skv * c.D, 2),
          v = make(c.B * c.H * c.Skv * c.D, 3);
        // the tiny case: the oracle's check mask (the first row empty, every other row keeps a block)
        const dims4 = [c.B, c.H, c.Sq / 64, c.Skv / 64];
        const mask =
          density >= 1
            ? null
            : tiny
              ? randomBlockMask(dims4, c.D + c.Sq, density).mask
              : randomMask(...dims4, density, c.D + c.Sq, true);
        const name = `${type} B${c.B} H${c.H} Sq${c.Sq} Skv${c.Skv} D${c.D} density ${density}`;
        console.log(`case: ${name}`);
        const [qf, kf, vf] = [q, k, v].map(nabla.toFloat32Array);
        const dims = { B: c.B, H: c.H, S: c.Sq, D: c.D },
          scale = 1 / Math.sqrt(c.D),
          dense = mask ? mask.toDense() : undefined;
        const want = refAttention(qf, kf, vf, dims, c.Skv, c.D, scale, dense);
        // a case whose output is zero wherever it is not forced to be cannot tell a kernel that
        // writes zeros from one that computes
        const vacuous = want.subarray(mask ? 64 * c.D : 0).every((x) => x === 0);
        const rnd = rounder(type);
        const naiveError = maxAbsDiff(refAttention(qf, kf, vf, dims, c.Skv, c.D, scale, dense, rnd), want);
        const atol = 2 * Math.abs(rnd(0.3) - 0.3);
        const [qd, kd, vd] = [q, k, v].map((t) => nabla.toDeviceSync(t));
        const md = mask ? mask.toDevice() : null;
        let verdict = 'ok',
          hopperError = NaN,
          fastError = NaN;
        try {
          const hopper = run('hopper', qd, kd, vd, md, c, type);
          const fast = run('fast', qd, kd, vd, md, c, type);
          hopperError = maxAbsDiff(hopper, want);
          fastError = maxAbsDiff(fast, want);
          const finite = hopper.every(Number.isFinite);
          const zeros = !mask || hopper.subarray(0, 64 * c.D).every((x) => x === 0);
          if (vacuous) verdict = 'FAIL: vacuous case: the fp64 output is zero outside the emptied row';
          else if (!finite) verdict = 'FAIL: unwritten or non-finite elements';
          else if (!zeros) verdict = 'FAIL: a row with no kept block is not zero';
          else if (!(hopperError <= 2 * naiveError + atol)) verdict = "FAIL: error above 2x the naive computation's";
        } catch (e) {
          verdict = `FAIL: ${e.message}`;
        } finally {
          [qd, kd, vd].forEach((t) => t.dispose());
          if (md) md.dispose();
        }
        if (verdict !== 'ok') ok = false;
        console.log(
          `case: ${name}: ${verdict} (hopper max err ${hopperError.toExponential(2)}, naive ${naiveError.toExponential(2)}, fast ${fastError.toExponential(2)})`,
        );
        rows.push({
          type,
          shape: `B${c.B} H${c.H} Sq${c.Sq} Skv${c.Skv} D${c.D}`,
          density,
          'hopper max err': hopperError.toExponential(2),
          'naive max err': naiveError.toExponential(2),
          'fast max err': fastError.toExponential(2),
          verdict,
        });
      }
  console.log(markdownTable(rows));
  return ok;
}

// One call of `kernel` through the public ops on device tensors (the output is freed at once).
function attentionCall(kernel, qd, kd, vd, md) {
  return () => {
    const out = md
      ? nabla.blockSparseAttentionSync(qd, kd, vd, md, { kernel })
      : nabla.attentionSync(qd, kd, vd, { kernel });
    out.dispose();
  };
}

// Median wall ms of `iters` synchronous calls (after one warm-up call), and the mean device time of
// their op bodies: CUDA events around each op's work on its stream (native.bodyTime).
function timeCalls(call, iters) {
  call();
  native.bodyTime(true);
  const times = [];
  for (let i = 0; i < iters; i++) {
    const t0 = process.hrtime.bigint();
    call();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const body = native.bodyTime(false);
  return { wallMs: summarize(times).median, deviceMs: body.ms / Math.max(1, body.ops) };
}

function time() {
  const c = { B: 1, H: 8, Sq: 32768, Skv: 32768, D: 128 };
  const type = 'bfloat16';
  const make = (seed) =>
    nabla.toDeviceSync(nabla.cast(nabla.tensor(uniform(c.B * c.H * c.Sq * c.D, seed), [c.B, c.H, c.Sq, c.D]), type));
  const [qd, kd, vd] = [make(1), make(2), make(3)];
  const rows = [];
  for (const [label, density] of [
    ['dense', 1],
    ['thr 0.9 (34%)', 0.34],
    ['thr 0.7 (14%)', 0.14],
    ['thr 0.4 (4%)', 0.04],
  ]) {
    const mask = density < 1 ? randomMask(c.B, c.H, c.Sq / 64, c.Skv / 64, density, 9) : null;
    const md = mask ? mask.toDevice() : null;
    const kept = mask ? mask.density() : 1;
    const row = { case: label, kept: kept.toFixed(3) };
    for (const kernel of ['fast', 'hopper']) {
      console.log(`case: ${label} ${kernel}`);
      try {
        const { wallMs, deviceMs } = timeCalls(attentionCall(kernel, qd, kd, vd, md), ITERS);
        const size = { batch: c.B, heads: c.H, seqQ: c.Sq, seqKv: c.Skv, headDim: c.D, valueDim: c.D };
        row[`${kernel} call ms`] = wallMs.toFixed(3);
        row[`${kernel} device ms`] = deviceMs.toFixed(3);
        row[`${kernel} TFLOP/s (device)`] = (attentionFlops(size, kept) / deviceMs / 1e9).toFixed(0);
      } catch (e) {
        row[`${kernel} call ms`] = `error: ${e.message}`;
      }
    }
    if (md) md.dispose();
    rows.push(row);
  }
  [qd, kd, vd].forEach((t) => t.dispose());
  console.log(`B${c.B} H${c.H} S${c.Sq} D${c.D} ${type}; medians of ${ITERS} synchronous calls (process.hrtime);`);
  console.log(
    'device ms = mean CUDA-event time of the op body on its stream (Hopper: row order, ticket reset, kernel)',
  );
  console.log(markdownTable(rows));
  return true;
}

if (!nabla.backends().cuda) {
  console.log(`no CUDA device: ${nabla.backends().reason}`);
  process.exit(1);
}
process.exit((mode === 'time' ? time() : check()) ? 0 : 1);
