// The vectorised pooling kernel: q and k in one launch, one warp per (row, block) item, 16-byte
// loads, several in flight per lane, fp32 sums in the per-block kernel's order (pool_split.h).
//
// Items [0, q.rows * q.blocks) are q's (row-major), the rest k's; eight warps per CTA. Lane l of an
// item's warp loads kInFlight pieces (tokens g + G*s, s = s0 .. s0 + kInFlight - 1) before adding any,
// so a lane has kInFlight independent 16-byte loads outstanding (fp32: two per piece, so half as
// many steps), then adds them in s order. At 720p (D 128, bf16) a block is 16 KiB, G = 2: 32 loads
// per lane, four rounds of eight.
#pragma once

#include "common.cuh"
#include "pool_split.h"

namespace nabla {
namespace cuda {
namespace pool {

constexpr int kVectorWarps = 8;
constexpr int kVectorThreads = 32 * kVectorWarps;

// One tensor of the launch: x [rows, seq, D] -> out [rows, blocks, D].
struct PoolSource {
  const void* x;
  float* out;
  int64_t rows, seq, blocks;
};

// Pieces a lane loads before adding: 8 x 16 bytes (fp16/bf16) or 4 x 32 bytes (fp32).
template <typename T>
constexpr int inFlightOf() {
  return sizeof(T) == 4 ? 4 : 8;
}

// Element e of 32-bit words w0..w3 (constant e after unrolling: no local memory).
__device__ __forceinline__ uint32_t wordOf(const uint4& v, int e) {
  return e == 0 ? v.x : e == 1 ? v.y : e == 2 ? v.z : v.w;
}
__device__ __forceinline__ float widen(uint32_t bits, float) { return __uint_as_float(bits); }
__device__ __forceinline__ float widen(uint32_t bits, __half) {
  return __half2float(__ushort_as_half(static_cast<unsigned short>(bits)));
}
__device__ __forceinline__ float widen(uint32_t bits, __nv_bfloat16) { return __uint_as_float(bits << 16); }

// A piece: 8 consecutive elements as 16-byte words.
template <typename T>
struct Piece {
  static constexpr int kWords = kPoolPieceElements * int(sizeof(T)) / 16;
  static constexpr int kPerWord = 4 / int(sizeof(T));  // elements per 32-bit word
  uint4 word[kWords];
  // element c as fp32, exactly as toFloat(T) widens it
  __device__ __forceinline__ float element(int c) const {
    const int w = c / kPerWord;  // 32-bit word of the piece
    const uint32_t bits = wordOf(word[w / 4], w % 4);
    const int shift = 16 * (c % kPerWord) * (kPerWord - 1);  // upper half for odd 16-bit elements
    return widen(kPerWord == 1 ? bits : (bits >> shift) & 0xffffu, T{});
  }
};

// Two CTAs per SM at least (<= 128 registers): without a minimum, nvcc 13.0 caps sm_120 at 80
// registers and spills.
template <typename T>
__global__ void __launch_bounds__(kVectorThreads, 2)
    vectorPoolKernel(const PoolSource q, const PoolSource k, int headDim, TileLayout layout) {
  constexpr int kInFlight = inFlightOf<T>();
  const int lane = threadIdx.x % 32;
  int64_t item = int64_t(blockIdx.x) * kVectorWarps + threadIdx.x / 32;
  const int64_t qItems = q.rows * q.blocks;
  const bool isQ = item < qItems;
  // this item's tensor (field by field: selecting a whole parameter struct would go through local memory)
  const void* x = isQ ? q.x : k.x;
  float* out = isQ ? q.out : k.out;
  const int64_t blocks = isQ ? q.blocks : k.blocks, seq = isQ ? q.seq : k.seq;
  if (!isQ) item -= qItems;
  if (item >= (isQ ? q.rows : k.rows) * blocks) return;  // the whole warp: items are per warp
  const int64_t row = item / blocks, block = item % blocks;
  const int length = layout.blockLength(block);
  const PoolSplit split = PoolSplit::of(headDim);
  const int g = split.group(lane), piece = split.piece(lane);
  const bool active = split.active(lane);
  const T* tile = static_cast<const T*>(x) + (row * seq + layout.blockStart(block)) * headDim;
  const T* column = tile + piece * kPoolPieceElements;  // this lane's 8 columns of token 0

  // sum[c] = sum_{t = g, g + G, ... < length} x[t, 8 * piece + c], t ascending from 0.f
  float sum[kPoolPieceElements];
#pragma unroll
  for (int c = 0; c < kPoolPieceElements; ++c) sum[c] = 0.f;
  const int steps = split.steps(length);
  for (int s0 = 0; s0 < steps; s0 += kInFlight) {
    Piece<T> loaded[kInFlight];
#pragma unroll
    for (int u = 0; u < kInFlight; ++u) {
      const int t = g + split.groups * (s0 + u);
      if (active && t < length) {
        const uint4* from = reinterpret_cast<const uint4*>(column + int64_t(t) * headDim);
#pragma unroll
        for (int w = 0; w < Piece<T>::kWords; ++w) loaded[u].word[w] = __ldg(from + w);
      }
    }
#pragma unroll
    for (int u = 0; u < kInFlight; ++u) {
      const int t = g + split.groups * (s0 + u);
      if (active && t < length) {
#pragma unroll
        for (int c = 0; c < kPoolPieceElements; ++c) sum[c] += loaded[u].element(c);
      }
    }
  }

  // column total = 0.f + partial_0 + partial_1 + ... + partial_{G-1}: lane l < C holds partial_0
  // of piece l; partial_g of that piece is on lane split.partialLane(l, g)
  float total[kPoolPieceElements];
#pragma unroll
  for (int c = 0; c < kPoolPieceElements; ++c) total[c] = 0.f + sum[c];
  for (int gg = 1; gg < split.groups; ++gg) {
#pragma unroll
    for (int c = 0; c < kPoolPieceElements; ++c)
      total[c] += __shfl_sync(0xffffffffu, sum[c], split.partialLane(lane, gg));
  }
  if (lane < split.pieces) {
    float4* mean = reinterpret_cast<float4*>(out + item * headDim + piece * kPoolPieceElements);
    const float count = float(length);
    mean[0] = make_float4(total[0] / count, total[1] / count, total[2] / count, total[3] / count);
    mean[1] = make_float4(total[4] / count, total[5] / count, total[6] / count, total[7] / count);
  }
}

}  // namespace pool
}  // namespace cuda
}  // namespace nabla
