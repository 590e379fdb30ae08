// Jest global setup: compile lib/ to dist/ once before any test file runs, so that tests which
// spawn the CLI or load dist/ never see a stale build (and no test rewrites dist/ while another
// reads it). NABLA_JEST_NO_BUILD=1 says dist/ is already built: bench/jest-files.sh builds it once
// and then runs several jest processes at a time, none of which may rewrite it under the others.
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');

module.exports = async () => {
  if (process.env.NABLA_JEST_NO_BUILD === '1') return;
  const root = path.resolve(__dirname, '..');
  const r = spawnSync('npm', ['run', '--silent', 'build:ts'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm run build:ts failed:\n${r.stdout}${r.stderr}`);
};
