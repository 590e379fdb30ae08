// The NABLA mask (docs/nabla.md 1): pool q and k, then compute every row's P = softmax_j(qa_i . ka_j /
// sqrt(D)), select the kept key blocks (CDF or topk), OR in the STA window, AND the document and
// frame-causal masks, and write kvCounts / kvIndices directly. Blocks are the layout's: 64 tokens
// without a token grid, the (possibly smaller edge) 8x8 tiles of the grid with one. Two kernels with the same semantics
// (the per-row part, selectRow in mask_common.cuh, is literally shared):
//   fast   (mask_fast.cuh): one CTA per (b, h, group of 8 query blocks); ka is staged through shared
//          memory once per group and each warp then selects one row on its own. The default.
//   simple (mask_simple.cuh): one CTA per row. Runs where the fast one does not apply (head dim not
//          a multiple of 4, or 8 rows of logits do not fit the device's shared memory), or when the
//          caller asks for it (MaskKernel::Simple, from the op's maskKernel option).
#include "mask_fast.cuh"
#include "mask_simple.cuh"
#include "pool.cuh"

namespace nabla {
namespace cuda {

using mask::MaskKernelParams;

Status nablaMask(int device, const MaskParams& p, const void* q, const void* k, DType dtype, int32_t* kvCounts,
                 int32_t* kvIndices, float* map, MaskKernel kernelChoice, MaskKernel* ran) {
  return onDevice(device, "nablaMask", [&](cudaStream_t stream, Scratch& scratch) -> Status {
    const int64_t batchHeads = p.batch * p.heads, nq = p.layout.blocks(p.seqQ), nk = p.layout.blocks(p.seqKv);
    const int64_t rows = batchHeads * nq;
    if (rows == 0) return Status{};
    if (nk == 0) {  // nothing to keep
      NABLA_CUDA_TRY(cudaMemsetAsync(kvCounts, 0, size_t(rows) * sizeof(int32_t), stream));
      return Status{};
    }
    if (p.blockDoc != nullptr && nq != nk)
      return invalidValue("documents need as many query blocks as key blocks (got " + std::to_string(nq) + " and " +
                          std::to_string(nk) + ")");
    if (p.causal && (p.layout.t == 0 || nq != nk))
      return invalidValue("causal masks need a token grid and as many query blocks as key blocks (got " +
                          std::to_string(nq) + " and " + std::to_string(nk) + ")");
    if (p.sta && (nq != nk || nq != p.grid.blocks()))
      return invalidValue("STA needs query blocks == key blocks == grid blocks (got " + std::to_string(nq) + ", " +
                          std::to_string(nk) + ", " + std::to_string(p.grid.blocks()) + ")");
    if (rows > int64_t(0x7fffffff)) return invalidValue("too many mask rows for one grid: " + std::to_string(rows));

    // the fast kernel where it applies and fits, else the simple one
    int optIn = 0;
    NABLA_CUDA_TRY(cudaDeviceGetAttribute(&optIn, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    // batchHeads * groups fast CTAs: no more than rows, which was checked to fit one grid above
    const int64_t groups = (nq + mask::kFastRows - 1) / mask::kFastRows;
    const size_t fastBytes = mask::fastMaskSharedBytes(nk, p.headDim);
    const bool fastFits = mask::fastMaskApplies(p.headDim) && fastBytes <= size_t(optIn);
    if (kernelChoice == MaskKernel::Fast && !fastFits)
      return invalidValue("the fast mask kernel does not apply: it needs a head dim that is a multiple of 4 and " +
                          std::to_string(fastBytes) + " bytes of shared memory per block (this device has " +
                          std::to_string(optIn) + "); use the simple kernel (or auto) for these inputs");
    const bool fast = kernelChoice != MaskKernel::Simple && fastFits;
    *ran = fast ? MaskKernel::Fast : MaskKernel::Simple;
    const void* kernel = fast ? reinterpret_cast<const void*>(&mask::fastMaskKernel)
                              : reinterpret_cast<const void*>(&mask::simpleMaskKernel);
    const size_t sharedBytes = fast ? fastBytes : mask::simpleMaskSharedBytes(nk, p.headDim);
    Status status =
        allowSharedMemory(kernel, sharedBytes, fast ? "fastMaskKernel" : "simpleMaskKernel (4 bytes per key block)");
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
      NABLA_CUDA_TRY(
          cudaMemcpyAsync(blockDoc, p.blockDoc, size_t(nq) * sizeof(int32_t), cudaMemcpyHostToDevice, stream));
    }
    if (!(status = enqueueBlockPool(q, dtype, batchHeads, p.seqQ, p.headDim, p.layout, qPooled, stream)).ok())
      return status;
    if (!(status = enqueueBlockPool(k, dtype, batchHeads, p.seqKv, p.headDim, p.layout, kPooled, stream)).ok())
      return status;

    MaskKernelParams kp{};
    kp.qPooled = qPooled;
    kp.kPooled = kPooled;
    kp.blockDoc = blockDoc;
    kp.framePlane = p.causal ? int32_t(nk / p.layout.t) : 0;  // nk = T * tilesH * tilesW
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
    if (fast) {
      mask::fastMaskKernel<<<unsigned(batchHeads * groups), mask::kFastThreads, sharedBytes, stream>>>(kp);
      return launched("fastMaskKernel");
    }
    mask::simpleMaskKernel<<<unsigned(rows), mask::kSimpleThreads, sharedBytes, stream>>>(kp);
    return launched("simpleMaskKernel");
  });
}

}  // namespace cuda
}  // namespace nabla
