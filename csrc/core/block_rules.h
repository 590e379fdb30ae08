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

enum class MaskMethod : int32_t { Cdf = 0, TopK = 1 };

// Everything that defines a NABLA mask besides q and k.
// q is [B, H, Sq, D], k is [B, H, Skv, D]; nq = Sq / 64, nk = Skv / 64.
struct MaskParams {
  int64_t batch = 0, heads = 0, seqQ = 0, seqKv = 0, headDim = 0;
  float threshold = 0.7f;          // (0, 1]
  MaskMethod method = MaskMethod::Cdf;
  bool sta = false;                // OR the STA window into the mask (needs nq == nk == grid.blocks())
  BlockGrid grid;
  StaWindow window;
  const int32_t* blockDoc = nullptr;  // [nq] document per block, or nullptr for one document

  int64_t qBlocks() const { return seqQ / kBlockSize; }
  int64_t kvBlocks() const { return seqKv / kBlockSize; }
};

// topk keeps max(1, floor(thr * keys in the row's document)) blocks.
NABLA_HD inline int64_t topkCount(float threshold, int64_t rowKeys) {
  int64_t n = int64_t(double(threshold) * double(rowKeys));
  return n < 1 ? 1 : (n > rowKeys ? rowKeys : n);
}

// Block-sparse attention: q [B,H,Sq,D], k [B,H,Skv,D], v [B,H,Skv,Dv] -> out [B,H,Sq,Dv], all
// contiguous and of one dtype. Row r = (b*H + h)*nq + i keeps kvCounts[r] key blocks listed
// ascending in kvIndices[r*nk ...]. kvCounts == nullptr means dense (every block kept).
// A row with no kept block writes zeros.
struct AttentionParams {
  int64_t batch = 0, heads = 0, seqQ = 0, seqKv = 0, headDim = 0, valueDim = 0;
  float scale = 0.f;
  const int32_t* kvCounts = nullptr;
  const int32_t* kvIndices = nullptr;

  int64_t qBlocks() const { return seqQ / kBlockSize; }
  int64_t kvBlocks() const { return seqKv / kBlockSize; }
};

}  // namespace nabla
