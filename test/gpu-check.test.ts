// bench/gpu-check.js between GPU runs: its --backend cpu self-test runs every code path of the
// script (correctness sections, timings, exports) on the CPU backend, so the script cannot rot
// while no GPU is at hand; and the bench scripts type-check (tsconfig.bench.json, checkJs).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { THRESHOLD_SWEEP } from '../lib/presets';

const ROOT = path.join(__dirname, '..');
const SCRIPT = path.join(ROOT, 'bench', 'gpu-check.js');

function gpuCheck(args: string[]) {
  const r = spawnSync(process.execPath, [SCRIPT, '--backend', 'cpu', ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The rows of the markdown table that follows `heading`, as objects keyed by its header. */
function tableAfter(text: string, heading: string): Record<string, string>[] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.startsWith(heading));
  expect(start).toBeGreaterThanOrEqual(0);
  const first = lines.findIndex((l, i) => i > start && l.startsWith('|'));
  const cells = (l: string) => l.slice(2, -2).split(' | ');
  const columns = cells(lines[first]);
  const rows: Record<string, string>[] = [];
  for (let i = first + 2; i < lines.length && lines[i].startsWith('|'); i++)
    rows.push(Object.fromEntries(cells(lines[i]).map((c, j) => [columns[j], c])));
  return rows;
}

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nabla-gpu-check-'));
});
afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('self-test (--quick --no-720p --out): every correctness row passes, every section and timing row is there, the exports exist', () => {
  const out = path.join(dir, 'out');
  const r = gpuCheck(['--quick', '--no-720p', '--out', out]);
  expect({ code: r.code, stderr: r.stderr.split('\n').filter((l) => l.includes('ERROR')) }).toEqual({
    code: 0,
    stderr: [],
  });
  expect(r.stdout).toContain('SELF-TEST OF bench/gpu-check.js ON THE CPU BACKEND');
  const report = JSON.parse(fs.readFileSync(path.join(out, 'gpu-check.json'), 'utf8'));
  expect(report.errors).toEqual([]);
  const { pool, mask, attention } = report.correctness as Record<string, { result: string }[]>;
  // pool: 3 shapes x 3 dtypes x kernels simple, fast2; mask: (2 shapes x 3 dtypes x 8 cases + 3 tie cases) x fast, simple, fast2;
  // attention: fast, fast2, simple x (a64, c128) x (bf16, fp16) sparse; the three dense at c128; four
  // simple-only rows; long rows: three sparse, fast and fast2 dense
  expect([pool.length, mask.length, attention.length]).toEqual([3 * 3 * 2, (2 * 3 * 8 + 3) * 3, 3 * 2 * 2 + 3 + 4 + 5]);
  const fast2Pool = pool as unknown as Record<string, string>[];
  expect(fast2Pool.filter((row) => row.kernel === 'fast2').map((row) => row['same bits as simple'])).toEqual(
    Array(9).fill('yes'),
  );
  // every pool and mask row names the kernel the op reported (here the CPU backend's), as expected
  const ranCells = [...pool, ...mask].map((row) => (row as unknown as Record<string, string>).ran);
  expect(ranCells.filter((ran) => ran !== 'cpu')).toEqual([]);
  const all = [...pool, ...mask, ...attention];
  expect(all.filter((row) => row.result !== 'PASS')).toEqual([]);
  expect(r.stdout).toContain(`correctness: ${all.length} passed, 0 failed`);
  // per timed shape: dense rows, pooling rows, then per threshold of the sweep three mask rows (fast,
  // simple, fast2) and a sparse row per tensor-core kernel (fast, fast2)
  const timings = report.timings as {
    shape: string;
    op: string;
    kernel: string;
    threshold: string;
    ms: unknown;
    'TFLOP/s'?: unknown;
  }[];
  expect(timings.filter((row) => typeof row.ms !== 'number')).toEqual([]);
  // TFLOP/s of every attention row: a positive finite number (FLOPs from lib/flops over the median)
  const rates = timings
    .filter((row) => row.op !== 'nablaMask' && row.op !== 'blockPool (q)')
    .map((row) => row['TFLOP/s']);
  // pooling alone, both kernels, per shape; every mask kernel per threshold
  expect(timings.filter((row) => row.op === 'blockPool (q)').map((row) => `${row.shape} ${row.kernel}`)).toEqual(
    ['selftest-small', 'selftest-large'].flatMap((s) => [`${s} simple`, `${s} fast2`]),
  );
  expect(timings.filter((row) => row.op === 'nablaMask').length).toBe(2 * THRESHOLD_SWEEP.length * 3);
  expect(rates.filter((x) => !(typeof x === 'number' && Number.isFinite(x) && x > 0))).toEqual([]);
  const sparse = timings.filter((row) => row.op === 'blockSparseAttention');
  expect(sparse.map((row) => `${row.shape} ${row.threshold} ${row.kernel}`)).toEqual(
    ['selftest-small', 'selftest-large'].flatMap((s) =>
      THRESHOLD_SWEEP.flatMap((t) => ['fast', 'fast2'].map((kernel) => `${s} ${t} ${kernel}`)),
    ),
  );
  const denseKernels = timings
    .filter((row) => row.op === 'attention (dense)')
    .map((row) => `${row.shape} ${row.kernel}`);
  expect(denseKernels).toEqual([
    'selftest-small fast',
    'selftest-small fast2',
    'selftest-small simple',
    'selftest-large fast',
    'selftest-large fast2',
  ]);
  const meta = JSON.parse(fs.readFileSync(path.join(out, 'meta.json'), 'utf8'));
  const files: string[] = meta.shapes.flatMap(
    (s: { masks: Record<string, { file: string; out?: string }>; files?: Record<string, string> }) => [
      ...Object.values(s.masks).flatMap((m) => [m.file, ...(m.out ? [m.out] : [])]),
      ...Object.values(s.files ?? {}),
    ],
  );
  expect(files).toHaveLength(2 * 3 + 1 + 3);
  for (const f of files) expect(fs.statSync(path.join(out, f)).size).toBeGreaterThan(128);
});

test('--sanitizer: every sparse case keeps blocks, has an empty row, and the long rows keep more than 32 blocks', () => {
  const r = gpuCheck(['--sanitizer']);
  expect(r.code).toBe(0);
  const rows = tableAfter(r.stdout, '## Correctness: attention');
  const sparse = rows.filter((row) => row.op === 'blockSparseAttention');
  expect(sparse.length).toBeGreaterThan(0);
  for (const row of sparse) {
    expect({ shape: row.shape, density: Number(row.density) > 0, result: row.result }).toEqual({
      shape: row.shape,
      density: true,
      result: 'PASS',
    });
    expect(row['empty rows != 0']).toBe('0');
  }
  const long = sparse.filter((row) => Number(/Skv(\d+)/.exec(row.shape)?.[1]) > 64 * 32);
  expect(long.length).toBe(3); // fast, fast2, simple
  for (const row of long) expect(Number(row['max kept / row'])).toBeGreaterThan(32);
});

test('the bench scripts type-check (tsconfig.bench.json: checkJs over bench/*.js against dist/ types)', () => {
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.bench.json')], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  expect(r.stdout + r.stderr).toBe('');
  expect(r.status).toBe(0);
});
