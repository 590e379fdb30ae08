// Block-sparse flash attention on the CPU (docs/nabla.md section 4).
//
// Work is split over rows r = (b*H + h)*nq + i (one query block each) with the shared pool; each
// row walks only its kept key blocks with an online softmax in fp32. Two kernels compute a row:
//   attentionRowAvx2   (attention_avx2.h) the fast one, picked at run time on AVX2 + FMA CPUs
//   attentionRowScalar (below)            portable C++, the same algorithm one element at a time
// The caller picks one (CpuKernel; the op's cpuKernel option), so tests can cover both.
#include <cmath>
#include <cstring>
#include <vector>

#include "../core/thread_pool.h"
#include "attention_avx2.h"
#include "attention_layout.h"
#include "cpu_ops.h"

namespace nabla {
namespace cpu {
namespace {

// The portable kernel. Per query i of the block:
//   m_i = running max, l_i = running sum of exp(s - m_i), O_i = running sum of exp(s - m_i) v
// and per kept key block: m_new = max(m, max_j s_ij), rescale l and O by exp(m - m_new), add the
// block's terms. Scores are in log2 units (q pre-scaled by scale * log2(e)), so exp is exp2.
void attentionRowScalar(const AttentionLayout& L, int64_t row, const AttentionScratch& s) {
  const int64_t D = L.headDim, Dv = L.valueDim, dv8 = roundUp8(Dv);
  const DType t = L.dtype;
  const int64_t kept = L.keptBlocks(row);
  void* out = L.outTile(row);
  const int queries = L.queryRows(row);
  if (kept == 0) {
    std::memset(out, 0, size_t(queries * Dv) * L.elemSize);
    return;
  }

  // Q [queries][D] in fp32, pre-scaled (s.queryT holds it row-major here)
  const float c = L.scale * 1.4426950408889634f;
  const void* q = L.queryTile(row);
  float* query = s.queryT;
  for (int64_t e = 0; e < queries * D; ++e) query[e] = c * loadElement(q, size_t(e), t);
  std::memset(s.acc, 0, sizeof(float) * size_t(kBlockSize * dv8));
  for (int i = 0; i < kBlockSize; ++i) {
    s.rowMax[i] = -INFINITY;
    s.rowSum[i] = 0.f;
  }

  for (int64_t n = 0; n < kept; ++n) {
    const int64_t kb = L.blockAt(row, n);
    const void* k = L.keyTile(row, kb);
    const void* v = L.valueTile(row, kb);
    const int keys = L.keyRows(kb);
    for (int64_t e = 0; e < keys * D; ++e) s.keys[e] = loadElement(k, size_t(e), t);
    for (int64_t e = 0; e < keys * Dv; ++e) s.values[e] = loadElement(v, size_t(e), t);

    for (int i = 0; i < queries; ++i) {
      // s_ij = q_i . k_j, m_new = max(m_i, max_j s_ij)
      float* sc = s.scores + i * kBlockSize;
      float blockMax = -INFINITY;
      for (int j = 0; j < keys; ++j) {
        float dot = 0.f;
        for (int64_t d = 0; d < D; ++d) dot += query[i * D + d] * s.keys[j * D + d];
        sc[j] = dot;
        blockMax = std::fmax(blockMax, dot);
      }
      const float mNew = std::fmax(s.rowMax[i], blockMax);
      const float alpha = std::exp2(s.rowMax[i] - mNew);  // 0 for the first block (m = -inf)
      s.rowMax[i] = mNew;

      // l = alpha l + sum_j p_ij, O_i = alpha O_i + sum_j p_ij v_j
      float* o = s.acc + i * dv8;
      for (int64_t cv = 0; cv < Dv; ++cv) o[cv] *= alpha;
      float sum = 0.f;
      for (int j = 0; j < keys; ++j) {
        const float p = std::exp2(sc[j] - mNew);
        sum += p;
        for (int64_t cv = 0; cv < Dv; ++cv) o[cv] += p * s.values[j * Dv + cv];
      }
      s.rowSum[i] = alpha * s.rowSum[i] + sum;
    }
  }

  // out = O / l
  for (int i = 0; i < queries; ++i) {
    const float inv = 1.f / s.rowSum[i];
    void* dst = static_cast<char*>(out) + size_t(i * Dv) * L.elemSize;
    for (int64_t cv = 0; cv < Dv; ++cv) storeElement(dst, size_t(cv), t, s.acc[i * dv8 + cv] * inv);
  }
}

using RowKernel = void (*)(const AttentionLayout&, int64_t, const AttentionScratch&);

}  // namespace

std::string avx2Unavailable() {
#ifdef NABLA_ATTENTION_AVX2
  static const bool hasAvx2 =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  return hasAvx2 ? std::string() : "this CPU lacks AVX2, FMA or F16C";
#else
  return "this build has no AVX2 kernel (not an x86-64 GCC or Clang build)";
#endif
}

CpuKernel attention(const AttentionParams& p, const void* q, const void* k, const void* v, DType dtype, void* out,
                    CpuKernel choice) {
  static const bool avx2Runs = avx2Unavailable().empty();
  const CpuKernel ran = choice == CpuKernel::Scalar || !avx2Runs ? CpuKernel::Scalar : CpuKernel::Avx2;
  RowKernel kernel = attentionRowScalar;
#ifdef NABLA_ATTENTION_AVX2
  if (ran == CpuKernel::Avx2) kernel = avx2::attentionRowAvx2;
#endif
  AttentionLayout L;
  L.q = q;
  L.k = k;
  L.v = v;
  L.out = out;
  L.dtype = dtype;
  L.elemSize = dtypeSize(dtype);
  L.seqQ = p.seqQ;
  L.seqKv = p.seqKv;
  L.headDim = p.headDim;
  L.valueDim = p.valueDim;
  L.nq = p.qBlocks();
  L.nk = p.kvBlocks();
  L.rows = p.batch * p.heads * L.nq;
  L.scale = p.scale;
  L.kvCounts = p.kvCounts;
  L.kvIndices = p.kvIndices;
  L.layout = p.layout;
  if (L.rows <= 0 || L.valueDim <= 0) return ran;
  if (L.nk == 0) {  // no keys at all: every row is empty
    std::memset(out, 0, size_t(p.batch * p.heads * p.seqQ * L.valueDim) * L.elemSize);
    return ran;
  }

  // Per-call scratch, one slice per worker (ops may run concurrently from several threads).
  ThreadPool& pool = ThreadPool::instance();
  const int workers = pool.threads();
  const size_t sliceFloats = (AttentionScratch::floats(L.headDim, L.valueDim) + 15) & ~size_t(15);
  std::vector<float> storage(sliceFloats * size_t(workers) + 16, 0.f);
  float* base = storage.data();
  while (reinterpret_cast<uintptr_t>(base) % 64 != 0) ++base;
  std::vector<AttentionScratch> scratch(static_cast<size_t>(workers));
  for (int w = 0; w < workers; ++w)
    scratch[size_t(w)] = AttentionScratch::carve(base + sliceFloats * size_t(w), L.headDim, L.valueDim);

  pool.parallelFor(L.rows, 1, [&](int64_t begin, int64_t end, int worker) {
    for (int64_t r = begin; r < end; ++r) kernel(L, r, scratch[size_t(worker)]);
  });
  return ran;
}

}  // namespace cpu
}  // namespace nabla
