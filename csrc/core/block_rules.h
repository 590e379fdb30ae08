// Shape rules and block-level mask rules shared by the CPU and CUDA backends (docs/nabla.md 1-3).
#pragma once

#include <cstdint>
#include <vector>

#ifdef __CUDACC__
#define NABLA_HD __host__ __device__
#else
#define NABLA_HD
#endif

namespace nabla {

// Every kept (query block, key block) pair is a full kBlockSize x kBlockSize tile.
constexpr int kBlockSize = 64;
// Tokens per tile side: a 64-token block is one 8x8 spatial tile of one frame.
constexpr int kTileSide = 8;
constexpr int kMinHeadDim = 8;
constexpr int kMaxHeadDim = 256;
// Largest batch, head and token count: block counts and ids then fit the int32 mask lists.
constexpr int64_t kMaxDim = int64_t(1) << 31;
// Largest softmax scale. Below it scale * log2(e) and the fp32 logits of ordinary inputs
// (|q.k| up to about 2^100) stay finite; a scale near the fp32 maximum makes every logit
// infinite and every output NaN.
constexpr double kMaxScale = 65536.0;

// Block grid (frames, block rows, block cols) = token grid (T, Ht/8, Wt/8). Callers check that
// t * h * w < 2^31 (the N-API layer does, in 64 bits), so staKeeps can work in int32.
struct BlockGrid {
  int32_t t = 0, h = 0, w = 0;
  NABLA_HD int64_t blocks() const { return int64_t(t) * h * w; }
};

// STA window sizes in blocks (odd or even); a pair is kept iff every axis distance <= size/2.
struct StaWindow {
  int32_t t = 0, h = 0, w = 0;
};

NABLA_HD inline int32_t absDiff(int32_t a, int32_t b) { return a > b ? a - b : b - a; }

// STA[b1, b2] = |t1-t2| <= wT/2 and |h1-h2| <= wH/2 and |w1-w2| <= wW/2, block id = t*Hb*Wb + h*Wb + w.
NABLA_HD inline bool staKeeps(const BlockGrid& g, const StaWindow& win, int32_t qb, int32_t kb) {
  const int32_t plane = g.h * g.w;
  const int32_t qt = qb / plane, kt = kb / plane;
  const int32_t qh = (qb % plane) / g.w, kh = (kb % plane) / g.w;
  const int32_t qw = qb % g.w, kw = kb % g.w;
  return absDiff(qt, kt) <= win.t / 2 && absDiff(qh, kh) <= win.h / 2 && absDiff(qw, kw) <= win.w / 2;
}

// Document id of every block from frame boundaries such as [0, 10, 21] (frames [0,10) are
// document 0, [10,21) document 1). Boundaries are validated by the caller: they start at 0, rise
// strictly and end at g.t.
inline std::vector<int32_t> blockDocuments(const BlockGrid& g, const std::vector<int32_t>& frames) {
  std::vector<int32_t> doc(size_t(g.blocks()));
  const int64_t plane = int64_t(g.h) * g.w;
  for (size_t d = 0; d + 1 < frames.size(); ++d)
    for (int64_t b = frames[d] * plane; b < frames[d + 1] * plane; ++b) doc[size_t(b)] = int32_t(d);
  return doc;
}

// Token layout of the blocks. With a token grid (T, Ht, Wt) of any positive sizes, one block is
// one tile of up to 8x8 tokens of one frame; tiles on the bottom/right edges are smaller. Tiles
// run by (frame, tile row, tile col) and each lists its own tokens row-major, so block b is the
// tokens [blockStart(b), blockStart(b) + blockLength(b)) of the tile-ordered sequence:
//   tilesW = ceil(Wt/8), tilesH = ceil(Ht/8), plane = tilesH*tilesW
//   f = b / plane, r = (b % plane) / tilesW, c = b % tilesW
//   rowsInBand = min(8, Ht - 8r), colsInTile = min(8, Wt - 8c)
//   blockStart = f*Ht*Wt + 8r*Wt + rowsInBand*8c, blockLength = rowsInBand*colsInTile
// For Ht, Wt multiples of 8 this is blocks of 64 tokens, block b = [64b, 64b + 64).
// t == 0 means no grid: uniform blocks of 64 tokens. Callers check t*ht*wt < 2^31.
struct TileLayout {
  int32_t t = 0, ht = 0, wt = 0;

  NABLA_HD bool hasGrid() const { return t > 0; }
  NABLA_HD int32_t tilesH() const { return (ht + kTileSide - 1) / kTileSide; }
  NABLA_HD int32_t tilesW() const { return (wt + kTileSide - 1) / kTileSide; }
  // A grid whose Ht or Wt is not a multiple of 8: some blocks have fewer than 64 tokens.
  NABLA_HD bool ragged() const { return t > 0 && (ht % kTileSide != 0 || wt % kTileSide != 0); }
  NABLA_HD int64_t blocks(int64_t seq) const { return t > 0 ? int64_t(t) * tilesH() * tilesW() : seq / kBlockSize; }
  NABLA_HD int64_t blockStart(int64_t b) const {
    if (t == 0) return b * kBlockSize;
    const int64_t tw = tilesW(), plane = int64_t(tilesH()) * tw;
    const int64_t f = b / plane, r = (b % plane) / tw, c = b % tw;
    const int64_t rows = ht - kTileSide * r < kTileSide ? ht - kTileSide * r : kTileSide;
    return f * ht * wt + kTileSide * r * wt + rows * kTileSide * c;
  }
  NABLA_HD int32_t blockLength(int64_t b) const {
    if (t == 0) return kBlockSize;
    const int64_t tw = tilesW(), plane = int64_t(tilesH()) * tw;
    const int32_t r = int32_t((b % plane) / tw), c = int32_t(b % tw);
    const int32_t rows = ht - kTileSide * r < kTileSide ? ht - kTileSide * r : kTileSide;
    const int32_t cols = wt - kTileSide * c < kTileSide ? wt - kTileSide * c : kTileSide;
    return rows * cols;
  }
  // Frame of block b (frame-causal masks; needs a grid).
  NABLA_HD int32_t blockFrame(int64_t b) const { return int32_t(b / (int64_t(tilesH()) * tilesW())); }
  // The block grid (T, tilesH, tilesW) that STA and documents work on.
  NABLA_HD BlockGrid blockGrid() const { return BlockGrid{t, tilesH(), tilesW()}; }
};

enum class MaskMethod : int32_t { Cdf = 0, TopK = 1 };

// Everything that defines a NABLA mask besides q and k.
// q is [B, H, Sq, D], k is [B, H, Skv, D]; nq = Sq / 64, nk = Skv / 64 without a layout grid;
// with one, Sq == Skv == T*Ht*Wt and nq = nk = layout.blocks().
struct MaskParams {
  int64_t batch = 0, heads = 0, seqQ = 0, seqKv = 0, headDim = 0;
  float threshold = 0.7f;  // (0, 1]
  MaskMethod method = MaskMethod::Cdf;
  bool sta = false;  // OR the STA window into the mask (needs nq == nk == grid.blocks())
  BlockGrid grid;    // block grid (T, tilesH, tilesW) for STA and documents
  StaWindow window;
  const int32_t* blockDoc = nullptr;  // [nq] document per block, or nullptr for one document
  TileLayout layout;                  // token grid; default: no grid, blocks of 64 tokens
  bool causal = false;                // frame-causal: key blocks of later frames are hidden (needs a grid)

  NABLA_HD int64_t qBlocks() const { return layout.blocks(seqQ); }
  NABLA_HD int64_t kvBlocks() const { return layout.blocks(seqKv); }
};

// topk keeps max(1, floor(thr * keys in the row's document)) blocks.
NABLA_HD inline int64_t topkCount(float threshold, int64_t rowKeys) {
  int64_t n = int64_t(double(threshold) * double(rowKeys));
  return n < 1 ? 1 : (n > rowKeys ? rowKeys : n);
}

// Block-sparse attention: q [B,H,Sq,D], k [B,H,Skv,D], v [B,H,Skv,Dv] -> out [B,H,Sq,Dv], all
// contiguous and of one dtype. Row r = (b*H + h)*nq + i keeps kvCounts[r] key blocks listed
// ascending in kvIndices[r*nk ...]. kvCounts == nullptr means dense (every block kept).
// A row with no kept block writes zeros. With a layout grid (Sq == Skv), query block i is the
// layout.blockLength(i) tokens from layout.blockStart(i), and likewise each key block: only real
// tokens are read, enter a softmax or are written.
struct AttentionParams {
  int64_t batch = 0, heads = 0, seqQ = 0, seqKv = 0, headDim = 0, valueDim = 0;
  float scale = 0.f;
  const int32_t* kvCounts = nullptr;
  const int32_t* kvIndices = nullptr;
  TileLayout layout;  // token grid; default: no grid, blocks of 64 tokens

  NABLA_HD int64_t qBlocks() const { return layout.blocks(seqQ); }
  NABLA_HD int64_t kvBlocks() const { return layout.blocks(seqKv); }
};

}  // namespace nabla
