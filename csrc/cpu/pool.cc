// Block pooling: out[r, i, :] = mean of x[r, 64i .. 64i+63, :] (docs/nabla.md 1.1).
#include <type_traits>

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

// Columns summed together: their fp64 sums stay in registers across the block's 64 tokens
// (the adds are independent across columns, so they vectorise).
constexpr size_t kColumns = 8;

// The mean of block `block` of x (viewed as [blocks, 64, D]), column by column: put(d, mean).
// fp64 sums, each column's tokens added in order from 0.0: the mean is exact to fp32 rounding,
// neither overflows near the fp32/bf16 maximum nor loses subnormal inputs, and is the same bits
// whatever the column grouping.
template <DType T, class Put>
inline void poolBlock(const void* x, int64_t block, size_t D, Put put) {
  const size_t first = size_t(block) * kBlockSize * D;
  size_t d0 = 0;
  for (; d0 + kColumns <= D; d0 += kColumns) {
    double sum[kColumns] = {};
    for (size_t t = 0; t < size_t(kBlockSize); ++t)
      for (size_t c = 0; c < kColumns; ++c) sum[c] += double(load<T>(x, first + t * D + d0 + c));
    for (size_t c = 0; c < kColumns; ++c) put(d0 + c, float(sum[c] * (1.0 / kBlockSize)));
  }
  for (; d0 < D; ++d0) {
    double sum = 0.0;
    for (size_t t = 0; t < size_t(kBlockSize); ++t) sum += double(load<T>(x, first + t * D + d0));
    put(d0, float(sum * (1.0 / kBlockSize)));
  }
}

template <DType T>
using DTypeTag = std::integral_constant<DType, T>;

// Calls body(DTypeTag<dtype>{}): one instantiation per dtype, so the inner loops vectorise.
template <class Body>
inline void byDType(DType dtype, Body&& body) {
  switch (dtype) {
    case DType::Float32: return body(DTypeTag<DType::Float32>{});
    case DType::Float16: return body(DTypeTag<DType::Float16>{});
    case DType::BFloat16: return body(DTypeTag<DType::BFloat16>{});
  }
}

}  // namespace

void blockPool(const void* x, DType dtype, int64_t rows, int64_t seq, int64_t headDim, float* out) {
  const int64_t blocks = rows * (seq / kBlockSize);
  const size_t D = size_t(headDim);
  ThreadPool::instance().parallelFor(blocks, 16, [&](int64_t begin, int64_t end, int) {
    byDType(dtype, [&](auto tag) {
      constexpr DType T = decltype(tag)::value;
      for (int64_t b = begin; b < end; ++b)
        poolBlock<T>(x, b, D, [&](size_t d, float mean) { out[size_t(b) * D + d] = mean; });
    });
  });
}

void poolForMask(const void* q, const void* k, DType dtype, int64_t heads, int64_t seqQ, int64_t seqKv,
                 int64_t headDim, float* qa, double* kaT) {
  const int64_t nq = seqQ / kBlockSize, nk = seqKv / kBlockSize, qBlocks = heads * nq;
  const size_t D = size_t(headDim);
  // items [0, qBlocks) are q's blocks, [qBlocks, qBlocks + heads * nk) k's
  ThreadPool::instance().parallelFor(qBlocks + heads * nk, 16, [&](int64_t begin, int64_t end, int) {
    byDType(dtype, [&](auto tag) {
      constexpr DType T = decltype(tag)::value;
      for (int64_t b = begin; b < end; ++b) {
        if (b < qBlocks) {
          poolBlock<T>(q, b, D, [&](size_t d, float mean) { qa[size_t(b) * D + d] = mean; });
          continue;
        }
        const int64_t kb = b - qBlocks, head = kb / nk, j = kb % nk;
        double* column = kaT + size_t(head) * D * size_t(nk) + size_t(j);  // kaT[head][d][j]
        poolBlock<T>(k, kb, D, [&](size_t d, float mean) { column[d * size_t(nk)] = double(mean); });
      }
    });
  });
}

}  // namespace cpu
}  // namespace nabla
