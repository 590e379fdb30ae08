// One error format for every argument check, in TS and native code alike:
//   Expected <what> for <param> but received <value>

/** A short description of a value for error messages: `3.5`, `'abc'`, `Float64Array(12)`, `an object`. */
export function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (typeof value === 'string') return `'${value.length > 40 ? value.slice(0, 40) + '...' : value}'`;
  if (ArrayBuffer.isView(value)) {
    const length = (value as unknown as { length?: number }).length;
    return `${value.constructor.name}(${length ?? value.byteLength})`;
  }
  if (Array.isArray(value)) {
    return value.length <= 8 ? `[${value.map(describe).join(', ')}]` : `Array(${value.length})`;
  }
  if (typeof value === 'function') return 'a function';
  return `an object`;
}

export function typeError(param: string, expected: string, received: unknown): TypeError {
  return new TypeError(`Expected ${expected} for ${param} but received ${describe(received)}`);
}

/** A TypeError whose `received` is already worded, e.g. `'a detached Float32Array'`. */
export function typeErrorWorded(param: string, expected: string, received: string): TypeError {
  return new TypeError(`Expected ${expected} for ${param} but received ${received}`);
}

/** `received` is already worded, e.g. `describe(value)` or `'4 elements'`. */
export function rangeError(param: string, expected: string, received: string): RangeError {
  return new RangeError(`Expected ${expected} for ${param} but received ${received}`);
}

/** A limit as messages state it: 2^31 for 2147483648, 2^31 - 1 for 2147483647, else the number. */
export function limitText(n: number): string {
  const log = Math.log2(n);
  if (Number.isInteger(log) && log > 16) return `2^${log}`;
  if (Number.isInteger(Math.log2(n + 1)) && n > 65536) return `2^${Math.log2(n + 1)} - 1`;
  return String(n);
}
