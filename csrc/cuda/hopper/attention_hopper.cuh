// The Hopper attention kernel (sm_90a): wgmma, TMA, mbarrier pipelines, warp specialization.
// Included only by the instance files ../kernels/attention_hopper_<dtype>_d<dim>.cu.
//
// Design: one CTA per SM (persistent), 384 threads = 3 warpgroups.
//   warpgroup 0, producer (setmaxnreg.dec to 40): warp c < 2 serves consumer c; its lane 0 takes a
//     row from the global ticket counter (head by head, longest-first: row_order.h), TMA-loads
//     the K and V tiles of the row's first min(count, kStages) kept key blocks (while the
//     consumer still finishes the previous row: layout.h tilesBeforeQ), then, once the Q slot is
//     free, the row's Q tile, then the rest of its K and V tiles, into consumer c's ring of
//     kStages slots.
//   warpgroups 1, 2, consumers (setmaxnreg.inc to 232): each owns ONE 64-query NABLA block at a
//     time, so wgmma's M = 64 is exactly one block, no padding and no masked rows. Per kept block:
//       S = Q K^T      D/16 x wgmma m64n64k16, both operands K-major in shared memory
//       online softmax on S in registers (exp2 with scale*log2e folded in), P rounded to Elem
//       O += P V       4 x wgmma m64nDk16, P from registers, V MN-major ("transposed B")
//     then O / l is staged in the Q slot and written with 16-byte stores.
// Why one block per consumer (mode (a) of GPU-PLAN.md) and not two blocks sharing one K/V stream:
//   - exact FLOPs on every mask: a shared stream over the union of two lists makes a consumer skip
//     tiles it does not need, and the synthetic 720p masks share only 43-47% of loads even between
//     the best partners (temporal: block i and i + blocks per frame), 11-30% between neighbours;
//   - two rows in flight per SM overlap one consumer's softmax with the other's wgmma (the
//     inter-warpgroup overlap FA3 gets from ping-pong scheduling) without any named-barrier dance;
//   - cost: K/V bytes per FLOP are those of 64-row tiles: 32 KiB per 2.1 MFLOP at D128, i.e.
//     ~7 TB/s of L2 at 450 TFLOP/s over 132 SMs; the L2 has delivered 4.6-4.75 TB/s here, which
//     caps this design near 300-330 TFLOP/s if every tile comes from L2 and nothing hits the
//     in-SM rings twice. Rows run head by head (one head's K+V = 34 MB at 720p, within the
//     50-60 MB L2), so most tiles should be L2 hits. Mode (b) is the next step once a GPU
//     run shows L2 bandwidth, not the tensor pipe, is the limit.
// Shared memory (D128, 3 stages): 2 consumers x (Q 16 KiB + 3 x (K 16 + V 16 KiB)) = 224 KiB,
// + barriers + 1 KiB alignment slack = 225.5 KiB <= 227 KiB. D64, 4 stages: 144 KiB.
// Registers: 384 threads at 1 CTA/SM compile under a 168 cap; 128 x 40 + 256 x 232 = 64,512 =
// 384 x 168 redistributes exactly. A consumer holds O (D/2 fp32), S (32 fp32) and P (16 b32).
#pragma once

#include <cmath>

#include "../ptx.cuh"
#include "hopper_attention.h"
#include "layout.h"
#include "ptx_sm90.cuh"

namespace nabla {
namespace cuda {
namespace hopper {

template <typename Elem_, int kHeadDim_>
struct HopperAttentionTraits {
  using Elem = Elem_;
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kConsumers = 2;  // warpgroups, one 64-query row each
  static constexpr int kThreads = 128 * (1 + kConsumers);
  static constexpr int kStages = kHeadDim == 128 ? 3 : 4;      // K/V ring slots per consumer
  static constexpr int kTileBytes = kTileRows * kHeadDim * 2;  // one Q, K or V tile
  static constexpr int kHalves = kHeadDim / 64;                // TMA boxes (64 x 64) per tile
  static constexpr int kConsumerBytes = kTileBytes * (1 + 2 * kStages);
  static constexpr int kBarrierBytes = 512;
  static constexpr int kSharedBytes =
      kSwizzleAtomBytes /* alignment slack */ + kConsumers * kConsumerBytes + kBarrierBytes;
  static constexpr int kProducerRegisters = 40;
  static constexpr int kConsumerRegisters = 232;
  // what __launch_bounds__(kThreads, 1) gives each thread: the 64K register file over the threads,
  // in allocation units of 8 (168 for 384 threads); a kernel with setmaxnreg is compiled at it
  static constexpr int kCompiledRegisters = 65536 / kThreads / 8 * 8;
  static_assert(kHeadDim == 64 || kHeadDim == 128, "the Hopper kernel is instantiated for head dims 64 and 128");
  static_assert(kTileBytes % kSwizzleAtomBytes == 0, "every TMA/wgmma tile must start on a 1024-byte boundary");
  static_assert(kSharedBytes <= 227 * 1024, "one CTA per SM: at most 227 KiB of shared memory");
  // setmaxnreg.inc waits, with no time limit, until the pool holds the registers it asks for; a
  // split that does not add up to the launch's registers exactly has hung it (e.g. 24 + 2 x 232
  // at 168 per thread), so the split is exact, as 40 + 2 x 232 = 3 x 168 is
  static_assert(128 * kProducerRegisters + 128 * kConsumers * kConsumerRegisters == kThreads * kCompiledRegisters,
                "setmaxnreg must redistribute exactly the registers the CTA was launched with");
  static_assert(kThreads * kCompiledRegisters <= 65536, "register file of one SM");
  static_assert(kConsumerRegisters % 8 == 0 && kProducerRegisters % 8 == 0, "setmaxnreg takes multiples of 8");
};

// Barriers and the row hand-off of one producer -> consumer pair. Arrival counts: *Full 1 (the
// producer's arrive.expect_tx, plus the TMA bytes), *Empty 128 (every consumer thread).
template <int kStages>
struct PairBarriers {
  uint64_t qFull, qEmpty;
  uint64_t kFull[kStages], kEmpty[kStages], vFull[kStages], vEmpty[kStages];
  int32_t row;  // the row whose Q is in the slot, -1 = no more rows
};

template <class Traits>
__global__ void __launch_bounds__(Traits::kThreads, 1)
    hopperAttentionKernel(const AttentionKernelParams p, const __grid_constant__ CUtensorMap qMap,
                          const __grid_constant__ CUtensorMap kMap, const __grid_constant__ CUtensorMap vMap,
                          const RowSchedule schedule) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using Elem = typename Traits::Elem;
  using Barriers = PairBarriers<Traits::kStages>;
  constexpr int D = Traits::kHeadDim;
  constexpr int S = Traits::kStages;
  constexpr int kTileBytes = Traits::kTileBytes;
  static_assert(Traits::kConsumers * sizeof(Barriers) <= size_t(Traits::kBarrierBytes), "barrier area");

  extern __shared__ unsigned char sharedRaw[];
  // TMA's 128B swizzle and wgmma's descriptors both assume 1024-byte aligned tiles
  unsigned char* shared = sharedRaw + ((kSwizzleAtomBytes - (ptx::sharedAddress(sharedRaw) & 1023u)) & 1023u);
  // consumer c's region: Q, K[0..S), V[0..S)
  auto qTile = [&](int c) { return shared + c * Traits::kConsumerBytes; };
  auto kTile = [&](int c, int stage) { return qTile(c) + kTileBytes * (1 + stage); };
  auto vTile = [&](int c, int stage) { return qTile(c) + kTileBytes * (1 + S + stage); };
  Barriers* barriers = reinterpret_cast<Barriers*>(shared + Traits::kConsumers * Traits::kConsumerBytes);

  if (threadIdx.x == 0) {
    for (int c = 0; c < Traits::kConsumers; ++c) {
      Barriers& b = barriers[c];
      ptx::barrierInit(&b.qFull, 1);
      ptx::barrierInit(&b.qEmpty, 128);
      for (int s = 0; s < S; ++s) {
        ptx::barrierInit(&b.kFull[s], 1);
        ptx::barrierInit(&b.kEmpty[s], 128);
        ptx::barrierInit(&b.vFull[s], 1);
        ptx::barrierInit(&b.vEmpty[s], 128);
      }
    }
    ptx::barrierInitFence();
  }
  __syncthreads();

  const int warpgroup = threadIdx.x / 128;
  if (warpgroup == 0) {
    // ---------------- producer ----------------
    ptx::releaseRegisters<Traits::kProducerRegisters>();
    const int c = threadIdx.x / 32;
    if (c >= Traits::kConsumers || threadIdx.x % 32 != 0) return;
    ptx::prefetchTensorMap(&qMap);
    ptx::prefetchTensorMap(&kMap);
    ptx::prefetchTensorMap(&vMap);
    Barriers& b = barriers[c];
    PipelineState q, kv;
    for (;;) {
      const int32_t ticket = atomicAdd(schedule.ticket, 1);
      const int32_t row = ticket >= p.rows ? -1 : schedule.rowOrder != nullptr ? schedule.rowOrder[ticket] : ticket;
      const int count = row < 0 ? 0 : p.kvCounts != nullptr ? p.kvCounts[row] : p.kvBlocks;
      const int32_t bh = row / p.qBlocks, i = row % p.qBlocks;
      const int32_t* kept = p.kvCounts != nullptr ? p.kvIndices + int64_t(row) * p.kvBlocks : nullptr;
      // the next block id is read one tile ahead, so its global load overlaps the waits
      int32_t nextBlock = kept != nullptr && count > 0 ? kept[0] : 0;
      auto issueKv = [&](int n) {
        const int32_t block = nextBlock;
        if (n + 1 < count) nextBlock = kept != nullptr ? kept[n + 1] : n + 1;
        const int32_t firstKey = int32_t(bh * p.seqKv + int64_t(block) * kTileRows);
        ptx::wait(&b.kEmpty[kv.stage], kv.emptyParity());
        ptx::arriveExpectBytes(&b.kFull[kv.stage], kTileBytes);
        for (int h = 0; h < Traits::kHalves; ++h)
          ptx::loadTile2d(kTile(c, kv.stage) + h * kHalfBytes, &kMap, h * 64, firstKey, &b.kFull[kv.stage]);
        ptx::wait(&b.vEmpty[kv.stage], kv.emptyParity());
        ptx::arriveExpectBytes(&b.vFull[kv.stage], kTileBytes);
        for (int h = 0; h < Traits::kHalves; ++h)
          ptx::loadTile2d(vTile(c, kv.stage) + h * kHalfBytes, &vMap, h * 64, firstKey, &b.vFull[kv.stage]);
        kv.advance(S);
      };
      // the row's first tiles load while the consumer is still in the previous row's epilogue
      const int ahead = tilesBeforeQ(count, S);
      for (int n = 0; n < ahead; ++n) issueKv(n);
      ptx::wait(&b.qEmpty, q.emptyParity());  // the consumer is done with the previous row's Q slot
      b.row = row;
      if (count == 0) {
        ptx::arrive(&b.qFull);  // no Q needed: the consumer writes zeros (or stops when row < 0)
      } else {
        ptx::arriveExpectBytes(&b.qFull, kTileBytes);
        const int32_t firstQuery = int32_t(bh * p.seqQ + int64_t(i) * kTileRows);
        for (int h = 0; h < Traits::kHalves; ++h)
          ptx::loadTile2d(qTile(c) + h * kHalfBytes, &qMap, h * 64, firstQuery, &b.qFull);
      }
      q.advance(1);
      if (row < 0) break;
      for (int n = ahead; n < count; ++n) issueKv(n);
    }
    return;
  }

  // ---------------- consumers ----------------
  ptx::claimRegisters<Traits::kConsumerRegisters>();
  const int c = warpgroup - 1;
  const int t = threadIdx.x % 128;  // thread in the warpgroup
  Barriers& b = barriers[c];
  unsigned char* sQ = qTile(c);
  const uint32_t qAddress = ptx::sharedAddress(sQ);
  PipelineState q, kv;
  for (;;) {
    ptx::wait(&b.qFull, q.fullParity());
    const int32_t row = *reinterpret_cast<volatile int32_t*>(&b.row);
    if (row < 0) break;
    const int32_t bh = row / p.qBlocks, i = row % p.qBlocks;
    Elem* out = static_cast<Elem*>(p.out) + (int64_t(bh) * p.seqQ + int64_t(i) * kTileRows) * D;
    const int count = p.kvCounts != nullptr ? p.kvCounts[row] : p.kvBlocks;

    if (count == 0) {  // no kept key block: the row's output is zero
      for (int chunk = t; chunk < kTileBytes / 16; chunk += 128)
        reinterpret_cast<uint4*>(out)[chunk] = make_uint4(0u, 0u, 0u, 0u);
    } else {
      float o[D / 2];  // this thread's O fragment: o[i] = O[accumulatorCell(t, i)] (layout.h)
#pragma unroll
      for (int r = 0; r < D / 2; ++r) o[r] = 0.f;
      float rowMax[2] = {-INFINITY, -INFINITY};  // m of this thread's two rows (16w + g, + 8), log2 units
      float rowSum[2] = {0.f, 0.f};              // this thread's share of l (quad-reduced at the end)

      for (int n = 0; n < count; ++n) {
        // S = Q K^T
        float s[32];
        ptx::wait(&b.kFull[kv.stage], kv.fullParity());
        const uint32_t kAddress = ptx::sharedAddress(kTile(c, kv.stage));
        ptx::fenceRegisters(s);
        ptx::wgmmaFence();
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk)
          ptx::mmaSharedShared64<Elem>(s, kMajorDescriptor(qAddress, kk), kMajorDescriptor(kAddress, kk),
                                       kk > 0 ? 1u : 0u);
        ptx::wgmmaCommit();
        ptx::wgmmaWait<0>();
        ptx::fenceRegisters(s);
        ptx::arrive(&b.kEmpty[kv.stage]);

        // x = S scale log2(e); m' = max(m, max_key x); alpha = 2^(m - m'); P = 2^(x - m');
        // l = alpha l + sum_key P; O = alpha O.  half h: row 16w + g + 8h, s[4j + 2h], s[4j + 2h + 1]
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          float mNew = rowMax[half];
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            s[4 * j + 2 * half] *= p.scaleLog2;
            s[4 * j + 2 * half + 1] *= p.scaleLog2;
            mNew = fmaxf(mNew, fmaxf(s[4 * j + 2 * half], s[4 * j + 2 * half + 1]));
          }
          mNew = fmaxf(mNew, __shfl_xor_sync(0xffffffffu, mNew, 1));  // a quad shares a row
          mNew = fmaxf(mNew, __shfl_xor_sync(0xffffffffu, mNew, 2));
          const float alpha = ptx::exp2Approx(rowMax[half] - mNew);  // 0 on the first tile (m = -inf)
          rowMax[half] = mNew;
          float sum = 0.f;
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            s[4 * j + 2 * half] = ptx::exp2Approx(s[4 * j + 2 * half] - mNew);
            s[4 * j + 2 * half + 1] = ptx::exp2Approx(s[4 * j + 2 * half + 1] - mNew);
            sum += s[4 * j + 2 * half] + s[4 * j + 2 * half + 1];
          }
          rowSum[half] = alpha * rowSum[half] + sum;
#pragma unroll
          for (int j = 0; j < D / 8; ++j) {
            o[4 * j + 2 * half] *= alpha;
            o[4 * j + 2 * half + 1] *= alpha;
          }
        }
        // P as the A operand of key step kk, straight from the S accumulator (layout.h pSourceIndex)
        uint32_t a[4][4];
#pragma unroll
        for (int kk = 0; kk < 4; ++kk)
#pragma unroll
          for (int r = 0; r < 4; ++r)
            a[kk][r] = cuda::ptx::packPair<Elem>(s[pSourceIndex(kk, r, 0)], s[pSourceIndex(kk, r, 1)]);

        // O += P V
        ptx::wait(&b.vFull[kv.stage], kv.fullParity());
        const uint32_t vAddress = ptx::sharedAddress(vTile(c, kv.stage));
        ptx::fenceRegisters(o);
        ptx::wgmmaFence();
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) {
          if constexpr (D == 128) ptx::mmaRegisterShared128<Elem>(o, a[kk], mnMajorDescriptor(vAddress, kk), 1u);
          else ptx::mmaRegisterShared64<Elem>(o, a[kk], mnMajorDescriptor(vAddress, kk), 1u);
        }
        ptx::wgmmaCommit();
        ptx::wgmmaWait<0>();
        ptx::fenceRegisters(o);
        ptx::arrive(&b.vEmpty[kv.stage]);
        kv.advance(S);
      }

      // out = O / l (l summed over the quad), staged in the Q slot (every warp's S products are
      // complete: the barrier below) in the swizzled layout, then 16-byte stores of whole rows
      float inverse[2];
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        float l = rowSum[half];
        l += __shfl_xor_sync(0xffffffffu, l, 1);
        l += __shfl_xor_sync(0xffffffffu, l, 2);
        inverse[half] = l > 0.f ? 1.f / l : 0.f;
      }
      ptx::namedBarrier(1 + c, 128);
#pragma unroll
      for (int i = 0; i < D / 2; i += 2) {  // elements i, i + 1: one row, two adjacent columns
        const Cell cell = accumulatorCell(t, i);
        const float scale = inverse[(i % 4) / 2];
        *reinterpret_cast<uint32_t*>(sQ + tileElementOffset(cell.row, cell.col)) =
            cuda::ptx::packPair<Elem>(o[i] * scale, o[i + 1] * scale);
      }
      ptx::namedBarrier(1 + c, 128);
#pragma unroll
      for (int it = 0; it < kTileBytes / 16 / 128; ++it) {
        const int chunk = t + it * 128;
        const uint32_t r = chunk / (D / 8), col = (chunk % (D / 8)) * 8;
        *reinterpret_cast<uint4*>(out + int64_t(r) * D + col) =
            *reinterpret_cast<const uint4*>(sQ + tileElementOffset(r, col));
      }
    }
    ptx::fenceProxyAsync();  // our reads/writes of the Q slot come before the next row's TMA into it
    ptx::arrive(&b.qEmpty);
    q.advance(1);
  }
#endif  // __CUDA_ARCH_FEAT_SM90_ALL
}

template <typename Elem, int kHeadDim>
Status launchHopperAttention(const AttentionKernelParams& p, const RowSchedule& schedule, cudaStream_t stream) {
  using Traits = HopperAttentionTraits<Elem, kHeadDim>;
  if (p.rows == 0) return Status{};
  const int64_t heads = p.rows / p.qBlocks;  // B*H
  const int64_t queryRows = heads * p.seqQ, keyRows = heads * p.seqKv;
  // TMA coordinates and tickets are int32 (tickets overshoot rows by at most one per producer)
  if (p.rows > (int64_t(1) << 30) || queryRows > 0x7fffffffLL || keyRows > 0x7fffffffLL)
    return invalidValue("the Hopper kernel addresses at most 2^31 query or key rows, got " + std::to_string(queryRows) +
                        " and " + std::to_string(keyRows));
  const CUtensorMapDataType type =
      std::is_same<Elem, __half>::value ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  CUtensorMap qMap, kMap, vMap;
  Status status = encodeRowTileMap(&qMap, p.q, type, uint64_t(queryRows), kHeadDim);
  if (status.ok()) status = encodeRowTileMap(&kMap, p.k, type, uint64_t(keyRows), kHeadDim);
  if (status.ok()) status = encodeRowTileMap(&vMap, p.v, type, uint64_t(keyRows), kHeadDim);
  if (!status.ok()) return status;

  const void* kernel = reinterpret_cast<const void*>(&hopperAttentionKernel<Traits>);
  status = allowSharedMemory(kernel, Traits::kSharedBytes, "hopperAttentionKernel");
  if (!status.ok()) return status;
  int device = 0, multiprocessors = 0;
  NABLA_CUDA_TRY(cudaGetDevice(&device));
  NABLA_CUDA_TRY(cudaDeviceGetAttribute(&multiprocessors, cudaDevAttrMultiProcessorCount, device));
  const int64_t wanted = (p.rows + Traits::kConsumers - 1) / Traits::kConsumers;  // rows in flight per CTA
  const unsigned grid = unsigned(std::max<int64_t>(1, std::min<int64_t>(multiprocessors, wanted)));
  hopperAttentionKernel<Traits>
      <<<grid, Traits::kThreads, Traits::kSharedBytes, stream>>>(p, qMap, kMap, vMap, schedule);
  return launched("hopperAttentionKernel");
}

}  // namespace hopper
}  // namespace cuda
}  // namespace nabla
