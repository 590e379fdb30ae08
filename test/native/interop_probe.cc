// Test-only addon (nabla_interop_probe.node, built beside the package's addon by CUDA builds):
// stands in for "another library's GPU code in the process" in test/cuda-interop.test.ts.
// It owns a stream, memory and events of its own and enqueues slow work, so that the tests can
// tell whether the package's stream really waits for it (and it for the package's stream).
// This file is its N-API half; the CUDA calls are in interop_probe_cuda.cu.
#include "interop_probe.h"

#include <napi.h>

#include <cstdint>
#include <string>

namespace {

void check(Napi::Env env, const std::string& error) {
  if (!error.empty()) throw Napi::Error::New(env, error);
}

// A handle or address: a BigInt in [0, 2^64), else an Error (a probe misused by its own tests).
uint64_t handle(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsBigInt())
    throw Napi::TypeError::New(info.Env(), "probe: argument " + std::to_string(i) + " must be a bigint");
  bool lossless = false;
  const uint64_t value = info[i].As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless)
    throw Napi::RangeError::New(info.Env(), "probe: argument " + std::to_string(i) + " is not in [0, 2^64)");
  return value;
}

double number(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), "probe: argument " + std::to_string(i) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

int device(const Napi::CallbackInfo& info, size_t i) { return int(number(info, i)); }

Napi::Value bigintOf(Napi::Env env, uint64_t value) { return Napi::BigInt::New(env, value); }

// createStream(device) -> bigint
Napi::Value CreateStream(const Napi::CallbackInfo& info) {
  uint64_t stream = 0;
  check(info.Env(), probe::createStream(device(info, 0), &stream));
  return bigintOf(info.Env(), stream);
}

Napi::Value DestroyStream(const Napi::CallbackInfo& info) {
  check(info.Env(), probe::destroyStream(handle(info, 0)));
  return info.Env().Undefined();
}

// malloc(device, bytes) -> bigint
Napi::Value Malloc(const Napi::CallbackInfo& info) {
  uint64_t pointer = 0;
  check(info.Env(), probe::deviceMalloc(device(info, 0), uint64_t(number(info, 1)), &pointer));
  return bigintOf(info.Env(), pointer);
}

Napi::Value Free(const Napi::CallbackInfo& info) {
  check(info.Env(), probe::deviceFree(handle(info, 0)));
  return info.Env().Undefined();
}

// mallocHost(bytes) -> bigint
Napi::Value MallocHost(const Napi::CallbackInfo& info) {
  uint64_t pointer = 0;
  check(info.Env(), probe::hostMalloc(uint64_t(number(info, 0)), &pointer));
  return bigintOf(info.Env(), pointer);
}

Napi::Value FreeHost(const Napi::CallbackInfo& info) {
  check(info.Env(), probe::hostFree(handle(info, 0)));
  return info.Env().Undefined();
}

// fillAfterDelay(device, stream, pointer, count, value, delayMs): enqueues only; returns at once.
Napi::Value FillAfterDelay(const Napi::CallbackInfo& info) {
  const uint64_t delayNs = uint64_t(number(info, 5) * 1e6);
  check(info.Env(), probe::fillAfterDelay(device(info, 0), handle(info, 1), handle(info, 2), int64_t(number(info, 3)),
                                          float(number(info, 4)), delayNs));
  return info.Env().Undefined();
}

// recordEvent(stream) -> bigint
Napi::Value RecordEvent(const Napi::CallbackInfo& info) {
  uint64_t event = 0;
  check(info.Env(), probe::recordEvent(handle(info, 0), &event));
  return bigintOf(info.Env(), event);
}

Napi::Value DestroyEvent(const Napi::CallbackInfo& info) {
  check(info.Env(), probe::destroyEvent(handle(info, 0)));
  return info.Env().Undefined();
}

// waitEvent(stream, event)
Napi::Value WaitEvent(const Napi::CallbackInfo& info) {
  check(info.Env(), probe::waitEvent(handle(info, 0), handle(info, 1)));
  return info.Env().Undefined();
}

// copy(device, stream, dst, src, bytes)
Napi::Value Copy(const Napi::CallbackInfo& info) {
  check(info.Env(),
        probe::copy(device(info, 0), handle(info, 1), handle(info, 2), handle(info, 3), uint64_t(number(info, 4))));
  return info.Env().Undefined();
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  check(info.Env(), probe::synchronize(handle(info, 0)));
  return info.Env().Undefined();
}

// currentDevice() -> number: the JS thread's current device
Napi::Value CurrentDevice(const Napi::CallbackInfo& info) {
  int current = -1;
  check(info.Env(), probe::currentDevice(&current));
  return Napi::Number::New(info.Env(), current);
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
  exports.Set("currentDevice", Napi::Function::New<CurrentDevice>(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(nabla_interop_probe, Init)
