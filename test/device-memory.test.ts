// deviceMemory() / trimDeviceMemory(): argument checks in JS and at the native boundary, and the
// ERR_NABLA_CUDA_UNAVAILABLE path where CUDA cannot be used. The pool itself: test/cuda-memory.test.ts.
import { backends, deviceMemory, trimDeviceMemory } from '../lib';
import { native } from '../lib/native';

const info = backends();

/** The error fn throws: its constructor's name (native errors come from another realm) and message. */
function thrown(fn: () => unknown): { kind: string; message: string; code?: string } {
  try {
    fn();
  } catch (e) {
    const err = e as Error & { code?: string };
    return { kind: err.constructor.name, message: err.message, code: err.code };
  }
  throw new Error('expected a throw');
}

describe.each([
  ['deviceMemory', deviceMemory],
  ['trimDeviceMemory', trimDeviceMemory],
] as const)('%s', (_name, fn) => {
  test.each([
    ['a string', '0', 'TypeError', /^Expected a CUDA device index \(integer\) for device but received '0'/],
    ['null', null, 'TypeError', /^Expected a CUDA device index \(integer\) for device but received null/],
    ['a fraction', 0.5, 'TypeError', /^Expected a CUDA device index \(integer\) for device but received 0.5/],
    ['NaN', NaN, 'TypeError', /for device but received NaN/],
    ['a negative index', -1, 'RangeError', /^Expected a non-negative CUDA device index for device but received -1$/],
  ])('refuses %s before any native call', (_what, device, kind, message) => {
    const error = thrown(() => fn(device as never));
    expect(error.kind).toBe(kind);
    expect(error.message).toMatch(message);
  });

  if (!info.cuda) test.skip(`CUDA-only cases: skipped, ${info.reason ?? 'no CUDA device'}`, () => undefined);
  else test.skip('no-CUDA cases: skipped, this machine has a CUDA device', () => undefined);

  (info.cuda ? test.skip : test)('without CUDA: an Error with code ERR_NABLA_CUDA_UNAVAILABLE', () => {
    for (const device of [undefined, 0, 3]) {
      const error = thrown(() => fn(device));
      expect(error.kind).toBe('Error');
      expect(error.code).toBe('ERR_NABLA_CUDA_UNAVAILABLE');
    }
  });

  (info.cuda ? test : test.skip)('with CUDA: a device index past the last device is a RangeError', () => {
    const error = thrown(() => fn(info.devices.length));
    expect(error.kind).toBe('RangeError');
    expect(error.message).toBe(
      `Expected a CUDA device index below ${info.devices.length} for device but received ${info.devices.length}`,
    );
  });
});

describe.each([
  ['deviceMemory', (d: unknown) => native.deviceMemory(d as number)],
  ['trimDeviceMemory', (d: unknown) => native.trimDeviceMemory(d as number)],
] as const)('native %s', (_name, fn) => {
  test.each([
    ['a string', '0', 'TypeError', "Expected a device index for device but received '0'"],
    ['undefined', undefined, 'TypeError', 'Expected a device index for device but received undefined'],
    ['a fraction', 1.5, 'RangeError', 'Expected a device index in [0, 1023] for device but received 1.5'],
    ['a negative index', -1, 'RangeError', 'Expected a device index in [0, 1023] for device but received -1'],
    [
      'a huge index',
      2 ** 40,
      'RangeError',
      'Expected a device index in [0, 1023] for device but received 1099511627776',
    ],
  ])('refuses %s', (_what, device, kind, message) => {
    const error = thrown(() => fn(device));
    expect(error.kind).toBe(kind);
    expect(error.message).toBe(message);
  });

  (info.cuda ? test.skip : test)(
    'without CUDA: an Error with the runtime code (or cudaNotCompiled) and the call named',
    () => {
      const error = thrown(() => fn(0));
      expect(error.kind).toBe('Error');
      expect(error.code).toEqual(info.build.cudaCompiled ? expect.stringMatching(/^cuda/) : 'cudaNotCompiled');
      expect(error.message).toMatch(/^(deviceMemory|trimDeviceMemory): /);
    },
  );
});

describe('native bodyTime (device time of CUDA ops, for bench/overhead.js)', () => {
  test('refuses a non-boolean', () => {
    const error = thrown(() => native.bodyTime('yes' as never));
    expect(error.kind).toBe('TypeError');
    expect(error.message).toBe("Expected a boolean for enable but received 'yes'");
  });

  (info.cuda ? test.skip : test)('without CUDA: no op was timed', () => {
    native.bodyTime(true);
    expect(native.bodyTime(false)).toEqual({ ms: 0, ops: 0 });
  });
});
