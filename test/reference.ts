// A slow, obviously correct float64 reference of NABLA (docs/nabla.md sections 1-4) for small shapes.
// Inputs are plain fp32/fp64 values in [B, H, S, D] row-major order.
import { rng } from '../lib/synthetic';

// Deterministic pseudo-random numbers (mulberry32) so failures reproduce.
export { rng };

export interface Dims4 {
  B: number;
  H: number;
  S: number;
  D: number;
}

/** qa[b,h,i,:] = mean of x[b,h,64i..64i+63,:]. */
export function refPool(x: ArrayLike<number>, { B, H, S, D }: Dims4): Float64Array {
  const nb = S / 64;
  const out = new Float64Array(B * H * nb * D);
  for (let bh = 0; bh < B * H; bh++)
    for (let i = 0; i < nb; i++)
      for (let d = 0; d < D; d++) {
        let sum = 0;
        for (let t = 0; t < 64; t++) sum += x[(bh * S + i * 64 + t) * D + d];
        out[(bh * nb + i) * D + d] = sum / 64;
      }
  return out;
}

export interface RefMaskOptions {
  threshold: number;
  method?: 'cdf' | 'topk';
  blockGrid?: [number, number, number];
  sta?: [number, number, number];
  frames?: number[];
}

export interface RefMask {
  dense: Uint8Array; // [B,H,nq,nk]
  prob: Float64Array; // P before selection
  /** running sum at each block in ascending order (for the cdf boundary check) */
  runningAt: Float64Array;
}

export function staPair(g: [number, number, number], w: [number, number, number], a: number, b: number): boolean {
  const plane = g[1] * g[2];
  const [ta, ha, wa] = [Math.floor(a / plane), Math.floor((a % plane) / g[2]), a % g[2]];
  const [tb, hb, wb] = [Math.floor(b / plane), Math.floor((b % plane) / g[2]), b % g[2]];
  return Math.abs(ta - tb) <= Math.floor(w[0] / 2) && Math.abs(ha - hb) <= Math.floor(w[1] / 2) && Math.abs(wa - wb) <= Math.floor(w[2] / 2);
}

export function docOfBlock(g: [number, number, number], frames: number[], block: number): number {
  const t = Math.floor(block / (g[1] * g[2]));
  for (let d = 0; d + 1 < frames.length; d++) if (t >= frames[d] && t < frames[d + 1]) return d;
  throw new Error('block outside frames');
}

export function refMask(q: ArrayLike<number>, k: ArrayLike<number>, qd: Dims4, kS: number, o: RefMaskOptions): RefMask {
  const { B, H, S, D } = qd;
  const nq = S / 64, nk = kS / 64;
  const qa = refPool(q, qd);
  const ka = refPool(k, { B, H, S: kS, D });
  const dense = new Uint8Array(B * H * nq * nk);
  const prob = new Float64Array(B * H * nq * nk);
  const runningAt = new Float64Array(B * H * nq * nk);
  const doc = (blk: number) => (o.frames && o.blockGrid ? docOfBlock(o.blockGrid, o.frames, blk) : 0);
  for (let bh = 0; bh < B * H; bh++)
    for (let i = 0; i < nq; i++) {
      const r = bh * nq + i;
      const logits: number[] = [];
      for (let j = 0; j < nk; j++) {
        if (doc(i) !== doc(j)) { logits.push(-Infinity); continue; }
        let s = 0;
        for (let d = 0; d < D; d++) s += qa[(bh * nq + i) * D + d] * ka[(bh * nk + j) * D + d];
        logits.push(s / Math.sqrt(D));
      }
      const m = Math.max(...logits);
      const e = logits.map((x) => (x === -Infinity ? 0 : Math.exp(x - m)));
      const z = e.reduce((a, b) => a + b, 0);
      const p = e.map((x) => x / z);
      p.forEach((x, j) => (prob[r * nk + j] = x));
      const cands = [...Array(nk).keys()].filter((j) => doc(i) === doc(j));
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
        if (doc(i) !== doc(j)) keep[j] = 0;
        dense[r * nk + j] = keep[j];
      }
    }
  return { dense, prob, runningAt };
}

/** out = softmax(q k^T * scale) v over kept blocks ([B,H,nq,nk] 0/1, or all when undefined). */
export function refAttention(
  q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>,
  { B, H, S, D }: Dims4, kS: number, Dv: number, scale: number, dense?: Uint8Array,
): Float64Array {
  const nq = S / 64, nk = kS / 64;
  const out = new Float64Array(B * H * S * Dv);
  const logits = new Float64Array(kS);
  for (let bh = 0; bh < B * H; bh++)
    for (let s = 0; s < S; s++) {
      const i = Math.floor(s / 64);
      let m = -Infinity;
      for (let t = 0; t < kS; t++) {
        const kept = !dense || dense[(bh * nq + i) * nk + Math.floor(t / 64)];
        if (!kept) { logits[t] = -Infinity; continue; }
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[(bh * S + s) * D + d] * k[(bh * kS + t) * D + d];
        logits[t] = dot * scale;
        m = Math.max(m, logits[t]);
      }
      if (m === -Infinity) continue; // no kept block: zeros
      let z = 0;
      for (let t = 0; t < kS; t++) if (logits[t] !== -Infinity) z += Math.exp(logits[t] - m);
      for (let t = 0; t < kS; t++) {
        if (logits[t] === -Infinity) continue;
        const w = Math.exp(logits[t] - m) / z;
        for (let c = 0; c < Dv; c++) out[(bh * S + s) * Dv + c] += w * v[(bh * kS + t) * Dv + c];
      }
    }
  return out;
}

/** Standard normal samples. */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12), v = r();
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

/**
 * q/k like a video DiT's: smooth functions of the token's (t, y, x) on a tile-ordered grid plus
 * noise, so block maps are local (nearby blocks score high) rather than uniform.
 */
export function structuredQK(B: number, H: number, grid: [number, number, number], D: number, seed: number, noise = 0.3): Float32Array {
  const [T, Ht, Wt] = grid;
  const S = T * Ht * Wt;
  const r = rng(seed);
  const out = new Float32Array(B * H * S * D);
  const freq = Array.from({ length: B * H * D }, () => [r() * 0.6, r() * 0.6, r() * 0.6, r() * 6.28]);
  const noiseVals = randn(out.length, seed + 1, noise);
  const tilesPerRow = Wt / 8;
  for (let bh = 0; bh < B * H; bh++)
    for (let pos = 0; pos < S; pos++) {
      // tile-order position -> (t, y, x)
      const t = Math.floor(pos / (Ht * Wt));
      const inFrame = pos % (Ht * Wt);
      const tile = Math.floor(inFrame / 64), within = inFrame % 64;
      const y = Math.floor(tile / tilesPerRow) * 8 + Math.floor(within / 8);
      const x = (tile % tilesPerRow) * 8 + (within % 8);
      for (let d = 0; d < D; d++) {
        const [ft, fy, fx, ph] = freq[bh * D + d];
        out[(bh * S + pos) * D + d] = 2 * Math.sin(ft * t + fy * y + fx * x + ph) + noiseVals[(bh * S + pos) * D + d];
      }
    }
  return out;
}
