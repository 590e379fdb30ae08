// Real attention shapes of video DiTs (docs/nabla.md section 5): the one list the code reads
// (`nabla bench --preset`, bench/gpu-check.js); the tables in README.md and docs/ restate it, test/bench.test.ts pins it.
import type { StaWindow, TokenGrid } from './shapes';

export interface Preset {
  name: string;
  /** The model and video the shape comes from. */
  model: string;
  heads: number;
  headDim: number;
  /** Token grid (latent frames T, token rows Ht, token cols Wt); ragged grids have smaller edge tiles. */
  grid: TokenGrid;
  /** The CDF threshold the reference pipeline uses for this model. */
  threshold: number;
  /** The STA window (blocks) the reference pipeline ORs in, if any. */
  sta?: StaWindow;
}

export const PRESETS: readonly Preset[] = [
  {
    name: 'wan2.1-14b-720p',
    model: 'Wan2.1 T2V 14B, 81 frames, 1280x640',
    heads: 40,
    headDim: 128,
    grid: [21, 40, 80],
    threshold: 0.7,
  },
  // the full 1280x720 latent: 45 token rows, the bottom tile row 5 tokens high (ragged, no cropping)
  {
    name: 'wan2.1-14b-720p-full',
    model: 'Wan2.1 T2V 14B, 81 frames, 1280x720',
    heads: 40,
    headDim: 128,
    grid: [21, 45, 80],
    threshold: 0.7,
  },
  {
    name: 'wan2.1-14b-480p',
    model: 'Wan2.1 T2V 14B, 81 frames, 832x480 crop',
    heads: 40,
    headDim: 128,
    grid: [21, 24, 48],
    threshold: 0.7,
  },
  {
    name: 'wan2.1-14b-720p-121f',
    model: 'Wan2.1 T2V 14B, 121 frames, 1280x640',
    heads: 40,
    headDim: 128,
    grid: [31, 40, 80],
    threshold: 0.7,
  },
  {
    name: 'kandinsky5-lite-10s',
    model: 'Kandinsky 5 Lite, 768x512, 10 s',
    heads: 28,
    headDim: 64,
    grid: [61, 32, 48],
    threshold: 0.9,
    sta: [11, 3, 3],
  },
  // Pro HD: the references use 0.7-0.8; 0.8 is the upper (safer) end.
  {
    name: 'kandinsky5-pro-10s-hd',
    model: 'Kandinsky 5 Pro, 1280x768, 10 s',
    heads: 32,
    headDim: 128,
    grid: [61, 48, 80],
    threshold: 0.8,
    sta: [11, 3, 3],
  },
];

/** Thresholds swept where no preset chooses one (`nabla bench`, bench/gpu-check.js, bench/cpu-attention.js). */
export const THRESHOLD_SWEEP: readonly number[] = [0.4, 0.7, 0.9];

/** The preset of the timings in bench/RESULTS.md and the GPU check's large shape. */
export const REFERENCE_PRESET = 'wan2.1-14b-720p';

export const PRESET_NAMES: readonly string[] = PRESETS.map((p) => p.name);

export function findPreset(name: string): Preset | undefined {
  return PRESETS.find((p) => p.name === name);
}
