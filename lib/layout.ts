// Block layout of a token grid (T, Ht, Wt) of any positive sizes: the TypeScript twin of
// TileLayout in csrc/core/block_rules.h (docs/nabla.md section 2).
//
// One block is one tile of up to 8x8 tokens of one frame; tiles run by (frame, tile row,
// tile col) and each lists its own tokens row-major. With tilesW = ceil(Wt/8), tilesH =
// ceil(Ht/8), plane = tilesH*tilesW and block b = (f, r, c):
//   rowsInBand = min(8, Ht - 8r), colsInTile = min(8, Wt - 8c)
//   blockStart(b) = f*Ht*Wt + 8r*Wt + rowsInBand*8c, blockLength(b) = rowsInBand*colsInTile
import { TILE_SIDE, TokenGrid } from './shapes';

export interface TileLayout {
  grid: TokenGrid;
  tilesH: number;
  tilesW: number;
  blocks: number;
}

export function tileLayout(grid: TokenGrid): TileLayout {
  const tilesH = Math.ceil(grid[1] / TILE_SIDE),
    tilesW = Math.ceil(grid[2] / TILE_SIDE);
  return { grid, tilesH, tilesW, blocks: grid[0] * tilesH * tilesW };
}

/** Frame, tile row and tile col of block b. */
function blockCoords(l: TileLayout, b: number): [number, number, number] {
  const plane = l.tilesH * l.tilesW;
  return [Math.floor(b / plane), Math.floor((b % plane) / l.tilesW), b % l.tilesW];
}

export function blockStart(l: TileLayout, b: number): number {
  const [, Ht, Wt] = l.grid;
  const [f, r, c] = blockCoords(l, b);
  const rows = Math.min(TILE_SIDE, Ht - TILE_SIDE * r);
  return f * Ht * Wt + TILE_SIDE * r * Wt + rows * TILE_SIDE * c;
}

export function blockLength(l: TileLayout, b: number): number {
  const [, r, c] = blockCoords(l, b);
  return Math.min(TILE_SIDE, l.grid[1] - TILE_SIDE * r) * Math.min(TILE_SIDE, l.grid[2] - TILE_SIDE * c);
}

export function blockFrame(l: TileLayout, b: number): number {
  return Math.floor(b / (l.tilesH * l.tilesW));
}

/** Block id of every token of the tile-ordered sequence (S = T*Ht*Wt entries). */
export function tokenBlocks(l: TileLayout): Int32Array {
  const map = new Int32Array(l.grid[0] * l.grid[1] * l.grid[2]);
  for (let b = 0; b < l.blocks; b++) map.fill(b, blockStart(l, b), blockStart(l, b) + blockLength(l, b));
  return map;
}
