// Block pooling (docs/nabla.md 1.1): out[r, i, :] = mean of block i's own tokens of x[r] (64 of them
// without a grid; blockLength(i) in 1..64 for a tile of a token grid), accumulated in fp32. Two
// kernels, same sums in the same order (pool_split.h): the per-block one below (every head dim) and
// the vectorised one (pool_vector.cuh: q and k in one launch, 16-byte loads; head dims that are a
// multiple of 8 and 16-byte aligned pointers). The vectorised one is the default where it applies
// (H200, 720p q: 0.21 ms against 0.63; bench/RESULTS.md); PoolKernel::Simple asks for the other.
#include "pool.cuh"
#include "pool_vector.cuh"

namespace nabla {
namespace cuda {
namespace {

constexpr int kPoolThreads = 256;

// One CTA per (row, block) pair: its blockLength x D tokens are contiguous (tile order). Thread (g, d) sums column d of
// tokens g, g + G, g + 2G, ... (G = 256 / D token groups), so each sweep reads G*D consecutive
// elements (coalesced); the G partial sums of a column are then added in a fixed order.
template <typename T>
__global__ void __launch_bounds__(kPoolThreads)
    blockPoolKernel(const T* __restrict__ x, int headDim, int64_t seq, int64_t blocks, TileLayout layout,
                    float* __restrict__ out) {
  __shared__ float partial[kPoolThreads];
  const int64_t pair = blockIdx.x;  // (row, block) pair = row * blocks + block
  const int64_t row = pair / blocks, block = pair % blocks;
  const int length = layout.blockLength(block);
  const T* tile = x + (row * seq + layout.blockStart(block)) * headDim;
  const int groups = kPoolThreads / headDim;  // >= 1 since headDim <= 256
  const int d = threadIdx.x % headDim, g = threadIdx.x / headDim;

  float sum = 0.f;  // sum_{t = g mod G} x[t, d]
  if (g < groups)
    for (int t = g; t < length; t += groups) sum += toFloat(tile[t * headDim + d]);
  partial[threadIdx.x] = sum;
  __syncthreads();

  if (threadIdx.x < headDim) {
    float column = 0.f;  // sum_t x[t, d] = sum_g partial[g, d]
    for (int gg = 0; gg < groups; ++gg) column += partial[gg * headDim + threadIdx.x];
    out[pair * headDim + threadIdx.x] = column / float(length);
  }
}

}  // namespace

Status enqueueBlockPool(const void* x, DType dtype, int64_t rows, int64_t seq, int64_t headDim,
                        const TileLayout& layout, float* out, cudaStream_t stream) {
  const int64_t blocks = layout.blocks(seq);
  const int64_t pairs = rows * blocks;
  if (pairs == 0) return Status{};
  if (headDim < 1 || headDim > kMaxHeadDim)
    return invalidValue("blockPool supports head dims 1.." + std::to_string(kMaxHeadDim) + ", got " +
                        std::to_string(headDim));
  if (pairs > int64_t(0x7fffffff))
    return invalidValue("blockPool: too many (row, block) pairs for one grid: " + std::to_string(pairs));
  return withElementType(dtype, [&](auto element) -> Status {
    using T = decltype(element);
    blockPoolKernel<T><<<unsigned(pairs), kPoolThreads, 0, stream>>>(static_cast<const T*>(x), int(headDim), seq,
                                                                     blocks, layout, out);
    return launched("blockPoolKernel");
  });
}

bool vectorPoolApplies(const void* x, const float* out, int64_t headDim) {
  return vectorPoolFits(headDim, reinterpret_cast<uintptr_t>(x), reinterpret_cast<uintptr_t>(out));
}

Status enqueueVectorPool(const void* q, int64_t qRows, int64_t seqQ, float* qOut, const void* k, int64_t kRows,
                         int64_t seqKv, float* kOut, DType dtype, int64_t headDim, const TileLayout& layout,
                         cudaStream_t stream) {
  const pool::PoolSource qs{q, qOut, qRows, seqQ, layout.blocks(seqQ)};
  const pool::PoolSource ks{k, kOut, kRows, seqKv, k != nullptr ? layout.blocks(seqKv) : 0};
  const int64_t items = qs.rows * qs.blocks + ks.rows * ks.blocks;
  if (items == 0) return Status{};
  if (!vectorPoolApplies(q, qOut, headDim) || (ks.blocks > 0 && !vectorPoolApplies(k, kOut, headDim)))
    return invalidValue(
        "the vectorised pooling kernel needs a head dim that is a multiple of 8 and 16-byte aligned "
        "pointers, got head dim " +
        std::to_string(headDim));
  const int64_t ctas = (items + pool::kVectorWarps - 1) / pool::kVectorWarps;
  if (ctas > int64_t(0x7fffffff))
    return invalidValue("blockPool: too many (row, block) pairs for one grid: " + std::to_string(items));
  return withElementType(dtype, [&](auto element) -> Status {
    using T = decltype(element);
    pool::vectorPoolKernel<T><<<unsigned(ctas), pool::kVectorThreads, 0, stream>>>(qs, ks, int(headDim), layout);
    return launched("vectorPoolKernel");
  });
}

Status blockPool(int device, const void* x, DType dtype, int64_t rows, int64_t seq, int64_t headDim, float* out,
                 const TileLayout& layout, PoolKernel kernel, PoolKernel* ran) {
  const bool vector = kernel != PoolKernel::Simple && vectorPoolApplies(x, out, headDim);
  if (ran != nullptr) *ran = vector ? PoolKernel::Fast2 : PoolKernel::Simple;
  return onDevice(device, "blockPool", [&](cudaStream_t stream, Scratch&) {
    return vector ? enqueueVectorPool(x, rows, seq, out, nullptr, 0, 0, nullptr, dtype, headDim, layout, stream)
                  : enqueueBlockPool(x, dtype, rows, seq, headDim, layout, out, stream);
  });
}

}  // namespace cuda
}  // namespace nabla
