// Realistic synthetic q, k, v for benchmarks: tokens of a video latent whose features are smooth
// functions of the token's (t, y, x) plus noise, in tile order (docs/nabla.md section 3), so block maps
// are local and per-head different as in real DiTs (random inputs give flat maps and dense masks).
//
// Channel pair (2m, 2m+1) of a head holds a * (cos theta_m, sin theta_m) with
//   theta_m(t, y, x) = ft*t + fy*y + fx*x + phase,
// shared by q and k (as RoPE does), so q_i . k_j = sum_m a_m^2 cos(theta_m(p_i) - theta_m(p_j)) + noise:
// a function of the relative position, largest at the query itself. Heads draw their own
// frequency scales (some heads look far in time, some only nearby in space).
import { DType, HostData, bfloat16FromBits, floatToFloat16, storageOf } from './dtype';
import { TokenGrid } from './shapes';
import { Tensor } from './tensor';
import { tileOrder } from './tiles';

/** Deterministic uniform numbers in [0, 1) (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NOISE_BITS = 18;

/** A table of uniform noise in [-amplitude, amplitude); each token reads `width` values at a hashed offset. */
function noiseTable(seed: number, amplitude: number, width: number): Float32Array {
  const r = rng(seed);
  const table = new Float32Array((1 << NOISE_BITS) + width);
  for (let i = 0; i < table.length; i++) table[i] = amplitude * (2 * r() - 1);
  return table;
}

/** Rounds fp32 values to bf16 bits in bulk (reads the fp32 bit patterns directly). */
function toBfloat16Bits(src: Float32Array, dst: Uint16Array, offset: number): void {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < u.length; i++) dst[offset + i] = bfloat16FromBits(u[i]);
}

export interface SyntheticOptions {
  /** Seed of the waves (shared by q and k); default 1. */
  seed?: number;
  /** Seed of the per-token noise; default seed + 1000. */
  noiseSeed?: number;
  /** Noise amplitude relative to the waves (uniform in [-noise, noise)); default 0.5. */
  noise?: number;
}

/**
 * [B, H, T*Ht*Wt, D] tokens of a (T, Ht, Wt) grid in tile order: per (head, channel pair) a plane
 * wave over (t, y, x), plus noise. Cost is a few multiply-adds per value (no Math.sin in the inner
 * loop: e^{i theta} factors into per-frame, per-row and per-column tables).
 */
export function structuredTokens(
  batch: number,
  heads: number,
  grid: TokenGrid,
  headDim: number,
  type: DType = 'float32',
  options: SyntheticOptions = {},
): Tensor {
  const [T, Ht, Wt] = grid;
  const S = T * Ht * Wt;
  const D = headDim;
  const pairs = D >> 1;
  const seed = options.seed ?? 1;
  const noise = noiseTable(options.noiseSeed ?? seed + 1000, options.noise ?? 0.5, D);
  const data: HostData = new (storageOf(type))(batch * heads * S * D);
  const plane = type === 'float32' ? (data as Float32Array) : new Float32Array(S * D);
  const positionOf = new Int32Array(S); // raster index -> tile-order position (tileOrder inverted)
  tileOrder(grid).forEach((raster, pos) => (positionOf[raster] = pos));

  const tRe = new Float64Array(pairs * T),
    tIm = new Float64Array(pairs * T); // a * e^{i(ft t + phase)}, [m][t]
  const yRe = new Float64Array(pairs * Ht),
    yIm = new Float64Array(pairs * Ht); // e^{i fy y}, [m][y]
  const xRe = new Float64Array(pairs * Wt),
    xIm = new Float64Array(pairs * Wt); // e^{i fx x}, [x][m]
  const rowRe = new Float64Array(pairs),
    rowIm = new Float64Array(pairs);

  for (let bh = 0; bh < batch * heads; bh++) {
    // q and k of one head must share waves: they depend on (seed, head), not on the batch item's noise
    const r = rng(seed * 7919 + (bh % heads) * 104729);
    const temporal = 0.05 + 0.6 * r(); // radians per frame at most
    const spatial = 0.1 + 0.5 * r(); // radians per token at most
    for (let m = 0; m < pairs; m++) {
      const ft = temporal * (2 * r() - 1),
        fy = spatial * (2 * r() - 1),
        fx = spatial * (2 * r() - 1);
      const phase = 2 * Math.PI * r();
      const amplitude = 0.5 + r();
      for (let t = 0; t < T; t++) {
        tRe[m * T + t] = amplitude * Math.cos(ft * t + phase);
        tIm[m * T + t] = amplitude * Math.sin(ft * t + phase);
      }
      for (let y = 0; y < Ht; y++) {
        yRe[m * Ht + y] = Math.cos(fy * y);
        yIm[m * Ht + y] = Math.sin(fy * y);
      }
      for (let x = 0; x < Wt; x++) {
        xRe[x * pairs + m] = Math.cos(fx * x);
        xIm[x * pairs + m] = Math.sin(fx * x);
      }
    }
    const hashSeed = Math.imul(bh + 1, 0x85ebca6b);
    const planeBase = type === 'float32' ? bh * S * D : 0;
    for (let t = 0; t < T; t++)
      for (let y = 0; y < Ht; y++) {
        for (let m = 0; m < pairs; m++) {
          const a = tRe[m * T + t],
            b = tIm[m * T + t],
            c = yRe[m * Ht + y],
            d = yIm[m * Ht + y];
          rowRe[m] = a * c - b * d;
          rowIm[m] = a * d + b * c;
        }
        const rasterRow = (t * Ht + y) * Wt;
        for (let x = 0; x < Wt; x++) {
          const pos = positionOf[rasterRow + x];
          const out = planeBase + pos * D;
          const n = Math.imul(pos ^ hashSeed, 0x9e3779b1) >>> (32 - NOISE_BITS);
          const xb = x * pairs;
          for (let m = 0; m < pairs; m++) {
            const c = xRe[xb + m],
              s = xIm[xb + m];
            plane[out + 2 * m] = rowRe[m] * c - rowIm[m] * s + noise[n + 2 * m];
            plane[out + 2 * m + 1] = rowRe[m] * s + rowIm[m] * c + noise[n + 2 * m + 1];
          }
          if (D & 1) plane[out + D - 1] = noise[n + D - 1];
        }
      }
    if (type === 'bfloat16') toBfloat16Bits(plane, data as Uint16Array, bh * S * D);
    else if (type === 'float16')
      for (let i = 0; i < plane.length; i++) (data as Uint16Array)[bh * S * D + i] = floatToFloat16(plane[i]);
  }
  return { type, dims: [batch, heads, S, D], data };
}

/** q, k (shared waves, own noise) and v (own waves) for a benchmark. */
export function syntheticQKV(
  batch: number,
  heads: number,
  grid: TokenGrid,
  headDim: number,
  type: DType = 'float32',
  seed = 1,
): { q: Tensor; k: Tensor; v: Tensor } {
  return {
    q: structuredTokens(batch, heads, grid, headDim, type, { seed, noiseSeed: seed + 1 }),
    k: structuredTokens(batch, heads, grid, headDim, type, { seed, noiseSeed: seed + 2 }),
    v: structuredTokens(batch, heads, grid, headDim, type, { seed: seed + 3, noiseSeed: seed + 4 }),
  };
}

/** (t, y, x) of every tile-order position of a grid: [S][3], from tileOrder (raster = (t*Ht + y)*Wt + x). */
export function tileCoordinates(grid: TokenGrid): Int32Array {
  const [, Ht, Wt] = grid;
  const order = tileOrder(grid);
  const coords = new Int32Array(order.length * 3);
  order.forEach((raster, pos) => {
    coords[pos * 3] = Math.floor(raster / (Ht * Wt));
    coords[pos * 3 + 1] = Math.floor(raster / Wt) % Ht;
    coords[pos * 3 + 2] = raster % Wt;
  });
  return coords;
}

/** Uniform random values in [-1, 1). */
export function uniform(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = r() * 2 - 1;
  return out;
}

/** Standard normal samples times `scale` (Box-Muller, the cosine half). */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12),
      v = r();
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

/**
 * fp32 values [B, H, T*Ht*Wt, D] in tile order: per (head, channel) one plane wave over (t, y, x),
 * 2 sin(ft t + fy y + fx x + phase), plus uniform noise in [-noise, noise). The recipe of the inputs
 * of the measurements in bench/RESULTS.md (bench/gpu-check.js, bench/cpu-attention.js), kept as it
 * is so that later runs stay comparable; `structuredTokens` is the faster recipe of `nabla bench`.
 */
export function waveTokens(B: number, H: number, grid: TokenGrid, D: number, seed: number, noise = 0.5): Float32Array {
  const S = grid[0] * grid[1] * grid[2];
  const r = rng(seed);
  const out = new Float32Array(B * H * S * D);
  // per (head, channel): frequencies (ft, fy, fx) in [-0.25, 0.25) and a phase in [0, 2 pi)
  const waves = new Float32Array(B * H * D * 4);
  for (let i = 0; i < waves.length; i++) waves[i] = i % 4 === 3 ? r() * 6.283 : (r() - 0.5) * 0.5;
  const coords = tileCoordinates(grid);
  for (let bh = 0; bh < B * H; bh++)
    for (let d = 0; d < D; d++) {
      const w = (bh * D + d) * 4;
      for (let pos = 0; pos < S; pos++) {
        const phase =
          waves[w] * coords[pos * 3] +
          waves[w + 1] * coords[pos * 3 + 1] +
          waves[w + 2] * coords[pos * 3 + 2] +
          waves[w + 3];
        out[(bh * S + pos) * D + d] = 2 * Math.sin(phase) + noise * (r() * 2 - 1);
      }
    }
  return out;
}
