// Index math of the fast2 attention kernel (attention_fast2.cuh): which query rows, keys and output
// columns each warp and lane of its 2x2 warp grid owns, where each lane points ldmatrix, and the
// exponent base of the online softmax. Plain C++ (host and device), so test/native/fast2_layout.cc
// checks it on the host against a model of ldmatrix and mma.m16n8k16 (no GPU needed).
//
// A CTA computes one 64-query block against 64-key tiles. Warp w = 2 rowHalf + keyHalf owns query
// rows 32 rowHalf .. +31 (two m16 row tiles) and keys 32 keyHalf .. +31 of every tile (four n8 key
// tiles): each K or V fragment it loads feeds 32 query rows. Warps 2r and 2r + 1 share their rows
// and hold the same rows and output columns in the same lanes, so their online-softmax states
// merge lane by lane at the end.
//
// Fragment glossary (ptx.cuh), g = lane / 4, c = lane % 4, element e = 0..3 of an accumulator:
//   S[mt][nt][e]: row 32 rowHalf + 16 mt + g + 8 (e / 2), key 32 keyHalf + 8 nt + 2 c + e % 2
//   O[mt][t][e]:  the same row, output column 8 t + 2 c + e % 2
//   row statistics (max m, sum l) j = 2 mt + e / 2: four rows per lane
#pragma once

#include <cmath>
#include <cstdint>

#include "../core/block_rules.h"
#include "tile_swizzle.h"

// Fully unrolls the loops over a lane's fragment registers (indices must stay constants on the device).
#if defined(__CUDACC__) || defined(__clang__)
#define NABLA_FAST2_UNROLL _Pragma("unroll")
#else
#define NABLA_FAST2_UNROLL _Pragma("GCC unroll 16")
#endif

namespace nabla {
namespace cuda {
namespace fast2 {

constexpr int kWarps = 4;
constexpr int kWarpRows = 32;  // query rows per warp: two m16 tiles
constexpr int kWarpKeys = 32;  // keys of each 64-key tile per warp: four n8 tiles
constexpr int kRowTiles = kWarpRows / 16;
constexpr int kKeyTiles = kWarpKeys / 8;
constexpr int kRowsPerLane = 2 * kRowTiles;  // row statistics j = 2 mt + half
static_assert(2 * kWarpRows == kBlockSize && 2 * kWarpKeys == kBlockSize, "a 2x2 warp grid covers a 64x64 tile");

NABLA_HD inline int rowHalf(int warp) { return warp >> 1; }
NABLA_HD inline int keyHalf(int warp) { return warp & 1; }
// The warp with the same rows and the other half of the keys.
NABLA_HD inline int partner(int warp) { return warp ^ 1; }
NABLA_HD inline int warpFirstRow(int warp) { return kWarpRows * rowHalf(warp); }
NABLA_HD inline int warpFirstKey(int warp) { return kWarpKeys * keyHalf(warp); }

// Query row (0..63) of accumulator element e of row tile mt.
NABLA_HD inline int fragmentRow(int warp, int lane, int mt, int e) {
  return warpFirstRow(warp) + 16 * mt + lane / 4 + 8 * (e / 2);
}
// Key (0..63 in the tile) of element e of S key tile nt.
NABLA_HD inline int fragmentKey(int warp, int lane, int nt, int e) {
  return warpFirstKey(warp) + 8 * nt + 2 * (lane % 4) + e % 2;
}
// Output column of element e of O column tile t.
NABLA_HD inline int fragmentColumn(int lane, int t, int e) { return 8 * t + 2 * (lane % 4) + e % 2; }

// Tile coordinates (row, column) each lane passes to ldmatrix.x4 (lanes 8m..8m+7 address matrix m).
struct TileSpot {
  int row, col;
};
// A fragment of Q rows 16 mt.. of this warp, columns 16 kk..: matrices (rows 0-7 | 8-15) x (cols 0-7 | 8-15).
NABLA_HD inline TileSpot queryFragmentSpot(int warp, int lane, int mt, int kk) {
  return {warpFirstRow(warp) + 16 * mt + lane % 16, 16 * kk + (lane / 16) * 8};
}
// B fragments of key tiles 2 pair and 2 pair + 1 (K rows are B columns), head dims 16 kk..:
// matrices keys 0-7 x d 0-7, keys 0-7 x d 8-15, keys 8-15 x d 0-7, keys 8-15 x d 8-15.
NABLA_HD inline TileSpot keyFragmentSpot(int warp, int lane, int pair, int kk) {
  return {warpFirstKey(warp) + 16 * pair + (lane & 7) + (lane >> 4) * 8, 16 * kk + ((lane >> 3) & 1) * 8};
}
// B fragments of V (read transposed) for this warp's keys 16 kk.. and output columns 16 pair..:
// matrices keys 0-7 x d 0-7, keys 8-15 x d 0-7, keys 0-7 x d 8-15, keys 8-15 x d 8-15.
NABLA_HD inline TileSpot valueFragmentSpot(int warp, int lane, int kk, int pair) {
  return {warpFirstKey(warp) + 16 * kk + (lane & 7) + ((lane >> 3) & 1) * 8, 16 * pair + (lane >> 4) * 8};
}

// Tiles are stored as swizzledOffset (tile_swizzle.h) lays them out, the fast kernel's layout: its
// tile copy (loadTileAsync) and swizzled<D> fill and read them.
// The offset of a spot 16 rowSteps rows and 16 colSteps columns past `spot` (col of spot < 16):
// 16 rows keep row % 8, and 16 columns flip chunk bits above bit 0 only, so the swizzle is one
// XOR of the spot's offset: swizzledOffset(spot.row + 16 rowSteps, spot.col + 16 colSteps) ==
// (swizzledOffset(spot) ^ 16 colSteps) + 16 rowSteps headDim. The kernel computes each ldmatrix
// address this way from one offset per lane (instead of one register per address).
NABLA_HD inline int steppedOffset(int headDim, int spotOffset, int rowSteps, int colSteps) {
  return (spotOffset ^ (16 * colSteps)) + 16 * rowSteps * headDim;
}

// The epilogue. Warp w finalises output column tiles t with finalisesColumnTile(w, t) (its key half
// of them: tiles [keyHalf dimTiles / 2, + dimTiles / 2)) and sends the others to its partner through
// float4 slot exchangeSlot(w, mt, t, lane) (in lane order: a warp's store is 512 contiguous bytes).
NABLA_HD inline bool finalisesColumnTile(int warp, int t, int dimTiles) {
  return (t >= dimTiles / 2) == (keyHalf(warp) == 1);
}
NABLA_HD inline int exchangeSlot(int warp, int mt, int t, int lane, int dimTiles) {
  const int half = dimTiles / 2;
  return ((warp * kRowTiles + mt) * half + t % half) * 32 + lane;
}

// Block b of a token grid: its first token and its number of tokens, as TileLayout::blockStart and
// blockLength give them, with 32-bit divisions (b and the grid's sides are int32; a 64-bit division
// is a subroutine call whose registers spilled the ragged kernel).
struct BlockSpan {
  int64_t start;
  int32_t length;
};
NABLA_HD inline BlockSpan blockSpan(const TileLayout& layout, int32_t b) {
  if (!layout.hasGrid()) return {int64_t(b) * kBlockSize, kBlockSize};
  const int32_t tw = layout.tilesW(), plane = layout.tilesH() * tw;
  const int32_t f = b / plane, r = (b % plane) / tw, c = b % tw;
  const int32_t rows = layout.ht - kTileSide * r < kTileSide ? layout.ht - kTileSide * r : kTileSide;
  const int32_t cols = layout.wt - kTileSide * c < kTileSide ? layout.wt - kTileSide * c : kTileSide;
  return {int64_t(f) * layout.ht * layout.wt + int64_t(kTileSide) * r * layout.wt + int64_t(rows) * kTileSide * c,
          rows * cols};
}

// The K/V pipeline: kStages shared-memory stages, one cp.async commit group per tile. The prologue
// commits prologueTiles groups: group 0 = Q + tile 0, group g = tile g (empty past the row's count).
// Iteration n waits until at most pendingCopyGroups are in flight (so groups 0 .. n, with Q and tile
// n, have landed for this thread), passes the barrier (... for every thread; and every warp is done
// with tile n - 1), then commits group n + prologueTiles with tile tileIssuedAt(n) (empty past the
// count) into that tile's stage: tile n - 1's, which no warp reads any more. Tile n is read in
// stage tileStage(n). test/native/fast2_layout.cc simulates this protocol.
NABLA_HD constexpr int tileStage(int n, int stages) { return n % stages; }
NABLA_HD constexpr int prologueTiles(int stages) { return stages - 1; }
NABLA_HD constexpr int pendingCopyGroups(int stages) { return stages - 2; }
NABLA_HD constexpr int tileIssuedAt(int n, int stages) { return n + stages - 1; }  // n + prologueTiles

// What exp2 arguments are taken relative to: the row maximum m (log2 units), or 0 while m is -inf
// (a row that has seen only masked keys), so that P = 2^(x - base) and alpha = 2^(m_old - base)
// are 0 instead of NaN (-inf - -inf).
NABLA_HD inline float exponentBase(float rowMax) { return rowMax == -INFINITY ? 0.f : rowMax; }

// Ragged blocks: whether element e of S key tile nt is a key past the block's `keys` keys (a zero
// row of K, whose score becomes -inf). Elements e = 0, 2 hold key fragmentKey(.., 0), e = 1, 3 key + 1.
NABLA_HD inline bool keyMasked(int warp, int lane, int nt, int e, int keys) {
  return fragmentKey(warp, lane, nt, e) >= keys;
}

// The largest of a lane's scores of one row of a row tile (s[nt][e], row half = e / 2), before the
// quad's four lanes reduce it to the row's maximum.
NABLA_HD inline float laneScoreMax(const float (&s)[kKeyTiles][4], int half) {
  float scoreMax = -INFINITY;
  NABLA_FAST2_UNROLL
  for (int nt = 0; nt < kKeyTiles; ++nt) scoreMax = fmaxf(scoreMax, fmaxf(s[nt][2 * half], s[nt][2 * half + 1]));
  return scoreMax;
}

// P = 2^(S scale log2e - base): one FFMA and one exp2 per score.
template <class Exp2>
NABLA_HD inline float probability(float score, float scaleLog2, float base, Exp2 exp2) {
  return exp2(fmaf(score, scaleLog2, -base));
}

// l' = alpha l + sum_key P (a lane's share of l: its keys of the row).
NABLA_HD inline float updatedRowSum(float rowSum, float alpha, float tileSum) { return fmaf(alpha, rowSum, tileSum); }

// One tile of a row's online softmax in one warp (exp2: the kernel's ex2.approx.ftz, the host's
// std::exp2): m' = max(m, scale log2e max_key S) (scale > 0, so the raw max is scaled once),
// P = 2^(S scale log2e - base) with base = exponentBase(m'), alpha = 2^(m - base) (1 when m did
// not move, 0 from m = -inf), l' = alpha l + sum P (the caller adds sum P).
struct RowStep {
  float rowMax, base, alpha;
  bool moved;
};
template <class Exp2>
NABLA_HD inline RowStep rowStep(float rowMax, float scoreMax, float scaleLog2, Exp2 exp2) {
  const float mNew = fmaxf(rowMax, scoreMax * scaleLog2);
  const float base = exponentBase(mNew);
  // alpha is exactly 1 when m did not move (ex2.approx promises only ~2^-22 of 2^0), so that the
  // warp's skipped O rescale and the l update agree bit for bit, and a rescale that the warp does
  // for another row's sake leaves this row's O as it is
  const bool moved = mNew > rowMax;
  return {mNew, base, moved ? exp2(rowMax - base) : 1.f, moved};
}

// One lane's online-softmax step on its scores of one row tile (rows half = 0, 1: elements e = 2 half,
// 2 half + 1): the two rows' maxima (quadMax reduces a lane's value over the quad that shares the
// row: shuffles on the device), rowStep, s replaced by P, the lane's l shares updated, alpha[half]
// for the O rescale. Returns whether either of the lane's rows moved: the warp rescales the tile's
// O, all 16 rows, when any lane's did (__any_sync; a warp-uniform branch), which leaves the rows
// that did not move as they are (their alpha is exactly 1).
template <class QuadMax, class Exp2>
NABLA_HD inline bool softmaxRowTile(float (&s)[kKeyTiles][4], float (&rowMax)[2], float (&rowSum)[2], float (&alpha)[2],
                                    float scaleLog2, QuadMax quadMax, Exp2 exp2) {
  bool moved = false;
  NABLA_FAST2_UNROLL
  for (int half = 0; half < 2; ++half) {
    const RowStep step = rowStep(rowMax[half], quadMax(laneScoreMax(s, half)), scaleLog2, exp2);
    moved |= step.moved;
    alpha[half] = step.alpha;
    rowMax[half] = step.rowMax;
    float sum = 0.f;
    NABLA_FAST2_UNROLL
    for (int nt = 0; nt < kKeyTiles; ++nt) NABLA_FAST2_UNROLL
    for (int e = 2 * half; e < 2 * half + 2; ++e) {
      s[nt][e] = probability(s[nt][e], scaleLog2, step.base, exp2);
      sum += s[nt][e];
    }
    rowSum[half] = updatedRowSum(rowSum[half], step.alpha, sum);
  }
  return moved;
}

// The weights of the two key halves' unnormalised outputs in a row's output, out = own O_own +
// other O_other: m = max(m_own, m_other), w_i = 2^(m_i - m), l = w_own l_own + w_other l_other,
// weight_i = w_i / l (0 for a row with no key: l = 0).
struct MergeWeights {
  float own, other;
};
template <class Exp2>
NABLA_HD inline MergeWeights mergeWeights(float maxOwn, float sumOwn, float maxOther, float sumOther, Exp2 exp2) {
  const float base = exponentBase(fmaxf(maxOwn, maxOther));
  const float own = exp2(maxOwn - base), other = exp2(maxOther - base);
  const float l = own * sumOwn + other * sumOther;
  const float inverse = l > 0.f ? 1.f / l : 0.f;
  return {own * inverse, other * inverse};
}

}  // namespace fast2
}  // namespace cuda
}  // namespace nabla
