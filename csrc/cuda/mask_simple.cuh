// The simple mask kernel: one CTA per (b, h, query block i) row, obviously correct, any head dim
// and any row length the device's shared memory holds (4 bytes per key block).
#pragma once

#include "mask_common.cuh"

namespace nabla {
namespace cuda {
namespace mask {

constexpr int kSimpleThreads = 256;
constexpr int kSimpleWarps = kSimpleThreads / 32;

// Dynamic shared memory of simpleMaskKernel: [nk] logits, then [D] qa.
inline size_t simpleMaskSharedBytes(int64_t nk, int64_t headDim) { return size_t(nk + headDim) * sizeof(uint32_t); }

__global__ void __launch_bounds__(kSimpleThreads, 4) simpleMaskKernel(const MaskKernelParams p) {
  extern __shared__ uint32_t shared[];  // [nk] logits -> P -> keys -> keep flags (as bits), then [D] qa
  __shared__ float warpFloat[kSimpleWarps];
  __shared__ uint32_t warpUint[kSimpleWarps];
  __shared__ int warpInt[kSimpleWarps];

  const int nk = p.kvBlocks, headDim = p.headDim;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int64_t row = blockIdx.x;  // (b*H + h) * nq + i
  const int64_t bh = row / p.qBlocks;
  const int32_t i = int32_t(row % p.qBlocks);
  uint32_t* slot = shared;  // slot[j]: the current per-key-block quantity
  float* query = reinterpret_cast<float*>(shared + nk);

  // qa = pooled query block i
  for (int d = tid; d < headDim; d += kSimpleThreads) query[d] = p.qPooled[row * headDim + d];
  __syncthreads();

  // logit_j = qa . ka_j / sqrt(D) (one warp per j)
  const float* keyPool = p.kPooled + bh * nk * headDim;
  for (int j = warp; j < nk; j += kSimpleWarps) {
    float dot = 0.f;
    for (int d = lane; d < headDim; d += 32) dot += query[d] * keyPool[int64_t(j) * headDim + d];
    dot = warpReduce(dot, SumOp{});
    if (lane == 0) slot[j] = __float_as_uint(dot / p.sqrtHeadDim);
  }
  __syncthreads();

  selectRow(p, CtaTeam<kSimpleWarps>{warpFloat, warpUint, warpInt}, row, i, slot);
}

}  // namespace mask
}  // namespace cuda
}  // namespace nabla
