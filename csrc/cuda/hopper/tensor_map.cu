// Host side of TMA: encodes tensor maps with the driver's cuTensorMapEncodeTiled, reached through
// the runtime's versioned entry-point query so the addon never links against libcuda.
#include <cstring>
#include <mutex>

#include "hopper_attention.h"
#include "layout.h"

namespace nabla {
namespace cuda {
namespace hopper {
namespace {

using EncodeTiled = decltype(&cuTensorMapEncodeTiled);

// The driver function, looked up once (12000: the ABI of CUDA 12.0, when the call appeared).
Status encodeTiledFunction(EncodeTiled* out) {
  static std::once_flag once;
  static EncodeTiled function = nullptr;
  static Status lookup;
  std::call_once(once, [] {
    void* pointer = nullptr;
    cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
    lookup =
        statusOf(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &pointer, 12000, cudaEnableDefault, &found),
                 "cudaGetDriverEntryPointByVersion(cuTensorMapEncodeTiled)");
    if (lookup.ok() && (found != cudaDriverEntryPointSuccess || pointer == nullptr))
      lookup =
          invalidValue("the CUDA driver has no cuTensorMapEncodeTiled (a driver for CUDA 12.0 or newer is needed)");
    if (lookup.ok()) function = reinterpret_cast<EncodeTiled>(pointer);
  });
  *out = function;
  return lookup;
}

}  // namespace

bool compiledForSm90a() {
#if defined(NABLA_CUDA_ARCHS)
  return std::strstr(NABLA_CUDA_ARCHS, "90a") != nullptr;
#else
  return false;
#endif
}

Status encodeRowTileMap(CUtensorMap* map, const void* base, CUtensorMapDataType type, uint64_t rows, uint32_t headDim) {
  EncodeTiled encode = nullptr;
  const Status found = encodeTiledFunction(&encode);
  if (!found.ok()) return found;
  const cuuint64_t dims[2] = {headDim, rows};                   // innermost first
  const cuuint64_t strides[1] = {cuuint64_t(headDim) * 2};      // bytes from one row to the next
  const cuuint32_t box[2] = {kSwizzleRowBytes / 2, kTileRows};  // 64 elements x 64 rows = one tile half
  const cuuint32_t elementStrides[2] = {1, 1};
  const CUresult result =
      encode(map, type, 2, const_cast<void*>(base), dims, strides, box, elementStrides, CU_TENSOR_MAP_INTERLEAVE_NONE,
             CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (result != CUDA_SUCCESS)
    return invalidValue("cuTensorMapEncodeTiled failed with CUresult " + std::to_string(int(result)) + " (rows " +
                        std::to_string(rows) + ", head dim " + std::to_string(headDim) + ")");
  return Status{};
}

}  // namespace hopper
}  // namespace cuda
}  // namespace nabla
