// A minimal PNG encoder (8-bit grayscale or RGB, no interlace) for mask pictures: no dependency
// beyond node's zlib. File = signature, IHDR, IDAT (zlib of rows, each prefixed by filter type 0),
// IEND; every chunk is length (u32 BE), type, data, CRC-32 of type + data.
import * as zlib from 'zlib';

export type PngChannels = 1 | 3;

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const COLOR_TYPE: Readonly<Record<PngChannels, number>> = { 1: 0, 3: 2 }; // grayscale, truecolor

/** CRC-32 (IEEE 802.3, reflected polynomial 0xedb88320) lookup table. */
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 of bytes, continuing from `crc` (0 to start). */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/**
 * Encodes `pixels` (row-major, `channels` bytes per pixel: gray or R, G, B) as a PNG file.
 * Throws a RangeError when the buffer does not hold width x height pixels.
 */
export function encodePng(width: number, height: number, pixels: Uint8Array, channels: PngChannels): Buffer {
  if (
    !Number.isInteger(width) ||
    !Number.isInteger(height) ||
    width < 1 ||
    height < 1 ||
    width > 0x7fffffff ||
    height > 0x7fffffff
  )
    throw new RangeError(`Expected a positive integer width and height for the PNG but received ${width} x ${height}`);
  if (channels !== 1 && channels !== 3)
    throw new RangeError(`Expected 1 (gray) or 3 (RGB) for channels but received ${channels}`);
  const stride = width * channels;
  if (pixels.length !== stride * height)
    throw new RangeError(
      `Expected ${stride * height} bytes (${width} x ${height} x ${channels}) for pixels but received ${pixels.length}`,
    );

  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = COLOR_TYPE[channels];
  // bytes 10-12: compression 0 (deflate), filter method 0, interlace 0 (none)

  const raw = Buffer.alloc((stride + 1) * height); // each row: filter type 0 (None), then the row
  for (let y = 0; y < height; y++) raw.set(pixels.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  const idat = zlib.deflateSync(raw, { level: 6 });
  return Buffer.concat([SIGNATURE, chunk('IHDR', header), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))]);
}
