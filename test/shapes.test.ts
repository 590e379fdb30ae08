// The shape limits come from the native build (native.limits), so TS and C++ check the same numbers.
import { limitText } from '../lib/errors';
import { native } from '../lib/native';

type Limits = typeof native.limits;

/** A fresh copy of a lib module whose native addon reports `limits`. */
function loadWith<T>(limits: Limits, module: string): T {
  let loaded: T | undefined;
  jest.isolateModules(() => {
    jest.doMock('../lib/native', () => ({ native: { ...native, limits } }));
    loaded = require(module);
  });
  jest.dontMock('../lib/native');
  return loaded!;
}

const reported: Limits = native.limits;

test('MAX_DIM and MAX_SCALE are the limits native.limits reports', () => {
  const shapes = loadWith<typeof import('../lib/shapes')>(
    { ...reported, maxDim: 2 ** 20, maxScale: 8 },
    '../lib/shapes',
  );
  expect([shapes.MAX_DIM, shapes.MAX_SCALE]).toEqual([2 ** 20, 8]);
  // this build's own values: the bounds of its native checks
  expect([reported.maxDim, reported.maxScale]).toEqual([2 ** 31, 65536]);
});

test('the scale check uses the limit the build reports', () => {
  const validate = loadWith<typeof import('../lib/validate')>({ ...reported, maxScale: 8 }, '../lib/validate');
  expect(validate.checkScale(8)).toBe(8);
  expect(() => validate.checkScale(8.5)).toThrow(/^Expected a number in \(0, 8\] for scale but received 8\.5$/);
});

test('limitText writes powers of two as the messages state them', () => {
  expect([2 ** 31, 2 ** 31 - 1, 2 ** 32, 65536, 100].map(limitText)).toEqual([
    '2^31',
    '2^31 - 1',
    '2^32',
    '65536',
    '100',
  ]);
});
