// The longest-first row order of the Hopper kernel computed on the device (row_order.h gives the
// rule and its host reference), so a sparse call needs no copy of the counts to the host, no
// stream sync and no upload. One thread per row counts the rows of its head that go before it
// (longestFirstRank) over shared-memory chunks of the head's counts: rowsPerHead^2 comparisons
// per head, i.e. one comparison per (row, row) pair where the attention kernel spends one
// 64 x 64 x D tile product per kept (row, key block) pair, so the order costs a small fraction
// of the attention even at a few percent kept.
#include "hopper_attention.h"
#include "row_order.h"

namespace nabla {
namespace cuda {
namespace hopper {
namespace {

constexpr int kOrderThreads = 256;

// counts[row] for the rows base .. base + kOrderThreads - 1 of a head, read from shared memory
struct ChunkCounts {
  const int32_t* chunk;
  int32_t base;
  __device__ int32_t operator[](int64_t row) const { return chunk[row - base]; }
};

// grid (heads, ceil(rowsPerHead / kOrderThreads)); thread row i of head blockIdx.x writes
// order[first + rank(i)] = first + i.
__global__ void __launch_bounds__(kOrderThreads)
    longestFirstOrderKernel(const int32_t* counts, int32_t rowsPerHead, int32_t* order) {
  __shared__ int32_t chunk[kOrderThreads];
  const int64_t first = int64_t(blockIdx.x) * rowsPerHead;
  const int32_t i = int32_t(blockIdx.y) * kOrderThreads + int32_t(threadIdx.x);
  const bool mine = i < rowsPerHead;
  const int32_t count = mine ? counts[first + i] : 0;
  int64_t rank = 0;
  for (int32_t base = 0; base < rowsPerHead; base += kOrderThreads) {
    const int32_t n = min(kOrderThreads, rowsPerHead - base);
    __syncthreads();
    if (int32_t(threadIdx.x) < n) chunk[threadIdx.x] = counts[first + base + threadIdx.x];
    __syncthreads();
    // row indices inside the head: ties keep the order of rows, as with global indices
    if (mine) rank += longestFirstRank(ChunkCounts{chunk, base}, base, n, count, i);
  }
  if (mine) order[first + rank] = int32_t(first + i);
}

}  // namespace

Status launchLongestFirstOrder(const int32_t* counts, int64_t rows, int32_t rowsPerHead, int32_t* order,
                               cudaStream_t stream) {
  if (rows == 0) return Status{};
  const int64_t heads = rows / rowsPerHead;
  if (rowsPerHead <= 0 || heads * rowsPerHead != rows || heads > 0x7fffffffLL)
    return invalidValue("the Hopper row order takes whole heads, got " + std::to_string(rows) + " rows of " +
                        std::to_string(rowsPerHead) + " per head");
  // rowsPerHead < 2^31 rows: at most 2^23 chunks, within gridDim.y's 65535 only up to 2^24 rows
  const int64_t chunks = (rowsPerHead + kOrderThreads - 1) / kOrderThreads;
  if (chunks > 65535)
    return invalidValue("the Hopper row order takes at most " + std::to_string(65535 * kOrderThreads) +
                        " query blocks per head, got " + std::to_string(rowsPerHead));
  const dim3 grid{unsigned(heads), unsigned(chunks), 1u};
  longestFirstOrderKernel<<<grid, kOrderThreads, 0, stream>>>(counts, rowsPerHead, order);
  return launched("longestFirstOrderKernel");
}

}  // namespace hopper
}  // namespace cuda
}  // namespace nabla
