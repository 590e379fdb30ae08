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
#include <limits>
#include <numeric>
#include <vector>

#include "../core/thread_pool.h"
#include "cpu_ops.h"

namespace nabla {
namespace cpu {
namespace {

struct RowScratch {
  std::vector<double> prob;
  std::vector<int32_t> order;
  std::vector<uint8_t> keep;
  explicit RowScratch(int64_t nk) : prob(size_t(nk)), order(size_t(nk)), keep(size_t(nk)) {}
};

// Fills s.keep[j] for one row from s.prob (documents already zeroed) over the `candidates` blocks
// listed in s.order[0 .. candidates).
void selectBlocks(const MaskParams& p, RowScratch& s, int64_t candidates) {
  auto& prob = s.prob;
  int32_t* first = s.order.data();
  int32_t* last = first + candidates;
  // "a before b" = a is smaller, or equal and of higher index (dropped first, kept last)
  auto ascending = [&](int32_t a, int32_t b) {
    return prob[size_t(a)] < prob[size_t(b)] || (prob[size_t(a)] == prob[size_t(b)] && a > b);
  };
  if (p.method == MaskMethod::TopK) {
    const int64_t keepCount = topkCount(p.threshold, candidates);
    int32_t* cut = last - keepCount;  // the keepCount largest end up in [cut, last)
    std::nth_element(first, cut, last, ascending);
    for (int32_t* it = cut; it != last; ++it) s.keep[size_t(*it)] = 1;
    return;
  }
  std::sort(first, last, ascending);
  const double dropBelow = 1.0 - double(p.threshold);
  double running = 0.0;
  for (int32_t* it = first; it != last; ++it) {
    running += prob[size_t(*it)];
    if (running >= dropBelow) {
      for (; it != last; ++it) s.keep[size_t(*it)] = 1;
      return;
    }
  }
  // Rounding left the total just below 1 - thr: keep the largest block (at least one per row).
  if (candidates > 0) s.keep[size_t(*(last - 1))] = 1;
}

// logits[j] = sum_c qi[c] * kaT[c][j] in fp64, accumulated across j (vectorises without
// reordering any sum).
void rowLogits(const float* qi, const double* kaT, int64_t d, int64_t nk, double* logits) {
  std::fill(logits, logits + nk, 0.0);
  for (int64_t c = 0; c < d; ++c) {
    const double qc = qi[c];
    const double* kc = kaT + c * nk;
    for (int64_t j = 0; j < nk; ++j) logits[j] += qc * kc[j];
  }
}

}  // namespace

void nablaMask(const MaskParams& p, const void* q, const void* k, DType dtype, int32_t* kvCounts,
               int32_t* kvIndices, float* map) {
  const int64_t heads = p.batch * p.heads, nq = p.qBlocks(), nk = p.kvBlocks(), d = p.headDim;
  std::vector<float> qa(size_t(heads * nq * d)), ka(size_t(heads * nk * d));
  blockPool(q, dtype, heads, p.seqQ, d, p.layout, qa.data());
  blockPool(k, dtype, heads, p.seqKv, d, p.layout, ka.data());
  // ka transposed per head to [D][nk] in fp64 for rowLogits
  std::vector<double> kaT(ka.size());
  for (int64_t head = 0; head < heads; ++head)
    for (int64_t j = 0; j < nk; ++j)
      for (int64_t c = 0; c < d; ++c) kaT[size_t((head * d + c) * nk + j)] = ka[size_t((head * nk + j) * d + c)];
  const double scale = 1.0 / std::sqrt(double(d));
  const int32_t* doc = p.blockDoc;
  // A key block is visible to row i unless another document or (causal) a later frame holds it.
  auto hidden = [&](int64_t i, int64_t j) {
    return (doc && doc[i] != doc[j]) || (p.causal && p.layout.blockFrame(j) > p.layout.blockFrame(i));
  };

  ThreadPool::instance().parallelFor(heads * nq, 8, [&](int64_t begin, int64_t end, int) {
    RowScratch s(nk);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t head = r / nq, i = r % nq;
      const float* qi = &qa[size_t(r * d)];
      // logits and softmax over the row's document
      int64_t candidates = 0;
      double maxLogit = -std::numeric_limits<double>::infinity();
      rowLogits(qi, &kaT[size_t(head * d * nk)], d, nk, s.prob.data());
      for (int64_t j = 0; j < nk; ++j) {
        if (hidden(i, j)) {
          s.prob[size_t(j)] = -std::numeric_limits<double>::infinity();
          continue;
        }
        s.prob[size_t(j)] *= scale;
        maxLogit = std::max(maxLogit, s.prob[size_t(j)]);
        s.order[size_t(candidates++)] = int32_t(j);
      }
      double total = 0.0;
      for (int64_t j = 0; j < nk; ++j) {
        double e = std::isinf(s.prob[size_t(j)]) && s.prob[size_t(j)] < 0 ? 0.0 : std::exp(s.prob[size_t(j)] - maxLogit);
        s.prob[size_t(j)] = e;
        total += e;
      }
      for (int64_t j = 0; j < nk; ++j) s.prob[size_t(j)] /= total;
      if (map)
        for (int64_t j = 0; j < nk; ++j) map[size_t(r * nk + j)] = float(s.prob[size_t(j)]);

      std::fill(s.keep.begin(), s.keep.end(), uint8_t(0));
      selectBlocks(p, s, candidates);
      for (int64_t j = 0; j < nk; ++j) {
        if (p.sta && staKeeps(p.grid, p.window, int32_t(i), int32_t(j))) s.keep[size_t(j)] = 1;
        if (hidden(i, j)) s.keep[size_t(j)] = 0;
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
