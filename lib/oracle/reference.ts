// A slow, obviously correct float64 reference of NABLA (docs/nabla.md sections 1-4) for small
// shapes: the oracle of the jest suites and of bench/gpu-check.js. Inputs are plain values in
// [B, H, S, D] row-major order. Blocks are given by a token -> block map (Dims4.blocks): any
// partition of the sequence into blocks, such as the tiles of a ragged token grid; without one,
// token t is in block floor(t / 64).
import { BLOCK_SIZE } from '../shapes';

export interface Dims4 {
  B: number;
  H: number;
  S: number;
  D: number;
  /** Block of every token [S] (ids 0..nb-1, each used); default floor(t / 64). */
  blocks?: Int32Array;
}

/** Block of token t and the block count under a Dims4's map. */
function blockMap({ S, blocks }: Dims4): { of: (t: number) => number; count: number } {
  if (!blocks) return { of: (t) => Math.floor(t / BLOCK_SIZE), count: S / BLOCK_SIZE };
  let count = 0;
  for (const b of blocks) count = Math.max(count, b + 1);
  return { of: (t) => blocks[t], count };
}

/** qa[b,h,i,:] = mean of x[b,h,t,:] over the tokens t of block i. */
export function refPool(x: ArrayLike<number>, dims: Dims4): Float64Array {
  const { B, H, S, D } = dims;
  const map = blockMap(dims);
  const nb = map.count;
  const out = new Float64Array(B * H * nb * D);
  const members = new Float64Array(nb);
  for (let t = 0; t < S; t++) members[map.of(t)]++;
  for (let bh = 0; bh < B * H; bh++)
    for (let t = 0; t < S; t++)
      for (let d = 0; d < D; d++) out[(bh * nb + map.of(t)) * D + d] += x[(bh * S + t) * D + d];
  for (let bh = 0; bh < B * H; bh++)
    for (let i = 0; i < nb; i++) for (let d = 0; d < D; d++) out[(bh * nb + i) * D + d] /= members[i];
  return out;
}

export interface RefMaskOptions {
  threshold: number;
  method?: 'cdf' | 'topk';
  blockGrid?: [number, number, number];
  sta?: [number, number, number];
  frames?: number[];
  /** Frame-causal: block j is hidden from block i when frame(j) > frame(i) (frames from blockGrid). */
  causal?: boolean;
}

export interface RefMask {
  dense: Uint8Array; // [B,H,nq,nk]
  prob: Float64Array; // P before selection
  /** running sum at each block in ascending order (for the cdf boundary check) */
  runningAt: Float64Array;
}

/** Whether blocks a and b of block grid g are within the STA window w: |dt| <= wT/2, |dh| <= wH/2, |dw| <= wW/2. */
export function staPair(g: [number, number, number], w: [number, number, number], a: number, b: number): boolean {
  const plane = g[1] * g[2];
  const [ta, ha, wa] = [Math.floor(a / plane), Math.floor((a % plane) / g[2]), a % g[2]];
  const [tb, hb, wb] = [Math.floor(b / plane), Math.floor((b % plane) / g[2]), b % g[2]];
  return (
    Math.abs(ta - tb) <= Math.floor(w[0] / 2) &&
    Math.abs(ha - hb) <= Math.floor(w[1] / 2) &&
    Math.abs(wa - wb) <= Math.floor(w[2] / 2)
  );
}

/** The document (frame range [frames[d], frames[d+1])) a block's frame falls in. */
export function docOfBlock(g: [number, number, number], frames: number[], block: number): number {
  const t = Math.floor(block / (g[1] * g[2]));
  for (let d = 0; d + 1 < frames.length; d++) if (t >= frames[d] && t < frames[d + 1]) return d;
  throw new Error('block outside frames');
}

/**
 * The ascending running sum of each block of a row of probabilities: equal values put the higher
 * index first, so the lower index is reached last and kept first (the rule of both backends).
 */
export function ascendingRunningSums(row: ArrayLike<number>): Float64Array {
  const n = row.length;
  const order = Array.from({ length: n }, (_, j) => j).sort((x, y) => row[x] - row[y] || y - x);
  const running = new Float64Array(n);
  let sum = 0;
  for (const j of order) running[j] = sum += row[j];
  return running;
}

export function refMask(q: ArrayLike<number>, k: ArrayLike<number>, qd: Dims4, kS: number, o: RefMaskOptions): RefMask {
  const { B, H, D } = qd;
  const kd: Dims4 = { B, H, S: kS, D, blocks: qd.blocks };
  const nq = blockMap(qd).count,
    nk = blockMap(kd).count;
  const qa = refPool(q, qd);
  const ka = refPool(k, kd);
  const dense = new Uint8Array(B * H * nq * nk);
  const prob = new Float64Array(B * H * nq * nk);
  const runningAt = new Float64Array(B * H * nq * nk);
  const doc = (blk: number) => (o.frames && o.blockGrid ? docOfBlock(o.blockGrid, o.frames, blk) : 0);
  const frameOf = (blk: number) => (o.blockGrid ? Math.floor(blk / (o.blockGrid[1] * o.blockGrid[2])) : 0);
  // j is visible from i: same document and, causal, not a later frame
  const visible = (i: number, j: number) => doc(i) === doc(j) && !(o.causal && frameOf(j) > frameOf(i));
  for (let bh = 0; bh < B * H; bh++)
    for (let i = 0; i < nq; i++) {
      const r = bh * nq + i;
      const logits: number[] = [];
      for (let j = 0; j < nk; j++) {
        if (!visible(i, j)) {
          logits.push(-Infinity);
          continue;
        }
        let s = 0;
        for (let d = 0; d < D; d++) s += qa[(bh * nq + i) * D + d] * ka[(bh * nk + j) * D + d];
        logits.push(s / Math.sqrt(D));
      }
      const m = Math.max(...logits);
      const e = logits.map((x) => (x === -Infinity ? 0 : Math.exp(x - m)));
      const z = e.reduce((a, b) => a + b, 0);
      const p = e.map((x) => x / z);
      p.forEach((x, j) => (prob[r * nk + j] = x));
      const cands = [...Array(nk).keys()].filter((j) => visible(i, j));
      // ascending by probability; equal values: higher index first (the lower index is kept first)
      cands.sort((a, b) => p[a] - p[b] || b - a);
      const keep = new Uint8Array(nk);
      if ((o.method ?? 'cdf') === 'topk') {
        const n = Math.min(cands.length, Math.max(1, Math.floor(o.threshold * cands.length)));
        for (const j of cands.slice(cands.length - n)) keep[j] = 1;
      } else {
        let run = 0;
        for (const j of cands) {
          run += p[j];
          runningAt[r * nk + j] = run;
          if (run >= 1 - o.threshold) keep[j] = 1;
        }
      }
      for (let j = 0; j < nk; j++) {
        if (o.sta && o.blockGrid && staPair(o.blockGrid, o.sta, i, j)) keep[j] = 1;
        if (!visible(i, j)) keep[j] = 0;
        dense[r * nk + j] = keep[j];
      }
    }
  return { dense, prob, runningAt };
}

/** Rounds a value to a storage type (Math.fround for fp32; fp16/bf16 round trips for those). */
export type Rounding = (x: number) => number;

/**
 * out = softmax(q k^T * scale) v over kept blocks ([B,H,nq,nk] 0/1, or all when undefined); rows
 * with no kept block are zeros. Without `round`, fp64 throughout (the reference). With it, the
 * naive computation in the inputs' precision, as PyTorch's reference does it (FlashAttention's
 * attention_ref with upcast=False): q*scale rounded, scores accumulated in fp32 and rounded,
 * exp and their sum in fp32, probabilities rounded, P.V accumulated in fp32 and rounded.
 */
export function refAttention(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  qd: Dims4,
  kS: number,
  Dv: number,
  scale: number,
  dense?: Uint8Array,
  round?: Rounding,
): Float64Array {
  const { B, H, S, D } = qd;
  const qMap = blockMap(qd),
    kMap = blockMap({ B, H, S: kS, D, blocks: qd.blocks });
  const nq = qMap.count,
    nk = kMap.count;
  const out = new Float64Array(B * H * S * Dv);
  const rnd: Rounding = round ?? ((x) => x);
  // fp32 accumulation when rounding (the naive computation), fp64 otherwise. Math.fround is called
  // directly in separate loops: through a variable holding either function the call is not inlined
  // and the rounded reference takes about 6x as long.
  const fp32 = round !== undefined;
  const qs = new Float64Array(D);
  const s = new Float64Array(kS);
  const acc = new Float64Array(Dv);
  for (let bh = 0; bh < B * H; bh++)
    for (let i = 0; i < S; i++) {
      const row = (bh * nq + qMap.of(i)) * nk;
      const keys: number[] = [];
      for (let t = 0; t < kS; t++) if (!dense || dense[row + kMap.of(t)]) keys.push(t);
      if (keys.length === 0) continue;
      for (let d = 0; d < D; d++) qs[d] = rnd(q[(bh * S + i) * D + d] * scale);
      let m = -Infinity;
      for (const t of keys) {
        const ko = (bh * kS + t) * D;
        let dot = 0;
        if (fp32) for (let d = 0; d < D; d++) dot = Math.fround(dot + qs[d] * k[ko + d]);
        else for (let d = 0; d < D; d++) dot += qs[d] * k[ko + d];
        s[t] = rnd(dot);
        if (s[t] > m) m = s[t];
      }
      let l = 0;
      for (const t of keys) {
        s[t] = fp32 ? Math.fround(Math.exp(s[t] - m)) : Math.exp(s[t] - m);
        l = fp32 ? Math.fround(l + s[t]) : l + s[t];
      }
      acc.fill(0);
      for (const t of keys) {
        const p = rnd(s[t] / l);
        const vo = (bh * kS + t) * Dv;
        if (fp32) for (let d = 0; d < Dv; d++) acc[d] = Math.fround(acc[d] + p * v[vo + d]);
        else for (let d = 0; d < Dv; d++) acc[d] += p * v[vo + d];
      }
      const oo = (bh * S + i) * Dv;
      for (let d = 0; d < Dv; d++) out[oo + d] = rnd(acc[d]);
    }
  return out;
}
