// Which code of the binary a device runs (native cubin or PTX compiled at first use), from its
// compute capability and the compiled architecture list: the compatibility rule, no GPU needed.
import { kernelImageFor, parseCudaArchs } from '../lib/archs';
import { kernelImageText } from '../lib/cli/info';

const DEFAULT = '80-real;86-real;89-real;90a-real;100-real;120-real;90-virtual';

describe('parseCudaArchs', () => {
  test('reads cubin-only, PTX-only and both, with the a/f variants', () => {
    expect(parseCudaArchs('90a-real;90-virtual;100;120f-real')).toEqual([
      { sm: 90, variant: 'a', cubin: true, ptx: false },
      { sm: 90, variant: '', cubin: false, ptx: true },
      { sm: 100, variant: '', cubin: true, ptx: true },
      { sm: 120, variant: 'f', cubin: true, ptx: false },
    ]);
    expect(parseCudaArchs('80 86')).toHaveLength(2); // the space-separated form is the same list
    expect(parseCudaArchs('native;all-major;sm_90')).toEqual([null, null, null]);
    expect(parseCudaArchs('')).toEqual([]);
  });
});

describe('kernelImageFor', () => {
  test('the default list has machine code for every current data-centre and workstation GPU', () => {
    const cases: [string, string][] = [
      ['8.0', 'sm_80'], // A100
      ['8.6', 'sm_86'], // RTX 30, A40
      ['8.7', 'sm_86'], // Orin: a later minor of 8.x runs the 8.6 cubin
      ['8.9', 'sm_89'], // L40S, RTX 40
      ['9.0', 'sm_90a'], // H100, H200
      ['10.0', 'sm_100'], // B200, GB200
      ['10.3', 'sm_100'], // B300, GB300
      ['12.0', 'sm_120'], // RTX 50, RTX PRO 6000
      ['12.1', 'sm_120'], // DGX Spark
    ];
    for (const [cc, arch] of cases) expect([cc, kernelImageFor(cc, DEFAULT)]).toEqual([cc, { kind: 'native', arch }]);
  });

  test('without a cubin of its major, a device newer than 9.0 compiles the compute_90 PTX', () => {
    const old = '80-real;86-real;89-real;90a-real;90-virtual';
    expect(kernelImageFor('10.0', old)).toEqual({ kind: 'ptx', arch: 'compute_90' });
    expect(kernelImageFor('12.0', old)).toEqual({ kind: 'ptx', arch: 'compute_90' });
    expect(kernelImageFor('11.0', DEFAULT)).toEqual({ kind: 'ptx', arch: 'compute_90' }); // sm_100 is not for 11.x
    expect(kernelImageFor('13.0', DEFAULT)).toEqual({ kind: 'ptx', arch: 'compute_90' });
    // sm_90a runs on 9.0 only: a (hypothetical) 9.1 gets the PTX
    expect(kernelImageFor('9.1', old)).toEqual({ kind: 'ptx', arch: 'compute_90' });
  });

  test('a device older than every cubin and PTX has no code; 7.5 does not run sm_80', () => {
    expect(kernelImageFor('7.5', DEFAULT)).toEqual({ kind: 'none' });
    expect(kernelImageFor('8.0', '90a-real;90-virtual')).toEqual({ kind: 'none' }); // PTX is not compiled down
    expect(kernelImageFor('8.6', '89-real')).toEqual({ kind: 'none' }); // a cubin does not run on an older minor
  });

  test('variants: sm_XYa and compute_XYa only on X.Y; sm_XYf on later minors; the newest cubin wins', () => {
    expect(kernelImageFor('10.3', '100a-real')).toEqual({ kind: 'none' });
    expect(kernelImageFor('10.0', '100a-real')).toEqual({ kind: 'native', arch: 'sm_100a' });
    expect(kernelImageFor('10.3', '100f-real')).toEqual({ kind: 'native', arch: 'sm_100f' });
    expect(kernelImageFor('10.3', '100a-virtual')).toEqual({ kind: 'none' });
    expect(kernelImageFor('8.9', '80-real;86-real;89-real')).toEqual({ kind: 'native', arch: 'sm_89' });
    expect(kernelImageFor('8.9', '80;86')).toEqual({ kind: 'native', arch: 'sm_86' }); // a cubin before any PTX
    expect(kernelImageFor('9.0', '80;86')).toEqual({ kind: 'ptx', arch: 'compute_86' }); // the newest PTX
  });

  test('lists that name no version, or a capability that is not MAJOR.MINOR, say unknown', () => {
    expect(kernelImageFor('9.0', 'native')).toEqual({ kind: 'unknown' });
    expect(kernelImageFor('9.0', 'native;80-virtual')).toEqual({ kind: 'unknown' }); // "native" may hold a cubin
    expect(kernelImageFor('9.0', 'native;90a-real')).toEqual({ kind: 'native', arch: 'sm_90a' });
    expect(kernelImageFor('nine', DEFAULT)).toEqual({ kind: 'unknown' });
  });
});

describe('nabla info: the kernel line of a device', () => {
  test('names the cubin or the PTX, and says when the driver compiles at first use', () => {
    expect(kernelImageText({ kind: 'native', arch: 'sm_100' })).toBe('kernels: native code (sm_100) in the binary');
    expect(kernelImageText({ kind: 'ptx', arch: 'compute_90' })).toMatch(
      /^kernels: PTX \(compute_90\), compiled by the driver at each kernel's first use/,
    );
    expect(kernelImageText({ kind: 'none' })).toMatch(
      /none in the binary run on this GPU \(before 8\.0 none can; else rebuild with NABLA_CUDA_ARCHS/,
    );
    expect(kernelImageText({ kind: 'unknown' })).toMatch(/cannot tell/);
  });
});
