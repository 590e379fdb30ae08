// Test-only addon (nabla_interop_probe.node, built beside the package's addon by CUDA builds):
// stands in for "another library's GPU code in the process" in test/cuda-interop.test.ts.
// It owns a stream, memory and events of its own and enqueues slow work, so that the tests can
// tell whether the package's stream really waits for it (and it for the package's stream).
#include <cuda_runtime.h>
#include <napi.h>

#include <cstdint>
#include <string>

namespace {

void check(Napi::Env env, cudaError_t error, const char* call) {
  if (error != cudaSuccess) {
    cudaGetLastError();
    throw Napi::Error::New(env, std::string(call) + " failed: " + cudaGetErrorString(error));
  }
}

uint64_t handleOf(const Napi::Value& v) {
  bool lossless = false;
  return v.As<Napi::BigInt>().Uint64Value(&lossless);
}

template <typename T>
T asHandle(const Napi::Value& v) {
  return reinterpret_cast<T>(uintptr_t(handleOf(v)));
}

Napi::Value bigintOf(Napi::Env env, const void* p) { return Napi::BigInt::New(env, uint64_t(uintptr_t(p))); }

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

// createStream(device) -> bigint
Napi::Value CreateStream(const Napi::CallbackInfo& info) {
  check(info.Env(), cudaSetDevice(info[0].As<Napi::Number>().Int32Value()), "cudaSetDevice");
  cudaStream_t stream = nullptr;
  check(info.Env(), cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  return bigintOf(info.Env(), stream);
}

Napi::Value DestroyStream(const Napi::CallbackInfo& info) {
  check(info.Env(), cudaStreamDestroy(asHandle<cudaStream_t>(info[0])), "cudaStreamDestroy");
  return info.Env().Undefined();
}

// malloc(device, bytes) -> bigint (cudaMalloc: memory of the probe, not of the package's pool)
Napi::Value Malloc(const Napi::CallbackInfo& info) {
  check(info.Env(), cudaSetDevice(info[0].As<Napi::Number>().Int32Value()), "cudaSetDevice");
  void* p = nullptr;
  check(info.Env(), cudaMalloc(&p, size_t(info[1].As<Napi::Number>().Int64Value())), "cudaMalloc");
  return bigintOf(info.Env(), p);
}

Napi::Value Free(const Napi::CallbackInfo& info) {
  check(info.Env(), cudaFree(asHandle<void*>(info[0])), "cudaFree");
  return info.Env().Undefined();
}

// mallocHost(bytes) -> bigint: page-locked host memory
Napi::Value MallocHost(const Napi::CallbackInfo& info) {
  void* p = nullptr;
  check(info.Env(), cudaMallocHost(&p, size_t(info[0].As<Napi::Number>().Int64Value())), "cudaMallocHost");
  return bigintOf(info.Env(), p);
}

Napi::Value FreeHost(const Napi::CallbackInfo& info) {
  check(info.Env(), cudaFreeHost(asHandle<void*>(info[0])), "cudaFreeHost");
  return info.Env().Undefined();
}

// fillAfterDelay(stream, pointer, count, value, delayMs): enqueues only; returns at once.
Napi::Value FillAfterDelay(const Napi::CallbackInfo& info) {
  auto stream = asHandle<cudaStream_t>(info[0]);
  auto* values = asHandle<float*>(info[1]);
  const int64_t count = info[2].As<Napi::Number>().Int64Value();
  const float value = info[3].As<Napi::Number>().FloatValue();
  const uint64_t delayNs = uint64_t(info[4].As<Napi::Number>().DoubleValue() * 1e6);
  fillAfterDelayKernel<<<8, 256, 0, stream>>>(values, count, value, delayNs);
  check(info.Env(), cudaGetLastError(), "fillAfterDelayKernel launch");
  return info.Env().Undefined();
}

// recordEvent(stream) -> bigint: an event of the probe's, recorded on its stream
Napi::Value RecordEvent(const Napi::CallbackInfo& info) {
  cudaEvent_t event = nullptr;
  check(info.Env(), cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "cudaEventCreateWithFlags");
  check(info.Env(), cudaEventRecord(event, asHandle<cudaStream_t>(info[0])), "cudaEventRecord");
  return bigintOf(info.Env(), event);
}

Napi::Value DestroyEvent(const Napi::CallbackInfo& info) {
  check(info.Env(), cudaEventDestroy(asHandle<cudaEvent_t>(info[0])), "cudaEventDestroy");
  return info.Env().Undefined();
}

// waitEvent(stream, event): the probe's stream waits for an event (the package's DeviceEvent)
Napi::Value WaitEvent(const Napi::CallbackInfo& info) {
  check(info.Env(), cudaStreamWaitEvent(asHandle<cudaStream_t>(info[0]), asHandle<cudaEvent_t>(info[1]), 0),
        "cudaStreamWaitEvent");
  return info.Env().Undefined();
}

// copy(stream, dst, src, bytes): device to device, enqueued on the stream
Napi::Value Copy(const Napi::CallbackInfo& info) {
  check(info.Env(),
        cudaMemcpyAsync(asHandle<void*>(info[1]), asHandle<const void*>(info[2]),
                        size_t(info[3].As<Napi::Number>().Int64Value()), cudaMemcpyDeviceToDevice,
                        asHandle<cudaStream_t>(info[0])),
        "cudaMemcpyAsync");
  return info.Env().Undefined();
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  check(info.Env(), cudaStreamSynchronize(asHandle<cudaStream_t>(info[0])), "cudaStreamSynchronize");
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("createStream", Napi::Function::New<CreateStream>(env));
  exports.Set("destroyStream", Napi::Function::New<DestroyStream>(env));
  exports.Set("malloc", Napi::Function::New<Malloc>(env));
  exports.Set("free", Napi::Function::New<Free>(env));
  exports.Set("mallocHost", Napi::Function::New<MallocHost>(env));
  exports.Set("freeHost", Napi::Function::New<FreeHost>(env));
  exports.Set("fillAfterDelay", Napi::Function::New<FillAfterDelay>(env));
  exports.Set("recordEvent", Napi::Function::New<RecordEvent>(env));
  exports.Set("destroyEvent", Napi::Function::New<DestroyEvent>(env));
  exports.Set("waitEvent", Napi::Function::New<WaitEvent>(env));
  exports.Set("copy", Napi::Function::New<Copy>(env));
  exports.Set("synchronize", Napi::Function::New<Synchronize>(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(nabla_interop_probe, Init)
