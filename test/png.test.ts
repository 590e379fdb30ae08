// The PNG encoder and the mask / block-map pictures, checked by decoding the files independently:
// chunks and their CRCs (a bitwise CRC-32, not the encoder's table), zlib inflate, filter-0 rows;
// then every panel pixel against mask.toDense() and the heat map's order against P.
import * as zlib from 'zlib';
import { nablaMaskSync } from '../lib';
import { crc32, encodePng } from '../lib/png';
import {
  DROPPED_COLOR, KEPT_COLOR, Picture, Rgb, SEPARATOR_COLOR, mapPicture, maskPicture, panelLayout, panelOrigin, viridis,
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
  const width = header.readUInt32BE(0), height = header.readUInt32BE(4);
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
    for (const [w, h, channels] of [[1, 1, 1], [3, 2, 1], [17, 5, 3], [64, 33, 3]] as const) {
      const pixels = Uint8Array.from({ length: w * h * channels }, () => Math.floor(r() * 256));
      const d = decodePng(encodePng(w, h, pixels, channels));
      expect([d.width, d.height, d.channels]).toEqual([w, h, channels]);
      expect([...d.pixels]).toEqual([...pixels]);
      expect(d.chunks).toEqual(['IHDR', 'IDAT', 'IEND']);
    }
  });

  test('a pixel buffer of the wrong size or a bad size is a RangeError', () => {
    expect(() => encodePng(2, 2, new Uint8Array(11), 3)).toThrow(/^Expected 12 bytes \(2 x 2 x 3\) for pixels but received 11$/);
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
    const picture = maskPicture(dense, mask.dims);
    const d = roundTrip(picture);
    const { layout } = picture;
    expect(layout).toMatchObject({ panels: H, cols: 3, rows: 2, cellBlocks: 1 });
    expect(Math.max(d.width, d.height)).toBeLessThanOrEqual(2048);
    expect(layout.cellPixels).toBeGreaterThan(1);
    expect(d.width).toBe(3 * nk * layout.cellPixels + 2 * layout.separator);
    expect(d.height).toBe(2 * nq * layout.cellPixels + layout.separator);
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
    // separator column between panels 0 and 1, and the unused sixth panel
    expect(rgbAt(d, layout.panelWidth, 0)).toEqual(SEPARATOR_COLOR);
    const [x5, y5] = panelOrigin(layout, 5);
    expect(rgbAt(d, x5 + 1, y5 + 1)).toEqual(SEPARATOR_COLOR);
  });

  test('masks too large for the image average blocks into gray cells', () => {
    // 12 x 12 blocks in at most 6 x 6 pixels: 2 x 2 blocks per pixel; block (i, j) kept iff i + j is even
    // except the top-left 2 x 2 cell, which is all kept
    const dims = [1, 1, 12, 12] as const;
    const dense = Uint8Array.from({ length: 144 }, (_, n) => ((Math.floor(n / 12) + (n % 12)) % 2 === 0 ? 1 : 0));
    dense[1] = dense[12] = 1;
    const picture = maskPicture(dense, dims, { maxSize: 6 });
    expect(picture.layout).toMatchObject({ cellBlocks: 2, cellPixels: 1, width: 6, height: 6 });
    const d = roundTrip(picture);
    expect(rgbAt(d, 0, 0)).toEqual(KEPT_COLOR);
    const half = DROPPED_COLOR.map((c, i) => Math.round(c + 0.5 * (KEPT_COLOR[i] - c)));
    for (const [x, y] of [[1, 0], [0, 1], [5, 5], [3, 2]]) expect(rgbAt(d, x, y)).toEqual(half);
  });

  test('panel layout: at most maxPanels panels, images within maxSize', () => {
    expect(panelLayout(40, 1050, 1050)).toMatchObject({ panels: 16, cols: 4, rows: 4, cellBlocks: 3, cellPixels: 1 });
    expect(panelLayout(40, 1050, 1050).width).toBeLessThanOrEqual(2048);
    expect(panelLayout(1, 4, 4)).toMatchObject({ cellPixels: 32, width: 128 }); // small masks: at most 32 px per block
    expect(panelLayout(3, 100, 100, { maxPanels: 2, maxSize: 500 })).toMatchObject({ panels: 2, cols: 2, rows: 1, cellPixels: 2 });
  });
});

describe('mapPicture', () => {
  test('viridis brightens monotonically from dark purple to yellow', () => {
    expect(viridis(0)).toEqual([68, 1, 84]);
    expect(viridis(1)).toEqual([253, 231, 37]);
    expect(viridis(-1)).toEqual(viridis(0));
    expect(viridis(2)).toEqual(viridis(1));
    for (let i = 1; i <= 1000; i++) expect(luminance(viridis(i / 1000))).toBeGreaterThanOrEqual(luminance(viridis((i - 1) / 1000)) - 0.6);
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
});
