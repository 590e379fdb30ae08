// The fast2 attention kernel: mma.sync flash attention with a 2x2 warp grid, so that every K and V
// fragment read from shared memory feeds 32 query rows (the fast kernel's 4 x 16-row warps feed 16).
// Included only by the per-instance files in kernels/, each of which instantiates one
// launchFast2Attention<Elem, kHeadDim>. Opt-in (kernel 'fast2') until a GPU run has timed it.
//
// One CTA per row = one 64-query block of one head; 4 warps; warp w = 2 rowHalf + keyHalf owns
// query rows 32 rowHalf..+31 and keys 32 keyHalf..+31 of every 64-key tile (attention_fast2_layout.h
// has the fragment glossary). Each warp runs its own online softmax over its half of the keys
// (its own max m, sum l and unnormalised O for its 32 rows); at the end the two warps of a row half
// merge: m = max(m0, m1), w_i = 2^(m_i - m), out = (w0 O0 + w1 O1) / (w0 l0 + w1 l1).
// Per tile and warp:  S = Q K^T (32 x 32, fp32)       -- ldmatrix of Q and K, mma.m16n8k16
//                     P = 2^(S scale log2e - m)         -- one FFMA + ex2.approx.ftz per score
//                     O = alpha O (skipped when no row max of the warp moved) ; O += P V
//
// Shared-memory traffic per 64x64 tile at D128 (*estimate*; the fast kernel's bottleneck, see
// GPU-PLAN section 2), at the same 2.1 MFLOP and 128 mma per warp:
//   fast:  4 warps x (K 16 KB + V 16 KB + Q 4 KB) ldmatrix = 144 KB + 32 KB cp.async = 176 KB
//   fast2: 4 warps x (K  8 KB + V  8 KB + Q 8 KB) ldmatrix =  96 KB + 32 KB cp.async = 128 KB (-27%)
// At 128 B/clk/SM that moves the shared-memory cap from ~345-390 to ~475-535 TFLOP/s (H200), above
// FlashAttention-2's 370. Once per row, the merge writes and reads 36 KB (O halves + statistics)
// and the output staging 16 KB: 104 KB, 0.5% of a 720p row of 164 kept tiles (thr 0.7), 5% of a
// 16-tile row. Q fragments are re-read each tile, not kept in registers: with O (128 registers
// at D128) and S (32) live, Q's 64 more spill (ptxas sm_90a: 255 registers and 144-192 bytes
// spilled); at D64 they fit only above 168 registers (175 unbounded; bounded to 168, 48 bytes
// spilled), i.e. at 2 CTAs per SM instead of 3.
// ldmatrix addresses are one XOR + constant step from one offset per lane and operand
// (fast2::steppedOffset): one register per address made D64 take 198 registers.
//
// Shared memory (dynamic; no static): kStages stages of (K, V) 64 x kHeadDim tiles plus the Q tile.
// 2 stages: 80 KiB at D128, 40 KiB at D64; 3 stages: 112 / 56 KiB. The launcher takes 3 stages
// where they keep the CTAs per SM of 2 (H100/H200/B200, 228 KiB per SM: 2 CTAs at D128, 3 at D64),
// else 2 (A100 164 KiB; sm_86/89/120 100 KiB). Registers aimed at: <= 255 at D128 (2 CTAs = 8
// warps per SM, as the fast kernel; shared memory allows 2 as well), <= 168 at D64 (3 CTAs = 12
// warps, as the fast kernel), by __launch_bounds__. ptxas (nvcc 13.0, -O3), registers of each
// instance, bf16 and fp16 alike, 0 bytes spilled and 0 bytes stack in every one:
//   arch          D64: 2 stages  ragged  3 stages   D128: 2 stages  ragged  3 stages
//   sm_80/86/89         165       164      165             254       246      252
//   sm_90a              168       168      168             254       249      254
//   sm_100              164       167      165             242       252      242
//   sm_120              163       162      164             246       254      246
// The ragged instance has 2 stages only (with 3, sm_100's ptxas spilled 4 bytes of it). Reading the
// next tile's key block one iteration ahead (a register instead of a global load after each
// barrier) spilled 8 bytes at D128 on sm_80/86/89 and in the ragged D128 instance on sm_100.
// After the last tile the stages hold the merge buffers and the output staging tile.
//
// Ragged layouts run the kRagged instance, as the fast kernel does: tile rows past a block's length
// are zero-filled by cp.async, scores of those keys are -inf (a warp whose 32 keys are all past
// the length keeps m = -inf and P = 0; exponentBase keeps that from becoming NaN), and only the
// block's real query rows are written.
#pragma once

#include <atomic>

#include "attention_fast.cuh"  // swizzled, loadTileAsync (the fast kernel's tile copy, same tiles)
#include "attention_fast2_layout.h"

namespace nabla {
namespace cuda {

template <typename Elem_, int kHeadDim_, int kStages_>
struct Fast2AttentionTraits {
  using Elem = Elem_;
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kStages = kStages_;
  static constexpr int kWarps = fast2::kWarps;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kTileElems = kBlockSize * kHeadDim;  // one 64-row tile of Q, K or V
  static constexpr int kChunksPerRow = kHeadDim / 8;        // 16-byte chunks per tile row
  static constexpr int kDimSteps = kHeadDim / 16;           // k16 steps of Q K^T
  static constexpr int kDimTiles = kHeadDim / 8;            // n8 column tiles of O
  static constexpr int kSharedBytes = (2 * kStages + 1) * kTileElems * int(sizeof(Elem));  // K, V stages, Q
  // the register budget: 65536 / (128 threads x CTAs) = 255 at D128 (2 CTAs), 168 at D64 (3 CTAs)
  static constexpr int kMinCtasPerSm = kHeadDim == 64 ? 3 : 2;
  // epilogue: each warp's O for the partner's half of the columns (fp32, lane order), then each
  // lane's 4 row maxima and 4 row sums, then the output tile (Elem, swizzled)
  static constexpr int kExchangeBytes = kWarps * fast2::kRowTiles * (kDimTiles / 2) * 32 * 16;
  static constexpr int kStatsBytes = kWarps * 32 * 2 * 16;
  static constexpr int kStagingBytes = kTileElems * int(sizeof(Elem));
  static_assert(kHeadDim == 64 || kHeadDim == 128, "the fast2 kernel is instantiated for head dims 64 and 128");
  static_assert(kStages == 2 || kStages == 3, "two or three K/V stages");
  static_assert(kExchangeBytes + kStatsBytes + kStagingBytes <= kSharedBytes, "the epilogue fits in the stages");
  // the fast kernel's tile copy is written for its own 128-thread CTA
  static_assert(kThreads == FastAttentionTraits<Elem, kHeadDim>::kThreads, "same CTA size as the tile copy");
};

namespace fast2 {

// 2^x with flush-to-zero: one MUFU.EX2, no range fix-up (exp2f compiles to the non-ftz form plus
// a denormal scaling). 2^-inf = +0.
__device__ __forceinline__ float exp2Fast(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

struct Exp2Fast {
  __device__ __forceinline__ float operator()(float x) const { return exp2Fast(x); }
};

// x, which the compiler must treat as unknown: values derived from it are not hoisted out of loops.
__device__ __forceinline__ int opaque(int x) {
  asm volatile("" : "+r"(x));
  return x;
}

// Waits until at most `pending` of this thread's committed copy groups are still in flight.
template <int pending>
__device__ __forceinline__ void waitAsyncCopiesBut() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(pending) : "memory");
}

}  // namespace fast2

template <class Traits, bool kRagged>
__global__ void __launch_bounds__(Traits::kThreads, Traits::kMinCtasPerSm)
    fast2AttentionKernel(const AttentionKernelParams p) {
  using Elem = typename Traits::Elem;
  using FastTraits = FastAttentionTraits<Elem, Traits::kHeadDim>;
  constexpr int D = Traits::kHeadDim;
  constexpr int kTile = Traits::kTileElems;
  constexpr int kStages = Traits::kStages;
  constexpr int kRowTiles = fast2::kRowTiles, kKeyTiles = fast2::kKeyTiles;
  extern __shared__ __align__(16) unsigned char sharedBytes[];
  Elem* stages = reinterpret_cast<Elem*>(sharedBytes);  // stage s: K at 2s, V at 2s + 1 (tiles)
  auto tileK = [&](int stage) { return stages + (2 * stage) * kTile; };
  auto tileV = [&](int stage) { return stages + (2 * stage + 1) * kTile; };
  Elem* sQ = stages + 2 * kStages * kTile;

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  // one swizzled offset per lane and operand; each ldmatrix address is an XOR + constant step from it
  auto spotOffset = [](fast2::TileSpot spot) { return swizzledOffset(D, spot.row, spot.col); };
  const int queryLane = spotOffset(fast2::queryFragmentSpot(warp, lane, 0, 0));
  const int keyLane = spotOffset(fast2::keyFragmentSpot(warp, lane, 0, 0));
  const int valueLane = spotOffset(fast2::valueFragmentSpot(warp, lane, 0, 0));
  const int row = blockIdx.x;  // (b*H + h) * nq + i; the launcher keeps rows < 2^31
  // where block b's tokens start and how many there are (32-bit divisions, fast2::blockSpan)
  auto span = [&](int b) -> fast2::BlockSpan {
    return kRagged ? fast2::blockSpan(p.layout, b) : fast2::BlockSpan{int64_t(b) * kBlockSize, kBlockSize};
  };
  // the row's first query element and number of queries: a function of the CTA index that the
  // epilogue evaluates again instead of holding it in registers through the loop
  auto queryBlock = [&](int r) -> int64_t { return (int64_t(r / p.qBlocks) * p.seqQ + span(r % p.qBlocks).start) * D; };
  const int queryRows = span(row % p.qBlocks).length;
  const Elem* q = static_cast<const Elem*>(p.q) + queryBlock(row);
  const int64_t headKeys = int64_t(row / p.qBlocks) * p.seqKv * D;  // this head's first key element
  Elem* out = static_cast<Elem*>(p.out) + queryBlock(row);
  const int count = p.kvCounts != nullptr ? p.kvCounts[row] : p.kvBlocks;
  const int32_t* kept = p.kvCounts != nullptr ? p.kvIndices + int64_t(row) * p.kvBlocks : nullptr;

  if (count == 0) {  // no kept key block: the row's output is zero
    for (int chunk = threadIdx.x; chunk < queryRows * Traits::kChunksPerRow; chunk += Traits::kThreads)
      reinterpret_cast<uint4*>(out)[chunk] = make_uint4(0u, 0u, 0u, 0u);
    return;
  }
  auto keyBlock = [&](int n) -> int { return kept != nullptr ? kept[n] : n; };
  auto blockKeys = [&](int n) -> int { return span(keyBlock(n)).length; };
  auto loadKeyValueTile = [&](int n) {
    const fast2::BlockSpan keySpan = span(keyBlock(n));
    const int stage = fast2::tileStage(n, kStages), keys = keySpan.length;
    const int64_t offset = headKeys + keySpan.start * D;
    loadTileAsync<FastTraits, kRagged>(tileK(stage), static_cast<const Elem*>(p.k) + offset, keys);
    loadTileAsync<FastTraits, kRagged>(tileV(stage), static_cast<const Elem*>(p.v) + offset, keys);
  };

  // Prologue (fast2::prologueTiles): copy group 0 = Q + tile 0, then groups 1 .. kStages - 2 = the
  // next tiles (or empty).
  loadTileAsync<FastTraits, kRagged>(sQ, q, queryRows);
  loadKeyValueTile(0);
  ptx::commitAsyncCopies();
#pragma unroll
  for (int n = 1; n < fast2::prologueTiles(kStages); ++n) {
    if (n < count) loadKeyValueTile(n);
    ptx::commitAsyncCopies();
  }

  float o[kRowTiles][Traits::kDimTiles][4];  // unnormalised O of this warp's rows over its keys
#pragma unroll
  for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
    for (int t = 0; t < Traits::kDimTiles; ++t) o[mt][t][0] = o[mt][t][1] = o[mt][t][2] = o[mt][t][3] = 0.f;
  float rowMax[kRowTiles][2];  // m of rows j = 2 mt + half, in log2 units (scores x scale log2 e)
  float rowSum[kRowTiles][2];  // this lane's share of l (quad-reduced at the end)
#pragma unroll
  for (int mt = 0; mt < kRowTiles; ++mt) rowMax[mt][0] = rowMax[mt][1] = -INFINITY, rowSum[mt][0] = rowSum[mt][1] = 0.f;

  for (int n = 0; n < count; ++n) {
    const int stage = fast2::tileStage(n, kStages);
    fast2::waitAsyncCopiesBut<fast2::pendingCopyGroups(kStages)>();  // tile n has landed (this thread's copies)
    __syncthreads();  // ... for every thread's; all warps are done with tile n - 1
    if (fast2::tileIssuedAt(n, kStages) < count)
      loadKeyValueTile(fast2::tileIssuedAt(n, kStages));  // tile n - 1's stage
    ptx::commitAsyncCopies();                             // (an empty group at the end)
    const Elem* sK = tileK(stage);
    const Elem* sV = tileV(stage);
    // opaque copies: recomputing the steps each tile is cheaper than a register per address
    const int queryOffset = fast2::opaque(queryLane), keyOffset = fast2::opaque(keyLane);
    const int valueOffset = fast2::opaque(valueLane);
    const int keys = blockKeys(n);  // before S is live: the ragged layout's divisions need registers

    // S = Q K^T over this warp's 32 keys: each K fragment feeds both row tiles. Two k16 steps per
    // iteration: unrolled fully, D128 takes 253-255 registers on sm_100/120 (no margin before a
    // spill); a candidate for the GPU round to time.
    float s[kRowTiles][kKeyTiles][4];
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
      for (int nt = 0; nt < kKeyTiles; ++nt) s[mt][nt][0] = s[mt][nt][1] = s[mt][nt][2] = s[mt][nt][3] = 0.f;
#pragma unroll 2
    for (int kk = 0; kk < Traits::kDimSteps; ++kk) {
      uint32_t a[kRowTiles][4];  // Q rows 16 mt.. of this warp, head dims 16 kk..
#pragma unroll
      for (int mt = 0; mt < kRowTiles; ++mt)
        ptx::loadMatrixX4(a[mt], sQ + fast2::steppedOffset(D, queryOffset, mt, kk));
#pragma unroll
      for (int pair = 0; pair < kKeyTiles / 2; ++pair) {
        uint32_t b[4];
        ptx::loadMatrixX4(b, sK + fast2::steppedOffset(D, keyOffset, pair, kk));
#pragma unroll
        for (int mt = 0; mt < kRowTiles; ++mt) {
          ptx::mma16816<Elem>(s[mt][2 * pair], a[mt], b[0], b[1]);
          ptx::mma16816<Elem>(s[mt][2 * pair + 1], a[mt], b[2], b[3]);
        }
      }
    }

    if constexpr (kRagged) {
      // keys past the block's length (zero rows of K) score -inf: P = 0
      if (keys < kBlockSize) {
#pragma unroll
        for (int nt = 0; nt < kKeyTiles; ++nt) {
          // e = 0, 2 hold one key, e = 1, 3 the next
          const bool masked = fast2::keyMasked(warp, lane, nt, 0, keys);
          const bool nextMasked = fast2::keyMasked(warp, lane, nt, 1, keys);
#pragma unroll
          for (int mt = 0; mt < kRowTiles; ++mt) {
            if (masked) s[mt][nt][0] = s[mt][nt][2] = -INFINITY;
            if (nextMasked) s[mt][nt][1] = s[mt][nt][3] = -INFINITY;
          }
        }
      }
    }

    // m' = max(m, scale log2e max_key S) (scale > 0: the max of the raw scores, scaled once);
    // P = 2^(S scale log2e - m'), one FFMA; alpha = 2^(m - m'); l = alpha l + sum_key P (fast2::softmaxRowTile)
    auto quadMax = [](float x) {  // the four lanes of a quad share a row
      x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
      return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
    };
    uint32_t pFragment[kRowTiles][kKeyTiles / 2][4];  // P as Elem pairs: A fragments of P V, key steps kk
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt) {
      float alpha[2];
      const bool moved =
          fast2::softmaxRowTile(s[mt], rowMax[mt], rowSum[mt], alpha, p.scaleLog2, quadMax, fast2::Exp2Fast{});
      // O = alpha O, unless alpha = 1 on all 16 rows of the tile in the warp (a warp-uniform branch)
      if (__any_sync(0xffffffffu, moved)) {
#pragma unroll
        for (int t = 0; t < Traits::kDimTiles; ++t)
#pragma unroll
          for (int e = 0; e < 4; ++e) o[mt][t][e] *= alpha[e / 2];
      }
      // key tiles 2kk, 2kk + 1 of S = one k16 A fragment of P (the accumulator and A layouts agree)
#pragma unroll
      for (int kk = 0; kk < kKeyTiles / 2; ++kk) {
        pFragment[mt][kk][0] = ptx::packPair<Elem>(s[mt][2 * kk][0], s[mt][2 * kk][1]);
        pFragment[mt][kk][1] = ptx::packPair<Elem>(s[mt][2 * kk][2], s[mt][2 * kk][3]);
        pFragment[mt][kk][2] = ptx::packPair<Elem>(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
        pFragment[mt][kk][3] = ptx::packPair<Elem>(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
      }
    }

    // O += P V: B = V rows of this warp's keys read transposed; each V fragment feeds both row tiles
#pragma unroll
    for (int kk = 0; kk < kKeyTiles / 2; ++kk) {
#pragma unroll
      for (int pair = 0; pair < Traits::kDimTiles / 2; ++pair) {
        uint32_t b[4];
        ptx::loadMatrixX4Transposed(b, sV + fast2::steppedOffset(D, valueOffset, kk, pair));
#pragma unroll
        for (int mt = 0; mt < kRowTiles; ++mt) {
          ptx::mma16816<Elem>(o[mt][2 * pair], pFragment[mt][kk], b[0], b[1]);
          ptx::mma16816<Elem>(o[mt][2 * pair + 1], pFragment[mt][kk], b[2], b[3]);
        }
      }
    }
  }

  // Merge the two key halves of each row half. The stages become: each warp's O for the columns its
  // partner finalises ([warp][mt][t][lane] float4, conflict-free), each lane's statistics, the
  // output tile. Partner warps hold the same rows and columns in the same lanes.
  fast2::waitAsyncCopiesBut<0>();  // only empty groups remain; no copy may land on the buffers
  __syncthreads();                 // every warp is done with the last tile
  float4* exchange = reinterpret_cast<float4*>(sharedBytes);
  float4* stats = reinterpret_cast<float4*>(sharedBytes + Traits::kExchangeBytes);  // [warp][lane][m, l]
  Elem* staging = reinterpret_cast<Elem*>(sharedBytes + Traits::kExchangeBytes + Traits::kStatsBytes);
  // each warp finalises half of the column tiles and sends the others to its partner
  // (fast2::finalisesColumnTile: a warp-uniform test that keeps every register index a constant)
  auto exchangeSlot = [&](int w, int mt, int t) {
    return exchange + fast2::exchangeSlot(w, mt, t, lane, Traits::kDimTiles);
  };
#pragma unroll
  for (int j = 0; j < fast2::kRowsPerLane; ++j) {  // l of the row: the quad's four shares
    rowSum[j / 2][j % 2] += __shfl_xor_sync(0xffffffffu, rowSum[j / 2][j % 2], 1);
    rowSum[j / 2][j % 2] += __shfl_xor_sync(0xffffffffu, rowSum[j / 2][j % 2], 2);
  }
#pragma unroll
  for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
    for (int t = 0; t < Traits::kDimTiles; ++t)
      if (!fast2::finalisesColumnTile(warp, t, Traits::kDimTiles))
        *exchangeSlot(warp, mt, t) = make_float4(o[mt][t][0], o[mt][t][1], o[mt][t][2], o[mt][t][3]);
  stats[warp * 64 + lane * 2] = make_float4(rowMax[0][0], rowMax[0][1], rowMax[1][0], rowMax[1][1]);
  stats[warp * 64 + lane * 2 + 1] = make_float4(rowSum[0][0], rowSum[0][1], rowSum[1][0], rowSum[1][1]);
  __syncthreads();

  // m = max(m_own, m_other); w = 2^(m_i - m); out = (w_own O_own + w_other O_other) / (w_own l_own + w_other l_other)
  const int other = fast2::partner(warp);
  const float4 otherMax4 = stats[other * 64 + lane * 2], otherSum4 = stats[other * 64 + lane * 2 + 1];
  const float otherMax[4] = {otherMax4.x, otherMax4.y, otherMax4.z, otherMax4.w};
  const float otherSum[4] = {otherSum4.x, otherSum4.y, otherSum4.z, otherSum4.w};
  float ownWeight[fast2::kRowsPerLane], otherWeight[fast2::kRowsPerLane];
#pragma unroll
  for (int j = 0; j < fast2::kRowsPerLane; ++j) {
    const fast2::MergeWeights w =
        fast2::mergeWeights(rowMax[j / 2][j % 2], rowSum[j / 2][j % 2], otherMax[j], otherSum[j], fast2::Exp2Fast{});
    ownWeight[j] = w.own;
    otherWeight[j] = w.other;
  }
#pragma unroll
  for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
    for (int t = 0; t < Traits::kDimTiles; ++t) {
      if (!fast2::finalisesColumnTile(warp, t, Traits::kDimTiles)) continue;
      const float4 y4 = *exchangeSlot(other, mt, t);
      const float y[4] = {y4.x, y4.y, y4.z, y4.w};
      float merged[4];
#pragma unroll
      for (int e = 0; e < 4; ++e)
        merged[e] = o[mt][t][e] * ownWeight[2 * mt + e / 2] + y[e] * otherWeight[2 * mt + e / 2];
      const int r = fast2::fragmentRow(warp, lane, mt, 0), col = fast2::fragmentColumn(lane, t, 0);
      *reinterpret_cast<uint32_t*>(staging + swizzled<D>(r, col)) = ptx::packPair<Elem>(merged[0], merged[1]);
      *reinterpret_cast<uint32_t*>(staging + swizzled<D>(r + 8, col)) = ptx::packPair<Elem>(merged[2], merged[3]);
    }
  __syncthreads();
  // whole rows as 16-byte chunks; only the block's real query rows exist
  const int againRow = fast2::opaque(int(blockIdx.x));
  Elem* rowOut = static_cast<Elem*>(p.out) + queryBlock(againRow);
  const int rowQueries = span(againRow % p.qBlocks).length;
  for (int chunk = threadIdx.x; chunk < kBlockSize * Traits::kChunksPerRow; chunk += Traits::kThreads) {
    const int r = chunk / Traits::kChunksPerRow, col = (chunk % Traits::kChunksPerRow) * 8;
    if (!kRagged || r < rowQueries)
      *reinterpret_cast<uint4*>(rowOut + int64_t(r) * D + col) =
          *reinterpret_cast<const uint4*>(staging + swizzled<D>(r, col));
  }
}

template <class Traits, bool kRagged>
Status launchFast2Instance(const AttentionKernelParams& p, cudaStream_t stream) {
  fast2AttentionKernel<Traits, kRagged><<<unsigned(p.rows), Traits::kThreads, Traits::kSharedBytes, stream>>>(p);
  return launched("fast2AttentionKernel");
}

template <typename Elem, int kHeadDim>
Status launchFast2Attention(const AttentionKernelParams& p, cudaStream_t stream) {
  using TwoStages = Fast2AttentionTraits<Elem, kHeadDim, 2>;
  using ThreeStages = Fast2AttentionTraits<Elem, kHeadDim, 3>;
  if (p.rows == 0) return Status{};
  if (p.rows > int64_t(0x7fffffff))
    return invalidValue("too many query blocks for one grid: " + std::to_string(p.rows));
  const void* two = reinterpret_cast<const void*>(&fast2AttentionKernel<TwoStages, false>);
  const void* twoRagged = reinterpret_cast<const void*>(&fast2AttentionKernel<TwoStages, true>);
  const void* three = reinterpret_cast<const void*>(&fast2AttentionKernel<ThreeStages, false>);
  // the predicated instance only where a block can be shorter than 64 tokens (two stages)
  if (p.layout.ragged()) {
    const Status allowed = allowSharedMemory(twoRagged, TwoStages::kSharedBytes, "fast2AttentionKernel");
    return allowed.ok() ? launchFast2Instance<TwoStages, true>(p, stream) : allowed;
  }
  const Status allowed = allowSharedMemory(two, TwoStages::kSharedBytes, "fast2AttentionKernel");
  if (!allowed.ok()) return allowed;
  // A third stage where the device has the shared memory for it at the same CTAs per SM, decided
  // once per device (0: not yet known, else the stage count); devices past the cache decide per call.
  constexpr int kCachedDevices = 64;
  static std::atomic<int> stagesOf[kCachedDevices] = {};
  int device = 0, optIn = 0;
  NABLA_CUDA_TRY(cudaGetDevice(&device));
  int stages = device < kCachedDevices ? stagesOf[device].load(std::memory_order_relaxed) : 0;
  if (stages == 0) {
    stages = 2;
    NABLA_CUDA_TRY(cudaDeviceGetAttribute(&optIn, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    if (size_t(ThreeStages::kSharedBytes) <= size_t(optIn)) {
      int ctasTwo = 0, ctasThree = 0;
      NABLA_CUDA_TRY(
          cudaOccupancyMaxActiveBlocksPerMultiprocessor(&ctasTwo, two, TwoStages::kThreads, TwoStages::kSharedBytes));
      const Status deep = allowSharedMemory(three, ThreeStages::kSharedBytes, "fast2AttentionKernel");
      if (!deep.ok()) return deep;  // a CUDA error: the device fits the stages, so not a refusal
      NABLA_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&ctasThree, three, ThreeStages::kThreads,
                                                                   ThreeStages::kSharedBytes));
      if (ctasThree >= ctasTwo) stages = 3;
    }
    if (device < kCachedDevices) stagesOf[device].store(stages, std::memory_order_relaxed);
  } else if (stages == 3) {
    const Status deep = allowSharedMemory(three, ThreeStages::kSharedBytes, "fast2AttentionKernel");
    if (!deep.ok()) return deep;
  }
  const bool deep = stages == 3;
  return deep ? launchFast2Instance<ThreeStages, false>(p, stream) : launchFast2Instance<TwoStages, false>(p, stream);
}

}  // namespace cuda
}  // namespace nabla
