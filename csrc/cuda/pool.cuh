// Block pooling, shared by blockPool() and nablaMask() (which pools q and k into scratch buffers).
#pragma once

#include "common.cuh"

namespace nabla {
namespace cuda {

// Enqueues out[r, i, :] = mean of block i's tokens x[r, blockStart(i) .. + blockLength(i), :] (fp32)
// for x [rows, seq, headDim]; out is [rows, layout.blocks(seq), headDim].
Status enqueueBlockPool(const void* x, DType dtype, int64_t rows, int64_t seq, int64_t headDim,
                        const TileLayout& layout, float* out, cudaStream_t stream);

}  // namespace cuda
}  // namespace nabla
