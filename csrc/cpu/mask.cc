// The NABLA block mask on the CPU (docs/nabla.md section 1), computed in fp64.
//
// Per row r = (b, h, i):
//   logit_j = qa_i . ka_j / sqrt(D)          (-inf across documents and, causal, for later frames)
//   P_j     = softmax_j(logit)
//   cdf:  order the row's blocks by P ascending; keep j iff the running sum up to and including j
//         is >= 1 - thr (the longest run of smallest blocks with mass < 1 - thr is dropped)
//   topk: keep the max(1, floor(thr * n_doc)) largest P
//   keep |= STA(i, j); keep &= doc(i) == doc(j) (and, causal, frame(j) <= frame(i))
// Equal probabilities are ordered by block index so that the lower index is kept first.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "../core/thread_pool.h"
#include "avx2_dispatch.h"
#include "cpu_ops.h"

namespace nabla {
namespace cpu {
namespace {

// One worker's buffers, reused for every row it handles.
struct RowScratch {
  std::vector<double> prob;
  std::vector<int32_t> ids;  // the row's candidate blocks (those of its document), ascending
  // candidate blocks as sort keys, then as ids in selection order; each with one slack element
  // before and after the nk keys (the branchless merge reads one past a run's ends)
  std::vector<uint64_t> keys, spare;
  std::vector<uint8_t> keep;
  explicit RowScratch(int64_t nk)
      : prob(size_t(nk)), ids(size_t(nk)), keys(size_t(nk) + 2), spare(size_t(nk) + 2), keep(size_t(nk)) {}
};

// Bits that hold a block id in a sort key: enough for ids 0 .. nk-1.
int idBits(int64_t nk) {
  int bits = 0;
  while ((int64_t(1) << bits) < nk) ++bits;
  return bits;
}

// The order of selection: "a before b" = a is smaller, or equal and of higher index (dropped
// first, kept last).
inline bool before(const double* prob, int64_t a, int64_t b) {
  return prob[a] < prob[b] || (prob[a] == prob[b] && a > b);
}

// x if take is 1, y if it is 0, without a branch.
inline uint64_t pick(uint64_t take, uint64_t x, uint64_t y) {
  const uint64_t all = uint64_t(0) - take;
  return (x & all) | (y & ~all);
}

// (a, b) <- (min, max), without a branch.
inline void exchange(uint64_t& a, uint64_t& b) {
  const uint64_t inOrder = uint64_t(a < b), x = a, y = b;
  a = pick(inOrder, x, y);
  b = pick(inOrder, y, x);
}

// Sorts n distinct keys ascending and returns where they now lie (keys or spare). A comparison
// sort's branches on random probabilities mispredict about every other time; this one has no
// data-dependent branch: runs of 4 by a sorting network, then bottom-up merges, each merging from
// both ends at once (two independent chains). keys[-1], keys[n], spare[-1] and spare[n] must be
// readable; they are never used.
uint64_t* mergeSort(uint64_t* keys, uint64_t* spare, int64_t n) {
  int64_t lo = 0;
  for (; lo + 4 <= n; lo += 4) {
    uint64_t* k = keys + lo;
    exchange(k[0], k[1]);
    exchange(k[2], k[3]);
    exchange(k[0], k[2]);
    exchange(k[1], k[3]);
    exchange(k[1], k[2]);
  }
  std::sort(keys + lo, keys + n);
  for (int64_t width = 4; width < n; width *= 2) {
    for (lo = 0; lo < n; lo += 2 * width) {
      const int64_t mid = std::min(lo + width, n), hi = std::min(lo + 2 * width, n), half = (hi - lo) / 2;
      int64_t a = lo, b = mid;            // the front chain takes the smaller head
      int64_t ra = mid - 1, rb = hi - 1;  // the back chain takes the larger tail
      if (mid - lo == hi - mid) {
        // Equal runs: each chain makes `width` steps, so at every step it has taken fewer than
        // `width` keys from either run and neither run is used up: no bounds to test.
        for (int64_t step = 0; step < half; ++step) {
          const uint64_t x = keys[a], y = keys[b], takeA = uint64_t(x < y);
          spare[lo + step] = pick(takeA, x, y);
          a += int64_t(takeA);
          b += int64_t(1 - takeA);
          const uint64_t u = keys[ra], v = keys[rb], takeRA = uint64_t(u > v);
          spare[hi - 1 - step] = pick(takeRA, u, v);
          ra -= int64_t(takeRA);
          rb -= int64_t(1 - takeRA);
        }
        continue;
      }
      for (int64_t step = 0; step < half; ++step) {
        const uint64_t x = keys[a], y = keys[b];
        const uint64_t takeA = uint64_t(b >= hi) | (uint64_t(a < mid) & uint64_t(x < y));
        spare[lo + step] = pick(takeA, x, y);
        a += int64_t(takeA);
        b += int64_t(1 - takeA);
        const uint64_t u = keys[ra], v = keys[rb];
        const uint64_t takeRA = uint64_t(rb < mid) | (uint64_t(ra >= lo) & uint64_t(u > v));
        spare[hi - 1 - step] = pick(takeRA, u, v);
        ra -= int64_t(takeRA);
        rb -= int64_t(1 - takeRA);
      }
      // an odd count leaves the middle element: the smaller of the two heads left
      if ((hi - lo) & 1) spare[lo + half] = (b >= hi || (a < mid && keys[a] < keys[b])) ? keys[a] : keys[b];
    }
    std::swap(keys, spare);
  }
  return keys;
}

// Orders the row's candidates by before() and returns their ids in that order. Each candidate
// becomes one integer key that orders almost like before(): P >= 0, so its fp64 bits order like
// its value; the low `bits` bits are replaced by the reversed id (ties: higher id first). After
// the keys are sorted, one insertion pass with the exact before() repairs the rare pairs whose P
// differ only in the replaced bits (there it moves an element; elsewhere it is one predictable
// compare per key). The result is exactly the before() order.
const uint64_t* sortCandidates(RowScratch& s, int64_t candidates, int bits) {
  const double* prob = s.prob.data();
  const int32_t* ids = s.ids.data();
  const uint64_t idMask = (uint64_t(1) << bits) - 1;
  uint64_t* keys = s.keys.data() + 1;
  for (int64_t c = 0; c < candidates; ++c) {
    uint64_t pBits;
    std::memcpy(&pBits, &prob[ids[c]], sizeof pBits);
    keys[c] = (pBits & ~idMask) | (idMask - uint64_t(ids[c]));
  }
  uint64_t* order = mergeSort(keys, s.spare.data() + 1, candidates);
  for (int64_t c = 0; c < candidates; ++c) order[c] = idMask - (order[c] & idMask);
  // Inputs whose probabilities mostly differ only in the replaced bits (adversarial, or nearly
  // constant rows) would make the pass quadratic: past 16 moves per key, sort by before() instead.
  const int64_t moveBudget = 16 * candidates;
  int64_t moves = 0;
  for (int64_t n = 1; n < candidates && moves <= moveBudget; ++n) {
    const uint64_t id = order[n];
    int64_t at = n;
    for (; at > 0 && before(prob, int64_t(id), int64_t(order[at - 1])); --at) order[at] = order[at - 1];
    order[at] = id;
    moves += n - at;
  }
  if (moves > moveBudget)
    std::sort(order, order + candidates,
              [prob](uint64_t a, uint64_t b) { return before(prob, int64_t(a), int64_t(b)); });
  return order;
}

// Sets keep[j] for the blocks selected among the row's `candidates` blocks s.ids[0 .. candidates).
void selectBlocks(const MaskParams& p, RowScratch& s, int64_t candidates, int bits) {
  if (candidates == 0) return;  // not reached: a row's own block is of its document
  const uint64_t* first = sortCandidates(s, candidates, bits);
  const uint64_t* last = first + candidates;
  if (p.method == MaskMethod::TopK) {
    for (const uint64_t* it = last - topkCount(p.threshold, candidates); it != last; ++it) s.keep[*it] = 1;
    return;
  }
  const double dropBelow = 1.0 - double(p.threshold);
  double running = 0.0;
  for (const uint64_t* it = first; it != last; ++it) {
    running += s.prob[*it];
    if (running >= dropBelow) {
      for (; it != last; ++it) s.keep[*it] = 1;
      return;
    }
  }
  // Rounding left the total just below 1 - thr: keep the largest block (at least one per row).
  s.keep[*(last - 1)] = 1;
}

// logits[j] = sum_c qi[c] * kaT[c][j] in fp64, each sum from 0.0 in column order (the same bits
// for any tiling). Keys are taken Tile at a time: their sums stay in registers while the row walks
// the D columns, and the Tile independent chains of adds keep several vector adds in flight.
template <int64_t Tile>
NABLA_ALWAYS_INLINE void rowLogits(const float* qi, const double* kaT, int64_t d, int64_t nk, double* logits) {
  int64_t j0 = 0;
  for (; j0 + Tile <= nk; j0 += Tile) {
    double sum[Tile] = {};
    for (int64_t c = 0; c < d; ++c) {
      const double qc = qi[c];
      const double* kc = kaT + c * nk + j0;
      for (int64_t t = 0; t < Tile; ++t) sum[t] += qc * kc[t];
    }
    for (int64_t t = 0; t < Tile; ++t) logits[j0 + t] = sum[t];
  }
  for (; j0 < nk; ++j0) {
    double sum = 0.0;
    for (int64_t c = 0; c < d; ++c) sum += double(qi[c]) * kaT[c * nk + j0];
    logits[j0] = sum;
  }
}

using RowLogits = void (*)(const float*, const double*, int64_t, int64_t, double*);

// Tiles: 16 fp64 sums fill SSE2's 8 registers, 32 fill 8 of AVX2's 16.
void rowLogitsPortable(const float* qi, const double* kaT, int64_t d, int64_t nk, double* logits) {
  rowLogits<16>(qi, kaT, d, nk, logits);
}

#ifdef NABLA_DISPATCH_AVX2
NABLA_TARGET_AVX2 void rowLogitsAvx2(const float* qi, const double* kaT, int64_t d, int64_t nk, double* logits) {
  rowLogits<32>(qi, kaT, d, nk, logits);
}
#endif

RowLogits rowLogitsKernel() {
#ifdef NABLA_DISPATCH_AVX2
  if (useAvx2Loops()) return rowLogitsAvx2;
#endif
  return rowLogitsPortable;
}

}  // namespace

void nablaMask(const MaskParams& p, const void* q, const void* k, DType dtype, int32_t* kvCounts, int32_t* kvIndices,
               float* map) {
  nablaMask(p, poolForMask(p, q, k, dtype), kvCounts, kvIndices, map);
}

void nablaMask(const MaskParams& p, const MaskPooling& pooled, int32_t* kvCounts, int32_t* kvIndices, float* map) {
  const int64_t nq = p.qBlocks(), nk = p.kvBlocks(), d = p.headDim;
  const int64_t heads = p.batch * p.heads;
  const float* qa = pooled.qa.get();
  const double* kaT = pooled.kaT.get();  // [head][D][nk] for rowLogits
  const double scale = 1.0 / std::sqrt(double(d));
  const int32_t* doc = p.blockDoc;
  const int bits = idBits(nk);
  const RowLogits logitsOf = rowLogitsKernel();
  constexpr double kMinusInf = -std::numeric_limits<double>::infinity();
  // A key block is visible to row i unless another document or (causal) a later frame holds it.
  auto hidden = [&](int64_t i, int64_t j) {
    return (doc && doc[i] != doc[j]) || (p.causal && p.layout.blockFrame(j) > p.layout.blockFrame(i));
  };

  ThreadPool& pool = ThreadPool::instance();
  std::vector<RowScratch> scratch(size_t(pool.threads()), RowScratch(nk));
  pool.parallelFor(heads * nq, 8, [&](int64_t begin, int64_t end, int worker) {
    RowScratch& s = scratch[size_t(worker)];
    double* prob = s.prob.data();
    for (int64_t r = begin; r < end; ++r) {
      const int64_t head = r / nq, i = r % nq;
      // logits and softmax over the row's document
      logitsOf(&qa[size_t(r * d)], &kaT[size_t(head * d * nk)], d, nk, prob);
      int64_t candidates = 0;
      double maxLogit = kMinusInf;
      for (int64_t j = 0; j < nk; ++j) {
        if (hidden(i, j)) {
          prob[j] = kMinusInf;
          continue;
        }
        prob[j] *= scale;
        maxLogit = std::max(maxLogit, prob[j]);
        s.ids[size_t(candidates++)] = int32_t(j);
      }
      double total = 0.0;
      for (int64_t j = 0; j < nk; ++j) {
        const double e = std::isinf(prob[j]) && prob[j] < 0 ? 0.0 : std::exp(prob[j] - maxLogit);
        prob[j] = e;
        total += e;
      }
      for (int64_t j = 0; j < nk; ++j) prob[j] /= total;
      if (map)
        for (int64_t j = 0; j < nk; ++j) map[size_t(r * nk + j)] = float(prob[j]);

      std::fill(s.keep.begin(), s.keep.end(), uint8_t(0));
      selectBlocks(p, s, candidates, bits);
      for (int64_t j = 0; j < nk; ++j) {
        if (p.sta && staKeeps(p.grid, p.window, int32_t(i), int32_t(j))) s.keep[size_t(j)] = 1;
        if (hidden(i, j)) s.keep[size_t(j)] = 0;
      }
      // FlexAttention's dense-to-ordered layout: kept ids ascending, then dropped ids ascending.
      // One pass without a data-dependent branch: block j goes to slot keptBefore(j) if kept, else
      // to keptCount + droppedBefore(j) = keptCount + j - keptBefore(j).
      int32_t keptCount = 0;
      for (int64_t j = 0; j < nk; ++j) keptCount += s.keep[size_t(j)];
      int32_t* row = kvIndices + r * nk;
      int32_t kept = 0;
      for (int32_t j = 0; j < int32_t(nk); ++j) {
        const int32_t isKept = s.keep[size_t(j)], all = -isKept;  // all: ~0 if kept, else 0
        row[(kept & all) | ((keptCount + j - kept) & ~all)] = j;
        kept += isKept;
      }
      kvCounts[r] = keptCount;
    }
  });
}

}  // namespace cpu
}  // namespace nabla
