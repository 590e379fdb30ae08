// attention(): picks the kernel (fast where it applies, else simple; Hopper and fast2 only when asked
// for) and its instance. No kernel code here; the fast and Hopper instances are compiled in kernels/, the
// simple kernel in attention_simple.cu.
#include <cmath>

#include "attention_params.cuh"
#include "hopper/hopper_attention.h"

namespace nabla {
namespace cuda {
namespace {

bool aligned16(const void* pointer) { return reinterpret_cast<uintptr_t>(pointer) % 16 == 0; }

// Empty when the fast kernel applies, else why not. The fast2 kernel takes the same inputs.
std::string fastKernelMismatch(const AttentionParams& p, const AttentionKernelParams& kp, DType dtype) {
  if (dtype != DType::Float16 && dtype != DType::BFloat16)
    return std::string("it takes float16 or bfloat16, not ") + dtypeName(dtype);
  if (p.headDim != p.valueDim)
    return "it needs headDim == valueDim (got " + std::to_string(p.headDim) + " and " + std::to_string(p.valueDim) +
           ")";
  if (p.headDim != 64 && p.headDim != 128)
    return "it is built for head dims 64 and 128, not " + std::to_string(p.headDim);
  if (!aligned16(kp.q) || !aligned16(kp.k) || !aligned16(kp.v) || !aligned16(kp.out))
    return "it needs q, k, v and out to start on 16-byte boundaries";
  return std::string();
}

template <typename Elem>
Status launchFastForHeadDim(const AttentionKernelParams& p, cudaStream_t stream) {
  return p.headDim == 64 ? launchFastAttention<Elem, 64>(p, stream) : launchFastAttention<Elem, 128>(p, stream);
}

template <typename Elem>
Status launchFast2ForHeadDim(const AttentionKernelParams& p, cudaStream_t stream) {
  return p.headDim == 64 ? launchFast2Attention<Elem, 64>(p, stream) : launchFast2Attention<Elem, 128>(p, stream);
}

// Empty when the Hopper kernel can run here, else why not.
std::string hopperKernelMismatch(const AttentionParams& p, const AttentionKernelParams& kp, DType dtype) {
  const std::string fast = fastKernelMismatch(p, kp, dtype);
  if (!fast.empty()) return fast;
  // its TMA tiles are 64 whole tokens: edge tiles of a ragged grid are not
  if (p.layout.ragged())
    return "it needs blocks of 64 tokens, not the ragged token grid " + std::to_string(p.layout.t) + "x" +
           std::to_string(p.layout.ht) + "x" + std::to_string(p.layout.wt) +
           " (its rows and columns must be multiples of " + std::to_string(kTileSide) + ")";
  if (!hopper::compiledForSm90a())
    return std::string("this binary has no sm_90a code (built for ") + NABLA_CUDA_ARCHS +
           "; add 90a-real to NABLA_CUDA_ARCHS)";
  int device = 0, major = 0, minor = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess)
    return "the device's compute capability could not be read";
  if (major != 9 || minor != 0)
    return "it runs on compute capability 9.0 (Hopper) only, not " + std::to_string(major) + "." +
           std::to_string(minor);
  return std::string();
}

// Rows head by head, longest-first inside a head (hopper/row_order.h), ordered on the device from
// the device counts: the call makes one allocation (ticket + order) and no host round trip. Dense
// rows are all equally long and run in index order (no order array).
Status launchHopper(const AttentionKernelParams& kp, DType dtype, cudaStream_t stream, Scratch& scratch) {
  const bool sparse = kp.kvCounts != nullptr;
  int32_t* schedule = nullptr;  // [0] the ticket counter, then (sparse) the row order
  Status status = scratch.allocate(size_t(1 + (sparse ? kp.rows : 0)), &schedule);
  if (!status.ok()) return status;
  NABLA_CUDA_TRY(cudaMemsetAsync(schedule, 0, sizeof(int32_t), stream));
  const hopper::RowSchedule rowSchedule{sparse ? schedule + 1 : nullptr, schedule};
  if (sparse) {
    status = hopper::launchLongestFirstOrder(kp.kvCounts, kp.rows, kp.qBlocks, schedule + 1, stream);
    if (!status.ok()) return status;
  }
  const bool half = dtype == DType::Float16;
  if (kp.headDim == 64)
    return half ? hopper::launchHopperAttention<__half, 64>(kp, rowSchedule, stream)
                : hopper::launchHopperAttention<__nv_bfloat16, 64>(kp, rowSchedule, stream);
  return half ? hopper::launchHopperAttention<__half, 128>(kp, rowSchedule, stream)
              : hopper::launchHopperAttention<__nv_bfloat16, 128>(kp, rowSchedule, stream);
}

}  // namespace

Status attention(int device, const AttentionParams& p, const void* q, const void* k, const void* v, DType dtype,
                 void* out, AttentionKernel kernel, AttentionKernel* ran) {
  return onDevice(device, "attention", [&](cudaStream_t stream, Scratch& scratch) -> Status {
    AttentionKernelParams kp{};
    kp.q = q;
    kp.k = k;
    kp.v = v;
    kp.out = out;
    kp.kvCounts = p.kvCounts;
    kp.kvIndices = p.kvCounts != nullptr ? p.kvIndices : nullptr;
    const int64_t nq = p.layout.blocks(p.seqQ), nk = p.layout.blocks(p.seqKv);
    kp.rows = p.batch * p.heads * nq;
    kp.seqQ = p.seqQ;
    kp.seqKv = p.seqKv;
    kp.qBlocks = int32_t(nq);
    kp.kvBlocks = int32_t(nk);
    kp.layout = p.layout;
    kp.headDim = int32_t(p.headDim);
    kp.valueDim = int32_t(p.valueDim);
    kp.scale = p.scale;
    kp.scaleLog2 = float(double(p.scale) * 1.4426950408889634);  // log2(e)

    // Auto takes the first kernel in order of preference that applies; a named kernel must apply.
    // The Hopper kernel is opt-in until a GPU run has verified it: 'auto' never picks it.
    if (kernel == AttentionKernel::Hopper) {
      const std::string why = hopperKernelMismatch(p, kp, dtype);
      if (!why.empty())
        return invalidValue("the hopper attention kernel does not apply: " + why +
                            "; use the fast, simple or auto kernel for these inputs");
      *ran = AttentionKernel::Hopper;
      if (kp.rows == 0) return Status{};
      return launchHopper(kp, dtype, stream, scratch);
    }
    // The fast2 kernel is opt-in ('auto' never picks it): on an H200 it was within 1-4% of the fast one.
    // Both mma.sync kernels take the same inputs (fastKernelMismatch).
    const std::string mismatch = fastKernelMismatch(p, kp, dtype);
    const bool named = kernel == AttentionKernel::Fast || kernel == AttentionKernel::Fast2;
    if (named && !mismatch.empty())
      return invalidValue(std::string("the ") + (kernel == AttentionKernel::Fast2 ? "fast2" : "fast") +
                          " attention kernel does not apply: " + mismatch +
                          "; use the simple kernel (or auto) for these inputs");
    *ran = kernel == AttentionKernel::Simple || !mismatch.empty() ? AttentionKernel::Simple
           : kernel == AttentionKernel::Fast2                     ? AttentionKernel::Fast2
                                                                  : AttentionKernel::Fast;
    if (kp.rows == 0) return Status{};
    switch (*ran) {
      case AttentionKernel::Fast:
        return dtype == DType::Float16 ? launchFastForHeadDim<__half>(kp, stream)
                                       : launchFastForHeadDim<__nv_bfloat16>(kp, stream);
      case AttentionKernel::Fast2:
        return dtype == DType::Float16 ? launchFast2ForHeadDim<__half>(kp, stream)
                                       : launchFast2ForHeadDim<__nv_bfloat16>(kp, stream);
      default: return launchSimpleAttention(kp, dtype, stream);
    }
  });
}

}  // namespace cuda
}  // namespace nabla
