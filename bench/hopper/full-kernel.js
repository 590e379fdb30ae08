#!/usr/bin/env node
// GPU ladder rungs R6 and R7 (bench/hopper/ladder.sh): the whole Hopper attention kernel through the
// addon, on the compiled package (dist/) and build/Release like bench/gpu-check.js.
//
//   node bench/hopper/full-kernel.js check [--tiny]   R6: against an fp64 reference of the same
//        bf16/fp16 inputs and beside the fast kernel; NaN-poisoned outputs (an unwritten element
//        shows up), rows with no kept block must be exactly zero; bf16 and fp16, head dims 64 and
//        128, Sq != Skv, dense and sparse. Pass: finite, zeros where due, and the Hopper kernel's
//        largest error <= 2 x the fast kernel's (FlashAttention's rule, the fast kernel standing
//        in for a naive same-precision computation), with 1e-3 of slack for tiny errors.
//        --tiny: one small case (for compute-sanitizer).
//   node bench/hopper/full-kernel.js time [--iters N]  R7: fast vs Hopper, bf16, head dim 128,
//        B=1 H=8 S=32768, dense and random masks at the kept fractions of the 720p masks at
//        thresholds 0.4 / 0.7 / 0.9 (4% / 14% / 34%); medians of synchronous calls on device data.
// Exit status 0 when every check passes.
'use strict';
const nabla = require('../../dist');
const { native } = require('../../dist/native');
const { DTYPE_CODE } = require('../../dist/dtype');
const { rng, uniform, markdownTable, attentionFlops, median } = require('../common');

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
    native.attention({
      q: qd.buffer, k: kd.buffer, v: vd.buffer, out, dtype: DTYPE_CODE[type], batch: c.B, heads: c.H, seqQ: c.Sq,
      seqKv: c.Skv, headDim: c.D, valueDim: c.D, scale: 1 / Math.sqrt(c.D), kernel,
      kvCounts: lists.kvCounts, kvIndices: lists.kvIndices, backend: 'cuda', device: 0,
    }, false);
    const bits = new Uint16Array(c.B * c.H * c.Sq * c.D);
    out.download(bits, false);
    return nabla.toFloat32(bits, type);
  } finally {
    out.dispose();
  }
}

// fp64 attention over the kept blocks of the rounded inputs (all rows of one 64-query block share a list)
function reference(q, k, v, mask, c) {
  const out = new Float64Array(c.B * c.H * c.Sq * c.D);
  const nq = c.Sq / 64, nk = c.Skv / 64;
  const dense = mask ? mask.toDense() : null;
  const scores = new Float64Array(c.Skv);
  for (let bh = 0; bh < c.B * c.H; bh++)
    for (let i = 0; i < c.Sq; i++) {
      const row = bh * nq + Math.floor(i / 64);
      const keep = (j) => !dense || dense[row * nk + Math.floor(j / 64)] === 1;
      let max = -Infinity;
      for (let j = 0; j < c.Skv; j++) {
        if (!keep(j)) continue;
        let s = 0;
        for (let d = 0; d < c.D; d++) s += q[(bh * c.Sq + i) * c.D + d] * k[(bh * c.Skv + j) * c.D + d];
        scores[j] = s / Math.sqrt(c.D);
        max = Math.max(max, scores[j]);
      }
      if (max === -Infinity) continue; // no kept block: zeros
      let sum = 0;
      for (let j = 0; j < c.Skv; j++) if (keep(j)) sum += (scores[j] = Math.exp(scores[j] - max));
      for (let j = 0; j < c.Skv; j++) {
        if (!keep(j)) continue;
        const p = scores[j] / sum;
        for (let d = 0; d < c.D; d++) out[(bh * c.Sq + i) * c.D + d] += p * v[(bh * c.Skv + j) * c.D + d];
      }
    }
  return out;
}

function maxError(got, want) {
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  return worst;
}

function check() {
  const shapes = tiny ? [{ B: 1, H: 1, Sq: 128, Skv: 192, D: 64 }] : [
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
        const make = (n, seed) => nabla.cast(nabla.tensor(uniform(n, seed), [c.B, c.H, n / (c.B * c.H * c.D), c.D]), type);
        const q = make(c.B * c.H * c.Sq * c.D, 1), k = make(c.B * c.H * c.Skv * c.D, 2), v = make(c.B * c.H * c.Skv * c.D, 3);
        const mask = density < 1 ? randomMask(c.B, c.H, c.Sq / 64, c.Skv / 64, density, c.D + c.Sq, true) : null;
        const want = reference(nabla.toFloat32Array(q), nabla.toFloat32Array(k), nabla.toFloat32Array(v), mask, c);
        const [qd, kd, vd] = [q, k, v].map((t) => nabla.toDeviceSync(t));
        const md = mask ? mask.toDevice() : null;
        let verdict = 'ok', hopperError = NaN, fastError = NaN;
        try {
          const hopper = run('hopper', qd, kd, vd, md, c, type);
          const fast = run('fast', qd, kd, vd, md, c, type);
          hopperError = maxError(hopper, want);
          fastError = maxError(fast, want);
          const finite = hopper.every(Number.isFinite);
          const zeros = !mask || hopper.subarray(0, 64 * c.D).every((x) => x === 0);
          if (!finite) verdict = 'FAIL: unwritten or non-finite elements';
          else if (!zeros) verdict = 'FAIL: a row with no kept block is not zero';
          else if (!(hopperError <= 2 * fastError + 1e-3)) verdict = 'FAIL: error above 2x the fast kernel';
        } catch (e) {
          verdict = `FAIL: ${e.message}`;
        } finally {
          [qd, kd, vd].forEach((t) => t.dispose());
          if (md) md.dispose();
        }
        if (verdict !== 'ok') ok = false;
        rows.push({ type, shape: `B${c.B} H${c.H} Sq${c.Sq} Skv${c.Skv} D${c.D}`, density,
          'hopper max err': hopperError.toExponential(2), 'fast max err': fastError.toExponential(2), verdict });
      }
  console.log(markdownTable(rows));
  return ok;
}

function time() {
  const c = { B: 1, H: 8, Sq: 32768, Skv: 32768, D: 128 };
  const type = 'bfloat16';
  const make = (seed) => nabla.toDeviceSync(nabla.cast(nabla.tensor(uniform(c.B * c.H * c.Sq * c.D, seed), [c.B, c.H, c.Sq, c.D]), type));
  const [qd, kd, vd] = [make(1), make(2), make(3)];
  const rows = [];
  for (const [label, density] of [['dense', 1], ['thr 0.9 (34%)', 0.34], ['thr 0.7 (14%)', 0.14], ['thr 0.4 (4%)', 0.04]]) {
    const mask = density < 1 ? randomMask(c.B, c.H, c.Sq / 64, c.Skv / 64, density, 9, false) : null;
    const md = mask ? mask.toDevice() : null;
    const kept = mask ? mask.density() : 1;
    const row = { case: label, kept: kept.toFixed(3) };
    for (const kernel of ['fast', 'hopper']) {
      const lists = md ? md.operands() : {};
      const out = new native.DeviceBuffer(0, c.B * c.H * c.Sq * c.D * 2);
      const call = () => native.attention({
        q: qd.buffer, k: kd.buffer, v: vd.buffer, out, dtype: DTYPE_CODE[type], batch: c.B, heads: c.H, seqQ: c.Sq,
        seqKv: c.Skv, headDim: c.D, valueDim: c.D, scale: 1 / Math.sqrt(c.D), kernel,
        kvCounts: lists.kvCounts, kvIndices: lists.kvIndices, backend: 'cuda', device: 0,
      }, false);
      try {
        call();
        const times = [];
        for (let i = 0; i < ITERS; i++) {
          const t0 = process.hrtime.bigint();
          call();
          times.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
        times.sort((a, b) => a - b);
        const ms = median(times);
        row[`${kernel} ms`] = ms.toFixed(2);
        row[`${kernel} TFLOP/s`] = (attentionFlops(c.B, c.H, c.Sq, c.Skv, c.D, kept) / ms / 1e9).toFixed(0);
      } catch (e) {
        row[`${kernel} ms`] = `error: ${e.message}`;
      } finally {
        out.dispose();
      }
    }
    if (md) md.dispose();
    rows.push(row);
  }
  [qd, kd, vd].forEach((t) => t.dispose());
  console.log(`B${c.B} H${c.H} S${c.Sq} D${c.D} ${type}; medians of ${ITERS} synchronous calls (process.hrtime, includes the host row sort of the Hopper path)`);
  console.log(markdownTable(rows));
  return true;
}

if (!nabla.backends().cuda) {
  console.log(`no CUDA device: ${nabla.backends().reason}`);
  process.exit(1);
}
process.exit((mode === 'time' ? time() : check()) ? 0 : 1);
