// Devices, streams, memory and error translation: everything in cuda_backend.h that is not a kernel.
#include <mutex>
#include <string>
#include <vector>

#include "common.cuh"

#ifndef NABLA_CUDA_ARCHS
#define NABLA_CUDA_ARCHS ""
#endif

namespace nabla {
namespace cuda {

Status statusOf(cudaError_t error, const std::string& call) {
  Status status;
  if (error == cudaSuccess) return status;
  status.code = int(error);
  status.name = cudaGetErrorName(error);
  status.message = call + " failed: " + cudaGetErrorString(error);
  return status;
}

Status invalidValue(const std::string& message) {
  Status status;
  status.code = int(cudaErrorInvalidValue);
  status.name = cudaGetErrorName(cudaErrorInvalidValue);
  status.message = message;
  return status;
}

Status enterDevice(int device, cudaStream_t* stream) {
  // One stream per device for the life of the process (never destroyed: destroying streams during
  // static destruction can race the driver's own teardown).
  static std::mutex mutex;
  static std::vector<cudaStream_t> streams;

  NABLA_CUDA_TRY(cudaSetDevice(device));
  std::lock_guard<std::mutex> lock(mutex);
  if (size_t(device) >= streams.size()) streams.resize(size_t(device) + 1, nullptr);
  if (streams[size_t(device)] == nullptr) {
    cudaStream_t created = nullptr;
    NABLA_CUDA_TRY(cudaStreamCreateWithFlags(&created, cudaStreamNonBlocking));
    streams[size_t(device)] = created;
  }
  *stream = streams[size_t(device)];
  return Status{};
}

Status allowSharedMemory(const void* kernel, size_t bytes, const char* kernelName) {
  constexpr size_t kDefaultLimit = 48 * 1024;
  if (bytes <= kDefaultLimit) return Status{};
  int device = 0, optIn = 0;
  NABLA_CUDA_TRY(cudaGetDevice(&device));
  NABLA_CUDA_TRY(cudaDeviceGetAttribute(&optIn, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  if (bytes > size_t(optIn))
    return invalidValue(std::string(kernelName) + " needs " + std::to_string(bytes) +
                        " bytes of shared memory per block for these shapes but device " +
                        std::to_string(device) + " allows at most " + std::to_string(optIn));
  NABLA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  return Status{};
}

bool compiledIn() { return true; }

// CMakeLists.txt passes the list space-separated (a ';' cannot survive
// target_compile_definitions); report it ';'-separated like CMAKE_CUDA_ARCHITECTURES.
std::string archList() {
  std::string archs = NABLA_CUDA_ARCHS;
  for (char& c : archs)
    if (c == ' ') c = ';';
  return archs;
}

int runtimeVersion() { return CUDART_VERSION; }

Status devices(std::vector<DeviceInfo>* out) {
  out->clear();
  int count = 0;
  cudaError_t error = cudaGetDeviceCount(&count);
  if (error == cudaSuccess && count == 0) error = cudaErrorNoDevice;
  if (error != cudaSuccess) {
    cudaGetLastError();
    Status status = statusOf(error, "cudaGetDeviceCount");
    status.message = "devices: " + status.message;
    return status;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    error = cudaGetDeviceProperties(&prop, i);
    if (error != cudaSuccess) {
      cudaGetLastError();
      out->clear();
      Status status = statusOf(error, "cudaGetDeviceProperties(" + std::to_string(i) + ")");
      status.message = "devices: " + status.message;
      return status;
    }
    DeviceInfo info;
    info.index = i;
    info.name = prop.name;
    info.major = prop.major;
    info.minor = prop.minor;
    info.memoryBytes = prop.totalGlobalMem;
    out->push_back(info);
  }
  return Status{};
}

Status allocate(int device, size_t bytes, void** ptr) {
  *ptr = nullptr;
  return onDevice(device, "allocate", [&](cudaStream_t, Scratch&) -> Status {
    if (bytes == 0) return Status{};
    NABLA_CUDA_TRY(cudaMalloc(ptr, bytes));
    return Status{};
  });
}

Status release(int device, void* ptr) {
  return onDevice(device, "release", [&](cudaStream_t, Scratch&) -> Status {
    if (ptr != nullptr) NABLA_CUDA_TRY(cudaFree(ptr));
    return Status{};
  });
}

Status copyToDevice(int device, void* dst, const void* hostSrc, size_t bytes) {
  return onDevice(device, "copyToDevice", [&](cudaStream_t stream, Scratch&) -> Status {
    if (bytes > 0) NABLA_CUDA_TRY(cudaMemcpyAsync(dst, hostSrc, bytes, cudaMemcpyHostToDevice, stream));
    return Status{};
  });
}

Status copyToHost(int device, void* hostDst, const void* src, size_t bytes) {
  return onDevice(device, "copyToHost", [&](cudaStream_t stream, Scratch&) -> Status {
    if (bytes > 0) NABLA_CUDA_TRY(cudaMemcpyAsync(hostDst, src, bytes, cudaMemcpyDeviceToHost, stream));
    return Status{};
  });
}

Status fill(int device, void* dst, int byteValue, size_t bytes) {
  return onDevice(device, "fill", [&](cudaStream_t stream, Scratch&) -> Status {
    if (bytes > 0) NABLA_CUDA_TRY(cudaMemsetAsync(dst, byteValue, bytes, stream));
    return Status{};
  });
}

}  // namespace cuda
}  // namespace nabla
