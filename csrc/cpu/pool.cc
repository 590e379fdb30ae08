// Block pooling: out[r, i, :] = mean of block i's own tokens x[r, start(i) .. start(i)+len(i)-1, :]
// (docs/nabla.md 1.1; blocks of 64 tokens without a grid).
#include <vector>

#include "../core/thread_pool.h"
#include "cpu_ops.h"

namespace nabla {
namespace cpu {
namespace {

template <DType T>
inline float load(const void* base, size_t i) {
  if constexpr (T == DType::Float32) return static_cast<const float*>(base)[i];
  else if constexpr (T == DType::BFloat16) return bf16ToFloat(static_cast<const uint16_t*>(base)[i]);
  else return halfToFloat(static_cast<const uint16_t*>(base)[i]);
}

// One dtype at a time so the inner loop (independent adds across d) vectorises. fp64 sums: the
// mean is exact to fp32 rounding, and neither overflows near the fp32/bf16 maximum nor loses
// subnormal inputs.
template <DType T>
void poolBlocks(const void* x, int64_t begin, int64_t end, int64_t seq, int64_t headDim, const TileLayout& layout,
                float* out) {
  const size_t D = size_t(headDim);
  const int64_t nb = layout.blocks(seq);
  std::vector<double> sums(D);
  double* __restrict sum = sums.data();  // no aliasing with x or out: lets the loops vectorise
  for (int64_t rb = begin; rb < end; ++rb) {
    std::fill(sum, sum + D, 0.0);
    const int64_t row = rb / nb, b = rb % nb;
    const size_t first = size_t(row * seq + layout.blockStart(b)) * D;
    const size_t length = size_t(layout.blockLength(b));
    for (size_t t = 0; t < length; ++t)
      for (size_t d = 0; d < D; ++d) sum[d] += double(load<T>(x, first + t * D + d));
    for (size_t d = 0; d < D; ++d) out[size_t(rb) * D + d] = float(sum[d] / double(length));
  }
}

}  // namespace

void blockPool(const void* x, DType dtype, int64_t rows, int64_t seq, int64_t headDim, const TileLayout& layout,
               float* out) {
  const int64_t blocks = rows * layout.blocks(seq);
  ThreadPool::instance().parallelFor(blocks, 16, [&](int64_t begin, int64_t end, int) {
    switch (dtype) {
      case DType::Float32: return poolBlocks<DType::Float32>(x, begin, end, seq, headDim, layout, out);
      case DType::Float16: return poolBlocks<DType::Float16>(x, begin, end, seq, headDim, layout, out);
      case DType::BFloat16: return poolBlocks<DType::BFloat16>(x, begin, end, seq, headDim, layout, out);
    }
  });
}

}  // namespace cpu
}  // namespace nabla
