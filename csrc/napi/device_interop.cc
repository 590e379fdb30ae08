#include "device_interop.h"

#include <cstdio>
#include <vector>

#include "../cuda/cuda_backend.h"
#include "cuda_stage.h"
#include "device_buffer.h"
#include "errors.h"

namespace nabla {
namespace napi {
namespace {

// Marks DeviceEvent objects (see kDeviceBufferTag in device_buffer.cc for why a type tag).
constexpr napi_type_tag kDeviceEventTag = {0x6e61626c61657665ULL, 0x6e74303130303031ULL};

// Hex digits of a BigInt's magnitude (words least significant first), without leading zeros.
std::string hexOf(const std::vector<uint64_t>& words) {
  std::string text;
  char digits[17];
  for (size_t i = words.size(); i-- > 0;) {
    if (text.empty()) {
      if (words[i] == 0 && i > 0) continue;
      std::snprintf(digits, sizeof digits, "%llx", static_cast<unsigned long long>(words[i]));
    } else {
      std::snprintf(digits, sizeof digits, "%016llx", static_cast<unsigned long long>(words[i]));
    }
    text += digits;
  }
  return text.empty() ? "0" : text;
}

Napi::Value bigintOf(Napi::Env env, uint64_t value) { return Napi::BigInt::New(env, value); }

}  // namespace

std::string addressText(uint64_t address) { return "0x" + hexOf({address}); }

uint64_t readAddress(Napi::Env env, const Napi::Value& v, const std::string& param, const std::string& what,
                     uint64_t min) {
  if (!v.IsBigInt()) throwTypeError(env, param, what + " as a bigint", v);
  size_t count = 0;
  int sign = 0;
  // the first call (sign and words null) asks for the word count only
  checkNapi(env, napi_get_value_bigint_words(env, v, nullptr, &count, nullptr), "napi_get_value_bigint_words");
  std::vector<uint64_t> words(count ? count : 1, 0);
  checkNapi(env, napi_get_value_bigint_words(env, v, &sign, &count, words.data()), "napi_get_value_bigint_words");
  words.resize(count ? count : 1);
  bool fits = sign == 0;
  for (size_t i = 1; i < words.size(); ++i) fits = fits && words[i] == 0;
  const uint64_t value = words[0];
  if (!fits || value < min) {
    const bool negative = sign != 0 && (words.size() > 1 || words[0] != 0);
    throwRangeError(env, param, what + " in [" + std::to_string(min) + ", 2^64)",
                    std::string(negative ? "-" : "") + "0x" + hexOf(words));
  }
  return value;
}

Napi::Function DeviceEvent::Define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "DeviceEvent", {});
  ctor.Get("prototype")
      .As<Napi::Object>()
      .DefineProperties({
          prototypeMethod<&DeviceEvent::Dispose>(env, "dispose"),
          Napi::PropertyDescriptor::Accessor<&DeviceEvent::GetHandle>("handle"),
          Napi::PropertyDescriptor::Accessor<&DeviceEvent::GetDevice>("device"),
          Napi::PropertyDescriptor::Accessor<&DeviceEvent::GetDisposed>("disposed"),
      });
  return ctor;
}

DeviceEvent::DeviceEvent(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceEvent>(info) {
  Napi::Env env = info.Env();
  device_ = readDeviceIndex(env, info[0]);
  uintptr_t event = 0;
  checkCudaHere(env, cuda::recordEvent(device_, &event));
  event_ = event;
  checkNapi(env, napi_type_tag_object(env, info.This(), &kDeviceEventTag), "napi_type_tag_object");
}

// cudaEventDestroy of an event still pending returns at once; the runtime frees it when it completes.
void DeviceEvent::destroy() {
  if (event_ != 0) cuda::destroyEvent(device_, uintptr_t(event_));
  event_ = 0;
}

DeviceEvent::~DeviceEvent() { destroy(); }

DeviceEvent* DeviceEvent::self(const Napi::CallbackInfo& info) {
  if (!hasTypeTag(info.Env(), info.This(), kDeviceEventTag))
    throwTypeError(info.Env(), "this", "a DeviceEvent", info.This());
  return Unwrap(info.This().As<Napi::Object>());
}

Napi::Value DeviceEvent::GetHandle(const Napi::CallbackInfo& info) {
  DeviceEvent* e = self(info);
  if (e->event_ == 0)
    throw Napi::TypeError::New(info.Env(), "Expected a live device event for event but received a disposed one");
  return bigintOf(info.Env(), e->event_);
}
Napi::Value DeviceEvent::GetDevice(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), self(info)->device_);
}
Napi::Value DeviceEvent::GetDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), self(info)->event_ == 0);
}

Napi::Value DeviceEvent::Dispose(const Napi::CallbackInfo& info) {
  self(info)->destroy();
  return info.Env().Undefined();
}

Napi::Value DeviceStream(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int device = readDeviceIndex(env, info[0]);
  uintptr_t stream = 0;
  checkCudaHere(env, cuda::deviceStream(device, &stream));
  return bigintOf(env, stream);
}

Napi::Value WaitForExternal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int device = readDeviceIndex(env, info[0]);
  const bool hasStream = !info[1].IsUndefined(), hasEvent = !info[2].IsUndefined();
  if (hasStream == hasEvent)
    throw Napi::TypeError::New(env, std::string("Expected exactly one of stream and event for after but received ") +
                                        (hasStream ? "both" : "neither"));
  if (hasEvent) {
    const uint64_t event = readAddress(env, info[2], "event", "a cudaEvent_t handle", 1);
    checkCudaHere(env, cuda::waitForEvent(device, uintptr_t(event)));
    return env.Undefined();
  }
  const uint64_t stream = readAddress(env, info[1], "stream", "a cudaStream_t handle", 0);
  int owner = -1;
  checkCudaHere(env, cuda::streamDevice(device, uintptr_t(stream), &owner));
  if (owner >= 0 && owner != device)
    throwRangeError(env, "stream", "a stream of cuda:" + std::to_string(device),
                    "a stream of cuda:" + std::to_string(owner));
  checkCudaHere(env, cuda::waitForStream(device, uintptr_t(stream)));
  return env.Undefined();
}

}  // namespace napi
}  // namespace nabla
