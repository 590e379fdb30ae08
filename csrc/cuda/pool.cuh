// Block pooling, shared by blockPool() and nablaMask() (which pools q and k into scratch buffers).
#pragma once

#include "common.cuh"

namespace nabla {
namespace cuda {

// Enqueues out[r, i, :] = mean of block i's tokens x[r, blockStart(i) .. + blockLength(i), :] (fp32)
// for x [rows, seq, headDim]; out is [rows, layout.blocks(seq), headDim].
Status enqueueBlockPool(const void* x, DType dtype, int64_t rows, int64_t seq, int64_t headDim,
                        const TileLayout& layout, float* out, cudaStream_t stream);

// Whether the vectorised kernel pools x into out (pool_split.h: head dim a multiple of 8, both
// pointers 16-byte aligned).
bool vectorPoolApplies(const void* x, const float* out, int64_t headDim);

// Enqueues both poolings in one launch of the vectorised kernel: q [qRows, seqQ, D] -> qOut and
// k [kRows, seqKv, D] -> kOut (k may be null: q alone). Same results as enqueueBlockPool on each;
// fails unless vectorPoolApplies to both.
Status enqueueVectorPool(const void* q, int64_t qRows, int64_t seqQ, float* qOut, const void* k, int64_t kRows,
                         int64_t seqKv, float* kOut, DType dtype, int64_t headDim, const TileLayout& layout,
                         cudaStream_t stream);

}  // namespace cuda
}  // namespace nabla
