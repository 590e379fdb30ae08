// The fuzz cases: for every public entry point, a generator that builds a valid call and, most of
// the time, spoils one argument. A case is
//   { entry, label, expect, run, check }
// expect: 'valid' (must return a well-formed result), 'invalid' (must throw a documented error)
// or 'either'; run() makes the call (may return a Promise); check(result) returns a problem with
// the result, or null.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const {
  lib,
  randomFor,
  numel,
  values,
  hostTensor,
  attentionShape,
  randomDense,
  junk,
  mutateTensor,
  BAD_DIMS,
  fmt,
} = require('./values');

const DTYPES = ['float32', 'float16', 'bfloat16'];
const dimsAreValid = (d) => Array.isArray(d) && d.length > 0 && d.every((x) => Number.isInteger(x) && x > 0);
const isFiniteAll = (a) => {
  for (const x of a) if (!Number.isFinite(x)) return false;
  return true;
};

/** Problem with a host tensor result, or null. */
function checkTensor(t, dims, type) {
  if (typeof t !== 'object' || t === null) return `returned ${fmt(t)}, not a tensor`;
  if (type !== undefined && t.type !== type) return `type ${fmt(t.type)}, expected '${type}'`;
  if (!Array.isArray(t.dims) || t.dims.join() !== dims.join()) return `dims ${fmt(t.dims)}, expected ${fmt(dims)}`;
  const Storage = t.type === 'float32' ? Float32Array : Uint16Array;
  if (!(t.data instanceof Storage)) return `data ${fmt(t.data)} for type ${fmt(t.type)}`;
  if (t.data.length !== numel(dims)) return `${t.data.length} elements for dims ${fmt(dims)}`;
  return null;
}

/** Problem with a BlockMask result: dims, counts, ids (kept ascending, then dropped ascending). */
function checkMask(m, dims, { atLeastOne = true, full = false } = {}) {
  if (!(m instanceof lib.BlockMask)) return `returned ${fmt(m)}, not a BlockMask`;
  if (m.dims.join() !== dims.join()) return `mask dims ${fmt(m.dims)}, expected ${fmt(dims)}`;
  const [B, H, nq, nk] = dims;
  const { kvCounts, kvIndices } = m;
  if (kvCounts.length !== B * H * nq || kvIndices.length !== B * H * nq * nk) return 'mask lists of the wrong length';
  for (let r = 0; r < kvCounts.length; r++) {
    const count = kvCounts[r];
    if (count < (atLeastOne ? 1 : 0) || count > nk) return `row ${r} keeps ${count} of ${nk} blocks`;
    if (full && count !== nk) return `row ${r} keeps ${count} of ${nk} blocks, expected all`;
    const row = kvIndices.subarray(r * nk, (r + 1) * nk);
    const seen = new Uint8Array(nk);
    for (let j = 0; j < nk; j++) {
      if (row[j] < 0 || row[j] >= nk || seen[row[j]])
        return `row ${r} ids ${fmt(Array.from(row))} are not a permutation`;
      seen[row[j]] = 1;
      if (j !== count && j > 0 && row[j] < row[j - 1]) return `row ${r} ids ${fmt(Array.from(row))} not ascending`;
    }
  }
  const d = m.density();
  if (!(d >= 0 && d <= 1)) return `density ${d}`;
  return null;
}

/** Attention output: dims, finite for finite inputs, and each value within the range of v. */
function checkAttention(out, s, vLimit) {
  const problem = checkTensor(out, [s.B, s.H, s.Sq, s.Dv], s.type);
  if (problem || vLimit === undefined) return problem;
  const o = lib.toFloat32Array(out);
  if (!isFiniteAll(o)) return 'non-finite output for finite inputs';
  // a softmax-weighted mean of v rows cannot leave [-max|v|, max|v|] (bf16 rounding: 1%)
  for (const x of o) if (Math.abs(x) > vLimit * 1.01 + 1e-6) return `output ${x} outside +-max|v| = ${vLimit}`;
  return null;
}

/** max |v| when q, k and v are all finite host tensors, else undefined (no finiteness claim). */
function finiteLimit(q, k, v) {
  try {
    const [a, b, c] = [q, k, v].map((t) => lib.toFloat32Array(t));
    if (!isFiniteAll(a) || !isFiniteAll(b) || !isFiniteAll(c)) return undefined;
    let m = 0;
    for (const x of c) m = Math.max(m, Math.abs(x));
    return m;
  } catch {
    return undefined;
  }
}

// Options that are not an options object.
const NOT_OPTIONS = [null, 0, 'cpu', true, 10n, [], ['cpu'], () => {}];

// The kernel switches (lib/backend.ts): bad values, and good ones the CPU backend runs with (CUDA
// kernel names are checked on every call, then ignored on the CPU; 'avx2' is left out, as a CPU
// without AVX2 refuses it).
const KERNEL_OPTIONS = {
  kernel: { bad: ['FAST', 'SIMPLE', 'fast3', 7, true, ''], good: ['simple', 'fast', 'fast2', 'hopper', 'auto'] },
  maskKernel: { bad: ['FAST2', 'wide', 0, null], good: ['simple', 'fast', 'fast2', 'auto'] },
  poolKernel: { bad: ['fast', 'SIMPLE', 1.5, false], good: ['simple', 'fast2', 'auto'] },
  cpuKernel: { bad: ['sse', 'AVX2', 2, ''], good: ['scalar', 'auto'] },
};

/**
 * One spoiled option of an attention, mask or pooling call: [label, options, expect, extra check].
 * `reads`: the kernel options the entry reads (a bad value of another is ignored).
 */
function spoilOption(R, base, nabla, s, reads) {
  const pick = R.int(nabla ? 12 : 8);
  switch (pick) {
    case 0: {
      const o = R.pick(NOT_OPTIONS);
      return [`options ${fmt(o)}`, o, 'invalid'];
    }
    case 1: {
      const j = junk(R);
      return [`backend ${j.label}`, { ...base, backend: j.value }, j.value == null ? 'either' : 'invalid'];
    }
    case 2:
      return ["backend 'cuda'", { ...base, backend: 'cuda' }, 'either'];
    case 3: {
      const d = R.pick([-1, 1.5, NaN, '0', null]);
      return [`device ${fmt(d)}`, { ...base, device: d }, 'invalid'];
    }
    case 4: {
      const option = R.pick(Object.keys(KERNEL_OPTIONS));
      const k = R.pick(KERNEL_OPTIONS[option].bad);
      return [`${option} ${fmt(k)}`, { ...base, [option]: k }, reads.includes(option) ? 'invalid' : 'valid'];
    }
    case 5: {
      const option = R.pick(Object.keys(KERNEL_OPTIONS));
      const k = R.pick(KERNEL_OPTIONS[option].good);
      return [`${option} ${fmt(k)}`, { ...base, [option]: k }, 'valid'];
    }
    case 6: {
      const sc = R.pick([0, -1, -0, NaN, Infinity, 3.5e38, 1e39, '1', null]);
      return [`scale ${fmt(sc)}`, { ...base, scale: sc }, 'invalid'];
    }
    case 7: {
      const sc = R.pick([1e-45, 1e-3, 2, 100]);
      return [`scale ${sc}`, { ...base, scale: sc }, 'valid'];
    }
    case 8: {
      const t = R.pick([0, -0.1, 1.0000001, NaN, Infinity, '0.5', false]);
      return [`threshold ${fmt(t)}`, { ...base, threshold: t }, 'invalid'];
    }
    case 9: {
      const t = R.pick([1e-30, 1, 0.5]);
      return [`threshold ${t}`, { ...base, threshold: t, method: R.pick(['cdf', 'topk']) }, 'valid'];
    }
    case 10: {
      const m = R.pick(['CDF', 'top-k', 1, false]);
      return [`method ${fmt(m)}`, { ...base, method: m }, 'invalid'];
    }
    default: {
      // grids, STA windows and documents need self-attention with S = 64 * frames
      const frames = s.Sq / 64;
      const grid = s.Sq === s.Skv ? [frames, 8, 8] : [frames, 8, 16];
      const variants = [
        [`grid ${fmt(grid)} + sta [1, 1, 1]`, { ...base, grid, sta: [1, 1, 1] }, s.Sq === s.Skv ? 'valid' : 'invalid'],
        [
          `grid ${fmt(grid)} + frames [0, ${frames}]`,
          { ...base, grid, frames: [0, frames] },
          s.Sq === s.Skv ? 'valid' : 'invalid',
        ],
        // a window wider than the grid keeps every pair: the mask must be full
        [
          `grid ${fmt(grid)} + sta [2^31, 1, 1]`,
          { ...base, grid, sta: [2 ** 31, 1, 1] },
          s.Sq === s.Skv ? 'either' : 'invalid',
          'full',
        ],
        ['sta without grid', { ...base, sta: [1, 1, 1] }, 'invalid'],
        [`grid ${fmt([frames, 8, 9])}`, { ...base, grid: [frames, 8, 9] }, 'invalid'],
        [`frames [0, ${frames + 1}]`, { ...base, grid, frames: [0, frames + 1] }, 'invalid'],
        ['sta junk', { ...base, grid, sta: junk(R).value }, 'invalid'],
        ['returnMap 1', { ...base, returnMap: 1 }, 'invalid'],
        ['causal without grid', { ...base, causal: true }, 'invalid'],
        [`grid ${fmt(grid)} + causal`, { ...base, grid, causal: true }, s.Sq === s.Skv ? 'valid' : 'invalid'],
        [`grid ${fmt(grid)} + causal 1`, { ...base, grid, causal: 1 }, 'invalid'],
        // a ragged grid of the same token count: frames of 2 x 32 tokens, tiles of 2 x 8
        [`grid ${fmt([frames, 2, 32])}`, { ...base, grid: [frames, 2, 32] }, s.Sq === s.Skv ? 'valid' : 'invalid'],
      ];
      return R.pick(variants);
    }
  }
}

/** q, k, v of one shape, then at most one spoiled argument. */
function attentionInputs(R, s) {
  const q = hostTensor(R, [s.B, s.H, s.Sq, s.D], s.type);
  const k = hostTensor(R, [s.B, s.H, s.Skv, s.D], s.type);
  const v = hostTensor(R, [s.B, s.H, s.Skv, s.Dv], s.type);
  return { q, k, v };
}

function spoilQKV(R, inputs, s, names = ['q', 'k', 'v']) {
  const which = R.pick(names);
  const pick = R.int(4);
  if (pick === 0) {
    // a valid tensor of another shape or type
    const other = { ...s, D: s.D === 8 ? 16 : 8, Skv: s.Skv + 64, type: s.type === 'float32' ? 'float16' : 'float32' };
    const field = R.pick(['D', 'Skv', 'type']);
    const t = { ...s, [field]: other[field] };
    const dims = which === 'v' ? [t.B, t.H, t.Skv, t.Dv] : [t.B, t.H, which === 'q' ? t.Sq : t.Skv, t.D];
    // D differing on q only, Skv on k only, or v's type break the match; q's Skv is irrelevant
    const mismatch = !(which === 'q' && field === 'Skv') && !(which === 'v' && field === 'D');
    return {
      label: `${which} with other ${field}`,
      inputs: { ...inputs, [which]: hostTensor(R, dims, t.type) },
      expect: mismatch ? 'invalid' : 'valid',
    };
  }
  if (pick === 1) {
    // non-finite values: accepted, no finiteness claim on the output
    const t = inputs[which];
    const data = t.data.slice();
    data[R.int(data.length)] = t.type === 'float32' ? R.pick([NaN, Infinity, -Infinity]) : 0x7c00;
    return {
      label: `${which} holding a non-finite value`,
      inputs: { ...inputs, [which]: { ...t, data } },
      expect: 'valid',
      nonFinite: true,
    };
  }
  const m = mutateTensor(R, inputs[which]);
  return { label: `${which} ${m.label}`, inputs: { ...inputs, [which]: m.value }, expect: m.expect };
}

/** A valid mask for the shape, built one of the public ways. */
function validMask(R, s, q, k) {
  const dims = [s.B, s.H, s.Sq / 64, s.Skv / 64];
  switch (R.int(3)) {
    case 0:
      return { how: 'fromDense', mask: lib.BlockMask.fromDense(randomDense(R, dims), dims) };
    case 1: {
      const dense = lib.BlockMask.fromDense(randomDense(R, dims), dims);
      // kept ids in descending order: fromKvBlocks sorts them
      const nk = dims[3];
      const idx = dense.kvIndices.slice();
      for (let r = 0; r < dense.kvCounts.length; r++) idx.subarray(r * nk, r * nk + dense.kvCounts[r]).reverse();
      return { how: 'fromKvBlocks', mask: lib.BlockMask.fromKvBlocks(dense.kvCounts.slice(), idx, dims) };
    }
    default:
      return { how: 'nablaMaskSync', mask: lib.nablaMaskSync(q, k, { backend: 'cpu', threshold: 0.5 }) };
  }
}

/** A spoiled mask: [label, mask, expect, reference mask for 'either' cases]. */
function spoilMask(R, s, q, k) {
  const dims = [s.B, s.H, s.Sq / 64, s.Skv / 64];
  const nk = dims[3];
  const { mask } = validMask(R, s, q, k);
  const pick = R.int(7);
  if (pick === 0) {
    const j = junk(R);
    return [`mask ${j.label}`, j.value, 'invalid'];
  }
  if (pick === 1) return ['Object.create(BlockMask.prototype)', Object.create(lib.BlockMask.prototype), 'invalid'];
  if (pick === 2) {
    const other = [dims[0], dims[1], dims[2], dims[3] + 1];
    return ['mask of other dims', lib.BlockMask.fromDense(randomDense(R, other), other), 'invalid'];
  }
  // a row keeping two blocks, its second id set to its first: a duplicate
  const counts = mask.kvCounts.slice(),
    indices = mask.kvIndices.slice();
  counts[0] = Math.min(2, nk);
  for (let j = 0; j < nk; j++) indices[j] = j;
  if (nk >= 2) indices[1] = 0;
  // built inside the call (a constructor that refuses the lists is a correct outcome too)
  if (pick === 3 && nk >= 2)
    return [
      'new BlockMask with a duplicate id',
      { build: () => new lib.BlockMask(dims, { kvCounts: counts, kvIndices: indices }) },
      'invalid',
    ];
  if (pick === 4)
    return [
      'new BlockMask with kvCounts[0] = nk + 1',
      {
        build: () =>
          new lib.BlockMask(dims, {
            kvCounts: Int32Array.from(counts, (c, r) => (r === 0 ? nk + 1 : c)),
            kvIndices: indices,
          }),
      },
      'invalid',
    ];
  // edits to a checked mask's lists: either refused, or ignored (the result is the original's)
  const original = lib.BlockMask.fromDense(mask.toDense(), dims);
  const edits = [
    [
      'kvIndices[1] = kvIndices[0] on a row of 2',
      (m) => {
        m.kvCounts[0] = Math.min(2, nk);
        m.kvIndices[1] = m.kvIndices[0];
      },
    ],
    [
      'kvIndices[0] = nk',
      (m) => {
        m.kvCounts[0] = Math.max(1, m.kvCounts[0]);
        m.kvIndices[0] = nk;
      },
    ],
    [
      'kvIndices[0] = -1',
      (m) => {
        m.kvCounts[0] = Math.max(1, m.kvCounts[0]);
        m.kvIndices[0] = -1;
      },
    ],
    [
      'kvCounts[0] = nk + 5',
      (m) => {
        m.kvCounts[0] = nk + 5;
      },
    ],
    [
      'kvCounts[0] = -3',
      (m) => {
        m.kvCounts[0] = -3;
      },
    ],
  ];
  const [label, edit] = R.pick(edits);
  try {
    edit(mask);
  } catch {
    /* lists that refuse edits are fine */
  }
  return [`mask edited after checks: ${label}`, mask, 'either', original];
}

/** [nq, nk] of a mask built with `options`: an accepted grid has one block per (ragged) 8x8 tile. */
function maskBlocks(options, seqQ, seqKv) {
  const given = options && typeof options === 'object' ? options.grid : undefined;
  if (given === undefined) return [seqQ / 64, seqKv / 64];
  const g = Array.from(given);
  const nb = g[0] * Math.ceil(g[1] / 8) * Math.ceil(g[2] / 8);
  return [nb, nb];
}

function attentionCase(R, entry) {
  const s = attentionShape(R);
  let { q, k, v } = attentionInputs(R, s);
  const sparse = entry.startsWith('blockSparse');
  const nabla = entry.startsWith('nabla');
  let options = R.chance(0.3) ? undefined : { backend: 'cpu' };
  let mask = sparse ? validMask(R, s, q, k).mask : undefined;
  let label = `${fmt([s.B, s.H, s.Sq, s.Skv, s.D, s.Dv])} ${s.type}`;
  let expect = 'valid',
    nonFinite = false,
    fullMask = false,
    originalMask;
  const spoil = R.int(sparse ? 4 : 3);
  if (spoil === 0) {
    const x = spoilQKV(R, { q, k, v }, s);
    ({ q, k, v } = x.inputs);
    label += `, ${x.label}`;
    expect = x.expect;
    nonFinite = !!x.nonFinite;
  } else if (spoil === 1) {
    const reads = nabla ? ['kernel', 'cpuKernel', 'maskKernel'] : ['kernel', 'cpuKernel'];
    const [l, o, e, extra] = spoilOption(R, options ?? {}, nabla, s, reads);
    options = o;
    label += `, ${l}`;
    // dense attention reads only `grid` of the mask options (its token count must be Sq == Skv);
    // block-sparse attention reads none of them (the mask carries its grid)
    const dense = !sparse && !nabla;
    if (dense && o && typeof o === 'object' && o.grid !== undefined)
      expect = numel(o.grid) === s.Sq && s.Sq === s.Skv ? 'valid' : 'invalid';
    else expect = nabla || !/threshold|method|grid|sta|frames|returnMap|causal/.test(l) ? e : 'valid';
    fullMask = extra === 'full';
  } else if (spoil === 3) {
    const [l, m, e, orig] = spoilMask(R, s, q, k);
    mask = m;
    label += `, ${l}`;
    expect = e;
    originalMask = orig;
  }
  const vLimit = nonFinite ? undefined : finiteLimit(q, k, v);
  const run = () => {
    const fn = lib[entry];
    const m = mask && typeof mask.build === 'function' ? mask.build() : mask;
    return sparse ? fn(q, k, v, m, options) : fn(q, k, v, options);
  };
  const check = (res) => {
    const out = nabla ? res && res.output : res;
    const scale = options && typeof options === 'object' ? options.scale : undefined;
    // tiny scales still average v; huge finite ones are refused above, so finite in, finite out
    let problem = checkAttention(out, s, scale === undefined || scale <= 100 ? vLimit : undefined);
    if (!problem && nabla)
      problem = checkMask(res.mask, [s.B, s.H, ...maskBlocks(options, s.Sq, s.Skv)], { full: fullMask });
    if (!problem && originalMask) {
      // an edited mask that was accepted must act as the checked one did
      const want = lib.blockSparseAttentionSync(q, k, v, originalMask, options);
      const a = lib.toFloat32Array(out),
        b = lib.toFloat32Array(want);
      for (let i = 0; i < a.length; i++)
        if (!(a[i] === b[i] || (Number.isNaN(a[i]) && Number.isNaN(b[i]))))
          return 'an edited mask changed the output (the edit bypassed the checks)';
    }
    return problem;
  };
  return { label, expect, run, check };
}

/** warmUp: a request shape and nablaAttention's options, then at most one spoiled argument. */
function warmUpCase(R) {
  const s = attentionShape(R);
  let spec = { dims: [s.B, s.H, s.Sq, s.D], type: s.type, valueDim: s.Dv, kvSeq: s.Skv };
  let options = R.chance(0.3) ? undefined : { backend: 'cpu' };
  let label = `spec ${fmt(spec)}`;
  let expect = 'valid';
  const spoil = R.int(3);
  if (spoil === 0) {
    const bad = R.pick([
      ['spec', junk(R).value],
      ['dims', { ...spec, dims: R.pick(BAD_DIMS) }],
      ['type', { ...spec, type: R.pick(['int8', 'float64', 1, null, 'Float32']) }],
      ['valueDim', { ...spec, valueDim: R.pick([0, -8, 1.5, NaN, '16', 2 ** 31]) }],
      ['kvSeq', { ...spec, kvSeq: R.pick([0, -64, 1.5, NaN, '64', 65, 2 ** 53]) }],
    ]);
    spec = bad[1];
    label = `${bad[0]} spoiled: spec ${fmt(spec)}`;
    expect = 'invalid';
  } else if (spoil === 1) {
    const [l, o, e] = spoilOption(R, options ?? {}, true, s, ['kernel', 'cpuKernel', 'maskKernel']);
    options = o;
    label += `, ${l}`;
    expect = e;
  }
  const run = () => lib.warmUp(spec, options);
  const check = (report) => {
    if (typeof report !== 'object' || report === null) return `returned ${fmt(report)}, not a report`;
    if (!(report.ms >= 0)) return `ms ${fmt(report.ms)}`;
    if (report.backend !== 'cpu' && report.backend !== 'cuda') return `backend ${fmt(report.backend)}`;
    if (!report.kernels || typeof report.kernels.mask !== 'string' || typeof report.kernels.attention !== 'string')
      return `kernels ${fmt(report.kernels)}`;
    return null;
  };
  return { label, expect, run, check };
}

function maskCase(R, entry) {
  const s = attentionShape(R);
  let { q, k } = attentionInputs(R, s);
  let options = { backend: 'cpu', returnMap: R.chance(0.3) };
  let label = `${fmt([s.B, s.H, s.Sq, s.Skv, s.D])} ${s.type}`;
  let expect = 'valid',
    full = false,
    nonFinite = false;
  if (R.chance(0.5)) {
    const x = spoilQKV(R, { q, k }, s, ['q', 'k']);
    nonFinite = !!x.nonFinite;
    ({ q, k } = x.inputs);
    label += `, ${x.label}`;
    // k of another length is cross attention (no v here to disagree with)
    expect = x.label === 'k with other Skv' ? 'valid' : x.expect;
  } else if (R.chance(0.8)) {
    const [l, o, e, extra] = spoilOption(R, options, true, s, ['maskKernel']);
    options = o;
    label += `, ${l}`;
    expect = /scale/.test(l) ? 'valid' : e; // attention options: ignored by nablaMask
    full = extra === 'full';
  }
  const check = (m) => {
    const dims = [s.B, s.H, ...maskBlocks(options, s.Sq, k.dims[2])];
    const problem = checkMask(m, dims, { full });
    if (problem) return problem;
    if (m.map && !nonFinite) {
      const nk = dims[3];
      for (let r = 0; r < m.kvCounts.length; r++) {
        let sum = 0;
        for (let j = 0; j < nk; j++) sum += m.map[r * nk + j];
        if (!(Math.abs(sum - 1) < 1e-4)) return `map row ${r} sums to ${sum}`;
      }
    }
    return null;
  };
  return { label, expect, run: () => lib[entry](q, k, options), check };
}

function poolCase(R, entry) {
  const s = attentionShape(R);
  let x = hostTensor(R, [s.B, s.H, s.Sq, s.D], s.type);
  let label = `${fmt(x.dims)} ${s.type}`,
    expect = 'valid';
  let options = R.chance(0.5) ? undefined : { backend: 'cpu' };
  if (R.chance(0.6)) {
    const m = mutateTensor(R, x);
    x = m.value;
    label += `, x ${m.label}`;
    expect = m.expect;
  } else if (R.chance(0.5)) {
    const [l, o, e] = spoilOption(R, options ?? {}, false, s, ['poolKernel']);
    options = o;
    label += `, ${l}`;
    expect = /scale/.test(l) ? 'valid' : e;
  }
  const check = (out) => {
    const problem = checkTensor(out, [s.B, s.H, s.Sq / 64, s.D], 'float32');
    if (problem) return problem;
    // the mean of each 64-token block
    const xs = lib.toFloat32Array(x),
      D = s.D;
    for (let r = 0; r < s.B * s.H * (s.Sq / 64); r++)
      for (let d = 0; d < D; d += 7) {
        let sum = 0;
        for (let t = 0; t < 64; t++) sum += xs[(r * 64 + t) * D + d];
        if (Math.abs(out.data[r * D + d] - sum / 64) > 1e-4) return `block mean ${out.data[r * D + d]} != ${sum / 64}`;
      }
    return null;
  };
  return { label, expect, run: () => lib[entry](x, options), check };
}

function tensorCase(R, entry) {
  const type = R.pick(DTYPES);
  const dims = [1 + R.int(3), 1 + R.int(5), 1 + R.int(7)];
  const n = numel(dims);
  const t = hostTensor(R, dims, type);
  switch (entry) {
    case 'tensor': {
      const variants = [
        () => ['Float32Array', values(R, n), dims, R.pick([undefined, 'float32']), 'valid', 'float32'],
        () => ['plain numbers', Array.from(values(R, n)), dims, type, 'valid', type],
        () => ['Float64Array', Float64Array.from(values(R, n)), dims, type, 'valid', type],
        () => ['Uint16Array bits', new Uint16Array(n), dims, R.pick(['float16', 'bfloat16']), 'valid'],
        () => [
          'SharedArrayBuffer Float32Array',
          new Float32Array(new SharedArrayBuffer(4 * n)),
          dims,
          'float32',
          'valid',
          'float32',
        ],
        () => ['Uint16Array without a type', new Uint16Array(n), dims, undefined, 'invalid'],
        () => ['BigInt64Array', new BigInt64Array(n), dims, type, 'invalid'],
        () => {
          const j = junk(R);
          return [`data ${j.label}`, j.value, dims, type, 'invalid'];
        },
        () => {
          const d = R.pick(BAD_DIMS);
          return [`dims ${fmt(d)}`, values(R, n), d, undefined, 'invalid'];
        },
        () => ['dims junk', values(R, n), junk(R).value, undefined, 'invalid'],
        () => ['one element short', values(R, n - 1), dims, undefined, 'invalid'],
        () => [`type ${'float64'}`, values(R, n), dims, 'float64', 'invalid'],
        () => ['Proxy(Float32Array)', new Proxy(values(R, n), {}), dims, undefined, 'invalid'],
        () => [
          'detached Float32Array',
          (() => {
            const a = values(R, n);
            structuredClone(a.buffer, { transfer: [a.buffer] });
            return a;
          })(),
          dims,
          undefined,
          'invalid',
        ],
      ];
      const [l, data, d, ty, expect, wantType] = R.pick(variants)();
      return {
        label: `${l}, dims ${fmt(d)}, type ${fmt(ty)}`,
        expect,
        run: () => lib.tensor(data, d, ty),
        check: (res) => checkTensor(res, d, wantType ?? ty),
      };
    }
    case 'zeros': {
      // beyond 2^32 elements no typed array can hold them (smaller huge ones would allocate)
      const d = R.chance(0.6)
        ? R.pick([
            [],
            [0],
            [-1],
            [1.5],
            [NaN],
            [Infinity],
            ['64'],
            [null],
            [2 ** 33],
            [2 ** 53],
            [65536, 65536, 4],
            [2 ** 31, 2 ** 31],
          ])
        : dims;
      const ty = R.chance(0.2) ? junk(R).value : type;
      const fits = dimsAreValid(d) && d.reduce((a, b) => a * b, 1) <= 2 ** 32;
      const expect = fits && (ty === undefined || DTYPES.includes(ty)) ? 'valid' : 'invalid';
      return {
        label: `dims ${fmt(d)}, type ${fmt(ty)}`,
        expect,
        run: () => lib.zeros(d, ty),
        check: (res) => checkTensor(res, d, ty ?? 'float32'),
      };
    }
    case 'cast': {
      const to = R.chance(0.85) ? R.pick(DTYPES) : junk(R).value;
      const m = R.chance(0.5) ? mutateTensor(R, t) : { label: 'valid', value: t, expect: 'valid' };
      const expect = DTYPES.includes(to) ? m.expect : 'invalid';
      return {
        label: `tensor ${m.label} (${type} ${fmt(dims)}), to ${fmt(to)}`,
        expect,
        run: () => lib.cast(m.value, to),
        check: (res) => {
          const problem = checkTensor(res, dims, to);
          if (problem) return problem;
          // cast rounds once: back to fp32, the values are those of the input rounded to `to`
          const want = lib.toFloat32(lib.fromFloat32(lib.toFloat32Array(t), to), to);
          const got = lib.toFloat32Array(res);
          for (let i = 0; i < n; i++)
            if (!Object.is(got[i], want[i])) return `value ${got[i]} at ${i}, expected ${want[i]}`;
          return null;
        },
      };
    }
    default: {
      // toFloat32Array
      const m = R.chance(0.6) ? mutateTensor(R, t) : { label: 'valid', value: t, expect: 'valid' };
      return {
        label: `tensor ${m.label} (${type} ${fmt(dims)})`,
        expect: m.expect,
        run: () => lib.toFloat32Array(m.value),
        check: (res) => (res instanceof Float32Array && res.length === n ? null : `returned ${fmt(res)}`),
      };
    }
  }
}

function dtypeCase(R, entry) {
  const bits = R.int(65536);
  const num = R.pick([0, -0, 1, -2.5, 65504, 65520, 1e-8, 3.4e38, Infinity, NaN, (R.float() - 0.5) * 1e4]);
  switch (entry) {
    case 'float16ToFloat':
    case 'bfloat16ToFloat': {
      const back = entry === 'float16ToFloat' ? lib.floatToFloat16 : lib.floatToBfloat16;
      return {
        label: `bits ${bits}`,
        expect: 'valid',
        run: () => lib[entry](bits),
        check: (x) =>
          typeof x !== 'number'
            ? `returned ${fmt(x)}`
            : Number.isNaN(x) || back(x) === bits
              ? null
              : `${bits} -> ${x} -> ${back(x)}`,
      };
    }
    case 'floatToFloat16':
    case 'floatToBfloat16': {
      const fwd = entry === 'floatToFloat16' ? lib.float16ToFloat : lib.bfloat16ToFloat;
      return {
        label: `value ${num}`,
        expect: 'valid',
        run: () => lib[entry](num),
        // the nearest representable value: never farther than the input's own fp32 rounding allows
        check: (b) =>
          Number.isInteger(b) && b >= 0 && b < 65536 && (Number.isNaN(num) ? Number.isNaN(fwd(b)) : true)
            ? null
            : `returned ${fmt(b)}`,
      };
    }
    case 'fromFloat32': {
      const type = R.chance(0.8) ? R.pick(DTYPES) : R.pick(['float64', 'int8', undefined, 3]);
      const v = values(R, 5);
      return {
        label: `Float32Array(5) to ${fmt(type)}`,
        expect: DTYPES.includes(type) ? 'valid' : 'invalid',
        run: () => lib.fromFloat32(v, type),
        check: (res) =>
          res instanceof (type === 'float32' ? Float32Array : Uint16Array) && res.length === 5
            ? null
            : `returned ${fmt(res)}`,
      };
    }
    default: {
      // toFloat32
      const type = R.chance(0.8) ? R.pick(DTYPES) : R.pick(['float64', 'int8', undefined, 3]);
      const data = type === 'float32' ? values(R, 5) : new Uint16Array(5).map(() => R.int(65536));
      return {
        label: `${fmt(data)} as ${fmt(type)}`,
        expect: DTYPES.includes(type) ? 'valid' : 'invalid',
        run: () => lib.toFloat32(data, type),
        check: (res) => (res instanceof Float32Array && res.length === 5 ? null : `returned ${fmt(res)}`),
      };
    }
  }
}

function blockMaskCase(R, entry) {
  const dims = [1 + R.int(2), 1 + R.int(2), 1 + R.int(4), 1 + R.int(5)];
  const n = numel(dims);
  const dense = randomDense(R, dims);
  const built = lib.BlockMask.fromDense(dense, dims);
  const denseCheck = (m) => {
    const problem = checkMask(m, dims, { atLeastOne: false });
    if (problem) return problem;
    const d = m.toDense();
    for (let i = 0; i < n; i++) if (d[i] !== dense[i]) return `toDense differs at ${i}`;
    return null;
  };
  switch (entry) {
    case 'BlockMask.fromDense': {
      const variants = [
        () => ['valid', dense, dims, 'valid'],
        () => {
          const d = R.pick(BAD_DIMS);
          return [`dims ${fmt(d)}`, dense, d, 'invalid'];
        },
        () => ['dims [2^31, 1, 1, 1]', dense, [2 ** 31, 1, 1, 1], 'invalid'],
        () => {
          const j = junk(R);
          return [`dense ${j.label}`, j.value, dims, 'invalid'];
        },
        () => ['dense one byte short', dense.subarray(1), dims, 'invalid'],
        () => ['dense Int8Array', new Int8Array(n), dims, 'invalid'],
      ];
      const [l, d, ds, expect] = R.pick(variants)();
      return { label: `${l} (${fmt(dims)})`, expect, run: () => lib.BlockMask.fromDense(d, ds), check: denseCheck };
    }
    case 'BlockMask.fromKvBlocks': {
      const counts = built.kvCounts.slice(),
        indices = built.kvIndices.slice();
      const nk = dims[3];
      const variants = [
        () => ['valid', counts, indices, dims, 'valid'],
        () => {
          const c = counts.slice();
          c[R.int(c.length)] = R.pick([-1, nk + 1, 2 ** 31 - 1]);
          return ['a count out of range', c, indices, dims, 'invalid'];
        },
        () => {
          const i = indices.slice();
          const c = counts.slice();
          c[0] = nk;
          i[0] = R.pick([-1, nk, 2 ** 31 - 1]);
          return ['an id out of range', c, i, dims, 'invalid'];
        },
        () => {
          if (nk < 2) return ['valid', counts, indices, dims, 'valid'];
          const i = indices.slice();
          const c = counts.slice();
          c[0] = 2;
          i[0] = 1;
          i[1] = 1;
          return ['a duplicate id', c, i, dims, 'invalid'];
        },
        () => ['kvCounts one short', counts.subarray(1), indices, dims, 'invalid'],
        () => ['kvIndices as an Array', counts, Array.from(indices), dims, 'invalid'],
        () => ['kvCounts as a Uint32Array', new Uint32Array(counts), indices, dims, 'invalid'],
        () => {
          const j = junk(R);
          return [`kvIndices ${j.label}`, counts, j.value, dims, 'invalid'];
        },
      ];
      const [l, c, i, ds, expect] = R.pick(variants)();
      return {
        label: `${l} (${fmt(dims)})`,
        expect,
        run: () => lib.BlockMask.fromKvBlocks(c, i, ds),
        check: expect === 'valid' && l === 'valid' ? denseCheck : (m) => checkMask(m, dims, { atLeastOne: false }),
      };
    }
    default: {
      // a method on a mask
      const method = R.pick(['density', 'headDensities', 'toDense', 'toDevice', 'dispose', 'kvCounts', 'device']);
      const kept = dense.reduce((a, b) => a + b, 0);
      return {
        label: `mask.${method} (${fmt(dims)})`,
        expect: method === 'toDevice' ? 'either' : 'valid',
        run: () =>
          typeof built[method] === 'function'
            ? built[method](method === 'toDevice' ? R.pick([undefined, { device: 0 }, { device: -1 }]) : undefined)
            : built[method],
        check: (res) => {
          switch (method) {
            case 'density':
              return Math.abs(res - kept / n) < 1e-12 ? null : `density ${res}, expected ${kept / n}`;
            case 'headDensities':
              return res instanceof Float64Array && res.length === dims[0] * dims[1] ? null : `returned ${fmt(res)}`;
            case 'toDense':
              return res.every((x, i) => x === dense[i]) ? null : 'toDense differs';
            case 'toDevice': {
              const p = checkMask(res, dims, { atLeastOne: false });
              res.dispose();
              return p;
            }
            case 'kvCounts':
              return res instanceof Int32Array && res.length === dims[0] * dims[1] * dims[2]
                ? null
                : `returned ${fmt(res)}`;
            case 'device':
              return res === undefined ? null : `a host mask on device ${fmt(res)}`;
            default:
              return null;
          }
        },
      };
    }
  }
}

/** STA of two block ids on a block grid (docs/nabla.md section 2). */
function staPair(g, w, a, b) {
  const plane = g[1] * g[2];
  const ax = [Math.floor(a / plane), Math.floor((a % plane) / g[2]), a % g[2]];
  const bx = [Math.floor(b / plane), Math.floor((b % plane) / g[2]), b % g[2]];
  return ax.every((x, i) => Math.abs(x - bx[i]) <= Math.floor(w[i] / 2));
}

function tileCase(R, entry) {
  // any positive sizes: edge tiles are smaller when rows or cols are not multiples of 8
  const grid = [1 + R.int(3), 1 + R.int(24), 1 + R.int(24)];
  const S = numel(grid);
  const badGrids = [
    [0, 8, 8],
    [1, 0, 8],
    [1.5, 8, 8],
    [1, 8],
    [2 ** 31, 8, 8],
    [2 ** 20, 8 * 2 ** 10, 8],
    [1, 2 ** 31, 2 ** 31],
    'abc',
    null,
  ];
  switch (entry) {
    case 'tileOrder': {
      const bad = R.chance(0.4);
      const g = bad ? R.pick(badGrids) : grid;
      return {
        label: `grid ${fmt(g)}`,
        expect: bad ? 'invalid' : 'valid',
        run: () => lib.tileOrder(g),
        check: (o) => {
          if (!(o instanceof Int32Array) || o.length !== S) return `returned ${fmt(o)}`;
          const seen = new Uint8Array(S);
          for (const i of o) {
            if (i < 0 || i >= S || seen[i]) return 'not a permutation';
            seen[i] = 1;
          }
          return null;
        },
      };
    }
    case 'staMask': {
      const bg = [grid[0], Math.ceil(grid[1] / 8), Math.ceil(grid[2] / 8)];
      const nb = numel(bg);
      let g = grid,
        w = [1 + R.int(4), 1 + R.int(4), 1 + R.int(4)],
        expect = 'valid';
      const pick = R.int(5);
      if (pick === 0) {
        g = R.pick(badGrids);
        expect = 'invalid';
      }
      if (pick === 1) {
        w = R.pick([[0, 1, 1], [1, 1], [1.5, 1, 1], [-1, 1, 1], junk(R).value]);
        expect = 'invalid';
      }
      if (pick === 2) {
        w = [R.pick([2 ** 31, 2 ** 31 - 1, 2 ** 30]), 1, 1];
        expect = 'either';
      }
      return {
        label: `grid ${fmt(g)}, window ${fmt(w)}`,
        expect,
        run: () => lib.staMask(g, w),
        check: (m) => {
          const problem = checkMask(m, [1, 1, nb, nb]);
          if (problem) return problem;
          const d = m.toDense();
          for (let a = 0; a < nb; a++)
            for (let b = 0; b < nb; b++)
              if (d[a * nb + b] !== (staPair(bg, w, a, b) ? 1 : 0)) return `pair (${a}, ${b}) is ${d[a * nb + b]}`;
          return null;
        },
      };
    }
    default: {
      // toTiles / fromTiles
      const C = 1 + R.int(4);
      let x = hostTensor(R, [1, S, C], R.pick(DTYPES));
      let g = grid,
        options,
        expect = 'valid',
        label = `x ${fmt(x.dims)}, grid ${fmt(grid)}`;
      const pick = R.int(6);
      if (pick === 0) {
        g = R.pick(badGrids);
        expect = 'invalid';
        label += ` -> grid ${fmt(g)}`;
      }
      if (pick === 1) {
        options = R.pick(['axis', 1, [1], () => {}, null, true]);
        expect = 'invalid';
        label += `, options ${fmt(options)}`;
      }
      if (pick === 2) {
        options = { axis: R.pick([-1, 3, 1.5, '1', 0]) };
        expect = options.axis === 0 ? 'invalid' : 'invalid';
        label += `, axis ${fmt(options.axis)}`;
      }
      if (pick === 3) {
        options = { axis: 1 };
        label += ', axis 1';
      }
      if (pick === 4) {
        const m = mutateTensor(R, x);
        x = m.value;
        expect = m.expect;
        label += `, x ${m.label}`;
      }
      const src = pick === 4 ? null : x;
      return {
        label,
        expect,
        run: () => lib[entry](x, g, options),
        check: (res) => {
          const problem = checkTensor(res, [1, S, C]);
          if (problem || !src) return problem;
          // a permutation of whole tokens: the sorted values are the same
          const a = Array.from(res.data).sort(),
            b = Array.from(src.data).sort();
          return a.every((v, i) => Object.is(v, b[i])) ? null : 'values are not a permutation of the input';
        },
      };
    }
  }
}

let npyDir;
function npyFiles() {
  if (npyDir) return npyDir;
  npyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nabla-fuzz-'));
  const good = lib.writeNpy([2, 3], new Float32Array(6).fill(1.5));
  fs.writeFileSync(path.join(npyDir, 'good.npy'), good);
  fs.writeFileSync(path.join(npyDir, 'truncated.npy'), good.subarray(0, good.length - 3));
  fs.writeFileSync(path.join(npyDir, 'garbage.npy'), Buffer.from('not a numpy file at all'));
  fs.writeFileSync(path.join(npyDir, 'nested.npy'), nestedHeader(5000));
  fs.mkdirSync(path.join(npyDir, 'a-directory.npy'));
  return npyDir;
}

/** A .npy whose header nests lists `depth` deep. */
function nestedHeader(depth) {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': ${'['.repeat(depth)}${']'.repeat(depth)}, }`;
  const header = dict.padEnd(Math.ceil((dict.length + 11) / 64) * 64 - 11, ' ') + '\n';
  const out = Buffer.alloc(10 + header.length + 4);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  out.writeUInt16LE(header.length, 8);
  out.write(header, 10, 'latin1');
  return out;
}

function npyCase(R, entry) {
  const type = R.pick(['float32', 'float16']);
  const dims = [1 + R.int(3), 1 + R.int(4)];
  const t = hostTensor(R, dims, type);
  const bytes = lib.tensorToNpy(t);
  const wellFormed = (a) =>
    a &&
    typeof a === 'object' &&
    Array.isArray(a.shape) &&
    ArrayBuffer.isView(a.data) &&
    numel(a.shape) === a.data.length
      ? null
      : `returned ${fmt(a)}`;
  const sameAs = (a) => {
    const problem = wellFormed(a);
    if (problem) return problem;
    if (a.shape.join() !== dims.join() || a.dtype !== type)
      return `read ${a.dtype} ${fmt(a.shape)}, wrote ${type} ${fmt(dims)}`;
    return a.data.every((x, i) => Object.is(x, t.data[i])) ? null : 'values differ from those written';
  };
  switch (entry) {
    case 'readNpy': {
      const variants = [
        () => ['valid', bytes, 'valid', sameAs],
        () => {
          const cut = R.int(bytes.length);
          return [`truncated to ${cut} bytes`, bytes.subarray(0, cut), 'invalid'];
        },
        () => {
          const b = Buffer.from(bytes);
          const at = R.int(Math.min(b.length, 80));
          b[at] = R.int(256);
          return [`byte ${at} changed`, b, 'either', wellFormed];
        },
        () => ['a header nested 5000 deep', nestedHeader(5000), 'invalid'],
        () => {
          const j = junk(R);
          return [`bytes ${j.label}`, j.value, 'invalid'];
        },
        () => ['random bytes', Uint8Array.from({ length: 64 }, () => R.int(256)), 'invalid'],
      ];
      const [l, b, expect, check] = R.pick(variants)();
      return { label: `${l} (${type} ${fmt(dims)})`, expect, run: () => lib.readNpy(b), check: check ?? wellFormed };
    }
    case 'npyToTensor': {
      const a = lib.readNpy(bytes);
      const variants = [
        () => ['valid', a, 'valid'],
        () => {
          const j = junk(R);
          return [`array ${j.label}`, j.value, 'invalid'];
        },
        () => ['int32 array', { dtype: 'int32', shape: [2], data: new Int32Array(2), descr: '<i4' }, 'invalid'],
        () => ['shape and data disagree', { ...a, shape: [a.data.length + 1] }, 'invalid'],
        () => ['data of another kind', { ...a, data: new Float64Array(a.data.length) }, 'invalid'],
      ];
      const [l, arr, expect] = R.pick(variants)();
      return { label: l, expect, run: () => lib.npyToTensor(arr), check: (res) => checkTensor(res, dims, type) };
    }
    case 'tensorToNpy': {
      const m = R.chance(0.5) ? mutateTensor(R, t) : { label: 'valid', value: t, expect: 'valid' };
      const bf = R.chance(0.1);
      const x = bf ? hostTensor(R, dims, 'bfloat16') : m.value;
      return {
        label: bf ? 'a bfloat16 tensor' : `tensor ${m.label}`,
        expect: bf ? 'invalid' : m.expect,
        run: () => lib.tensorToNpy(x),
        check: (buf) => (bf || m.label !== 'valid' ? wellFormed(lib.readNpy(buf)) : sameAs(lib.readNpy(buf))),
      };
    }
    case 'writeNpy': {
      const variants = [
        () => ['valid', dims, t.data, type === 'float16' ? 'float16' : undefined, 'valid'],
        () => {
          const shape = junk(R).value;
          // [] is the shape of one element, and [1, 2] of two: junk that happens to fit is valid (an
          // array with holes is not: Array.from reads them as undefined)
          const fits =
            Array.isArray(shape) &&
            Array.from(shape).every((d) => Number.isSafeInteger(d) && d >= 0) &&
            numel(shape) === t.data.length;
          return [
            `shape ${fmt(shape)}`,
            shape,
            t.data,
            type === 'float16' ? 'float16' : undefined,
            fits ? 'valid' : 'invalid',
          ];
        },
        () => ['shape [2^53]', [2 ** 53], t.data, undefined, 'invalid'],
        () => [
          'shape with one more element',
          [t.data.length + 1],
          t.data,
          type === 'float16' ? 'float16' : undefined,
          'invalid',
        ],
        () => ['data Float64Array', dims, new Float64Array(t.data.length), undefined, 'invalid'],
        () => ['dtype junk', dims, t.data, R.pick(['float64', 1, null]), 'invalid'],
      ];
      const [l, shape, data, dtype, expect] = R.pick(variants)();
      return {
        label: l,
        expect,
        run: () => lib.writeNpy(shape, data, dtype),
        check: (buf) => (l === 'valid' ? sameAs(lib.readNpy(buf)) : wellFormed(lib.readNpy(buf))),
      };
    }
    default: {
      // loadNpy
      const dir = npyFiles();
      const file = R.pick([
        'good.npy',
        'truncated.npy',
        'garbage.npy',
        'nested.npy',
        'a-directory.npy',
        'missing.npy',
        null,
      ]);
      const p = file === null ? junk(R).value : path.join(dir, file);
      return {
        label: `path ${file ?? fmt(p)}`,
        expect: file === 'good.npy' ? 'valid' : 'invalid',
        run: () => lib.loadNpy(p),
        check: (a) => wellFormed(a) ?? (a.data.every((x) => x === 1.5) ? null : 'wrong values'),
        files: true,
      };
    }
  }
}

function deviceCase(R, entry) {
  const type = R.pick(DTYPES);
  const dims = [1 + R.int(3), 1 + R.int(5)];
  const t = hostTensor(R, dims, type);
  const m = R.chance(0.5) ? mutateTensor(R, t) : { label: 'valid', value: t, expect: 'valid' };
  const opts = R.chance(0.7) ? undefined : R.pick([{ device: 0 }, { device: -1 }, { device: 1.5 }, null, 'cuda']);
  const optsOk = opts === undefined || (opts && opts.device === 0);
  // without a CUDA device these throw ERR_NABLA_CUDA_UNAVAILABLE: 'either' for valid arguments
  const expect = m.expect === 'invalid' || !optsOk ? 'invalid' : 'either';
  const deviceCheck = (d) => {
    if (!(d instanceof lib.DeviceTensor)) return `returned ${fmt(d)}`;
    const problem = d.dims.join() === dims.join() && d.type === type ? null : `device tensor ${d.type} ${fmt(d.dims)}`;
    d.dispose();
    return problem;
  };
  switch (entry) {
    case 'emptyDevice': {
      const d = R.chance(0.4) ? R.pick(BAD_DIMS) : dims;
      return {
        label: `dims ${fmt(d)}, ${type}, options ${fmt(opts)}`,
        expect: dimsAreValid(d) && optsOk ? 'either' : 'invalid',
        run: () => lib.emptyDevice(d, type, opts),
        check: deviceCheck,
      };
    }
    case 'toHost':
      return {
        label: `tensor ${m.label}`,
        expect: 'either',
        run: () => lib.toHost(m.value),
        check: (h) => (Object.is(h, m.value) ? null : checkTensor(h, dims, type)),
      };
    case 'backends':
      return {
        label: '()',
        expect: 'valid',
        run: () => lib.backends(),
        check: (b) =>
          b &&
          b.cpu === true &&
          typeof b.cuda === 'boolean' &&
          Array.isArray(b.devices) &&
          (b.cuda ? b.devices.length > 0 : b.devices.length === 0)
            ? null
            : `returned ${JSON.stringify(b)}`,
      };
    case 'deviceMemory':
    case 'trimDeviceMemory': {
      // a device index (default 0); without a CUDA device valid ones throw ERR_NABLA_CUDA_UNAVAILABLE
      const device = R.chance(0.5) ? R.pick([undefined, 0]) : R.pick([-1, 1.5, NaN, Infinity, 2 ** 40, '0', null, {}]);
      return {
        label: `device ${fmt(device)}`,
        expect: device === undefined || device === 0 ? 'either' : 'invalid',
        run: () => lib[entry](device),
        check: (r) =>
          entry === 'trimDeviceMemory'
            ? r === undefined
              ? null
              : `returned ${fmt(r)}`
            : r && Number.isInteger(r.inUse) && Number.isInteger(r.reserved) && r.reserved >= r.inUse
              ? null
              : `returned ${JSON.stringify(r)}`,
      };
    }
    default: // toDevice, toDeviceSync
      return {
        label: `tensor ${m.label}, options ${fmt(opts)}`,
        expect,
        run: () => lib[entry](m.value, opts),
        check: deviceCheck,
      };
  }
}

// Interop (lib/interop.ts). No case hands over a live-looking handle other than the legacy default
// stream (0n): CUDA cannot check a stream or event handle, so a made-up one would be a real misuse,
// not a fuzz case. The only address offered as valid is 0x1000 (the first page, never mapped), so
// that on a GPU the runtime refuses it before any stream or event in the spec is used.
const GOOD_POINTER = 0x1000n;
const BAD_POINTERS = [0n, -4096n, 2n ** 64n, 0x1001n, 4096, '0x1000', null, undefined, {}];
const BAD_STREAMS = [-1n, 2n ** 64n, 1, '0', null, {}];
const BAD_EVENTS = [0n, -1n, 2n ** 64n, 7, 'e', {}];
const BAD_DEVICES = [-1, 1.5, NaN, Infinity, '0', null, undefined, 0n];

function interopCase(R, entry) {
  const spoil = R.chance(0.5);
  const device = spoil && R.chance(0.3) ? R.pick(BAD_DEVICES) : R.pick([0, 1]);
  const deviceOk = Number.isInteger(device) && device >= 0;
  switch (entry) {
    case 'deviceStream':
      return {
        label: `device ${fmt(device)}`,
        expect: deviceOk ? 'either' : 'invalid',
        run: () => lib.deviceStream(device),
        check: (s) => (typeof s === 'bigint' && s !== 0n ? null : `returned ${fmt(s)}`),
      };
    case 'recordEvent':
      return {
        label: `device ${fmt(device)}`,
        expect: deviceOk ? 'either' : 'invalid',
        run: () => lib.recordEvent(device),
        check: (e) => {
          const problem = e && typeof e.handle === 'bigint' && e.device === device ? null : `returned ${fmt(e)}`;
          if (e && typeof e.dispose === 'function') e.dispose();
          return problem;
        },
      };
    case 'waitForExternal': {
      const after = spoil
        ? R.pick([
            { stream: R.pick(BAD_STREAMS) },
            { event: R.pick(BAD_EVENTS) },
            { stream: 0n, event: 1n },
            {},
            null,
            0n,
          ])
        : { stream: 0n };
      const afterOk = !spoil;
      return {
        label: `device ${fmt(device)}, after ${
          after && typeof after === 'object'
            ? `{ ${Object.entries(after)
                .map(([k, v]) => `${k}: ${fmt(v)}`)
                .join(', ')} }`
            : fmt(after)
        }`,
        expect: deviceOk && afterOk ? 'either' : 'invalid',
        run: () => lib.waitForExternal(device, after),
        check: (r) => (r === undefined ? null : `returned ${fmt(r)}`),
      };
    }
    default: {
      // fromDevicePointer: a spec valid but for CUDA, or with one field spoiled
      const type = R.pick(DTYPES);
      const spec = { pointer: GOOD_POINTER, dims: [R.int(4) + 1, 64], type, device: R.pick([0, 1]), owner: null };
      if (spoil) {
        const field = R.pick(['pointer', 'dims', 'type', 'device', 'owner', 'stream', 'event', 'both']);
        if (field === 'pointer') spec.pointer = R.pick(BAD_POINTERS);
        else if (field === 'dims') spec.dims = R.pick([...BAD_DIMS, [2 ** 30, 2 ** 30, 2 ** 30]]);
        else if (field === 'type') spec.type = R.pick(['int8', 'float64', 1, null]);
        else if (field === 'device') spec.device = R.pick(BAD_DEVICES);
        else if (field === 'owner') delete spec.owner;
        else if (field === 'stream') spec.stream = R.pick(BAD_STREAMS);
        else if (field === 'event') spec.event = R.pick(BAD_EVENTS);
        else Object.assign(spec, { stream: 0n, event: 1n });
      } else if (R.chance(0.3)) spec.stream = 0n;
      const label = Object.entries(spec)
        .map(([k, v]) => `${k}: ${fmt(v)}`)
        .join(', ');
      return {
        label: `{ ${label} }`,
        // never valid: on a GPU the runtime places 0x1000 in no memory (a RangeError)
        expect: spoil ? 'invalid' : 'either',
        run: () => lib.fromDevicePointer(spec),
        check: (t) => {
          if (t instanceof lib.DeviceTensor) t.dispose();
          return `accepted ${label}`;
        },
      };
    }
  }
}

/** Every public entry point and the generator of its cases. */
const ENTRY_POINTS = {
  tensor: tensorCase,
  zeros: tensorCase,
  cast: tensorCase,
  toFloat32Array: tensorCase,
  float16ToFloat: dtypeCase,
  floatToFloat16: dtypeCase,
  bfloat16ToFloat: dtypeCase,
  floatToBfloat16: dtypeCase,
  fromFloat32: dtypeCase,
  toFloat32: dtypeCase,
  'BlockMask.fromDense': blockMaskCase,
  'BlockMask.fromKvBlocks': blockMaskCase,
  'BlockMask methods': blockMaskCase,
  staMask: tileCase,
  tileOrder: tileCase,
  toTiles: tileCase,
  fromTiles: tileCase,
  blockPool: poolCase,
  blockPoolSync: poolCase,
  nablaMask: maskCase,
  nablaMaskSync: maskCase,
  attention: attentionCase,
  attentionSync: attentionCase,
  blockSparseAttention: attentionCase,
  blockSparseAttentionSync: attentionCase,
  nablaAttention: attentionCase,
  nablaAttentionSync: attentionCase,
  warmUp: warmUpCase,
  readNpy: npyCase,
  loadNpy: npyCase,
  npyToTensor: npyCase,
  tensorToNpy: npyCase,
  writeNpy: npyCase,
  toDevice: deviceCase,
  toDeviceSync: deviceCase,
  emptyDevice: deviceCase,
  toHost: deviceCase,
  backends: deviceCase,
  deviceMemory: deviceCase,
  trimDeviceMemory: deviceCase,
  fromDevicePointer: interopCase,
  deviceStream: interopCase,
  waitForExternal: interopCase,
  recordEvent: interopCase,
};
const ENTRY_NAMES = Object.keys(ENTRY_POINTS);

/** Case `index` of run `seed`: entry points in turn, arguments from the case's own random source. */
function makeCase(seed, index) {
  const R = randomFor(seed, index);
  const entry = ENTRY_NAMES[index % ENTRY_NAMES.length];
  return { entry, ...ENTRY_POINTS[entry](R, entry) };
}

function cleanup() {
  if (npyDir) fs.rmSync(npyDir, { recursive: true, force: true });
}

module.exports = { makeCase, cleanup, ENTRY_NAMES };
