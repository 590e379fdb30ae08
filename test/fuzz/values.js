// Values for the fuzz cases: a seeded random source, valid tensors and masks of small shapes, and
// hostile stand-ins for any argument (wrong kinds, odd numbers, exotic buffers, Proxies).
'use strict';
const lib = require('../../dist');
const { rng } = require('../../dist/synthetic');

/** A random source for one case: the same (seed, index) always gives the same case. */
function randomFor(seed, index) {
  const r = rng((seed * 1000003 + index * 7919) >>> 0);
  const int = (n) => Math.floor(r() * n);
  return { float: r, int, pick: (a) => a[int(a.length)], chance: (p) => r() < p };
}

const numel = (dims) => dims.reduce((a, b) => a * b, 1);

/** fp32 values in [-2, 2). */
function values(R, n) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (R.float() * 2 - 1) * 2;
  return out;
}

function hostTensor(R, dims, type = 'float32') {
  const v = values(R, numel(dims));
  return lib.tensor(type === 'float32' ? v : lib.fromFloat32(v, type), dims, type);
}

/** Shapes small enough that a few thousand ops take seconds. */
function attentionShape(R) {
  return {
    B: 1 + R.int(2),
    H: 1 + R.int(2),
    Sq: 64 * (1 + R.int(3)),
    Skv: 64 * (1 + R.int(3)),
    D: R.pick([8, 13, 16, 32, 64]),
    Dv: R.pick([8, 16, 24, 40]),
    type: R.pick(['float32', 'float32', 'float16', 'bfloat16']),
  };
}

/** A random 0/1 block map [B, H, nq, nk] with about half the blocks kept. */
function randomDense(R, dims) {
  const dense = new Uint8Array(numel(dims));
  for (let i = 0; i < dense.length; i++) dense[i] = R.chance(0.5) ? 1 : 0;
  return dense;
}

function detachedFloat32(n) {
  const a = new Float32Array(n);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
}

function sharedFloat32(src) {
  const a = new Float32Array(new SharedArrayBuffer(src.byteLength));
  a.set(src);
  return a;
}

/** A length-tracking view on a resizable buffer (allowed to shrink later). */
function resizableView(src) {
  const Ctor = src.constructor;
  const buf = new ArrayBuffer(src.byteLength, { maxByteLength: src.byteLength * 2 });
  const a = new Ctor(buf);
  a.set(src);
  return a;
}

/** The same elements at a non-zero byte offset of a larger buffer. */
function offsetView(src) {
  const Ctor = src.constructor;
  const big = new Ctor(src.length + 3);
  big.set(src, 3);
  return big.subarray(3);
}

// Stand-ins for any argument: none of them is a valid tensor, mask, grid or options object.
const JUNK = [
  ['undefined', () => undefined],
  ['null', () => null],
  ['0', () => 0],
  ['-1', () => -1],
  ['NaN', () => NaN],
  ['Infinity', () => Infinity],
  ['1.5', () => 1.5],
  ['2^31', () => 2 ** 31],
  ['2^53', () => 2 ** 53],
  ['-0', () => -0],
  ["''", () => ''],
  ["'float32'", () => 'float32'],
  ["'x'.repeat(1e4)", () => 'x'.repeat(1e4)],
  ['true', () => true],
  ['10n', () => 10n],
  ['Symbol()', () => Symbol('fuzz')],
  ['[]', () => []],
  ['{}', () => ({})],
  ['[1, 2]', () => [1, 2]],
  ['[NaN, 8, 8]', () => [NaN, 8, 8]],
  ['a function', () => function f() {}],
  ['Proxy({})', () => new Proxy({}, {})],
  ['Object.create(null)', () => Object.create(null)],
  ['a Date', () => new Date(0)],
  ['a Map', () => new Map()],
  ['Float64Array(4)', () => new Float64Array(4)],
  ['Uint8Array(4)', () => new Uint8Array(4)],
  ['BigInt64Array(4)', () => new BigInt64Array(4)],
  ['a DataView', () => new DataView(new ArrayBuffer(8))],
  ['ArrayBuffer(16)', () => new ArrayBuffer(16)],
  ['a detached Float32Array', () => detachedFloat32(4)],
  ['Proxy(Float32Array)', () => new Proxy(new Float32Array(4), {})],
  ['Array(1e6)', () => new Array(1e6)],
];

function junk(R) {
  const [label, make] = R.pick(JUNK);
  return { label, value: make() };
}

// Dims that are not positive integers, or too large to allocate.
const BAD_DIMS = [
  [],
  [0],
  [-1],
  [1.5],
  [NaN],
  [Infinity],
  [2 ** 31],
  [2 ** 53],
  [2 ** 31, 2 ** 31],
  ['64'],
  [null],
  [1, 2, 64],
  [1, 1, 64, 8, 1],
  [1, 1, 65, 8],
  [1, 1, 64, 7],
  [1, 1, 64, 257],
  [2 ** 31, 1, 64, 8],
  [1, 2 ** 31 + 64, 64, 8],
];

/**
 * A hostile variant of a valid host tensor t: { label, value, expect } where expect is 'invalid'
 * (must be rejected), 'valid' (must be accepted and computed) or 'either'.
 */
function mutateTensor(R, t) {
  const n = t.data.length;
  const Other = t.type === 'float32' ? Uint16Array : Float32Array;
  const variants = [
    () => ({ ...junk(R), expect: 'invalid' }),
    () => {
      // junk that happens to be the tensor's own type ('float32') is no mutation
      const type = junk(R).value;
      return { label: `type ${fmt(type)}`, value: { ...t, type }, expect: type === t.type ? 'valid' : 'invalid' };
    },
    () => ({ label: "type 'float64'", value: { ...t, type: 'float64' }, expect: 'invalid' }),
    () => {
      const dims = R.pick(BAD_DIMS);
      // the rare bad dims of the same element count are still a valid tensor of another shape
      const sameCount = dims.every((d) => Number.isInteger(d) && d > 0) && numel(dims) === n;
      return { label: `dims ${fmt(dims)}`, value: { ...t, dims }, expect: sameCount ? 'either' : 'invalid' };
    },
    () => {
      // junk dims of the same element count (e.g. [1, 2] over 2 values) still describe the data
      const dims = junk(R).value;
      const fits =
        Array.isArray(dims) && dims.length > 0 && dims.every((d) => Number.isInteger(d) && d > 0) && numel(dims) === n;
      return { label: `dims ${fmt(dims)}`, value: { ...t, dims }, expect: fits ? 'either' : 'invalid' };
    },
    () => ({
      label: `data of ${n + 1} elements`,
      value: { ...t, data: new t.data.constructor(n + 1) },
      expect: 'invalid',
    }),
    () => ({ label: `data of ${n - 1} elements`, value: { ...t, data: t.data.subarray(1) }, expect: 'invalid' }),
    () => ({ label: `data ${Other.name} for ${t.type}`, value: { ...t, data: new Other(n) }, expect: 'invalid' }),
    () => ({ label: 'data Float64Array', value: { ...t, data: new Float64Array(n) }, expect: 'invalid' }),
    () => ({ label: 'data junk', value: { ...t, data: junk(R).value }, expect: 'invalid' }),
    () => ({ label: 'data plain array', value: { ...t, data: Array.from(t.data) }, expect: 'invalid' }),
    () => ({
      label: 'data detached',
      value: {
        ...t,
        data: (() => {
          const d = t.data.slice();
          structuredClone(d.buffer, { transfer: [d.buffer] });
          return d;
        })(),
      },
      expect: 'invalid',
    }),
    () => ({ label: 'data Proxy', value: { ...t, data: new Proxy(t.data.slice(), {}) }, expect: 'invalid' }),
    () => ({ label: 'data on a SharedArrayBuffer', value: { ...t, data: shared(t.data) }, expect: 'valid' }),
    () => ({ label: 'data on a resizable buffer', value: { ...t, data: resizableView(t.data) }, expect: 'either' }),
    () => ({ label: 'data at a byte offset', value: { ...t, data: offsetView(t.data) }, expect: 'valid' }),
    () => ({ label: 'Proxy(tensor)', value: new Proxy(t, {}), expect: 'either' }),
    () => ({ label: 'null-prototype tensor', value: Object.assign(Object.create(null), t), expect: 'either' }),
    () => ({
      label: 'frozen tensor',
      value: Object.freeze({ ...t, dims: Object.freeze([...t.dims]) }),
      expect: 'valid',
    }),
    () => ({
      label: 'DeviceTensor with a null buffer',
      value: new lib.DeviceTensor(t.type, t.dims, 0, null),
      expect: 'invalid',
    }),
    () => ({
      label: 'Object.create(DeviceTensor.prototype)',
      value: Object.create(lib.DeviceTensor.prototype),
      expect: 'invalid',
    }),
  ];
  return R.pick(variants)();
}

function shared(src) {
  const a = new src.constructor(new SharedArrayBuffer(src.byteLength));
  a.set(src);
  return a;
}

/** A short readable description of an argument for the case label. */
function fmt(x) {
  if (x === undefined) return 'undefined';
  if (x === null) return 'null';
  if (typeof x === 'bigint') return `${x}n`;
  if (typeof x === 'symbol') return 'Symbol()';
  if (typeof x === 'string') return x.length > 20 ? `'${x.slice(0, 20)}...'` : `'${x}'`;
  if (typeof x === 'function') return 'a function';
  if (ArrayBuffer.isView(x)) return `${x.constructor.name}(${x.length ?? x.byteLength})`;
  if (Array.isArray(x)) return x.length > 6 ? `Array(${x.length})` : `[${x.map(fmt).join(', ')}]`;
  if (typeof x === 'object' && x !== null && 'dims' in x && 'type' in x) {
    try {
      return `<${fmt(x.type)} ${fmt(x.dims)}>`;
    } catch {
      return 'a tensor-like object';
    }
  }
  return typeof x === 'number' || typeof x === 'boolean' ? String(x) : 'an object';
}

module.exports = {
  lib,
  randomFor,
  numel,
  values,
  hostTensor,
  attentionShape,
  randomDense,
  detachedFloat32,
  sharedFloat32,
  resizableView,
  offsetView,
  junk,
  mutateTensor,
  BAD_DIMS,
  fmt,
};
