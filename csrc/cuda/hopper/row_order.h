// Row scheduler of the persistent Hopper kernel: the order in which CTAs take rows (one row = one
// 64-query block of one head) from the shared ticket counter. Longest-first (LPT) keeps the last
// wave short: with rows sorted by kept-block count, descending, a row taken late is a short one.
// Pure C++ (host unit test: test/native/hopper_row_order.cc).
#pragma once

#include <cstdint>
#include <vector>

namespace nabla {
namespace cuda {
namespace hopper {

// Rows 0..counts.size()-1 sorted by counts[row] descending, ties in ascending row order (rows of
// one head stay together, so a head's K/V stays hot in L2 while its rows run). Counting sort over
// the count values 0..maxCount: O(rows + maxCount). Counts outside [0, maxCount] are clamped
// (the caller has validated them; clamping keeps the order a permutation whatever happens).
inline std::vector<int32_t> longestFirstOrder(const std::vector<int32_t>& counts, int32_t maxCount) {
  if (maxCount < 0) maxCount = 0;
  std::vector<int64_t> start(size_t(maxCount) + 2, 0);  // start[c]: first slot of rows with count c
  auto bucket = [&](int32_t c) -> int32_t { return c < 0 ? 0 : c > maxCount ? maxCount : c; };
  for (int32_t c : counts) ++start[size_t(maxCount - bucket(c))];  // bucket 0 = the longest rows
  int64_t sum = 0;
  for (auto& s : start) {
    const int64_t n = s;
    s = sum;
    sum += n;
  }
  std::vector<int32_t> order(counts.size());
  for (size_t row = 0; row < counts.size(); ++row)
    order[size_t(start[size_t(maxCount - bucket(counts[row]))]++)] = int32_t(row);
  return order;
}

}  // namespace hopper
}  // namespace cuda
}  // namespace nabla
