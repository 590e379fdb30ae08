// Block pooling (docs/nabla.md 1.1): out[r, i, :] = mean of block i's own tokens of x[r] (64 of them
// without a grid; blockLength(i) in 1..64 for a tile of a token grid), accumulated in fp32.
#include "pool.cuh"

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

Status blockPool(int device, const void* x, DType dtype, int64_t rows, int64_t seq, int64_t headDim, float* out,
                 const TileLayout& layout) {
  return onDevice(device, "blockPool", [&](cudaStream_t stream, Scratch&) {
    return enqueueBlockPool(x, dtype, rows, seq, headDim, layout, out, stream);
  });
}

}  // namespace cuda
}  // namespace nabla
