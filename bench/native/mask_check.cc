// Check driver for the CPU mask (csrc/cpu/mask.cc + pool.cc) against its own float64 reference,
// with no Node: CI cross-compiles it for aarch64 and runs it under qemu-user (scripts/ci/arm64.sh).
//
//   g++ -O2 -std=c++17 -pthread -I csrc bench/native/mask_check.cc csrc/cpu/mask.cc csrc/cpu/pool.cc
//       csrc/core/thread_pool.cc -o /tmp/mask_check && /tmp/mask_check
//
// Reference per row (docs/nabla.md section 1): pooled means in fp64, P = softmax(qa . ka / sqrt(D))
// over the row's document, cdf keeps the blocks whose ascending running sum (ties: higher index
// first) reaches 1 - thr, or the largest one if rounding never gets there; topk keeps
// max(1, floor(thr * n)) largest; STA ORs in, documents AND out. Blocks whose running sum lies
// within 1e-6 of 1 - thr may go either way (fp32 pooling moves P by about that).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include "core/block_rules.h"
#include "core/dtype.h"
#include "cpu/cpu_ops.h"

using nabla::DType;
using nabla::MaskMethod;
using nabla::MaskParams;

namespace {

struct Case {
  const char* name;
  int64_t batch, heads, seq, headDim;
  float mean, sigma;  // q and k ~ mean + sigma * N(0, 1); sigma 0: all equal
  float threshold;
  MaskMethod method;
  bool sta = false;
  nabla::StaWindow window{};
  std::vector<int32_t> frames = {};  // document boundaries in frames; empty: one document
};

// Reference keep[r][j] (1 kept, 0 dropped, 2 at the boundary: either is right).
std::vector<uint8_t> reference(const Case& c, const MaskParams& p, const std::vector<float>& q,
                               const std::vector<float>& k, const std::vector<int32_t>& doc) {
  const int64_t nb = c.seq / nabla::kBlockSize, D = c.headDim, heads = c.batch * c.heads;
  std::vector<double> qa(size_t(heads * nb * D)), ka(qa.size());
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < nb; ++i)
      for (int64_t d = 0; d < D; ++d) {
        double sq = 0, sk = 0;
        for (int64_t t = 0; t < nabla::kBlockSize; ++t) {
          const size_t at = size_t((h * c.seq + i * nabla::kBlockSize + t) * D + d);
          sq += q[at];
          sk += k[at];
        }
        qa[size_t((h * nb + i) * D + d)] = sq / nabla::kBlockSize;
        ka[size_t((h * nb + i) * D + d)] = sk / nabla::kBlockSize;
      }
  std::vector<uint8_t> keep(size_t(heads * nb * nb), 0);
  std::vector<double> prob(static_cast<size_t>(nb));
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < nb; ++i) {
      std::vector<int32_t> cands;
      double mx = -INFINITY;
      for (int64_t j = 0; j < nb; ++j) {
        if (!doc.empty() && doc[size_t(i)] != doc[size_t(j)]) continue;
        double s = 0;
        for (int64_t d = 0; d < D; ++d) s += qa[size_t((h * nb + i) * D + d)] * ka[size_t((h * nb + j) * D + d)];
        prob[size_t(j)] = s / std::sqrt(double(D));
        mx = std::max(mx, prob[size_t(j)]);
        cands.push_back(int32_t(j));
      }
      double z = 0;
      for (int32_t j : cands) z += (prob[size_t(j)] = std::exp(prob[size_t(j)] - mx));
      for (int32_t j : cands) prob[size_t(j)] /= z;
      std::sort(cands.begin(), cands.end(), [&](int32_t a, int32_t b) {
        return prob[size_t(a)] < prob[size_t(b)] || (prob[size_t(a)] == prob[size_t(b)] && a > b);
      });
      uint8_t* row = &keep[size_t((h * nb + i) * nb)];
      if (c.method == MaskMethod::TopK) {
        const int64_t n = nabla::topkCount(c.threshold, int64_t(cands.size()));
        for (size_t a = cands.size() - size_t(n); a < cands.size(); ++a) row[cands[a]] = 1;
      } else {
        const double target = 1.0 - double(c.threshold);
        double run = 0;
        bool any = false;
        for (int32_t j : cands) {
          run += prob[size_t(j)];
          const bool boundary = std::fabs(run - target) < 1e-6 && target > 0;
          row[j] = boundary ? 2 : uint8_t(run >= target);
          any = any || row[j] == 1;
        }
        if (!any && !cands.empty() && row[cands.back()] == 0) row[cands.back()] = 1;  // at least one
      }
      for (int64_t j = 0; j < nb; ++j) {
        if (c.sta && nabla::staKeeps(p.grid, c.window, int32_t(i), int32_t(j))) row[j] = 1;
        if (!doc.empty() && doc[size_t(i)] != doc[size_t(j)]) row[j] = 0;
      }
    }
  return keep;
}

// Number of rows that differ from the reference, or of malformed rows (ids not kept ascending
// then dropped ascending).
int64_t check(const Case& c, uint32_t seed) {
  const int64_t nb = c.seq / nabla::kBlockSize, rows = c.batch * c.heads * nb;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> q(size_t(c.batch * c.heads * c.seq * c.headDim)), k(q.size());
  for (float& x : q) x = c.mean + c.sigma * normal(rng);
  for (float& x : k) x = c.mean + c.sigma * normal(rng);

  MaskParams p;
  p.batch = c.batch;
  p.heads = c.heads;
  p.seqQ = p.seqKv = c.seq;
  p.headDim = c.headDim;
  p.threshold = c.threshold;
  p.method = c.method;
  p.sta = c.sta;
  p.window = c.window;
  p.grid = {int32_t(nb), 1, 1};  // one block per frame: frames index blocks directly
  std::vector<int32_t> doc;
  if (!c.frames.empty()) doc = nabla::blockDocuments(p.grid, c.frames);
  p.blockDoc = doc.empty() ? nullptr : doc.data();

  std::vector<int32_t> counts(size_t(rows), -1), indices(size_t(rows * nb), -1);
  nabla::cpu::nablaMask(p, q.data(), k.data(), DType::Float32, counts.data(), indices.data(), nullptr);
  const auto ref = reference(c, p, q, k, doc);

  int64_t bad = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t* ids = &indices[size_t(r * nb)];
    std::vector<uint8_t> got(size_t(nb), 0);
    bool ok = counts[size_t(r)] >= 1 && counts[size_t(r)] <= nb;
    for (int64_t n = 0; ok && n < nb; ++n) {
      ok = ids[n] >= 0 && ids[n] < nb && !got[size_t(ids[n])] &&
           (n == 0 || n == counts[size_t(r)] || ids[n] > ids[n - 1]);
      if (ok && n < counts[size_t(r)]) got[size_t(ids[n])] = 1;
    }
    for (int64_t j = 0; ok && j < nb; ++j) {
      const uint8_t want = ref[size_t(r * nb + j)];
      ok = want == 2 || want == got[size_t(j)];
    }
    bad += !ok;
  }
  return bad;
}

}  // namespace

int main() {
  const auto cdf = MaskMethod::Cdf, topk = MaskMethod::TopK;
  std::vector<Case> cases = {
      {"random cdf 0.7", 2, 2, 16 * 64, 32, 0.f, 1.f, 0.7f, cdf},
      {"random cdf 0.3", 1, 3, 24 * 64, 16, 0.f, 1.f, 0.3f, cdf},
      {"random topk 0.25", 2, 1, 16 * 64, 64, 0.f, 1.f, 0.25f, topk},
      // q = k = 0: P = 1/4 each; the running sum hits 1 - thr exactly (keep 0, 1, 2)
      {"uniform 4 blocks cdf 0.5", 1, 2, 4 * 64, 8, 0.f, 0.f, 0.5f, cdf},
      {"uniform 4 blocks topk 0.5", 1, 2, 4 * 64, 8, 0.f, 0.f, 0.5f, topk},
      // logits about 800: exp overflows without the max subtraction
      {"large logits cdf 0.7", 1, 2, 16 * 64, 64, 10.f, 0.5f, 0.7f, cdf},
      // 1 - thr rounds to 1: at least one block per row
      {"tiny threshold 1e-30", 2, 8, 32 * 64, 16, 0.f, 1.f, 1e-30f, cdf},
      {"sta window 3", 1, 2, 12 * 64, 16, 0.f, 1.f, 0.4f, cdf, true, {3, 1, 1}},
      {"documents [0, 5, 12]", 1, 2, 12 * 64, 16, 0.f, 1.f, 0.6f, cdf, false, {}, {0, 5, 12}},
  };
  int failures = 0;
  uint32_t seed = 1;
  for (const Case& c : cases) {
    const int64_t bad = check(c, seed++);
    std::printf("%-28s %s (%lld bad rows)\n", c.name, bad ? "FAIL" : "ok", (long long)bad);
    failures += bad != 0;
  }
  // the exact rows of the uniform case, not just agreement with the reference above
  {
    MaskParams p;
    p.batch = 1;
    p.heads = 1;
    p.seqQ = p.seqKv = 4 * 64;
    p.headDim = 8;
    p.threshold = 0.5f;
    std::vector<float> zeros(size_t(4 * 64 * 8), 0.f);
    std::vector<int32_t> counts(4), indices(16);
    nabla::cpu::nablaMask(p, zeros.data(), zeros.data(), DType::Float32, counts.data(), indices.data(), nullptr);
    bool ok = true;
    for (int r = 0; r < 4; ++r)
      ok = ok && counts[size_t(r)] == 3 && indices[size_t(r * 4)] == 0 && indices[size_t(r * 4 + 1)] == 1 &&
           indices[size_t(r * 4 + 2)] == 2;
    std::printf("%-28s %s\n", "uniform rows keep 0, 1, 2", ok ? "ok" : "FAIL");
    failures += !ok;
  }
  std::printf("%s: %d failure(s)\n", failures ? "MASK CHECKS FAILED" : "mask checks passed", failures);
  return failures ? 1 : 0;
}
