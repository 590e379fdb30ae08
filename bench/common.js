// Shared pieces of the benchmark scripts: timing, realistic inputs, tables.
'use strict';

/**
 * Median, min and max wall time of `iters` timed runs after `warmup` untimed ones (ms), and the
 * least process CPU time of a run (all threads, ms): on a shared machine whose cores are also
 * busy elsewhere, CPU time shows the work a run did without the waiting.
 */
async function timeIt(fn, { warmup = 1, iters = 5 } = {}) {
  for (let i = 0; i < warmup; i++) await fn();
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
  times.sort((a, b) => a - b);
  return { median: median(times), min: times[0], max: times[times.length - 1], cpuMin };
}

/** The median of ascending `sorted` (the mean of the two middle values for an even count). */
function median(sorted) {
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

// Deterministic uniform numbers in [0, 1) (mulberry32), the package's own generator.
const { rng } = require('../dist/synthetic');

/**
 * q or k like a video DiT's: smooth functions of each token's (t, y, x) plus noise, laid out in
 * tile order, so block maps are local (neighbouring tiles score high) as in real models.
 * Returns fp32 values [B, H, T*Ht*Wt, D]. (lib/synthetic.ts makes the inputs of `nabla bench`; this
 * independent plane-wave recipe makes those of the measurements recorded in RESULTS.md, kept as is
 * so that later runs stay comparable.)
 */
function waveTokens(B, H, grid, D, seed, noise = 0.5) {
  const [T, Ht, Wt] = grid;
  const S = T * Ht * Wt;
  const r = rng(seed);
  const out = new Float32Array(B * H * S * D);
  const tilesPerRow = Wt / 8;
  // per (head, channel): a low frequency plane wave over (t, y, x)
  const waves = new Float32Array(B * H * D * 4);
  for (let i = 0; i < waves.length; i++) waves[i] = i % 4 === 3 ? r() * 6.283 : (r() - 0.5) * 0.5;
  const coords = new Float32Array(S * 3);
  for (let pos = 0; pos < S; pos++) {
    const t = Math.floor(pos / (Ht * Wt));
    const inFrame = pos % (Ht * Wt);
    const tile = Math.floor(inFrame / 64), within = inFrame % 64;
    coords[pos * 3] = t;
    coords[pos * 3 + 1] = Math.floor(tile / tilesPerRow) * 8 + Math.floor(within / 8);
    coords[pos * 3 + 2] = (tile % tilesPerRow) * 8 + (within % 8);
  }
  for (let bh = 0; bh < B * H; bh++)
    for (let d = 0; d < D; d++) {
      const w = (bh * D + d) * 4;
      const [ft, fy, fx, ph] = [waves[w], waves[w + 1], waves[w + 2], waves[w + 3]];
      for (let pos = 0; pos < S; pos++) {
        const phase = ft * coords[pos * 3] + fy * coords[pos * 3 + 1] + fx * coords[pos * 3 + 2] + ph;
        out[(bh * S + pos) * D + d] = 2 * Math.sin(phase) + noise * (r() * 2 - 1);
      }
    }
  return out;
}

/** Uniform random values in [-1, 1). */
function uniform(n, seed) {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = r() * 2 - 1;
  return out;
}

/** A markdown table from rows of objects (columns in the order of the first row). */
function markdownTable(rows) {
  if (rows.length === 0) return '';
  const cols = Object.keys(rows[0]);
  const cell = (v) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : String(v));
  const lines = [`| ${cols.join(' | ')} |`, `|${cols.map(() => '---').join('|')}|`];
  for (const row of rows) lines.push(`| ${cols.map((c) => cell(row[c])).join(' | ')} |`);
  return lines.join('\n');
}

/** Attention FLOPs of the kept blocks: 4 * B * H * Sq * Skv * D * density. */
function attentionFlops(B, H, Sq, Skv, D, density = 1) {
  return 4 * B * H * Sq * Skv * D * density;
}

module.exports = { timeIt, median, rng, waveTokens, uniform, markdownTable, attentionFlops };
