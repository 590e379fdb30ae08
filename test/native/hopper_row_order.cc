// Host tests of csrc/cuda/hopper/row_order.h: every row exactly once, heads in order, longest first
// inside a head, ties in row order; against a sort by (head, -count, row). The device form (ranks
// summed over chunks of a head's counts, as row_order.cu computes them) against the host sort.
#include <algorithm>
#include <cstdint>
#include <random>
#include <tuple>
#include <vector>

#include "../../csrc/cuda/hopper/row_order.h"
#include "check.h"

using nabla::cuda::hopper::longestFirstOrder;
using nabla::cuda::hopper::longestFirstRank;

namespace {

std::vector<int32_t> reference(const std::vector<int32_t>& counts, int64_t rowsPerHead) {
  std::vector<int32_t> order(counts.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = int32_t(i);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return std::make_tuple(a / rowsPerHead, -counts[a], a) < std::make_tuple(b / rowsPerHead, -counts[b], b);
  });
  return order;
}

void check(const std::vector<int32_t>& counts, int64_t rowsPerHead, const char* what) {
  const std::vector<int32_t> order = longestFirstOrder(counts, rowsPerHead);
  CHECK(order == reference(counts, rowsPerHead), "%s (%zu rows, %lld per head)", what, counts.size(),
        (long long)rowsPerHead);
  std::vector<int> seen(counts.size(), 0);
  for (int32_t row : order)
    if (row >= 0 && size_t(row) < seen.size()) ++seen[row];
  for (size_t row = 0; row < seen.size(); ++row)
    CHECK(seen[row] == 1, "%s: row %zu taken %d times", what, row, seen[row]);
  for (size_t n = 1; n < order.size(); ++n) {
    const int64_t head = order[n] / rowsPerHead, previous = order[n - 1] / rowsPerHead;
    CHECK(head >= previous, "%s: heads out of order at %zu", what, n);
    if (head == previous) CHECK(counts[order[n - 1]] >= counts[order[n]], "%s: not longest-first at %zu", what, n);
  }
}

// What longestFirstOrderKernel computes: each row's rank summed over chunks of `chunkRows` of its
// head's counts (row indices inside the head), then order[head start + rank] = row. -1 where no
// row landed.
struct Chunk {
  const int32_t* counts;
  int64_t base;
  int32_t operator[](int64_t row) const { return counts[row - base]; }
};
std::vector<int32_t> rankedOrder(const std::vector<int32_t>& counts, int64_t rowsPerHead, int64_t chunkRows) {
  std::vector<int32_t> order(counts.size(), -1);
  for (size_t first = 0; first < counts.size(); first += size_t(rowsPerHead))
    for (int64_t i = 0; i < rowsPerHead; ++i) {
      int64_t rank = 0;
      for (int64_t base = 0; base < rowsPerHead; base += chunkRows) {
        const int64_t n = std::min(chunkRows, rowsPerHead - base);
        rank += longestFirstRank(Chunk{counts.data() + first + base, base}, base, n, counts[first + size_t(i)], i);
      }
      if (rank >= 0 && rank < rowsPerHead) order[first + size_t(rank)] = int32_t(first + size_t(i));
    }
  return order;
}

void checkRanks(const std::vector<int32_t>& counts, int64_t rowsPerHead, const char* what) {
  for (int64_t chunkRows : {int64_t(1), int64_t(7), int64_t(256)})
    CHECK(rankedOrder(counts, rowsPerHead, chunkRows) == longestFirstOrder(counts, rowsPerHead),
          "%s: device ranks (chunks of %lld) differ from the host sort (%zu rows, %lld per head)", what,
          (long long)chunkRows, counts.size(), (long long)rowsPerHead);
}

}  // namespace

int main() {
  check({}, 4, "no rows");
  check({0, 0, 0}, 3, "all empty");
  check({5, 5, 5, 5}, 2, "dense (all equal): index order");
  check({1, 3, 2, 3, 0}, 5, "one head");
  CHECK((longestFirstOrder({1, 3, 2, 3, 0}, 5) == std::vector<int32_t>{1, 3, 2, 0, 4}), "one head, by hand");
  CHECK((longestFirstOrder({1, 3, 2, 3, 0, 9}, 3) == std::vector<int32_t>{1, 2, 0, 5, 3, 4}), "two heads, by hand");
  std::mt19937 random(12);
  for (int trial = 0; trial < 50; ++trial) {
    const int64_t rowsPerHead = 1 + int64_t(random() % 300);
    std::vector<int32_t> counts(size_t(rowsPerHead) * (1 + random() % 12));
    const uint32_t maxCount = 1 + random() % 700;
    for (auto& c : counts) c = int32_t(random() % maxCount);
    check(counts, rowsPerHead, "random");
    checkRanks(counts, rowsPerHead, "random");
  }
  checkRanks({}, 4, "no rows");
  checkRanks({0, 0, 0}, 3, "all empty");
  checkRanks({5, 5, 5, 5}, 2, "all equal");
  checkRanks({1, 3, 2, 3, 0, 9}, 3, "two heads");
  std::vector<int32_t> head720p(1181 * 2);  // a 720p head's rows, past several chunks of 256
  for (auto& c : head720p) c = int32_t(random() % 60);
  checkRanks(head720p, 1181, "720p-sized heads");
  return finish("hopper_row_order");
}
