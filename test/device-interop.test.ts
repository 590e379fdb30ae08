// Interop with other GPU code (lib/interop.ts): every argument check of fromDevicePointer,
// waitForExternal, deviceStream and recordEvent, in JS and again at the native boundary in the
// same words, and ERR_NABLA_CUDA_UNAVAILABLE after them where CUDA cannot be used. Runs on any
// machine; what needs a device (wrapping, ordering, owners kept alive) is in
// test/cuda-interop.test.ts.
import { DevicePointerSpec, backends, deviceStream, fromDevicePointer, recordEvent, waitForExternal } from '../lib';
import { addressText } from '../lib/interop';
import { native } from '../lib/native';

const info = backends();

/** The error fn throws: its constructor's name (native errors come from another realm), message, code. */
function thrown(fn: () => unknown): { kind: string; message: string; code?: string } {
  try {
    fn();
  } catch (e) {
    const err = e as Error & { code?: string };
    return { kind: err.constructor.name, message: err.message, code: err.code };
  }
  throw new Error('expected a throw');
}

/** A spec that passes every check that needs no CUDA (the address is 256-byte aligned). */
const GOOD: DevicePointerSpec = { pointer: 0x7f0000000000n, dims: [2, 64], type: 'float32', device: 0, owner: null };
const spec = (changes: Record<string, unknown>): DevicePointerSpec => ({ ...GOOD, ...changes }) as DevicePointerSpec;
const TWO_TO_64 = 2n ** 64n;

describe('addressText', () => {
  test('writes addresses in hex, negative ones with a sign', () => {
    expect(addressText(0n)).toBe('0x0');
    expect(addressText(0x7f00deadbeefn)).toBe('0x7f00deadbeef');
    expect(addressText(-16n)).toBe('-0x10');
    expect(addressText(TWO_TO_64)).toBe('0x10000000000000000');
  });
});

describe('fromDevicePointer: checks before any native call', () => {
  test.each([
    [
      'a spec that is not an object',
      null,
      'TypeError',
      /^Expected an object \{ pointer, dims, type, device, owner \} for spec but received null$/,
    ],
    [
      'a number for pointer',
      spec({ pointer: 4096 }),
      'TypeError',
      /^Expected a device address as a bigint for pointer but received 4096$/,
    ],
    [
      'a string for pointer',
      spec({ pointer: '0x1000' }),
      'TypeError',
      /^Expected a device address as a bigint for pointer but received '0x1000'$/,
    ],
    [
      'a null pointer',
      spec({ pointer: 0n }),
      'RangeError',
      /^Expected a device address in \[1, 2\^64\) for pointer but received 0x0$/,
    ],
    [
      'a negative pointer',
      spec({ pointer: -4096n }),
      'RangeError',
      /^Expected a device address in \[1, 2\^64\) for pointer but received -0x1000$/,
    ],
    [
      'a pointer beyond 64 bits',
      spec({ pointer: TWO_TO_64 }),
      'RangeError',
      /^Expected a device address in \[1, 2\^64\) for pointer but received 0x10000000000000000$/,
    ],
    [
      'an unknown type',
      spec({ type: 'int8' }),
      'TypeError',
      /^Expected 'float32', 'float16' or 'bfloat16' for type but received 'int8'$/,
    ],
    [
      'a float32 pointer off 4 bytes',
      spec({ pointer: 0x7f0000000002n }),
      'RangeError',
      /^Expected an address aligned to 4 bytes \(the size of an element\) for pointer but received 0x7f0000000002$/,
    ],
    [
      'a bfloat16 pointer off 2 bytes',
      spec({ pointer: 0x7f0000000001n, type: 'bfloat16' }),
      'RangeError',
      /^Expected an address aligned to 2 bytes \(the size of an element\) for pointer but received 0x7f0000000001$/,
    ],
    ['empty dims', spec({ dims: [] }), 'TypeError', /^Expected a non-empty array of positive integers for dims/],
    ['a zero dim', spec({ dims: [2, 0] }), 'RangeError', /^Expected an array of positive integers for dims/],
    ['a fractional dim', spec({ dims: [2.5] }), 'TypeError', /^Expected an array of positive integers for dims/],
    [
      'dims of more than 2^53 bytes',
      spec({ dims: [2 ** 30, 2 ** 30, 2 ** 30] }),
      'RangeError',
      /^Expected dims of at most 2\^53 - 1 bytes for dims but received \[1073741824, 1073741824, 1073741824\]/,
    ],
    [
      'bytes that run past 2^64',
      spec({ pointer: TWO_TO_64 - 16n, dims: [8] }),
      'RangeError',
      /^Expected a size whose bytes end below 2\^64 for dims but received 32 bytes from 0xfffffffffffffff0$/,
    ],
    [
      'no owner',
      { pointer: GOOD.pointer, dims: GOOD.dims, type: GOOD.type, device: 0 },
      'TypeError',
      /^Expected the value that owns the memory \(null when nothing in JS does\) for owner but received undefined$/,
    ],
    [
      'both stream and event',
      spec({ stream: 1n, event: 1n }),
      'TypeError',
      /^Expected exactly one of stream and event for spec but received both$/,
    ],
    [
      'a number for stream',
      spec({ stream: 0 }),
      'TypeError',
      /^Expected a cudaStream_t handle as a bigint for stream but received 0$/,
    ],
    [
      'a negative stream',
      spec({ stream: -1n }),
      'RangeError',
      /^Expected a cudaStream_t handle in \[0, 2\^64\) for stream but received -0x1$/,
    ],
    [
      'a null event',
      spec({ event: 0n }),
      'RangeError',
      /^Expected a cudaEvent_t handle in \[1, 2\^64\) for event but received 0x0$/,
    ],
    [
      'no device',
      spec({ device: undefined }),
      'TypeError',
      /^Expected a CUDA device index \(integer\) for device but received undefined$/,
    ],
    [
      'a string device',
      spec({ device: '0' }),
      'TypeError',
      /^Expected a CUDA device index \(integer\) for device but received '0'$/,
    ],
    [
      'a fractional device',
      spec({ device: 0.5 }),
      'TypeError',
      /^Expected a CUDA device index \(integer\) for device but received 0.5$/,
    ],
    [
      'a negative device',
      spec({ device: -1 }),
      'RangeError',
      /^Expected a non-negative CUDA device index for device but received -1$/,
    ],
  ])('refuses %s', (_what, s, kind, message) => {
    const error = thrown(() => fromDevicePointer(s as DevicePointerSpec));
    expect(error.kind).toBe(kind);
    expect(error.message).toMatch(message);
  });

  test('takes any owner, undefined and primitives included, as long as the key is there', () => {
    for (const owner of [undefined, null, 0, 'name', {}, () => undefined]) {
      // everything but CUDA passes: the error (if any) is about CUDA, not the spec
      const error = thrown(() => fromDevicePointer(spec({ owner, device: 1023 })));
      expect(error.message).not.toMatch(/for owner/);
    }
  });
});

describe('waitForExternal, deviceStream, recordEvent: checks before any native call', () => {
  test.each([
    [
      'no after',
      undefined,
      'TypeError',
      /^Expected an object \{ stream \} or \{ event \} \(bigint handles\) for after but received undefined$/,
    ],
    [
      'a bigint for after',
      5n,
      'TypeError',
      /^Expected an object \{ stream \} or \{ event \} \(bigint handles\) for after but received 5$/,
    ],
    [
      'neither stream nor event',
      {},
      'TypeError',
      /^Expected exactly one of stream and event for after but received neither$/,
    ],
    [
      'both',
      { stream: 1n, event: 1n },
      'TypeError',
      /^Expected exactly one of stream and event for after but received both$/,
    ],
    [
      'a number stream',
      { stream: 1 },
      'TypeError',
      /^Expected a cudaStream_t handle as a bigint for stream but received 1$/,
    ],
    [
      'a stream beyond 64 bits',
      { stream: TWO_TO_64 },
      'RangeError',
      /^Expected a cudaStream_t handle in \[0, 2\^64\) for stream but received 0x10000000000000000$/,
    ],
    [
      'a null event',
      { event: 0n },
      'RangeError',
      /^Expected a cudaEvent_t handle in \[1, 2\^64\) for event but received 0x0$/,
    ],
    [
      'a negative event',
      { event: -2n },
      'RangeError',
      /^Expected a cudaEvent_t handle in \[1, 2\^64\) for event but received -0x2$/,
    ],
  ])('waitForExternal refuses %s', (_what, after, kind, message) => {
    const error = thrown(() => waitForExternal(0, after as never));
    expect(error.kind).toBe(kind);
    expect(error.message).toMatch(message);
  });

  describe.each([
    ['deviceStream', (device: unknown) => deviceStream(device as number)],
    ['recordEvent', (device: unknown) => recordEvent(device as number)],
    ['waitForExternal', (device: unknown) => waitForExternal(device as number, { stream: 0n })],
  ] as const)('%s', (_name, fn) => {
    test.each([
      [
        'no device',
        undefined,
        'TypeError',
        /^Expected a CUDA device index \(integer\) for device but received undefined$/,
      ],
      ['a string', '0', 'TypeError', /^Expected a CUDA device index \(integer\) for device but received '0'$/],
      ['a bigint', 0n, 'TypeError', /^Expected a CUDA device index \(integer\) for device but received 0$/],
      ['a fraction', 1.5, 'TypeError', /^Expected a CUDA device index \(integer\) for device but received 1.5$/],
      ['a negative index', -1, 'RangeError', /^Expected a non-negative CUDA device index for device but received -1$/],
    ])('refuses %s for device', (_what, device, kind, message) => {
      const error = thrown(() => fn(device));
      expect(error.kind).toBe(kind);
      expect(error.message).toMatch(message);
    });
  });
});

if (info.cuda) test.skip('no-CUDA cases: skipped, this machine has a CUDA device', () => undefined);
else test.skip(`CUDA-only cases: skipped, ${info.reason ?? 'no CUDA device'}`, () => undefined);

(info.cuda ? describe.skip : describe)('without CUDA: ERR_NABLA_CUDA_UNAVAILABLE once the arguments pass', () => {
  test.each([
    ['fromDevicePointer', () => fromDevicePointer(GOOD)],
    ['fromDevicePointer with a stream', () => fromDevicePointer(spec({ stream: 0n }))],
    ['fromDevicePointer on device 3', () => fromDevicePointer(spec({ device: 3 }))],
    ['deviceStream', () => deviceStream(0)],
    ['recordEvent', () => recordEvent(0)],
    ['waitForExternal on a stream', () => waitForExternal(0, { stream: 0x1234n })],
    ['waitForExternal on an event', () => waitForExternal(0, { event: 0x1234n })],
  ])('%s', (_name, fn) => {
    const error = thrown(fn);
    expect(error.kind).toBe('Error');
    expect(error.code).toBe('ERR_NABLA_CUDA_UNAVAILABLE');
  });
});

(info.cuda ? describe : describe.skip)('with CUDA: a device index beyond the devices', () => {
  test.each([
    ['fromDevicePointer', () => fromDevicePointer(spec({ device: 1023 }))],
    ['deviceStream', () => deviceStream(1023)],
    ['recordEvent', () => recordEvent(1023)],
    ['waitForExternal', () => waitForExternal(1023, { stream: 0n })],
  ])('%s refuses it', (_name, fn) => {
    const error = thrown(fn);
    expect(error.kind).toBe('RangeError');
    expect(error.message).toMatch(/^Expected a CUDA device index below \d+ for device but received 1023$/);
  });
});

// The native boundary trusts no JS: the same checks again, in the same words where both layers have them.
describe('native boundary', () => {
  const wrap = (external: unknown, bytes = 64, device: unknown = 0) =>
    new native.DeviceBuffer(device as number, bytes, external as never);
  const external = (changes: Record<string, unknown>) => ({
    pointer: GOOD.pointer,
    owner: null,
    elementBytes: 4,
    ...changes,
  });

  test.each([
    [
      'a spec that is not an object',
      5,
      'TypeError',
      /^Expected an object \{ pointer, owner, elementBytes \} for external but received 5$/,
    ],
    [
      'a number for pointer',
      external({ pointer: 4096 }),
      'TypeError',
      /^Expected a device address as a bigint for pointer but received 4096$/,
    ],
    [
      'a null pointer',
      external({ pointer: 0n }),
      'RangeError',
      /^Expected a device address in \[1, 2\^64\) for pointer but received 0x0$/,
    ],
    [
      'a negative pointer',
      external({ pointer: -4096n }),
      'RangeError',
      /^Expected a device address in \[1, 2\^64\) for pointer but received -0x1000$/,
    ],
    [
      'a pointer beyond 64 bits',
      external({ pointer: TWO_TO_64 }),
      'RangeError',
      /^Expected a device address in \[1, 2\^64\) for pointer but received 0x10000000000000000$/,
    ],
    [
      'a pointer of many words',
      external({ pointer: -(2n ** 130n) - 5n }),
      'RangeError',
      /^Expected a device address in \[1, 2\^64\) for pointer but received -0x400000000000000000000000000000005$/,
    ],
    [
      'a misaligned pointer',
      external({ pointer: 0x7f0000000002n }),
      'RangeError',
      /^Expected an address aligned to 4 bytes \(the size of an element\) for pointer but received 0x7f0000000002$/,
    ],
    [
      'an element size of 3',
      external({ elementBytes: 3 }),
      'RangeError',
      /^Expected 2 or 4 for elementBytes but received 3$/,
    ],
    [
      'no element size',
      external({ elementBytes: undefined }),
      'TypeError',
      /^Expected 2 or 4 for elementBytes but received undefined$/,
    ],
    [
      'bytes that run past 2^64',
      external({ pointer: TWO_TO_64 - 16n }),
      'RangeError',
      /^Expected a size whose bytes end below 2\^64 for dims but received 64 bytes from 0xfffffffffffffff0$/,
    ],
  ])('DeviceBuffer with external memory refuses %s', (_what, ext, kind, message) => {
    const error = thrown(() => wrap(ext));
    expect(error.kind).toBe(kind);
    expect(error.message).toMatch(message);
  });

  test('DeviceBuffer with external memory refuses a byte count that is not whole elements', () => {
    const error = thrown(() => wrap(external({}), 6));
    expect(error.kind).toBe('RangeError');
    expect(error.message).toBe('Expected a positive multiple of 4 bytes for bytes but received 6');
  });

  test('the JS and the native checks word a bad pointer alike', () => {
    for (const pointer of [0n, -4096n, TWO_TO_64, 4096, 0x7f0000000002n]) {
      const js = thrown(() => fromDevicePointer(spec({ pointer })));
      const nat = thrown(() => wrap(external({ pointer })));
      expect(nat).toEqual(js);
    }
  });

  test.each([
    [
      'neither',
      undefined,
      undefined,
      'TypeError',
      /^Expected exactly one of stream and event for after but received neither$/,
    ],
    ['both', 1n, 1n, 'TypeError', /^Expected exactly one of stream and event for after but received both$/],
    [
      'a number stream',
      1,
      undefined,
      'TypeError',
      /^Expected a cudaStream_t handle as a bigint for stream but received 1$/,
    ],
    [
      'a negative stream',
      -1n,
      undefined,
      'RangeError',
      /^Expected a cudaStream_t handle in \[0, 2\^64\) for stream but received -0x1$/,
    ],
    [
      'a null event',
      undefined,
      0n,
      'RangeError',
      /^Expected a cudaEvent_t handle in \[1, 2\^64\) for event but received 0x0$/,
    ],
  ])('waitForExternal refuses %s', (_what, stream, event, kind, message) => {
    const error = thrown(() => native.waitForExternal(0, stream as never, event as never));
    expect(error.kind).toBe(kind);
    expect(error.message).toMatch(message);
  });

  test.each([
    ['deviceStream', (d: unknown) => native.deviceStream(d as number)],
    ['DeviceEvent', (d: unknown) => new native.DeviceEvent(d as number)],
    ['waitForExternal', (d: unknown) => native.waitForExternal(d as number, 0n, undefined)],
    ['DeviceBuffer with external memory', (d: unknown) => wrap(external({}), 64, d)],
  ])('%s refuses a bad device index', (_name, fn) => {
    expect(thrown(() => fn('0'))).toMatchObject({
      kind: 'TypeError',
      message: "Expected a device index for device but received '0'",
    });
    expect(thrown(() => fn(0n))).toMatchObject({
      kind: 'TypeError',
      message: 'Expected a device index for device but received 0',
    });
    expect(thrown(() => fn(-1))).toMatchObject({
      kind: 'RangeError',
      message: 'Expected a device index in [0, 1023] for device but received -1',
    });
    expect(thrown(() => fn(1024))).toMatchObject({
      kind: 'RangeError',
      message: 'Expected a device index in [0, 1023] for device but received 1024',
    });
  });

  (info.cuda ? test.skip : test)('without CUDA, a spec that passes the checks fails with a CUDA error code', () => {
    for (const fn of [
      () => wrap(external({})),
      () => native.deviceStream(0),
      () => new native.DeviceEvent(0),
      () => native.waitForExternal(0, 0n, undefined),
      () => native.waitForExternal(0, undefined, 0x1234n),
    ]) {
      const error = thrown(fn);
      expect(error.kind).toBe('Error');
      expect(error.code).toMatch(/^cuda/);
    }
  });
});
