// Interop with other CUDA code in the process: device addresses, stream and event handles as JS
// BigInts, the device's stream (deviceStream), waits on another library's stream or event
// (waitForExternal), and events other code can wait on (DeviceEvent). Wrapping another library's
// memory is DeviceBuffer's external constructor (device_buffer.h). README.md, "Interop with other
// GPU code", states the rules these implement.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace nabla {
namespace napi {

// Reads a BigInt address or handle in [min, 2^64). `what` names it in errors ("a device address").
// Throws TypeError for a value that is not a BigInt and RangeError outside the range, wording the
// value in hex as lib/interop.ts does (addressText).
uint64_t readAddress(Napi::Env env, const Napi::Value& v, const std::string& param, const std::string& what,
                     uint64_t min);
// "0x7f3a00000000": how messages write addresses and handles.
std::string addressText(uint64_t address);

// A CUDA event recorded on the device's stream, for other code to wait on (cudaStreamWaitEvent).
// new DeviceEvent(device) records it; dispose() or the finaliser destroys it.
class DeviceEvent : public Napi::ObjectWrap<DeviceEvent> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit DeviceEvent(const Napi::CallbackInfo& info);
  ~DeviceEvent() override;

 private:
  // Static, each starting with self()'s type-tag check, for the reason given in DeviceBuffer.
  static DeviceEvent* self(const Napi::CallbackInfo& info);
  static Napi::Value GetHandle(const Napi::CallbackInfo& info);
  static Napi::Value GetDevice(const Napi::CallbackInfo& info);
  static Napi::Value GetDisposed(const Napi::CallbackInfo& info);
  static Napi::Value Dispose(const Napi::CallbackInfo& info);
  void destroy();
  uint64_t event_ = 0;  // 0 once disposed
  int device_ = 0;
};

// deviceStream(device) -> BigInt: the cudaStream_t every op on the device runs on, in order.
Napi::Value DeviceStream(const Napi::CallbackInfo& info);
// waitForExternal(device, stream, event): exactly one of stream and event a BigInt, the other
// undefined. Enqueues on the device's stream a wait for the stream's work so far or the event.
Napi::Value WaitForExternal(const Napi::CallbackInfo& info);

}  // namespace napi
}  // namespace nabla
