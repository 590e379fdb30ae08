// Jest setup file (setupFilesAfterEnv, only while NABLA_TEST_PROGRESS names a file): appends one
// line when the test file is loaded and one at the start and at the end of every test:
//   <ISO time> load|start|end <test file> [› <full test name>]
// Written synchronously, so the lines are on disk even when the process is killed: a sync native
// call that never returns (a kernel that never finishes) blocks the JS thread, jest's own timeout
// cannot fire, and the last "start" without its "end" names the test that hung
// (bench/jest-files.sh reads it that way).
'use strict';
const fs = require('fs');
const path = require('path');

const progressFile = process.env.NABLA_TEST_PROGRESS;
if (progressFile) {
  const file = () => path.relative(process.cwd(), expect.getState().testPath ?? '');
  const note = (what, name) =>
    fs.appendFileSync(
      progressFile,
      `${new Date().toISOString()} ${what} ${file()}${name === undefined ? '' : ` › ${name}`}\n`,
    );
  note('load');
  beforeEach(() => note('start', expect.getState().currentTestName));
  afterEach(() => note('end', expect.getState().currentTestName));
}
