// The CUDA half of the test-only probe addon (interop_probe_cuda.cu, compiled by nvcc), called by
// its N-API half (interop_probe.cc, compiled by the host compiler like the package's own N-API
// layer, so that napi.h never meets nvcc). Handles and addresses are integers; every function
// returns "" on success or "<call> failed: <why>", with the runtime's error state cleared.
#pragma once

#include <cstdint>
#include <string>

namespace probe {

std::string createStream(int device, uint64_t* stream);
std::string destroyStream(uint64_t stream);
// cudaMalloc on `device`: memory of the probe, not of the package's pool
std::string deviceMalloc(int device, uint64_t bytes, uint64_t* pointer);
std::string deviceFree(uint64_t pointer);
// page-locked host memory
std::string hostMalloc(uint64_t bytes, uint64_t* pointer);
std::string hostFree(uint64_t pointer);
// Enqueues on `stream` (of `device`) a kernel that sleeps delayNs of device time, then writes
// `value` to values[0..count); returns at once.
std::string fillAfterDelay(int device, uint64_t stream, uint64_t values, int64_t count, float value, uint64_t delayNs);
// an event of the probe's, recorded on its stream
std::string recordEvent(uint64_t stream, uint64_t* event);
std::string destroyEvent(uint64_t event);
// the stream waits for an event (the package's DeviceEvent)
std::string waitEvent(uint64_t stream, uint64_t event);
// device to device, enqueued on `stream` (of `device`)
std::string copy(int device, uint64_t stream, uint64_t dst, uint64_t src, uint64_t bytes);
std::string synchronize(uint64_t stream);
// the calling thread's current device (cudaGetDevice)
std::string currentDevice(int* device);

}  // namespace probe
