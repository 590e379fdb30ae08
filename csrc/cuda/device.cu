// Devices, streams, memory and error translation: everything in cuda_backend.h that is not a kernel.
#include <cuda.h>  // driver types only: driver calls go through the runtime's entry points

#include <atomic>
#include <cstdint>
#include <map>
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

namespace {

// The pool keeps memory freed back to it instead of returning it to the device at each stream
// synchronization (the default threshold is 0): the next call's outputs and scratch reuse it.
// trimMemory() gives it back.
constexpr uint64_t kReleaseThreshold = UINT64_MAX;

// A pool of its own per device (not the device's default pool, which other libraries in the
// process may configure and draw from) so that deviceMemory() reports this package's memory only.
Status createPool(int device, cudaMemPool_t* pool) {
  *pool = nullptr;
  int supported = 0;
  NABLA_CUDA_TRY(cudaDeviceGetAttribute(&supported, cudaDevAttrMemoryPoolsSupported, device));
  if (!supported) return Status{};
  cudaMemPoolProps props{};
  props.allocType = cudaMemAllocationTypePinned;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = device;
  NABLA_CUDA_TRY(cudaMemPoolCreate(pool, &props));
  uint64_t threshold = kReleaseThreshold;
  NABLA_CUDA_TRY(cudaMemPoolSetAttribute(*pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  return Status{};
}

}  // namespace

namespace {

// A driver API function, looked up through the runtime so that nothing links libcuda; null where
// the driver or the runtime (before 12.0) cannot give it.
void* driverFunction(const char* symbol) {
#if CUDART_VERSION >= 12000
  void* function = nullptr;
  cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
#if CUDART_VERSION >= 12050
  const cudaError_t error = cudaGetDriverEntryPointByVersion(symbol, &function, 12000, cudaEnableDefault, &found);
#else
  const cudaError_t error = cudaGetDriverEntryPoint(symbol, &function, cudaEnableDefault, &found);
#endif
  if (error == cudaSuccess && found == cudaDriverEntryPointSuccess) return function;
  cudaGetLastError();
#else
  (void)symbol;
#endif
  return nullptr;
}

// Whether the device's primary context is active; true where the driver cannot say.
bool primaryContextActive(int device) {
  using DeviceGet = CUresult (*)(CUdevice*, int);
  using PrimaryContextState = CUresult (*)(CUdevice, unsigned int*, int*);
  static const DeviceGet deviceGet = reinterpret_cast<DeviceGet>(driverFunction("cuDeviceGet"));
  static const PrimaryContextState contextState =
      reinterpret_cast<PrimaryContextState>(driverFunction("cuDevicePrimaryCtxGetState"));
  CUdevice handle = 0;
  unsigned int flags = 0;
  int active = 0;
  if (deviceGet == nullptr || contextState == nullptr || deviceGet(&handle, device) != CUDA_SUCCESS ||
      contextState(handle, &flags, &active) != CUDA_SUCCESS)
    return true;
  return active != 0;
}

}  // namespace

DeviceRestore::DeviceRestore() {
  if (cudaGetDevice(&previous_) != cudaSuccess) {
    cudaGetLastError();
    previous_ = -1;
  }
}

DeviceRestore::~DeviceRestore() {
  if (previous_ < 0) return;
  int current = -1;
  const cudaError_t error = cudaGetDevice(&current);
  if (error == cudaSuccess && current == previous_) return;
  // a failure here must not leave the error state set for the thread's next CUDA call
  if (error != cudaSuccess) {
    cudaGetLastError();
    return;
  }
  if (primaryContextActive(previous_) && cudaSetDevice(previous_) != cudaSuccess) cudaGetLastError();
}

Status enterDevice(int device, DeviceQueue* queue) {
  // One stream and one pool per device for the life of the process (never destroyed: destroying
  // them during static destruction can race the driver's own teardown).
  static std::mutex mutex;
  static std::vector<DeviceQueue> queues;

  NABLA_CUDA_TRY(cudaSetDevice(device));
  std::lock_guard<std::mutex> lock(mutex);
  if (size_t(device) >= queues.size()) queues.resize(size_t(device) + 1);
  DeviceQueue& entry = queues[size_t(device)];
  if (entry.stream == nullptr) {
    cudaMemPool_t pool = nullptr;
    Status status = createPool(device, &pool);
    if (!status.ok()) return status;
    cudaStream_t created = nullptr;
    NABLA_CUDA_TRY(cudaStreamCreateWithFlags(&created, cudaStreamNonBlocking));
    entry.pool = pool;
    entry.stream = created;
  }
  *queue = entry;
  return Status{};
}

Status streamAllocate(const DeviceQueue& queue, size_t bytes, void** ptr) {
  *ptr = nullptr;
  if (queue.pool == nullptr) {
    NABLA_CUDA_TRY(cudaMalloc(ptr, bytes));
    return Status{};
  }
  cudaError_t error = cudaMallocFromPoolAsync(ptr, bytes, queue.pool, queue.stream);
  if (error == cudaErrorMemoryAllocation) {
    // Memory freed on the stream but not yet released can be neither reused out of order nor
    // trimmed: wait for it, give unused memory back to the device, and ask once more.
    cudaGetLastError();
    NABLA_CUDA_TRY(cudaStreamSynchronize(queue.stream));
    NABLA_CUDA_TRY(cudaMemPoolTrimTo(queue.pool, 0));
    error = cudaMallocFromPoolAsync(ptr, bytes, queue.pool, queue.stream);
  }
  if (error != cudaSuccess) {
    cudaGetLastError();
    *ptr = nullptr;
    return statusOf(error, "cudaMallocFromPoolAsync(" + std::to_string(bytes) + " bytes)");
  }
  return Status{};
}

Status streamRelease(const DeviceQueue& queue, void* ptr) {
  if (ptr == nullptr) return Status{};
  if (queue.pool == nullptr) {
    // Without a pool, cudaFree itself waits for the device; drain our stream first all the same.
    NABLA_CUDA_TRY(cudaStreamSynchronize(queue.stream));
    NABLA_CUDA_TRY(cudaFree(ptr));
    return Status{};
  }
  NABLA_CUDA_TRY(cudaFreeAsync(ptr, queue.stream));
  return Status{};
}

namespace {
std::atomic<bool> bodyTiming{false};
std::mutex bodyTimeMutex;
double bodyTimeMs = 0;
uint64_t bodyCount = 0;
}  // namespace

BodyTimer::BodyTimer(cudaStream_t stream) : stream_(stream) {
  if (!bodyTiming.load(std::memory_order_relaxed)) return;
  if (cudaEventCreate(&start_) != cudaSuccess || cudaEventCreate(&end_) != cudaSuccess ||
      cudaEventRecord(start_, stream_) != cudaSuccess) {
    cudaGetLastError();  // timing is best effort: the op runs untimed
    if (start_) cudaEventDestroy(start_);
    if (end_) cudaEventDestroy(end_);
    start_ = end_ = nullptr;
  }
}

BodyTimer::~BodyTimer() {
  if (start_) cudaEventDestroy(start_);
  if (end_) cudaEventDestroy(end_);
}

void BodyTimer::stop() {
  if (end_ && cudaEventRecord(end_, stream_) != cudaSuccess) {
    cudaGetLastError();
    cudaEventDestroy(end_);
    end_ = nullptr;
  }
}

void BodyTimer::account() {
  float ms = 0;
  if (!start_ || !end_) return;
  if (cudaEventElapsedTime(&ms, start_, end_) != cudaSuccess) {
    cudaGetLastError();
    return;
  }
  std::lock_guard<std::mutex> lock(bodyTimeMutex);
  bodyTimeMs += double(ms);
  ++bodyCount;
}

BodyTime bodyTime(bool enable) {
  bodyTiming.store(enable);
  std::lock_guard<std::mutex> lock(bodyTimeMutex);
  BodyTime total{bodyTimeMs, bodyCount};
  bodyTimeMs = 0;
  bodyCount = 0;
  return total;
}

// The limit only ever rises, per (device, kernel), under one lock: concurrent ops on libuv threads
// would otherwise lower it between another op's setting and its launch (A sets 110 KB, B sets 60 KB,
// A's launch fails).
Status allowSharedMemory(const void* kernel, size_t bytes, const char* kernelName) {
  constexpr size_t kDefaultLimit = 48 * 1024;
  if (bytes <= kDefaultLimit) return Status{};
  int device = 0, optIn = 0;
  NABLA_CUDA_TRY(cudaGetDevice(&device));
  NABLA_CUDA_TRY(cudaDeviceGetAttribute(&optIn, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  if (bytes > size_t(optIn))
    return invalidValue(std::string(kernelName) + " needs " + std::to_string(bytes) +
                        " bytes of shared memory per block for these shapes but device " + std::to_string(device) +
                        " allows at most " + std::to_string(optIn));
  static std::mutex mutex;
  static std::map<std::pair<int, const void*>, size_t> allowed;  // the limit set so far
  std::lock_guard<std::mutex> lock(mutex);
  size_t& limit = allowed[{device, kernel}];
  if (bytes <= limit) return Status{};
  NABLA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  limit = bytes;
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
  return enqueueOnDevice(device, "allocate", [&](const DeviceQueue& queue) -> Status {
    if (bytes == 0) return Status{};
    return streamAllocate(queue, bytes, ptr);
  });
}

Status release(int device, void* ptr) {
  return enqueueOnDevice(device, "release", [&](const DeviceQueue& queue) { return streamRelease(queue, ptr); });
}

// Where the device has no pool there is nothing to report or trim.
static Status needPool(const DeviceQueue& queue, int device) {
  if (queue.pool != nullptr) return Status{};
  Status status = statusOf(cudaErrorNotSupported, "cudaDevAttrMemoryPoolsSupported");
  status.message = "device " + std::to_string(device) +
                   " has no stream-ordered memory pool (allocations use cudaMalloc), so there is no pool to report";
  return status;
}

Status memoryUsage(int device, MemoryUsage* usage) {
  *usage = MemoryUsage{};
  return enqueueOnDevice(device, "deviceMemory", [&](const DeviceQueue& queue) -> Status {
    Status status = needPool(queue, device);
    if (!status.ok()) return status;
    uint64_t used = 0, reserved = 0;
    NABLA_CUDA_TRY(cudaMemPoolGetAttribute(queue.pool, cudaMemPoolAttrUsedMemCurrent, &used));
    NABLA_CUDA_TRY(cudaMemPoolGetAttribute(queue.pool, cudaMemPoolAttrReservedMemCurrent, &reserved));
    usage->inUse = used;
    usage->reserved = reserved;
    return Status{};
  });
}

Status trimMemory(int device) {
  return enqueueOnDevice(device, "trimDeviceMemory", [&](const DeviceQueue& queue) -> Status {
    Status status = needPool(queue, device);
    if (!status.ok()) return status;
    // Frees still pending on the stream hold their memory until they complete: wait for them so
    // that everything not in use goes back to the device.
    NABLA_CUDA_TRY(cudaStreamSynchronize(queue.stream));
    NABLA_CUDA_TRY(cudaMemPoolTrimTo(queue.pool, 0));
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
