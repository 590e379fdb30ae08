// The NABLA mask (NABLA.md 1): pool q and k, then one CTA per (b, h, query block i) row computes
// P = softmax_j(qa_i . ka_j / sqrt(D)) in shared memory, selects the kept key blocks (CDF or topk),
// ORs in the STA window, ANDs the document mask, and writes kvCounts / kvIndices directly.
//
// Selection without sorting: every probability becomes a 30-bit key that orders like the value
// (key = bits(P) + 1 for blocks of the row's document, 0 for other documents), and the boundary key
// is found by bisection over those bits, 30 block-wide reductions per row:
//   CDF:  cut = largest c with sum_{key_j < c} P_j < 1 - thr. Every block with key > cut is kept,
//         every block with key < cut dropped (the ascending running sum up to it stays < 1 - thr).
//   topk: cut = the K-th largest key (largest c with #{key_j >= c} >= K); keys > cut are kept.
// Ties at `cut` are resolved by block index exactly as the CPU backend's ascending sort by
// (P, -index) does: the highest-index ties are dropped first and the lowest-index ones kept (CDF
// keeps at least one); topk keeps the lowest-index ties.
// Blocks whose running sum lies within fp32 rounding of 1 - thr may differ from the CPU backend
// (NABLA.md 1.3 allows it); sums are fp32 tree reductions.
#include <cmath>

#include "pool.cuh"

namespace nabla {
namespace cuda {
namespace {

constexpr int kMaskThreads = 256;
constexpr int kMaskWarps = kMaskThreads / 32;
constexpr int kKeyBits = 30;  // keys are <= bits(1.0f) + 1 = 0x3f800001 < 2^30

struct MaskKernelParams {
  const float* qPooled;     // [B*H, nq, D]
  const float* kPooled;     // [B*H, nk, D]
  const int32_t* blockDoc;  // [nq] document per block (nq == nk), or null for one document
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
  __device__ V operator()(V a, V b) const { return a + b; }
};
struct MaxOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
  __device__ uint32_t operator()(uint32_t a, uint32_t b) const { return a > b ? a : b; }
};

// Reduction over the CTA; every thread receives the same total (fixed combination order).
template <typename V, typename Op>
__device__ V blockReduce(V value, Op op, V* warpValues) {
  for (int offset = 16; offset > 0; offset >>= 1) value = op(value, __shfl_xor_sync(0xffffffffu, value, offset));
  if (threadIdx.x % 32 == 0) warpValues[threadIdx.x / 32] = value;
  __syncthreads();
  V total = warpValues[0];
  for (int w = 1; w < kMaskWarps; ++w) total = op(total, warpValues[w]);
  __syncthreads();  // warpValues may be reused right away
  return total;
}

// Number of threads below this one (in thread order) whose flag is set; *total = all set flags.
__device__ int blockExclusiveCount(bool flag, int* warpCounts, int* total) {
  const unsigned ballot = __ballot_sync(0xffffffffu, flag);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warpCounts[warp] = __popc(ballot);
  __syncthreads();
  int before = __popc(ballot & ((1u << lane) - 1u)), sum = 0;
  for (int w = 0; w < kMaskWarps; ++w) {
    if (w < warp) before += warpCounts[w];
    sum += warpCounts[w];
  }
  __syncthreads();
  *total = sum;
  return before;
}

__global__ void __launch_bounds__(kMaskThreads, 4) nablaMaskKernel(const MaskKernelParams p) {
  extern __shared__ uint32_t shared[];  // [nk] logits -> P -> keys -> keep flags (as bits), then [D] qa
  __shared__ float warpFloat[kMaskWarps];
  __shared__ uint32_t warpUint[kMaskWarps];
  __shared__ int warpInt[kMaskWarps];

  const int nk = p.kvBlocks, headDim = p.headDim;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int64_t row = blockIdx.x;  // (b*H + h) * nq + i
  const int64_t bh = row / p.qBlocks;
  const int32_t i = int32_t(row % p.qBlocks);
  const bool documents = p.blockDoc != nullptr;
  const int32_t rowDoc = documents ? p.blockDoc[i] : 0;
  uint32_t* slot = shared;  // slot[j]: the current per-key-block quantity
  float* query = reinterpret_cast<float*>(shared + nk);

  // qa = pooled query block i
  for (int d = tid; d < headDim; d += kMaskThreads) query[d] = p.qPooled[row * headDim + d];
  __syncthreads();

  // logit_j = qa . ka_j / sqrt(D), or -inf when block j is in another document (one warp per j)
  const float* keyPool = p.kPooled + bh * nk * headDim;
  for (int j = warp; j < nk; j += kMaskWarps) {
    float dot = 0.f;
    for (int d = lane; d < headDim; d += 32) dot += query[d] * keyPool[int64_t(j) * headDim + d];
    for (int offset = 16; offset > 0; offset >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, offset);
    const bool sameDoc = !documents || p.blockDoc[j] == rowDoc;
    if (lane == 0) slot[j] = __float_as_uint(sameDoc ? dot / p.sqrtHeadDim : -INFINITY);
  }
  __syncthreads();

  // m = max_j logit_j
  float rowMax = -INFINITY;
  for (int j = tid; j < nk; j += kMaskThreads) rowMax = fmaxf(rowMax, __uint_as_float(slot[j]));
  rowMax = blockReduce(rowMax, MaxOp{}, warpFloat);

  // e_j = exp(logit_j - m), Z = sum_j e_j
  float rowSum = 0.f;
  for (int j = tid; j < nk; j += kMaskThreads) {
    const float e = expf(__uint_as_float(slot[j]) - rowMax);
    slot[j] = __float_as_uint(e);
    rowSum += e;
  }
  rowSum = blockReduce(rowSum, SumOp{}, warpFloat);

  // P_j = e_j / Z (the optional map output), then key_j (0 for other documents)
  uint32_t maxKey = 0;
  int docKeys = 0;  // key blocks in the row's document
  for (int j = tid; j < nk; j += kMaskThreads) {
    const float prob = __uint_as_float(slot[j]) / rowSum;
    if (p.map != nullptr) p.map[row * nk + j] = prob;
    const bool sameDoc = !documents || p.blockDoc[j] == rowDoc;
    const uint32_t key = sameDoc ? __float_as_uint(prob) + 1u : 0u;
    slot[j] = key;
    maxKey = key > maxKey ? key : maxKey;
    docKeys += sameDoc ? 1 : 0;
  }
  maxKey = blockReduce(maxKey, MaxOp{}, warpUint);
  docKeys = blockReduce(docKeys, SumOp{}, warpInt);

  // cut and the rank range [tieBegin, tieEnd) of the kept ties (ties at cut ranked by index)
  uint32_t cut = 0;
  int tieBegin = 0, tieEnd = 0;
  if (p.method == MaskMethod::Cdf) {
    // cut = max c with L(c) = sum_{key_j < c} P_j < 1 - thr (L is nondecreasing, L(0) = 0)
    if (p.dropMass > 0.f) {
      for (int bit = kKeyBits - 1; bit >= 0; --bit) {
        const uint32_t candidate = cut | (1u << bit);
        float below = 0.f;
        for (int j = tid; j < nk; j += kMaskThreads)
          if (slot[j] < candidate) below += valueOfKey(slot[j]);
        if (blockReduce(below, SumOp{}, warpFloat) < p.dropMass) cut = candidate;
      }
    }
    cut = cut < maxKey ? cut : maxKey;  // the largest block is always kept
    float below = 0.f;  // L(cut)
    int ties = 0;       // #{key_j == cut}
    for (int j = tid; j < nk; j += kMaskThreads) {
      if (slot[j] < cut) below += valueOfKey(slot[j]);
      ties += slot[j] == cut ? 1 : 0;
    }
    below = blockReduce(below, SumOp{}, warpFloat);
    ties = blockReduce(ties, SumOp{}, warpInt);
    // Ties are visited highest index first (the CPU's ascending order by (P, -index)); the s-th
    // visited tie brings the running sum to below + s*v and is dropped while that stays < 1 - thr.
    // The last one visited (the lowest index) is always kept.
    const float v = valueOfKey(cut), need = p.dropMass - below;
    int drop = 0;
    if (need > 0.f) {
      if (v > 0.f) {
        const float s = ceilf(need / v);  // smallest s with below + s*v >= 1 - thr (up to rounding)
        drop = s - 1.f >= float(ties - 1) ? ties - 1 : (s < 1.f ? 0 : int(s) - 1);
        if (drop > 0 && below + float(drop) * v >= p.dropMass) --drop;              // rounding fix-ups
        if (drop < ties - 1 && below + float(drop + 1) * v < p.dropMass) ++drop;
      } else {
        drop = ties - 1;
      }
    }
    // kept ties: the ties - drop lowest indexes (ranks are ascending by block index)
    tieBegin = 0;
    tieEnd = ties - (drop > 0 ? drop : 0);
  } else {
    const int keep = int(topkCount(p.threshold, documents ? docKeys : nk));
    // cut = max c with #{key_j >= c} >= K, i.e. the K-th largest key
    for (int bit = kKeyBits - 1; bit >= 0; --bit) {
      const uint32_t candidate = cut | (1u << bit);
      int atLeast = 0;
      for (int j = tid; j < nk; j += kMaskThreads) atLeast += slot[j] >= candidate ? 1 : 0;
      if (blockReduce(atLeast, SumOp{}, warpInt) >= keep) cut = candidate;
    }
    int above = 0;
    for (int j = tid; j < nk; j += kMaskThreads) above += slot[j] > cut ? 1 : 0;
    above = blockReduce(above, SumOp{}, warpInt);
    tieBegin = 0;
    tieEnd = keep - above;
  }

  // keep_j = (key_j > cut or a kept tie) | STA(i, j), & same document; slot[j] becomes keep_j.
  // Chunks of kMaskThreads consecutive j so that tie ranks follow the block index.
  int tiesBefore = 0, keptTotal = 0;
  for (int base = 0; base < nk; base += kMaskThreads) {
    const int j = base + tid;
    const bool valid = j < nk;
    const uint32_t key = valid ? slot[j] : 0u;
    const bool tie = valid && key == cut;
    int chunkTies = 0, chunkKept = 0;
    const int rank = tiesBefore + blockExclusiveCount(tie, warpInt, &chunkTies);
    bool keep = valid && (key > cut || (tie && rank >= tieBegin && rank < tieEnd));
    if (valid && p.sta && staKeeps(p.grid, p.window, i, j)) keep = true;
    if (valid && documents && p.blockDoc[j] != rowDoc) keep = false;
    if (valid) slot[j] = keep ? 1u : 0u;
    blockExclusiveCount(keep, warpInt, &chunkKept);
    tiesBefore += chunkTies;
    keptTotal += chunkKept;
  }

  // kvIndices row: kept ids ascending, then dropped ids ascending (every entry a valid id)
  int32_t* indices = p.kvIndices + row * nk;
  int keptBefore = 0;
  for (int base = 0; base < nk; base += kMaskThreads) {
    const int j = base + tid;
    const bool valid = j < nk;
    const bool keep = valid && slot[j] != 0u;
    int chunkKept = 0;
    const int position = keptBefore + blockExclusiveCount(keep, warpInt, &chunkKept);
    if (valid) indices[keep ? position : keptTotal + (j - position)] = j;
    keptBefore += chunkKept;
  }
  if (tid == 0) p.kvCounts[row] = keptTotal;
}

}  // namespace

Status nablaMask(int device, const MaskParams& p, const void* q, const void* k, DType dtype, int32_t* kvCounts,
                 int32_t* kvIndices, float* map) {
  return onDevice(device, "nablaMask", [&](cudaStream_t stream, Scratch& scratch) -> Status {
    const int64_t batchHeads = p.batch * p.heads, nq = p.qBlocks(), nk = p.kvBlocks();
    const int64_t rows = batchHeads * nq;
    if (rows == 0) return Status{};
    if (nk == 0) {  // nothing to keep
      NABLA_CUDA_TRY(cudaMemsetAsync(kvCounts, 0, size_t(rows) * sizeof(int32_t), stream));
      return Status{};
    }
    if (p.blockDoc != nullptr && nq != nk)
      return invalidValue("documents need as many query blocks as key blocks (got " + std::to_string(nq) +
                          " and " + std::to_string(nk) + ")");
    if (p.sta && (nq != nk || nq != p.grid.blocks()))
      return invalidValue("STA needs query blocks == key blocks == grid blocks (got " + std::to_string(nq) +
                          ", " + std::to_string(nk) + ", " + std::to_string(p.grid.blocks()) + ")");
    if (rows > int64_t(0x7fffffff)) return invalidValue("too many mask rows for one grid: " + std::to_string(rows));

    const size_t sharedBytes = size_t(nk + p.headDim) * sizeof(uint32_t);
    Status status = allowSharedMemory(reinterpret_cast<const void*>(&nablaMaskKernel), sharedBytes,
                                      "nablaMaskKernel (4 bytes per key block)");
    if (!status.ok()) {
      status.message += "; rows of " + std::to_string(nk) + " key blocks are too long for this device";
      return status;
    }

    float* qPooled = nullptr;
    float* kPooled = nullptr;
    int32_t* blockDoc = nullptr;
    if (!(status = scratch.allocate(size_t(batchHeads * nq * p.headDim), &qPooled)).ok()) return status;
    if (!(status = scratch.allocate(size_t(batchHeads * nk * p.headDim), &kPooled)).ok()) return status;
    if (p.blockDoc != nullptr) {
      if (!(status = scratch.allocate(size_t(nq), &blockDoc)).ok()) return status;
      NABLA_CUDA_TRY(cudaMemcpyAsync(blockDoc, p.blockDoc, size_t(nq) * sizeof(int32_t), cudaMemcpyHostToDevice, stream));
    }
    if (!(status = enqueueBlockPool(q, dtype, batchHeads, p.seqQ, p.headDim, qPooled, stream)).ok()) return status;
    if (!(status = enqueueBlockPool(k, dtype, batchHeads, p.seqKv, p.headDim, kPooled, stream)).ok()) return status;

    MaskKernelParams kp{};
    kp.qPooled = qPooled;
    kp.kPooled = kPooled;
    kp.blockDoc = blockDoc;
    kp.qBlocks = int32_t(nq);
    kp.kvBlocks = int32_t(nk);
    kp.headDim = int32_t(p.headDim);
    kp.sqrtHeadDim = float(std::sqrt(double(p.headDim)));
    kp.method = p.method;
    kp.threshold = p.threshold;
    kp.dropMass = 1.f - p.threshold;
    kp.sta = p.sta;
    kp.grid = p.grid;
    kp.window = p.window;
    kp.kvCounts = kvCounts;
    kp.kvIndices = kvIndices;
    kp.map = map;
    nablaMaskKernel<<<unsigned(rows), kMaskThreads, sharedBytes, stream>>>(kp);
    return launched("nablaMaskKernel");
  });
}

}  // namespace cuda
}  // namespace nabla
