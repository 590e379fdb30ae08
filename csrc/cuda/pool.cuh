// Block pooling, shared by blockPool() and nablaMask() (which pools q and k into scratch buffers).
#pragma once

#include "common.cuh"

namespace nabla {
namespace cuda {

// Enqueues out[r, i, :] = mean of x[r, 64i .. 64i+63, :] (fp32) for x [rows, seq, headDim].
Status enqueueBlockPool(const void* x, DType dtype, int64_t rows, int64_t seq, int64_t headDim, float* out,
                        cudaStream_t stream);

}  // namespace cuda
}  // namespace nabla
