// Seeded fuzz over every public entry point (test/fuzz/cases.js), run in child processes so that a
// crash or a hang fails the test and names its case. Each call must either return a well-formed
// result or throw a TypeError/RangeError worded `Expected <what> for <param> but received <value>`
// (or an Error with a documented `code`); invalid inputs must be refused.
// NABLA_FUZZ_SEED and NABLA_FUZZ_CALLS change the run; a failing case reruns alone with
//   node test/fuzz/runner.js <seed> <index> <index + 1>
import { spawnSync } from 'child_process';
import * as path from 'path';

const RUNNER = path.join(__dirname, 'fuzz', 'runner.js');
const SEED = Number(process.env.NABLA_FUZZ_SEED ?? 20261129);
const CALLS = Number(process.env.NABLA_FUZZ_CALLS ?? 6000);
const BATCH = 1500;
// generous: a batch takes about a second natively, a few under the sanitizers
const BATCH_TIMEOUT_MS = 120_000;

interface Problem {
  index: number;
  entry: string;
  label: string;
  kind: string;
  detail: string;
}

interface Tally {
  calls: number;
  returned: number;
  rejected: number;
  codeErrors: number;
}

function runAll(): { problems: Problem[]; tally: Tally } {
  const problems: Problem[] = [];
  const tally: Tally = { calls: 0, returned: 0, rejected: 0, codeErrors: 0 };
  for (let from = 0; from < CALLS; ) {
    const to = Math.min(CALLS, from + BATCH);
    const r = spawnSync(process.execPath, [RUNNER, String(SEED), String(from), String(to)], {
      encoding: 'utf8',
      timeout: BATCH_TIMEOUT_MS,
      killSignal: 'SIGKILL',
      maxBuffer: 256 << 20,
    });
    let last = from - 1;
    let lastCase = { entry: '?', label: '' };
    let done = false;
    for (const line of (r.stdout ?? '').split('\n')) {
      if (line.startsWith('S ')) {
        const space = line.indexOf(' ', 2);
        last = Number(line.slice(2, space));
        lastCase = JSON.parse(line.slice(space + 1));
      } else if (line.startsWith('P ')) problems.push(JSON.parse(line.slice(2)));
      else if (line.startsWith('D ')) {
        done = true;
        const t = JSON.parse(line.slice(2)) as Tally;
        for (const key of Object.keys(tally) as (keyof Tally)[]) tally[key] += t[key];
      }
    }
    if (done && r.status === 0) {
      from = to;
      continue;
    }
    // the process died or stalled inside case `last`: record it, count the cases it finished, go on
    const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
    const how = timedOut ? 'hang' : 'crash';
    const detail = timedOut
      ? `no answer within ${BATCH_TIMEOUT_MS / 1000} s`
      : done
        ? `exit status ${r.status} after finishing`
        : `exit ${r.signal ?? r.status} (the process died, or a promise never settled)`;
    const stderr = (r.stderr ?? '').trim().split('\n').slice(-3).join(' | ').slice(0, 300);
    problems.push({
      index: last,
      entry: lastCase.entry,
      label: lastCase.label,
      kind: how,
      detail: stderr ? `${detail}; stderr: ${stderr}` : detail,
    });
    tally.calls += Math.max(0, last - from + 1);
    from = Math.max(last + 1, from + 1);
  }
  return { problems, tally };
}

/** Problems grouped by kind, entry point and message, with the first case of each. */
function summary(problems: Problem[]): string {
  const groups = new Map<string, { n: number; first: Problem }>();
  for (const p of problems) {
    const key = `${p.kind} | ${p.entry} | ${p.detail}`;
    const g = groups.get(key);
    if (g) g.n++;
    else groups.set(key, { n: 1, first: p });
  }
  return [...groups.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(
      ([key, { n, first }]) =>
        `${String(n).padStart(4)} x ${key}\n       first: case ${first.index} (${first.label}); rerun: node test/fuzz/runner.js ${SEED} ${first.index} ${first.index + 1}`,
    )
    .join('\n');
}

describe(`fuzz: ${CALLS} seeded calls over every public entry point (seed ${SEED})`, () => {
  let problems: Problem[] = [];
  const byKind = (kind: string) =>
    problems.filter((p) => p.kind === kind).map((p) => `case ${p.index}: ${p.entry}(${p.label}) -> ${p.detail}`);

  beforeAll(() => {
    const run = runAll();
    problems = run.problems;
    const count = (kind: string) => problems.filter((p) => p.kind === kind).length;
    console.log(
      `fuzz seed ${SEED}: ${run.tally.calls} calls, ${run.tally.returned} returned, ${run.tally.rejected} refused ` +
        `(${run.tally.codeErrors} with a code); crashes ${count('crash')}, hangs ${count('hang')}, ` +
        `wrongly accepted ${count('wronglyAccepted')}, errors outside the form ${count('outsideForm')}, ` +
        `valid inputs refused ${count('rejectedValid')}, malformed results ${count('malformed')}` +
        (problems.length ? `\n${summary(problems)}` : ''),
    );
  }, 20 * BATCH_TIMEOUT_MS);

  test('the case generator and runner work', () => expect(byKind('generator')).toEqual([]));
  test('no crash', () => expect(byKind('crash')).toEqual([]));
  test('no hang', () => expect(byKind('hang')).toEqual([]));
  test('every error is a TypeError/RangeError in the documented form, or has a documented code', () =>
    expect(byKind('outsideForm')).toEqual([]));
  test('no invalid input is accepted', () => expect(byKind('wronglyAccepted')).toEqual([]));
  test('no valid input is refused', () => expect(byKind('rejectedValid')).toEqual([]));
  test('every returned result is well-formed (dims, finite outputs for finite inputs, mask lists)', () =>
    expect(byKind('malformed')).toEqual([]));
});
