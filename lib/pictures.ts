// Pictures of block masks and block maps, one panel per (batch, head), for docs and bench runs.
// Panel rows are query blocks (top = block 0), columns key blocks. A panel pixel square ("cell")
// shows one block drawn s x s pixels, or, for masks too large for the image, the mean over f x f
// blocks (then a mask cell is gray in proportion to the blocks kept).
import * as fs from 'fs';
import { encodePng } from './png';
import type { MaskDims } from './mask';

export type Rgb = readonly [number, number, number];

export interface PictureOptions {
  /** Panels drawn: the first (batch, head) pairs in row-major order. Default 16. */
  maxPanels?: number;
  /** Largest width or height in pixels (the image may be smaller). Default 2048. */
  maxSize?: number;
}

export interface PanelLayout {
  /** (batch, head) pairs drawn: pairs 0 .. panels-1 in row-major order. */
  panels: number;
  cols: number;
  rows: number;
  /** Blocks per cell side (1 unless the mask is too large to draw one pixel per block). */
  cellBlocks: number;
  /** Pixels per cell side (s: each block an s x s square when cellBlocks is 1). */
  cellPixels: number;
  /** Panel size in pixels. */
  panelWidth: number;
  panelHeight: number;
  /** Pixels between panels. */
  separator: number;
  width: number;
  height: number;
}

export interface Picture {
  width: number;
  height: number;
  /** RGB, row-major, 3 bytes per pixel. */
  pixels: Uint8Array;
  layout: PanelLayout;
}

export const KEPT_COLOR: Rgb = [255, 255, 255];
export const DROPPED_COLOR: Rgb = [24, 24, 32];
export const SEPARATOR_COLOR: Rgb = [70, 100, 150];
const SEPARATOR = 2;
const MAX_CELL_PIXELS = 32;

/** Viridis at 0, 1/4, 1/2, 3/4, 1; its lightness rises monotonically, so brighter = larger. */
const VIRIDIS: readonly Rgb[] = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

/** A viridis-like color of x in [0, 1] (clamped): linear interpolation of five control colors. */
export function viridis(x: number): Rgb {
  const pos = Math.min(Math.max(Number.isNaN(x) ? 0 : x, 0), 1) * (VIRIDIS.length - 1);
  const i = Math.min(Math.floor(pos), VIRIDIS.length - 2);
  return mix(VIRIDIS[i], VIRIDIS[i + 1], pos - i);
}

/** Panels, cell size and image size for `count` panels of nq x nk blocks. */
export function panelLayout(count: number, nq: number, nk: number, options: PictureOptions = {}): PanelLayout {
  const maxSize = options.maxSize ?? 2048;
  const panels = Math.max(1, Math.min(count, options.maxPanels ?? 16));
  const cols = Math.ceil(Math.sqrt(panels));
  const rows = Math.ceil(panels / cols);
  const room = (n: number) => Math.max(1, maxSize - (n - 1) * SEPARATOR); // pixels left for n panels
  const fit = Math.min(room(cols) / (cols * nk), room(rows) / (rows * nq)); // pixels per block that fit
  const cellPixels = fit >= 1 ? Math.min(Math.floor(fit), MAX_CELL_PIXELS) : 1;
  const cellBlocks = fit >= 1 ? 1 : Math.ceil(1 / fit);
  const panelWidth = Math.ceil(nk / cellBlocks) * cellPixels;
  const panelHeight = Math.ceil(nq / cellBlocks) * cellPixels;
  return {
    panels, cols, rows, cellBlocks, cellPixels, panelWidth, panelHeight, separator: SEPARATOR,
    width: cols * panelWidth + (cols - 1) * SEPARATOR,
    height: rows * panelHeight + (rows - 1) * SEPARATOR,
  };
}

/** Top-left pixel of panel p. */
export function panelOrigin(layout: PanelLayout, p: number): [x: number, y: number] {
  const col = p % layout.cols, row = Math.floor(p / layout.cols);
  return [col * (layout.panelWidth + layout.separator), row * (layout.panelHeight + layout.separator)];
}

/**
 * Paints every panel: `values` [pairs, nq, nk] are averaged over each cell, and `color` maps a
 * cell's mean to RGB.
 */
function paint(values: ArrayLike<number>, dims: MaskDims, options: PictureOptions, color: (mean: number) => Rgb): Picture {
  const [B, H, nq, nk] = dims;
  const layout = panelLayout(B * H, nq, nk, options);
  const { width, height, cellBlocks: f, cellPixels: s } = layout;
  const pixels = new Uint8Array(width * height * 3);
  for (let i = 0; i < width; i++) pixels.set(SEPARATOR_COLOR, i * 3);
  for (let y = 1; y < height; y++) pixels.copyWithin(y * width * 3, 0, width * 3);
  const cellsDown = Math.ceil(nq / f), cellsAcross = Math.ceil(nk / f);
  const sums = new Float64Array(cellsDown * cellsAcross);
  const counts = new Float64Array(cellsDown * cellsAcross);
  for (let p = 0; p < layout.panels; p++) {
    sums.fill(0);
    counts.fill(0);
    const base = p * nq * nk;
    for (let i = 0; i < nq; i++) {
      const rowCells = Math.floor(i / f) * cellsAcross;
      for (let j = 0; j < nk; j++) {
        sums[rowCells + Math.floor(j / f)] += values[base + i * nk + j];
        counts[rowCells + Math.floor(j / f)]++;
      }
    }
    const [x0, y0] = panelOrigin(layout, p);
    for (let ci = 0; ci < cellsDown; ci++) {
      const top = ((y0 + ci * s) * width + x0) * 3; // first pixel row of this row of cells
      for (let cj = 0; cj < cellsAcross; cj++) {
        const [r, g, b] = color(sums[ci * cellsAcross + cj] / counts[ci * cellsAcross + cj]);
        for (let at = top + cj * s * 3, end = at + s * 3; at < end; at += 3) {
          pixels[at] = r;
          pixels[at + 1] = g;
          pixels[at + 2] = b;
        }
      }
      const rowBytes = cellsAcross * s * 3;
      for (let dy = 1; dy < s; dy++) pixels.copyWithin(top + dy * width * 3, top, top + rowBytes);
    }
  }
  return { width, height, pixels, layout };
}

function mix(a: Rgb, b: Rgb, t: number): Rgb {
  return [Math.round(a[0] + t * (b[0] - a[0])), Math.round(a[1] + t * (b[1] - a[1])), Math.round(a[2] + t * (b[2] - a[2]))];
}

/**
 * The block mask of the first heads, one panel each: kept blocks white, dropped blocks dark
 * (cells of several blocks are gray by the fraction kept). `dense` is 0/1 [B, H, nq, nk] as
 * BlockMask.toDense() returns it.
 */
export function maskPicture(dense: Uint8Array, dims: MaskDims, options: PictureOptions = {}): Picture {
  return paint(dense, dims, options, (kept) => mix(DROPPED_COLOR, KEPT_COLOR, kept));
}

/** Most decades of P shown below the largest value; smaller values get the darkest color. */
export const MAP_DECADES = 6;

/**
 * The block map P [B, H, nq, nk] of the first heads as a heat map: viridis over log10(P), from the
 * smallest positive P of the drawn panels (dark purple; at most MAP_DECADES below the largest)
 * to the largest (yellow).
 */
export function mapPicture(map: Float32Array, dims: MaskDims, options: PictureOptions = {}): Picture {
  const [, , nq, nk] = dims;
  const shown = Math.min(panelLayout(dims[0] * dims[1], nq, nk, options).panels * nq * nk, map.length);
  let max = 0, min = Infinity;
  for (let i = 0; i < shown; i++) {
    if (map[i] > max) max = map[i];
    if (map[i] > 0 && map[i] < min) min = map[i];
  }
  const hi = Math.log10(max || 1);
  const lo = Math.max(Number.isFinite(min) ? Math.log10(min) : hi - MAP_DECADES, hi - MAP_DECADES);
  const span = hi - lo || 1;
  return paint(map, dims, options, (p) => viridis(p > 0 ? (Math.log10(p) - lo) / span : 0));
}

/** Writes a picture as an RGB PNG file. */
export function writePicture(file: string, picture: Picture): void {
  fs.writeFileSync(file, encodePng(picture.width, picture.height, picture.pixels, 3));
}
