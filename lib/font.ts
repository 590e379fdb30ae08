// A 5 x 7 bitmap font for the labels of the pictures (no font files, no native dependencies):
// glyphs for digits, letters and the punctuation the labels use, and drawText onto RGB pixels.
// each glyph is 7 rows of 5 pixels, '#' ink and '.' background, drawn at an integer scale with
// one blank column between characters. Lower-case letters are 5 rows high (rows 2-6); those with a
// descender (DESCENDERS) are drawn DESCENT rows lower, so their tails hang below the line.
// Characters without a glyph are drawn as GLYPHS['?'].
export const GLYPH_WIDTH = 5;
export const GLYPH_HEIGHT = 7;
/** Rows below the base line that descenders reach; a line of text needs GLYPH_HEIGHT + DESCENT rows. */
export const DESCENT = 2;
/** Glyphs drawn DESCENT rows lower: their x-height body is in rows 0-4, the tail in rows 5-6. */
export const DESCENDERS = new Set(['g', 'p', 'q', 'y']);
/** Pixels from one character's left edge to the next's, at scale 1. */
export const ADVANCE = GLYPH_WIDTH + 1;

const GLYPH_ROWS: Readonly<Record<string, string>> = {
  ' ': '..... ..... ..... ..... ..... ..... .....',
  '0': '.###. #...# #..## #.#.# ##..# #...# .###.',
  '1': '..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.',
  '2': '.###. #...# ....# ...#. ..#.. .#... #####',
  '3': '####. ....# ....# .###. ....# ....# ####.',
  '4': '...#. ..##. .#.#. #..#. ##### ...#. ...#.',
  '5': '##### #.... ####. ....# ....# #...# .###.',
  '6': '..##. .#... #.... ####. #...# #...# .###.',
  '7': '##### ....# ...#. ..#.. .#... .#... .#...',
  '8': '.###. #...# #...# .###. #...# #...# .###.',
  '9': '.###. #...# #...# .#### ....# ...#. .##..',
  '.': '..... ..... ..... ..... ..... .##.. .##..',
  ',': '..... ..... ..... ..... .##.. ..#.. .#...',
  ':': '..... .##.. .##.. ..... .##.. .##.. .....',
  '-': '..... ..... ..... .###. ..... ..... .....',
  '+': '..... ..#.. ..#.. ##### ..#.. ..#.. .....',
  '=': '..... ..... ##### ..... ##### ..... .....',
  '%': '##..# ##..# ...#. ..#.. .#... #..## #..##',
  '(': '...#. ..#.. .#... .#... .#... ..#.. ...#.',
  ')': '.#... ..#.. ...#. ...#. ...#. ..#.. .#...',
  '/': '....# ...#. ...#. ..#.. .#... .#... #....',
  '<': '...#. ..#.. .#... #.... .#... ..#.. ...#.',
  '>': '.#... ..#.. ...#. ....# ...#. ..#.. .#...',
  '?': '.###. #...# ....# ...#. ..#.. ..... ..#..',
  '_': '..... ..... ..... ..... ..... ..... #####',
  'a': '..... ..... .###. ....# .#### #...# .####',
  'b': '#.... #.... ####. #...# #...# #...# ####.',
  'c': '..... ..... .###. #.... #.... #...# .###.',
  'd': '....# ....# .#### #...# #...# #...# .####',
  'e': '..... ..... .###. #...# ##### #.... .###.',
  'f': '..##. .#..# .#... ###.. .#... .#... .#...',
  'g': '.#### #...# #...# #...# .#### ....# .###.',
  'h': '#.... #.... #.##. ##..# #...# #...# #...#',
  'i': '..#.. ..... .##.. ..#.. ..#.. ..#.. .###.',
  'j': '...#. ..... ..##. ...#. ...#. #..#. .##..',
  'k': '#.... #.... #..#. #.#.. ##... #.#.. #..#.',
  'l': '.##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.',
  'm': '..... ..... ##.#. #.#.# #.#.# #...# #...#',
  'n': '..... ..... #.##. ##..# #...# #...# #...#',
  'o': '..... ..... .###. #...# #...# #...# .###.',
  'p': '####. #...# #...# #...# ####. #.... #....',
  'q': '.#### #...# #...# #...# .#### ....# ....#',
  'r': '..... ..... #.##. ##..# #.... #.... #....',
  's': '..... ..... .###. #.... .###. ....# ####.',
  't': '.#... .#... ###.. .#... .#... .#..# ..##.',
  'u': '..... ..... #...# #...# #...# #..## .##.#',
  'v': '..... ..... #...# #...# #...# .#.#. ..#..',
  'w': '..... ..... #...# #...# #.#.# #.#.# .#.#.',
  'x': '..... ..... #...# .#.#. ..#.. .#.#. #...#',
  'y': '#...# #...# #...# #...# .#### ....# .###.',
  'z': '..... ..... ##### ...#. ..#.. .#... #####',
  'A': '.###. #...# #...# ##### #...# #...# #...#',
  'B': '####. #...# #...# ####. #...# #...# ####.',
  'C': '.###. #...# #.... #.... #.... #...# .###.',
  'D': '####. #...# #...# #...# #...# #...# ####.',
  'E': '##### #.... #.... ####. #.... #.... #####',
  'F': '##### #.... #.... ####. #.... #.... #....',
  'G': '.###. #...# #.... #.### #...# #...# .####',
  'H': '#...# #...# #...# ##### #...# #...# #...#',
  'I': '.###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.',
  'J': '..### ...#. ...#. ...#. ...#. #..#. .##..',
  'K': '#...# #..#. #.#.. ##... #.#.. #..#. #...#',
  'L': '#.... #.... #.... #.... #.... #.... #####',
  'M': '#...# ##.## #.#.# #.#.# #...# #...# #...#',
  'N': '#...# #...# ##..# #.#.# #..## #...# #...#',
  'O': '.###. #...# #...# #...# #...# #...# .###.',
  'P': '####. #...# #...# ####. #.... #.... #....',
  'Q': '.###. #...# #...# #...# #.#.# #..#. .##.#',
  'R': '####. #...# #...# ####. #.#.. #..#. #...#',
  'S': '.#### #.... #.... .###. ....# ....# ####.',
  'T': '##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..',
  'U': '#...# #...# #...# #...# #...# #...# .###.',
  'V': '#...# #...# #...# #...# #...# .#.#. ..#..',
  'W': '#...# #...# #...# #.#.# #.#.# #.#.# .#.#.',
  'X': '#...# #...# .#.#. ..#.. .#.#. #...# #...#',
  'Y': '#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..',
  'Z': '##### ....# ...#. ..#.. .#... #.... #####',
};

/** Glyph bitmaps, GLYPH_HEIGHT rows of GLYPH_WIDTH bits (1 = ink), row-major. */
export const GLYPHS: Readonly<Record<string, Uint8Array>> = Object.fromEntries(
  Object.entries(GLYPH_ROWS).map(([ch, rows]) => {
    const bits = rows.split(' ').join('');
    if (bits.length !== GLYPH_WIDTH * GLYPH_HEIGHT)
      throw new Error(`glyph '${ch}' is not ${GLYPH_WIDTH} x ${GLYPH_HEIGHT}`);
    return [ch, Uint8Array.from(bits, (c) => (c === '#' ? 1 : 0))];
  }),
);

export function glyphOf(ch: string): Uint8Array {
  return GLYPHS[ch] ?? GLYPHS['?'];
}

/** Width in pixels of `text` at `scale` (no trailing blank column). */
export function textWidth(text: string, scale: number): number {
  return text.length === 0 ? 0 : (text.length * ADVANCE - 1) * scale;
}

/** Height in pixels of a line of text at `scale`, descenders included. */
export function textHeight(scale: number): number {
  return (GLYPH_HEIGHT + DESCENT) * scale;
}

/** RGB pixels, row-major, 3 bytes per pixel. */
export interface Canvas {
  width: number;
  height: number;
  pixels: Uint8Array;
}

/**
 * Draws `text` with its top-left corner at (x, y), each font pixel a scale x scale square of
 * `color`; background pixels are left as they are. Characters that would end past x + maxWidth
 * (or the canvas edge) are not drawn.
 */
export function drawText(
  canvas: Canvas,
  text: string,
  x: number,
  y: number,
  scale: number,
  color: readonly number[],
  maxWidth = Infinity,
): void {
  const right = Math.min(canvas.width, x + maxWidth);
  for (let n = 0; n < text.length; n++) {
    const left = x + n * ADVANCE * scale;
    if (left + GLYPH_WIDTH * scale > right) return;
    const glyph = glyphOf(text[n]);
    const top = y + (DESCENDERS.has(text[n]) ? DESCENT * scale : 0);
    for (let gy = 0; gy < GLYPH_HEIGHT; gy++)
      for (let gx = 0; gx < GLYPH_WIDTH; gx++) {
        if (!glyph[gy * GLYPH_WIDTH + gx]) continue;
        for (let sy = 0; sy < scale; sy++) {
          const py = top + gy * scale + sy;
          if (py < 0 || py >= canvas.height) continue;
          for (let sx = 0; sx < scale; sx++) canvas.pixels.set(color, (py * canvas.width + left + gx * scale + sx) * 3);
        }
      }
  }
}
