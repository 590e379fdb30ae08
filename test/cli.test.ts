// The `nabla` CLI, run as users run it (node dist/cli/nabla.js on .npy files in a temp dir):
// its masks and outputs equal the library's on the same inputs and the float64 reference
// (test/reference.ts); every mistake exits non-zero with one line on stderr. CPU backend only.
import { CLI, Run, expectOneLine, runCli, runCliOk } from './cli-runner';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  BlockMask,
  Tensor,
  VERSION,
  backends,
  blockSparseAttentionSync,
  nablaMaskSync,
  nablaAttentionSync,
  tensor,
  toFloat32Array,
} from '../lib';
import type { MaskOptions } from '../lib';
import { NpyArray, loadNpy, saveNpy, tensorToNpy } from '../lib/npy';
import { CPU, qkCase, relMaxError } from './helpers';
import { tileLayout, tokenBlocks } from '../lib/layout';
import { randn, refAttention, refMask } from './reference';

const nabla = (...args: string[]): Run => runCli(dir, args);
/** Runs a command that must succeed. */
const ok = (...args: string[]): Run => runCliOk(dir, args);

let dir: string;
let serial = 0;

/** Writes a tensor to a fresh .npy in the temp dir and returns its path. */
function save(t: Tensor, name = 'x'): string {
  const file = path.join(dir, `${name}-${serial++}.npy`);
  fs.writeFileSync(file, tensorToNpy(t));
  return file;
}

function out(name: string): string {
  return path.join(dir, `${name}-${serial++}.npy`);
}

/** Reference dims whose blocks are the tiles of `grid` (the same as blocks of 64 for multiples of 8). */
function griddedDims(dims: { B: number; H: number; S: number; D: number }, grid: [number, number, number]) {
  return { ...dims, blocks: tokenBlocks(tileLayout(grid)) };
}

function readMask(file: string): NpyArray {
  const m = loadNpy(file);
  expect(m.dtype).toBe('uint8');
  return m;
}

beforeAll(() => {
  // The CLI runs from dist, which jest's global setup rebuilt from the current sources.
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nabla-cli-'));
});

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Element-wise equality, reported as a count and the first difference (fast on big arrays). */
function expectSameValues(got: ArrayLike<number>, want: ArrayLike<number>): void {
  expect(got.length).toBe(want.length);
  let count = 0,
    first = -1;
  for (let i = 0; i < want.length; i++)
    if (!Object.is(got[i], want[i])) {
      if (first < 0) first = i;
      count++;
    }
  expect(count === 0 ? 'equal' : `${count} differ, first at ${first}: ${got[first]} vs ${want[first]}`).toBe('equal');
}

/** Dense masks equal except where the reference running sum is within 1e-6 of 1 - thr (ties). */
function expectLikeReference(got: ArrayLike<number>, ref: ReturnType<typeof refMask>, threshold: number): void {
  const off: number[] = [];
  for (let i = 0; i < got.length; i++)
    if (got[i] !== ref.dense[i] && !(Math.abs(ref.runningAt[i] - (1 - threshold)) < 1e-6)) off.push(i);
  expect(off).toEqual([]);
}

/** The (b, h, density) rows and the overall line of a density table. */
function parseDensities(stdout: string): { rows: number[][]; overall: number } {
  const rows = [...stdout.matchAll(/^\s+(\d+)\s+(\d+)\s+([\d.]+)$/gm)].map((m) => [
    Number(m[1]),
    Number(m[2]),
    Number(m[3]),
  ]);
  const overall = /^density ([\d.]+) \(/m.exec(stdout);
  return { rows, overall: overall ? Number(overall[1]) : NaN };
}

// ---------------------------------------------------------------------------------------------

describe('nabla info', () => {
  test('text: version, backends and build facts', () => {
    const r = ok('info');
    expect(r.stdout).toContain(`nabla-attention ${VERSION}`);
    expect(r.stdout).toMatch(/^backends: +cpu/m);
    expect(r.stdout).toMatch(/CUDA compiled in: (yes|no)/);
    expect(r.stdout).toMatch(new RegExp(`CPU threads ${backends().build.cpuThreads}\\b`));
    if (!backends().cuda) expect(r.stdout).toMatch(/^cuda: +unavailable: \S/m);
    expect(r.stderr).toBe('');
  });

  test('--json: the library facts plus the version', () => {
    const facts = JSON.parse(ok('info', '--json').stdout);
    const lib = backends();
    expect(facts.version).toBe(VERSION);
    expect(facts.cpu).toBe(true);
    expect(facts.cuda).toBe(lib.cuda);
    expect(facts.devices).toEqual(lib.devices);
    expect(facts.build).toEqual(lib.build);
    expect(facts.reason).toBe(lib.reason);
  });
});

describe('--help and --version', () => {
  test('nabla --help lists the commands', () => {
    for (const flag of ['--help', '-h']) {
      const r = ok(flag);
      for (const command of ['info', 'mask', 'attend']) expect(r.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    }
    expect(ok('--version').stdout).toBe(`${VERSION}\n`);
  });

  test.each(['info', 'mask', 'attend'])('nabla %s --help lists every flag with its default', async (name) => {
    const { spec } = await import(`../lib/cli/${name}`);
    for (const flag of ['--help', '-h']) {
      const r = ok(name, flag);
      expect(r.stdout).toContain(`Usage: nabla ${name}`);
      for (const f of spec.flags as { name: string; default?: string; required?: boolean }[]) {
        const line = r.stdout.split('\n').find((l) => l.startsWith(`  --${f.name} `));
        expect(line).toBeDefined();
        expect(line).toContain(f.required ? '(required)' : `(default: ${f.default})`);
      }
    }
    // help wins over anything else on the line, even missing required flags
    expect(ok(name, '--bogus', '-h').stdout).toContain(`Usage: nabla ${name}`);
  });

  test('mask --help shows the library defaults', () => {
    const r = ok('mask', '--help');
    expect(r.stdout).toMatch(/--threshold THR .*\(default: 0\.7\)/);
    expect(r.stdout).toMatch(/--method cdf\|topk .*\(default: cdf\)/);
    expect(r.stdout).toMatch(/--backend auto\|cpu\|cuda .*\(default: auto\)/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('nabla mask equals nablaMaskSync and the reference', () => {
  type Case = {
    name: string;
    B: number;
    H: number;
    grid: [number, number, number];
    D: number;
    seed: number;
    fp16?: boolean;
    options: MaskOptions;
    flags: string[];
  };
  const cases: Case[] = [
    { name: 'cdf 0.7 default flags', B: 1, H: 2, grid: [2, 16, 16], D: 16, seed: 1, options: {}, flags: [] },
    {
      name: 'cdf 0.3, B2',
      B: 2,
      H: 1,
      grid: [3, 8, 24],
      D: 32,
      seed: 2,
      options: { threshold: 0.3 },
      flags: ['--threshold', '0.3'],
    },
    {
      name: 'cdf 0.95, D64',
      B: 1,
      H: 3,
      grid: [2, 16, 8],
      D: 64,
      seed: 3,
      options: { threshold: 0.95 },
      flags: ['--threshold', '.95'],
    },
    {
      name: 'cdf 1 keeps all',
      B: 1,
      H: 1,
      grid: [2, 8, 16],
      D: 16,
      seed: 4,
      options: { threshold: 1 },
      flags: ['--threshold=1'],
    },
    {
      name: 'topk 0.25',
      B: 1,
      H: 2,
      grid: [4, 16, 16],
      D: 16,
      seed: 5,
      options: { threshold: 0.25, method: 'topk' },
      flags: ['--threshold', '0.25', '--method', 'topk'],
    },
    {
      name: 'cdf 0.4 + sta 3,1,1',
      B: 1,
      H: 2,
      grid: [4, 16, 16],
      D: 16,
      seed: 6,
      options: { threshold: 0.4, sta: [3, 1, 1] },
      flags: ['--threshold', '0.4', '--grid', '4,16,16', '--sta', '3,1,1'],
    },
    {
      name: 'cdf 0.5 + frames 0,1,4',
      B: 2,
      H: 1,
      grid: [4, 16, 16],
      D: 32,
      seed: 7,
      options: { threshold: 0.5, frames: [0, 1, 4] },
      flags: ['--threshold', '5e-1', '--grid', '4,16,16', '--frames', '0,1,4'],
    },
    {
      name: 'topk 0.5 + sta 1,3,3 + frames 0,2,6',
      B: 1,
      H: 2,
      grid: [6, 16, 16],
      D: 16,
      seed: 8,
      options: { threshold: 0.5, method: 'topk', sta: [1, 3, 3], frames: [0, 2, 6] },
      flags: ['--threshold', '0.5', '--method', 'topk', '--grid', '6,16,16', '--sta', '1,3,3', '--frames', '0,2,6'],
    },
    {
      name: 'float16 inputs, cdf 0.6',
      B: 1,
      H: 2,
      grid: [2, 16, 16],
      D: 32,
      seed: 9,
      fp16: true,
      options: { threshold: 0.6 },
      flags: ['--threshold', '0.6'],
    },
    {
      name: 'ragged grid 1x9x9, topk 0.5',
      B: 1,
      H: 2,
      grid: [1, 9, 9],
      D: 16,
      seed: 10,
      options: { threshold: 0.5, method: 'topk' },
      flags: ['--threshold', '0.5', '--method', 'topk', '--grid', '1,9,9'],
    },
    {
      name: 'ragged grid 3x13x20, causal + sta 1,3,3',
      B: 1,
      H: 2,
      grid: [3, 13, 20],
      D: 16,
      seed: 11,
      options: { threshold: 0.5, causal: true, sta: [1, 3, 3] },
      flags: ['--threshold', '0.5', '--grid', '3,13,20', '--causal', '--sta', '1,3,3'],
    },
  ];

  test.each(cases)('$name', ({ B, H, grid, D, seed, fp16, options, flags }) => {
    const c = qkCase(B, H, grid, D, seed);
    const q = fp16 ? tensor(Array.from(c.q.data), c.q.dims, 'float16') : c.q;
    const k = fp16 ? tensor(Array.from(c.k.data), c.k.dims, 'float16') : c.k;
    const file = out('mask');
    const r = ok('mask', '--q', save(q, 'q'), '--k', save(k, 'k'), '--backend', 'cpu', '--out', file, ...flags);

    const lib = nablaMaskSync(q, k, { ...options, grid: flags.includes('--grid') ? grid : undefined, ...CPU });
    const got = readMask(file);
    expect(got.shape).toEqual([...lib.dims]);
    expectSameValues(got.data, lib.toDense());

    const threshold = options.threshold ?? 0.7;
    const ref = refMask(toFloat32Array(q), toFloat32Array(k), griddedDims(c.dims, grid), c.dims.S, {
      threshold,
      method: options.method,
      blockGrid: c.blockGrid,
      causal: options.causal,
      sta: options.sta as [number, number, number] | undefined,
      frames: options.frames as number[] | undefined,
    });
    expectLikeReference(got.data, ref, threshold);

    const { rows, overall } = parseDensities(r.stdout);
    const perHead = lib.headDensities();
    expect(rows).toHaveLength(B * H);
    rows.forEach(([b, h, d], i) => {
      expect([b, h]).toEqual([Math.floor(i / H), i % H]);
      expect(d).toBeCloseTo(perHead[i], 4);
    });
    expect(overall).toBeCloseTo(lib.density(), 4);
    expect(r.stdout).toContain(`wrote ${file}: uint8 [${lib.dims.join(', ')}]`);
    expect(r.stderr).toBe('');
  });

  test('the masks differ between thresholds (the flag reaches the library)', () => {
    const { q, k } = qkCase(1, 2, [4, 16, 16], 16, 10);
    const [qf, kf] = [save(q, 'q'), save(k, 'k')];
    const density = (thr: string) => {
      const file = out('mask');
      ok('mask', '--q', qf, '--k', kf, '--threshold', thr, '--backend', 'cpu', '--out', file);
      const m = Array.from(readMask(file).data);
      return m.reduce((a, x) => a + x, 0) / m.length;
    };
    expect(density('0.2')).toBeLessThan(density('0.9'));
  });
});

// ---------------------------------------------------------------------------------------------

describe('nabla attend equals the library and the reference', () => {
  function qkv(B: number, H: number, grid: [number, number, number], D: number, Dv: number, seed: number) {
    const c = qkCase(B, H, grid, D, seed);
    const v = tensor(randn(B * H * c.dims.S * Dv, seed + 50), [B, H, c.dims.S, Dv]);
    return { ...c, v };
  }

  test('--mask: a dense uint8 mask file, as nabla mask writes it', () => {
    const { q, k, v, dims } = qkv(2, 2, [2, 16, 16], 32, 24, 21);
    const [nq, nk] = [dims.S / 64, dims.S / 64];
    const dense = Uint8Array.from({ length: 2 * 2 * nq * nk }, (_, i) => ((i * 7) % 5 < 2 ? 1 : 0));
    dense.fill(0, 0, nk); // an empty row: its queries output zeros
    const maskFile = out('mask');
    saveNpy(maskFile, [2, 2, nq, nk], dense);
    const [o, maskOut] = [out('o'), out('mask-out')];
    const r = ok(
      'attend',
      '--q',
      save(q),
      '--k',
      save(k),
      '--v',
      save(v),
      '--mask',
      maskFile,
      '--backend',
      'cpu',
      '--out',
      o,
      '--mask-out',
      maskOut,
    );

    const mask = BlockMask.fromDense(dense, [2, 2, nq, nk]);
    const lib = blockSparseAttentionSync(q, k, v, mask, CPU);
    const got = loadNpy(o);
    expect(got.dtype).toBe('float32');
    expect(got.shape).toEqual([2, 2, dims.S, 24]);
    expectSameValues(got.data, lib.data);
    expect(Array.from(got.data.subarray(0, 64 * 24)).every((x) => x === 0)).toBe(true);
    const ref = refAttention(q.data, k.data, v.data, dims, dims.S, 24, 1 / Math.sqrt(32), dense);
    expect(relMaxError(got.data, ref)).toBeLessThan(1e-5);
    expectSameValues(readMask(maskOut).data, dense);
    expect(parseDensities(r.stdout).overall).toBeCloseTo(mask.density(), 4);
    expect(r.stdout).toMatch(/^time [\d.]+ ms$/m);
  });

  test('--mask from nabla mask, with --scale', () => {
    const { q, k, v, dims } = qkv(1, 2, [2, 16, 16], 16, 16, 22);
    const [qf, kf, vf, maskFile, o] = [save(q), save(k), save(v), out('mask'), out('o')];
    ok('mask', '--q', qf, '--k', kf, '--threshold', '0.5', '--backend', 'cpu', '--out', maskFile);
    ok(
      'attend',
      '--q',
      qf,
      '--k',
      kf,
      '--v',
      vf,
      '--mask',
      maskFile,
      '--scale',
      '0.125',
      '--backend',
      'cpu',
      '--out',
      o,
    );
    const mask = nablaMaskSync(q, k, { threshold: 0.5, ...CPU });
    const lib = blockSparseAttentionSync(q, k, v, mask, { scale: 0.125, ...CPU });
    expectSameValues(loadNpy(o).data, lib.data);
    const ref = refAttention(q.data, k.data, v.data, dims, dims.S, 16, 0.125, mask.toDense());
    expect(relMaxError(loadNpy(o).data, ref)).toBeLessThan(1e-5);
  });

  type Case = {
    name: string;
    B: number;
    H: number;
    grid: [number, number, number];
    fp16?: boolean;
    options: MaskOptions & { scale?: number };
    flags: string[];
  };
  const cases: Case[] = [
    { name: 'default threshold', B: 1, H: 2, grid: [2, 16, 16], options: {}, flags: [] },
    {
      name: 'cdf 0.4 + sta + frames',
      B: 1,
      H: 2,
      grid: [4, 16, 16],
      options: { threshold: 0.4, sta: [1, 3, 3], frames: [0, 2, 4] },
      flags: ['--threshold', '0.4', '--grid', '4,16,16', '--sta', '1,3,3', '--frames', '0,2,4'],
    },
    {
      name: 'topk 0.3, B2',
      B: 2,
      H: 1,
      grid: [3, 8, 24],
      options: { threshold: 0.3, method: 'topk' },
      flags: ['--threshold', '0.3', '--method', 'topk'],
    },
    {
      name: 'float16 -> float32 output, scale 0.2',
      B: 1,
      H: 2,
      grid: [2, 16, 16],
      fp16: true,
      options: { threshold: 0.6, scale: 0.2 },
      flags: ['--threshold', '0.6', '--scale', '0.2'],
    },
    {
      name: 'ragged grid 2x9x13, causal',
      B: 1,
      H: 2,
      grid: [2, 9, 13],
      options: { threshold: 0.5, causal: true },
      flags: ['--threshold', '0.5', '--grid', '2,9,13', '--causal'],
    },
  ];

  test.each(cases)('--threshold: $name', ({ B, H, grid, fp16, options, flags }) => {
    const c = qkv(B, H, grid, 32, 16, 30 + B * H);
    const [q, k, v] = [c.q, c.k, c.v].map((t) => (fp16 ? tensor(Array.from(t.data), t.dims, 'float16') : t));
    const [o, maskOut] = [out('o'), out('mask-out')];
    const r = ok(
      'attend',
      '--q',
      save(q),
      '--k',
      save(k),
      '--v',
      save(v),
      '--backend',
      'cpu',
      '--out',
      o,
      '--mask-out',
      maskOut,
      ...flags,
    );

    const lib = nablaAttentionSync(q, k, v, { ...options, grid: flags.includes('--grid') ? grid : undefined, ...CPU });
    const got = loadNpy(o);
    expect(got.dtype).toBe('float32');
    expect(got.shape).toEqual([...lib.output.dims]);
    expectSameValues(got.data, toFloat32Array(lib.output));
    expectSameValues(readMask(maskOut).data, lib.mask.toDense());
    expect(parseDensities(r.stdout).overall).toBeCloseTo(lib.mask.density(), 4);

    // independent check: the reference attention over the library's mask, on the same (rounded) inputs
    const scale = options.scale ?? 1 / Math.sqrt(32);
    const ref = refAttention(
      toFloat32Array(q),
      toFloat32Array(k),
      toFloat32Array(v),
      griddedDims(c.dims, grid),
      c.dims.S,
      16,
      scale,
      lib.mask.toDense(),
    );
    expect(relMaxError(got.data, ref)).toBeLessThan(fp16 ? 2e-3 : 1e-5);
  });

  test('--mask with --grid: a mask file of a ragged grid, as nabla mask --grid writes it', () => {
    const grid: [number, number, number] = [2, 9, 13];
    const { q, k, v, dims } = qkv(1, 2, grid, 16, 8, 23);
    const [qf, kf, vf, maskFile, o] = [save(q), save(k), save(v), out('mask'), out('o')];
    ok(
      'mask',
      '--q',
      qf,
      '--k',
      kf,
      '--threshold',
      '0.5',
      '--grid',
      '2,9,13',
      '--causal',
      '--backend',
      'cpu',
      '--out',
      maskFile,
    );
    const mask = nablaMaskSync(q, k, { threshold: 0.5, grid, causal: true, ...CPU });
    expect(readMask(maskFile).shape).toEqual([1, 2, 8, 8]);
    ok(
      'attend',
      '--q',
      qf,
      '--k',
      kf,
      '--v',
      vf,
      '--mask',
      maskFile,
      '--grid',
      '2,9,13',
      '--backend',
      'cpu',
      '--out',
      o,
    );
    const ref = refAttention(q.data, k.data, v.data, griddedDims(dims, grid), dims.S, 8, 0.25, mask.toDense());
    expect(relMaxError(loadNpy(o).data, ref)).toBeLessThan(1e-5);
    // without --grid the 234-token file is no multiple of 64
    expectOneLine(
      nabla('attend', '--q', qf, '--k', kf, '--v', vf, '--mask', maskFile, '--backend', 'cpu', '--out', out('o')),
      1,
      /multiple of 64 .* but received 234$/,
    );
  });

  test('cross attention: k, v longer than q', () => {
    const a = qkv(1, 2, [2, 16, 16], 16, 8, 40);
    const b = qkv(1, 2, [3, 16, 16], 16, 8, 41);
    const o = out('o');
    ok(
      'attend',
      '--q',
      save(a.q),
      '--k',
      save(b.k),
      '--v',
      save(b.v),
      '--threshold',
      '0.6',
      '--backend',
      'cpu',
      '--out',
      o,
    );
    const lib = nablaAttentionSync(a.q, b.k, b.v, { threshold: 0.6, ...CPU });
    expect(loadNpy(o).shape).toEqual([1, 2, a.dims.S, 8]);
    expectSameValues(loadNpy(o).data, lib.output.data);
  });
});

// ---------------------------------------------------------------------------------------------

describe('mistakes exit non-zero with one line on stderr', () => {
  let q: string,
    k: string,
    v: string,
    q16: string,
    qInt: string,
    kShort: string,
    text: string,
    maskFile: string,
    maskBad: string;
  beforeAll(() => {
    const c = qkCase(1, 2, [2, 16, 16], 16, 60);
    [q, k, v] = [save(c.q, 'q'), save(c.k, 'k'), save(c.k, 'v')];
    q16 = save(tensor(Array.from(c.q.data), c.q.dims, 'float16'), 'q16');
    qInt = out('int');
    saveNpy(qInt, [1, 2, 512, 16], new Int32Array(2 * 512 * 16));
    kShort = save(tensor(new Float32Array(2 * 512 * 8), [1, 2, 512, 8]), 'kd8');
    text = out('text');
    fs.writeFileSync(text, 'q,k\n1,2\n');
    maskFile = out('mask');
    saveNpy(maskFile, [1, 2, 8, 8], new Uint8Array(128).fill(1));
    maskBad = out('mask-bad');
    saveNpy(maskBad, [1, 2, 4, 8], new Uint8Array(64).fill(1));
  });

  const missing = () => path.join(dir, 'missing.npy');
  const usage: [string, () => string[], RegExp][] = [
    ['no command', () => [], /^missing command/],
    ['unknown command', () => ['pool'], /^unknown command 'pool'/],
    [
      'unknown flag',
      () => ['mask', '--q', q, '--k', k, '--out', out('m'), '--thresh', '0.5'],
      /^unknown flag --thresh for nabla mask/,
    ],
    ['missing required flag', () => ['mask', '--k', k, '--out', out('m')], /^missing required flag --q FILE/],
    ['missing --out', () => ['attend', '--q', q, '--k', k, '--v', v], /^missing required flag --out FILE/],
    ['flag without its value', () => ['mask', '--k', k, '--out', out('m'), '--q'], /^flag --q needs a value FILE/],
    ['value swallowed by the next flag', () => ['mask', '--q', '--k', k, '--out', out('m')], /^flag --q needs a value/],
    [
      '--threshold abc',
      () => ['mask', '--q', q, '--k', k, '--out', out('m'), '--threshold', 'abc'],
      /^Expected a number for --threshold but received 'abc'$/,
    ],
    [
      '--threshold 0.7abc',
      () => ['mask', '--q', q, '--k', k, '--out', out('m'), '--threshold', '0.7abc'],
      /received '0\.7abc'$/,
    ],
    [
      '--threshold=',
      () => ['mask', '--q', q, '--k', k, '--out', out('m'), '--threshold='],
      /^Expected a non-empty value for --threshold/,
    ],
    [
      '--threshold 0x1',
      () => ['mask', '--q', q, '--k', k, '--out', out('m'), '--threshold', '0x1'],
      /for --threshold but received '0x1'/,
    ],
    [
      '--scale NaN',
      () => ['attend', '--q', q, '--k', k, '--v', v, '--out', out('o'), '--scale', 'NaN'],
      /for --scale but received 'NaN'/,
    ],
    [
      '--grid 1,2',
      () => ['mask', '--q', q, '--k', k, '--out', out('m'), '--grid', '1,2'],
      /^Expected 3 comma-separated integers T,H,W for --grid but received '1,2'$/,
    ],
    [
      '--grid 2,16,x',
      () => ['mask', '--q', q, '--k', k, '--out', out('m'), '--grid', '2,16,x'],
      /for --grid but received '2,16,x'/,
    ],
    [
      '--sta 1,1',
      () => ['mask', '--q', q, '--k', k, '--out', out('m'), '--grid', '2,16,16', '--sta', '1,1'],
      /for --sta but received '1,1'/,
    ],
    [
      '--frames 0,,2',
      () => ['mask', '--q', q, '--k', k, '--out', out('m'), '--grid', '2,16,16', '--frames', '0,,2'],
      /for --frames but received '0,,2'/,
    ],
    [
      '--sta without --grid',
      () => ['mask', '--q', q, '--k', k, '--out', out('m'), '--sta', '1,1,1'],
      /^--grid T,H,W is required with --sta$/,
    ],
    [
      '--frames without --grid',
      () => ['attend', '--q', q, '--k', k, '--v', v, '--out', out('o'), '--frames', '0,1,2'],
      /^--grid T,H,W is required with --frames$/,
    ],
    [
      '--method foo',
      () => ['mask', '--q', q, '--k', k, '--out', out('m'), '--method', 'foo'],
      /^Expected 'cdf' or 'topk' for --method but received 'foo'$/,
    ],
    [
      '--backend gpu',
      () => ['mask', '--q', q, '--k', k, '--out', out('m'), '--backend', 'gpu'],
      /^Expected 'auto', 'cpu' or 'cuda' for --backend/,
    ],
    [
      '--device -1',
      () => ['mask', '--q', q, '--k', k, '--out', out('m'), '--device', '-1'],
      /for --device but received '-1'/,
    ],
    ['a flag twice', () => ['mask', '--q', q, '--q', q, '--k', k, '--out', out('m')], /^flag --q given twice$/],
    ['a stray argument', () => ['mask', q, '--k', k, '--out', out('m')], /^unexpected argument/],
    ['a value for a boolean flag', () => ['info', '--json=yes'], /^flag --json takes no value/],
    [
      '--mask with --threshold',
      () => ['attend', '--q', q, '--k', k, '--v', v, '--mask', maskFile, '--threshold', '0.5', '--out', out('o')],
      /^--threshold cannot be combined with --mask/,
    ],
  ];

  const runtime: [string, () => string[], RegExp][] = [
    [
      'threshold out of range (library RangeError)',
      () => ['mask', '--q', q, '--k', k, '--out', out('m'), '--threshold', '1.5'],
      /^Expected a number in \(0, 1\] for threshold but received 1\.5$/,
    ],
    [
      '--scale 0 (library RangeError)',
      () => ['attend', '--q', q, '--k', k, '--v', v, '--mask', maskFile, '--scale', '0', '--out', out('o')],
      /for scale but received 0$/,
    ],
    [
      'a missing input file',
      () => ['mask', '--q', missing(), '--k', k, '--out', out('m')],
      /^ENOENT: no such file or directory, open '.*missing\.npy'$/,
    ],
    [
      'a file that is not .npy',
      () => ['mask', '--q', text, '--k', k, '--out', out('m')],
      /magic bytes .* for .*text-\d+\.npy but received 71 2c 6b 0a 31 2c$/,
    ],
    [
      'integer inputs',
      () => ['mask', '--q', qInt, '--k', k, '--out', out('m')],
      /^Expected a float array .* for .*int-\d+\.npy but received '<i4'$/,
    ],
    [
      'q, k head dims differ',
      () => ['mask', '--q', q, '--k', kShort, '--out', out('m')],
      /^Expected \[1, 2, tokens, 16\] .* for k\.dims/,
    ],
    [
      'float16 q with float32 k',
      () => ['mask', '--q', q16, '--k', k, '--out', out('m')],
      /^Expected 'float16' \(the type of q\) for k\.type/,
    ],
    [
      'grid that does not match S',
      () => ['mask', '--q', q, '--k', k, '--out', out('m'), '--grid', '2,8,8', '--sta', '1,1,1'],
      /for grid but received/,
    ],
    [
      'frames that do not end at T',
      () => ['mask', '--q', q, '--k', k, '--out', out('m'), '--grid', '2,16,16', '--frames', '0,1,3'],
      /^Expected frame boundaries .* for frames/,
    ],
    [
      'a mask of the wrong dims',
      () => ['attend', '--q', q, '--k', k, '--v', v, '--mask', maskBad, '--out', out('o')],
      /^Expected \[1, 2, 8, 8\] .* for mask\.dims but received \[1, 2, 4, 8\]$/,
    ],
    [
      'a float mask file',
      () => ['attend', '--q', q, '--k', k, '--v', v, '--mask', q, '--out', out('o')],
      /^Expected a uint8 mask \[B, H, nq, nk\] for .* but received '<f4' \[1, 2, 512, 16\]$/,
    ],
    [
      'an output directory that does not exist',
      () => ['mask', '--q', q, '--k', k, '--out', path.join(dir, 'no', 'm.npy')],
      /^Expected a file in an existing directory for --out but received '.*m\.npy' \(no directory .*no\)$/,
    ],
    [
      '--scale 1e39 (every output would be NaN)',
      () => ['attend', '--q', q, '--k', k, '--v', v, '--scale', '1e39', '--out', out('o')],
      /^Expected a number in \(0, 65536\] for scale but received 1e\+39$/,
    ],
  ];

  test.each(usage)('usage error (exit 2): %s', (_name, args, message) => {
    expectOneLine(nabla(...args()), 2, message);
  });

  test.each(runtime)('runtime error (exit 1): %s', (_name, args, message) => {
    expectOneLine(nabla(...args()), 1, message);
  });

  test('--backend cuda without a CUDA device (exit 1) or with one (runs)', () => {
    const r = nabla('mask', '--q', q, '--k', k, '--out', out('m'), '--backend', 'cuda');
    if (backends().cuda) expect(r.code).toBe(0);
    else expectOneLine(r, 1, /^backend 'cuda' is not available: \S/);
  });

  test('NABLA_DEBUG=1 adds the stack trace', () => {
    const r = runCli(dir, ['mask', '--q', missing(), '--k', k, '--out', out('m')], { NABLA_DEBUG: '1' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^nabla: ENOENT.*\n.*Error: ENOENT[\s\S]*\n\s+at /);
  });
});

// ---------------------------------------------------------------------------------------------

describe('outputs are all or nothing', () => {
  let inputs: { q: string; k: string; v: string };
  beforeAll(() => {
    const c = qkCase(1, 2, [2, 16, 16], 16, 70);
    inputs = { q: save(c.q, 'q'), k: save(c.k, 'k'), v: save(c.k, 'v') };
  });

  /** A fresh directory for a run's outputs, so "nothing left" can be checked by listing it. */
  function outDir(): string {
    return fs.mkdtempSync(path.join(dir, 'outputs-'));
  }

  const attendArgs = () => ['attend', '--q', inputs.q, '--k', inputs.k, '--v', inputs.v, '--backend', 'cpu'];
  const maskArgs = () => ['mask', '--q', inputs.q, '--k', inputs.k, '--backend', 'cpu'];

  test('a write that fails midway (file size limit: EFBIG) leaves neither a truncated file nor the other output', () => {
    const d = outDir();
    // 8 KiB per file: the 32 KiB attention output fails partway, the mask would fit
    const r = spawnSync(
      'bash',
      [
        '-c',
        'ulimit -f 8 && exec "$0" "$@"',
        process.execPath,
        CLI,
        ...attendArgs(),
        '--mask-out',
        path.join(d, 'm.npy'),
        '--out',
        path.join(d, 'o.npy'),
      ],
      { encoding: 'utf8' },
    );
    expectOneLine({ code: r.status, stdout: r.stdout, stderr: r.stderr }, 1, /^EFBIG: file too large, write$/);
    expect(fs.readdirSync(d)).toEqual([]);
  });

  test('a later output that fails (mask --png past the size limit) takes the mask file already written with it', () => {
    const d = outDir();
    const c = qkCase(1, 4, [2, 32, 32], 8, 71); // a 4 KiB mask file, pictures of about 100 KiB
    const [qf, kf] = [save(c.q, 'q'), save(c.k, 'k')];
    const args = [
      'mask',
      '--q',
      qf,
      '--k',
      kf,
      '--backend',
      'cpu',
      '--threshold',
      '0.5',
      '--out',
      path.join(d, 'm.npy'),
      '--png',
      path.join(d, 'p.png'),
    ];
    const r = spawnSync('bash', ['-c', 'ulimit -f 8 && exec "$0" "$@"', process.execPath, CLI, ...args], {
      encoding: 'utf8',
    });
    expectOneLine({ code: r.status, stdout: r.stdout, stderr: r.stderr }, 1, /^EFBIG: file too large, write$/);
    expect(fs.readdirSync(d)).toEqual([]);
    // without the limit the same run writes all three files, the mask small enough for it
    ok(...args);
    expect(fs.readdirSync(d).sort()).toEqual(['m.npy', 'p-map.png', 'p.png']);
    expect(fs.statSync(path.join(d, 'm.npy')).size).toBeLessThan(8192);
    expect(fs.statSync(path.join(d, 'p.png')).size).toBeGreaterThan(8192);
  });

  test('attend --mask-out into a missing directory: refused before any work, no --out file', () => {
    const d = outDir();
    const r = nabla(...attendArgs(), '--out', path.join(d, 'o.npy'), '--mask-out', path.join(d, 'gone', 'm.npy'));
    expectOneLine(
      r,
      1,
      /^Expected a file in an existing directory for --mask-out but received '.*m\.npy' \(no directory .*gone\)$/,
    );
    expect(fs.readdirSync(d)).toEqual([]);
  });

  test('mask --png into a missing directory: refused before any work, no mask file', () => {
    const d = outDir();
    const r = nabla(...maskArgs(), '--out', path.join(d, 'm.npy'), '--png', path.join(d, 'gone', 'm.png'));
    expectOneLine(
      r,
      1,
      /^Expected a file in an existing directory for --png but received '.*m\.png' \(no directory .*gone\)$/,
    );
    expect(fs.readdirSync(d)).toEqual([]);
  });

  test('an output that names an input, directly, through a link or a hard link, is refused and the input kept', () => {
    const d = outDir();
    const before = fs.readFileSync(inputs.q);
    const link = path.join(d, 'q-link.npy');
    const hard = path.join(d, 'q-hard.npy');
    fs.symlinkSync(inputs.q, link);
    fs.linkSync(inputs.q, hard);
    for (const target of [inputs.q, link, hard]) {
      const r = nabla(...attendArgs(), '--out', target);
      expectOneLine(
        r,
        1,
        /^Expected an output file that is not an input for --out but received '.*' \(the --q file .*q-\d+\.npy\)$/,
      );
    }
    expectOneLine(
      nabla(...maskArgs(), '--out', path.join(d, 'm.npy'), '--png', inputs.k),
      1,
      /for --png but received .* \(the --k file /,
    );
    const viaLink = nabla(
      'attend',
      '--q',
      link,
      '--k',
      inputs.k,
      '--v',
      inputs.v,
      '--backend',
      'cpu',
      '--out',
      path.join(d, 'o.npy'),
      '--mask-out',
      inputs.q,
    );
    expectOneLine(viaLink, 1, /for --mask-out but received .* \(the --q file .*q-link\.npy\)$/);
    expect(fs.readFileSync(inputs.q).equals(before)).toBe(true);
    expect(fs.readdirSync(d).sort()).toEqual(['q-hard.npy', 'q-link.npy']);
  });

  test('two outputs naming one file are refused', () => {
    const d = outDir();
    const o = path.join(d, 'o.npy');
    expectOneLine(
      nabla(...attendArgs(), '--out', o, '--mask-out', path.join(d, '.', 'o.npy')),
      1,
      /^Expected a file other than the --out output for --mask-out but received /,
    );
    expectOneLine(
      nabla(...maskArgs(), '--out', path.join(d, 'p-map.png'), '--png', path.join(d, 'p.png')),
      1,
      /^Expected a file other than the --out output for --png but received '.*p-map\.png'$/,
    );
    expect(fs.readdirSync(d)).toEqual([]);
  });

  test('a failure found after the inputs are read (a bad mask value) leaves nothing', () => {
    const d = outDir();
    const r = nabla(
      ...attendArgs(),
      '--threshold',
      '2',
      '--out',
      path.join(d, 'o.npy'),
      '--mask-out',
      path.join(d, 'm.npy'),
    );
    expectOneLine(r, 1, /for threshold but received 2$/);
    expect(fs.readdirSync(d)).toEqual([]);
  });

  test('a successful run replaces an existing output, keeps a link to it a link, and leaves no temporary file', () => {
    const d = outDir();
    const real = path.join(d, 'real.npy');
    fs.writeFileSync(real, 'old');
    fs.symlinkSync(real, path.join(d, 'o.npy'));
    ok(...attendArgs(), '--out', path.join(d, 'o.npy'), '--mask-out', path.join(d, 'm.npy'));
    expect(fs.readdirSync(d).sort()).toEqual(['m.npy', 'o.npy', 'real.npy']);
    expect(fs.lstatSync(path.join(d, 'o.npy')).isSymbolicLink()).toBe(true);
    expect(loadNpy(real).shape).toEqual([1, 2, 512, 16]);
    expect(loadNpy(path.join(d, 'm.npy')).shape).toEqual([1, 2, 8, 8]);
  });
});
