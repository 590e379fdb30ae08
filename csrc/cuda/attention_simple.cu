// The simple attention kernel: scalar fp32 math on shared-memory tiles, every dtype, every head dim
// (1..256) and valueDim != headDim. Meant to be obviously correct (flash-attention-minimal style),
// the reference the fast kernel is checked against on the GPU.
//
// CTA = 16 queries of one query block (4 CTAs per row) x 256 threads; keys in tiles of 16.
// Thread (x, t) owns score S[x][t]; 16 threads keep the running max m and sum l per query;
// all threads share the O[x][c] updates.
// Blocks have blockLength(b) <= 64 tokens (ragged token grids): a CTA whose queries lie past its
// block's length has nothing to do, query rows past it are zeros and never written, and keys past
// a key block's length are loaded as zeros and scored -inf (weight exactly 0).
#include "attention_params.cuh"

namespace nabla {
namespace cuda {
namespace {

constexpr int kQueriesPerCta = 16;
constexpr int kKeysPerTile = 16;
constexpr int kSimpleThreads = kQueriesPerCta * kKeysPerTile;  // one thread per score
constexpr int kCtasPerRow = kBlockSize / kQueriesPerCta;

// Dynamic shared memory, in floats.
__host__ __device__ inline int64_t simpleSharedFloats(int headDim, int valueDim) {
  return int64_t(kQueriesPerCta) * headDim        // Q tile
         + int64_t(kKeysPerTile) * (headDim + 1)  // K tile (rows padded against bank conflicts)
         + int64_t(kKeysPerTile) * valueDim       // V tile
         + int64_t(kQueriesPerCta) * valueDim     // O accumulator
         + kQueriesPerCta * kKeysPerTile          // S, then P
         + 3 * kQueriesPerCta;                    // m, l, alpha
}

template <typename T>
__global__ void __launch_bounds__(kSimpleThreads) simpleAttentionKernel(const AttentionKernelParams p) {
  extern __shared__ float shared[];
  const int D = p.headDim, Dv = p.valueDim, kStride = D + 1, tid = threadIdx.x;
  float* sQ = shared;                              // Q[x][d]
  float* sK = sQ + kQueriesPerCta * D;             // K[t][d] at t*kStride + d
  float* sV = sK + kKeysPerTile * kStride;         // V[t][c]
  float* sO = sV + kKeysPerTile * Dv;              // O[x][c] (unnormalised)
  float* sS = sO + kQueriesPerCta * Dv;            // S[x][t] -> P[x][t]
  float* sM = sS + kQueriesPerCta * kKeysPerTile;  // m[x]: running max of S
  float* sL = sM + kQueriesPerCta;                 // l[x]: running sum of exp(S - m)
  float* sAlpha = sL + kQueriesPerCta;             // alpha[x] = exp(m_old - m_new)

  const int64_t row = blockIdx.x / kCtasPerRow;  // (b*H + h) * nq + i
  const int64_t bh = row / p.qBlocks, i = row % p.qBlocks;
  const int part = int(blockIdx.x % kCtasPerRow) * kQueriesPerCta;  // first query of this CTA in the block
  const int blockQueries = p.layout.blockLength(i) - part;
  if (blockQueries <= 0) return;  // the block ends before this CTA's queries (the whole CTA leaves)
  const int queries = blockQueries < kQueriesPerCta ? blockQueries : kQueriesPerCta;  // real query rows
  const int64_t firstQuery = bh * p.seqQ + p.layout.blockStart(i) + part;
  const T* q = static_cast<const T*>(p.q) + firstQuery * D;
  const T* k = static_cast<const T*>(p.k) + bh * p.seqKv * D;
  const T* v = static_cast<const T*>(p.v) + bh * p.seqKv * Dv;
  T* out = static_cast<T*>(p.out) + firstQuery * Dv;
  const int count = p.kvCounts != nullptr ? p.kvCounts[row] : p.kvBlocks;
  const int32_t* kept = p.kvCounts != nullptr ? p.kvIndices + row * p.kvBlocks : nullptr;

  // Q[x][d] = q[x][d] (0 for rows past the block); O = 0; m = -inf; l = 0
  for (int idx = tid; idx < kQueriesPerCta * D; idx += kSimpleThreads)
    sQ[idx] = idx < queries * D ? toFloat(q[idx]) : 0.f;
  for (int idx = tid; idx < kQueriesPerCta * Dv; idx += kSimpleThreads) sO[idx] = 0.f;
  if (tid < kQueriesPerCta) {
    sM[tid] = -INFINITY;
    sL[tid] = 0.f;
  }

  const int x = tid / kKeysPerTile, t = tid % kKeysPerTile;  // this thread's score S[x][t]
  for (int n = 0; n < count; ++n) {
    const int64_t block = kept != nullptr ? kept[n] : n;
    const int blockKeys = p.layout.blockLength(block);
    const int64_t blockStart = p.layout.blockStart(block);
    for (int tile = 0; tile < blockKeys; tile += kKeysPerTile) {
      const int64_t firstKey = blockStart + tile;
      const int keys = blockKeys - tile < kKeysPerTile ? blockKeys - tile : kKeysPerTile;  // real keys, >= 1
      __syncthreads();  // the previous tile has been consumed

      // K[t][d] = k[firstKey + t][d], V[t][c] = v[firstKey + t][c] for the real keys, zeros past the
      // block (separate loops: a predicated load in one loop makes ptxas spill on sm_80)
      for (int idx = tid; idx < keys * D; idx += kSimpleThreads)
        sK[(idx / D) * kStride + idx % D] = toFloat(k[firstKey * D + idx]);
      for (int idx = keys * D + tid; idx < kKeysPerTile * D; idx += kSimpleThreads)
        sK[(idx / D) * kStride + idx % D] = 0.f;
      for (int idx = tid; idx < keys * Dv; idx += kSimpleThreads) sV[idx] = toFloat(v[firstKey * Dv + idx]);
      for (int idx = keys * Dv + tid; idx < kKeysPerTile * Dv; idx += kSimpleThreads) sV[idx] = 0.f;
      __syncthreads();

      // S[x][t] = scale * sum_d Q[x][d] K[t][d]; -inf for keys past the block (P = 0)
      float dot = 0.f;
      for (int d = 0; d < D; ++d) dot += sQ[x * D + d] * sK[t * kStride + d];
      sS[tid] = t < keys ? p.scale * dot : -INFINITY;
      __syncthreads();

      // m' = max(m, max_t S[x][t]); P[x][t] = exp(S[x][t] - m'); alpha = exp(m - m'); l = alpha l + sum_t P[x][t]
      if (tid < kQueriesPerCta) {
        float* s = sS + tid * kKeysPerTile;
        float mNew = sM[tid];
        for (int u = 0; u < kKeysPerTile; ++u) mNew = fmaxf(mNew, s[u]);
        float sum = 0.f;
        for (int u = 0; u < kKeysPerTile; ++u) {
          s[u] = expf(s[u] - mNew);
          sum += s[u];
        }
        const float alpha = expf(sM[tid] - mNew);  // 0 on the first tile (m = -inf)
        sAlpha[tid] = alpha;
        sL[tid] = alpha * sL[tid] + sum;
        sM[tid] = mNew;
      }
      __syncthreads();

      // O[x][c] = alpha[x] O[x][c] + sum_t P[x][t] V[t][c]
      for (int idx = tid; idx < kQueriesPerCta * Dv; idx += kSimpleThreads) {
        const int xo = idx / Dv, c = idx % Dv;
        float acc = sAlpha[xo] * sO[idx];
        for (int u = 0; u < kKeysPerTile; ++u) acc += sS[xo * kKeysPerTile + u] * sV[u * Dv + c];
        sO[idx] = acc;
      }
    }
  }
  __syncthreads();

  // out[x][c] = O[x][c] / l[x] for the real query rows; a row without kept blocks has l = 0 and writes zeros
  for (int idx = tid; idx < queries * Dv; idx += kSimpleThreads) {
    const float l = sL[idx / Dv];
    out[idx] = fromFloat<T>(l > 0.f ? sO[idx] / l : 0.f);
  }
}

}  // namespace

Status launchSimpleAttention(const AttentionKernelParams& p, DType dtype, cudaStream_t stream) {
  if (p.headDim < 1 || p.headDim > kMaxHeadDim || p.valueDim < 1 || p.valueDim > kMaxHeadDim)
    return invalidValue("the simple attention kernel supports head and value dims 1.." + std::to_string(kMaxHeadDim) +
                        ", got " + std::to_string(p.headDim) + " and " + std::to_string(p.valueDim));
  const int64_t ctas = p.rows * kCtasPerRow;
  if (ctas == 0) return Status{};
  if (ctas > int64_t(0x7fffffff)) return invalidValue("too many query blocks for one grid: " + std::to_string(p.rows));
  const size_t sharedBytes = size_t(simpleSharedFloats(p.headDim, p.valueDim)) * sizeof(float);
  return withElementType(dtype, [&](auto element) -> Status {
    using T = decltype(element);
    const Status allowed = allowSharedMemory(reinterpret_cast<const void*>(&simpleAttentionKernel<T>), sharedBytes,
                                             "simpleAttentionKernel");
    if (!allowed.ok()) return allowed;
    simpleAttentionKernel<T><<<unsigned(ctas), kSimpleThreads, sharedBytes, stream>>>(p);
    return launched("simpleAttentionKernel");
  });
}

}  // namespace cuda
}  // namespace nabla
