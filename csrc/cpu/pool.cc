// Block pooling: out[r, i, :] = mean of x[r, 64i .. 64i+63, :] (NABLA.md 1.1).
#include <vector>

#include "../core/thread_pool.h"
#include "cpu_ops.h"

namespace nabla {
namespace cpu {

void blockPool(const void* x, DType dtype, int64_t rows, int64_t seq, int64_t headDim, float* out) {
  const int64_t blocks = seq / kBlockSize;
  ThreadPool::instance().parallelFor(rows * blocks, 4, [&](int64_t begin, int64_t end, int) {
    std::vector<double> sum(static_cast<size_t>(headDim));  // fp64 sums: the mean is exact to fp32 rounding
    for (int64_t rb = begin; rb < end; ++rb) {
      std::fill(sum.begin(), sum.end(), 0.0);
      const size_t first = size_t(rb) * kBlockSize * size_t(headDim);  // row-major [rows*blocks, 64, D]
      for (int t = 0; t < kBlockSize; ++t)
        for (int64_t d = 0; d < headDim; ++d)
          sum[size_t(d)] += loadElement(x, first + size_t(t) * size_t(headDim) + size_t(d), dtype);
      for (int64_t d = 0; d < headDim; ++d)
        out[size_t(rb) * size_t(headDim) + size_t(d)] = float(sum[size_t(d)] / kBlockSize);
    }
  });
}

}  // namespace cpu
}  // namespace nabla
