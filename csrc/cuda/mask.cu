// The NABLA mask (docs/nabla.md 1): pool q and k, then compute every row's P = softmax_j(qa_i . ka_j /
// sqrt(D)), select the kept key blocks (CDF or topk), OR in the STA window, AND the document and
// frame-causal masks, and write kvCounts / kvIndices directly. Blocks are the layout's: 64 tokens
// without a token grid, the (possibly smaller edge) 8x8 tiles of the grid with one. Three kernels with the same
// semantics (the per-row part, selectRowIn in mask_common.cuh, is literally shared):
//   fast2  (mask_fast2.cuh): 16 rows per CTA, each row's keys in registers during the selection, q
//          and k pooled in one launch of the vectorised pooling kernel (pool_vector.cuh; the
//          per-block kernel where that does not apply). Same bits as fast. The default where it
//          applies: head dim a multiple of 4, rows of at most 1280 key blocks, 16 rows of logits in
//          the device's shared memory (H200, 720p: 2.0 ms against the fast kernel's 2.7; bench/RESULTS.md).
//   fast   (mask_fast.cuh): one CTA per (b, h, group of 8 query blocks); ka is staged through shared
//          memory once per group and each warp then selects one row on its own. The default where
//          fast2 does not apply.
//   simple (mask_simple.cuh): one CTA per row. Runs where neither applies (head dim not a multiple
//          of 4, or 8 rows of logits do not fit the device's shared memory), or when the caller asks
//          for it (MaskKernel::Simple, from the op's maskKernel option).
#include "mask_fast.cuh"
#include "mask_fast2.cuh"
#include "mask_simple.cuh"
#include "pool.cuh"

namespace nabla {
namespace cuda {

using mask::MaskKernelParams;

namespace {

// The kernel a call runs, its launch shape, or why the requested kernel cannot run.
struct Launch {
  MaskKernel kernel = MaskKernel::Simple;
  const void* function = nullptr;
  const char* name = "";        // for launch errors
  const char* sharedNeed = "";  // for shared-memory errors
  size_t sharedBytes = 0;
  int rowsPerCta = 1;
  std::string error;
};

// What the fast2 kernel needs that rows of nk key blocks of head dim headDim on a device with optIn
// bytes of shared memory per block lack, named ("" where it runs them). Shared memory is named only
// for rows that fit the registers: longer rows are refused whatever the device.
std::string fast2Unmet(int64_t nk, int64_t headDim, size_t optIn) {
  std::string unmet;
  const auto need = [&unmet](bool met, const auto& what) {  // what() is formatted only when unmet
    if (!met) unmet += (unmet.empty() ? "" : " and ") + what();
  };
  need(mask::fast2HeadDimFits(headDim),
       [&] { return "a head dim that is a multiple of 4 (got " + std::to_string(headDim) + ")"; });
  need(mask::fast2RowFits(nk), [&] {
    return "at most " + std::to_string(mask::kFast2MaxKeyBlocks) + " key blocks (got " + std::to_string(nk) + ")";
  });
  if (mask::fast2RowFits(nk)) {
    const size_t bytes = mask::fast2MaskSharedBytes(nk, headDim);
    need(bytes <= optIn, [&] {
      return std::to_string(bytes) + " bytes of shared memory per block (this device has " + std::to_string(optIn) +
             ") for rows of " + std::to_string(nk) + " key blocks";
    });
  }
  return unmet;
}

// auto: the fast2 kernel where it applies and fits, else the fast one where it does, else the
// simple one; fast and fast2: that kernel or an error; simple: the simple kernel.
Launch chooseLaunch(MaskKernel choice, int64_t nk, int64_t headDim, size_t optIn) {
  Launch l;
  const std::string unmet =
      choice == MaskKernel::Fast2 || choice == MaskKernel::Auto ? fast2Unmet(nk, headDim, optIn) : "";
  if (choice == MaskKernel::Fast2 || (choice == MaskKernel::Auto && unmet.empty())) {
    if (!unmet.empty())
      l.error = "the fast2 mask kernel does not apply: it needs " + unmet +
                "; use the fast or simple kernel (or auto) for these inputs";
    l.kernel = MaskKernel::Fast2;
    l.function = reinterpret_cast<const void*>(&mask::fast2MaskKernel);
    l.name = l.sharedNeed = "fast2MaskKernel";
    l.sharedBytes = mask::fast2MaskSharedBytes(nk, headDim);
    l.rowsPerCta = mask::kFast2Rows;
    return l;
  }
  const size_t fastBytes = mask::fastMaskSharedBytes(nk, headDim);
  const bool fastFits = mask::fastMaskApplies(headDim) && fastBytes <= optIn;
  if (choice == MaskKernel::Fast && !fastFits)
    l.error = "the fast mask kernel does not apply: it needs a head dim that is a multiple of 4 and " +
              std::to_string(fastBytes) + " bytes of shared memory per block (this device has " +
              std::to_string(optIn) + "); use the simple kernel (or auto) for these inputs";
  if (choice != MaskKernel::Simple && fastFits) {
    l.kernel = MaskKernel::Fast;
    l.function = reinterpret_cast<const void*>(&mask::fastMaskKernel);
    l.name = l.sharedNeed = "fastMaskKernel";
    l.sharedBytes = fastBytes;
    l.rowsPerCta = mask::kFastRows;
    return l;
  }
  l.function = reinterpret_cast<const void*>(&mask::simpleMaskKernel);
  l.name = "simpleMaskKernel";
  l.sharedNeed = "simpleMaskKernel (4 bytes per key block)";
  l.sharedBytes = mask::simpleMaskSharedBytes(nk, headDim);
  return l;
}

}  // namespace

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

    int optIn = 0;
    NABLA_CUDA_TRY(cudaDeviceGetAttribute(&optIn, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    const Launch launch = chooseLaunch(kernelChoice, nk, p.headDim, size_t(optIn));
    if (!launch.error.empty()) return invalidValue(launch.error);
    // CTAs: no more than rows, which was checked to fit one grid above
    const int64_t ctas =
        launch.rowsPerCta == 1 ? rows : batchHeads * ((nq + launch.rowsPerCta - 1) / launch.rowsPerCta);
    *ran = launch.kernel;
    Status status = allowSharedMemory(launch.function, launch.sharedBytes, launch.sharedNeed);
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
    if (launch.kernel == MaskKernel::Fast2 && vectorPoolApplies(q, qPooled, p.headDim) &&
        vectorPoolApplies(k, kPooled, p.headDim)) {
      status = enqueueVectorPool(q, batchHeads, p.seqQ, qPooled, k, batchHeads, p.seqKv, kPooled, dtype, p.headDim,
                                 p.layout, stream);
      if (!status.ok()) return status;
    } else {
      if (!(status = enqueueBlockPool(q, dtype, batchHeads, p.seqQ, p.headDim, p.layout, qPooled, stream)).ok())
        return status;
      if (!(status = enqueueBlockPool(k, dtype, batchHeads, p.seqKv, p.headDim, p.layout, kPooled, stream)).ok())
        return status;
    }

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
    switch (launch.kernel) {
      case MaskKernel::Fast2:
        mask::fast2MaskKernel<<<unsigned(ctas), mask::kFast2Threads, launch.sharedBytes, stream>>>(kp);
        break;
      case MaskKernel::Fast:
        mask::fastMaskKernel<<<unsigned(ctas), mask::kFastThreads, launch.sharedBytes, stream>>>(kp);
        break;
      default: mask::simpleMaskKernel<<<unsigned(ctas), mask::kSimpleThreads, launch.sharedBytes, stream>>>(kp);
    }
    return launched(launch.name);
  });
}

}  // namespace cuda
}  // namespace nabla
