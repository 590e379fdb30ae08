// How the vectorised pooling kernel (pool_vector.cuh) splits one block among the 32 lanes of a warp.
// Plain C++ (host and device), so test/native/pool_split.cc checks it without a GPU.
//
// A token row of D elements is cut into C = D / 8 pieces of 8 elements (16 bytes for fp16/bf16, two
// 16-byte loads for fp32); G = floor(32 / C) tokens are read at once. Lane l reads piece l % C of
// tokens g, g + G, g + 2G, ... (g = l / C; lanes with g >= G idle) and sums them in that order from
// 0.f; the G partial sums of a column are then added in g order from 0.f. For D = 8m,
// G = floor(32 / m) = floor(256 / D), the token groups of the per-block kernel (pool.cu): each
// column is summed in the same order, so both kernels give the same bits.
#pragma once

#include <cstddef>  // block_rules.h uses size_t
#include <cstdint>

#include "../core/block_rules.h"

namespace nabla {
namespace cuda {

constexpr int kPoolPieceElements = 8;  // elements per piece (16 bytes of fp16/bf16, 32 of fp32)
constexpr int kPoolWarpLanes = 32;

struct PoolSplit {
  int pieces;  // C: pieces per token row
  int groups;  // G: tokens read at once by one warp

  NABLA_HD static PoolSplit of(int headDim) {
    const int pieces = headDim / kPoolPieceElements;
    return PoolSplit{pieces, kPoolWarpLanes / pieces};
  }
  NABLA_HD int group(int lane) const { return lane / pieces; }  // first token of the lane
  NABLA_HD int piece(int lane) const { return lane % pieces; }  // columns [8 * piece, + 8)
  NABLA_HD bool active(int lane) const { return group(lane) < groups; }
  // Tokens lane reads of a block of `length` tokens: g, g + G, ... < length.
  NABLA_HD int tokensOf(int lane, int length) const {
    const int g = group(lane);
    return active(lane) && g < length ? (length - g + groups - 1) / groups : 0;
  }
  // The most tokens any lane reads (lane 0's count): the warp's step count.
  NABLA_HD int steps(int length) const { return (length + groups - 1) / groups; }
  // The lane holding partial sum g of lane l's piece: l + g*C, taken mod 32 so that every lane
  // names a lane of the warp in the shuffle (only lanes l < C use the sum; for them l + g*C < G*C <= 32).
  NABLA_HD int partialLane(int lane, int g) const { return (lane + g * pieces) % kPoolWarpLanes; }
};

// The vectorised kernel needs whole pieces (D % 8 == 0, which also makes every token row and every
// block start a multiple of 16 bytes) and 16-byte aligned x and out; else the per-block kernel runs.
NABLA_HD inline bool vectorPoolFits(int64_t headDim, uintptr_t x, uintptr_t out) {
  return headDim >= kPoolPieceElements && headDim <= kMaxHeadDim && headDim % kPoolPieceElements == 0 && x % 16 == 0 &&
         out % 16 == 0;
}

}  // namespace cuda
}  // namespace nabla
