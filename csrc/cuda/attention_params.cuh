// What the attention kernels receive (the flash-attention "params struct") and the launchers that
// attention.cu dispatches to. Kernel bodies live in attention_simple.cu and attention_fast.cuh; each
// fast (element type x head dim) instance is compiled in its own file under kernels/.
#pragma once

#include "common.cuh"

namespace nabla {
namespace cuda {

struct AttentionKernelParams {
  const void* q;             // [B*H, seqQ, headDim]
  const void* k;             // [B*H, seqKv, headDim]
  const void* v;             // [B*H, seqKv, valueDim]
  void* out;                 // [B*H, seqQ, valueDim]
  const int32_t* kvCounts;   // [B*H*nq] kept key blocks per row, or null = dense
  const int32_t* kvIndices;  // [B*H*nq, nk] kept ids first
  int64_t rows;              // B*H*nq: one row = one query block of one head
  int64_t seqQ, seqKv;
  int32_t qBlocks, kvBlocks;  // nq, nk
  TileLayout layout;          // block b = tokens [blockStart(b), + blockLength(b)): 64b and 64 without a grid
  int32_t headDim, valueDim;
  float scale;      // softmax(scale * q.k)
  float scaleLog2;  // scale * log2(e): the fast kernel uses exp2
};

// Scalar kernel: every dtype, head dims 1..256, valueDim != headDim allowed.
Status launchSimpleAttention(const AttentionKernelParams& p, DType dtype, cudaStream_t stream);

// Tensor-core kernel for Elem in {__half, __nv_bfloat16}, headDim == valueDim == kHeadDim in {64, 128};
// q, k, v, out 16-byte aligned. Explicitly instantiated in kernels/attention_fast_*.cu. A ragged
// layout runs the kernel's predicated instance; every other layout the unpredicated one.
template <typename Elem, int kHeadDim>
Status launchFastAttention(const AttentionKernelParams& p, cudaStream_t stream);

// The same inputs, 2x2 warp grid (attention_fast2.cuh); kernels/attention_fast2_*.cu. Opt-in.
template <typename Elem, int kHeadDim>
Status launchFast2Attention(const AttentionKernelParams& p, cudaStream_t stream);

}  // namespace cuda
}  // namespace nabla
