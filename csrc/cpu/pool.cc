// Block pooling: out[r, i, :] = mean of block i's own tokens x[r, start(i) .. start(i)+len(i)-1, :]
// (docs/nabla.md 1.1; blocks of 64 tokens, [64i, 64i+63], without a token grid).
#include <type_traits>

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

// out[d * stride] = mean of column d of the `length` tokens of x from token `firstToken` (x viewed
// as [tokens, D]).
// fp64 sums, each column's tokens added in order from 0.0: the mean is exact to fp32 rounding,
// neither overflows near the fp32/bf16 maximum nor loses subnormal inputs, and has the same bits
// whatever the column grouping. The fp32 mean is stored as Out (float, or widened to double).
//
// Columns are summed `Wide` at a time, then 8, then one: the sums of a group stay in registers
// across the block's 64 tokens, and the adds of different columns are independent, so a wide group
// keeps several vector adds in flight (one column's chain of 64 dependent adds would wait on the
// add latency at every token).
template <DType T, size_t Wide, class Out>
NABLA_ALWAYS_INLINE void poolBlock(const void* x, int64_t firstToken, size_t length, size_t D, Out* out,
                                   size_t stride) {
  const size_t first = size_t(firstToken) * D;
  // sum / length: for 64-token blocks the same number as sum * (1/64), a power of two
  const double count = double(length);
  size_t d0 = 0;
  auto group = [&](auto width) {
    constexpr size_t W = decltype(width)::value;
    for (; d0 + W <= D; d0 += W) {
      double sum[W] = {};
      for (size_t t = 0; t < length; ++t)
        for (size_t c = 0; c < W; ++c) sum[c] += double(load<T>(x, first + t * D + d0 + c));
      for (size_t c = 0; c < W; ++c) out[(d0 + c) * stride] = Out(float(sum[c] / count));
    }
  };
  group(std::integral_constant<size_t, Wide>{});
  group(std::integral_constant<size_t, 8>{});
  group(std::integral_constant<size_t, 1>{});
}

// What one parallel pooling pass reads and writes. Items [0, qBlocks) are q's blocks (nq per
// row of seqQ tokens), written row-major to qa; items [qBlocks, qBlocks + heads * nk) are k's (nk
// per row of seqKv tokens), written transposed per head to kaT [heads, D, nk] (none when k is
// null). The layout gives each block's first token and length.
struct PoolJob {
  const void* q;
  const void* k;
  int64_t qBlocks, nq, nk, seqQ, seqKv;
  size_t D;
  float* qa;
  double* kaT;
  TileLayout layout;
};

// Wide: the widest column group (register budget: 16 fp64 sums fill SSE2's 8 registers, 32 fill
// 8 of AVX2's 16).
template <DType T, size_t Wide>
NABLA_ALWAYS_INLINE void poolItems(const PoolJob& job, int64_t begin, int64_t end) {
  for (int64_t b = begin; b < end; ++b) {
    if (b < job.qBlocks) {
      const int64_t row = b / job.nq, i = b % job.nq;
      poolBlock<T, Wide>(job.q, row * job.seqQ + job.layout.blockStart(i), size_t(job.layout.blockLength(i)), job.D,
                         job.qa + size_t(b) * job.D, 1);
      continue;
    }
    const int64_t kb = b - job.qBlocks, head = kb / job.nk, j = kb % job.nk;
    poolBlock<T, Wide>(job.k, head * job.seqKv + job.layout.blockStart(j), size_t(job.layout.blockLength(j)), job.D,
                       job.kaT + size_t(head) * job.D * size_t(job.nk) + size_t(j), size_t(job.nk));
  }
}

using PoolItems = void (*)(const PoolJob&, int64_t, int64_t);

template <DType T>
void poolItemsPortable(const PoolJob& job, int64_t begin, int64_t end) {
  poolItems<T, 16>(job, begin, end);
}

#ifdef NABLA_DISPATCH_AVX2
template <DType T>
NABLA_TARGET_AVX2 void poolItemsAvx2(const PoolJob& job, int64_t begin, int64_t end) {
  poolItems<T, 32>(job, begin, end);
}
#endif

template <DType T>
PoolItems poolItemsFor() {
#ifdef NABLA_DISPATCH_AVX2
  if (useAvx2Loops()) return poolItemsAvx2<T>;
#endif
  return poolItemsPortable<T>;
}

void run(const PoolJob& job, int64_t items, DType dtype, bool noWait = false) {
  const PoolItems pool = dtype == DType::Float32   ? poolItemsFor<DType::Float32>()
                         : dtype == DType::Float16 ? poolItemsFor<DType::Float16>()
                                                   : poolItemsFor<DType::BFloat16>();
  const ThreadPool::Body body = [&](int64_t begin, int64_t end, int) { pool(job, begin, end); };
  if (noWait) ThreadPool::instance().parallelForNoWait(items, 16, body);
  else ThreadPool::instance().parallelFor(items, 16, body);
}

}  // namespace

void blockPool(const void* x, DType dtype, int64_t rows, int64_t seq, int64_t headDim, const TileLayout& layout,
               float* out) {
  const int64_t nb = layout.blocks(seq), blocks = rows * nb;
  run(PoolJob{x, nullptr, blocks, nb, 1, seq, 0, size_t(headDim), out, nullptr, layout}, blocks, dtype);
}

MaskPooling poolForMask(const MaskParams& p, const void* q, const void* k, DType dtype, bool noWait) {
  const int64_t heads = p.batch * p.heads, nq = p.qBlocks(), nk = p.kvBlocks(), qBlocks = heads * nq;
  const size_t D = size_t(p.headDim);
  // every element is written below: no zero fill
  MaskPooling pooled{std::unique_ptr<float[]>(new float[size_t(qBlocks) * D]),
                     std::unique_ptr<double[]>(new double[size_t(heads * nk) * D])};
  run(PoolJob{q, k, qBlocks, nq, nk, p.seqQ, p.seqKv, D, pooled.qa.get(), pooled.kaT.get(), p.layout},
      qBlocks + heads * nk, dtype, noWait);
  return pooled;
}

}  // namespace cpu
}  // namespace nabla
