// The per-row half of the NABLA mask (docs/nabla.md 1.2-1.5), shared by the mask kernels: from one row's
// logits to its softmax, the selection (CDF or topk), STA, documents, frame-causality and the
// kvIndices row. A key block is visible to a row when it is in the row's document and (causal
// masks) not in a later frame; invisible blocks get logit -inf, are never kept (STA included) and
// do not count for topk.
//
// A row is processed by a "team" of threads: the whole CTA (simple kernel, CtaTeam) or one warp
// (fast and fast2 kernels, WarpTeam). A team offers rank() (0 .. kSize-1), reduce() (every member
// receives the same total, combined in a fixed order) and exclusiveCount() (prefix count of a flag
// in rank order). The row lives in shared memory (SharedRow: simple, fast) or in the warp's
// registers (RegisterRow: fast2); both visit a member's blocks in the same order, so a warp gives
// the same bits from either.
//
// Selection without sorting: every probability becomes a 30-bit key that orders like the value
// (key = bits(P) + 1 for visible blocks, 0 for invisible ones), and the boundary key
// is found by bisection over those bits, 30 team-wide reductions per row:
//   CDF:  cut = largest c with sum_{key_j < c} P_j < 1 - thr. Every block with key > cut is kept,
//         every block with key < cut dropped (the ascending running sum up to it stays < 1 - thr).
//   topk: cut = the K-th largest key (largest c with #{key_j >= c} >= K); keys > cut are kept.
// Ties at `cut` are resolved by block index exactly as the CPU backend's ascending sort by
// (P, -index) does: the highest-index ties are dropped first and the lowest-index ones kept (CDF
// keeps at least one); topk keeps the lowest-index ties.
// Blocks whose running sum lies within fp32 rounding of 1 - thr may differ from the CPU backend
// (docs/nabla.md 1.3 allows it); sums are fp32 in a fixed order (deterministic run to run).
#pragma once

#include <cmath>

#include "common.cuh"

namespace nabla {
namespace cuda {
namespace mask {

constexpr int kKeyBits = 30;  // keys are <= bits(1.0f) + 1 = 0x3f800001 < 2^30

struct MaskKernelParams {
  const float* qPooled;     // [B*H, nq, D]
  const float* kPooled;     // [B*H, nk, D]
  const int32_t* blockDoc;  // [nq] document per block (nq == nk), or null for one document
  int32_t framePlane;       // causal masks: blocks per frame (nq == nk, block frame = id / framePlane); 0 = not causal
  int32_t qBlocks, kvBlocks, headDim;
  float sqrtHeadDim;
  MaskMethod method;
  float threshold;
  float dropMass;  // CDF: 1 - threshold
  bool sta;
  BlockGrid grid;
  StaWindow window;
  int32_t* kvCounts;   // [B*H*nq]
  int32_t* kvIndices;  // [B*H*nq, nk]
  float* map;          // [B*H*nq, nk] or null
};

__device__ __forceinline__ float valueOfKey(uint32_t key) { return key == 0 ? 0.f : __uint_as_float(key - 1); }

struct SumOp {
  template <typename V>
  __device__ V operator()(V a, V b) const {
    return a + b;
  }
};
struct MaxOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
  __device__ uint32_t operator()(uint32_t a, uint32_t b) const { return a > b ? a : b; }
};

// Butterfly over the warp: every lane ends with the same value (a + b == b + a exactly).
// Stages the pooled queries of a CTA's kRows query blocks i0 .. i0 + kRows - 1 of head bh into
// query [kRows][queryPitch], zeros past the head dim and past the last query block (the fast
// kernels' logit loops then run whole, unpredicated column slices). kThreads threads stage together.
template <int kRows, int kThreads>
__device__ __forceinline__ void stageQueryRows(const MaskKernelParams& p, int64_t bh, int32_t i0, int queryPitch,
                                               float* query) {
  for (int e = threadIdx.x; e < kRows * queryPitch; e += kThreads) {
    const int r = e / queryPitch, d = e % queryPitch;
    const int32_t i = i0 + r;
    query[e] = i < p.qBlocks && d < p.headDim ? p.qPooled[(bh * p.qBlocks + i) * p.headDim + d] : 0.f;
  }
}

template <typename V, typename Op>
__device__ __forceinline__ V warpReduce(V value, Op op) {
  for (int offset = 16; offset > 0; offset >>= 1) value = op(value, __shfl_xor_sync(0xffffffffu, value, offset));
  return value;
}

// The whole CTA (kWarps warps) works on one row. The three arrays are [kWarps] in shared memory.
template <int kWarps>
struct CtaTeam {
  static constexpr int kSize = kWarps * 32;
  float* warpFloat;
  uint32_t* warpUint;
  int* warpInt;

  __device__ int rank() const { return threadIdx.x; }

  template <typename V, typename Op>
  __device__ V reduce(V value, Op op) const {
    V* perWarp = scratch(value);
    value = warpReduce(value, op);
    if (threadIdx.x % 32 == 0) perWarp[threadIdx.x / 32] = value;
    __syncthreads();
    V total = perWarp[0];
    for (int w = 1; w < kWarps; ++w) total = op(total, perWarp[w]);
    __syncthreads();  // perWarp may be reused right away
    return total;
  }

  // Number of threads below this one (in thread order) whose flag is set; *total = all set flags.
  __device__ int exclusiveCount(bool flag, int* total) const {
    const unsigned ballot = __ballot_sync(0xffffffffu, flag);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) warpInt[warp] = __popc(ballot);
    __syncthreads();
    int before = __popc(ballot & ((1u << lane) - 1u)), sum = 0;
    for (int w = 0; w < kWarps; ++w) {
      if (w < warp) before += warpInt[w];
      sum += warpInt[w];
    }
    __syncthreads();
    *total = sum;
    return before;
  }

  __device__ float* scratch(float) const { return warpFloat; }
  __device__ uint32_t* scratch(uint32_t) const { return warpUint; }
  __device__ int* scratch(int) const { return warpInt; }
};

// One warp works on one row (no __syncthreads: warps of a CTA proceed independently).
struct WarpTeam {
  static constexpr int kSize = 32;

  __device__ int rank() const { return threadIdx.x % 32; }

  template <typename V, typename Op>
  __device__ V reduce(V value, Op op) const {
    return warpReduce(value, op);
  }

  __device__ int exclusiveCount(bool flag, int* total) const {
    const unsigned ballot = __ballot_sync(0xffffffffu, flag);
    *total = __popc(ballot);
    return __popc(ballot & ((1u << rank()) - 1u));
  }
};

// Which key blocks row i sees: those of its document and (causal masks) not of a later frame.
struct Visibility {
  const int32_t* blockDoc;  // null: one document
  int32_t rowDoc;
  int visibleEnd;  // causal: blocks of frames <= frame(i) are the ids below (frame(i) + 1) * framePlane

  __device__ bool operator()(int j) const { return j < visibleEnd && (blockDoc == nullptr || blockDoc[j] == rowDoc); }
};

__device__ __forceinline__ Visibility visibilityOf(const MaskKernelParams& p, int32_t i) {
  const int visibleEnd = p.framePlane > 0 ? (i / p.framePlane + 1) * p.framePlane : p.kvBlocks;
  return Visibility{p.blockDoc, p.blockDoc != nullptr ? p.blockDoc[i] : 0, visibleEnd};
}

// Where a team keeps one row's per-key-block quantity (logit -> P -> key -> keep flag, as bits):
// each member owns the j with j % stride == rank, in ascending j. Two storages, same visiting order:
//   SharedRow   slot[0 .. nk) in shared memory (any nk; the simple and fast kernels);
//   RegisterRow the kSlots registers of each lane of a warp, slot m = key block 32m + lane (nk <=
//               32 * kSlots; fast2), so the 30 bisection rounds read registers, not shared memory;
//               which slots are visible is one 64-bit mask, worked out once per row.
// see(visible) first; then
// each(f):       f(j, value, seen) for the member's j < nk, ascending (value by reference: f may
//                rewrite it; seen = visible(j)).
// chunks(f):     f(j, valid, value, seen) for j = base + rank, base = 0, stride, ... < nk, on every
//                member (valid = j < nk; value 0, seen false when not), for team-wide ballots per
//                chunk; f returns the new value (stored when valid).
// chunksRead(f): the same, f returns nothing and nothing is stored.
struct SharedRow {
  uint32_t* slot;
  int nk, rank, stride;
  Visibility visible;

  __device__ __forceinline__ void see(const Visibility& v) { visible = v; }
  template <typename F>
  __device__ __forceinline__ void each(F&& f) {
    for (int j = rank; j < nk; j += stride) f(j, slot[j], visible(j));
  }
  template <typename F>
  __device__ __forceinline__ void chunks(F&& f) {
    for (int base = 0; base < nk; base += stride) {
      const int j = base + rank;
      const bool valid = j < nk;
      const uint32_t value = f(j, valid, valid ? slot[j] : 0u, valid && visible(j));
      if (valid) slot[j] = value;
    }
  }
  template <typename F>
  __device__ __forceinline__ void chunksRead(F&& f) {
    for (int base = 0; base < nk; base += stride) {
      const int j = base + rank;
      const bool valid = j < nk;
      f(j, valid, valid ? slot[j] : 0u, valid && visible(j));
    }
  }
};

template <int kSlots>
struct RegisterRow {
  static_assert(kSlots <= 64, "visibility is one 64-bit mask");
  uint32_t value[kSlots];
  int nk, lane, slots;  // slots = ceil(nk / 32) <= kSlots, the same on every lane
  uint64_t seen;        // bit m: key block 32m + lane is visible

  __device__ __forceinline__ void see(const Visibility& visible) {
    seen = 0;
#pragma unroll
    for (int m = 0; m < kSlots; ++m) {
      if (m >= slots) break;
      const int j = 32 * m + lane;
      if (j < nk && visible(j)) seen |= uint64_t(1) << m;
    }
  }
  __device__ __forceinline__ bool seenAt(int m) const { return (seen >> m) & 1u; }
  template <typename F>
  __device__ __forceinline__ void each(F&& f) {
#pragma unroll
    for (int m = 0; m < kSlots; ++m) {
      if (m >= slots) break;
      const int j = 32 * m + lane;
      if (j < nk) f(j, value[m], seenAt(m));
    }
  }
  template <typename F>
  __device__ __forceinline__ void chunks(F&& f) {
#pragma unroll
    for (int m = 0; m < kSlots; ++m) {
      if (m >= slots) break;
      const int j = 32 * m + lane;
      value[m] = f(j, j < nk, j < nk ? value[m] : 0u, seenAt(m));
    }
  }
  template <typename F>
  __device__ __forceinline__ void chunksRead(F&& f) {
#pragma unroll
    for (int m = 0; m < kSlots; ++m) {
      if (m >= slots) break;
      const int j = 32 * m + lane;
      f(j, j < nk, j < nk ? value[m] : 0u, seenAt(m));
    }
  }
};

// Row `row` = (b*H + h) * nq + i of the mask. On entry the team's row storage `slots` (above) holds
// the logits qa_i . ka_j / sqrt(D) as float bits; it is reused for P, the keys and the keep flags.
// Writes map[row] (when requested), kvCounts[row] and kvIndices[row]. Every member of the team
// touches only its own j (j % kSize == rank()). Invisible blocks (other documents, later frames)
// have logit -inf.
template <typename Team, typename Row>
__device__ __forceinline__ void selectRowIn(const MaskKernelParams& p, const Team& team, int64_t row, int32_t i,
                                            Row& slots) {
  const int nk = p.kvBlocks, tid = team.rank();
  slots.see(visibilityOf(p, i));

  // m = max_j logit_j
  float rowMax = -INFINITY;
  slots.each([&](int, uint32_t& s, bool seen) {
    if (seen) rowMax = fmaxf(rowMax, __uint_as_float(s));
  });
  rowMax = team.reduce(rowMax, MaxOp{});

  // e_j = exp(logit_j - m), Z = sum_j e_j
  float rowSum = 0.f;
  slots.each([&](int, uint32_t& s, bool seen) {
    const float e = seen ? expf(__uint_as_float(s) - rowMax) : 0.f;
    s = __float_as_uint(e);
    rowSum += e;
  });
  rowSum = team.reduce(rowSum, SumOp{});

  // P_j = e_j / Z (the optional map output), then key_j (0 for invisible blocks)
  uint32_t maxKey = 0;
  int visibleKeys = 0;  // key blocks the row sees
  slots.each([&](int j, uint32_t& s, bool seen) {
    const float prob = __uint_as_float(s) / rowSum;
    if (p.map != nullptr) p.map[row * nk + j] = prob;
    const uint32_t key = seen ? __float_as_uint(prob) + 1u : 0u;
    s = key;
    maxKey = key > maxKey ? key : maxKey;
    visibleKeys += seen ? 1 : 0;
  });
  maxKey = team.reduce(maxKey, MaxOp{});
  visibleKeys = team.reduce(visibleKeys, SumOp{});

  // cut and the number of kept ties (ties at cut ranked by index; the lowest-index ones are kept)
  uint32_t cut = 0;
  int keptTies = 0;
  if (p.method == MaskMethod::Cdf) {
    // cut = max c with L(c) = sum_{key_j < c} P_j < 1 - thr (L is nondecreasing, L(0) = 0)
    if (p.dropMass > 0.f) {
      for (int bit = kKeyBits - 1; bit >= 0; --bit) {
        const uint32_t candidate = cut | (1u << bit);
        float below = 0.f;
        slots.each([&](int, uint32_t& s, bool) {
          if (s < candidate) below += valueOfKey(s);
        });
        if (team.reduce(below, SumOp{}) < p.dropMass) cut = candidate;
      }
    }
    cut = cut < maxKey ? cut : maxKey;  // the largest block is always kept
    float below = 0.f;                  // L(cut)
    int ties = 0;                       // #{key_j == cut}
    slots.each([&](int, uint32_t& s, bool) {
      if (s < cut) below += valueOfKey(s);
      ties += s == cut ? 1 : 0;
    });
    below = team.reduce(below, SumOp{});
    ties = team.reduce(ties, SumOp{});
    // Ties are visited highest index first (the CPU's ascending order by (P, -index)); the s-th
    // visited tie brings the running sum to below + s*v and is dropped while that stays < 1 - thr.
    // The last one visited (the lowest index) is always kept.
    const float v = valueOfKey(cut), need = p.dropMass - below;
    int drop = 0;
    if (need > 0.f) {
      if (v > 0.f) {
        const float s = ceilf(need / v);  // smallest s with below + s*v >= 1 - thr (up to rounding)
        drop = s - 1.f >= float(ties - 1) ? ties - 1 : (s < 1.f ? 0 : int(s) - 1);
        if (drop > 0 && below + float(drop) * v >= p.dropMass) --drop;  // rounding fix-ups
        if (drop < ties - 1 && below + float(drop + 1) * v < p.dropMass) ++drop;
      } else {
        drop = ties - 1;
      }
    }
    keptTies = ties - (drop > 0 ? drop : 0);
  } else {
    const int keep = int(topkCount(p.threshold, visibleKeys));  // nk when every block is visible
    // cut = max c with #{key_j >= c} >= K, i.e. the K-th largest key
    for (int bit = kKeyBits - 1; bit >= 0; --bit) {
      const uint32_t candidate = cut | (1u << bit);
      int atLeast = 0;
      slots.each([&](int, uint32_t& s, bool) { atLeast += s >= candidate ? 1 : 0; });
      if (team.reduce(atLeast, SumOp{}) >= keep) cut = candidate;
    }
    int above = 0;
    slots.each([&](int, uint32_t& s, bool) { above += s > cut ? 1 : 0; });
    above = team.reduce(above, SumOp{});
    keptTies = keep - above;
  }

  // keep_j = (key_j > cut or one of the keptTies lowest-index ties) | STA(i, j), & visible;
  // the slot becomes keep_j. Chunks of kSize consecutive j so that tie ranks follow the block index.
  int tiesBefore = 0, keptTotal = 0;
  slots.chunks([&](int j, bool valid, uint32_t key, bool seen) {
    const bool tie = valid && key == cut;
    int chunkTies = 0, chunkKept = 0;
    const int rank = tiesBefore + team.exclusiveCount(tie, &chunkTies);
    bool keep = valid && (key > cut || (tie && rank < keptTies));
    if (valid && p.sta && staKeeps(p.grid, p.window, i, j)) keep = true;
    if (!seen) keep = false;
    team.exclusiveCount(keep, &chunkKept);
    tiesBefore += chunkTies;
    keptTotal += chunkKept;
    return keep ? 1u : 0u;
  });

  // kvIndices row: kept ids ascending, then dropped ids ascending (every entry a valid id)
  int32_t* indices = p.kvIndices + row * nk;
  int keptBefore = 0;
  slots.chunksRead([&](int j, bool valid, uint32_t flag, bool) {
    const bool keep = valid && flag != 0u;
    int chunkKept = 0;
    const int position = keptBefore + team.exclusiveCount(keep, &chunkKept);
    if (valid) indices[keep ? position : keptTotal + (j - position)] = j;
    keptBefore += chunkKept;
  });
  if (tid == 0) p.kvCounts[row] = keptTotal;
}

// selectRowIn on a row in shared memory: slot[0 .. nk), used by this team only.
template <typename Team>
__device__ void selectRow(const MaskKernelParams& p, const Team& team, int64_t row, int32_t i, uint32_t* slot) {
  SharedRow slots{slot, p.kvBlocks, team.rank(), Team::kSize, Visibility{}};
  selectRowIn(p, team, row, i, slots);
}

}  // namespace mask
}  // namespace cuda
}  // namespace nabla
