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
//        shown beside it.
//        --tiny: one small case (for compute-sanitizer).
//   node bench/hopper/full-kernel.js time [--iters N]  R7: fast vs Hopper, bf16, head dim 128,
//        B=1 H=8 S=32768, dense and random masks at the kept fractions of the 720p masks at
//        thresholds 0.4 / 0.7 / 0.9 (4% / 14% / 34%); medians of synchronous calls on device data.
//        The addon exposes no CUDA events, so a call's time is kernel time plus the fixed cost of
//        the call (launch, sync, and for the Hopper path one scratch allocation and free, the
//        ticket reset and the device row order). That fixed cost is measured apart, on a tiny
//        problem of the same path (dense or sparse) whose kernel takes microseconds, and the
//        table shows each kernel's time with its own fixed cost taken off ("kernel ms, est."),
//        so the two kernels are compared on kernel time.
// Exit status 0 when every check passes.
'use strict';
const nabla = require('../../dist');
const { native } = require('../../dist/native');
const { DTYPE_CODE } = require('../../dist/dtype');
const { refAttention, maxAbsDiff } = require('../../dist/oracle');
const { rng, uniform } = require('../../dist/synthetic');
const { attentionFlops } = require('../../dist/flops');
const { median } = require('../../dist/timing');
const { markdownTable } = require('../common');

const [mode = 'check', ...rest] = process.argv.slice(2);
const tiny = rest.includes('--tiny');
const itersAt = rest.indexOf('--iters');
const ITERS = itersAt >= 0 ? Number(rest[itersAt + 1]) : 5;

function randomMask(B, H, nq, nk, density, seed, emptyFirstRow) {
  const r = rng(seed);
  const dense = Uint8Array.from({ length: B * H * nq * nk }, () => (r() < density ? 1 : 0));
  if (emptyFirstRow) dense.fill(0, 0, nk);
  return nabla.BlockMask.fromDense(dense, [B, H, nq, nk]);
}

// native.attention into a device output filled with 0xff (NaN in fp16/bf16); returns fp32 values.
function run(kernel, qd, kd, vd, maskDev, c, type) {
  const out = new native.DeviceBuffer(0, c.B * c.H * c.Sq * c.D * 2);
  out.fill(0xff);
  const lists = maskDev ? maskDev.operands() : {};
  try {
    native.attention(
      {
        q: qd.buffer,
        k: kd.buffer,
        v: vd.buffer,
        out,
        dtype: DTYPE_CODE[type],
        batch: c.B,
        heads: c.H,
        seqQ: c.Sq,
        seqKv: c.Skv,
        headDim: c.D,
        valueDim: c.D,
        scale: 1 / Math.sqrt(c.D),
        kernel,
        kvCounts: lists.kvCounts,
        kvIndices: lists.kvIndices,
        backend: 'cuda',
        device: 0,
      },
      false,
    );
    const bits = new Uint16Array(c.B * c.H * c.Sq * c.D);
    out.download(bits, false);
    return nabla.toFloat32(bits, type);
  } finally {
    out.dispose();
  }
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
        const mask = density < 1 ? randomMask(c.B, c.H, c.Sq / 64, c.Skv / 64, density, c.D + c.Sq, true) : null;
        const [qf, kf, vf] = [q, k, v].map(nabla.toFloat32Array);
        const dims = { B: c.B, H: c.H, S: c.Sq, D: c.D },
          scale = 1 / Math.sqrt(c.D),
          dense = mask ? mask.toDense() : undefined;
        const want = refAttention(qf, kf, vf, dims, c.Skv, c.D, scale, dense);
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
          if (!finite) verdict = 'FAIL: unwritten or non-finite elements';
          else if (!zeros) verdict = 'FAIL: a row with no kept block is not zero';
          else if (!(hopperError <= 2 * naiveError + atol)) verdict = "FAIL: error above 2x the naive computation's";
        } catch (e) {
          verdict = `FAIL: ${e.message}`;
        } finally {
          [qd, kd, vd].forEach((t) => t.dispose());
          if (md) md.dispose();
        }
        if (verdict !== 'ok') ok = false;
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

// Median ms of `iters` synchronous calls (after one warm-up call).
function medianMs(call, iters) {
  call();
  const times = [];
  for (let i = 0; i < iters; i++) {
    const t0 = process.hrtime.bigint();
    call();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(times.sort((a, b) => a - b));
}

function attentionCall(kernel, qd, kd, vd, lists, out, c, type) {
  return () =>
    native.attention(
      {
        q: qd.buffer,
        k: kd.buffer,
        v: vd.buffer,
        out,
        dtype: DTYPE_CODE[type],
        batch: c.B,
        heads: c.H,
        seqQ: c.Sq,
        seqKv: c.Skv,
        headDim: c.D,
        valueDim: c.D,
        scale: 1 / Math.sqrt(c.D),
        kernel,
        kvCounts: lists.kvCounts,
        kvIndices: lists.kvIndices,
        backend: 'cuda',
        device: 0,
      },
      false,
    );
}

// The fixed cost of one call of `kernel` (dense or sparse path): a B1 H1 S128 D128 problem, one
// kept block per row when sparse, whose kernels take a few microseconds.
function fixedCostMs(kernel, sparse, type) {
  const c = { B: 1, H: 1, Sq: 128, Skv: 128, D: 128 };
  const make = (seed) =>
    nabla.toDeviceSync(nabla.cast(nabla.tensor(uniform(c.Sq * c.D, seed), [1, 1, c.Sq, c.D]), type));
  const [qd, kd, vd] = [make(4), make(5), make(6)];
  const md = sparse ? nabla.BlockMask.fromDense(Uint8Array.from([1, 0, 0, 1]), [1, 1, 2, 2]).toDevice() : null;
  const out = new native.DeviceBuffer(0, c.Sq * c.D * 2);
  try {
    return medianMs(attentionCall(kernel, qd, kd, vd, md ? md.operands() : {}, out, c, type), 41);
  } finally {
    [qd, kd, vd].forEach((t) => t.dispose());
    if (md) md.dispose();
    out.dispose();
  }
}

function time() {
  const c = { B: 1, H: 8, Sq: 32768, Skv: 32768, D: 128 };
  const type = 'bfloat16';
  const make = (seed) =>
    nabla.toDeviceSync(nabla.cast(nabla.tensor(uniform(c.B * c.H * c.Sq * c.D, seed), [c.B, c.H, c.Sq, c.D]), type));
  const [qd, kd, vd] = [make(1), make(2), make(3)];
  const fixed = {};
  const costs = [];
  for (const kernel of ['fast', 'hopper'])
    for (const sparse of [false, true]) {
      let ms = NaN;
      try {
        ms = fixedCostMs(kernel, sparse, type);
      } catch (e) {
        console.log(`fixed cost of ${kernel} (${sparse ? 'sparse' : 'dense'}): error: ${e.message}`);
      }
      fixed[`${kernel} ${sparse}`] = ms;
      costs.push({ kernel, path: sparse ? 'sparse' : 'dense', 'fixed cost per call, ms': ms.toFixed(3) });
    }
  const rows = [];
  for (const [label, density] of [
    ['dense', 1],
    ['thr 0.9 (34%)', 0.34],
    ['thr 0.7 (14%)', 0.14],
    ['thr 0.4 (4%)', 0.04],
  ]) {
    const mask = density < 1 ? randomMask(c.B, c.H, c.Sq / 64, c.Skv / 64, density, 9, false) : null;
    const md = mask ? mask.toDevice() : null;
    const kept = mask ? mask.density() : 1;
    const row = { case: label, kept: kept.toFixed(3) };
    for (const kernel of ['fast', 'hopper']) {
      const out = new native.DeviceBuffer(0, c.B * c.H * c.Sq * c.D * 2);
      try {
        const ms = medianMs(attentionCall(kernel, qd, kd, vd, md ? md.operands() : {}, out, c, type), ITERS);
        const kernelMs = ms - fixed[`${kernel} ${md !== null}`];
        row[`${kernel} call ms`] = ms.toFixed(3);
        row[`${kernel} kernel ms, est.`] = kernelMs.toFixed(3);
        const size = { batch: c.B, heads: c.H, seqQ: c.Sq, seqKv: c.Skv, headDim: c.D, valueDim: c.D };
        row[`${kernel} TFLOP/s (kernel)`] = (attentionFlops(size, kept) / kernelMs / 1e9).toFixed(0);
      } catch (e) {
        row[`${kernel} call ms`] = `error: ${e.message}`;
      } finally {
        out.dispose();
      }
    }
    if (md) md.dispose();
    rows.push(row);
  }
  [qd, kd, vd].forEach((t) => t.dispose());
  console.log(
    `fixed cost of a call (launch, sync; Hopper: scratch allocation and free, ticket reset, device row order),`,
  );
  console.log(`medians of 41 calls on B1 H1 S128 D128 ${type}:`);
  console.log(markdownTable(costs));
  console.log(`B${c.B} H${c.H} S${c.Sq} D${c.D} ${type}; medians of ${ITERS} synchronous calls (process.hrtime);`);
  console.log('kernel ms, est. = call ms - the fixed cost of the same kernel and path (the addon has no CUDA events)');
  console.log(markdownTable(rows));
  return true;
}

if (!nabla.backends().cuda) {
  console.log(`no CUDA device: ${nabla.backends().reason}`);
  process.exit(1);
}
process.exit((mode === 'time' ? time() : check()) ? 0 : 1);
