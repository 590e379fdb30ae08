// Row scheduler of the persistent Hopper kernel: the order in which CTAs take rows (one row = one
// 64-query block of one head) from the shared ticket counter. Pure C++ (host unit test:
// test/native/hopper_row_order.cc).
//
// Heads in index order, and inside each head its rows longest first (most kept blocks; ties in row
// order). Longest-first (LPT) keeps the last wave short: a row taken late is a short one. Head by
// head keeps the K/V being read within one or two heads (~264 rows in flight on 132 SMs, a head has
// 1181 at 720p): one head's K+V is 34 MB at 720p, inside the 50-60 MB L2, where a global
// longest-first order would stream rows of all 40 heads at once and thrash it. With tickets taken
// dynamically, a head boundary is no barrier: CTAs run on into the next head's long rows while the
// previous head's short rows finish, so only the last head's tail is exposed.
//
// Two forms of one rule: longestFirstOrder (host, a stable sort: the reference) and
// longestFirstRank (host + device: a row's position in its head's order, by counting the rows that
// go before it), which row_order.cu runs on the device so a call needs no host round trip. The
// host test checks that the ranks reproduce the sort.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#if defined(__CUDACC__)
#define NABLA_ROW_ORDER_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define NABLA_ROW_ORDER_HOST_DEVICE inline
#endif

namespace nabla {
namespace cuda {
namespace hopper {

// True when row a (with countA kept blocks) goes before row b of the same head: more kept blocks
// first, ties in row order (what a stable sort by count, descending, does).
NABLA_ROW_ORDER_HOST_DEVICE bool longestFirstBefore(int32_t countA, int64_t a, int32_t countB, int64_t b) {
  return countA > countB || (countA == countB && a < b);
}

// Position of row `row` (with `count` kept blocks) inside its head's longest-first order, counted
// over rows first .. first + rowsInHead - 1 (counts[other] for those only): the number of them
// that go before it. Over the whole head, distinct rows get distinct ranks, so
// order[head start + rank(row)] = row is a permutation, equal to longestFirstOrder's; over a part
// of the head it is that part's share, and the shares add up.
template <class Counts>
NABLA_ROW_ORDER_HOST_DEVICE int64_t longestFirstRank(const Counts& counts, int64_t first, int64_t rowsInHead,
                                                     int32_t count, int64_t row) {
  int64_t rank = 0;
  for (int64_t other = first; other < first + rowsInHead; ++other)
    rank += longestFirstBefore(counts[other], other, count, row) ? 1 : 0;
  return rank;
}

// rows = counts.size(), rowsPerHead > 0; counts[row] = kept blocks of the row.
inline std::vector<int32_t> longestFirstOrder(const std::vector<int32_t>& counts, int64_t rowsPerHead) {
  std::vector<int32_t> order(counts.size());
  for (size_t row = 0; row < order.size(); ++row) order[row] = int32_t(row);
  if (rowsPerHead <= 0) rowsPerHead = int64_t(counts.size()) + 1;
  for (size_t first = 0; first < order.size(); first += size_t(rowsPerHead)) {
    const size_t last = std::min(order.size(), first + size_t(rowsPerHead));
    std::stable_sort(order.begin() + long(first), order.begin() + long(last),
                     [&](int32_t a, int32_t b) { return counts[size_t(a)] > counts[size_t(b)]; });
  }
  return order;
}

}  // namespace hopper
}  // namespace cuda
}  // namespace nabla
