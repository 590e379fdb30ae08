// Developer harness for the CPU attention kernel (csrc/cpu/attention.cc): checks it against a
// float64 reference on small shapes, then times dense and block-sparse attention.
//
// Build and run from the repository root:
//   g++ -O3 -std=c++17 -pthread -Wall -Wextra -I csrc bench/native/attention_harness.cc
//       csrc/cpu/attention.cc csrc/core/thread_pool.cc -o /tmp/attention_harness
//   /tmp/attention_harness            # checks + timings
//   /tmp/attention_harness check      # checks only
//   /tmp/attention_harness bench      # timings only
// Every check runs on the AVX2 kernel (when the CPU has it) and on the portable one, each asked
// for explicitly and confirmed by the kernel the call reports. NABLA_NUM_THREADS sets the pool
// size, NABLA_BENCH_ROUNDS the timing rounds (default 10; each configuration reports its best
// round), NABLA_CPU_ISA=scalar times the portable kernel. Compare with the machine's fp32 GEMM rate, e.g. numpy 4096^3
// matmul:
//   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 -c "import numpy as np, time; ..."
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "core/block_rules.h"
#include "core/dtype.h"
#include "core/thread_pool.h"
#include "cpu/cpu_ops.h"

using nabla::AttentionParams;
using nabla::DType;
using nabla::kBlockSize;

namespace {

using nabla::cpu::CpuKernel;

// The kernel every call asks for (the checks run each one; the timings take NABLA_CPU_ISA).
CpuKernel requested = CpuKernel::Auto;

struct Shape {
  int64_t batch, heads, seqQ, seqKv, headDim, valueDim;
};

// Dense attention parameters of a shape (callers add the mask lists).
AttentionParams paramsFor(const Shape& s, float scale) {
  AttentionParams p;
  p.batch = s.batch;
  p.heads = s.heads;
  p.seqQ = s.seqQ;
  p.seqKv = s.seqKv;
  p.headDim = s.headDim;
  p.valueDim = s.valueDim;
  p.scale = scale;
  return p;
}

// Tensor of `n` elements in dtype `t`, filled from N(0, sigma).
std::vector<uint8_t> randomTensor(size_t n, DType t, float sigma, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.f, sigma);
  std::vector<uint8_t> buf(n * nabla::dtypeSize(t));
  for (size_t i = 0; i < n; ++i) nabla::storeElement(buf.data(), i, t, dist(rng));
  return buf;
}

// kvCounts/kvIndices with each row keeping about `density` of the nk blocks (ascending, padded
// with the dropped ids as FlexAttention does); `emptyRows` also empties every third row.
void randomMask(const Shape& s, double density, bool emptyRows, std::mt19937& rng, std::vector<int32_t>& counts,
                std::vector<int32_t>& indices) {
  const int64_t nq = s.seqQ / kBlockSize, nk = s.seqKv / kBlockSize, rows = s.batch * s.heads * nq;
  counts.assign(size_t(rows), 0);
  indices.assign(size_t(rows * nk), 0);
  std::vector<int32_t> ids(static_cast<size_t>(nk));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < nk; ++j) ids[size_t(j)] = int32_t(j);
    std::shuffle(ids.begin(), ids.end(), rng);
    int64_t keep = int64_t(std::llround(density * double(nk)));
    if (emptyRows && r % 3 == 1) keep = 0;
    keep = std::max<int64_t>(0, std::min(keep, nk));
    std::sort(ids.begin(), ids.begin() + keep);
    std::sort(ids.begin() + keep, ids.end());
    counts[size_t(r)] = int32_t(keep);
    std::copy(ids.begin(), ids.end(), indices.begin() + r * nk);
  }
}

// float64 reference: direct softmax over the kept keys of each query.
std::vector<double> reference(const Shape& s, const AttentionParams& p, const void* q, const void* k, const void* v,
                              DType t) {
  const int64_t nq = s.seqQ / kBlockSize, nk = s.seqKv / kBlockSize, D = s.headDim, Dv = s.valueDim;
  std::vector<double> out(size_t(s.batch * s.heads * s.seqQ * Dv), 0.0);
  std::vector<double> logits;
  std::vector<int64_t> keys;
  for (int64_t bh = 0; bh < s.batch * s.heads; ++bh) {
    for (int64_t i = 0; i < nq; ++i) {
      const int64_t r = bh * nq + i;
      keys.clear();
      const int64_t kept = p.kvCounts ? p.kvCounts[r] : nk;
      for (int64_t n = 0; n < kept; ++n) {
        const int64_t kb = p.kvCounts ? p.kvIndices[r * nk + n] : n;
        for (int64_t j = 0; j < kBlockSize; ++j) keys.push_back(kb * kBlockSize + j);
      }
      for (int64_t qi = i * kBlockSize; qi < (i + 1) * kBlockSize; ++qi) {
        const size_t qo = size_t((bh * s.seqQ + qi) * D);
        logits.assign(keys.size(), 0.0);
        double mx = -INFINITY;
        for (size_t a = 0; a < keys.size(); ++a) {
          const size_t ko = size_t((bh * s.seqKv + keys[a]) * D);
          double dot = 0.0;
          for (int64_t d = 0; d < D; ++d)
            dot += double(nabla::loadElement(q, qo + size_t(d), t)) * double(nabla::loadElement(k, ko + size_t(d), t));
          logits[a] = dot * double(p.scale);
          mx = std::max(mx, logits[a]);
        }
        double sum = 0.0;
        for (double& x : logits) sum += (x = std::exp(x - mx));
        double* o = out.data() + (bh * s.seqQ + qi) * Dv;
        for (size_t a = 0; a < keys.size(); ++a) {
          const size_t vo = size_t((bh * s.seqKv + keys[a]) * Dv);
          for (int64_t c = 0; c < Dv; ++c) o[c] += logits[a] / sum * double(nabla::loadElement(v, vo + size_t(c), t));
        }
      }
    }
  }
  return out;
}

// Runs one shape on the current kernel; returns max |out - ref| / max |ref|.
double checkOnce(const Shape& s, DType t, double density, bool emptyRows, float sigma, uint32_t seed) {
  std::mt19937 rng(seed);
  const size_t nqElems = size_t(s.batch * s.heads * s.seqQ), nkElems = size_t(s.batch * s.heads * s.seqKv);
  auto q = randomTensor(nqElems * size_t(s.headDim), t, sigma, rng);
  auto k = randomTensor(nkElems * size_t(s.headDim), t, sigma, rng);
  auto v = randomTensor(nkElems * size_t(s.valueDim), t, 1.f, rng);
  std::vector<int32_t> counts, indices;
  AttentionParams p = paramsFor(s, 1.f / std::sqrt(float(s.headDim)));
  if (density < 1.0 || emptyRows) {
    randomMask(s, density, emptyRows, rng, counts, indices);
    p.kvCounts = counts.data();
    p.kvIndices = indices.data();
  }
  // poison the output so rows the kernel forgets show up
  std::vector<uint8_t> out(nqElems * size_t(s.valueDim) * nabla::dtypeSize(t), 0xff);
  const CpuKernel ran = nabla::cpu::attention(p, q.data(), k.data(), v.data(), t, out.data(), requested);
  if (requested != CpuKernel::Auto && ran != requested) return INFINITY;  // not the kernel asked for
  const auto ref = reference(s, p, q.data(), k.data(), v.data(), t);
  double maxRef = 1e-30, maxErr = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    maxRef = std::max(maxRef, std::fabs(ref[i]));
    const double diff = std::fabs(double(nabla::loadElement(out.data(), i, t)) - ref[i]);
    maxErr = std::isnan(diff) ? INFINITY : std::max(maxErr, diff);
  }
  return maxErr / maxRef;
}

int runChecks() {
  struct Case {
    Shape shape;
    DType dtype;
    double density;
    bool emptyRows;
    float sigma = 1.f;  // of q and k: large values give peaked softmaxes and exp underflow
  };
  std::vector<Case> cases;
  for (int64_t D : {8, 16, 40, 64, 128, 256}) {
    cases.push_back({{1, 2, 128, 192, D, D}, DType::Float32, 1.0, false});
    cases.push_back({{2, 1, 192, 256, D, D}, DType::Float32, 0.5, true});
  }
  cases.push_back({{1, 2, 128, 128, 64, 40}, DType::Float32, 1.0, false});      // Dv < D
  cases.push_back({{1, 2, 128, 256, 24, 100}, DType::Float32, 0.5, true});      // Dv > D, Dv % 8 != 0
  cases.push_back({{1, 1, 64, 320, 13, 7}, DType::Float32, 0.4, false});        // odd dims
  cases.push_back({{1, 1, 128, 128, 64, 64}, DType::Float32, 0.0, false});      // every row empty
  cases.push_back({{1, 2, 128, 256, 64, 64}, DType::Float32, 0.5, true, 6.f});  // scores spread over ~1e3
  for (DType t : {DType::Float16, DType::BFloat16}) {
    cases.push_back({{1, 2, 128, 192, 64, 64}, t, 1.0, false});
    cases.push_back({{2, 1, 192, 256, 40, 72}, t, 0.5, true});
    cases.push_back({{1, 1, 128, 128, 13, 9}, t, 0.5, true});
    cases.push_back({{1, 1, 128, 128, 256, 128}, t, 1.0, false});
  }

  // fp32 must match to ~1e-5; fp16/bf16 outputs are rounded once (half an ulp of the largest value)
  auto tolerance = [](DType t) { return t == DType::Float32 ? 2e-5 : (t == DType::Float16 ? 1e-3 : 8e-3); };
  int failures = 0;
  std::printf("%-8s %-9s %-26s %-8s %-6s %-6s %-10s\n", "kernel", "dtype", "B,H,Sq,Skv,D,Dv", "density", "empty",
              "sigma", "rel.err");
  for (const char* isa : {"auto", "scalar"}) {
    requested = std::strcmp(isa, "scalar") == 0 ? CpuKernel::Scalar : CpuKernel::Auto;
    uint32_t seed = 1;
    for (const Case& c : cases) {
      const double err = checkOnce(c.shape, c.dtype, c.density, c.emptyRows, c.sigma, seed++);
      const bool ok = err <= tolerance(c.dtype);
      failures += !ok;
      char dims[64];
      std::snprintf(dims, sizeof dims, "%lld,%lld,%lld,%lld,%lld,%lld", (long long)c.shape.batch,
                    (long long)c.shape.heads, (long long)c.shape.seqQ, (long long)c.shape.seqKv,
                    (long long)c.shape.headDim, (long long)c.shape.valueDim);
      std::printf("%-8s %-9s %-26s %-8.2f %-6s %-6.1f %-10.2e %s\n", isa, nabla::dtypeName(c.dtype), dims, c.density,
                  c.emptyRows ? "yes" : "no", c.sigma, err, ok ? "ok" : "FAIL");
    }
  }
  requested = CpuKernel::Auto;
  std::printf("%s: %d failure(s)\n\n", failures ? "CHECKS FAILED" : "checks passed", failures);
  return failures;
}

double seconds() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// CPU time of the whole process (all pool threads); with other load on the machine, cpu ms /
// threads is a steadier estimate of the kernel's own speed than wall time.
double cpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// Dense fp32 (the baseline), block-sparse fp32 at several densities, and dense fp16 / bf16.
void runBench() {
  const Shape s{1, 4, 4096, 4096, 64, 64};
  const double denseFlops = 4.0 * double(s.batch * s.heads) * double(s.seqQ) * double(s.seqKv) * double(s.headDim);
  const size_t elems = size_t(s.batch * s.heads * s.seqQ * s.headDim);
  std::mt19937 rng(7);

  struct Inputs {
    std::vector<uint8_t> q, k, v, out;
  };
  auto makeInputs = [&](DType t) {
    Inputs in;
    in.q = randomTensor(elems, t, 1.f, rng);
    in.k = randomTensor(elems, t, 1.f, rng);
    in.v = randomTensor(elems, t, 1.f, rng);
    in.out.resize(elems * nabla::dtypeSize(t));
    return in;
  };
  Inputs inputs[3] = {makeInputs(DType::Float32), makeInputs(DType::Float16), makeInputs(DType::BFloat16)};

  struct Config {
    DType dtype;
    double density;                        // actual fraction of kept blocks
    std::vector<int32_t> counts, indices;  // empty: dense
    double bestMs = 1e30, bestCpuMs = 1e30;
  };
  std::vector<Config> configs;
  configs.push_back({DType::Float32, 1.0, {}, {}});
  for (double density : {0.1, 0.25, 0.5, 0.75, 1.0}) {
    Config c{DType::Float32, 0.0, {}, {}};
    randomMask(s, density, false, rng, c.counts, c.indices);
    int64_t kept = 0;
    for (int32_t n : c.counts) kept += n;
    c.density = double(kept) / double(c.counts.size() * size_t(s.seqKv / kBlockSize));
    configs.push_back(std::move(c));
  }
  configs.push_back({DType::Float16, 1.0, {}, {}});
  configs.push_back({DType::BFloat16, 1.0, {}, {}});

  AttentionParams p = paramsFor(s, 0.125f);

  // Round-robin over the configurations and keep each one's best time, so that load from other
  // processes on the machine affects them alike.
  const char* roundsEnv = std::getenv("NABLA_BENCH_ROUNDS");
  const int rounds = roundsEnv ? std::max(1, std::atoi(roundsEnv)) : 10;
  for (int round = 0; round <= rounds; ++round) {
    for (Config& c : configs) {
      Inputs& in = inputs[int(c.dtype)];
      p.kvCounts = c.counts.empty() ? nullptr : c.counts.data();
      p.kvIndices = c.indices.empty() ? nullptr : c.indices.data();
      const double t0 = seconds(), c0 = cpuSeconds();
      nabla::cpu::attention(p, in.q.data(), in.k.data(), in.v.data(), c.dtype, in.out.data(), requested);
      const double ms = (seconds() - t0) * 1e3, cpuMs = (cpuSeconds() - c0) * 1e3;
      if (round > 0) {  // round 0 warms up
        c.bestMs = std::min(c.bestMs, ms);
        c.bestCpuMs = std::min(c.bestCpuMs, cpuMs);
      }
    }
  }

  const int threads = nabla::ThreadPool::instance().threads();
  std::printf("B=1 H=4 S=4096 D=64, %d thread(s), best of %d; FLOPs = 4*B*H*S*S*D*density\n", threads, rounds);
  std::printf("%-9s %-7s %-8s %-9s %-9s %-13s %-13s %-11s %-11s\n", "dtype", "mask", "density", "ms", "GFLOP/s",
              "1.15*d*dense", "ms/(d*dense)", "cpu ms/thr", "cpu GFLOP/s");
  const double denseMs = configs[0].bestMs;
  for (const Config& c : configs) {
    const bool dense = c.counts.empty();
    std::printf("%-9s %-7s %-8.3f %-9.2f %-9.1f ", nabla::dtypeName(c.dtype), dense ? "dense" : "sparse", c.density,
                c.bestMs, denseFlops * c.density / c.bestMs / 1e6);
    if (dense) std::printf("%-13s %-13s ", "-", "-");
    else std::printf("%-13.2f %-13.2f ", 1.15 * c.density * denseMs, c.bestMs / (c.density * denseMs));
    const double cpuMs = c.bestCpuMs / threads;
    std::printf("%-11.2f %-11.1f\n", cpuMs, denseFlops * c.density / cpuMs / 1e6);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "all";
  const char* isa = std::getenv("NABLA_CPU_ISA");  // timings only; read before any thread starts
  const CpuKernel timed = isa && std::strcmp(isa, "scalar") == 0 ? CpuKernel::Scalar : CpuKernel::Auto;
  int failures = 0;
  if (mode == "all" || mode == "check") failures = runChecks();
  requested = timed;
  if (mode == "all" || mode == "bench") runBench();
  return failures ? 1 : 0;
}
