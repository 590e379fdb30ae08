// The CLI's output writer (lib/cli/output.ts): a run's files appear all together or not at all.
// Failures are injected through the writer callback; the CLI cases are in test/cli.test.ts.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { OutputFiles, writeAllOrNothing } from '../lib/cli/output';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nabla-output-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const file = (name: string) => path.join(dir, name);
const listing = () => fs.readdirSync(dir).sort();

test('every output appears when the work succeeds, with the bytes written, and no temporary file stays', async () => {
  const outputs = new OutputFiles({});
  outputs.plan('out', file('a.npy'));
  outputs.plan('png', file('b.png'));
  const result = await writeAllOrNothing(outputs, () => {
    outputs.stage(file('a.npy'), (temp) => fs.writeFileSync(temp, 'aaa'));
    // nothing is in place before every output is written
    expect(listing().filter((f) => !f.startsWith('.'))).toEqual([]);
    outputs.stage(file('b.png'), (temp) => fs.writeFileSync(temp, 'bb'));
    return 7;
  });
  expect(result).toBe(7);
  expect(listing()).toEqual(['a.npy', 'b.png']);
  expect(fs.readFileSync(file('a.npy'), 'utf8')).toBe('aaa');
  expect(fs.readFileSync(file('b.png'), 'utf8')).toBe('bb');
});

test('a writer that fails midway: its partial file and the outputs staged before it are removed, old files kept', async () => {
  fs.writeFileSync(file('a.npy'), 'old a');
  const outputs = new OutputFiles({});
  for (const name of ['a.npy', 'b.npy', 'c.npy']) outputs.plan('out', file(name));
  const failure = new Error('disk full');
  await expect(
    writeAllOrNothing(outputs, async () => {
      outputs.stage(file('a.npy'), (temp) => fs.writeFileSync(temp, 'new a'));
      outputs.stage(file('b.npy'), (temp) => {
        fs.writeFileSync(temp, 'half of b');
        throw failure;
      });
      outputs.stage(file('c.npy'), (temp) => fs.writeFileSync(temp, 'c'));
    }),
  ).rejects.toBe(failure);
  expect(listing()).toEqual(['a.npy']);
  expect(fs.readFileSync(file('a.npy'), 'utf8')).toBe('old a');
});

test('an output planned but never written is an error, and nothing is put in place', async () => {
  const outputs = new OutputFiles({});
  outputs.plan('out', file('a.npy'));
  outputs.plan('mask-out', file('m.npy'));
  await expect(
    writeAllOrNothing(outputs, () => outputs.stage(file('a.npy'), (temp) => fs.writeFileSync(temp, 'a'))),
  ).rejects.toThrow(/m\.npy \(--mask-out\) was planned but not written/);
  expect(listing()).toEqual([]);
});

test('plan refuses, naming the flag: a missing directory, a directory, an input (by any name), a second output of one file', () => {
  const input = file('q.npy');
  fs.writeFileSync(input, 'q');
  fs.symlinkSync(input, file('q-link.npy'));
  fs.mkdirSync(file('sub'));
  const outputs = new OutputFiles({ q: input, k: file('missing.npy'), v: undefined });
  expect(() => outputs.plan('out', file('nowhere/o.npy'))).toThrow(
    /^Expected a file in an existing directory for --out but received '.*o\.npy' \(no directory .*nowhere\)$/,
  );
  expect(() => outputs.plan('out', path.join(input, 'o.npy'))).toThrow(
    /^Expected a file in an existing directory for --out but received .*\(.*q\.npy is not a directory\)$/,
  );
  expect(() => outputs.plan('out', file('sub'))).toThrow(
    /^Expected a file path for --out but received '.*sub' \(a directory\)$/,
  );
  expect(() => outputs.plan('out', input)).toThrow(
    /^Expected an output file that is not an input for --out but received '.*q\.npy' \(the --q file .*q\.npy\)$/,
  );
  expect(() => outputs.plan('out', file('q-link.npy'))).toThrow(/not an input for --out .*\(the --q file /);
  outputs.plan('out', file('o.npy'));
  expect(() => outputs.plan('mask-out', path.join(dir, 'sub', '..', 'o.npy'))).toThrow(
    /^Expected a file other than the --out output for --mask-out but received /,
  );
  outputs.plan('mask-out', file('missing.npy')); // an input that does not exist is reported when it is read
});

test('SIGINT while the work runs removes what was staged and still ends the process by the signal', () => {
  const script = `
    const fs = require('fs');
    const { OutputFiles, writeAllOrNothing } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'cli', 'output.js'))});
    const outputs = new OutputFiles({});
    const target = ${JSON.stringify(file('o.npy'))};
    outputs.plan('out', target);
    writeAllOrNothing(outputs, async () => {
      outputs.stage(target, (temp) => fs.writeFileSync(temp, 'partial'));
      process.kill(process.pid, 'SIGINT');
      await new Promise((resolve) => setTimeout(resolve, 10000));
    });
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60000 });
  expect({ signal: r.signal, stderr: r.stderr }).toEqual({ signal: 'SIGINT', stderr: '' });
  expect(listing()).toEqual([]);
});
