// The CPU backend: every op works on contiguous host memory and uses the shared thread pool.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "../core/block_rules.h"
#include "../core/dtype.h"

namespace nabla {
namespace cpu {

// x [rows, S, D] -> out [rows, nb, D]: fp32 mean of each block's own tokens (pool.cc); nb and the
// blocks from layout (blocks of 64 tokens without a grid).
void blockPool(const void* x, DType dtype, int64_t rows, int64_t seq, int64_t headDim, const TileLayout& layout,
               float* out);

// q and k pooled for the mask: qa [heads, nq, D] as blockPool writes it, and k's block means widened
// to fp64 and transposed per head, kaT [heads, D, nk], the order the row logits read them in
// (heads = batch * heads; blocks from the layout).
struct MaskPooling {
  std::unique_ptr<float[]> qa;
  std::unique_ptr<double[]> kaT;
};

// Both poolings of the mask in one pass over q and k (pool.cc). noWait: never wait for the shared
// thread pool (ThreadPool::parallelForNoWait), for a call on the JS thread. Throws std::bad_alloc.
MaskPooling poolForMask(const MaskParams& p, const void* q, const void* k, DType dtype, bool noWait = false);

// The NABLA mask (mask.cc) from pooled q and k: P = softmax(qa . ka / sqrt(D)) per row (documents
// and, causal, later frames masked to -inf), CDF or topk selection, STA union, document AND.
// Writes kvCounts [B*H*nq] and kvIndices [B*H*nq*nk] (each row: kept ids ascending, then the
// dropped ids ascending, the layout FlexAttention builds from a dense mask, so every entry is a
// valid id); map, when not null, receives P [B*H*nq*nk] before selection.
void nablaMask(const MaskParams& p, const MaskPooling& pooled, int32_t* kvCounts, int32_t* kvIndices, float* map);

// The same from q and k: nablaMask(p, poolForMask(p, q, k, dtype), ...).
void nablaMask(const MaskParams& p, const void* q, const void* k, DType dtype, int32_t* kvCounts, int32_t* kvIndices,
               float* map);

enum class CpuKernel : int32_t {
  Auto = 0,    // Avx2 where it can run, else Scalar
  Avx2 = 1,    // AVX2 + FMA + F16C (attention_avx2.h)
  Scalar = 2,  // portable C++, the same algorithm one element at a time
};

// Empty when the AVX2 kernel can run on this CPU and build, else why not.
std::string avx2Unavailable();

// Block-sparse (or dense, kvCounts == nullptr) flash attention (attention.cc). Returns the kernel
// that ran: Avx2 for Auto where it can run (and for Avx2, which the caller checked can run).
CpuKernel attention(const AttentionParams& p, const void* q, const void* k, const void* v, DType dtype, void* out,
                    CpuKernel kernel = CpuKernel::Auto);

}  // namespace cpu
}  // namespace nabla
