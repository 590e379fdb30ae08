// Block pooling: out[r, i, :] = mean of x[r, 64i .. 64i+63, :] (docs/nabla.md 1.1).
#include "../core/thread_pool.h"
#include "avx2_dispatch.h"
#include "cpu_ops.h"

namespace nabla {
namespace cpu {
namespace {

template <DType T>
NABLA_ALWAYS_INLINE float load(const void* base, size_t i) {
  if constexpr (T == DType::Float32) return static_cast<const float*>(base)[i];
  else if constexpr (T == DType::BFloat16) return bf16ToFloat(static_cast<const uint16_t*>(base)[i]);
  else return halfToFloat(static_cast<const uint16_t*>(base)[i]);
}

// Columns summed together: their fp64 sums stay in registers across the block's 64 tokens
// (the adds are independent across columns, so they vectorise).
constexpr size_t kColumns = 8;

// out[d * stride] = mean of column d of block `block` of x (x viewed as [blocks, 64, D]).
// fp64 sums, each column's tokens added in order from 0.0: the mean is exact to fp32 rounding,
// neither overflows near the fp32/bf16 maximum nor loses subnormal inputs, and has the same bits
// whatever the column grouping. The fp32 mean is stored as Out (float, or widened to double).
template <DType T, class Out>
NABLA_ALWAYS_INLINE void poolBlock(const void* x, int64_t block, size_t D, Out* out, size_t stride) {
  const size_t first = size_t(block) * kBlockSize * D;
  size_t d0 = 0;
  for (; d0 + kColumns <= D; d0 += kColumns) {
    double sum[kColumns] = {};
    for (size_t t = 0; t < size_t(kBlockSize); ++t)
      for (size_t c = 0; c < kColumns; ++c) sum[c] += double(load<T>(x, first + t * D + d0 + c));
    for (size_t c = 0; c < kColumns; ++c) out[(d0 + c) * stride] = Out(float(sum[c] * (1.0 / kBlockSize)));
  }
  for (; d0 < D; ++d0) {
    double sum = 0.0;
    for (size_t t = 0; t < size_t(kBlockSize); ++t) sum += double(load<T>(x, first + t * D + d0));
    out[d0 * stride] = Out(float(sum * (1.0 / kBlockSize)));
  }
}

// What one parallel pooling pass reads and writes. Items [0, qBlocks) are q's blocks, written
// row-major to qa; items [qBlocks, qBlocks + heads * nk) are k's, written transposed per head to
// kaT [heads, D, nk] (none when k is null).
struct PoolJob {
  const void* q;
  const void* k;
  int64_t qBlocks, nk;
  size_t D;
  float* qa;
  double* kaT;
};

template <DType T>
NABLA_ALWAYS_INLINE void poolItems(const PoolJob& job, int64_t begin, int64_t end) {
  for (int64_t b = begin; b < end; ++b) {
    if (b < job.qBlocks) {
      poolBlock<T>(job.q, b, job.D, job.qa + size_t(b) * job.D, 1);
      continue;
    }
    const int64_t kb = b - job.qBlocks, head = kb / job.nk, j = kb % job.nk;
    poolBlock<T>(job.k, kb, job.D, job.kaT + size_t(head) * job.D * size_t(job.nk) + size_t(j), size_t(job.nk));
  }
}

using PoolItems = void (*)(const PoolJob&, int64_t, int64_t);

template <DType T>
void poolItemsPortable(const PoolJob& job, int64_t begin, int64_t end) {
  poolItems<T>(job, begin, end);
}

#ifdef NABLA_DISPATCH_AVX2
template <DType T>
NABLA_TARGET_AVX2 void poolItemsAvx2(const PoolJob& job, int64_t begin, int64_t end) {
  poolItems<T>(job, begin, end);
}
#endif

template <DType T>
PoolItems poolItemsFor() {
#ifdef NABLA_DISPATCH_AVX2
  if (useAvx2Loops()) return poolItemsAvx2<T>;
#endif
  return poolItemsPortable<T>;
}

void run(const PoolJob& job, int64_t items, DType dtype) {
  const PoolItems pool = dtype == DType::Float32   ? poolItemsFor<DType::Float32>()
                         : dtype == DType::Float16 ? poolItemsFor<DType::Float16>()
                                                   : poolItemsFor<DType::BFloat16>();
  ThreadPool::instance().parallelFor(items, 16, [&](int64_t begin, int64_t end, int) { pool(job, begin, end); });
}

}  // namespace

void blockPool(const void* x, DType dtype, int64_t rows, int64_t seq, int64_t headDim, float* out) {
  const int64_t blocks = rows * (seq / kBlockSize);
  run(PoolJob{x, nullptr, blocks, 1, size_t(headDim), out, nullptr}, blocks, dtype);
}

void poolForMask(const void* q, const void* k, DType dtype, int64_t heads, int64_t seqQ, int64_t seqKv,
                 int64_t headDim, float* qa, double* kaT) {
  const int64_t qBlocks = heads * (seqQ / kBlockSize), nk = seqKv / kBlockSize;
  run(PoolJob{q, k, qBlocks, nk, size_t(headDim), qa, kaT}, qBlocks + heads * nk, dtype);
}

}  // namespace cpu
}  // namespace nabla
