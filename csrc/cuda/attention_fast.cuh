// The fast attention kernel (FlashAttention-2 design on mma.sync), templated on its tile traits.
// Included only by the per-instance files in kernels/, each of which instantiates one
// launchFastAttention<Elem, kHeadDim>.
//
// One CTA per row = one 64-query block of one head; 4 warps, warp w owns queries 16w..16w+15.
// The CTA walks the row's kept key blocks (or all of them when dense), one 64-key K/V tile per
// step, double-buffered with cp.async: tile n+1 is in flight while tile n is computed.
// Per step and warp:  S = Q K^T (16 x 64, fp32 in registers)      -- ldmatrix + mma.m16n8k16
//                     online softmax on S in registers (exp2, scale*log2e folded in)
//                     O += P V (P rounded to Elem in registers)    -- ldmatrix.trans + mma
// Shared memory: Q, K[2], V[2], 64 x kHeadDim Elem each (40 KiB at d64, 80 KiB at d128), with
// 16-byte chunks XOR-swizzled by row so ldmatrix is bank-conflict free. O is normalised at the
// end, staged through the warp's rows of the Q tile and written with 16-byte stores.
//
// Ragged layouts (token grids whose sides are not multiples of 8; blocks of blockLength <= 64 tokens)
// run the kRagged instance: tile rows past the block's length are zero-filled by cp.async (never
// read from global memory), scores of those keys are set to -inf before the row max, and only the
// block's real query rows are written. Every other layout (blocks of exactly 64 tokens at 64b) runs
// the kRagged = false instance, which compiles to the unpredicated kernel.
#pragma once

#include "attention_params.cuh"
#include "ptx.cuh"
#include "tile_swizzle.h"

namespace nabla {
namespace cuda {

template <typename Elem_, int kHeadDim_>
struct FastAttentionTraits {
  using Elem = Elem_;
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kWarps = 4;  // 16 query rows each
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kTileElems = kBlockSize * kHeadDim;                 // one 64-row tile of Q, K or V
  static constexpr int kChunksPerRow = kHeadDim / 8;                       // 16-byte chunks per tile row
  static constexpr int kKeyTiles = kBlockSize / 8;                         // 8-key column tiles of S
  static constexpr int kDimTiles = kHeadDim / 8;                           // 8-wide column tiles of O
  static constexpr int kSharedBytes = 5 * kTileElems * int(sizeof(Elem));  // Q, K[2], V[2]
  static_assert(kHeadDim == 64 || kHeadDim == 128, "the fast kernel is instantiated for head dims 64 and 128");
  static_assert(kBlockSize == 16 * kWarps, "one warp per 16 queries of the 64-query block");
};

// Offset of element (row, col) in a [64][kHeadDim] tile (tile_swizzle.h: 16-byte chunks permuted by
// chunk ^ (row % 8), so the 8 rows an ldmatrix reads at one column land in 8 different bank groups).
template <int kHeadDim>
__device__ __forceinline__ int swizzled(int row, int col) {
  return swizzledOffset(kHeadDim, row, col);
}

// Starts the copy of 64 contiguous rows of kHeadDim elements into a swizzled tile; with kRagged only
// the first `rows` are read and the others become zeros.
template <class Traits, bool kRagged>
__device__ __forceinline__ void loadTileAsync(typename Traits::Elem* tile, const typename Traits::Elem* src, int rows) {
  constexpr int kChunks = kBlockSize * Traits::kChunksPerRow;
  static_assert(kChunks % Traits::kThreads == 0, "every thread copies the same number of chunks");
#pragma unroll
  for (int it = 0; it < kChunks / Traits::kThreads; ++it) {
    const int chunk = threadIdx.x + it * Traits::kThreads;
    const int row = chunk / Traits::kChunksPerRow, col = (chunk % Traits::kChunksPerRow) * 8;
    if constexpr (kRagged) {
      const bool inside = row < rows;  // rows past the block: zeros, the copy reads the block's first row
      ptx::copyAsync16OrZero(tile + swizzled<Traits::kHeadDim>(row, col),
                             src + (inside ? row * Traits::kHeadDim + col : 0), inside);
    } else {
      ptx::copyAsync16(tile + swizzled<Traits::kHeadDim>(row, col), src + row * Traits::kHeadDim + col);
    }
  }
}

template <class Traits, bool kRagged>
__global__ void __launch_bounds__(Traits::kThreads) fastAttentionKernel(const AttentionKernelParams p) {
  using Elem = typename Traits::Elem;
  constexpr int D = Traits::kHeadDim;
  constexpr int kTile = Traits::kTileElems;
  extern __shared__ __align__(16) unsigned char sharedBytes[];
  Elem* sQ = reinterpret_cast<Elem*>(sharedBytes);  // Q[64][D]
  Elem* sK = sQ + kTile;                            // K[2][64][D]
  Elem* sV = sK + 2 * kTile;                        // V[2][64][D]

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int quadRow = lane / 4, quadCol = lane % 4;  // g, c of the fragment layouts (ptx.cuh)
  const int64_t row = blockIdx.x;                    // (b*H + h) * nq + i
  const int64_t bh = row / p.qBlocks, i = row % p.qBlocks;
  // the block's tokens: [64i, 64i + 64) unless ragged
  const int64_t firstQuery = bh * p.seqQ + (kRagged ? p.layout.blockStart(i) : i * kBlockSize);
  const int queryRows = kRagged ? p.layout.blockLength(i) : kBlockSize;
  const Elem* q = static_cast<const Elem*>(p.q) + firstQuery * D;
  const Elem* k = static_cast<const Elem*>(p.k) + bh * p.seqKv * D;
  const Elem* v = static_cast<const Elem*>(p.v) + bh * p.seqKv * D;
  Elem* out = static_cast<Elem*>(p.out) + firstQuery * D;
  const int count = p.kvCounts != nullptr ? p.kvCounts[row] : p.kvBlocks;
  const int32_t* kept = p.kvCounts != nullptr ? p.kvIndices + row * p.kvBlocks : nullptr;

  if (count == 0) {  // no kept key block: the row's output is zero
    for (int chunk = threadIdx.x; chunk < queryRows * Traits::kChunksPerRow; chunk += Traits::kThreads)
      reinterpret_cast<uint4*>(out)[chunk] = make_uint4(0u, 0u, 0u, 0u);
    return;
  }
  // the n-th visited key block, the element offset of its first key and its number of keys
  auto keyBlock = [&](int n) -> int64_t { return kept != nullptr ? kept[n] : n; };
  auto blockOffset = [&](int n) -> int64_t {
    return (kRagged ? p.layout.blockStart(keyBlock(n)) : keyBlock(n) * kBlockSize) * D;
  };
  auto blockKeys = [&](int n) -> int { return kRagged ? p.layout.blockLength(keyBlock(n)) : kBlockSize; };

  loadTileAsync<Traits, kRagged>(sQ, q, queryRows);
  loadTileAsync<Traits, kRagged>(sK, k + blockOffset(0), blockKeys(0));
  loadTileAsync<Traits, kRagged>(sV, v + blockOffset(0), blockKeys(0));
  ptx::commitAsyncCopies();

  float o[Traits::kDimTiles][4];  // O[quadRow (+8)][8t + 2 quadCol (+1)] of this warp's 16 rows
#pragma unroll
  for (int t = 0; t < Traits::kDimTiles; ++t) o[t][0] = o[t][1] = o[t][2] = o[t][3] = 0.f;
  float rowMax[2] = {-INFINITY, -INFINITY};  // m of rows quadRow and quadRow + 8, in log2 units
  float rowSum[2] = {0.f, 0.f};              // this thread's share of l (quad-reduced at the end)

  for (int n = 0; n < count; ++n) {
    const int buffer = n & 1;
    ptx::waitAsyncCopies();
    __syncthreads();  // tile n is visible to all warps, and all are done with buffer ^ 1
    if (n + 1 < count) {
      const int nextKeys = blockKeys(n + 1);
      loadTileAsync<Traits, kRagged>(sK + (buffer ^ 1) * kTile, k + blockOffset(n + 1), nextKeys);
      loadTileAsync<Traits, kRagged>(sV + (buffer ^ 1) * kTile, v + blockOffset(n + 1), nextKeys);
      ptx::commitAsyncCopies();
    }
    const Elem* tileK = sK + buffer * kTile;
    const Elem* tileV = sV + buffer * kTile;

    // S = Q K^T: A = Q[16w.., 16kk..] (row-major), B[d][key] = K[key][d] (K rows are B columns)
    float s[Traits::kKeyTiles][4];
#pragma unroll
    for (int t = 0; t < Traits::kKeyTiles; ++t) s[t][0] = s[t][1] = s[t][2] = s[t][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t a[4];  // matrices: rows 0-7 / 8-15 x cols 0-7, then x cols 8-15
      ptx::loadMatrixX4(a, sQ + swizzled<D>(warp * 16 + lane % 16, kk * 16 + (lane / 16) * 8));
#pragma unroll
      for (int pair = 0; pair < Traits::kKeyTiles / 2; ++pair) {
        uint32_t b[4];  // matrices: keys 0-7 x d 0-7 (b0), keys 0-7 x d 8-15 (b1), then keys 8-15
        ptx::loadMatrixX4(
            b, tileK + swizzled<D>(pair * 16 + (lane & 7) + (lane >> 4) * 8, kk * 16 + ((lane >> 3) & 1) * 8));
        ptx::mma16816<Elem>(s[2 * pair], a, b[0], b[1]);
        ptx::mma16816<Elem>(s[2 * pair + 1], a, b[2], b[3]);
      }
    }

    if constexpr (kRagged) {
      // keys past the block's length (zero rows of K) score -inf: P = 0, and key 0 keeps m finite
      const int keys = blockKeys(n);
      if (keys < kBlockSize) {
#pragma unroll
        for (int t = 0; t < Traits::kKeyTiles; ++t) {
          const int key = t * 8 + 2 * quadCol;  // c0, c2: key; c1, c3: key + 1
          if (key >= keys) s[t][0] = s[t][2] = -INFINITY;
          if (key + 1 >= keys) s[t][1] = s[t][3] = -INFINITY;
        }
      }
    }

    // x = S scale log2(e); m' = max(m, max_key x); alpha = 2^(m - m'); P = 2^(x - m');
    // l = alpha l + sum_key P; O = alpha O.  half 0: row quadRow (c0, c1), half 1: row quadRow + 8 (c2, c3)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float mNew = rowMax[half];
#pragma unroll
      for (int t = 0; t < Traits::kKeyTiles; ++t) {
        s[t][2 * half] *= p.scaleLog2;
        s[t][2 * half + 1] *= p.scaleLog2;
        mNew = fmaxf(mNew, fmaxf(s[t][2 * half], s[t][2 * half + 1]));
      }
      mNew = fmaxf(mNew, __shfl_xor_sync(0xffffffffu, mNew, 1));  // the 4 lanes of a quad share a row
      mNew = fmaxf(mNew, __shfl_xor_sync(0xffffffffu, mNew, 2));
      const float alpha = exp2f(rowMax[half] - mNew);  // 0 on the first tile (m = -inf)
      rowMax[half] = mNew;
      float sum = 0.f;
#pragma unroll
      for (int t = 0; t < Traits::kKeyTiles; ++t) {
        s[t][2 * half] = exp2f(s[t][2 * half] - mNew);
        s[t][2 * half + 1] = exp2f(s[t][2 * half + 1] - mNew);
        sum += s[t][2 * half] + s[t][2 * half + 1];
      }
      rowSum[half] = alpha * rowSum[half] + sum;
#pragma unroll
      for (int t = 0; t < Traits::kDimTiles; ++t) {
        o[t][2 * half] *= alpha;
        o[t][2 * half + 1] *= alpha;
      }
    }

    // O += P V: A = P[.., 16kk..] straight from the S accumulators (two 8-key tiles = one
    // 16-key A fragment), B[key][d] = V[key][d] read transposed
#pragma unroll
    for (int kk = 0; kk < kBlockSize / 16; ++kk) {
      uint32_t a[4];
      a[0] = ptx::packPair<Elem>(s[2 * kk][0], s[2 * kk][1]);
      a[1] = ptx::packPair<Elem>(s[2 * kk][2], s[2 * kk][3]);
      a[2] = ptx::packPair<Elem>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      a[3] = ptx::packPair<Elem>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
      for (int pair = 0; pair < Traits::kDimTiles / 2; ++pair) {
        uint32_t b[4];  // matrices: keys 0-7 x d 0-7 (b0), keys 8-15 x d 0-7 (b1), then d 8-15
        ptx::loadMatrixX4Transposed(
            b, tileV + swizzled<D>(kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, pair * 16 + (lane >> 4) * 8));
        ptx::mma16816<Elem>(o[2 * pair], a, b[0], b[1]);
        ptx::mma16816<Elem>(o[2 * pair + 1], a, b[2], b[3]);
      }
    }
  }

  // out = O / l (l summed over the quad); staged in this warp's own rows of the Q tile, which no
  // other warp reads, then copied out as 16-byte chunks of whole rows.
  float inverse[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float l = rowSum[half];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    inverse[half] = l > 0.f ? 1.f / l : 0.f;
  }
  const int stageRow = warp * 16 + quadRow;
  // other lanes of this warp read these Q rows (ldmatrix) in the last tile: order those reads before
  // the staging writes (compute-sanitizer racecheck reports the hazard without it)
  __syncwarp();
#pragma unroll
  for (int t = 0; t < Traits::kDimTiles; ++t) {
    const int col = t * 8 + 2 * quadCol;
    *reinterpret_cast<uint32_t*>(sQ + swizzled<D>(stageRow, col)) =
        ptx::packPair<Elem>(o[t][0] * inverse[0], o[t][1] * inverse[0]);
    *reinterpret_cast<uint32_t*>(sQ + swizzled<D>(stageRow + 8, col)) =
        ptx::packPair<Elem>(o[t][2] * inverse[1], o[t][3] * inverse[1]);
  }
  __syncwarp();
#pragma unroll
  for (int it = 0; it < 16 * Traits::kChunksPerRow / 32; ++it) {
    const int chunk = lane + it * 32;
    const int r = warp * 16 + chunk / Traits::kChunksPerRow, col = (chunk % Traits::kChunksPerRow) * 8;
    if (!kRagged || r < queryRows)  // only the block's real query rows exist
      *reinterpret_cast<uint4*>(out + int64_t(r) * D + col) = *reinterpret_cast<const uint4*>(sQ + swizzled<D>(r, col));
  }
}

template <typename Elem, int kHeadDim>
Status launchFastAttention(const AttentionKernelParams& p, cudaStream_t stream) {
  using Traits = FastAttentionTraits<Elem, kHeadDim>;
  if (p.rows == 0) return Status{};
  if (p.rows > int64_t(0x7fffffff))
    return invalidValue("too many query blocks for one grid: " + std::to_string(p.rows));
  // the ragged instance only where a block can be shorter than 64 tokens
  const bool ragged = p.layout.ragged();
  const void* kernel = ragged ? reinterpret_cast<const void*>(&fastAttentionKernel<Traits, true>)
                              : reinterpret_cast<const void*>(&fastAttentionKernel<Traits, false>);
  const Status allowed = allowSharedMemory(kernel, Traits::kSharedBytes, "fastAttentionKernel");
  if (!allowed.ok()) return allowed;
  if (ragged)
    fastAttentionKernel<Traits, true><<<unsigned(p.rows), Traits::kThreads, Traits::kSharedBytes, stream>>>(p);
  else fastAttentionKernel<Traits, false><<<unsigned(p.rows), Traits::kThreads, Traits::kSharedBytes, stream>>>(p);
  return launched("fastAttentionKernel");
}

}  // namespace cuda
}  // namespace nabla
