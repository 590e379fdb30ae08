// .npy reader/writer: round trips for every dtype, header versions, malformed files, and files
// written / read by NumPy itself when python3 with numpy is available.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { NpyData, NpyDType, loadNpy, npyToTensor, readNpy, saveNpy, tensorToNpy, writeNpy } from '../lib/npy';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);

/** A .npy file built by hand, so tests control every header byte. */
function handMade(header: string, data: Uint8Array, major = 1): Buffer {
  const prefix = major === 1 ? 10 : 12;
  const text = header + '\n';
  const buf = Buffer.alloc(prefix + text.length + data.length);
  MAGIC.copy(buf, 0);
  buf[6] = major;
  buf[7] = 0;
  if (major === 1) buf.writeUInt16LE(Buffer.byteLength(text, 'utf8'), 8);
  else buf.writeUInt32LE(Buffer.byteLength(text, 'utf8'), 8);
  buf.write(text, prefix, major === 3 ? 'utf8' : 'latin1');
  buf.set(data, prefix + text.length);
  return buf;
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

const samples: { dtype: NpyDType; shape: number[]; data: NpyData }[] = [
  { dtype: 'float32', shape: [2, 3, 4], data: Float32Array.from({ length: 24 }, (_, i) => Math.sin(i) * 1e3) },
  { dtype: 'float16', shape: [5], data: Uint16Array.of(0x3c00, 0xc000, 0x7bff, 0x0001, 0xfbff) },
  { dtype: 'uint8', shape: [1, 2, 3, 3], data: Uint8Array.from({ length: 18 }, (_, i) => (i * 37) % 256) },
  { dtype: 'int32', shape: [3, 1], data: Int32Array.of(-2147483648, 0, 2147483647) },
];

describe('writeNpy / readNpy round trip', () => {
  it.each(samples)('$dtype $shape', ({ dtype, shape, data }) => {
    const file = writeNpy(shape, data, dtype);
    expect(file[6]).toBe(1); // format 1.0
    expect((10 + file.readUInt16LE(8)) % 64).toBe(0); // data starts on NumPy's 64-byte boundary
    const back = readNpy(file);
    expect(back.dtype).toBe(dtype);
    expect(back.shape).toEqual(shape);
    expect(back.data.constructor).toBe(data.constructor);
    expect(Array.from(back.data)).toEqual(Array.from(data));
  });

  it('infers the dtype from the typed array and rejects contradictions', () => {
    expect(readNpy(writeNpy([2], Float32Array.of(1, 2))).descr).toBe('<f4');
    expect(readNpy(writeNpy([2], Int32Array.of(1, 2))).descr).toBe('<i4');
    expect(readNpy(writeNpy([2], Uint8Array.of(1, 2))).descr).toBe('|u1');
    expect(() => writeNpy([2], Uint16Array.of(1, 2))).toThrow(/Expected dtype 'float16'/);
    expect(() => writeNpy([2], Float32Array.of(1, 2), 'int32')).toThrow(/Expected dtype 'float32'/);
    expect(() => writeNpy([3], Float32Array.of(1, 2))).toThrow(/Expected 3 elements for shape \[3\]/);
    expect(() => writeNpy([2], [1, 2] as unknown as Float32Array)).toThrow(/Expected a Float32Array/);
  });

  it('writes 0-d and empty arrays', () => {
    const scalar = readNpy(writeNpy([], Float32Array.of(2.5)));
    expect(scalar.shape).toEqual([]);
    expect(Array.from(scalar.data)).toEqual([2.5]);
    const empty = readNpy(writeNpy([0, 3], new Float32Array(0)));
    expect(empty.shape).toEqual([0, 3]);
    expect(empty.data.length).toBe(0);
  });

  it('pads every header with spaces to the 64-byte boundary and ends it with a newline, also when the dict alone reaches it', () => {
    // NumPy's rule: magic + version + length field + header is a multiple of 64, and the header
    // is the dict, spaces, then '\n'. For shape [1]*20 + [123] the dict is 118 bytes: 10 + 118 = 128.
    const shapes = [
      [...new Array(20).fill(1), 123],
      [2, 3],
      [],
      ...Array.from({ length: 64 }, (_, n) => [...new Array(n).fill(1), 7]),
    ];
    for (const shape of shapes) {
      const count = shape.reduce((a, b) => a * b, 1);
      const file = writeNpy(shape, new Float32Array(count).fill(0.5));
      const length = file.readUInt16LE(8);
      const header = file.subarray(10, 10 + length).toString('latin1');
      const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`}, }`;
      expect({ shape, aligned: (10 + length) % 64 }).toEqual({ shape, aligned: 0 });
      expect(header.endsWith('\n')).toBe(true);
      expect(header.slice(0, dict.length)).toBe(dict);
      expect(header.slice(dict.length, -1)).toMatch(/^ *$/);
      expect(readNpy(file).shape).toEqual(shape);
    }
    expect(
      `{'descr': '<f4', 'fortran_order': False, 'shape': (${[...new Array(20).fill(1), 123].join(', ')}), }`.length,
    ).toBe(118);
  });

  it('switches to format 2.0 when the header outgrows a 16-bit length', () => {
    const shape = new Array(25000).fill(1); // "1, " x 25000 > 65535 header bytes
    const file = writeNpy(shape, Float32Array.of(7));
    expect(file[6]).toBe(2);
    expect((12 + file.readUInt32LE(8)) % 64).toBe(0);
    const back = readNpy(file);
    expect(back.shape).toHaveLength(25000);
    expect(Array.from(back.data)).toEqual([7]);
  });

  it('saveNpy / loadNpy go through the file system', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'npy-')), 'a.npy');
    saveNpy(file, [2, 2], Float32Array.of(1, 2, 3, 4));
    const back = loadNpy(file);
    expect(back.shape).toEqual([2, 2]);
    expect(Array.from(back.data)).toEqual([1, 2, 3, 4]);
    fs.rmSync(path.dirname(file), { recursive: true });
  });
});

describe('readNpy details', () => {
  it('reads format 2.0 and 3.0 (utf8) headers', () => {
    const data = bytesOf(Float32Array.of(1, -2, 3));
    for (const major of [2, 3]) {
      const back = readNpy(handMade("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", data, major));
      expect(back.shape).toEqual([3]);
      expect(Array.from(back.data)).toEqual([1, -2, 3]);
    }
  });

  it('tolerates header spellings NumPy has used (no trailing comma, double quotes, key order, 3L)', () => {
    const data = bytesOf(Int32Array.of(4, 5));
    const back = readNpy(handMade('{"shape": (2L,), "fortran_order": False, "descr": "<i4"}', data));
    expect(back.shape).toEqual([2]);
    expect(Array.from(back.data)).toEqual([4, 5]);
  });

  it('converts <f8 to float32 and reads |b1 as uint8', () => {
    const f8 = readNpy(
      handMade("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", bytesOf(Float64Array.of(0.1, -1e10))),
    );
    expect(f8.dtype).toBe('float32');
    expect(f8.descr).toBe('<f8');
    expect(f8.data).toBeInstanceOf(Float32Array);
    expect(Array.from(f8.data)).toEqual([Math.fround(0.1), Math.fround(-1e10)]);
    const b1 = readNpy(handMade("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", Uint8Array.of(1, 0, 1)));
    expect(b1.dtype).toBe('uint8');
    expect(Array.from(b1.data)).toEqual([1, 0, 1]);
  });

  it('copies data that is not aligned inside the file buffer', () => {
    const file = writeNpy([3], Float32Array.of(1.5, 2.5, 3.5));
    const shifted = new Uint8Array(file.length + 1);
    shifted.set(file, 1);
    const view = shifted.subarray(1); // byteOffset 1: a Float32Array view would throw
    const back = readNpy(view);
    expect(Array.from(back.data)).toEqual([1.5, 2.5, 3.5]);
    back.data[0] = 99; // a copy: the file bytes are untouched
    expect(readNpy(view).data[0]).toBe(1.5);
  });

  it('npyToTensor takes float32 / float16 and refuses integers; tensorToNpy round trips', () => {
    const f16 = readNpy(writeNpy([1, 2], Uint16Array.of(0x3c00, 0x4000), 'float16'));
    const t = npyToTensor(f16, 'q.npy');
    expect(t.type).toBe('float16');
    expect(t.dims).toEqual([1, 2]);
    expect(t.data).toBeInstanceOf(Uint16Array);
    expect(readNpy(tensorToNpy(t)).descr).toBe('<f2');
    expect(() => npyToTensor(readNpy(writeNpy([1], Int32Array.of(1))), 'q.npy')).toThrow(
      "Expected a float array ('<f4', '<f2' or '<f8') for q.npy but received '<i4'",
    );
    expect(() => tensorToNpy({ type: 'bfloat16', dims: [1], data: Uint16Array.of(0) })).toThrow(
      /NumPy has no bfloat16/,
    );
  });
});

describe('readNpy errors name the file and the problem in one line', () => {
  const good = writeNpy([2, 2], Float32Array.of(1, 2, 3, 4));
  const header = (descr: string, fortran = 'False', shape = '(2,)') =>
    `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;
  const cases: [string, Uint8Array, RegExp][] = [
    [
      'bad magic',
      Buffer.concat([Buffer.from('PK\x03\x04'), good.subarray(4)]),
      /magic bytes .* but received 50 4b 03 04/,
    ],
    ['empty file', new Uint8Array(0), /magic bytes .* but received 0 bytes/],
    ['truncated before the length field', good.subarray(0, 9), /a complete \.npy header .*9 bytes/],
    ['truncated header', good.subarray(0, 40), /truncated header/],
    ['truncated data', good.subarray(0, good.length - 1), /16 data bytes .* but received 15 bytes \(truncated file\)/],
    ['extra data', Buffer.concat([good, Buffer.alloc(4)]), /16 data bytes .* but received 20 bytes/],
    [
      'unknown version',
      Buffer.concat([good.subarray(0, 6), Buffer.from([4, 0]), good.subarray(8)]),
      /version 1\.0, 2\.0 or 3\.0 .* 4\.0/,
    ],
    ['fortran order', handMade(header('<f4', 'True'), new Uint8Array(8)), /C-order array .* Fortran-order/],
    ['big-endian float32', handMade(header('>f4'), new Uint8Array(8)), /big-endian.*received '>f4'/],
    ['unsupported dtype', handMade(header('<c8'), new Uint8Array(16)), /received '<c8'/],
    [
      'structured dtype',
      handMade("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", new Uint8Array(4)),
      /structured dtype/,
    ],
    [
      'garbage header',
      handMade("{'descr': '<f4', 'fortran_order': Nope, 'shape': (2,), }", new Uint8Array(8)),
      /header dict \(an unexpected token/,
    ],
    ['negative dim', handMade(header('<f4', 'False', '(-2,)'), new Uint8Array(8)), /non-negative integers/],
  ];
  it.each(cases)('%s', (_name, bytes, message) => {
    let error: Error | undefined;
    try {
      readNpy(bytes, 'q.npy');
    } catch (e) {
      error = e as Error;
    }
    expect(error).toBeDefined();
    expect(error!.message).toMatch(/^Expected .* for q\.npy but received /);
    expect(error!.message).toMatch(message);
    expect(error!.message).not.toContain('\n');
    expect((error as Error & { code: string }).code).toBe('ERR_NABLA_NPY');
  });

  it('a header nested too deep for a recursive parser fails with the file name, not a stack overflow', () => {
    for (const open of ['[', '(', '{']) {
      const header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${open.repeat(200000)}`;
      let error: Error | undefined;
      try {
        readNpy(handMade(header, new Uint8Array(0), 2), 'deep.npy');
      } catch (e) {
        error = e as Error;
      }
      expect(error?.message).toMatch(
        /^Expected a \.npy header dict \(nesting deeper than 64 levels at offset \d+\) for deep\.npy but received /,
      );
      expect((error as Error & { code: string }).code).toBe('ERR_NABLA_NPY');
    }
    // shallow nesting still parses, and then fails on what it means
    const nested = handMade("{'descr': '<f4', 'fortran_order': False, 'shape': ((((2,),),),), }", new Uint8Array(8));
    expect(() => readNpy(nested, 'nested.npy')).toThrow(/a header 'shape' of non-negative integers for nested\.npy/);
  });

  it('npyToTensor checks the array it is given: kind, data kind and length', () => {
    const a = readNpy(writeNpy([2, 3], new Float32Array(6)));
    const expectForm = (fn: () => unknown, kind: typeof TypeError, message: RegExp) => {
      expect(fn).toThrow(kind);
      expect(fn).toThrow(message);
    };
    expectForm(
      () => npyToTensor({ ...a, shape: [7] }),
      RangeError,
      /^Expected 7 elements for shape \(7,\) for array\.data but received 6 elements$/,
    );
    expectForm(
      () => npyToTensor({ ...a, data: new Float64Array(6) as never }),
      TypeError,
      /^Expected a Float32Array for dtype 'float32' for array\.data but received Float64Array\(6\)$/,
    );
    expectForm(
      () => npyToTensor({ ...a, data: new Proxy(new Float32Array(6), {}) }),
      TypeError,
      /for array\.data but received an object$/,
    );
    expectForm(
      () => npyToTensor({ ...a, shape: new Array(2) }),
      TypeError,
      /^Expected an array of non-negative integers for array\.shape/,
    );
    expectForm(
      () => npyToTensor(null as never),
      TypeError,
      /^Expected a \.npy array \{ dtype, shape, data \} \(see readNpy\(\)\) for array but received null$/,
    );
    expect(npyToTensor(a).dims).toEqual([2, 3]);
  });

  it('writers and readers refuse look-alikes: Proxy data, sparse shapes, paths that are not strings', () => {
    expect(() => writeNpy([2], new Proxy(Float32Array.of(1, 2), {}))).toThrow(
      /^Expected a Float32Array, .* for data but received an object$/,
    );
    expect(() => writeNpy(new Array(3), Float32Array.of(1))).toThrow(
      'Expected an array of non-negative integers for shape but received [, , ]',
    );
    expect(() => tensorToNpy({ type: 'float32', dims: [2], data: new Proxy(Float32Array.of(1, 2), {}) })).toThrow(
      TypeError,
    );
    expect(() => tensorToNpy(null as never)).toThrow(
      /^Expected a tensor \{ type, dims, data \} \(see tensor\(\)\) for tensor but received null$/,
    );
    expect(() => tensorToNpy({ type: 'float64', dims: [1], data: Float32Array.of(1) } as never)).toThrow(
      /for tensor\.type but received 'float64'$/,
    );
    for (const bad of [undefined, 3, { path: 'a.npy' }]) {
      expect(() => loadNpy(bad as never)).toThrow(/^Expected a file path \(a string\) for path but received /);
      expect(() => saveNpy(bad as never, [1], Float32Array.of(1))).toThrow(
        /^Expected a file path \(a string\) for path but received /,
      );
    }
    let error: (Error & { code?: string }) | undefined;
    try {
      readNpy(new Proxy(writeNpy([1], Float32Array.of(1)), {}) as never, 'p.npy');
    } catch (e) {
      error = e as Error;
    }
    expect([error?.code, error?.message]).toEqual([
      'ERR_NABLA_NPY',
      'Expected the bytes of a .npy file (a Uint8Array or Buffer) for p.npy but received an object',
    ]);
  });

  it('loadNpy names the path', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'npy-')), 'bad.npy');
    fs.writeFileSync(file, 'not numpy');
    expect(() => loadNpy(file)).toThrow(`for ${file} but received`);
    fs.rmSync(path.dirname(file), { recursive: true });
  });
});

// ---------------------------------------------------------------------------------------------
// NumPy itself (skipped, with the reason in the test name, when python3 + numpy are missing)

const python = spawnSync('python3', ['-c', 'import numpy; print(numpy.__version__)'], { encoding: 'utf8' });
const numpyVersion = python.status === 0 ? python.stdout.trim() : undefined;
const withNumpy = numpyVersion ? it : it.skip;
const suffix = numpyVersion ? `(numpy ${numpyVersion})` : '(skipped: python3 with numpy not found)';

function runPython(script: string, dir: string): void {
  const r = spawnSync('python3', ['-c', script], { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3 failed: ${r.stderr}`);
}

describe(`interchange with NumPy ${suffix}`, () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'npy-numpy-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  withNumpy('reads every dtype NumPy writes (np.save, formats 1.0, 2.0 and 3.0)', () => {
    runPython(
      `
import numpy as np
from numpy.lib import format as fmt
a = (np.arange(2*3*4, dtype=np.float64).reshape(2, 3, 4) * 0.37 - 3)
np.save('f4.npy', a.astype('<f4'))
np.save('f2.npy', a.astype('<f2'))
np.save('f8.npy', a)
np.save('u1.npy', (np.arange(24) * 11 % 256).astype(np.uint8).reshape(2, 3, 4))
np.save('b1.npy', (np.arange(24) % 3 == 0).reshape(2, 3, 4))
np.save('i4.npy', (np.arange(24, dtype=np.int32) - 12) * 100000)
np.save('scalar.npy', np.float32(4.5))
np.save('big.npy', a.astype('>f4'))
np.save('fortran.npy', np.asfortranarray(a.astype('<f4')))
for v in [(2, 0), (3, 0)]:
    with open('v%d.npy' % v[0], 'wb') as f:
        fmt.write_array(f, a.astype('<f4'), version=v)
`,
      dir,
    );
    const a = Array.from({ length: 24 }, (_, i) => i * 0.37 - 3);
    const f4 = loadNpy(path.join(dir, 'f4.npy'));
    expect(f4.shape).toEqual([2, 3, 4]);
    expect(Array.from(f4.data)).toEqual(a.map(Math.fround));
    expect(Array.from(loadNpy(path.join(dir, 'f8.npy')).data)).toEqual(a.map(Math.fround));
    const f2 = loadNpy(path.join(dir, 'f2.npy'));
    expect(f2.dtype).toBe('float16');
    expect(Array.from(f2.data)).toEqual(Array.from(readF16Reference(dir)));
    expect(Array.from(loadNpy(path.join(dir, 'u1.npy')).data)).toEqual(a.map((_, i) => (i * 11) % 256));
    expect(Array.from(loadNpy(path.join(dir, 'b1.npy')).data)).toEqual(a.map((_, i) => (i % 3 === 0 ? 1 : 0)));
    expect(Array.from(loadNpy(path.join(dir, 'i4.npy')).data)).toEqual(a.map((_, i) => (i - 12) * 100000));
    const scalar = loadNpy(path.join(dir, 'scalar.npy'));
    expect(scalar.shape).toEqual([]);
    expect(Array.from(scalar.data)).toEqual([4.5]);
    for (const v of ['v2', 'v3'])
      expect(Array.from(loadNpy(path.join(dir, `${v}.npy`)).data)).toEqual(a.map(Math.fround));
    expect(() => loadNpy(path.join(dir, 'big.npy'))).toThrow(/big-endian.*'>f4'/);
    expect(() => loadNpy(path.join(dir, 'fortran.npy'))).toThrow(/Fortran-order/);
  });

  /** fp16 bits of the same values, computed by NumPy (an independent fp16 rounding). */
  function readF16Reference(d: string): Uint16Array {
    runPython(
      `
import numpy as np
a = (np.arange(24, dtype=np.float64) * 0.37 - 3).astype('<f2')
open('f2.bits', 'w').write(' '.join(str(x) for x in a.view('<u2')))
`,
      d,
    );
    return Uint16Array.from(fs.readFileSync(path.join(d, 'f2.bits'), 'utf8').split(' ').map(Number));
  }

  withNumpy('NumPy reads what writeNpy writes (every dtype, format 2.0 too)', () => {
    for (const { dtype, shape, data } of samples) saveNpy(path.join(dir, `ours-${dtype}.npy`), shape, data, dtype);
    saveNpy(path.join(dir, 'ours-scalar.npy'), [], Float32Array.of(-1.25));
    // a dict that ends exactly on the 64-byte boundary (10 + 118 = 128): the padding is a full line
    saveNpy(
      path.join(dir, 'ours-aligned.npy'),
      [...new Array(20).fill(1), 123],
      Float32Array.from({ length: 123 }, (_, i) => i + 0.5),
    );
    // np.load refuses more than 64 dims, so the format 2.0 file goes through NumPy's header reader
    const shape2 = new Array(25000).fill(1);
    saveNpy(path.join(dir, 'ours-v2.npy'), shape2, Float32Array.of(3));
    runPython(
      `
import numpy as np, json
from numpy.lib import format as fmt
out = {}
for name in ['float32', 'float16', 'uint8', 'int32', 'scalar']:
    a = np.load('ours-%s.npy' % name, allow_pickle=False)
    out[name] = {'dtype': a.dtype.str, 'shape': list(a.shape), 'values': [float(x) for x in a.ravel()]}
with open('ours-v2.npy', 'rb') as f:
    version = fmt.read_magic(f)
    shape, fortran, dtype = fmt.read_array_header_2_0(f, max_header_size=10**6)
    out['v2'] = {'version': list(version), 'ndim': len(shape), 'dtype': dtype.str, 'fortran': fortran, 'value': float(np.frombuffer(f.read(), dtype)[0])}
a = np.load('ours-aligned.npy', allow_pickle=False)
out['aligned'] = {'shape': list(a.shape), 'values': [float(x) for x in a.ravel()]}
json.dump(out, open('numpy.json', 'w'))
`,
      dir,
    );
    const seen = JSON.parse(fs.readFileSync(path.join(dir, 'numpy.json'), 'utf8'));
    const descr: Record<NpyDType, string> = { float32: '<f4', float16: '<f2', uint8: '|u1', int32: '<i4' };
    for (const { dtype, shape, data } of samples) {
      expect(seen[dtype].dtype).toBe(descr[dtype]);
      expect(seen[dtype].shape).toEqual(shape);
      const want = dtype === 'float16' ? Array.from(data, (bits) => f16(bits)) : Array.from(data);
      expect(seen[dtype].values).toEqual(want);
    }
    expect(seen.scalar).toEqual({ dtype: '<f4', shape: [], values: [-1.25] });
    expect(seen.aligned).toEqual({
      shape: [...new Array(20).fill(1), 123],
      values: Array.from({ length: 123 }, (_, i) => i + 0.5),
    });
    expect(seen.v2).toEqual({ version: [2, 0], ndim: 25000, dtype: '<f4', fortran: false, value: 3 });
  });
});

/** fp16 bits -> number, written out here so the NumPy comparison does not lean on lib/dtype. */
function f16(bits: number): number {
  const exp = (bits >> 10) & 0x1f;
  const man = bits & 0x3ff;
  const sign = bits & 0x8000 ? -1 : 1;
  if (exp === 31) return man ? NaN : sign * Infinity;
  return sign * (exp === 0 ? man * 2 ** -24 : (1 + man / 1024) * 2 ** (exp - 15));
}
