// Interop with other CUDA code in the process: what the runtime knows of a foreign pointer or
// stream, the device's own stream as a handle, and waits across streams through events (never a
// device-wide synchronization).
#include <cstdint>

#include "common.cuh"

namespace nabla {
namespace cuda {
namespace {

cudaStream_t asStream(uintptr_t handle) { return reinterpret_cast<cudaStream_t>(handle); }
cudaEvent_t asEvent(uintptr_t handle) { return reinterpret_cast<cudaEvent_t>(handle); }

}  // namespace

Status pointerInfo(int device, uintptr_t address, PointerInfo* info) {
  *info = PointerInfo{};
  return enqueueOnDevice(device, "pointerInfo", [&](const DeviceQueue&) -> Status {
    cudaPointerAttributes attributes{};
    NABLA_CUDA_TRY(cudaPointerGetAttributes(&attributes, reinterpret_cast<const void*>(address)));
    switch (attributes.type) {
      case cudaMemoryTypeDevice: info->kind = PointerKind::Device; break;
      case cudaMemoryTypeManaged: info->kind = PointerKind::Managed; break;
      case cudaMemoryTypeHost: info->kind = PointerKind::Host; break;
      default: info->kind = PointerKind::Unregistered; break;
    }
    info->device = attributes.device;
    return Status{};
  });
}

Status deviceStream(int device, uintptr_t* stream) {
  *stream = 0;
  return enqueueOnDevice(device, "deviceStream", [&](const DeviceQueue& queue) -> Status {
    *stream = reinterpret_cast<uintptr_t>(queue.stream);
    return Status{};
  });
}

Status streamDevice(int device, uintptr_t stream, int* owner) {
  *owner = -1;
  return enqueueOnDevice(device, "streamDevice", [&](const DeviceQueue&) -> Status {
#if CUDART_VERSION >= 12080
    int found = -1;
    // an older driver cannot answer: then the device stays unknown and cudaEventRecord decides
    if (cudaStreamGetDevice(asStream(stream), &found) == cudaSuccess) *owner = found;
    else cudaGetLastError();
#endif
    return Status{};
  });
}

Status waitForStream(int device, uintptr_t stream) {
  return enqueueOnDevice(device, "waitForExternal", [&](const DeviceQueue& queue) -> Status {
    // the event marks the work enqueued on `stream` so far; destroying it right after the wait is
    // enqueued is safe (the runtime frees it once it completes)
    cudaEvent_t marker = nullptr;
    NABLA_CUDA_TRY(cudaEventCreateWithFlags(&marker, cudaEventDisableTiming));
    cudaError_t error = cudaEventRecord(marker, asStream(stream));
    const char* call = "cudaEventRecord(event, stream)";
    if (error == cudaSuccess) {
      error = cudaStreamWaitEvent(queue.stream, marker, 0);
      call = "cudaStreamWaitEvent(deviceStream, event)";
    }
    // a failed destroy must not leave the error state set for the next call to find
    if (cudaEventDestroy(marker) != cudaSuccess) cudaGetLastError();
    return statusOf(error, call);
  });
}

Status waitForEvent(int device, uintptr_t event) {
  return enqueueOnDevice(device, "waitForExternal", [&](const DeviceQueue& queue) -> Status {
    NABLA_CUDA_TRY(cudaStreamWaitEvent(queue.stream, asEvent(event), 0));
    return Status{};
  });
}

Status recordEvent(int device, uintptr_t* event) {
  *event = 0;
  return enqueueOnDevice(device, "recordEvent", [&](const DeviceQueue& queue) -> Status {
    cudaEvent_t marker = nullptr;
    NABLA_CUDA_TRY(cudaEventCreateWithFlags(&marker, cudaEventDisableTiming));
    const cudaError_t error = cudaEventRecord(marker, queue.stream);
    if (error != cudaSuccess) {
      if (cudaEventDestroy(marker) != cudaSuccess) cudaGetLastError();
      return statusOf(error, "cudaEventRecord(event, deviceStream)");
    }
    *event = reinterpret_cast<uintptr_t>(marker);
    return Status{};
  });
}

// Through enqueueOnDevice for its device guard: the event's device is current while it is
// destroyed (from a finaliser too), and the thread's own device afterwards.
Status destroyEvent(int device, uintptr_t event) {
  return enqueueOnDevice(device, "destroyEvent", [&](const DeviceQueue&) -> Status {
    NABLA_CUDA_TRY(cudaEventDestroy(asEvent(event)));
    return Status{};
  });
}

}  // namespace cuda
}  // namespace nabla
