// Jest reporter: ends every run with one plain line "N passed, N failed, N skipped", so that a run
// which executed no test is visible to whoever reads the log; just before it, why tests were
// skipped (a test file that skips names its reason in a skipped test's title, e.g. the CUDA suite).
// The lines are written when the process exits, so they come after jest's own summary.
'use strict';
const path = require('path');

class SummaryReporter {
  onRunComplete(_contexts, results) {
    const lines = [];
    for (const file of results.testResults) {
      const skipped = file.testResults.filter((t) => t.status === 'pending' || t.status === 'skipped');
      if (skipped.length === 0) continue;
      const reason = skipped.find((t) => /skipped/i.test(t.title));
      const where = path.relative(process.cwd(), file.testFilePath);
      lines.push(`skipped ${skipped.length} in ${where}${reason ? `: ${reason.title}` : ''}`);
    }
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    lines.push('', `${results.numPassedTests} passed, ${failed} failed, ${results.numPendingTests} skipped`);
    process.on('exit', () => process.stderr.write(`${lines.join('\n')}\n`));
  }
}

module.exports = SummaryReporter;
