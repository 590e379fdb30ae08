// @ts-check
// Shared pieces of the benchmark scripts: wall and CPU timing, and markdown tables. Inputs
// (waveTokens, uniform, rng), FLOPs (attentionFlops), medians and the oracle come from the
// compiled package (dist/), so bench/ and test/ share one copy of each.
'use strict';
const { summarize } = require('../dist/timing');

/**
 * Median, min and max wall time of `iters` timed runs after `warmup` untimed ones (ms), and the
 * least process CPU time of a run (all threads, ms): on a shared machine whose cores are also
 * busy elsewhere, CPU time shows the work a run did without the waiting.
 * @param {() => unknown} fn
 * @param {{ warmup?: number, iters?: number }} [options]
 */
async function timeIt(fn, { warmup = 1, iters = 5 } = {}) {
  for (let i = 0; i < warmup; i++) await fn();
  /** @type {number[]} */
  const times = [];
  let cpuMin = Infinity;
  for (let i = 0; i < iters; i++) {
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const cpu = process.cpuUsage(cpu0);
    cpuMin = Math.min(cpuMin, (cpu.user + cpu.system) / 1e3);
  }
  return { ...summarize(times), cpuMin };
}

/**
 * A markdown table from rows of objects (columns in the order of the first row).
 * @param {Record<string, unknown>[]} rows
 */
function markdownTable(rows) {
  if (rows.length === 0) return '';
  const cols = Object.keys(rows[0]);
  /** @param {unknown} v */
  const cell = (v) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : String(v));
  const lines = [`| ${cols.join(' | ')} |`, `|${cols.map(() => '---').join('|')}|`];
  for (const row of rows) lines.push(`| ${cols.map((c) => cell(row[c])).join(' | ')} |`);
  return lines.join('\n');
}

/**
 * The positive integer after `--name` on the command line, or `fallback`; anything else exits 2
 * with one line naming the script and the flag.
 * @param {string} script
 * @param {string} name
 * @param {number} fallback
 */
function intFlag(script, name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`${script}: --${name} needs a positive integer, got ${process.argv[i + 1]}`);
    process.exit(2);
  }
  return value;
}

module.exports = { timeIt, markdownTable, intFlag };
