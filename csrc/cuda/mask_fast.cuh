// The fast mask kernel: one CTA per (b*H + h, group of kFastRows consecutive query blocks).
//
//  1. Logits of the group's rows together: the head's pooled keys ka are staged through shared
//     memory kFastKeys key blocks x kFastSlice columns at a time (coalesced float4 loads), so every
//     ka element is read from L2 once per CTA and used for all kFastRows rows. Thread t owns key
//     block j = chunk + t and keeps its kFastRows dot products in registers (one staged ka float4
//     feeds 4 * kFastRows FMAs; the qa reads are warp broadcasts). fp32, d ascending.
//  2. Warp w then turns row i0 + w into its mask with selectRow (mask_common.cuh) on its own:
//     warp shuffles and ballots only, no __syncthreads.
// Needs headDim % 4 == 0 and fastMaskSharedBytes() of shared memory; else the simple kernel runs.
#pragma once

#include "mask_common.cuh"

namespace nabla {
namespace cuda {
namespace mask {

constexpr int kFastRows = 8;                  // query blocks per CTA, one warp each
constexpr int kFastThreads = 32 * kFastRows;  // 256
constexpr int kFastKeys = kFastThreads;       // key blocks per staged chunk, one per thread
constexpr int kFastSlice = 32;                // head-dim columns per staged chunk
// Staged key row pitch in floats: (pitch / 4) odd, so the float4 reads of 8 consecutive key rows
// (one shared-memory wavefront) hit 32 distinct banks.
constexpr int kFastKeyPitch = ((kFastSlice / 4) | 1) * 4;  // 36

// qa rows are zero-padded to whole slices so every slice is a full, unrolled kFastSlice wide.
__host__ __device__ inline int fastQueryPitch(int headDim) {
  return (headDim + kFastSlice - 1) / kFastSlice * kFastSlice;
}

// Dynamic shared memory (floats): [kFastRows][nk] logits | [kFastRows][queryPitch] qa | [kFastKeys][kFastKeyPitch] ka.
inline size_t fastMaskSharedBytes(int64_t nk, int64_t headDim) {
  return size_t(kFastRows * nk + kFastRows * fastQueryPitch(int(headDim)) + kFastKeys * kFastKeyPitch) * sizeof(float);
}

inline bool fastMaskApplies(int64_t headDim) { return headDim % 4 == 0; }

// CTAs per SM the register budget is sized for: 3 caps a thread at 80 registers, which fits up to
// Hopper; nvcc 13.0 needs 96-100 for sm_100/sm_120 and spills with 80, so Blackwell gets 2.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 1000
constexpr int kFastMinBlocks = 2;
#else
constexpr int kFastMinBlocks = 3;
#endif

__global__ void __launch_bounds__(kFastThreads, kFastMinBlocks) fastMaskKernel(const MaskKernelParams p) {
  extern __shared__ float4 fastShared[];
  const int nk = p.kvBlocks, nq = p.qBlocks, headDim = p.headDim, queryPitch = fastQueryPitch(headDim);
  const int groups = (nq + kFastRows - 1) / kFastRows;
  const int64_t bh = blockIdx.x / groups;                       // b*H + h
  const int32_t i0 = int32_t(blockIdx.x % groups) * kFastRows;  // first query block of the group
  const int tid = threadIdx.x;
  float* logits = reinterpret_cast<float*>(fastShared);  // [kFastRows][nk]
  float* query = logits + kFastRows * nk;                // [kFastRows][queryPitch]
  float* keys = query + kFastRows * queryPitch;          // [kFastKeys][kFastKeyPitch]

  stageQueryRows<kFastRows, kFastThreads>(p, bh, i0, queryPitch, query);

  // logits[r][j] = qa_{i0+r} . ka_j / sqrt(D)
  const float* keyPool = p.kPooled + bh * nk * headDim;
  for (int chunk = 0; chunk < nk; chunk += kFastKeys) {
    float dot[kFastRows];
#pragma unroll
    for (int r = 0; r < kFastRows; ++r) dot[r] = 0.f;
    for (int d0 = 0; d0 < headDim; d0 += kFastSlice) {
      __syncthreads();  // the previous slice has been read (first pass: qa is written)
                        // stage ka[chunk .. chunk + kFastKeys)[d0 .. d0 + kFastSlice), zeros outside the matrix
#pragma unroll 4
      for (int e = tid; e < kFastKeys * (kFastSlice / 4); e += kFastThreads) {
        const int key = e / (kFastSlice / 4), c = 4 * (e % (kFastSlice / 4)), j = chunk + key;
        float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
        if (j < nk && d0 + c < headDim) v = *reinterpret_cast<const float4*>(keyPool + int64_t(j) * headDim + d0 + c);
        *reinterpret_cast<float4*>(keys + key * kFastKeyPitch + c) = v;
      }
      __syncthreads();
      const float* k = keys + tid * kFastKeyPitch;
      const float* q = query + d0;
#pragma unroll 2  // more unrolling hoists more qa loads: > 80 registers, below 3 CTAs per SM
      for (int c = 0; c < kFastSlice; c += 4) {
        const float4 kv = *reinterpret_cast<const float4*>(k + c);
#pragma unroll
        for (int r = 0; r < kFastRows; ++r) {
          const float4 qv = *reinterpret_cast<const float4*>(q + r * queryPitch + c);
          dot[r] = fmaf(qv.x, kv.x, dot[r]);
          dot[r] = fmaf(qv.y, kv.y, dot[r]);
          dot[r] = fmaf(qv.z, kv.z, dot[r]);
          dot[r] = fmaf(qv.w, kv.w, dot[r]);
        }
      }
    }
    const int j = chunk + tid;
    if (j < nk) {
#pragma unroll
      for (int r = 0; r < kFastRows; ++r) logits[r * nk + j] = dot[r] / p.sqrtHeadDim;
    }
  }
  __syncthreads();

  // row i0 + w: softmax, selection, STA, documents, kvIndices (warp w alone)
  const int warp = tid / 32;
  const int32_t i = i0 + warp;
  if (i < nq) selectRow(p, WarpTeam{}, bh * nq + i, i, reinterpret_cast<uint32_t*>(logits + warp * nk));
}

}  // namespace mask
}  // namespace cuda
}  // namespace nabla
