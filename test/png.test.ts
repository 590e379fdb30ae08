// The PNG encoder and the mask / block-map pictures, checked by decoding the files independently:
// chunks and their CRCs (a bitwise CRC-32, not the encoder's table), zlib inflate, filter-0 rows;
// then every panel pixel against mask.toDense() and the heat map's order against P, and every
// label's pixels against the font's glyph bitmaps at the place the layout gives it.
import * as zlib from 'zlib';
import { nablaMaskSync } from '../lib';
import { crc32, encodePng } from '../lib/png';
import { ADVANCE, DESCENDERS, DESCENT, GLYPHS, GLYPH_HEIGHT, GLYPH_WIDTH } from '../lib/font';
import {
  BACKGROUND_COLOR,
  DROPPED_COLOR,
  FRAME_COLOR,
  KEPT_COLOR,
  MASK_LEGEND,
  Picture,
  Rgb,
  TEXT_COLOR,
  colorBarBox,
  headerOrigin,
  labelOrigin,
  mapPicture,
  mapScale,
  maskPicture,
  panelLayout,
  panelOrigin,
  viridis,
} from '../lib/pictures';
import { CPU, qkCase } from './helpers';
import { rng } from './reference';

interface Decoded {
  width: number;
  height: number;
  channels: number;
  pixels: Uint8Array;
  chunks: string[];
}

/** CRC-32 one bit at a time (polynomial 0xedb88320), independent of the encoder's table. */
function bitwiseCrc(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of bytes) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

function decodePng(file: Buffer): Decoded {
  expect([...file.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const chunks: string[] = [];
  const idat: Buffer[] = [];
  let ihdr: Buffer | undefined;
  let pos = 8;
  while (pos < file.length) {
    const length = file.readUInt32BE(pos);
    const type = file.toString('latin1', pos + 4, pos + 8);
    const data = file.subarray(pos + 8, pos + 8 + length);
    expect(file.readUInt32BE(pos + 8 + length)).toBe(bitwiseCrc(file.subarray(pos + 4, pos + 8 + length)));
    chunks.push(type);
    if (type === 'IHDR') ihdr = data;
    if (type === 'IDAT') idat.push(data);
    pos += 12 + length;
  }
  expect(pos).toBe(file.length);
  expect(chunks[0]).toBe('IHDR');
  expect(chunks[chunks.length - 1]).toBe('IEND');
  const header = ihdr as Buffer;
  const width = header.readUInt32BE(0),
    height = header.readUInt32BE(4);
  expect(header[8]).toBe(8); // bit depth
  expect([0, 2]).toContain(header[9]);
  expect([...header.subarray(10, 13)]).toEqual([0, 0, 0]);
  const channels = header[9] === 2 ? 3 : 1;
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  expect(raw.length).toBe((stride + 1) * height);
  const pixels = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    expect(raw[y * (stride + 1)]).toBe(0); // filter type None
    pixels.set(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)), y * stride);
  }
  return { width, height, channels, pixels, chunks };
}

/** Decodes the PNG of a picture and checks it holds exactly the picture's pixels. */
function roundTrip(picture: Picture): Decoded {
  const decoded = decodePng(encodePng(picture.width, picture.height, picture.pixels, 3));
  expect([decoded.width, decoded.height, decoded.channels]).toEqual([picture.width, picture.height, 3]);
  expect(Buffer.compare(Buffer.from(decoded.pixels), Buffer.from(picture.pixels))).toBe(0);
  return decoded;
}

const rgbAt = (d: Decoded, x: number, y: number): Rgb => {
  const i = (y * d.width + x) * 3;
  return [d.pixels[i], d.pixels[i + 1], d.pixels[i + 2]];
};
const luminance = ([r, g, b]: Rgb) => 0.299 * r + 0.587 * g + 0.114 * b;

/**
 * Pixels of the text cell of `text` at (x, y) that differ from the glyph bitmaps: each glyph pixel
 * a scale x scale square of TEXT_COLOR where inked, the background elsewhere (descenders DESCENT
 * rows lower; the blank column after each character included). Read from GLYPHS, not drawText.
 */
function textMismatches(
  d: Decoded,
  text: string,
  x: number,
  y: number,
  scale: number,
  background: Rgb = BACKGROUND_COLOR,
): number {
  let wrong = 0;
  for (let n = 0; n < text.length; n++) {
    const glyph = GLYPHS[text[n]];
    if (glyph === undefined) throw new Error(`no glyph for '${text[n]}'`);
    const drop = DESCENDERS.has(text[n]) ? DESCENT : 0;
    for (let gy = 0; gy < GLYPH_HEIGHT + DESCENT; gy++)
      for (let gx = 0; gx < ADVANCE; gx++) {
        const row = gy - drop;
        const ink = gx < GLYPH_WIDTH && row >= 0 && row < GLYPH_HEIGHT && glyph[row * GLYPH_WIDTH + gx] === 1;
        const want = ink ? TEXT_COLOR : background;
        for (let sy = 0; sy < scale; sy++)
          for (let sx = 0; sx < scale; sx++) {
            const got = rgbAt(d, x + (n * ADVANCE + gx) * scale + sx, y + gy * scale + sy);
            if (got[0] !== want[0] || got[1] !== want[1] || got[2] !== want[2]) wrong++;
          }
      }
  }
  return wrong;
}

describe('encodePng', () => {
  test('CRC-32 check values', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32(Buffer.from('IEND'))).toBe(0xae426082);
    const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 37) & 0xff);
    expect(crc32(bytes)).toBe(bitwiseCrc(bytes));
    expect(crc32(bytes.subarray(400), crc32(bytes.subarray(0, 400)))).toBe(crc32(bytes)); // continues
  });

  test('grayscale and RGB images decode to the same pixels', () => {
    const r = rng(5);
    for (const [w, h, channels] of [
      [1, 1, 1],
      [3, 2, 1],
      [17, 5, 3],
      [64, 33, 3],
    ] as const) {
      const pixels = Uint8Array.from({ length: w * h * channels }, () => Math.floor(r() * 256));
      const d = decodePng(encodePng(w, h, pixels, channels));
      expect([d.width, d.height, d.channels]).toEqual([w, h, channels]);
      expect([...d.pixels]).toEqual([...pixels]);
      expect(d.chunks).toEqual(['IHDR', 'IDAT', 'IEND']);
    }
  });

  test('a pixel buffer of the wrong size or a bad size is a RangeError', () => {
    expect(() => encodePng(2, 2, new Uint8Array(11), 3)).toThrow(
      /^Expected 12 bytes \(2 x 2 x 3\) for pixels but received 11$/,
    );
    expect(() => encodePng(0, 2, new Uint8Array(0), 1)).toThrow(RangeError);
    expect(() => encodePng(2, 2, new Uint8Array(8), 2 as 1)).toThrow(/for channels/);
  });
});

describe('maskPicture', () => {
  test('kept blocks are white and dropped blocks dark, exactly as mask.toDense() says', () => {
    const c = qkCase(1, 5, [4, 16, 16], 32, 3); // 5 heads -> a 3 x 2 grid of panels, one empty
    const mask = nablaMaskSync(c.q, c.k, { threshold: 0.6, ...CPU });
    const dense = mask.toDense();
    const [, H, nq, nk] = mask.dims;
    const picture = maskPicture(dense, mask.dims, { threshold: 0.6 });
    const d = roundTrip(picture);
    const { layout } = picture;
    expect(layout).toMatchObject({ panels: H, cols: 3, rows: 2, cellBlocks: 1 });
    expect([d.width, d.height]).toEqual([layout.width, layout.height]);
    expect(Math.max(d.width, d.height)).toBeLessThanOrEqual(2048);
    expect(layout.cellPixels).toBeGreaterThan(1);
    expect([layout.panelWidth, layout.panelHeight]).toEqual([nk * layout.cellPixels, nq * layout.cellPixels]);
    expect(dense.some((x) => x === 0) && dense.some((x) => x === 1)).toBe(true);

    const s = layout.cellPixels;
    let wrong = 0;
    for (let p = 0; p < H; p++) {
      const [x0, y0] = panelOrigin(layout, p);
      for (let i = 0; i < nq; i++)
        for (let j = 0; j < nk; j++) {
          const want = dense[(p * nq + i) * nk + j] ? KEPT_COLOR : DROPPED_COLOR;
          for (let dy = 0; dy < s; dy++)
            for (let dx = 0; dx < s; dx++) {
              const at = ((y0 + i * s + dy) * d.width + x0 + j * s + dx) * 3;
              if (d.pixels[at] !== want[0] || d.pixels[at + 1] !== want[1] || d.pixels[at + 2] !== want[2]) wrong++;
            }
        }
    }
    expect(wrong).toBe(0);
    expect(luminance(KEPT_COLOR)).toBeGreaterThan(200);
    expect(luminance(DROPPED_COLOR)).toBeLessThan(50);
    // each panel framed (a pixel left of and above it); panels do not overlap; the sixth slot is empty
    for (let p = 0; p < H; p++) {
      const [x0, y0] = panelOrigin(layout, p);
      expect([rgbAt(d, x0 - 1, y0 + 3), rgbAt(d, x0 + 3, y0 - 1), rgbAt(d, x0 + layout.panelWidth, y0)]).toEqual([
        FRAME_COLOR,
        FRAME_COLOR,
        FRAME_COLOR,
      ]);
    }
    expect(panelOrigin(layout, 1)[0]).toBeGreaterThan(panelOrigin(layout, 0)[0] + layout.panelWidth);
    expect(panelOrigin(layout, 3)[1]).toBeGreaterThan(panelOrigin(layout, 0)[1] + layout.panelHeight);
    const [x5, y5] = panelOrigin(layout, 5);
    expect(rgbAt(d, x5 + 1, y5 + 1)).toEqual(BACKGROUND_COLOR);
  });

  test("every panel is labelled with its head, the threshold and its density, in the font's glyphs where the layout puts them", () => {
    const c = qkCase(1, 5, [4, 16, 16], 32, 3);
    const mask = nablaMaskSync(c.q, c.k, { threshold: 0.6, ...CPU });
    const dense = mask.toDense();
    const [, H, nq, nk] = mask.dims;
    const picture = maskPicture(dense, mask.dims, { threshold: 0.6 });
    const d = roundTrip(picture);
    const { layout } = picture;
    const s = layout.textScale;
    for (let p = 0; p < H; p++) {
      let kept = 0;
      for (let n = p * nq * nk; n < (p + 1) * nq * nk; n++) kept += dense[n];
      const [x, y] = labelOrigin(layout, p);
      expect(textMismatches(d, `head ${p}`, x, y, s)).toBe(0);
      expect(textMismatches(d, `thr 0.6  dens ${(kept / (nq * nk)).toFixed(3)}`, x, y + layout.lineHeight, s)).toBe(0);
      // the wrong head or density is not what is drawn there
      expect(textMismatches(d, `head ${p + 1}`, x, y, s)).toBeGreaterThan(0);
    }
    // header: title, legend (a white and a dark swatch, each named), what a cell is, the axes
    expect(textMismatches(d, 'block mask of 5 heads', ...headerOrigin(layout, 0), s)).toBe(0);
    const [lx, ly] = headerOrigin(layout, 1);
    expect(rgbAt(d, lx + s * 3, ly + s * 3)).toEqual(KEPT_COLOR);
    expect(rgbAt(d, lx, ly)).toEqual(FRAME_COLOR);
    const swatch = GLYPH_HEIGHT * s;
    expect(textMismatches(d, MASK_LEGEND.kept, lx + swatch + 4 * s, ly, s)).toBe(0);
    let dark = -1; // the dropped swatch: first pixel of DROPPED_COLOR on the legend line, right of 'kept'
    for (let x = lx + swatch; x < d.width && dark < 0; x++)
      if (rgbAt(d, x, ly + s * 3).join() === DROPPED_COLOR.join()) dark = x;
    expect(dark).toBeGreaterThan(lx + swatch + 4 * s + 4 * ADVANCE * s);
    expect(textMismatches(d, MASK_LEGEND.dropped, dark - 1 + swatch + 4 * s, ly, s)).toBe(0);
    expect(textMismatches(d, `one cell per block (${layout.cellPixels} px)`, ...headerOrigin(layout, 2), s)).toBe(0);
    expect(textMismatches(d, `rows ${nq} query blocks, columns ${nk} key blocks`, ...headerOrigin(layout, 3), s)).toBe(
      0,
    );
  });

  test('a sheet of many heads labels the batch too, and the title says which heads are drawn', () => {
    const dims = [2, 20, 4, 4] as const; // 40 pairs, 16 drawn
    const dense = Uint8Array.from({ length: 40 * 16 }, (_, n) => (n % 3 === 0 ? 1 : 0));
    const picture = maskPicture(dense, dims);
    const d = roundTrip(picture);
    const { layout } = picture;
    expect(layout).toMatchObject({ panels: 16, cols: 4, rows: 4 });
    expect(textMismatches(d, 'block mask of 2 x 20 heads, first 16 drawn', ...headerOrigin(layout, 0), 2)).toBe(0);
    const [x, y] = labelOrigin(layout, 13);
    expect(textMismatches(d, 'batch 0 head 13', x, y, 2)).toBe(0);
    let kept = 0;
    for (let n = 13 * 16; n < 14 * 16; n++) kept += dense[n];
    expect(textMismatches(d, `dens ${(kept / 16).toFixed(3)}`, x, y + layout.lineHeight, 2)).toBe(0); // no threshold given
  });

  test('the font: every glyph 5 x 7 and distinct, one for each character the pictures print', () => {
    const seen = new Map<string, string>();
    for (const [ch, glyph] of Object.entries(GLYPHS)) {
      expect(glyph.length).toBe(GLYPH_WIDTH * GLYPH_HEIGHT);
      const key = glyph.join('');
      if (ch !== ' ') expect(key).toMatch(/1/);
      expect([ch, seen.get(key)]).toEqual([ch, undefined]);
      seen.set(key, ch);
    }
    const printed =
      'block mask map P of 2 x 20 heads, first 16 drawn kept dropped one cell per block (32 px) pixel ' +
      'gray: part rows query columns key batch head thr dens log linear scale 0123456789 1e-4 0.5';
    for (const ch of printed) expect([ch, GLYPHS[ch] !== undefined]).toEqual([ch, true]);
  });

  test('masks too large for the image average blocks into gray cells', () => {
    // 600 x 600 blocks in a 600-pixel image: 2 x 2 blocks per pixel; block (i, j) kept iff i + j is
    // even except the top-left 2 x 2 cell, which is all kept
    const n = 600;
    const dims = [1, 1, n, n] as const;
    const dense = Uint8Array.from({ length: n * n }, (_, at) => ((Math.floor(at / n) + (at % n)) % 2 === 0 ? 1 : 0));
    dense[1] = dense[n] = 1;
    const picture = maskPicture(dense, dims, { maxSize: 600 });
    expect(picture.layout).toMatchObject({
      cellBlocks: 2,
      cellPixels: 1,
      panelWidth: n / 2,
      panelHeight: n / 2,
      textScale: 1,
    });
    expect(Math.max(picture.width, picture.height)).toBeLessThanOrEqual(600);
    const d = roundTrip(picture);
    const [x0, y0] = panelOrigin(picture.layout, 0);
    expect(rgbAt(d, x0, y0)).toEqual(KEPT_COLOR);
    const half = DROPPED_COLOR.map((c, i) => Math.round(c + 0.5 * (KEPT_COLOR[i] - c)));
    for (const [x, y] of [
      [1, 0],
      [0, 1],
      [299, 299],
      [3, 2],
    ])
      expect(rgbAt(d, x0 + x, y0 + y)).toEqual(half);
    expect(
      textMismatches(d, 'one pixel per 2 x 2 blocks, gray: part kept', ...headerOrigin(picture.layout, 2), 1),
    ).toBe(0);
  });

  test('panel layout: at most maxPanels panels, images within maxSize', () => {
    const big = panelLayout(40, 1050, 1050);
    expect(big).toMatchObject({ panels: 16, cols: 4, rows: 4, cellBlocks: 3, cellPixels: 1, panelWidth: 350 });
    expect(Math.max(big.width, big.height)).toBeLessThanOrEqual(2048);
    expect(panelLayout(1, 4, 4)).toMatchObject({ cellPixels: 32, panelWidth: 128 }); // small masks: at most 32 px per block
    const two = panelLayout(3, 100, 100, { maxPanels: 2, maxSize: 500 });
    expect(two).toMatchObject({ panels: 2, cols: 2, rows: 1, cellPixels: 2 });
    expect(Math.max(two.width, two.height)).toBeLessThanOrEqual(500);
    // text: 2x glyphs, 3x in images over 1200 pixels wide, 1x in images held under 800
    expect([panelLayout(1, 8, 8).textScale, big.textScale, two.textScale]).toEqual([2, 3, 1]);
    expect(panelLayout(1, 8, 8).width).toBeLessThanOrEqual(1200);
    // slots side by side: the second panel starts past the first panel's right edge
    expect(panelOrigin(two, 1)[0]).toBeGreaterThan(panelOrigin(two, 0)[0] + two.panelWidth);
  });
});

describe('mapPicture', () => {
  test('viridis brightens monotonically from dark purple to yellow', () => {
    expect(viridis(0)).toEqual([68, 1, 84]);
    expect(viridis(1)).toEqual([253, 231, 37]);
    expect(viridis(-1)).toEqual(viridis(0));
    expect(viridis(2)).toEqual(viridis(1));
    for (let i = 1; i <= 1000; i++)
      expect(luminance(viridis(i / 1000))).toBeGreaterThanOrEqual(luminance(viridis((i - 1) / 1000)) - 0.6);
  });

  test('the heat map is monotone in P: larger P, brighter color; max P yellow, min P dark purple', () => {
    const c = qkCase(1, 2, [4, 16, 16], 32, 8);
    const mask = nablaMaskSync(c.q, c.k, { threshold: 0.7, returnMap: true, ...CPU });
    const map = mask.map as Float32Array;
    const picture = mapPicture(map, mask.dims);
    const d = roundTrip(picture);
    const [, H, nq, nk] = mask.dims;
    const { layout } = picture;
    const s = layout.cellPixels;
    const samples: { p: number; lum: number; rgb: Rgb }[] = [];
    for (let h = 0; h < H; h++) {
      const [x0, y0] = panelOrigin(layout, h);
      for (let i = 0; i < nq; i++)
        for (let j = 0; j < nk; j++) {
          const rgb = rgbAt(d, x0 + j * s + (s >> 1), y0 + i * s + (s >> 1));
          samples.push({ p: map[(h * nq + i) * nk + j], lum: luminance(rgb), rgb });
        }
    }
    samples.sort((a, b) => a.p - b.p);
    expect(samples[0].p).toBeLessThan(samples[samples.length - 1].p / 10);
    let drops = 0;
    for (let i = 1; i < samples.length; i++) if (samples[i].lum < samples[i - 1].lum - 0.6) drops++; // 0.6: 8-bit rounding
    expect(drops).toBe(0);
    expect(samples[samples.length - 1].rgb).toEqual(viridis(1));
    expect(samples[0].rgb).toEqual(viridis(0));
  });
  test('the colour bar runs from the smallest to the largest colour, says log scale, and its ticks name powers of ten', () => {
    // one head of 2 x 2 blocks: P = 1e-4, 1e-3, 1e-2, 1e-1 -> the bar spans exactly 3 decades
    const map = Float32Array.from([1e-4, 1e-3, 1e-2, 1e-1]);
    const dims = [1, 1, 2, 2] as const;
    const picture = mapPicture(map, dims, { threshold: 0.9, densities: [0.75] });
    const d = roundTrip(picture);
    const { layout } = picture;
    const s = layout.textScale;
    const bar = colorBarBox(layout);
    const mid = bar.y + (bar.height >> 1);
    expect(rgbAt(d, bar.x, mid)).toEqual(viridis(0));
    expect(rgbAt(d, bar.x + bar.width - 1, mid)).toEqual(viridis(1));
    for (let x = bar.x + 1; x < bar.x + bar.width; x++)
      expect(luminance(rgbAt(d, x, mid))).toBeGreaterThanOrEqual(luminance(rgbAt(d, x - 1, mid)) - 0.6);
    expect(textMismatches(d, 'P, log scale', bar.x + bar.width + 6 * s, bar.y, s)).toBe(0);
    // ticks at the ends and a third and two thirds along; the end values kept inside the bar's span
    const [, tickLine] = headerOrigin(layout, 2);
    for (const at of [0, 1 / 3, 2 / 3, 1])
      expect(rgbAt(d, bar.x + Math.round(at * (bar.width - 1)), bar.y + bar.height)).toEqual(TEXT_COLOR);
    expect(textMismatches(d, '1e-4', bar.x, tickLine + 2 * s, s)).toBe(0);
    const w = (t: string) => (t.length * ADVANCE - 1) * s;
    expect(textMismatches(d, '0.1', bar.x + bar.width - w('0.1'), tickLine + 2 * s, s)).toBe(0);
    const third = bar.x + Math.round((bar.width - 1) / 3);
    expect(textMismatches(d, '1e-3', third - (w('1e-3') >> 1), tickLine + 2 * s, s)).toBe(0);
    // panel: head, threshold and density; each block's colour its position on the scale
    const [x, y] = labelOrigin(layout, 0);
    expect(textMismatches(d, 'head 0', x, y, s)).toBe(0);
    expect(textMismatches(d, 'thr 0.9  dens 0.750', x, y + layout.lineHeight, s)).toBe(0);
    expect(textMismatches(d, 'block map P of 1 head', ...headerOrigin(layout, 0), s)).toBe(0);
    const [x0, y0] = panelOrigin(layout, 0);
    const c = layout.cellPixels;
    expect([rgbAt(d, x0, y0), rgbAt(d, x0 + c, y0), rgbAt(d, x0, y0 + c), rgbAt(d, x0 + c, y0 + c)]).toEqual(
      [0, 1, 2, 3].map((k) => viridis(k / 3)),
    );
  });

  test('mapScale: log ticks at powers of ten, both ends under a decade, linear from 0 to the largest P', () => {
    const log = mapScale(Float32Array.from([0, 2e-3, 0.5]));
    expect(log.ticks.map((t) => t.text)).toEqual(['0.002', '0.01', '0.1', '0.5']); // the ends, and powers of ten
    expect([log.ticks[0].at, log.ticks[3].at]).toEqual([0, 1]);
    expect(log.position(0.5)).toBeCloseTo(1, 6);
    expect(log.position(2e-3)).toBeCloseTo(0, 6);
    expect(log.position(0)).toBe(0); // P = 0 gets the smallest colour
    expect(log.ticks[1].at).toBeCloseTo(Math.log10(0.01 / 2e-3) / Math.log10(0.5 / 2e-3), 6);
    // more than MAP_DECADES below the largest: clamped to the bottom of the bar
    expect(mapScale([1e-12, 1]).position(1e-12)).toBeLessThan(0);
    expect(mapScale([1e-12, 1]).ticks.map((t) => t.text)).toEqual(['1e-6', '1e-5', '1e-4', '1e-3', '0.01', '0.1', '1']);
    expect(mapScale([0.2, 0.3]).ticks).toEqual([
      { at: 0, text: '0.2' },
      { at: 1, text: '0.3' },
    ]);
    const linear = mapScale([0, 0.1, 0.4], 'linear');
    expect(linear.ticks).toEqual([
      { at: 0, text: '0' },
      { at: 0.5, text: '0.2' },
      { at: 1, text: '0.4' },
    ]);
    expect(linear.position(0.1)).toBeCloseTo(0.25, 9);
  });

  test("a linear map says so, and its panels' colours are linear in P", () => {
    const map = Float32Array.from([0, 0.1, 0.2, 0.4]);
    const picture = mapPicture(map, [1, 1, 2, 2], { scale: 'linear' });
    const d = roundTrip(picture);
    const { layout } = picture;
    const bar = colorBarBox(layout);
    expect(
      textMismatches(d, 'P, linear scale', bar.x + bar.width + 6 * layout.textScale, bar.y, layout.textScale),
    ).toBe(0);
    const [x0, y0] = panelOrigin(layout, 0);
    const c = layout.cellPixels;
    expect([rgbAt(d, x0, y0), rgbAt(d, x0 + c, y0), rgbAt(d, x0, y0 + c), rgbAt(d, x0 + c, y0 + c)]).toEqual(
      [0, 0.25, 0.5, 1].map((x) => viridis(x)),
    );
  });
});
