// Tile ("fractal") token order and the STA window (docs/nabla.md sections 2 and 3).
//
// Tiles are 8x8 tokens of one frame (smaller on the bottom and right edges when Ht or Wt is not
// a multiple of 8); tile order lists tiles by (frame, tile row, tile col), each tile's own tokens
// row-major. Raster token (t, y, x) is in block b = (t, y/8, x/8) and sits at tile-order position
//   blockStart(b) + (y%8)*colsInTile(b) + x%8          (lib/layout.ts)
// which for Ht, Wt multiples of 8 is t*Ht*Wt + ((y/8)*(Wt/8) + x/8)*64 + (y%8)*8 + x%8.
import { BlockMask } from './mask';
import { native } from './native';
import { blockStart, tileLayout } from './layout';
import { MAX_DIM, TILE_SIDE, TokenGrid, numel } from './shapes';
import { Tensor } from './tensor';
import { describe, limitText, rangeError, typeErrorWorded } from './errors';
import { allocate } from './typedarray';
import { checkOptions, checkTensor, checkTokenGrid, checkWindow } from './validate';

/**
 * The tile order of a token grid as a gather index: `order[i]` is the raster index of the token
 * at tile-order position i, so tiled[i] = raster[order[i]] (NumPy/PyTorch: x[..., order, :]).
 */
export function tileOrder(grid: TokenGrid): Int32Array {
  const [T, Ht, Wt] = checkTokenGrid(grid);
  const tokens = T * Ht * Wt;
  // raster indices are int32: at most MAX_DIM tokens, as for any sequence
  if (tokens > MAX_DIM)
    throw rangeError(
      'grid',
      `a token grid of at most ${limitText(MAX_DIM)} tokens`,
      `${describe(grid)} = ${tokens} tokens`,
    );
  const order = allocate(Int32Array, tokens, 'grid', describe(grid));
  const layout = tileLayout([T, Ht, Wt]);
  for (let t = 0; t < T; t++)
    for (let y = 0; y < Ht; y++)
      for (let x = 0; x < Wt; x++) {
        const r = Math.floor(y / TILE_SIDE),
          c = Math.floor(x / TILE_SIDE);
        const b = (t * layout.tilesH + r) * layout.tilesW + c;
        const colsInTile = Math.min(TILE_SIDE, Wt - TILE_SIDE * c);
        order[blockStart(layout, b) + (y % TILE_SIDE) * colsInTile + (x % TILE_SIDE)] = (t * Ht + y) * Wt + x;
      }
  return order;
}

export interface TileOptions {
  /** The token axis (default: the second to last, as in [B, H, S, D] or [B, S, C]). */
  axis?: number;
}

function permuteTokens(x: Tensor, grid: TokenGrid, options: unknown, toTileOrder: boolean): Tensor {
  const t = checkTensor(x, 'x');
  if (!('data' in t))
    throw typeErrorWorded('x', 'a host tensor (download device tensors with toHost())', 'a device tensor');
  const tokens = numel(checkTokenGrid(grid));
  const opts = checkOptions<TileOptions>(options);
  const axis = opts.axis ?? t.dims.length - 2;
  if (!Number.isInteger(axis) || axis < 0 || axis >= t.dims.length)
    throw rangeError('axis', `a token axis in [0, ${t.dims.length - 1}]`, describe(opts.axis));
  if (t.dims[axis] !== tokens)
    throw rangeError('x.dims', `${tokens} tokens (grid ${describe(grid)}) on axis ${axis}`, `[${t.dims.join(', ')}]`);
  const order = tileOrder(grid);
  const outer = numel(t.dims.slice(0, axis));
  const inner = numel(t.dims.slice(axis + 1));
  const S = order.length;
  const out = new (t.data.constructor as Float32ArrayConstructor | Uint16ArrayConstructor)(t.data.length);
  for (let o = 0; o < outer; o++) {
    const base = o * S * inner;
    for (let i = 0; i < S; i++) {
      // tiled[i] = raster[order[i]]; the inverse writes raster[order[i]] = tiled[i]
      const tiled = base + i * inner;
      const raster = base + order[i] * inner;
      if (toTileOrder) out.set(t.data.subarray(raster, raster + inner), tiled);
      else out.set(t.data.subarray(tiled, tiled + inner), raster);
    }
  }
  return { type: t.type, dims: [...t.dims], data: out };
}

/** Reorders the token axis from raster to tile order (a new tensor). */
export function toTiles(x: Tensor, grid: TokenGrid, options?: TileOptions): Tensor {
  return permuteTokens(x, grid, options, true);
}

/** Reorders the token axis from tile order back to raster order (a new tensor). */
export function fromTiles(x: Tensor, grid: TokenGrid, options?: TileOptions): Tensor {
  return permuteTokens(x, grid, options, false);
}

/**
 * The STA window on the block grid (T, ceil(Ht/8), ceil(Wt/8)) of a token grid (T, Ht, Wt), as a
 * BlockMask [1, 1, nb, nb]:
 * blocks (t1, h1, w1) and (t2, h2, w2) are paired iff |t1-t2| <= wT/2, |h1-h2| <= wH/2 and
 * |w1-w2| <= wW/2 (window sizes in blocks, integer halves).
 */
export function staMask(grid: TokenGrid, window: readonly [number, number, number]): BlockMask {
  const g = checkTokenGrid(grid);
  const w = checkWindow(window, 'window');
  const layout = tileLayout(g);
  const nb = layout.blocks;
  // the dense nb x nb mask is one typed array; checked before the grid is narrowed to int32
  const dense = allocate(Uint8Array, nb * nb, 'grid', `${describe(grid)} (${nb} blocks, a ${nb} x ${nb} mask)`);
  const blockGrid = Int32Array.of(g[0], layout.tilesH, layout.tilesW);
  native.staMask({ grid: blockGrid, window: Int32Array.from(w), out: dense });
  return BlockMask.fromDense(dense, [1, 1, nb, nb]);
}
