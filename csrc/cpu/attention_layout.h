// What the CPU attention kernels share: where a query block's tensors live, which key blocks it
// keeps, and the per-worker fp32 scratch tiles. Included by attention.cc and attention_avx2.h only.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../core/block_rules.h"
#include "../core/dtype.h"

namespace nabla {
namespace cpu {

// Round up to a multiple of 8 floats (one AVX2 vector); scratch rows are padded to this width.
inline int64_t roundUp8(int64_t n) { return (n + 7) & ~int64_t(7); }

// The call's tensors, seen as rows of work: row r = (b*H + h)*nq + i is query block i of head bh.
struct AttentionLayout {
  const void* q;
  const void* k;
  const void* v;
  void* out;
  DType dtype;
  size_t elemSize;
  int64_t seqQ, seqKv, headDim, valueDim;
  int64_t nq, nk;
  int64_t rows;  // B * H * nq
  float scale;
  const int32_t* kvCounts;  // nullptr: dense
  const int32_t* kvIndices;
  TileLayout layout;  // block starts and lengths (blocks of 64 tokens without a grid)

  // Kept key blocks of a row; blockAt(r, t) is the t-th of them.
  int64_t keptBlocks(int64_t r) const { return kvCounts ? kvCounts[r] : nk; }
  int64_t blockAt(int64_t r, int64_t t) const { return kvCounts ? kvIndices[r * nk + t] : t; }

  // Rows (tokens) of query block r % nq and of key block kb: 64, or fewer for edge tiles.
  int32_t queryRows(int64_t r) const { return layout.blockLength(r % nq); }
  int32_t keyRows(int64_t kb) const { return layout.blockLength(kb); }

  // queryRows x D query tile, keyRows x D key tile, keyRows x Dv value tile and queryRows x Dv
  // output tile (contiguous); no row past a tile's length is ever read or written.
  const void* queryTile(int64_t r) const { return at(q, ((r / nq) * seqQ + layout.blockStart(r % nq)) * headDim); }
  const void* keyTile(int64_t r, int64_t kb) const {
    return at(k, ((r / nq) * seqKv + layout.blockStart(kb)) * headDim);
  }
  const void* valueTile(int64_t r, int64_t kb) const {
    return at(v, ((r / nq) * seqKv + layout.blockStart(kb)) * valueDim);
  }
  void* outTile(int64_t r) const {
    return static_cast<char*>(out) + size_t(((r / nq) * seqQ + layout.blockStart(r % nq)) * valueDim) * elemSize;
  }

 private:
  const void* at(const void* base, int64_t element) const {
    return static_cast<const char*>(base) + size_t(element) * elemSize;
  }
};

// One worker's fp32 tiles, all 32-byte aligned. Sizes in floats; D8 = roundUp8(D), Dv8 = roundUp8(Dv).
struct AttentionScratch {
  float* queryT;    // [D][64]   Q^T, pre-scaled by scale * log2(e)
  float* keys;      // [64][D]   key tile converted to fp32 (fp16/bf16 inputs)
  float* values;    // [64][Dv8] value tile converted to fp32, zero-padded columns
  float* scores;    // [64][64]  S^T[j][i] = q_i . k_j (log2 units), then P^T
  float* acc;       // [64][Dv8] unnormalised output O
  float* rowMax;    // [64]      m_i, running max of row i (log2 units)
  float* rowSum;    // [64]      l_i, running sum of 2^(s - m_i)
  float* alpha;     // [64]      2^(m_old - m_new), the rescale of O and l for this key block
  float* blockMax;  // [64]      max_j S^T[j][i] of the current key block

  static size_t floats(int64_t headDim, int64_t valueDim) {
    const size_t d = size_t(roundUp8(headDim)), dv = size_t(roundUp8(valueDim));
    return 64 * d * 2 + 64 * dv * 2 + 64 * 64 + 4 * 64;
  }
  // Carves the tiles out of `base` (floats(D, Dv) floats, 32-byte aligned, zeroed).
  static AttentionScratch carve(float* base, int64_t headDim, int64_t valueDim) {
    const size_t d = size_t(roundUp8(headDim)), dv = size_t(roundUp8(valueDim));
    AttentionScratch s;
    s.queryT = base;
    s.keys = s.queryT + 64 * d;
    s.values = s.keys + 64 * d;
    s.scores = s.values + 64 * dv;
    s.acc = s.scores + 64 * 64;
    s.rowMax = s.acc + 64 * dv;
    s.rowSum = s.rowMax + 64;
    s.alpha = s.rowSum + 64;
    s.blockMax = s.alpha + 64;
    return s;
  }
};

}  // namespace cpu
}  // namespace nabla
