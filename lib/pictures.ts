// Pictures of block masks and block maps, one labelled panel per (batch, head), for docs and bench
// runs. Panel rows are query blocks (top = block 0), columns key blocks. A panel pixel square
// ("cell") shows one block drawn s x s pixels, or, for masks too large for the image, the mean over
// f x f blocks (then a mask cell is gray in proportion to the blocks kept).
//
// Image layout (all text in the built-in bitmap font, lib/font.ts):
//   header: 4 lines: title; legend (mask: kept / dropped swatches; map: colour bar); legend
//           detail (mask: what a cell holds; map: the bar's tick values); the axes
//   grid:   cols x rows slots; a slot is 2 label lines (head; threshold and density) above the
//           panel, which has a 1-pixel frame
import * as fs from 'fs';
import { Canvas, GLYPH_HEIGHT, drawText, textHeight, textWidth } from './font';
import { encodePng } from './png';
import type { MaskDims } from './mask';

export type Rgb = readonly [number, number, number];

export interface PictureOptions {
  /** Panels drawn: the first (batch, head) pairs in row-major order. Default 16. */
  maxPanels?: number;
  /**
   * Largest width or height in pixels (the image may be smaller). Default 2048. The header's text
   * needs about 300 pixels across (under 800 the text is drawn at 1x), so smaller bounds are not kept.
   */
  maxSize?: number;
  /** The threshold the mask was made with, printed on every panel. */
  threshold?: number;
  /** Density per (batch, head) pair (BlockMask.headDensities()), printed on every panel of the map. */
  densities?: ArrayLike<number>;
  /** Colour scale of the block map: 'log' (default; log10 P) or 'linear' (P from 0 to its maximum). */
  scale?: 'log' | 'linear';
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
  /** Panel size in pixels (inside its frame). */
  panelWidth: number;
  panelHeight: number;
  /** Font pixels per glyph pixel, and the height of one line of text with its spacing. */
  textScale: number;
  lineHeight: number;
  /** Top of the first row of slots (below the header). */
  gridTop: number;
  /** Slot size: its label lines above the framed panel; slots are `gap` pixels apart. */
  slotWidth: number;
  slotHeight: number;
  gap: number;
  width: number;
  height: number;
}

export interface Picture extends Canvas {
  layout: PanelLayout;
}

export const KEPT_COLOR: Rgb = [255, 255, 255];
export const DROPPED_COLOR: Rgb = [24, 24, 32];
export const BACKGROUND_COLOR: Rgb = [226, 229, 234];
export const FRAME_COLOR: Rgb = [70, 100, 150];
export const TEXT_COLOR: Rgb = [16, 16, 24];
const MAX_CELL_PIXELS = 32;
const MARGIN = 12;
const FRAME = 1;
/** Header lines above the grid, and label lines above each panel. */
const HEADER_LINES = 4;
const LABEL_LINES = 2;
/** Characters a header line and a panel label line hold; the layout reserves their width. */
const HEADER_CHARS = 46;
const LABEL_CHARS = 20;
/** Colour bar width in characters of the font; it is as tall as a capital letter. */
const BAR_CHARS = 30;

/** Viridis at 0, 1/4, 1/2, 3/4, 1; its lightness rises monotonically, so brighter = larger. */
const VIRIDIS: readonly Rgb[] = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

/** A viridis-like color of x in [0, 1] (clamped): linear interpolation of five control colors. */
export function viridis(x: number): Rgb {
  const pos = Math.min(Math.max(Number.isNaN(x) ? 0 : x, 0), 1) * (VIRIDIS.length - 1);
  const i = Math.min(Math.floor(pos), VIRIDIS.length - 2);
  return mix(VIRIDIS[i], VIRIDIS[i + 1], pos - i);
}

/** Images wider than this at text scale 2 get scale 3, so the labels stay readable when viewed shrunk. */
const WIDE_IMAGE = 1200;

/**
 * Panels, cell size, text and image size for `count` panels of nq x nk blocks. Text scale: 1 for
 * images held under 800 pixels, else 2 (10 x 14 pixel glyphs), or 3 when that image is wide.
 */
export function panelLayout(count: number, nq: number, nk: number, options: PictureOptions = {}): PanelLayout {
  const maxSize = options.maxSize ?? 2048;
  if (maxSize < 800) return layoutAtScale(count, nq, nk, maxSize, options, 1);
  const layout = layoutAtScale(count, nq, nk, maxSize, options, 2);
  return layout.width > WIDE_IMAGE ? layoutAtScale(count, nq, nk, maxSize, options, 3) : layout;
}

function layoutAtScale(
  count: number,
  nq: number,
  nk: number,
  maxSize: number,
  options: PictureOptions,
  textScale: number,
): PanelLayout {
  const panels = Math.max(1, Math.min(count, options.maxPanels ?? 16));
  const cols = Math.ceil(Math.sqrt(panels));
  const rows = Math.ceil(panels / cols);
  const lineHeight = textHeight(textScale) + 3 * textScale;
  const gap = 6 * textScale;
  const gridTop = MARGIN + HEADER_LINES * lineHeight + gap;
  const labelHeight = LABEL_LINES * lineHeight;
  // pixels left for the panels themselves, across and down
  const roomAcross = maxSize - 2 * MARGIN - (cols - 1) * gap - cols * 2 * FRAME;
  const roomDown = maxSize - gridTop - MARGIN - (rows - 1) * gap - rows * (labelHeight + 2 * FRAME);
  const fit = Math.max(Math.min(roomAcross / (cols * nk), roomDown / (rows * nq)), 1e-9); // pixels per block
  const cellPixels = fit >= 1 ? Math.min(Math.floor(fit), MAX_CELL_PIXELS) : 1;
  const cellBlocks = fit >= 1 ? 1 : Math.ceil(1 / fit);
  const panelWidth = Math.ceil(nk / cellBlocks) * cellPixels;
  const panelHeight = Math.ceil(nq / cellBlocks) * cellPixels;
  const slotWidth = Math.max(panelWidth + 2 * FRAME, textWidth('x'.repeat(LABEL_CHARS), textScale));
  const slotHeight = labelHeight + panelHeight + 2 * FRAME;
  return {
    panels,
    cols,
    rows,
    cellBlocks,
    cellPixels,
    panelWidth,
    panelHeight,
    textScale,
    lineHeight,
    gridTop,
    slotWidth,
    slotHeight,
    gap,
    width: 2 * MARGIN + Math.max(cols * slotWidth + (cols - 1) * gap, textWidth('x'.repeat(HEADER_CHARS), textScale)),
    height: gridTop + rows * slotHeight + (rows - 1) * gap + MARGIN,
  };
}

/** Top-left pixel of slot p (where its first label line starts). */
export function labelOrigin(layout: PanelLayout, p: number): [x: number, y: number] {
  const col = p % layout.cols,
    row = Math.floor(p / layout.cols);
  return [MARGIN + col * (layout.slotWidth + layout.gap), layout.gridTop + row * (layout.slotHeight + layout.gap)];
}

/** Top-left pixel of panel p (inside its frame). */
export function panelOrigin(layout: PanelLayout, p: number): [x: number, y: number] {
  const [x, y] = labelOrigin(layout, p);
  return [x + FRAME, y + LABEL_LINES * layout.lineHeight + FRAME];
}

/** Top-left pixel of header line `line` (0 = title). */
export function headerOrigin(layout: PanelLayout, line: number): [x: number, y: number] {
  return [MARGIN, MARGIN + line * layout.lineHeight];
}

/** The colour bar of a map picture: left edge, top, width and height in pixels (on header line 1). */
export function colorBarBox(layout: PanelLayout): { x: number; y: number; width: number; height: number } {
  const [x, y] = headerOrigin(layout, 1);
  return { x, y, width: textWidth('x'.repeat(BAR_CHARS), layout.textScale), height: GLYPH_HEIGHT * layout.textScale };
}

/** "12" / "0.9" / "0.0123": at most 4 significant digits, no trailing zeros. */
export function numberText(x: number): string {
  return String(Number(x.toPrecision(4)));
}

/** The two label lines of panel p: which head, then threshold and density when known. */
export function panelLabel(dims: MaskDims, p: number, threshold?: number, density?: number): [string, string] {
  const H = dims[1];
  const head = dims[0] === 1 ? `head ${p}` : `batch ${Math.floor(p / H)} head ${p % H}`;
  const facts = [
    ...(threshold === undefined ? [] : [`thr ${numberText(threshold)}`]),
    ...(density === undefined ? [] : [`dens ${density.toFixed(3)}`]),
  ];
  return [head, facts.join('  ')];
}

/** Header line 0: what the picture shows, and which heads when not all of them are drawn. */
function titleText(what: string, dims: MaskDims, panels: number): string {
  const [B, H] = dims;
  const heads = B === 1 ? `${H} head${H === 1 ? '' : 's'}` : `${B} x ${H} heads`;
  return `${what} of ${heads}${panels < B * H ? `, first ${panels} drawn` : ''}`;
}

function axesText(dims: MaskDims): string {
  return `rows ${dims[2]} query blocks, columns ${dims[3]} key blocks`;
}

function fillRect(canvas: Canvas, x: number, y: number, w: number, h: number, color: Rgb): void {
  for (let py = y; py < y + h; py++)
    for (let px = x; px < x + w; px++) canvas.pixels.set(color, (py * canvas.width + px) * 3);
}

/**
 * A blank picture of `dims`: background, header title and axes, every slot's labels and framed
 * (empty) panel. `facts(p)` gives panel p's threshold and density.
 */
function blankPicture(
  what: string,
  dims: MaskDims,
  options: PictureOptions,
  facts: (p: number) => { threshold?: number; density?: number },
): Picture {
  const [B, H, nq, nk] = dims;
  const layout = panelLayout(B * H, nq, nk, options);
  const { width, height, textScale: scale, lineHeight } = layout;
  const picture: Picture = { width, height, pixels: new Uint8Array(width * height * 3), layout };
  fillRect(picture, 0, 0, width, height, BACKGROUND_COLOR);
  const headerWidth = width - 2 * MARGIN;
  drawText(picture, titleText(what, dims, layout.panels), ...headerOrigin(layout, 0), scale, TEXT_COLOR, headerWidth);
  drawText(picture, axesText(dims), ...headerOrigin(layout, 3), scale, TEXT_COLOR, headerWidth);
  for (let p = 0; p < layout.panels; p++) {
    const [x, y] = labelOrigin(layout, p);
    const { threshold, density } = facts(p);
    const lines = panelLabel(dims, p, threshold, density);
    lines.forEach((line, i) => drawText(picture, line, x, y + i * lineHeight, scale, TEXT_COLOR, layout.slotWidth));
    const [px, py] = panelOrigin(layout, p);
    fillRect(
      picture,
      px - FRAME,
      py - FRAME,
      layout.panelWidth + 2 * FRAME,
      layout.panelHeight + 2 * FRAME,
      FRAME_COLOR,
    );
  }
  return picture;
}

/**
 * Paints every panel of `picture`: `values` [pairs, nq, nk] are averaged over each cell, and
 * `color` maps a cell's mean to RGB.
 */
function paint(picture: Picture, values: ArrayLike<number>, dims: MaskDims, color: (mean: number) => Rgb): Picture {
  const [, , nq, nk] = dims;
  const { layout, width, pixels } = picture;
  const { cellBlocks: f, cellPixels: s } = layout;
  const cellsDown = Math.ceil(nq / f),
    cellsAcross = Math.ceil(nk / f);
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
  return picture;
}

function mix(a: Rgb, b: Rgb, t: number): Rgb {
  return [
    Math.round(a[0] + t * (b[0] - a[0])),
    Math.round(a[1] + t * (b[1] - a[1])),
    Math.round(a[2] + t * (b[2] - a[2])),
  ];
}

/** Fraction of ones in each [nq, nk] panel of a 0/1 mask. */
function panelDensities(dense: Uint8Array, panels: number, nq: number, nk: number): Float64Array {
  const out = new Float64Array(panels);
  for (let p = 0; p < panels; p++) {
    let kept = 0;
    for (let n = p * nq * nk, end = n + nq * nk; n < end; n++) kept += dense[n];
    out[p] = kept / (nq * nk);
  }
  return out;
}

/** The names beside the mask legend's two swatches (KEPT_COLOR, DROPPED_COLOR). */
export const MASK_LEGEND = { kept: 'kept', dropped: 'dropped' } as const;

/** A swatch (one glyph-sized square with a frame) and its name, from x on line `y`; returns the next x. */
function legendEntry(picture: Picture, x: number, y: number, color: Rgb, name: string): number {
  const { textScale: scale } = picture.layout;
  const side = GLYPH_HEIGHT * scale; // as tall as a capital letter
  fillRect(picture, x, y, side, side, FRAME_COLOR);
  fillRect(picture, x + FRAME, y + FRAME, side - 2 * FRAME, side - 2 * FRAME, color);
  drawText(picture, name, x + side + 4 * scale, y, scale, TEXT_COLOR);
  return x + side + 4 * scale + textWidth(name, scale) + 12 * scale;
}

/**
 * The block mask of the first heads, one labelled panel each: kept blocks white, dropped blocks
 * dark (cells of several blocks are gray by the fraction kept). `dense` is 0/1 [B, H, nq, nk] as
 * BlockMask.toDense() returns it; each panel is labelled with its head, options.threshold (when
 * given) and its density.
 */
export function maskPicture(dense: Uint8Array, dims: MaskDims, options: PictureOptions = {}): Picture {
  const [B, H, nq, nk] = dims;
  const densities = panelDensities(dense, Math.min(B * H, panelLayout(B * H, nq, nk, options).panels), nq, nk);
  const picture = blankPicture('block mask', dims, options, (p) => ({
    threshold: options.threshold,
    density: densities[p],
  }));
  const { layout } = picture;
  let [x, y] = headerOrigin(layout, 1);
  x = legendEntry(picture, x, y, KEPT_COLOR, MASK_LEGEND.kept);
  legendEntry(picture, x, y, DROPPED_COLOR, MASK_LEGEND.dropped);
  [x, y] = headerOrigin(layout, 2);
  const f = layout.cellBlocks;
  const detail =
    f === 1 ? `one cell per block (${layout.cellPixels} px)` : `one pixel per ${f} x ${f} blocks, gray: part kept`;
  drawText(picture, detail, x, y, layout.textScale, TEXT_COLOR, layout.width - 2 * MARGIN);
  return paint(picture, dense, dims, (kept) => mix(DROPPED_COLOR, KEPT_COLOR, kept));
}

/** Most decades of P shown below the largest value; smaller values get the darkest color. */
export const MAP_DECADES = 6;

/** The map's colour scale: where P's colour comes from and the bar's tick values. */
export interface MapScale {
  scale: 'log' | 'linear';
  /** Color position in [0, 1] of a value of P. */
  position: (p: number) => number;
  /** Ticks on the colour bar: position in [0, 1] and text. */
  ticks: { at: number; text: string }[];
}

/** A power of ten 10^k as text: "0.01", "0.1", "1", "10" down to 10^-2, then "1e-3", "1e-4". */
function decadeText(k: number): string {
  return k >= -2 ? String(10 ** k) : `1e${k}`;
}

/**
 * The colour scale of P over `values`: log10 from the smallest positive P (at most MAP_DECADES
 * below the largest) to the largest, ticks at both ends and every power of ten between; or linear
 * from 0 to the largest.
 */
export function mapScale(values: ArrayLike<number>, scale: 'log' | 'linear' = 'log'): MapScale {
  let max = 0,
    min = Infinity;
  for (let i = 0; i < values.length; i++) {
    if (values[i] > max) max = values[i];
    if (values[i] > 0 && values[i] < min) min = values[i];
  }
  if (scale === 'linear') {
    const top = max || 1;
    return {
      scale,
      position: (p) => p / top,
      ticks: [0, 0.5, 1].map((at) => ({ at, text: numberText(at * top) })),
    };
  }
  const hi = Math.log10(max || 1);
  const lo = Math.max(Number.isFinite(min) ? Math.log10(min) : hi - MAP_DECADES, hi - MAP_DECADES);
  const span = hi - lo || 1;
  // every power of ten in the range, and both ends (smallest and largest P) unless a power of ten is there
  const ticks: { at: number; text: string }[] = [];
  const first = Math.ceil(lo - 1e-6),
    last = Math.floor(hi + 1e-6);
  if (first - lo > 1e-6) ticks.push({ at: 0, text: numberText(10 ** lo) });
  for (let k = first; k <= last; k++)
    ticks.push({ at: Math.min(Math.max((k - lo) / span, 0), 1), text: decadeText(k) });
  if (hi - last > 1e-6) ticks.push({ at: 1, text: numberText(10 ** hi) });
  return { scale, position: (p) => (p > 0 ? (Math.log10(p) - lo) / span : 0), ticks };
}

/**
 * The block map P [B, H, nq, nk] of the first heads as a heat map in viridis (dark purple small,
 * yellow large), on mapScale's log (default) or linear scale, with a colour bar in the header.
 * Panels carry their head, and options.threshold and options.densities when given.
 */
export function mapPicture(map: Float32Array, dims: MaskDims, options: PictureOptions = {}): Picture {
  const [B, H, nq, nk] = dims;
  const shown = Math.min(panelLayout(B * H, nq, nk, options).panels * nq * nk, map.length);
  const scale = mapScale(map.subarray(0, shown), options.scale ?? 'log');
  const picture = blankPicture('block map P', dims, options, (p) => ({
    threshold: options.threshold,
    density: options.densities?.[p],
  }));
  const { layout } = picture;
  const bar = colorBarBox(layout);
  for (let dx = 0; dx < bar.width; dx++)
    fillRect(picture, bar.x + dx, bar.y, 1, bar.height, viridis(dx / (bar.width - 1)));
  const caption = scale.scale === 'log' ? 'P, log scale' : 'P, linear scale';
  drawText(picture, caption, bar.x + bar.width + 6 * layout.textScale, bar.y, layout.textScale, TEXT_COLOR);
  // tick marks under the bar, each value centred under its mark (kept inside the bar's span); the
  // ends' values first, then the others where they do not overlap a value already written
  const tickY = bar.y + bar.height;
  const [, labelY] = headerOrigin(layout, 2);
  const written: [left: number, right: number][] = [];
  const ends = (t: { at: number }) => (t.at === 0 || t.at === 1 ? 0 : 1);
  for (const tick of [...scale.ticks].sort((a, b) => ends(a) - ends(b))) {
    const x = bar.x + Math.round(tick.at * (bar.width - 1));
    fillRect(picture, x, tickY, 1, 2 * layout.textScale, TEXT_COLOR);
    const w = textWidth(tick.text, layout.textScale);
    const left = Math.min(Math.max(x - (w >> 1), bar.x), bar.x + bar.width - w);
    const right = left + w + 4 * layout.textScale; // with a space after it
    if (written.some(([l, r]) => left < r && l < right)) continue;
    drawText(picture, tick.text, left, labelY + 2 * layout.textScale, layout.textScale, TEXT_COLOR);
    written.push([left - 4 * layout.textScale, right]);
  }
  return paint(picture, map, dims, (p) => viridis(scale.position(p)));
}

/** Writes a picture as an RGB PNG file. */
export function writePicture(file: string, picture: Picture): void {
  fs.writeFileSync(file, encodePng(picture.width, picture.height, picture.pixels, 3));
}
