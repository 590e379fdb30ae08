// The fast2 mask kernel: one CTA per (b*H + h, group of kFast2Rows = 16 consecutive query blocks),
// 8 warps. Same results as the fast kernel, bit for bit: the same fp32 logits (d ascending, fmaf
// from 0.f, then / sqrt(D)) and the same selectRowIn (mask_common.cuh) with the same per-lane order.
//
//  1. Logits of the 16 rows: ka is staged through shared memory kFast2Keys key blocks x kFast2Slice
//     columns at a time; warp w owns rows 8 (w % 2) .. + 8 and key blocks 64 (w / 2) + lane + 32c
//     (c = 0, 1) of each chunk: a thread's tile is 8 rows x 2 keys, so one staged float4 of each
//     key feeds 8 rows (qa float4 reads are warp broadcasts), 64 FMAs per 10 shared-memory loads.
//  2. Warp w turns rows w and w + 8 into masks: each row's logits are read once from shared memory
//     into the lane's registers (RegisterRow, slot m = key block 32m + lane), and the softmax, the
//     30 bisection rounds and the lists work on registers and warp shuffles.
//
// Bytes per mask row at 720p (B1 H40, nk = nq = 1050, D 128; counts, and estimates to be confirmed
// by a GPU run; fast kernel in brackets):
//   L2 -> SM:      ka once per CTA: nk * D * 4 / 16 rows = 33.6 KB [/ 8 rows: 67.2 KB]; qa 0.5 KB;
//                  out: lists 8.4 KB (+ 4.2 KB map when asked).
//   shared memory: ka staging 33.6 KB written [67.2 KB]; logit loads, per 4 columns of a 256-key
//                  chunk, 8 warps x (8 qa broadcasts + 2 ka float4 loads of 4 wavefronts) = 128
//                  wavefronts of 128 B for 16 rows x 256 keys: nk * D * 1 B = 134 KB
//                  [8 x (8 + 4) = 96 wavefronts for 8 rows: 1.5 B, 202 KB]; logits 4.2 KB written
//                  and read once [read again in each of the ~36 passes of the selection: ~150 KB].
//   720p totals:   42,000 rows: 1.41 GB of L2 reads [2.82 GB]; 44 M shared-memory wavefronts
//                  (0.17 ms at one per clock on 132 SMs at 1.98 GHz); 5.65 G FMA (0.17 ms at the
//                  fp32 peak); issue: 0.18 G FFMA + 0.04 G LDS warp instructions for the logits and
//                  ~0.19 G for the selection (~36 passes over a lane's 33 slots at ~4 instructions),
//                  0.41 G in all = 0.39 ms at 4 per clock per SM, the binding limit. Estimate
//                  0.35-0.45 ms for this kernel; with the vectorised pooling (q and k, 1.38 GB, read
//                  once: 0.32 ms at 4.3 TB/s) 0.7-0.8 ms for the mask, against 2.9 ms measured.
// Shared memory: 16 nk + 16 * ceil(D/16)*16 + 256 * 20 floats: 95,872 B at 720p (nk 1050; two CTAs
// per SM on Hopper; fits the 99 KiB = 101,376 B of sm_86/89/120). The 720p-full preset (nk 1260)
// needs 109,312 B: fast2 refuses it on those 99 KiB devices (two CTAs per SM still fit on Hopper).
// Needs headDim % 4 == 0 and nk <= kFast2MaxKeyBlocks = 32 * kFast2Slots = 1280.
#pragma once

#include "mask_common.cuh"

namespace nabla {
namespace cuda {
namespace mask {

constexpr int kFast2Rows = 16;                                // query blocks per CTA
constexpr int kFast2Warps = 8;                                // each selects kFast2Rows / kFast2Warps rows
constexpr int kFast2Threads = 32 * kFast2Warps;               // 256
constexpr int kFast2TileRows = 8;                             // rows of one thread's logit tile (warp-uniform)
constexpr int kFast2TileKeys = 2;                             // key blocks of one thread's logit tile
constexpr int kFast2RowGroups = kFast2Rows / kFast2TileRows;  // 2
constexpr int kFast2Keys = 32 * kFast2TileKeys * (kFast2Warps / kFast2RowGroups);  // 256 per chunk
constexpr int kFast2Slice = 16;                                                    // columns per chunk
// Staged key row pitch in floats: (pitch / 4) odd, so the float4 reads of 8 consecutive key rows
// (one shared-memory wavefront) hit 32 distinct banks.
constexpr int kFast2KeyPitch = ((kFast2Slice / 4) | 1) * 4;  // 20
constexpr int kFast2Slots = 40;                              // registers per lane: rows of <= 32 x 40 = 1280 key blocks

// float4 stores per thread to stage one chunk of ka (4)
constexpr int kFast2StageSteps = kFast2Keys * (kFast2Slice / 4) / kFast2Threads;

static_assert(kFast2Rows % kFast2Warps == 0, "every warp selects the same number of rows");
static_assert(kFast2Keys * (kFast2Slice / 4) % kFast2Threads == 0, "every thread stages the same float4 count");
static_assert(kFast2Warps % kFast2RowGroups == 0, "warps split evenly into row groups");

// qa rows are zero-padded to whole slices so every slice is a full, unrolled kFast2Slice wide.
__host__ __device__ inline int fast2QueryPitch(int headDim) {
  return (headDim + kFast2Slice - 1) / kFast2Slice * kFast2Slice;
}

// Dynamic shared memory (floats): [kFast2Rows][nk] logits | [kFast2Rows][queryPitch] qa |
// [kFast2Keys][kFast2KeyPitch] ka.
inline size_t fast2MaskSharedBytes(int64_t nk, int64_t headDim) {
  return size_t(kFast2Rows * nk + kFast2Rows * fast2QueryPitch(int(headDim)) + kFast2Keys * kFast2KeyPitch) *
         sizeof(float);
}

constexpr int64_t kFast2MaxKeyBlocks = 32 * kFast2Slots;  // one register slot per 32 key blocks

// The inputs fast2 applies to (besides fast2MaskSharedBytes fitting the device): whole float4 columns,
// and rows that fit the register slots.
inline bool fast2HeadDimFits(int64_t headDim) { return headDim % 4 == 0; }
inline bool fast2RowFits(int64_t nk) { return nk <= kFast2MaxKeyBlocks; }

__global__ void __launch_bounds__(kFast2Threads, 2) fast2MaskKernel(const MaskKernelParams p) {
  extern __shared__ float4 fast2Shared[];
  const int nk = p.kvBlocks, nq = p.qBlocks, headDim = p.headDim, queryPitch = fast2QueryPitch(headDim);
  const int groups = (nq + kFast2Rows - 1) / kFast2Rows;
  const int64_t bh = blockIdx.x / groups;                        // b*H + h
  const int32_t i0 = int32_t(blockIdx.x % groups) * kFast2Rows;  // first query block of the group
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  float* logits = reinterpret_cast<float*>(fast2Shared);  // [kFast2Rows][nk]
  float* query = logits + kFast2Rows * nk;                // [kFast2Rows][queryPitch]
  float* keys = query + kFast2Rows * queryPitch;          // [kFast2Keys][kFast2KeyPitch]

  stageQueryRows<kFast2Rows, kFast2Threads>(p, bh, i0, queryPitch, query);

  // logits[r][j] = qa_{i0+r} . ka_j / sqrt(D): this thread's rows firstRow .. + 8, keys firstKey + 32c
  const int firstRow = kFast2TileRows * (warp % kFast2RowGroups);
  const int firstKey = 32 * kFast2TileKeys * (warp / kFast2RowGroups) + lane;
  const float* keyPool = p.kPooled + bh * nk * headDim;
  for (int chunk = 0; chunk < nk; chunk += kFast2Keys) {
    float dot[kFast2TileRows][kFast2TileKeys];
#pragma unroll
    for (int r = 0; r < kFast2TileRows; ++r)
#pragma unroll
      for (int c = 0; c < kFast2TileKeys; ++c) dot[r][c] = 0.f;
    for (int d0 = 0; d0 < headDim; d0 += kFast2Slice) {
      __syncthreads();  // the previous slice has been read (first pass: qa is written)
                        // stage ka[chunk .. chunk + kFast2Keys)[d0 .. d0 + kFast2Slice), zeros outside the matrix:
                        // float4 e = tid + kFast2Threads * s, the same kFast2StageSteps on every thread
#pragma unroll
      for (int s = 0; s < kFast2StageSteps; ++s) {
        const int e = tid + kFast2Threads * s;
        const int key = e / (kFast2Slice / 4), c = 4 * (e % (kFast2Slice / 4)), j = chunk + key;
        float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
        if (j < nk && d0 + c < headDim) v = *reinterpret_cast<const float4*>(keyPool + int64_t(j) * headDim + d0 + c);
        *reinterpret_cast<float4*>(keys + key * kFast2KeyPitch + c) = v;
      }
      __syncthreads();
      const float* q = query + firstRow * queryPitch + d0;
#pragma unroll 1  // unrolling hoists the next qa loads: at the 128-register cap of two CTAs per SM
      for (int c = 0; c < kFast2Slice; c += 4) {
        float4 kv[kFast2TileKeys];
#pragma unroll
        for (int t = 0; t < kFast2TileKeys; ++t)
          kv[t] = *reinterpret_cast<const float4*>(keys + (firstKey + 32 * t) * kFast2KeyPitch + c);
#pragma unroll
        for (int r = 0; r < kFast2TileRows; ++r) {
          const float4 qv = *reinterpret_cast<const float4*>(q + r * queryPitch + c);
#pragma unroll
          for (int t = 0; t < kFast2TileKeys; ++t) {
            dot[r][t] = fmaf(qv.x, kv[t].x, dot[r][t]);
            dot[r][t] = fmaf(qv.y, kv[t].y, dot[r][t]);
            dot[r][t] = fmaf(qv.z, kv[t].z, dot[r][t]);
            dot[r][t] = fmaf(qv.w, kv[t].w, dot[r][t]);
          }
        }
      }
    }
#pragma unroll
    for (int t = 0; t < kFast2TileKeys; ++t) {
      const int j = chunk + firstKey + 32 * t;
      if (j < nk) {
#pragma unroll
        for (int r = 0; r < kFast2TileRows; ++r) logits[(firstRow + r) * nk + j] = dot[r][t] / p.sqrtHeadDim;
      }
    }
  }
  __syncthreads();

  // rows warp, warp + 8: softmax, selection, STA, documents, kvIndices (the warp alone, in registers)
  for (int r = warp; r < kFast2Rows; r += kFast2Warps) {
    const int32_t i = i0 + r;
    if (i >= nq) break;
    RegisterRow<kFast2Slots> slots;
    slots.nk = nk;
    slots.lane = lane;
    slots.slots = (nk + 31) / 32;
    const uint32_t* rowLogits = reinterpret_cast<const uint32_t*>(logits + r * nk);
#pragma unroll
    for (int m = 0; m < kFast2Slots; ++m) {
      if (m >= slots.slots) break;
      const int j = 32 * m + lane;
      slots.value[m] = j < nk ? rowLogits[j] : 0u;
    }
    selectRowIn(p, WarpTeam{}, bh * nq + i, i, slots);
  }
}

}  // namespace mask
}  // namespace cuda
}  // namespace nabla
