// The kernel flags of the CLI (--kernel, --mask-kernel, --cpu-kernel), run as users run them on the
// CPU backend: a flag reaches the op as its option (the outputs are those of the op called with it,
// and the kernel that ran is reported), it wins over the environment variable, a bad value is a
// usage error before any work, and a CUDA kernel flag on the CPU is checked and ignored, as the op
// options are.
import { Run, expectOneLine, runCli } from './cli-runner';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  Tensor,
  attentionSync,
  blockSparseAttentionSync,
  nablaAttentionSync,
  nablaMaskSync,
  tensorToNpy,
  toFloat32Array,
} from '../lib';
import { BenchRow } from '../lib/cli/bench';
import { loadNpy, saveNpy } from '../lib/npy';
import { syntheticQKV } from '../lib/synthetic';
import { CPU, qkCase } from './helpers';

let dir: string;
let serial = 0;

function file(name: string): string {
  return path.join(dir, `${name}-${serial++}.npy`);
}

function save(t: Tensor, name: string): string {
  const f = file(name);
  fs.writeFileSync(f, tensorToNpy(t));
  return f;
}

const nabla = (args: string[], env: NodeJS.ProcessEnv = {}): Run => runCli(dir, args, env);

/** A command that must succeed. */
function ok(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const r = nabla(args, env);
  if (r.code !== 0) throw new Error(`nabla ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r;
}

/** Whether this CPU runs the avx2 kernel (AVX2 + FMA + F16C), read from the CPU itself on Linux. */
function cpuHasAvx2(): boolean {
  if (process.arch !== 'x64' || process.platform !== 'linux') return false;
  const flags = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '').split(/\s+/);
  return ['avx2', 'fma', 'f16c'].every((f) => flags.includes(f));
}
const HAS_AVX2 = cpuHasAvx2();
const CPU_KERNELS = HAS_AVX2 ? (['scalar', 'avx2'] as const) : (['scalar'] as const);

/** The float32 values of an .npy file. */
function values(f: string): number[] {
  return Array.from(loadNpy(f).data as Float32Array);
}

// q, k, v of 2 heads on a 2 x 16 x 16 token grid (8 blocks); float32, so that the output .npy holds
// the op's exact values
const GRID: [number, number, number] = [2, 16, 16];
const c = qkCase(1, 2, GRID, 32, 7);
const v = qkCase(1, 2, GRID, 32, 8).q;
let qFile: string, kFile: string, vFile: string, maskFile: string;

beforeAll(() => {
  // the CLI runs from dist, which jest's global setup rebuilt from the current sources
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nabla-cli-kernels-'));
  [qFile, kFile, vFile] = [save(c.q, 'q'), save(c.k, 'k'), save(v, 'v')];
  maskFile = file('mask');
  const mask = nablaMaskSync(c.q, c.k, { ...CPU, threshold: 0.6 });
  saveNpy(maskFile, mask.dims, mask.toDense());
});

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const attendArgs = (out: string) => ['attend', '--q', qFile, '--k', kFile, '--v', vFile, '--out', out];

describe('--cpu-kernel reaches the attention op', () => {
  test.each(CPU_KERNELS)('attend --cpu-kernel %s: the output of nablaAttention with that cpuKernel', (cpuKernel) => {
    const out = file('out');
    const r = ok([...attendArgs(out), '--backend', 'cpu', '--cpu-kernel', cpuKernel]);
    expect(r.stdout).toMatch(new RegExp(`^kernels: mask cpu, attention cpu-${cpuKernel}$`, 'm'));
    const want = nablaAttentionSync(c.q, c.k, v, { ...CPU, cpuKernel }).output;
    expect(values(out)).toEqual(Array.from(want.data));
  });

  test.each(CPU_KERNELS)('attend --mask --cpu-kernel %s: the output of blockSparseAttention with it', (cpuKernel) => {
    const out = file('out');
    const r = ok([...attendArgs(out), '--mask', maskFile, '--backend', 'cpu', '--cpu-kernel', cpuKernel]);
    expect(r.stdout).toMatch(new RegExp(`^kernels: attention cpu-${cpuKernel}$`, 'm'));
    const mask = nablaMaskSync(c.q, c.k, { ...CPU, threshold: 0.6 });
    expect(values(out)).toEqual(Array.from(blockSparseAttentionSync(c.q, c.k, v, mask, { ...CPU, cpuKernel }).data));
  });

  (HAS_AVX2 ? test : test.skip)(
    'the two CPU kernels give different bits here (so the tests above tell them apart)',
    () => {
      const scalar = nablaAttentionSync(c.q, c.k, v, { ...CPU, cpuKernel: 'scalar' }).output;
      const avx2 = nablaAttentionSync(c.q, c.k, v, { ...CPU, cpuKernel: 'avx2' }).output;
      expect(Array.from(scalar.data)).not.toEqual(Array.from(avx2.data));
    },
  );

  test('the flag wins over NABLA_CPU_ISA, even a bad one; without the flag the variable still decides', () => {
    const want = Array.from(nablaAttentionSync(c.q, c.k, v, { ...CPU, cpuKernel: 'scalar' }).output.data);
    const other = HAS_AVX2 ? 'avx2' : 'auto';
    const flagged = file('out');
    const r = ok([...attendArgs(flagged), '--backend', 'cpu', '--cpu-kernel', 'scalar'], { NABLA_CPU_ISA: other });
    expect(r.stdout).toMatch(/^kernels: mask cpu, attention cpu-scalar$/m);
    expect(values(flagged)).toEqual(want);
    ok([...attendArgs(file('out')), '--backend', 'cpu', '--cpu-kernel', 'scalar'], { NABLA_CPU_ISA: 'neon' });
    const fromEnv = file('out');
    expect(ok([...attendArgs(fromEnv), '--backend', 'cpu'], { NABLA_CPU_ISA: 'scalar' }).stdout).toMatch(
      /attention cpu-scalar$/m,
    );
    expect(values(fromEnv)).toEqual(want);
  });
});

describe('nabla bench reports the kernel of every row', () => {
  const grid: [number, number, number] = [4, 16, 16];
  const bench = [
    'bench',
    '--batch',
    '1',
    '--heads',
    '2',
    '--grid',
    grid.join(','),
    '--head-dim',
    '64',
    '--dtype',
    'float32',
    '--backend',
    'cpu',
    '--warmup',
    '0',
    '--iters',
    '1',
    '--threshold',
    '0.5',
    '--json',
  ];

  /** The bench's numbers recomputed with the library: its synthetic inputs, the ops with `cpuKernel`. */
  function expected(cpuKernel: 'scalar' | 'avx2'): { density: number; relError: number } {
    const { q, k, v } = syntheticQKV(1, 2, grid, 64, 'float32');
    const dense = toFloat32Array(attentionSync(q, k, v, { ...CPU, grid, cpuKernel }));
    const mask = nablaMaskSync(q, k, { ...CPU, grid, threshold: 0.5 });
    const sparse = toFloat32Array(blockSparseAttentionSync(q, k, v, mask, { ...CPU, cpuKernel }));
    let diff = 0,
      norm = 0;
    for (let i = 0; i < dense.length; i++) {
      diff += (sparse[i] - dense[i]) ** 2;
      norm += dense[i] ** 2;
    }
    return { density: mask.density(), relError: Math.sqrt(diff / norm) };
  }

  test.each(CPU_KERNELS)(
    '--cpu-kernel %s: the rows name it, and their error is that of the ops run with it',
    (cpuKernel) => {
      const rows = JSON.parse(ok([...bench, '--cpu-kernel', cpuKernel]).stdout) as BenchRow[];
      expect(rows.map((r) => `${r.op}:${r.kernel}`)).toEqual([
        `dense:cpu-${cpuKernel}`,
        'mask:cpu',
        `sparse:cpu-${cpuKernel}`,
      ]);
      const want = expected(cpuKernel);
      expect(rows[2].density).toBe(want.density);
      expect(rows[2].relError).toBe(want.relError);
    },
  );

  (HAS_AVX2 ? test : test.skip)(
    'the two CPU kernels give different errors here (so the test above tells them apart)',
    () => {
      expect(expected('scalar').relError).not.toBe(expected('avx2').relError);
    },
  );

  test('the markdown table has the kernel column; the flag wins over NABLA_CPU_ISA', () => {
    const markdown = bench.filter((a) => a !== '--json');
    const r = ok([...markdown, '--cpu-kernel', 'scalar'], { NABLA_CPU_ISA: HAS_AVX2 ? 'avx2' : 'auto' });
    const rows = r.stdout.split('\n').filter((l) => /^\| (dense|mask|sparse) \|/.test(l));
    expect(rows.map((l) => l.split(' | ').slice(0, 3).join(' '))).toEqual([
      '| dense cpu cpu-scalar',
      '| mask cpu cpu',
      '| sparse cpu cpu-scalar',
    ]);
    expect(r.stdout).toMatch(/^\| op \| backend \| kernel \| shape \|/m);
  });

  test('CUDA kernel flags on --backend cpu are checked and ignored, as the op options are', () => {
    const rows = JSON.parse(
      ok([...bench, '--cpu-kernel', 'scalar', '--kernel', 'hopper', '--mask-kernel', 'simple']).stdout,
    ) as BenchRow[];
    expect(rows.map((r) => r.kernel)).toEqual(['cpu-scalar', 'cpu', 'cpu-scalar']);
    expect(rows[2].relError).toBe(expected('scalar').relError);
  });
});

describe('CUDA kernel flags on the CPU backend are checked and ignored', () => {
  test('mask --mask-kernel fast2 --backend cpu: the mask of nablaMask', () => {
    const out = file('mask');
    const r = ok(['mask', '--q', qFile, '--k', kFile, '--out', out, '--backend', 'cpu', '--mask-kernel', 'fast2']);
    expect(r.stdout).toMatch(/on cpu \(kernel cpu\) in [\d.]+ ms$/m);
    expect(Array.from(loadNpy(out).data)).toEqual(Array.from(nablaMaskSync(c.q, c.k, CPU).toDense()));
  });

  test('attend --kernel hopper --mask-kernel simple --backend cpu: the output of nablaAttention', () => {
    const out = file('out');
    const args = [...attendArgs(out), '--backend', 'cpu', '--kernel', 'hopper', '--mask-kernel', 'simple'];
    const r = ok([...args, '--cpu-kernel', 'scalar']);
    expect(r.stdout).toMatch(/^kernels: mask cpu, attention cpu-scalar$/m);
    expect(values(out)).toEqual(
      Array.from(nablaAttentionSync(c.q, c.k, v, { ...CPU, cpuKernel: 'scalar' }).output.data),
    );
  });
});

describe('a bad kernel flag is a usage error before any work; nothing is written', () => {
  const KERNEL = "'auto', 'fast', 'simple', 'hopper' or 'fast2'";
  const MASK = "'auto', 'fast', 'simple' or 'fast2'";
  const CPU_ISA = "'auto', 'avx2' or 'scalar'";
  const cases: [string, string, string, string][] = [
    ['mask', 'mask-kernel', 'fast3', MASK],
    ['attend', 'mask-kernel', 'Fast', MASK],
    ['attend', 'kernel', 'flash', KERNEL],
    ['attend', 'cpu-kernel', 'sse', CPU_ISA],
    ['bench', 'kernel', 'hopper2', KERNEL],
    ['bench', 'mask-kernel', 'fast ', MASK],
    ['bench', 'cpu-kernel', 'neon', CPU_ISA],
  ];
  test.each(cases)('%s --%s %j', (command, flag, value, choices) => {
    const out = file('out');
    const pictures = path.join(dir, `pictures-${serial++}`);
    const args =
      command === 'bench'
        ? ['bench', '--heads', '1', '--grid', '1,8,8', '--head-dim', '32', '--png', pictures]
        : command === 'mask'
          ? ['mask', '--q', qFile, '--k', kFile, '--out', out]
          : attendArgs(out);
    const r = nabla([...args, '--backend', 'cpu', `--${flag}`, value]);
    const escaped = `Expected ${choices} for --${flag} but received '${value}'`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    expectOneLine(r, 2, new RegExp(`^${escaped}$`));
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.existsSync(pictures)).toBe(false);
  });

  test('a bad value from the environment is still the op error naming the variable (exit 1), nothing written', () => {
    const out = file('out');
    expectOneLine(
      nabla([...attendArgs(out), '--backend', 'cpu'], { NABLA_ATTENTION_KERNEL: 'flash' }),
      1,
      /^Expected one of 'auto', 'fast', 'simple', 'hopper', 'fast2' for NABLA_ATTENTION_KERNEL but received 'flash'$/,
    );
    expect(fs.existsSync(out)).toBe(false);
  });

  test('--mask-kernel next to --mask is refused like the other mask flags (no mask is computed)', () => {
    const out = file('out');
    expectOneLine(
      nabla([...attendArgs(out), '--mask', maskFile, '--mask-kernel', 'simple']),
      2,
      /^--mask-kernel cannot be combined with --mask/,
    );
    expect(fs.existsSync(out)).toBe(false);
  });

  test('a command has the flags of the ops it runs only', () => {
    const mask = ['mask', '--q', qFile, '--k', kFile, '--out', file('mask')];
    expectOneLine(nabla([...mask, '--kernel', 'fast']), 2, /^unknown flag --kernel for nabla mask/);
    expectOneLine(nabla([...mask, '--cpu-kernel', 'scalar']), 2, /^unknown flag --cpu-kernel for nabla mask/);
  });
});

describe('--help lists the kernel flags with their values and defaults', () => {
  const lines: [string, string, string][] = [
    ['mask', '--mask-kernel auto|fast|simple|fast2', 'NABLA_MASK_KERNEL'],
    ['attend', '--mask-kernel auto|fast|simple|fast2', 'NABLA_MASK_KERNEL'],
    ['attend', '--kernel auto|fast|simple|hopper|fast2', 'NABLA_ATTENTION_KERNEL'],
    ['attend', '--cpu-kernel auto|avx2|scalar', 'NABLA_CPU_ISA'],
    ['bench', '--mask-kernel auto|fast|simple|fast2', 'NABLA_MASK_KERNEL'],
    ['bench', '--kernel auto|fast|simple|hopper|fast2', 'NABLA_ATTENTION_KERNEL'],
    ['bench', '--cpu-kernel auto|avx2|scalar', 'NABLA_CPU_ISA'],
  ];
  test.each(lines)('%s: %s', (command, flag, env) => {
    const help = ok([command, '--help']).stdout;
    const line = help.split('\n').find((l) => l.startsWith(`  ${flag} `));
    expect(line).toBeDefined();
    expect(line).toContain("kernel table in README's API section");
    expect(line).toMatch(new RegExp(`\\(default: ${env}, else auto\\)$`));
    expect(help).toContain('A kernel flag wins over its environment variable');
  });
});
