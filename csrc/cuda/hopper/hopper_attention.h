// The Hopper attention kernel as seen by the dispatch (attention.cu): its launcher, the schedule it
// takes rows from, and the tensor-map helper. Kernel body: attention_hopper.cuh; instances:
// ../kernels/attention_hopper_<dtype>_d<dim>.cu.
#pragma once

#include <cuda.h>

#include "../attention_params.cuh"

namespace nabla {
namespace cuda {
namespace hopper {

// Rows are taken from *ticket (zeroed before the launch) by atomicAdd; ticket n runs row
// rowOrder[n] (head by head, longest-first inside a head: row_order.h, launchLongestFirstOrder),
// or row n when rowOrder is null (dense: all rows equally long).
struct RowSchedule {
  const int32_t* rowOrder;
  int32_t* ticket;
};

// True when this binary holds sm_90a machine code (the kernel is a never-launched stub elsewhere).
bool compiledForSm90a();

// A 2D tensor map over `rows` rows of `headDim` 2-byte elements (row stride headDim elements), read
// in 64 x 64 boxes with 128-byte swizzle: the layout of layout.h. cuTensorMapEncodeTiled is reached
// through cudaGetDriverEntryPointByVersion (no link against libcuda).
Status encodeRowTileMap(CUtensorMap* map, const void* base, CUtensorMapDataType type, uint64_t rows, uint32_t headDim);

// order[n] = the row ticket n runs, for rows = heads x rowsPerHead rows with counts[row] kept blocks:
// head by head, longest-first inside a head (row_order.h), computed on the device in `stream`.
Status launchLongestFirstOrder(const int32_t* counts, int64_t rows, int32_t rowsPerHead, int32_t* order,
                               cudaStream_t stream);

// Elem in {__half, __nv_bfloat16}, headDim == valueDim == kHeadDim in {64, 128}; q, k, v, out
// 16-byte aligned; compute capability 9.0 and compiledForSm90a() (the dispatch checks).
template <typename Elem, int kHeadDim>
Status launchHopperAttention(const AttentionKernelParams& p, const RowSchedule& schedule, cudaStream_t stream);

}  // namespace hopper
}  // namespace cuda
}  // namespace nabla
