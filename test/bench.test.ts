// `nabla bench` (and `nabla mask --png`), run as users run them: node dist/cli/nabla.js. Small CPU
// shapes only; the numbers are checked for their stated properties (density in (0, 1], rising
// with the threshold; TFLOP/s = FLOPs / median; error 0 at threshold 1), never for speed.
import { Run, expectOneLine, runCli, runCliOk } from './cli-runner';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DEFAULT_THRESHOLD, Tensor, VERSION, nablaMaskSync, tensorToNpy, zeros } from '../lib';
import { BenchRow, spec } from '../lib/cli/bench';
import { COLUMNS } from '../lib/cli/bench/report';
import { Picture, mapPicture, maskPicture, panelLayout } from '../lib/pictures';
import { encodePng } from '../lib/png';
import { PRESETS, findPreset } from '../lib/presets';
import { syntheticQKV } from '../lib/synthetic';

const SMALL = [
  '--batch',
  '1',
  '--heads',
  '2',
  '--grid',
  '4,16,16',
  '--head-dim',
  '64',
  '--backend',
  'cpu',
  '--warmup',
  '0',
  '--iters',
  '2',
];

let dir: string;

const nabla = (...args: string[]): Run => runCli(dir, args);
/** Runs a command that must succeed. */
const ok = (...args: string[]): Run => runCliOk(dir, args);

/** The fields of one CSV line (RFC 4180 quoting: "a, b" and "" for a quote). */
function parseCsvLine(line: string): string[] {
  const cells: string[] = [];
  let pos = 0;
  for (;;) {
    let cell = '';
    if (line[pos] === '"') {
      for (pos++; ; pos++) {
        if (line[pos] === '"' && line[pos + 1] === '"') cell += line[pos++];
        else if (line[pos] === '"') break;
        else cell += line[pos];
      }
      pos++;
    } else {
      const end = line.indexOf(',', pos);
      cell = line.slice(pos, end < 0 ? undefined : end);
      pos = end < 0 ? line.length : end;
    }
    cells.push(cell);
    if (pos >= line.length) return cells;
    pos++; // the comma
  }
}

/** Width and height from a PNG's IHDR (the full decoder is in png.test.ts). */
function pngSize(file: string): [number, number] {
  const bytes = fs.readFileSync(file);
  expect(bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
  expect(bytes.subarray(12, 16).toString('latin1')).toBe('IHDR');
  return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
}

beforeAll(() => {
  // the CLI runs from dist, which jest's global setup rebuilt from the current sources
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nabla-bench-'));
});

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('nabla bench on a small CPU shape', () => {
  test('markdown: header facts, every column, a dense row and mask + sparse rows per threshold; --png pictures', () => {
    const pictures = path.join(dir, 'pictures');
    const r = ok('bench', ...SMALL, '--png', pictures);
    const lines = r.stdout.split('\n');
    expect(r.stdout).toContain(`nabla-attention ${VERSION}`);
    expect(r.stdout).toMatch(/^- cpu: .+ \(\d+ cores, \d+ addon threads\)$/m);
    expect(r.stdout).toMatch(/^- cuda: /m);
    expect(r.stdout).toMatch(/^- build: CUDA compiled in: (yes|no)/m);
    expect(r.stdout).toMatch(/^- shape 1x2x1024x64 .*grid 4x16x16, bfloat16, cdf/m);
    const start = lines.indexOf(`| ${COLUMNS.join(' | ')} |`);
    expect(start).toBeGreaterThan(0);
    const body = lines
      .slice(start + 2)
      .filter((l) => l.startsWith('|'))
      .map((l) => l.slice(2, -2).split(' | '));
    const column = (name: string) => COLUMNS.indexOf(name);
    expect(body.map((cells) => [cells[column('op')], cells[column('threshold')]])).toEqual([
      ['dense', '-'],
      ['mask', '0.4'],
      ['sparse', '0.4'],
      ['mask', '0.7'],
      ['sparse', '0.7'],
      ['mask', '0.9'],
      ['sparse', '0.9'],
    ]);
    for (const cells of body) {
      expect(cells).toHaveLength(COLUMNS.length);
      expect(cells[column('backend')]).toBe('cpu');
      expect(cells[column('kernel')]).toMatch(cells[column('op')] === 'mask' ? /^cpu$/ : /^cpu-(avx2|scalar)$/);
      expect(cells[column('shape')]).toBe('1x2x1024x64');
      expect(cells[column('min-max ms')]).toMatch(/^[\d.]+-[\d.]+$/);
    }
    // stdout holds only the table; progress went to stderr
    expect(r.stderr).toMatch(/^bench: cpu dense 1x2x1024x64: [\d.]+ ms$/m);

    for (const name of ['mask-thr0.4.png', 'mask-thr0.7.png', 'mask-thr0.9.png', 'map.png']) {
      const [w, h] = pngSize(path.join(pictures, name));
      const layout = panelLayout(2, 16, 16); // 2 heads of 16 x 16 blocks
      expect([w, h]).toEqual([layout.width, layout.height]);
    }
    expect(r.stderr).toContain(`wrote ${path.join(pictures, 'map.png')}`);
  });

  test('a ragged --grid: threshold 1 reproduces dense; --causal keeps exactly the visible blocks', () => {
    const ragged = [
      '--batch',
      '1',
      '--heads',
      '2',
      '--grid',
      '2,13,20',
      '--head-dim',
      '32',
      '--backend',
      'cpu',
      '--warmup',
      '0',
      '--iters',
      '1',
      '--threshold',
      '1',
      '--json',
    ];
    const open = JSON.parse(ok('bench', ...ragged).stdout) as BenchRow[];
    expect(open.map((x) => `${x.op}:${x.density}`)).toEqual(['dense:1', 'mask:1', 'sparse:1']);
    expect(open[0]).toMatchObject({ seq: 520, grid: '2x13x20' });
    expect(open[2].relError).toBeLessThan(1e-2); // bf16 outputs of the same blocks
    const causal = JSON.parse(ok('bench', ...ragged, '--causal').stdout) as BenchRow[];
    // 2 frames of 2 x 3 tiles: frame-0 rows see 6 of 12 blocks, frame-1 rows all 12
    expect(causal.map((x) => `${x.op}:${x.density}`)).toEqual(['dense:1', 'mask:0.75', 'sparse:0.75']);
  });

  test('the wan2.1-14b-720p-full preset runs scaled down on the CPU', () => {
    const r = ok(
      'bench',
      '--preset',
      'wan2.1-14b-720p-full',
      '--backend',
      'cpu',
      '--scale-down',
      '--max-seconds',
      '2',
      '--iters',
      '1',
      '--warmup',
      '0',
      '--json',
    );
    const rows = JSON.parse(r.stdout) as BenchRow[];
    for (const row of rows) expect(row.grid).toMatch(/^\d+x45x80$/);
    expect(rows.map((x) => x.op)).toEqual(['dense', 'mask', 'sparse']);
  });

  test('--json: one array of rows; density in (0, 1] and rising with the threshold; threshold 1 reproduces dense', () => {
    const r = ok('bench', ...SMALL, '--threshold', '0.3,0.8,1', '--json');
    const rows = JSON.parse(r.stdout) as BenchRow[];
    expect(Array.isArray(rows)).toBe(true);
    expect(rows.map((x) => `${x.op}:${x.threshold}`)).toEqual([
      'dense:null',
      'mask:0.3',
      'sparse:0.3',
      'mask:0.8',
      'sparse:0.8',
      'mask:1',
      'sparse:1',
    ]);
    const dense = rows[0];
    expect(dense).toMatchObject({
      op: 'dense',
      backend: 'cpu',
      density: 1,
      speedup: 1,
      relError: 0,
      batch: 1,
      heads: 2,
      seq: 1024,
      headDim: 64,
      grid: '4x16x16',
    });
    const flops = 4 * 1 * 2 * 1024 * 1024 * 64;
    for (const row of rows) {
      expect(row).toMatchObject({
        version: VERSION,
        dtype: 'bfloat16',
        inputs: 'synthetic',
        scaled: null,
        iters: 2,
        warmup: 0,
      });
      expect(typeof row.device).toBe('string');
      expect(row.density).toBeGreaterThan(0);
      expect(row.density).toBeLessThanOrEqual(1);
      expect(row.minMs).toBeLessThanOrEqual(row.medianMs);
      expect(row.medianMs).toBeLessThanOrEqual(row.maxMs);
      if (row.op !== 'mask') expect(row.tflops).toBeCloseTo((flops * row.density) / (row.medianMs / 1e3) / 1e12, 10);
      else expect([row.tflops, row.speedup, row.relError]).toEqual([null, null, null]);
    }
    const sparse = rows.filter((x) => x.op === 'sparse');
    const masks = rows.filter((x) => x.op === 'mask');
    expect(sparse.map((x) => x.density)).toEqual(masks.map((x) => x.density));
    expect(sparse[0].density).toBeLessThan(sparse[1].density);
    expect(sparse[1].density).toBeLessThanOrEqual(sparse[2].density);
    expect(sparse[2].density).toBe(1);
    expect(sparse[2].relError).toBeLessThan(1e-6); // every block kept = dense attention
    expect(sparse[0].relError).toBeGreaterThan(sparse[1].relError as number); // dropping more mass costs more
    for (const row of sparse) expect(row.speedup).toBeCloseTo(dense.medianMs / row.medianMs, 10);
  });

  test('--csv: a header line, then one line per row with the same fields', () => {
    const r = ok('bench', ...SMALL, '--threshold', '0.5', '--csv');
    const lines = r.stdout.trimEnd().split('\n');
    const header = lines[0].split(',');
    expect(header.slice(0, 3)).toEqual(['op', 'backend', 'device']);
    for (const key of [
      'threshold',
      'density',
      'medianMs',
      'minMs',
      'maxMs',
      'tflops',
      'speedup',
      'relError',
      'version',
    ])
      expect(header).toContain(key);
    expect(lines).toHaveLength(4);
    const rows = lines.slice(1).map(parseCsvLine);
    expect(rows.map((cells) => cells[0])).toEqual(['dense', 'mask', 'sparse']);
    for (const cells of rows) {
      expect(cells).toHaveLength(header.length);
      const d = Number(cells[header.indexOf('density')]);
      expect(d > 0 && d <= 1).toBe(true);
      expect(cells[header.indexOf('version')]).toBe(VERSION);
    }
    expect(rows[0][header.indexOf('threshold')]).toBe(''); // null -> empty
    expect(Number(rows[2][header.indexOf('threshold')])).toBe(0.5);
  });

  test('real q, k, v from .npy files (--q, --k, --v) set the shape and dtype', () => {
    const { q, k, v } = syntheticQKV(1, 2, [2, 16, 16], 32, 'float16', 9);
    const files = { q: path.join(dir, 'q.npy'), k: path.join(dir, 'k.npy'), v: path.join(dir, 'v.npy') };
    fs.writeFileSync(files.q, tensorToNpy(q));
    fs.writeFileSync(files.k, tensorToNpy(k));
    fs.writeFileSync(files.v, tensorToNpy(v));
    const r = ok(
      'bench',
      '--q',
      files.q,
      '--k',
      files.k,
      '--v',
      files.v,
      '--threshold',
      '0.6',
      '--backend',
      'cpu',
      '--iters',
      '1',
      '--json',
    );
    const rows = JSON.parse(r.stdout) as BenchRow[];
    expect(rows).toHaveLength(3);
    for (const row of rows)
      expect(row).toMatchObject({
        inputs: 'npy',
        dtype: 'float16',
        batch: 1,
        heads: 2,
        seq: 512,
        headDim: 32,
        grid: null,
      });
  });

  test('cross attention with Dv != D from files: TFLOP/s counts 2*B*H*Sq*Skv*(D + Dv) per second', () => {
    const save = (name: string, t: Tensor): string => {
      const file = path.join(dir, `x-${name}.npy`);
      fs.writeFileSync(file, tensorToNpy(t));
      return file;
    };
    const { q } = syntheticQKV(1, 2, [2, 16, 16], 32, 'float32', 3); // Sq 512, D 32
    const { k } = syntheticQKV(1, 2, [1, 16, 16], 32, 'float32', 4); // Skv 256
    const { v } = syntheticQKV(1, 2, [1, 16, 16], 16, 'float32', 5); // Dv 16
    const r = ok(
      'bench',
      '--q',
      save('q', q),
      '--k',
      save('k', k),
      '--v',
      save('v', v),
      '--threshold',
      '0.6',
      '--backend',
      'cpu',
      '--iters',
      '1',
      '--json',
    );
    const rows = JSON.parse(r.stdout) as BenchRow[];
    expect(rows.map((x) => x.op)).toEqual(['dense', 'mask', 'sparse']);
    const flops = 2 * 1 * 2 * 512 * 256 * (32 + 16);
    for (const row of rows.filter((x) => x.op !== 'mask'))
      expect(row.tflops).toBeCloseTo((flops * row.density) / (row.medianMs / 1e3) / 1e12, 10);
  });
});

describe('presets', () => {
  test('the presets of docs/nabla.md section 5', () => {
    expect(
      PRESETS.map((p) => [p.name, p.heads, p.headDim, p.grid.join('x'), p.grid[0] * p.grid[1] * p.grid[2]]),
    ).toEqual([
      ['wan2.1-14b-720p', 40, 128, '21x40x80', 67200],
      ['wan2.1-14b-720p-full', 40, 128, '21x45x80', 75600],
      ['wan2.1-14b-480p', 40, 128, '21x24x48', 24192],
      ['wan2.1-14b-720p-121f', 40, 128, '31x40x80', 99200],
      ['kandinsky5-lite-10s', 28, 64, '61x32x48', 93696],
      ['kandinsky5-pro-10s-hd', 32, 128, '61x48x80', 234240],
    ]);
    // the full 720p latent is the one ragged grid: 45 token rows, a bottom tile row 5 tokens high
    expect(PRESETS.filter((p) => p.grid[1] % 8 !== 0 || p.grid[2] % 8 !== 0).map((p) => p.name)).toEqual([
      'wan2.1-14b-720p-full',
    ]);
  });

  test('a preset too large for the CPU is refused with the estimate', () => {
    const r = nabla('bench', '--preset', 'wan2.1-14b-720p', '--backend', 'cpu');
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 1, stdout: '' });
    expect(r.stderr).toMatch(
      /^nabla: estimated [\d.]+ (s|min|h|days) on cpu for wan2\.1-14b-720p \(1x40x67200x128, .*use --scale-down or a smaller shape\n$/,
    );
  });

  test('--scale-down shrinks heads and frames to fit --max-seconds and says so', () => {
    const r = ok(
      'bench',
      '--preset',
      'wan2.1-14b-480p',
      '--backend',
      'cpu',
      '--scale-down',
      '--max-seconds',
      '5',
      '--iters',
      '1',
      '--json',
    );
    const note = /^note: scaled wan2\.1-14b-480p: (.*) \(estimated .*\)$/m.exec(r.stderr);
    expect(note).not.toBeNull();
    const rows = JSON.parse(r.stdout) as BenchRow[];
    const preset = findPreset('wan2.1-14b-480p');
    expect(rows.map((x) => `${x.op}:${x.threshold}`)).toEqual(['dense:null', 'mask:0.7', 'sparse:0.7']); // the preset's threshold
    const { heads, seq, headDim } = rows[0];
    expect(headDim).toBe(128);
    expect(heads).toBeLessThan(40);
    expect(seq % (24 * 48)).toBe(0);
    const frames = seq / (24 * 48);
    expect(heads * frames * frames).toBeLessThan(40 * 21 * 21);
    const parts = [
      heads !== preset?.heads ? `heads 40 -> ${heads}` : '',
      frames !== 21 ? `frames 21 -> ${frames}` : '',
    ].filter(Boolean);
    expect(note?.[1]).toBe(parts.join(', '));
    for (const row of rows)
      expect(row).toMatchObject({
        preset: 'wan2.1-14b-480p',
        scaled: `scaled wan2.1-14b-480p: ${parts.join(', ')}`,
        grid: `${frames}x24x48`,
      });
  });
});

describe('mistakes exit non-zero with one line on stderr', () => {
  const usage: [string, string[], RegExp][] = [
    [
      'unknown flag',
      ['--heads', '2', '--seq', '1024', '--head-dim', '64', '--itres', '2'],
      /^unknown flag --itres for nabla bench/,
    ],
    ['no shape', ['--backend', 'cpu'], /^give --preset NAME, a shape .* or --q, --k, --v files/],
    ['--json with --csv', [...SMALL, '--json', '--csv'], /^--json cannot be combined with --csv/],
    [
      'unknown preset',
      ['--preset', 'wan3'],
      /^Expected 'wan2\.1-14b-720p', .* or 'kandinsky5-pro-10s-hd' for --preset but received 'wan3'$/,
    ],
    [
      '--preset with --heads',
      ['--preset', 'wan2.1-14b-480p', '--heads', '2'],
      /^--heads cannot be combined with --preset/,
    ],
    [
      '--seq with --grid',
      ['--heads', '2', '--seq', '1024', '--grid', '4,16,16', '--head-dim', '64'],
      /^--seq cannot be combined with --grid/,
    ],
    ['missing --head-dim', ['--heads', '2', '--seq', '1024'], /^missing --head-dim D/],
    ['missing --seq', ['--heads', '2', '--head-dim', '64'], /^missing --seq S or --grid T,H,W/],
    [
      '--heads 0',
      ['--heads', '0', '--seq', '1024', '--head-dim', '64'],
      /^Expected a positive integer for --heads but received '0'$/,
    ],
    ['--iters 0', [...SMALL.slice(0, -2), '--iters', '0'], /^Expected a positive integer for --iters/],
    ['--threshold abc', [...SMALL, '--threshold', '0.5,abc'], /^Expected a number for --threshold but received 'abc'$/],
    [
      '--backend gpu',
      ['--heads', '2', '--seq', '1024', '--head-dim', '64', '--backend', 'gpu'],
      /^Expected 'auto', 'cpu', 'cuda' or 'all' for --backend/,
    ],
    ['--dtype int8', [...SMALL, '--dtype', 'int8'], /for --dtype but received 'int8'$/],
    [
      '--sta without --grid',
      ['--heads', '2', '--seq', '1024', '--head-dim', '64', '--sta', '1,3,3'],
      /^--grid T,H,W is required with --sta$/,
    ],
    [
      '--causal without --grid',
      ['--heads', '2', '--seq', '1024', '--head-dim', '64', '--causal'],
      /^--grid T,H,W \(or a preset\) is required with --causal$/,
    ],
    ['--q alone', ['--q', 'q.npy'], /^--q, --k and --v go together \(missing --k\)$/],
    ['--max-seconds 0', [...SMALL, '--max-seconds', '0'], /^Expected a positive number of seconds for --max-seconds/],
  ];
  const runtime: [string, string[], RegExp][] = [
    [
      'threshold out of range',
      [...SMALL, '--threshold', '1.5'],
      /^Expected a number in \(0, 1\] for threshold but received 1\.5$/,
    ],
    [
      '--seq not a multiple of 64',
      ['--heads', '1', '--seq', '1000', '--head-dim', '64', '--backend', 'cpu'],
      /multiple of 64 .* for seq but received 1000$/,
    ],
    [
      'a grid with a zero size',
      ['--heads', '1', '--grid', '2,0,16', '--head-dim', '64', '--backend', 'cpu'],
      /3 positive integers .* for grid but received \[2, 0, 16\]$/,
    ],
  ];

  test.each(usage)('usage error (exit 2): %s', (_name, args, message) =>
    expectOneLine(nabla('bench', ...args), 2, message),
  );
  test.each(runtime)('runtime error (exit 1): %s', (_name, args, message) =>
    expectOneLine(nabla('bench', ...args), 1, message),
  );

  test('--q, --k, --v files are held to the library shape rules (exit 1)', () => {
    const save = (name: string, t: Tensor): string => {
      const file = path.join(dir, `bad-${name}.npy`);
      fs.writeFileSync(file, tensorToNpy(t));
      return file;
    };
    const q = save('q', zeros([1, 4, 128, 32], 'float32'));
    const k2 = save('k2', zeros([1, 2, 128, 32], 'float32'));
    const v = save('v', zeros([1, 4, 128, 32], 'float32'));
    const k = save('k', zeros([1, 4, 128, 32], 'float32'));
    const q3 = save('q3', zeros([4, 128, 32], 'float32'));
    const q100 = save('q100', zeros([1, 4, 100, 32], 'float32'));
    const files = (qf: string, kf: string, vf: string) => ['--q', qf, '--k', kf, '--v', vf, '--backend', 'cpu'];
    expectOneLine(
      nabla('bench', ...files(q, k2, v)),
      1,
      /^Expected \[1, 4, tokens, 32\] to match q \[1, 4, 128, 32\] for k\.dims but received \[1, 2, 128, 32\]$/,
    );
    expectOneLine(
      nabla('bench', ...files(q, k, k2)),
      1,
      /^Expected \[1, 4, 128, valueDim\] to match k for v\.dims but received \[1, 2, 128, 32\]$/,
    );
    expectOneLine(
      nabla('bench', ...files(q3, k, v)),
      1,
      /^Expected 4 dims \[batch, heads, tokens, headDim\] for q\.dims but received \[4, 128, 32\]$/,
    );
    expectOneLine(
      nabla('bench', ...files(q100, k, v)),
      1,
      /multiple of 64 .* for q\.dims\[2\] \(tokens\) but received 100$/,
    );
    expectOneLine(
      nabla('bench', ...files(q, k, v), '--grid', '1,8,8'),
      1,
      /^Expected a token grid of 128 tokens .* for grid but received \[1, 8, 8\] = 64 tokens$/,
    );
  });

  test('--help lists every flag and the presets', () => {
    const r = ok('bench', '--help');
    for (const flag of spec.flags) expect(r.stdout).toContain(`--${flag.name}`);
    for (const p of PRESETS) expect(r.stdout).toContain(p.name);
    expect(ok('--help').stdout).toMatch(/^ {2}bench /m);
  });
});

describe('nabla mask --png', () => {
  test('writes the mask picture and the block map beside it', () => {
    const { q, k } = syntheticQKV(1, 3, [2, 16, 16], 32, 'float32', 4);
    const [qf, kf] = [path.join(dir, 'mq.npy'), path.join(dir, 'mk.npy')];
    fs.writeFileSync(qf, tensorToNpy(q));
    fs.writeFileSync(kf, tensorToNpy(k));
    const png = path.join(dir, 'm.png');
    const r = ok('mask', '--q', qf, '--k', kf, '--out', path.join(dir, 'm.npy'), '--backend', 'cpu', '--png', png);
    expect(r.stdout).toContain(`wrote ${png}: mask picture`);
    expect(r.stdout).toContain(`wrote ${path.join(dir, 'm-map.png')}: block map P, log scale`);
    const layout = panelLayout(3, 8, 8);
    expect(pngSize(png)).toEqual([layout.width, layout.height]);
    expect(pngSize(path.join(dir, 'm-map.png'))).toEqual([layout.width, layout.height]);
    // the same pictures as the library draws of its own mask and map of these inputs
    const mask = nablaMaskSync(q, k, { returnMap: true, backend: 'cpu' });
    const encoded = (picture: Picture) => encodePng(picture.width, picture.height, picture.pixels, 3);
    const threshold = DEFAULT_THRESHOLD; // labelled on every panel
    expect(fs.readFileSync(png).equals(encoded(maskPicture(mask.toDense(), mask.dims, { threshold })))).toBe(true);
    const densities = mask.headDensities();
    expect(
      fs
        .readFileSync(path.join(dir, 'm-map.png'))
        .equals(encoded(mapPicture(mask.map as Float32Array, mask.dims, { threshold, densities }))),
    ).toBe(true);
  });
});

describe('nabla bench --png writes all or nothing', () => {
  const SHAPE = ['--heads', '1', '--grid', '2,16,16', '--head-dim', '64', '--backend', 'cpu', '--iters', '1'];

  test('a picture path that is a directory is refused before any work; nothing is written', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'nabla-bench-png-'));
    fs.mkdirSync(path.join(out, 'map.png'));
    expectOneLine(
      nabla('bench', ...SHAPE, '--png', out),
      1,
      /^Expected a file path for --png but received '.*map\.png' \(a directory\)$/,
    );
    expect(fs.readdirSync(out)).toEqual(['map.png']);
  });

  test('a run refused after the folder was made leaves no folder and no file', () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nabla-bench-png-')), 'made');
    // the full 720p preset cannot fit 1 s: refused by the estimate, after --png planned its files
    const r = nabla('bench', '--preset', 'wan2.1-14b-720p', '--backend', 'cpu', '--max-seconds', '1', '--png', out);
    expect(r.code).toBe(1);
    expect(fs.existsSync(out)).toBe(false);
  });
});
