// Host tests of csrc/cuda/pool_split.h, the split of a block among a warp's lanes that the
// vectorised pooling kernel (pool_vector.cuh) uses:
//  - every (token, column) of a block of 1..64 tokens is read exactly once, and the kernel's
//    step loop (steps(length) rounds, t < length) visits exactly each lane's tokensOf();
//  - every piece starts on a 16-byte boundary for fp16/bf16/fp32, at every block start of ragged
//    token grids (blocks of 1..64 tokens);
//  - the fp32 sums, replayed in the kernel's order (each lane's tokens ascending from 0.f, then
//    0.f + partial_0 + partial_1 + ... read from lanes partialLane(l, g)), have the same bits as the
//    per-block kernel's order (pool.cu: thread (g, d) sums tokens g, g + 256/D, ... from 0.f;
//    column = 0.f + partial_0 + partial_1 + ...), on data where the order changes the bits.
#include "../../csrc/cuda/pool_split.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "check.h"

using nabla::TileLayout;
using nabla::cuda::PoolSplit;
using nabla::cuda::vectorPoolFits;

namespace {

constexpr int kLanes = 32, kPiece = 8;

uint32_t bitsOf(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

// x[t][d] of one block: values over many binades, so float sums depend on their order.
std::vector<float> blockValues(int length, int headDim, std::mt19937& rng) {
  std::uniform_real_distribution<float> mantissa(-1.f, 1.f);
  std::uniform_int_distribution<int> exponent(-12, 12);
  std::vector<float> x(size_t(length) * headDim);
  for (float& v : x) v = std::ldexp(mantissa(rng), exponent(rng));
  return x;
}

// The per-block kernel's column sums (pool.cu), before the division by the length.
std::vector<float> perBlockOrder(const std::vector<float>& x, int length, int headDim) {
  const int groups = 256 / headDim;
  std::vector<float> column(headDim);
  for (int d = 0; d < headDim; ++d) {
    float total = 0.f;
    for (int g = 0; g < groups; ++g) {
      float partial = 0.f;
      for (int t = g; t < length; t += groups) partial += x[size_t(t) * headDim + d];
      total += partial;
    }
    column[d] = total;
  }
  return column;
}

// The vectorised kernel's column sums, replayed lane by lane from the split.
std::vector<float> splitOrder(const std::vector<float>& x, int length, int headDim) {
  const PoolSplit split = PoolSplit::of(headDim);
  std::vector<float> sum(size_t(kLanes) * kPiece, 0.f);  // sum[lane][c]
  for (int lane = 0; lane < kLanes; ++lane)
    for (int s = 0; s < split.steps(length); ++s) {
      const int t = split.group(lane) + split.groups * s;
      if (!split.active(lane) || t >= length) continue;
      for (int c = 0; c < kPiece; ++c)
        sum[size_t(lane) * kPiece + c] += x[size_t(t) * headDim + kPiece * split.piece(lane) + c];
    }
  std::vector<float> column(headDim);
  for (int lane = 0; lane < split.pieces; ++lane)
    for (int c = 0; c < kPiece; ++c) {
      float total = 0.f + sum[size_t(lane) * kPiece + c];
      for (int g = 1; g < split.groups; ++g) total += sum[size_t(split.partialLane(lane, g)) * kPiece + c];
      column[size_t(kPiece * lane + c)] = total;
    }
  return column;
}

void checkCoverage(int headDim, int length) {
  const PoolSplit split = PoolSplit::of(headDim);
  std::vector<int> reads(size_t(length) * headDim, 0);
  for (int lane = 0; lane < kLanes; ++lane) {
    int visited = 0;
    for (int s = 0; s < split.steps(length); ++s) {
      const int t = split.group(lane) + split.groups * s;
      if (!split.active(lane) || t >= length) continue;
      ++visited;
      for (int c = 0; c < kPiece; ++c) ++reads[size_t(t) * headDim + kPiece * split.piece(lane) + c];
    }
    CHECK(visited == split.tokensOf(lane, length), "D %d length %d lane %d: %d tokens visited, tokensOf %d", headDim,
          length, lane, visited, split.tokensOf(lane, length));
  }
  for (size_t e = 0; e < reads.size(); ++e)
    CHECK(reads[e] == 1, "D %d length %d: element (%zu, %zu) read %d times", headDim, length, e / size_t(headDim),
          e % size_t(headDim), reads[e]);
}

void checkAlignment(const TileLayout& layout) {
  const int64_t seq = int64_t(layout.t) * layout.ht * layout.wt;
  for (int headDim = 8; headDim <= 256; headDim += 8) {
    const PoolSplit split = PoolSplit::of(headDim);
    for (int64_t b = 0; b < layout.blocks(seq); ++b)
      for (int lane = 0; lane < split.pieces; ++lane)
        for (int elementBytes : {2, 4}) {
          const int64_t offset = (layout.blockStart(b) * headDim + kPiece * split.piece(lane)) * elementBytes;
          CHECK(offset % 16 == 0, "grid %dx%dx%d D %d block %lld: piece at byte %lld", layout.t, layout.ht, layout.wt,
                headDim, (long long)b, (long long)offset);
        }
  }
}

}  // namespace

int main() {
  std::mt19937 rng(7);
  int orderSensitive = 0;  // cases where the reversed token order gives other bits
  for (int headDim = 8; headDim <= 256; headDim += 8) {
    const PoolSplit split = PoolSplit::of(headDim);
    CHECK(split.groups == 256 / headDim, "D %d: %d token groups, the per-block kernel has %d", headDim, split.groups,
          256 / headDim);
    CHECK(split.groups * split.pieces <= kLanes, "D %d: %d lanes used", headDim, split.groups * split.pieces);
    // the shuffle's source lane holds partial g of the reading lane's piece
    for (int lane = 0; lane < split.pieces; ++lane)
      for (int g = 0; g < split.groups; ++g) {
        const int from = split.partialLane(lane, g);
        CHECK(from >= 0 && from < kLanes && split.group(from) == g && split.piece(from) == split.piece(lane),
              "D %d: partial %d of lane %d's piece read from lane %d (group %d, piece %d)", headDim, g, lane, from,
              split.group(from), split.piece(from));
      }
    for (int length = 1; length <= 64; ++length) {
      checkCoverage(headDim, length);
      const std::vector<float> x = blockValues(length, headDim, rng);
      const std::vector<float> want = perBlockOrder(x, length, headDim), got = splitOrder(x, length, headDim);
      for (int d = 0; d < headDim; ++d)
        CHECK(bitsOf(got[d]) == bitsOf(want[d]), "D %d length %d column %d: %.9g, the per-block kernel %.9g", headDim,
              length, d, double(got[d]), double(want[d]));
      std::vector<float> reversed(x.size());
      for (int t = 0; t < length; ++t)
        std::memcpy(&reversed[size_t(t) * headDim], &x[size_t(length - 1 - t) * headDim], sizeof(float) * headDim);
      const std::vector<float> other = perBlockOrder(reversed, length, headDim);
      for (int d = 0; d < headDim; ++d) orderSensitive += bitsOf(other[d]) != bitsOf(want[d]) ? 1 : 0;
    }
  }
  CHECK(orderSensitive > 1000, "only %d columns change with the token order: the data cannot tell orders apart",
        orderSensitive);

  for (const TileLayout& layout : {TileLayout{1, 9, 9}, TileLayout{2, 13, 20}, TileLayout{3, 5, 17},
                                   TileLayout{2, 45, 24}, TileLayout{1, 3, 5}, TileLayout{2, 16, 24}})
    checkAlignment(layout);

  // where the vectorised kernel applies: whole pieces, 16-byte aligned pointers
  CHECK(vectorPoolFits(128, 256, 512), "D 128, aligned");
  CHECK(vectorPoolFits(8, 0, 16) && vectorPoolFits(256, 16, 32), "D 8 and 256");
  CHECK(!vectorPoolFits(40 + 4, 0, 0), "D 44 is not whole pieces");
  CHECK(!vectorPoolFits(12, 0, 0) && !vectorPoolFits(264, 0, 0) && !vectorPoolFits(0, 0, 0), "D 12, 264, 0");
  CHECK(!vectorPoolFits(128, 8, 0), "x on an 8-byte boundary");
  CHECK(!vectorPoolFits(128, 0, 4), "out on a 4-byte boundary");
  return finish("pool_split");
}
