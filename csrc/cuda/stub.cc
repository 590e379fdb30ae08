// The CUDA backend of a build without CUDA (NABLA_CUDA=OFF, no nvcc found, or the node-gyp
// fallback): compiled instead of every .cu in this folder. Reports itself absent; every op fails
// with the same explanatory status.
#include "cuda_backend.h"

namespace nabla {
namespace cuda {
namespace {

Status notCompiled(const char* op) {
  Status status;
  status.code = kNotCompiled;
  status.name = "cudaNotCompiled";
  status.message = std::string(op) +
                   ": this build of nabla-attention has no CUDA backend (it was compiled without a CUDA "
                   "compiler); reinstall from source with nvcc on PATH (NABLA_CUDA=ON) to use GPUs";
  return status;
}

}  // namespace

bool compiledIn() { return false; }
std::string archList() { return std::string(); }
int runtimeVersion() { return 0; }

Status devices(std::vector<DeviceInfo>* out) {
  out->clear();
  return notCompiled("devices");
}

Status allocate(int, size_t, void** ptr) {
  *ptr = nullptr;
  return notCompiled("allocate");
}
Status release(int, void*) { return notCompiled("release"); }
Status memoryUsage(int, MemoryUsage* usage) {
  *usage = MemoryUsage{};
  return notCompiled("deviceMemory");
}
Status trimMemory(int) { return notCompiled("trimDeviceMemory"); }
BodyTime bodyTime(bool) { return BodyTime{}; }
Status copyToDevice(int, void*, const void*, size_t) { return notCompiled("copyToDevice"); }
Status copyToHost(int, void*, const void*, size_t) { return notCompiled("copyToHost"); }
Status fill(int, void*, int, size_t) { return notCompiled("fill"); }

Status pointerInfo(int, uintptr_t, PointerInfo* info) {
  *info = PointerInfo{};
  return notCompiled("pointerInfo");
}
Status deviceStream(int, uintptr_t* stream) {
  *stream = 0;
  return notCompiled("deviceStream");
}
Status streamDevice(int, uintptr_t, int* owner) {
  *owner = -1;
  return notCompiled("streamDevice");
}
Status waitForStream(int, uintptr_t) { return notCompiled("waitForExternal"); }
Status waitForEvent(int, uintptr_t) { return notCompiled("waitForExternal"); }
Status recordEvent(int, uintptr_t* event) {
  *event = 0;
  return notCompiled("recordEvent");
}
Status destroyEvent(int, uintptr_t) { return notCompiled("destroyEvent"); }

Status blockPool(int, const void*, DType, int64_t, int64_t, int64_t, float*, const TileLayout&, PoolKernel,
                 PoolKernel*) {
  return notCompiled("blockPool");
}

Status nablaMask(int, const MaskParams&, const void*, const void*, DType, int32_t*, int32_t*, float*, MaskKernel,
                 MaskKernel*) {
  return notCompiled("nablaMask");
}

Status attention(int, const AttentionParams&, const void*, const void*, const void*, DType, void*, AttentionKernel,
                 AttentionKernel*) {
  return notCompiled("attention");
}

}  // namespace cuda
}  // namespace nabla
