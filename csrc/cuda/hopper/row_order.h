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
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace nabla {
namespace cuda {
namespace hopper {

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
