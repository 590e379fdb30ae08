// The AVX2 + FMA attention kernel: one query block (64 queries) against its kept key blocks.
//
// Every function carries target("avx2,fma,f16c") so the file builds without -mavx2; attention.cc
// calls attentionRowAvx2 only after __builtin_cpu_supports says the CPU has AVX2, FMA and F16C.
//
// Per row, with Q pre-scaled by c = scale * log2(e) so that exp becomes exp2:
//   Q^T  [D][64]  built once                        (queries along the vector lanes)
//   for each kept key block:
//     S^T = K Q^T                 [64 keys][64 queries], register-blocked broadcast-FMA
//     m_new = max(m, max_j S^T)   softmax runs down the columns: vertical max/add, no shuffles
//     P^T = 2^(S^T - m_new),  alpha = 2^(m - m_new),  l = alpha l + sum_j P^T
//     O = alpha O + P V           register-blocked broadcast-FMA, V rows read as they are
//   out = O / l
// Keeping S transposed lets K and V be read in their natural row-major layout (no packing for
// fp32), and the softmax reductions run across rows of vectors.
#pragma once

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define NABLA_ATTENTION_AVX2 1

#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "attention_layout.h"

#define NABLA_AVX2_FN __attribute__((target("avx2,fma,f16c")))
// Fully unrolls a loop over a micro-tile's registers; without it GCC keeps the accumulator
// arrays on the stack and stores them on every step.
#if defined(__clang__)
#define NABLA_UNROLL _Pragma("unroll")
#else
#define NABLA_UNROLL _Pragma("GCC unroll 8")
#endif

namespace nabla {
namespace cpu {
namespace avx2 {

// Micro-tile heights: 64 rows = 10 tiles of 6 + one of 4.
constexpr int kTileRows = 6;
constexpr int kTailRows = kBlockSize % kTileRows;

// ---- fp16 / bf16 <-> fp32, eight at a time -------------------------------------------------

NABLA_AVX2_FN inline __m256 load8(const void* base, int64_t i, DType t) {
  switch (t) {
    case DType::Float16:
      return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i)));
    case DType::BFloat16: {
      // bf16 is the top half of an fp32
      __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i));
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    case DType::Float32:
    default: return _mm256_loadu_ps(static_cast<const float*>(base) + i);
  }
}

NABLA_AVX2_FN inline void store8(void* base, int64_t i, DType t, __m256 x) {
  switch (t) {
    case DType::Float16:
      _mm_storeu_si128(reinterpret_cast<__m128i*>(static_cast<uint16_t*>(base) + i),
                       _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
      break;
    case DType::BFloat16: {
      // round to nearest even: u + 0x7fff + lsb, keep the top half; NaN keeps its top half, quieted
      const __m256i u = _mm256_castps_si256(x);
      const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
      __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
      const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
      const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
      r = _mm256_blendv_epi8(r, quiet, nan);
      const __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(static_cast<uint16_t*>(base) + i), packed);
      break;
    }
    case DType::Float32:
    default: _mm256_storeu_ps(static_cast<float*>(base) + i, x); break;
  }
}

// n elements of any dtype -> fp32
NABLA_AVX2_FN inline void convertToFloat(const void* src, DType t, int64_t n, float* dst) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load8(src, i, t));
  for (; i < n; ++i) dst[i] = loadElement(src, size_t(i), t);
}

// ---- 2^x ------------------------------------------------------------------------------------

// 2^x = 2^n * 2^f with n = round(x), f in [-0.5, 0.5]; 2^f from the Cephes exp2f polynomial
// (relative error ~1e-7). x is clamped to >= -127 first (max also maps NaN there), and n = -127
// puts 0 in the exponent field, so x <= -127 (and -inf) gives exactly 0. The kernel passes x <= 0.
NABLA_AVX2_FN inline __m256 exp2v(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-127.f));
  const __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(x, n);
  __m256 p = _mm256_set1_ps(1.535336188319500e-4f);
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.339887440266574e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.618437357674640e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.550332471162809e-2f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.402264791363012e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.931472028550421e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.f));
  // 2^n in the exponent field: biased exponent n + 127 in [0, 127]
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// ---- prefetch --------------------------------------------------------------------------------

// Brings the next kept key block's K and V tiles into L2 while the current block computes, a few
// lines after each micro-tile so the loads overlap the arithmetic. Sparse rows jump between key
// blocks, which the hardware prefetcher cannot guess.
struct NextBlockPrefetch {
  const char* keys = nullptr;
  const char* values = nullptr;
  size_t keyBytes = 0, valueBytes = 0;
  size_t done = 0, bytesPerStep = 0;  // offset into keys ++ values

  // Spreads keyBytes + valueBytes over `steps` calls of step().
  NABLA_AVX2_FN void start(const void* k, size_t kBytes, const void* v, size_t vBytes, int64_t steps) {
    keys = static_cast<const char*>(k);
    values = static_cast<const char*>(v);
    keyBytes = kBytes;
    valueBytes = vBytes;
    done = 0;
    bytesPerStep = ((kBytes + vBytes) / size_t(steps) + 64) & ~size_t(63);
  }
  NABLA_AVX2_FN void step() {
    const size_t end = done + bytesPerStep;
    for (; done < end && done < keyBytes; done += 64) _mm_prefetch(keys + done, _MM_HINT_T1);
    for (; done < end && done < keyBytes + valueBytes; done += 64)
      _mm_prefetch(values + (done - keyBytes), _MM_HINT_T1);
  }
};

// ---- tiles ----------------------------------------------------------------------------------

// Q^T[d][i] = c * q[i][d] for the 64 queries of the row; 8x8 blocks are transposed in registers.
NABLA_AVX2_FN inline void loadQueryT(const void* q, DType t, int64_t D, float c, float* queryT) {
  const __m256 vc = _mm256_set1_ps(c);
  int64_t d0 = 0;
  for (; d0 + 8 <= D; d0 += 8) {
    for (int i0 = 0; i0 < kBlockSize; i0 += 8) {
      __m256 r[8];
      for (int a = 0; a < 8; ++a) r[a] = _mm256_mul_ps(load8(q, (i0 + a) * D + d0, t), vc);
      // 8x8 transpose: rows i0..i0+7 x columns d0..d0+7 -> rows d0.. x columns i0..
      __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
      __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
      __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
      __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
      __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
      __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
      __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
      __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
      float* dst = queryT + d0 * kBlockSize + i0;
      _mm256_storeu_ps(dst + 0 * kBlockSize, _mm256_permute2f128_ps(s0, s4, 0x20));
      _mm256_storeu_ps(dst + 1 * kBlockSize, _mm256_permute2f128_ps(s1, s5, 0x20));
      _mm256_storeu_ps(dst + 2 * kBlockSize, _mm256_permute2f128_ps(s2, s6, 0x20));
      _mm256_storeu_ps(dst + 3 * kBlockSize, _mm256_permute2f128_ps(s3, s7, 0x20));
      _mm256_storeu_ps(dst + 4 * kBlockSize, _mm256_permute2f128_ps(s0, s4, 0x31));
      _mm256_storeu_ps(dst + 5 * kBlockSize, _mm256_permute2f128_ps(s1, s5, 0x31));
      _mm256_storeu_ps(dst + 6 * kBlockSize, _mm256_permute2f128_ps(s2, s6, 0x31));
      _mm256_storeu_ps(dst + 7 * kBlockSize, _mm256_permute2f128_ps(s3, s7, 0x31));
    }
  }
  for (; d0 < D; ++d0)
    for (int i = 0; i < kBlockSize; ++i) queryT[d0 * kBlockSize + i] = c * loadElement(q, size_t(i * D + d0), t);
}

// S^T[j][i] = sum_d K[j][d] Q^T[d][i] for keys j in [j0, j0+R), queries i in [i0, i0+16), and
// blockMax[i] = max(blockMax[i], max_j S^T[j][i]).
// Per d: two Q^T vectors, R broadcast keys, 2R FMAs into 2R accumulators.
template <int R>
NABLA_AVX2_FN inline void scoreTile(const float* keys, int64_t ldk, const float* queryT, int64_t D, float* scores,
                                    float* blockMax, int j0, int i0) {
  __m256 acc0[R], acc1[R];
  NABLA_UNROLL
  for (int r = 0; r < R; ++r) {
    acc0[r] = _mm256_setzero_ps();
    acc1[r] = _mm256_setzero_ps();
  }
  const float* kr = keys + j0 * ldk;
  const float* qt = queryT + i0;
  for (int64_t d = 0; d < D; ++d) {
    const __m256 b0 = _mm256_load_ps(qt + d * kBlockSize);
    const __m256 b1 = _mm256_load_ps(qt + d * kBlockSize + 8);
    NABLA_UNROLL
    for (int r = 0; r < R; ++r) {
      const __m256 a = _mm256_broadcast_ss(kr + r * ldk + d);
      acc0[r] = _mm256_fmadd_ps(a, b0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(a, b1, acc1[r]);
    }
  }
  __m256 max0 = _mm256_load_ps(blockMax + i0), max1 = _mm256_load_ps(blockMax + i0 + 8);
  NABLA_UNROLL
  for (int r = 0; r < R; ++r) {
    _mm256_store_ps(scores + (j0 + r) * kBlockSize + i0, acc0[r]);
    _mm256_store_ps(scores + (j0 + r) * kBlockSize + i0 + 8, acc1[r]);
    max0 = _mm256_max_ps(max0, acc0[r]);
    max1 = _mm256_max_ps(max1, acc1[r]);
  }
  _mm256_store_ps(blockMax + i0, max0);
  _mm256_store_ps(blockMax + i0 + 8, max1);
}

// S^T = K Q^T for the first `keyRows` keys (rounded up to whole micro-tiles; an edge tile's rows
// past keyRows are zero keys, and rows no micro-tile reaches are left as they are: the caller sets
// both to -inf), and blockMax[i] = max_j S^T[j][i] over the rows computed.
NABLA_AVX2_FN inline void scores(const float* keys, int64_t ldk, const float* queryT, int64_t D, float* scoresT,
                                 float* blockMax, int keyRows, NextBlockPrefetch& prefetch) {
  for (int i = 0; i < kBlockSize; i += 8) _mm256_store_ps(blockMax + i, _mm256_set1_ps(-INFINITY));
  for (int i0 = 0; i0 < kBlockSize; i0 += 16) {
    int j0 = 0;
    for (; j0 + kTileRows <= kBlockSize && j0 < keyRows; j0 += kTileRows) {
      scoreTile<kTileRows>(keys, ldk, queryT, D, scoresT, blockMax, j0, i0);
      prefetch.step();
    }
    if (j0 < keyRows) scoreTile<kTailRows>(keys, ldk, queryT, D, scoresT, blockMax, j0, i0);
  }
}

// Online softmax down the columns of S^T: m_new = max(m, blockMax), alpha = 2^(m - m_new),
// P^T = 2^(S^T - m_new) in place, l = alpha l + sum_j P^T[j].
NABLA_AVX2_FN inline void softmaxStep(float* scoresT, const float* blockMax, float* rowMax, float* rowSum,
                                      float* alpha) {
  for (int i0 = 0; i0 < kBlockSize; i0 += 16) {
    const __m256 old0 = _mm256_load_ps(rowMax + i0), old1 = _mm256_load_ps(rowMax + i0 + 8);
    const __m256 mx0 = _mm256_max_ps(old0, _mm256_load_ps(blockMax + i0));
    const __m256 mx1 = _mm256_max_ps(old1, _mm256_load_ps(blockMax + i0 + 8));
    __m256 sum0 = _mm256_setzero_ps(), sum1 = _mm256_setzero_ps();
    for (int j = 0; j < kBlockSize; ++j) {
      float* s = scoresT + j * kBlockSize + i0;
      const __m256 p0 = exp2v(_mm256_sub_ps(_mm256_load_ps(s), mx0));
      const __m256 p1 = exp2v(_mm256_sub_ps(_mm256_load_ps(s + 8), mx1));
      _mm256_store_ps(s, p0);
      _mm256_store_ps(s + 8, p1);
      sum0 = _mm256_add_ps(sum0, p0);
      sum1 = _mm256_add_ps(sum1, p1);
    }
    // the first block has m = -inf: alpha = 2^-inf = 0 wipes the (zeroed) O and l
    const __m256 a0 = exp2v(_mm256_sub_ps(old0, mx0)), a1 = exp2v(_mm256_sub_ps(old1, mx1));
    _mm256_store_ps(alpha + i0, a0);
    _mm256_store_ps(alpha + i0 + 8, a1);
    _mm256_store_ps(rowMax + i0, mx0);
    _mm256_store_ps(rowMax + i0 + 8, mx1);
    _mm256_store_ps(rowSum + i0, _mm256_fmadd_ps(_mm256_load_ps(rowSum + i0), a0, sum0));
    _mm256_store_ps(rowSum + i0 + 8, _mm256_fmadd_ps(_mm256_load_ps(rowSum + i0 + 8), a1, sum1));
  }
}

// O[i][c] = alpha_i O[i][c] + sum_j P^T[j][i] V[j][c] for queries i in [i0, i0+R) and columns
// c in [c0, c0 + 8C). Per key j: C value vectors, R broadcast probabilities, C*R FMAs.
template <int R, int C>
NABLA_AVX2_FN inline void accumulateTile(const float* probsT, const float* values, int64_t ldv, const float* alpha,
                                         float* acc, int64_t ldo, int i0, int64_t c0, int keyRows) {
  __m256 o[R][C];
  NABLA_UNROLL
  for (int r = 0; r < R; ++r) {
    const __m256 a = _mm256_broadcast_ss(alpha + i0 + r);
    NABLA_UNROLL
    for (int c = 0; c < C; ++c) o[r][c] = _mm256_mul_ps(a, _mm256_load_ps(acc + (i0 + r) * ldo + c0 + 8 * c));
  }
  for (int j = 0; j < keyRows; ++j) {  // keys past keyRows have P = 0
    __m256 b[C];
    NABLA_UNROLL
    for (int c = 0; c < C; ++c) b[c] = _mm256_loadu_ps(values + j * ldv + c0 + 8 * c);
    NABLA_UNROLL
    for (int r = 0; r < R; ++r) {
      const __m256 p = _mm256_broadcast_ss(probsT + j * kBlockSize + i0 + r);
      NABLA_UNROLL
      for (int c = 0; c < C; ++c) o[r][c] = _mm256_fmadd_ps(p, b[c], o[r][c]);
    }
  }
  NABLA_UNROLL
  for (int r = 0; r < R; ++r) {
    NABLA_UNROLL
    for (int c = 0; c < C; ++c) _mm256_store_ps(acc + (i0 + r) * ldo + c0 + 8 * c, o[r][c]);
  }
}

template <int C>
NABLA_AVX2_FN inline void accumulateColumns(const float* probsT, const float* values, int64_t ldv, const float* alpha,
                                            float* acc, int64_t ldo, int64_t c0, int keyRows,
                                            NextBlockPrefetch& prefetch) {
  int i0 = 0;
  for (; i0 + kTileRows <= kBlockSize; i0 += kTileRows) {
    accumulateTile<kTileRows, C>(probsT, values, ldv, alpha, acc, ldo, i0, c0, keyRows);
    prefetch.step();
  }
  accumulateTile<kTailRows, C>(probsT, values, ldv, alpha, acc, ldo, i0, c0, keyRows);
}

// O = diag(alpha) O + P V over Dv8 columns (a multiple of 8; values has at least Dv8 readable
// columns) and the first keyRows keys.
NABLA_AVX2_FN inline void accumulate(const float* probsT, const float* values, int64_t ldv, const float* alpha,
                                     float* acc, int64_t dv8, int keyRows, NextBlockPrefetch& prefetch) {
  int64_t c0 = 0;
  for (; c0 + 16 <= dv8; c0 += 16) accumulateColumns<2>(probsT, values, ldv, alpha, acc, dv8, c0, keyRows, prefetch);
  if (c0 < dv8) accumulateColumns<1>(probsT, values, ldv, alpha, acc, dv8, c0, keyRows, prefetch);
}

// Scores of the missing keys j >= keyRows of an edge tile become -inf (2^-inf = 0 in the
// softmax), and blockMax is recomputed over the real keys only.
NABLA_AVX2_FN inline void excludeMissingKeys(int keyRows, float* scoresT, float* blockMax) {
  const __m256 minusInf = _mm256_set1_ps(-INFINITY);
  for (int i = 0; i < kBlockSize; i += 8) {
    __m256 mx = minusInf;
    for (int j = 0; j < keyRows; ++j) mx = _mm256_max_ps(mx, _mm256_load_ps(scoresT + j * kBlockSize + i));
    _mm256_store_ps(blockMax + i, mx);
    for (int j = keyRows; j < kBlockSize; ++j) _mm256_store_ps(scoresT + j * kBlockSize + i, minusInf);
  }
}

// ---- one query block --------------------------------------------------------------------------

NABLA_AVX2_FN inline void attentionRowAvx2(const AttentionLayout& L, int64_t row, const AttentionScratch& s) {
  const int64_t D = L.headDim, Dv = L.valueDim, dv8 = roundUp8(Dv);
  const DType t = L.dtype;
  const int64_t kept = L.keptBlocks(row);
  void* out = L.outTile(row);
  const int queries = L.queryRows(row);
  if (kept == 0) {
    std::memset(out, 0, size_t(queries * Dv) * L.elemSize);
    return;
  }
  // micro-tiles per key block that call prefetch.step(): full-height tiles of S^T and of O
  const int64_t prefetchSteps = (kBlockSize / kTileRows) * (kBlockSize / 16 + (dv8 + 15) / 16);

  const float c = L.scale * 1.4426950408889634f;
  if (queries == kBlockSize) {
    loadQueryT(L.queryTile(row), t, D, c, s.queryT);
  } else {
    // an edge tile: its real queries, then zero columns whose (finite) results are never written
    const void* q = L.queryTile(row);
    for (int64_t d = 0; d < D; ++d)
      for (int i = 0; i < kBlockSize; ++i)
        s.queryT[d * kBlockSize + i] = i < queries ? c * loadElement(q, size_t(i * D + d), t) : 0.f;
  }
  std::memset(s.acc, 0, sizeof(float) * size_t(kBlockSize * dv8));
  for (int i = 0; i < kBlockSize; ++i) {
    s.rowMax[i] = -INFINITY;
    s.rowSum[i] = 0.f;
  }

  for (int64_t n = 0; n < kept; ++n) {
    const int64_t kb = L.blockAt(row, n);
    NextBlockPrefetch prefetch;
    if (n + 1 < kept) {
      const int64_t next = L.blockAt(row, n + 1);
      const int64_t nextKeys = L.keyRows(next);
      prefetch.start(L.keyTile(row, next), size_t(nextKeys * D) * L.elemSize, L.valueTile(row, next),
                     size_t(nextKeys * Dv) * L.elemSize, prefetchSteps);
    }
    // fp32 K is used in place; fp32 V too when its rows are whole vectors (else padded copies).
    // An edge tile of keyRows < 64 keys is copied with zero rows after its keys (the micro-tiles
    // then read only finite values), its score micro-tiles stop after keyRows, the scores of the
    // missing keys become -inf (weight 0), and P.V stops after keyRows.
    const int keyRows = L.keyRows(kb);
    const bool full = keyRows == kBlockSize;
    const float* keys;
    if (full && t == DType::Float32) {
      keys = static_cast<const float*>(L.keyTile(row, kb));
    } else {
      convertToFloat(L.keyTile(row, kb), t, keyRows * D, s.keys);
      std::memset(s.keys + keyRows * D, 0, sizeof(float) * size_t((kBlockSize - keyRows) * D));
      keys = s.keys;
    }
    const float* values;
    int64_t ldv;
    if (full && t == DType::Float32 && Dv % 8 == 0) {
      values = static_cast<const float*>(L.valueTile(row, kb));
      ldv = Dv;
    } else {
      const void* src = L.valueTile(row, kb);
      for (int j = 0; j < keyRows; ++j)
        convertToFloat(static_cast<const char*>(src) + size_t(j * Dv) * L.elemSize, t, Dv, s.values + j * dv8);
      std::memset(s.values + keyRows * dv8, 0, sizeof(float) * size_t((kBlockSize - keyRows) * dv8));
      values = s.values;
      ldv = dv8;
    }

    scores(keys, D, s.queryT, D, s.scores, s.blockMax, keyRows, prefetch);
    if (!full) excludeMissingKeys(keyRows, s.scores, s.blockMax);
    softmaxStep(s.scores, s.blockMax, s.rowMax, s.rowSum, s.alpha);
    accumulate(s.scores, values, ldv, s.alpha, s.acc, dv8, keyRows, prefetch);
  }

  // out = O / l, rounded once to the output dtype; only the tile's real queries
  for (int i = 0; i < queries; ++i) {
    const float inv = 1.f / s.rowSum[i];
    const __m256 vinv = _mm256_set1_ps(inv);
    const float* o = s.acc + i * dv8;
    void* dst = static_cast<char*>(out) + size_t(i * Dv) * L.elemSize;
    int64_t c = 0;
    for (; c + 8 <= Dv; c += 8) store8(dst, c, t, _mm256_mul_ps(_mm256_load_ps(o + c), vinv));
    for (; c < Dv; ++c) storeElement(dst, size_t(c), t, o[c] * inv);
  }
}

}  // namespace avx2
}  // namespace cpu
}  // namespace nabla

#endif
