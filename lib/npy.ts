// NumPy .npy files (format 1.0, 2.0 and 3.0): the array format the CLI reads and writes, so
// tensors move between PyTorch/NumPy and this package without a conversion step.
//
// Layout: "\x93NUMPY", major, minor, header length (uint16 LE for 1.0, uint32 LE for 2.0/3.0),
// then a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// padded with spaces and '\n' so the data starts on a 64-byte boundary, then the raw data.
import * as fs from 'fs';
import { describe, rangeError, typeError } from './errors';
import { Tensor } from './tensor';
import { typedArrayName } from './typedarray';

/** Element types this reader returns ('<f8' files are read as float32). */
export type NpyDType = 'float32' | 'float16' | 'uint8' | 'int32';
export type NpyData = Float32Array | Uint16Array | Uint8Array | Int32Array;

export interface NpyArray {
  dtype: NpyDType;
  shape: number[];
  data: NpyData;
  /** The dtype as the file spells it, e.g. '<f8' for a float64 file read as float32. */
  descr: string;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ALIGN = 64; // NumPy's ARRAY_ALIGN: the data of a written file starts on this boundary

/** Accepted descrs: '<' little-endian, '|' not applicable (one byte); '|b1' is NumPy bool. */
const READ_DESCR: Readonly<Record<string, { dtype: NpyDType; itemSize: number }>> = {
  '<f4': { dtype: 'float32', itemSize: 4 },
  '<f2': { dtype: 'float16', itemSize: 2 },
  '|u1': { dtype: 'uint8', itemSize: 1 },
  '<u1': { dtype: 'uint8', itemSize: 1 },
  '|b1': { dtype: 'uint8', itemSize: 1 },
  '<i4': { dtype: 'int32', itemSize: 4 },
  '<f8': { dtype: 'float32', itemSize: 8 },
};

const WRITE_DESCR: Readonly<Record<NpyDType, string>> = { float32: '<f4', float16: '<f2', uint8: '|u1', int32: '<i4' };
const SUPPORTED = "'<f4', '<f2', '|u1', '<i4' or '<f8'";

/** Every format error reads like the package's argument errors, naming the file. */
function npyError(source: string, expected: string, received: string): Error {
  const err = new Error(`Expected ${expected} for ${source} but received ${received}`) as Error & { code: string };
  err.code = 'ERR_NABLA_NPY';
  return err;
}

// ---------------------------------------------------------------------------------------------
// The header dict: a tiny parser for the Python literals NumPy writes (str, bool, int, tuple,
// list, dict), so unexpected content fails with a message instead of a wrong array.

type PyValue = string | boolean | number | PyValue[] | { [key: string]: PyValue };

/**
 * Deepest nesting of ( [ { the parser follows: NumPy writes 2 levels (the dict, the shape tuple),
 * structured dtypes a few more; a hostile header nested thousands deep fails here instead of
 * overflowing the stack of the recursive descent.
 */
const MAX_HEADER_DEPTH = 64;

function parseHeader(text: string, source: string): { [key: string]: PyValue } {
  let pos = 0;
  const fail = (what: string): never => {
    throw npyError(source, `a .npy header dict (${what} at offset ${pos})`, describe(text.trim()));
  };
  const skipSpace = () => {
    while (pos < text.length && /\s/.test(text[pos])) pos++;
  };
  const value = (depth: number): PyValue => {
    skipSpace();
    const c = text[pos];
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, pos + 1);
      if (end < 0) fail('an unterminated string');
      const s = text.slice(pos + 1, end);
      pos = end + 1;
      return s;
    }
    if ((c === '(' || c === '[' || c === '{') && depth >= MAX_HEADER_DEPTH)
      fail(`nesting deeper than ${MAX_HEADER_DEPTH} levels`);
    if (c === '(' || c === '[') return sequence(c === '(' ? ')' : ']', depth + 1);
    if (c === '{') return dict(depth + 1);
    const word = /^(True|False|-?\d+L?)/.exec(text.slice(pos));
    if (!word) return fail('an unexpected token');
    pos += word[0].length;
    if (word[0] === 'True' || word[0] === 'False') return word[0] === 'True';
    return Number(word[0].replace('L', '')); // 3L: Python 2 longs in old files
  };
  const sequence = (close: string, depth: number): PyValue[] => {
    pos++;
    const items: PyValue[] = [];
    for (;;) {
      skipSpace();
      if (text[pos] === close) break;
      items.push(value(depth));
      skipSpace();
      if (text[pos] === ',') pos++;
      else if (text[pos] !== close) fail(`',' or '${close}'`);
    }
    pos++;
    return items;
  };
  const dict = (depth: number): { [key: string]: PyValue } => {
    pos++;
    const out: { [key: string]: PyValue } = {};
    for (;;) {
      skipSpace();
      if (text[pos] === '}') break;
      const key = value(depth);
      if (typeof key !== 'string') fail('a string key');
      skipSpace();
      if (text[pos] !== ':') fail("':'");
      pos++;
      out[key as string] = value(depth);
      skipSpace();
      if (text[pos] === ',') pos++;
      else if (text[pos] !== '}') fail("',' or '}'");
    }
    pos++;
    return out;
  };
  skipSpace();
  if (text[pos] !== '{') fail("'{'");
  const header = dict(1);
  skipSpace();
  if (pos !== text.length) fail('trailing characters');
  return header;
}

function shapeText(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

// ---------------------------------------------------------------------------------------------
// Read

/**
 * Parses a .npy file held in memory. `source` names the file in error messages. The data is
 * always copied into a fresh (aligned) buffer, so it never aliases `bytes`.
 */
export function readNpy(bytes: Uint8Array, source = 'the .npy data'): NpyArray {
  if (typedArrayName(bytes) !== 'Uint8Array')
    throw npyError(source, 'the bytes of a .npy file (a Uint8Array or Buffer)', describe(bytes));
  if (bytes.length < MAGIC.length || MAGIC.some((b, i) => bytes[i] !== b)) {
    const head = Array.from(bytes.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw npyError(
      source,
      'a .npy file (magic bytes 93 4e 55 4d 50 59)',
      bytes.length < 6 ? `${bytes.length} bytes` : head,
    );
  }
  if (bytes.length < 8)
    throw npyError(source, 'a complete .npy header', `a file of ${bytes.length} bytes (truncated header)`);
  const major = bytes[6];
  const minor = bytes[7];
  if (![1, 2, 3].includes(major) || minor !== 0)
    throw npyError(source, '.npy format version 1.0, 2.0 or 3.0', `${major}.${minor}`);
  const lengthBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lengthBytes)
    throw npyError(source, 'a complete .npy header', `a file of ${bytes.length} bytes (truncated header)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = 8 + lengthBytes + headerLength;
  if (bytes.length < dataStart)
    throw npyError(
      source,
      `a header of ${headerLength} bytes (the header length field)`,
      `a file of ${bytes.length} bytes (truncated header)`,
    );
  const headerBytes = bytes.subarray(8 + lengthBytes, dataStart);
  const headerText =
    major === 3 ? Buffer.from(headerBytes).toString('utf8') : Buffer.from(headerBytes).toString('latin1');
  const header = parseHeader(headerText, source);

  const { descr, fortran_order: fortranOrder, shape } = header;
  if (typeof descr !== 'string')
    throw npyError(source, `a plain dtype (${SUPPORTED})`, `the structured dtype ${describe(headerText.trim())}`);
  const kind = READ_DESCR[descr];
  if (!kind) {
    const hint = descr.startsWith('>') ? ' (big-endian: convert with a.astype(a.dtype.newbyteorder("<")))' : '';
    throw npyError(source, `a dtype of ${SUPPORTED}${hint}`, `'${descr}'`);
  }
  if (typeof fortranOrder !== 'boolean')
    throw npyError(source, "a header with 'fortran_order': True or False", describe(fortranOrder));
  if (fortranOrder) throw npyError(source, 'a C-order array (save np.ascontiguousarray(a))', 'a Fortran-order array');
  if (!Array.isArray(shape) || shape.some((d) => typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0))
    throw npyError(source, "a header 'shape' of non-negative integers", describe(shape));
  const dims = shape as number[];

  const count = dims.reduce((a, b) => a * b, 1);
  const expectedBytes = count * kind.itemSize;
  const actualBytes = bytes.length - dataStart;
  if (actualBytes !== expectedBytes)
    throw npyError(
      source,
      `${expectedBytes} data bytes (${count} x '${descr}' for shape ${shapeText(dims)})`,
      `${actualBytes} bytes${actualBytes < expectedBytes ? ' (truncated file)' : ''}`,
    );

  // A slice of the ArrayBuffer is a copy that starts at offset 0: aligned for any typed array.
  const start = bytes.byteOffset + dataStart;
  const raw = bytes.buffer.slice(start, start + expectedBytes);
  let data: NpyData;
  switch (descr) {
    case '<f4':
      data = new Float32Array(raw);
      break;
    case '<f2':
      data = new Uint16Array(raw);
      break;
    case '<i4':
      data = new Int32Array(raw);
      break;
    case '<f8':
      data = Float32Array.from(new Float64Array(raw));
      break;
    default:
      data = new Uint8Array(raw);
  }
  return { dtype: kind.dtype, shape: dims, data, descr };
}

/** Reads a .npy file from disk. */
export function loadNpy(path: string): NpyArray {
  checkPath(path);
  return readNpy(fs.readFileSync(path), path);
}

// ---------------------------------------------------------------------------------------------
// Write

function checkPath(path: unknown): void {
  if (typeof path !== 'string') throw typeError('path', 'a file path (a string)', path);
}

/** A shape: an array of non-negative safe integers (holes in a sparse array are not). */
function checkShape(shape: unknown, param: string): number[] {
  const what = 'an array of non-negative integers';
  if (!Array.isArray(shape)) throw typeError(param, what, shape);
  for (let i = 0; i < shape.length; i++)
    if (!Number.isSafeInteger(shape[i]) || shape[i] < 0) throw typeError(param, what, shape);
  return shape;
}

function dtypeOfData(data: unknown, dtype: NpyDType | undefined): NpyDType {
  let implied: NpyDType;
  const kind = typedArrayName(data); // a Proxy or a look-alike is none of these
  if (kind === 'Float32Array') implied = 'float32';
  else if (kind === 'Uint8Array') implied = 'uint8';
  else if (kind === 'Int32Array') implied = 'int32';
  else if (kind === 'Uint16Array')
    implied = 'float16'; // raw fp16 bits: the caller must say so
  else
    throw new TypeError(
      `Expected a Float32Array, Uint16Array (fp16 bits), Uint8Array or Int32Array for data but received ${describe(data)}`,
    );
  if (implied === 'float16' ? dtype !== 'float16' : dtype !== undefined && dtype !== implied)
    throw new TypeError(
      `Expected dtype '${implied}'${implied === 'float16' ? '' : ' (or none)'} for ${describe(data)} data but received ${describe(dtype)}`,
    );
  return implied;
}

/**
 * Encodes an array as a .npy file: format 1.0, or 2.0 when the header outgrows 1.0's 16-bit
 * length. `dtype` is needed only for a Uint16Array ('float16'); others imply theirs.
 */
export function writeNpy(shape: readonly number[], data: NpyData, dtype?: NpyDType): Buffer {
  const type = dtypeOfData(data, dtype);
  checkShape(shape, 'shape');
  const count = shape.reduce((a: number, b: number) => a * b, 1);
  if (count !== data.length)
    throw new RangeError(`Expected ${count} elements for shape [${shape.join(', ')}] but received ${describe(data)}`);

  const dict = `{'descr': '${WRITE_DESCR[type]}', 'fortran_order': False, 'shape': ${shapeText(shape)}, }`;
  // header = dict + spaces + '\n', padded so that prefix (10 bytes in 1.0, 12 in 2.0) + header
  // is a multiple of 64; 1.0 stores the header length in 16 bits.
  const padded = (prefix: number) => Math.ceil((prefix + dict.length + 1) / ALIGN) * ALIGN - prefix;
  const major = padded(10) <= 0xffff ? 1 : 2;
  const prefix = major === 1 ? 10 : 12;
  const headerLength = padded(prefix);
  const out = Buffer.alloc(prefix + headerLength + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  if (major === 1) out.writeUInt16LE(headerLength, 8);
  else out.writeUInt32LE(headerLength, 8);
  out.write(dict.padEnd(headerLength - 1, ' ') + '\n', prefix, 'latin1');
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), prefix + headerLength);
  return out;
}

/** Writes a .npy file to disk. */
export function saveNpy(path: string, shape: readonly number[], data: NpyData, dtype?: NpyDType): void {
  checkPath(path);
  fs.writeFileSync(path, writeNpy(shape, data, dtype));
}

// ---------------------------------------------------------------------------------------------
// Tensors

/** A float32 or float16 array as a host Tensor (no copy). `source` names it in errors. */
export function npyToTensor(array: NpyArray, source = 'the .npy array'): Tensor {
  if (typeof array !== 'object' || array === null)
    throw typeError('array', 'a .npy array { dtype, shape, data } (see readNpy())', array);
  if (array.dtype !== 'float32' && array.dtype !== 'float16')
    throw npyError(source, "a float array ('<f4', '<f2' or '<f8')", `'${array.descr ?? array.dtype}'`);
  const shape = checkShape(array.shape, 'array.shape');
  const storage = array.dtype === 'float32' ? 'Float32Array' : 'Uint16Array';
  if (typedArrayName(array.data) !== storage)
    throw typeError('array.data', `a ${storage} for dtype '${array.dtype}'`, array.data);
  const count = shape.reduce((a, b) => a * b, 1);
  if (array.data.length !== count)
    throw rangeError('array.data', `${count} elements for shape ${shapeText(shape)}`, `${array.data.length} elements`);
  return { type: array.dtype, dims: [...shape], data: array.data as Float32Array | Uint16Array };
}

/** A float32 or float16 tensor as a .npy file. NumPy has no bfloat16: cast such tensors first. */
export function tensorToNpy(t: Tensor): Buffer {
  if (typeof t !== 'object' || t === null) throw typeError('tensor', 'a tensor { type, dims, data } (see tensor())', t);
  if (t.type !== 'float32' && t.type !== 'float16' && t.type !== 'bfloat16')
    throw typeError('tensor.type', "'float32', 'float16' or 'bfloat16'", t.type);
  if (t.type === 'bfloat16')
    throw new TypeError(
      "Expected a float32 or float16 tensor for .npy (NumPy has no bfloat16; cast(t, 'float32') first) but received 'bfloat16'",
    );
  return writeNpy(t.dims, t.data, t.type);
}
