// Host tests of csrc/cuda/hopper/row_order.h: longest-first, every row exactly once, ties in row
// order, against std::stable_sort.
#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "../../csrc/cuda/hopper/row_order.h"
#include "check.h"

using nabla::cuda::hopper::longestFirstOrder;

namespace {

std::vector<int32_t> reference(const std::vector<int32_t>& counts) {
  std::vector<int32_t> order(counts.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = int32_t(i);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return counts[a] > counts[b]; });
  return order;
}

void matchesReference(const std::vector<int32_t>& counts, int32_t maxCount, const char* what) {
  const std::vector<int32_t> order = longestFirstOrder(counts, maxCount);
  CHECK(order == reference(counts), "%s (%zu rows)", what, counts.size());
  std::vector<int> seen(counts.size(), 0);
  for (int32_t row : order)
    if (row >= 0 && size_t(row) < seen.size()) ++seen[row];
  for (size_t row = 0; row < seen.size(); ++row) CHECK(seen[row] == 1, "%s: row %zu taken %d times", what, row, seen[row]);
  for (size_t n = 1; n < order.size(); ++n)
    CHECK(counts[order[n - 1]] >= counts[order[n]], "%s: not longest-first at %zu", what, n);
}

}  // namespace

int main() {
  matchesReference({}, 10, "no rows");
  matchesReference({0, 0, 0}, 4, "all empty");
  matchesReference({5, 5, 5, 5}, 5, "dense (all equal): index order");
  matchesReference({1, 3, 2, 3, 0}, 3, "small");
  CHECK((longestFirstOrder({1, 3, 2, 3, 0}, 3) == std::vector<int32_t>{1, 3, 2, 0, 4}), "small, by hand");
  std::mt19937 random(12);
  for (int trial = 0; trial < 50; ++trial) {
    const int32_t maxCount = int32_t(random() % 700);
    std::vector<int32_t> counts(random() % 5000);
    for (auto& c : counts) c = int32_t(random() % uint32_t(maxCount + 1));
    matchesReference(counts, maxCount, "random");
  }
  // counts outside [0, maxCount] (never passed by the dispatch) still give a permutation
  const std::vector<int32_t> odd = longestFirstOrder({-3, 9, 2}, 4);
  CHECK(odd.size() == 3 && odd[0] == 1 && odd[1] == 2 && odd[2] == 0, "clamped");
  return finish("hopper_row_order");
}
