// attention(): picks the kernel (fast where it applies, else simple) and its instance. No kernel
// code here; the fast instances are compiled in kernels/, the simple kernel in attention_simple.cu.
#include <cmath>

#include "attention_params.cuh"

namespace nabla {
namespace cuda {
namespace {

bool aligned16(const void* pointer) { return reinterpret_cast<uintptr_t>(pointer) % 16 == 0; }

// Empty when the fast kernel applies, else why not.
std::string fastKernelMismatch(const AttentionParams& p, const AttentionKernelParams& kp, DType dtype) {
  if (dtype != DType::Float16 && dtype != DType::BFloat16)
    return std::string("it takes float16 or bfloat16, not ") + dtypeName(dtype);
  if (p.headDim != p.valueDim)
    return "it needs headDim == valueDim (got " + std::to_string(p.headDim) + " and " + std::to_string(p.valueDim) + ")";
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

}  // namespace

Status attention(int device, const AttentionParams& p, const void* q, const void* k, const void* v, DType dtype,
                 void* out, AttentionKernel kernel, AttentionKernel* ran) {
  return onDevice(device, "attention", [&](cudaStream_t stream, Scratch&) -> Status {
    AttentionKernelParams kp{};
    kp.q = q;
    kp.k = k;
    kp.v = v;
    kp.out = out;
    kp.kvCounts = p.kvCounts;
    kp.kvIndices = p.kvCounts != nullptr ? p.kvIndices : nullptr;
    kp.rows = p.batch * p.heads * p.qBlocks();
    kp.seqQ = p.seqQ;
    kp.seqKv = p.seqKv;
    kp.qBlocks = int32_t(p.qBlocks());
    kp.kvBlocks = int32_t(p.kvBlocks());
    kp.headDim = int32_t(p.headDim);
    kp.valueDim = int32_t(p.valueDim);
    kp.scale = p.scale;
    kp.scaleLog2 = float(double(p.scale) * 1.4426950408889634);  // log2(e)

    // Auto takes the first kernel in order of preference that applies; a named kernel must apply.
    const std::string mismatch = fastKernelMismatch(p, kp, dtype);
    if (kernel == AttentionKernel::Fast && !mismatch.empty())
      return invalidValue("the fast attention kernel does not apply: " + mismatch +
                          "; use the simple kernel (or auto) for these inputs");
    *ran = kernel == AttentionKernel::Simple || !mismatch.empty() ? AttentionKernel::Simple : AttentionKernel::Fast;
    if (kp.rows == 0) return Status{};
    switch (*ran) {
      case AttentionKernel::Fast:
        return dtype == DType::Float16 ? launchFastForHeadDim<__half>(kp, stream)
                                       : launchFastForHeadDim<__nv_bfloat16>(kp, stream);
      default:
        return launchSimpleAttention(kp, dtype, stream);
    }
  });
}

}  // namespace cuda
}  // namespace nabla
