// The NABLA block mask on the CPU (docs/nabla.md section 1), computed in fp64.
//
// Per row r = (b, h, i):
//   logit_j = qa_i . ka_j / sqrt(D)          (-inf across documents)
//   P_j     = softmax_j(logit)
//   cdf:  order the row's blocks by P ascending; keep j iff the running sum up to and including j
//         is >= 1 - thr (the longest run of smallest blocks with mass < 1 - thr is dropped)
//   topk: keep the max(1, floor(thr * n_doc)) largest P
//   keep |= STA(i, j); keep &= doc(i) == doc(j)
// Equal probabilities are ordered by block index so that the lower index is kept first.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "../core/thread_pool.h"
#include "cpu_ops.h"

namespace nabla {
namespace cpu {
namespace {

// A candidate block of a row and its probability, sorted by value (no indirection per compare).
struct Candidate {
  double prob;
  int32_t block;
};

// One worker's buffers, reused for every row it handles.
struct RowScratch {
  std::vector<double> prob;
  std::vector<Candidate> order;
  std::vector<uint8_t> keep;
  explicit RowScratch(int64_t nk) : prob(size_t(nk)), order(size_t(nk)), keep(size_t(nk)) {}
};

// Sets keep[j] for the blocks selected among `candidates` entries of s.order.
void selectBlocks(const MaskParams& p, RowScratch& s, int64_t candidates) {
  Candidate* first = s.order.data();
  Candidate* last = first + candidates;
  // "a before b" = a is smaller, or equal and of higher index (dropped first, kept last)
  auto ascending = [](const Candidate& a, const Candidate& b) {
    return a.prob < b.prob || (a.prob == b.prob && a.block > b.block);
  };
  if (p.method == MaskMethod::TopK) {
    const int64_t keepCount = topkCount(p.threshold, candidates);
    Candidate* cut = last - keepCount;  // the keepCount largest end up in [cut, last)
    std::nth_element(first, cut, last, ascending);
    for (Candidate* it = cut; it != last; ++it) s.keep[size_t(it->block)] = 1;
    return;
  }
  std::sort(first, last, ascending);
  const double dropBelow = 1.0 - double(p.threshold);
  double running = 0.0;
  for (Candidate* it = first; it != last; ++it) {
    running += it->prob;
    if (running >= dropBelow) {
      for (; it != last; ++it) s.keep[size_t(it->block)] = 1;
      return;
    }
  }
  // Rounding left the total just below 1 - thr: keep the largest block (at least one per row).
  if (candidates > 0) s.keep[size_t((last - 1)->block)] = 1;
}

// Keys whose fp64 sums stay in registers together while the row walks the D columns.
constexpr int64_t kKeyTile = 16;

// logits[j] = sum_c qi[c] * kaT[c][j] in fp64, each sum from 0.0 in column order (the same bits
// for any tiling), kKeyTile keys at a time so that the sums stay in registers.
void rowLogits(const float* qi, const double* kaT, int64_t d, int64_t nk, double* logits) {
  int64_t j0 = 0;
  for (; j0 + kKeyTile <= nk; j0 += kKeyTile) {
    double sum[kKeyTile] = {};
    for (int64_t c = 0; c < d; ++c) {
      const double qc = qi[c];
      const double* kc = kaT + c * nk + j0;
      for (int64_t t = 0; t < kKeyTile; ++t) sum[t] += qc * kc[t];
    }
    std::copy(sum, sum + kKeyTile, logits + j0);
  }
  for (; j0 < nk; ++j0) {
    double sum = 0.0;
    for (int64_t c = 0; c < d; ++c) sum += double(qi[c]) * kaT[c * nk + j0];
    logits[j0] = sum;
  }
}

}  // namespace

void nablaMask(const MaskParams& p, const void* q, const void* k, DType dtype, int32_t* kvCounts,
               int32_t* kvIndices, float* map) {
  const int64_t heads = p.batch * p.heads, nq = p.qBlocks(), nk = p.kvBlocks(), d = p.headDim;
  // every element is written by poolForMask: no zero fill
  std::unique_ptr<float[]> qa(new float[size_t(heads * nq * d)]);
  std::unique_ptr<double[]> kaT(new double[size_t(heads * d * nk)]);  // [head][D][nk] for rowLogits
  poolForMask(q, k, dtype, heads, p.seqQ, p.seqKv, d, qa.get(), kaT.get());
  const double scale = 1.0 / std::sqrt(double(d));
  const int32_t* doc = p.blockDoc;
  constexpr double kMinusInf = -std::numeric_limits<double>::infinity();

  ThreadPool& pool = ThreadPool::instance();
  std::vector<RowScratch> scratch(size_t(pool.threads()), RowScratch(nk));
  pool.parallelFor(heads * nq, 8, [&](int64_t begin, int64_t end, int worker) {
    RowScratch& s = scratch[size_t(worker)];
    double* prob = s.prob.data();
    for (int64_t r = begin; r < end; ++r) {
      const int64_t head = r / nq, i = r % nq;
      // logits and softmax over the row's document
      rowLogits(&qa[size_t(r * d)], &kaT[size_t(head * d * nk)], d, nk, prob);
      int64_t candidates = 0;
      double maxLogit = kMinusInf;
      for (int64_t j = 0; j < nk; ++j) {
        if (doc && doc[i] != doc[j]) {
          prob[j] = kMinusInf;
          continue;
        }
        prob[j] *= scale;
        maxLogit = std::max(maxLogit, prob[j]);
        s.order[size_t(candidates++)].block = int32_t(j);
      }
      double total = 0.0;
      for (int64_t j = 0; j < nk; ++j) {
        const double e = std::isinf(prob[j]) && prob[j] < 0 ? 0.0 : std::exp(prob[j] - maxLogit);
        prob[j] = e;
        total += e;
      }
      for (int64_t j = 0; j < nk; ++j) prob[j] /= total;
      for (int64_t c = 0; c < candidates; ++c) s.order[size_t(c)].prob = prob[s.order[size_t(c)].block];
      if (map)
        for (int64_t j = 0; j < nk; ++j) map[size_t(r * nk + j)] = float(prob[j]);

      std::fill(s.keep.begin(), s.keep.end(), uint8_t(0));
      selectBlocks(p, s, candidates);
      for (int64_t j = 0; j < nk; ++j) {
        if (p.sta && staKeeps(p.grid, p.window, int32_t(i), int32_t(j))) s.keep[size_t(j)] = 1;
        if (doc && doc[i] != doc[j]) s.keep[size_t(j)] = 0;
      }
      // FlexAttention's dense-to-ordered layout: kept ids ascending, then dropped ids ascending.
      int32_t* row = kvIndices + r * nk;
      int32_t kept = 0;
      for (int64_t j = 0; j < nk; ++j)
        if (s.keep[size_t(j)]) row[kept++] = int32_t(j);
      int32_t next = kept;
      for (int64_t j = 0; j < nk; ++j)
        if (!s.keep[size_t(j)]) row[next++] = int32_t(j);
      kvCounts[r] = kept;
    }
  });
}

}  // namespace cpu
}  // namespace nabla
