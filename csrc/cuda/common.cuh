// Shared by every .cu of the CUDA backend: runtime errors as Status, the per-device stream and
// memory pool, the op runner (set device -> enqueue -> synchronize -> translate errors -> give the
// thread its device back) and scratch allocations that are freed in stream order when the op ends.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cuda_backend.h"

namespace nabla {
namespace cuda {

// Status of a runtime call: ok for cudaSuccess, else {code, cudaGetErrorName, "<call> failed: <why>"}.
Status statusOf(cudaError_t error, const std::string& call);

// cudaErrorInvalidValue with our own explanation (an op that does not apply to its arguments).
Status invalidValue(const std::string& message);

// What every op on a device enqueues on: the device's own non-blocking stream and this package's
// memory pool there (null where the device has no stream-ordered allocator: then cudaMalloc/cudaFree).
struct DeviceQueue {
  cudaStream_t stream = nullptr;
  cudaMemPool_t pool = nullptr;
};

// Gives the calling thread back its current device when the scope ends. Calls run on the JS thread
// (sync ops, interop calls, the garbage collector's finalisers), where other addons' CUDA code
// expects the current device it set to survive a call into this package. Declared before
// enterDevice switches devices; a thread already on the op's device pays two cudaGetDevice calls.
// A previous device whose primary context is not active is the runtime's default (device 0 on a
// thread that never chose one), not a choice: switching back would create that context (memory on
// a GPU the process does not use), so the thread stays on the op's device then.
class DeviceRestore {
 public:
  DeviceRestore();
  ~DeviceRestore();
  DeviceRestore(const DeviceRestore&) = delete;
  DeviceRestore& operator=(const DeviceRestore&) = delete;

 private:
  int previous_ = -1;  // -1: unknown, nothing to restore
};

// cudaSetDevice(device) and the device's queue (created on first use, thread-safe). Callers hold a
// DeviceRestore around it (onDevice and enqueueOnDevice do).
Status enterDevice(int device, DeviceQueue* queue);

// Memory ordered on queue.stream: usable by work enqueued after this call on that stream. Out of
// memory drains the stream, returns the pool's unused memory to the device and tries once more.
Status streamAllocate(const DeviceQueue& queue, size_t bytes, void** ptr);
// Frees after the work already enqueued on queue.stream; the pool may hand the memory out again
// only to work ordered after that (never synchronizes the device).
Status streamRelease(const DeviceQueue& queue, void* ptr);

// Returns from the enclosing function (which returns Status) when the runtime call fails.
#define NABLA_CUDA_TRY(call)                                                            \
  do {                                                                                  \
    const cudaError_t nablaError_ = (call);                                             \
    if (nablaError_ != cudaSuccess) return ::nabla::cuda::statusOf(nablaError_, #call); \
  } while (0)

// Device memory an op needs only while it runs, taken from the device's pool on the op's stream.
// The destructor frees it in stream order (after the op's kernels), on success and failure alike.
class Scratch {
 public:
  explicit Scratch(const DeviceQueue& queue) : queue_(queue) {}
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() {
    for (void* block : blocks_) streamRelease(queue_, block);
  }

  template <typename T>
  Status allocate(size_t count, T** ptr) {
    *ptr = nullptr;
    if (count == 0) return Status{};
    if (count > SIZE_MAX / sizeof(T)) return statusOf(cudaErrorMemoryAllocation, "Scratch::allocate (size overflows)");
    void* block = nullptr;
    Status status = streamAllocate(queue_, count * sizeof(T), &block);
    if (!status.ok()) return status;
    blocks_.push_back(block);
    *ptr = static_cast<T*>(block);
    return Status{};
  }

 private:
  DeviceQueue queue_;
  std::vector<void*> blocks_;
};

// Device time of op bodies, for benchmarks that subtract it from wall time (bench/overhead.js).
// Off by default: then an op records no events. When on, CUDA events bracket each op's body.
class BodyTimer {
 public:
  explicit BodyTimer(cudaStream_t stream);
  ~BodyTimer();
  BodyTimer(const BodyTimer&) = delete;
  BodyTimer& operator=(const BodyTimer&) = delete;
  void stop();
  // After the stream has drained: adds the elapsed time to the process-wide total.
  void account();

 private:
  cudaStream_t stream_;
  cudaEvent_t start_ = nullptr, end_ = nullptr;
};

// Runs body(stream, scratch) on `device`, then waits for the stream. Whatever fails, scratch memory
// is freed in stream order, the stream is drained, the (non-sticky) error state is cleared so the
// device stays usable, and the message is prefixed with the op's name.
template <typename Body>
Status onDevice(int device, const char* op, Body&& body) {
  const DeviceRestore restore;  // destroyed last: after scratch frees and the drain
  DeviceQueue queue;
  Status status = enterDevice(device, &queue);
  if (status.ok()) {
    BodyTimer timer(queue.stream);
    {
      Scratch scratch(queue);
      status = std::forward<Body>(body)(queue.stream, scratch);
      timer.stop();
    }
    const cudaError_t drained = cudaStreamSynchronize(queue.stream);
    if (status.ok() && drained != cudaSuccess) status = statusOf(drained, "cudaStreamSynchronize");
    if (status.ok()) timer.account();
  }
  if (!status.ok()) {
    cudaGetLastError();
    status.message = std::string(op) + ": " + status.message;
  }
  return status;
}

// Runs body(queue) on `device` without waiting for the stream: for calls that only enqueue or
// touch the pool. A failure clears the (non-sticky) error state and names the op.
template <typename Body>
Status enqueueOnDevice(int device, const char* op, Body&& body) {
  const DeviceRestore restore;
  DeviceQueue queue;
  Status status = enterDevice(device, &queue);
  if (status.ok()) status = std::forward<Body>(body)(queue);
  if (!status.ok()) {
    cudaGetLastError();
    status.message = std::string(op) + ": " + status.message;
  }
  return status;
}

// Status of the kernel launch just made (configuration errors surface here, faults at the sync).
inline Status launched(const char* kernel) {
  const cudaError_t error = cudaGetLastError();
  return error == cudaSuccess ? Status{} : statusOf(error, std::string("launch of ") + kernel);
}

// Dynamic shared memory above the 48 KiB default needs an opt-in per kernel; fails with a clear
// message when the device cannot give that much.
Status allowSharedMemory(const void* kernel, size_t bytes, const char* kernelName);

// ---- element access shared by the kernels (fp16/bf16 stored raw, computed in fp32) ----

__device__ __forceinline__ float toFloat(float x) { return x; }
__device__ __forceinline__ float toFloat(__half x) { return __half2float(x); }
__device__ __forceinline__ float toFloat(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T fromFloat(float x);
template <>
__device__ __forceinline__ float fromFloat<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __half fromFloat<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 fromFloat<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// Calls f(T{}) with T the device element type of dtype (float, __half or __nv_bfloat16).
template <typename F>
auto withElementType(DType dtype, F&& f) {
  switch (dtype) {
    case DType::Float16: return f(__half{});
    case DType::BFloat16: return f(__nv_bfloat16{});
    case DType::Float32: break;
  }
  return f(float{});
}

}  // namespace cuda
}  // namespace nabla
