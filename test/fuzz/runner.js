#!/usr/bin/env node
// Runs fuzz cases [from, to) of one seed in this process and reports on stdout, one line each:
//   S <index> <json>     before case <index> runs, with { entry, label } (the last one seen names a
//                        crash or a hang)
//   P <json>             a problem: { index, entry, label, kind, detail }
//   D <json>             done: tallies of the outcomes
// Usage: node test/fuzz/runner.js <seed> <from> <to>
'use strict';
const fs = require('fs');
const { makeCase, cleanup } = require('./cases');

// Documented op failures: Errors with these codes (README "Errors"); file errors for loadNpy.
const DOCUMENTED_CODE = /^(ERR_NABLA_[A-Z_]+|cuda[A-Za-z]+)$/;
const FILE_CODE = /^E[A-Z]+$/;
const FORM = /^Expected .+ for .+ but received .+/s;

const say = (line) => fs.writeSync(1, line + '\n');

function describeError(err) {
  if (!(err instanceof Error)) return `threw a non-Error ${typeof err}`;
  return `${err.constructor.name}${err.code ? ` [${err.code}]` : ''}: ${err.message.split('\n')[0].slice(0, 200)}`;
}

function errorInForm(err, c) {
  if ((err instanceof TypeError || err instanceof RangeError) && FORM.test(err.message)) return true;
  if (err instanceof Error && typeof err.code === 'string') {
    if (DOCUMENTED_CODE.test(err.code)) return true;
    if (c.files && FILE_CODE.test(err.code)) return true;
  }
  return false;
}

async function main() {
  const [seed, from, to] = process.argv.slice(2).map(Number);
  const tally = { calls: 0, returned: 0, rejected: 0, codeErrors: 0 };
  for (let index = from; index < to; index++) {
    let c;
    say(`S ${index} ${JSON.stringify({ entry: '(building the case)', label: '' })}`);
    try {
      c = makeCase(seed, index);
    } catch (err) {
      say(
        `P ${JSON.stringify({ index, entry: '(case generator)', label: '', kind: 'generator', detail: describeError(err) })}`,
      );
      continue;
    }
    say(`S ${index} ${JSON.stringify({ entry: c.entry, label: c.label })}`);
    const report = (kind, detail) =>
      say(`P ${JSON.stringify({ index, entry: c.entry, label: c.label, kind, detail })}`);
    tally.calls++;
    let result;
    try {
      result = await c.run();
    } catch (err) {
      tally.rejected++;
      if (err && typeof err.code === 'string') tally.codeErrors++;
      if (!errorInForm(err, c)) report('outsideForm', describeError(err));
      else if (c.expect === 'valid' && !(err.code && DOCUMENTED_CODE.test(err.code)))
        report('rejectedValid', describeError(err));
      continue;
    }
    tally.returned++;
    if (c.expect === 'invalid') {
      report('wronglyAccepted', 'returned instead of throwing');
      continue;
    }
    let problem;
    try {
      problem = c.check(result);
    } catch (err) {
      problem = `checking the result threw ${describeError(err)}`;
    }
    if (problem) report('malformed', problem);
  }
  cleanup();
  say(`D ${JSON.stringify(tally)}`);
}

main().catch((err) => {
  say(
    `P ${JSON.stringify({ index: -1, entry: '(runner)', label: '', kind: 'generator', detail: describeError(err) })}`,
  );
  process.exitCode = 1;
});
