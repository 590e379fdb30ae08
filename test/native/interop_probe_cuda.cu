// The CUDA half of the test-only probe addon (see interop_probe.h): the runtime calls and the
// slow kernel that stand in for "another library's GPU code in the process".
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "interop_probe.h"

namespace probe {
namespace {

std::string failed(cudaError_t error, const char* call) {
  if (error == cudaSuccess) return "";
  cudaGetLastError();
  return std::string(call) + " failed: " + cudaGetErrorString(error);
}

template <typename T>
T as(uint64_t handle) {
  return reinterpret_cast<T>(uintptr_t(handle));
}

uint64_t handleOf(const void* p) { return uint64_t(uintptr_t(p)); }

// Sleeps `delayNs` of device time (the global nanosecond timer), then writes `value` to
// values[0..count): the write lands well after the host has enqueued whatever comes next.
__global__ void fillAfterDelayKernel(float* values, int64_t count, float value, uint64_t delayNs) {
  uint64_t start = 0, now = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  do {
    __nanosleep(1000);
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  } while (now - start < delayNs);
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x)
    values[i] = value;
}

}  // namespace

std::string createStream(int device, uint64_t* stream) {
  std::string error = failed(cudaSetDevice(device), "cudaSetDevice");
  if (!error.empty()) return error;
  cudaStream_t created = nullptr;
  error = failed(cudaStreamCreateWithFlags(&created, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  *stream = handleOf(created);
  return error;
}

std::string destroyStream(uint64_t stream) {
  return failed(cudaStreamDestroy(as<cudaStream_t>(stream)), "cudaStreamDestroy");
}

std::string deviceMalloc(int device, uint64_t bytes, uint64_t* pointer) {
  std::string error = failed(cudaSetDevice(device), "cudaSetDevice");
  if (!error.empty()) return error;
  void* p = nullptr;
  error = failed(cudaMalloc(&p, size_t(bytes)), "cudaMalloc");
  *pointer = handleOf(p);
  return error;
}

std::string deviceFree(uint64_t pointer) { return failed(cudaFree(as<void*>(pointer)), "cudaFree"); }

std::string hostMalloc(uint64_t bytes, uint64_t* pointer) {
  void* p = nullptr;
  const std::string error = failed(cudaMallocHost(&p, size_t(bytes)), "cudaMallocHost");
  *pointer = handleOf(p);
  return error;
}

std::string hostFree(uint64_t pointer) { return failed(cudaFreeHost(as<void*>(pointer)), "cudaFreeHost"); }

std::string fillAfterDelay(int device, uint64_t stream, uint64_t values, int64_t count, float value, uint64_t delayNs) {
  const std::string error = failed(cudaSetDevice(device), "cudaSetDevice");
  if (!error.empty()) return error;
  fillAfterDelayKernel<<<8, 256, 0, as<cudaStream_t>(stream)>>>(as<float*>(values), count, value, delayNs);
  return failed(cudaGetLastError(), "fillAfterDelayKernel launch");
}

std::string recordEvent(uint64_t stream, uint64_t* event) {
  cudaEvent_t created = nullptr;
  std::string error = failed(cudaEventCreateWithFlags(&created, cudaEventDisableTiming), "cudaEventCreateWithFlags");
  if (!error.empty()) return error;
  error = failed(cudaEventRecord(created, as<cudaStream_t>(stream)), "cudaEventRecord");
  if (!error.empty()) {
    cudaEventDestroy(created);
    cudaGetLastError();
    return error;
  }
  *event = handleOf(created);
  return "";
}

std::string destroyEvent(uint64_t event) {
  return failed(cudaEventDestroy(as<cudaEvent_t>(event)), "cudaEventDestroy");
}

std::string waitEvent(uint64_t stream, uint64_t event) {
  return failed(cudaStreamWaitEvent(as<cudaStream_t>(stream), as<cudaEvent_t>(event), 0), "cudaStreamWaitEvent");
}

std::string copy(int device, uint64_t stream, uint64_t dst, uint64_t src, uint64_t bytes) {
  const std::string error = failed(cudaSetDevice(device), "cudaSetDevice");
  if (!error.empty()) return error;
  return failed(cudaMemcpyAsync(as<void*>(dst), as<const void*>(src), size_t(bytes), cudaMemcpyDeviceToDevice,
                                as<cudaStream_t>(stream)),
                "cudaMemcpyAsync");
}

std::string synchronize(uint64_t stream) {
  return failed(cudaStreamSynchronize(as<cudaStream_t>(stream)), "cudaStreamSynchronize");
}

std::string currentDevice(int* device) { return failed(cudaGetDevice(device), "cudaGetDevice"); }

}  // namespace probe
