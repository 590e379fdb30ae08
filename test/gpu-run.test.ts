// The GPU round's scripts between GPU runs: bench/gpu-run.sh --dry-run resolves every step's
// command here (and fails where pieces are missing), the step list and the budget cut work, what a
// run leaves under $OUT fits what the device call brings back, and the scripts that only a GPU
// run calls (service-check.js, one-launch.js, ncu_table.py) run on the CPU or on made-up input.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.join(__dirname, '..');
const RUN = path.join(ROOT, 'bench', 'gpu-run.sh');
const STEPS = [
  'ladder',
  'jest-cuda',
  'gpu-check',
  'compare-torch',
  'service',
  'overhead',
  'memcheck',
  'hopper',
  'ncu',
  'racecheck',
];

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nabla-gpu-run-'));
});
afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function run(command: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(command, args, { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const hasPython = spawnSync('python3', ['--version']).status === 0;

describe('bench/gpu-run.sh', () => {
  test('--list names the steps in the order they run', () => {
    const r = run('bash', [RUN, '--list']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(STEPS);
  });

  test('an unknown step or option is refused with status 2', () => {
    expect(run('bash', [RUN, 'gpu-chek']).code).toBe(2);
    expect(run('bash', [RUN, '--dry']).code).toBe(2);
  });

  test('--dry-run: every step of this tree resolves (files, node scripts parse and answer --help)', () => {
    const r = run('bash', [RUN, '--dry-run']);
    expect({ code: r.code, missing: r.stdout.split('\n').filter((l) => l.includes('MISSING')) }).toEqual({
      code: 0,
      missing: [],
    });
    for (const s of STEPS) expect(r.stdout).toMatch(new RegExp(`^  ${s} +(ok|note):`, 'm'));
    for (const script of ['gpu-check.js', 'service-check.js', 'one-launch.js'])
      expect(r.stdout).toContain(`node bench/${script} --help`);
    expect(r.stdout).toContain('every step resolves');
  });

  test('--dry-run fails, naming what is missing, in a tree without the scripts', () => {
    const bare = path.join(dir, 'bare');
    fs.mkdirSync(path.join(bare, 'bench'), { recursive: true });
    fs.copyFileSync(RUN, path.join(bare, 'bench', 'gpu-run.sh'));
    const r = spawnSync('bash', [path.join(bare, 'bench', 'gpu-run.sh'), '--dry-run', 'gpu-check', 'service'], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('MISSING: bench/gpu-check.js');
    expect(r.stdout).toContain('MISSING: bench/service-check.js');
    expect(r.stdout).toContain('MISSING: build/Release/nabla_attention.node');
  });

  test('a spent budget skips every step; the summary is printed last and the results fit the device call (<= 8 files, one folder down)', () => {
    const out = path.join(dir, 'out');
    const r = run('bash', [RUN, 'gpu-check', 'service'], {
      OUT: out,
      RUN_NAME: 'budget-run',
      BUDGET: '0',
      TMPDIR: dir,
    });
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    const table = lines.slice(lines.indexOf('| step | result |'));
    expect(table.slice(2)).toEqual(['gpu-check', 'service'].map((s) => `| ${s} | SKIPPED (budget of 0s spent) |`));
    const files = fs.readdirSync(path.join(out, 'budget-run')).sort();
    expect(files).toEqual(['logs.tar.gz', 'summary.md']);
    expect(fs.readdirSync(out)).toEqual(['budget-run']);
    expect(fs.readFileSync(path.join(out, 'budget-run', 'summary.md'), 'utf8')).toContain(
      '| service | SKIPPED (budget of 0s spent) |',
    );
  });

  test('--cpu rehearsal: compare-torch brings gpu-check, steps run in order, GPU-only steps skip, headline files and the logs come back', () => {
    const out = path.join(dir, 'rehearsal');
    const r = run('bash', [RUN, '--cpu', 'ncu', 'service', 'compare-torch', 'ladder'], {
      OUT: out,
      RUN_NAME: 'reh',
      TMPDIR: dir,
    });
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    const at = lines.indexOf('| step | result |');
    const steps = lines
      .slice(at + 2)
      .filter((l) => l.startsWith('| '))
      .map((l) => l.split(' | ')[0].slice(2));
    expect(steps).toEqual(['ladder', 'gpu-check', 'compare-torch', 'service', 'ncu']);
    expect(lines.slice(at + 2, at + 7).map((l) => l.split(' | ')[1].split(' ')[0])).toEqual([
      'ok',
      'ok',
      'ok',
      'ok',
      'SKIPPED',
    ]);
    expect(r.stdout).toContain('CPU REHEARSAL (--cpu)');
    // the start-up target is a timing: met or missed, either way no failure
    expect(lines.slice(at).find((l) => l.startsWith('- service: '))).toMatch(
      /^- service: service-check: 2 passed, 0 failed, [012] targets missed, 9 skipped \(cpu\)$/,
    );
    expect(lines.slice(at).find((l) => l.startsWith('- ladder: '))).toBe('- ladder: kernel-ladder: 6 passed, 0 failed');
    expect(lines.slice(at).find((l) => l.startsWith('- gpu-check: '))).toMatch(
      /^- gpu-check: correctness: \d+ passed, 0 failed$/,
    );
    const dest = path.join(out, 'reh');
    expect(fs.readdirSync(dest).sort()).toEqual(['gpu-check.md', 'logs.tar.gz', 'service-check.md', 'summary.md']);
    const listed = spawnSync('tar', ['-tzf', path.join(dest, 'logs.tar.gz')], { encoding: 'utf8' }).stdout.split('\n');
    for (const f of [
      './summary.md',
      './kernel-ladder.log',
      './gpu-check.log',
      './gpu-check/meta.json',
      './compare_torch.log',
      './service-check.json',
    ])
      expect(listed).toContain(f);
  });
});

describe('bench/jest-files.sh: test files in parallel, each under its own limit', () => {
  test('a test blocked in a native wait is cut off at its limit and named; the other files report PASS and FAIL; the headline keeps the order', () => {
    const planted = path.join(dir, 'planted');
    fs.mkdirSync(planted);
    // Atomics.wait blocks the JS thread the way a sync call into a kernel that never ends does
    fs.writeFileSync(
      path.join(planted, 'hang.test.ts'),
      "test('before', () => expect(1).toBe(1));\n" +
        "test('blocked', () => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); });\n" +
        "test('after', () => expect(1).toBe(1));\n",
    );
    fs.writeFileSync(path.join(planted, 'pass.test.ts'), "test('passes', () => expect(1 + 1).toBe(2));\n");
    fs.writeFileSync(path.join(planted, 'fail.test.ts'), "test('fails on purpose', () => expect(1 + 1).toBe(3));\n");
    const out = path.join(dir, 'jest-files');
    const files = ['hang', 'pass', 'fail'].map((n) => path.join(planted, `${n}.test.ts`));
    // 20 s leave the hanging file's jest time to start and reach the test on a loaded machine
    const r = run('bash', ['bench/jest-files.sh', out, 'planted', `${files[0]}:20`, files[1], files[2]], {
      JEST_ARGS: `--roots ${planted}`,
      NABLA_JEST_NO_BUILD: '1', // dist/ is this run's; nothing may rebuild it under the other test files
    });
    expect(r.code).toBe(1);
    const verdicts = r.stdout.split('\n').filter((l) => l.startsWith('jest-file: '));
    expect(verdicts).toHaveLength(3);
    expect(verdicts[0]).toMatch(
      new RegExp(`^jest-file: ${files[0]} TIMEOUT after 2\\ds \\(limit 20s\\): never ended: 'blocked'$`),
    );
    expect(verdicts[1]).toMatch(new RegExp(`^jest-file: ${files[1]} PASS in \\d+s: 1 passed, 0 failed, 0 skipped$`));
    expect(verdicts[2]).toMatch(
      new RegExp(
        `^jest-file: ${files[2]} FAIL \\(rc 1\\) in \\d+s: 0 passed, 1 failed, 0 skipped; failed: fails on purpose$`,
      ),
    );
    // the progress log: load, then a start and an end per test, each line with its time
    const progress = fs.readFileSync(path.join(out, 'planted-hang.progress'), 'utf8').trimEnd().split('\n');
    const file = path.relative(ROOT, files[0]);
    expect(progress.map((l) => l.replace(/^\d{4}-\d\d-\d\dT[\d:.]+Z /, ''))).toEqual([
      `load ${file}`,
      `start ${file} › before`,
      `end ${file} › before`,
      `start ${file} › blocked`,
    ]);
    // the headline: per file, in the order given, its verdict line and its output
    const headline = fs.readFileSync(path.join(out, 'planted.log'), 'utf8');
    const sections = headline.split('\n').filter((l) => l.startsWith('=== '));
    expect(sections).toEqual(verdicts.map((l) => `=== ${l.slice('jest-file: '.length)}`));
    expect(headline).toContain(`start ${file} › blocked`);
    expect(headline).toContain('✕ fails on purpose');
  }, 90000);

  test('jest loads the progress log only while NABLA_TEST_PROGRESS is set', () => {
    const config = (env: Record<string, string>) =>
      run(
        process.execPath,
        ['-p', "JSON.stringify(require('./jest.config.js').setupFilesAfterEnv)"],
        env,
      ).stdout.trim();
    expect(config({ NABLA_TEST_PROGRESS: '' })).toBe('[]');
    expect(config({ NABLA_TEST_PROGRESS: path.join(dir, 'progress') })).toBe('["<rootDir>/scripts/jest-progress.js"]');
  });
});

describe('bench/service-check.js on the CPU', () => {
  test('the correctness row passes, the CUDA-only rows are skipped with the reason, files are written', () => {
    const out = path.join(dir, 'service');
    const r = run(process.execPath, [
      'bench/service-check.js',
      '--backend',
      'cpu',
      '--calls',
      '20',
      '--requests',
      '5',
      '--out',
      out,
    ]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const report = JSON.parse(fs.readFileSync(path.join(out, 'service-check.json'), 'utf8'));
    expect(report.backend).toBe('cpu');
    const rows = report.rows as { check: string; result: string; measured: string; note: string }[];
    const byCheck = Object.fromEntries(rows.map((row) => [row.check, row]));
    expect(byCheck['every request gives the first result']).toMatchObject({
      result: 'PASS',
      measured: '0 elements differ',
    });
    for (const check of [
      'device memory over 20 calls',
      'dispose while an op is pending',
      'async upload gives the same bytes',
      'interop: op on wrapped device memory',
      'interop: waits across streams',
      'interop: host cost of waitForExternal + recordEvent',
      'out of memory leaves the device usable',
      'interop: op on wrapped device memory',
      'interop: waits across streams',
      'interop: host cost of waitForExternal + recordEvent',
    ])
      expect(byCheck[check]).toMatchObject({ result: 'SKIPPED', note: expect.stringContaining('CUDA only') });
    // the start-up rows: positive times, and the first request against the steady state as a ratio
    for (const check of [
      'process start -> package loaded',
      'first request',
      'process start -> first result',
      'steady request (median of 5)',
    ])
      expect(Number(/^([\d.]+) ms$/.exec(byCheck[check].measured)?.[1])).toBeGreaterThan(0);
    expect(byCheck['first request / steady'].measured).toMatch(/^[\d.]+x$/);
    expect(['MET', 'MISSED']).toContain(byCheck['first request / steady'].result);
    // the cold start split: the context row is CUDA only; warmUp runs in a fresh child process on the CPU too
    for (const check of ['first CUDA call (context creation)', 'first request after the first CUDA call'])
      expect(byCheck[check]).toMatchObject({ result: 'SKIPPED', note: expect.stringContaining('CUDA only') });
    expect(byCheck['warmUp ms']).toMatchObject({ result: 'INFO', note: expect.stringContaining('kernels: mask cpu') });
    expect(Number(/^([\d.]+) ms$/.exec(byCheck['warmUp ms'].measured)?.[1])).toBeGreaterThan(0);
    expect(byCheck['first request after warmUp / steady'].measured).toMatch(/^[\d.]+x$/);
    expect(['MET', 'MISSED']).toContain(byCheck['first request after warmUp / steady'].result);
    expect(byCheck['first request after warmUp gives the first result']).toMatchObject({
      result: 'PASS',
      measured: 'same bits',
    });
    expect(r.stdout).toMatch(/^service-check: 2 passed, 0 failed, [012] targets missed, 9 skipped \(cpu\)$/m);
    expect(fs.readFileSync(path.join(out, 'service-check.md'), 'utf8')).toContain(
      '| every request gives the first result | PASS |',
    );
  });

  test('bad arguments exit with status 2 and the usage', () => {
    const r = run(process.execPath, ['bench/service-check.js', '--calls', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('usage: node bench/service-check.js');
  });
});

describe('the Nsight Compute pieces', () => {
  test('one-launch.js counts the tiles of its launch: every block pair dense, the kept ones sparse', () => {
    const dense = run(process.execPath, ['bench/one-launch.js', 'dense', '--backend', 'cpu']);
    const sparse = run(process.execPath, ['bench/one-launch.js', 'sparse', '--backend', 'cpu']);
    expect([dense.code, sparse.code]).toEqual([0, 0]);
    const tiles = (s: string) => Number(/^one-launch: tiles (\d+)$/m.exec(s)?.[1]);
    // self-test shape: H2, S = 2 x 16 x 16 = 512 tokens = 8 blocks, so 2 x 8 x 8 block pairs
    expect(tiles(dense.stdout)).toBe(128);
    const density = Number(/density ([\d.]+)/.exec(sparse.stdout)?.[1]);
    expect(density).toBeGreaterThan(0);
    expect(density).toBeLessThan(1);
    expect(tiles(sparse.stdout)).toBe(Math.round(density * 128));
  });

  (hasPython ? test : test.skip)(
    'ncu-attention.sh, with a stand-in for ncu: unknown metrics dropped, one launch each, counts per tile of each launch',
    () => {
      const work = path.join(dir, 'ncu-flow');
      const r = run('bash', ['bench/ncu-attention.sh', path.join(ROOT, 'test', 'fake-ncu.sh'), work, 'small']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('ncu: metric lts__t_sector_hit_rate unknown here, dropped');
      expect(r.stdout).toContain('ncu: section WarpStateStats unknown here, dropped');
      const tiles = (what: string) =>
        Number(/^one-launch: tiles (\d+)$/m.exec(fs.readFileSync(path.join(work, 'ncu', `${what}.log`), 'utf8'))?.[1]);
      const [dense, sparse] = [tiles('dense'), tiles('sparse')];
      expect(dense).toBe(128);
      expect(sparse).toBeGreaterThan(0);
      expect(sparse).toBeLessThan(dense);
      const table = fs.readFileSync(path.join(work, 'ncu.md'), 'utf8');
      expect(table).toContain(`tiles: dense ${dense}, sparse ${sparse}`);
      const row = table
        .split('\n')
        .find((l) => l.startsWith('| gpu__time_duration.sum |'))
        ?.split(' | ');
      expect(Number(row?.[5])).toBeCloseTo(4e6 / dense, 0);
      expect(Number(row?.[6])).toBeCloseTo(Number((1.5e6 / sparse).toPrecision(4)), 6);
      expect(table).toContain('| lts__t_sector_hit_rate.pct | | not collected |');
    },
  );

  (hasPython ? test : test.skip)('ncu-attention.sh with a kernel list: one directory and one table per kernel', () => {
    const work = path.join(dir, 'ncu-kernels');
    const r = run('bash', [
      'bench/ncu-attention.sh',
      path.join(ROOT, 'test', 'fake-ncu.sh'),
      work,
      'small',
      '0.7',
      'fast simple',
    ]);
    expect(r.code).toBe(0);
    const table = fs.readFileSync(path.join(work, 'ncu.md'), 'utf8');
    const headings = table.split('\n').filter((l) => l.startsWith('### attention kernel'));
    expect(headings).toEqual(["### attention kernel 'fast'", "### attention kernel 'simple'"]);
    for (const kernel of ['fast', 'simple']) {
      for (const what of ['dense', 'sparse']) {
        const log = fs.readFileSync(path.join(work, 'ncu', kernel, `${what}.log`), 'utf8');
        expect(log).toMatch(/^one-launch: tiles \d+$/m);
        expect(fs.existsSync(path.join(work, 'ncu', kernel, `${what}-raw.csv`))).toBe(true);
      }
    }
    expect(table.split('tiles: dense 128, sparse').length - 1).toBe(2);
  });

  (hasPython ? test : test.skip)('ncu_table.py puts counts per tile and rates side by side', () => {
    const d = path.join(dir, 'ncu');
    fs.mkdirSync(d);
    const csv = (kernelRow: string) =>
      `"ID","Kernel Name","gpu__time_duration.sum","lts__t_sector_hit_rate.pct"\n"","","nsecond","%"\n${kernelRow}\n`;
    fs.writeFileSync(path.join(d, 'dense-raw.csv'), csv('"0","fastAttentionKernel","4,000,000","50"'));
    fs.writeFileSync(
      path.join(d, 'sparse-raw.csv'),
      `==PROF== Disconnected\n${csv('"0","fastAttentionKernel","1,500,000","75"')}`,
    );
    fs.writeFileSync(path.join(d, 'dense.log'), 'one-launch: tiles 1000\n');
    fs.writeFileSync(path.join(d, 'sparse.log'), 'one-launch: tiles 250\n');
    const r = run('python3', [
      'bench/ncu_table.py',
      d,
      'gpu__time_duration.sum',
      'lts__t_sector_hit_rate.pct',
      'dram__bytes_read.sum',
    ]);
    expect(r.code).toBe(0);
    // time: 4000 ns per dense tile, 6000 per sparse tile -> a sparse tile costs 1.5x
    expect(r.stdout).toContain('| gpu__time_duration.sum | nsecond | 4e+06 | 1.5e+06 | 0.375 | 4000 | 6000 | 1.5 |');
    expect(r.stdout).toContain('| lts__t_sector_hit_rate.pct | % | 50 | 75 | 1.5 |  |  |  |');
    expect(r.stdout).toContain('| dram__bytes_read.sum | | not collected |');
  });
});
