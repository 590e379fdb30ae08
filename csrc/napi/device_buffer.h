// DeviceBuffer: a block of CUDA device memory owned by a JS object, taken from the device's pool in
// stream order. Freed (in stream order, without synchronizing) by dispose() or, as a safety net, by
// the garbage collector's finaliser. Ops share the memory and hold a use count:
// dispose() refuses while an op uses it, and memory whose buffer was finalised (an environment
// torn down under a pending op) is freed by the last op to let go of it.
//
// A buffer can also wrap memory that other code in the process allocated (fromDevicePointer in
// lib/device.ts): it is never freed here, and the buffer holds a reference to the JS value that
// owns it until dispose() or the finaliser (see "Interop with other GPU code" in README.md).
#pragma once

#include <napi.h>

#include <atomic>
#include <cstddef>
#include <memory>

namespace nabla {
namespace napi {

// Whether v is an object this addon tagged with `tag` (napi_type_tag_object) when it made it: the
// check every native class makes before it unwraps a value as itself.
bool hasTypeTag(Napi::Env env, const Napi::Value& v, const napi_type_tag& tag);

struct DeviceMemory {
  DeviceMemory(int device, void* data, size_t bytes, bool external = false)
      : device(device), data(data), bytes(bytes), external(external) {}
  ~DeviceMemory();
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
  void acquire() { ++uses; }
  void releaseUse() { --uses; }

  const int device;
  void* const data;
  const size_t bytes;
  const bool external;  // another library's memory: never released here
  std::atomic<int> uses{0};
};

class DeviceBuffer : public Napi::ObjectWrap<DeviceBuffer> {
 public:
  static Napi::Function Define(Napi::Env env);
  static bool Is(Napi::Env env, const Napi::Value& v);
  // Only for a value Is() accepted: napi_unwrap checks no type, so anything else is memory corruption.
  static DeviceBuffer* Unwrap(const Napi::Value& v) {
    return Napi::ObjectWrap<DeviceBuffer>::Unwrap(v.As<Napi::Object>());
  }

  // new DeviceBuffer(device, bytes): memory from the device's pool.
  // new DeviceBuffer(device, bytes, { pointer, owner, elementBytes }): wraps `bytes` of another
  // library's device memory at `pointer` (a BigInt), keeping `owner` referenced.
  explicit DeviceBuffer(const Napi::CallbackInfo& info);
  ~DeviceBuffer() override;

  const std::shared_ptr<DeviceMemory>& memory() const { return memory_; }
  size_t bytes() const { return bytes_; }
  int device() const { return device_; }
  bool disposed() const { return memory_ == nullptr; }

 private:
  // Every method and getter on the prototype is a plain static function that starts with self():
  // called on anything but a DeviceBuffer (a DeviceEvent, Object.create of the prototype, a Proxy,
  // a plain object) it throws a TypeError in the one format. The type tag, not the engine's receiver
  // check on class methods (a TypeError "Illegal invocation", outside that format), is what stands
  // between `this` and the unchecked napi_unwrap of Unwrap.
  static DeviceBuffer* self(const Napi::CallbackInfo& info);
  static Napi::Value Dispose(const Napi::CallbackInfo& info);
  static Napi::Value GetBytes(const Napi::CallbackInfo& info);
  static Napi::Value GetDevice(const Napi::CallbackInfo& info);
  static Napi::Value GetDisposed(const Napi::CallbackInfo& info);
  // The device address as a BigInt (throws once disposed).
  static Napi::Value GetPointer(const Napi::CallbackInfo& info);
  // Whether the memory is another library's (wrapped, never freed here).
  static Napi::Value GetExternal(const Napi::CallbackInfo& info);
  // The external constructor's checks, then the wrap (device memory of `device` at `pointer`).
  void wrapExternal(Napi::Env env, const Napi::Value& spec);
  // upload(hostTypedArray, async): copy host -> device (sizes must match); a Promise when async.
  static Napi::Value Upload(const Napi::CallbackInfo& info);
  // download(hostTypedArray, async): copy device -> host; a Promise when async.
  static Napi::Value Download(const Napi::CallbackInfo& info);
  // fill(byteValue): synchronous memset (tests poison outputs with it).
  static Napi::Value Fill(const Napi::CallbackInfo& info);
  // Upload and Download: one host typed array of exactly bytes_, copied in the given direction.
  static Napi::Value Copy(const Napi::CallbackInfo& info, bool toDevice);
  std::shared_ptr<DeviceMemory> memory_;  // null once disposed
  size_t bytes_ = 0;
  int device_ = 0;
  bool external_ = false;
  Napi::Reference<Napi::Value> owner_;  // set for wrapped memory whose owner is an object
};

// A method on a class's prototype that is a plain function (not an ObjectWrap instance method, whose
// wrapper unwraps `this` before fn runs): fn checks `this` itself, with the class's type tag.
template <Napi::Value (*fn)(const Napi::CallbackInfo&)>
Napi::PropertyDescriptor prototypeMethod(Napi::Env env, const char* name) {
  return Napi::PropertyDescriptor::Value(name, Napi::Function::New<fn>(env, name));
}

// Reads a CUDA device index in [0, 1023] (the runtime reports whether that device exists).
int readDeviceIndex(Napi::Env env, const Napi::Value& device);

// deviceMemory(device) -> { inUse, reserved }: bytes of the device's pool (cuda::memoryUsage).
Napi::Value DeviceMemoryUsage(const Napi::CallbackInfo& info);
// trimDeviceMemory(device): returns the pool's unused memory to the device (cuda::trimMemory).
Napi::Value TrimDeviceMemory(const Napi::CallbackInfo& info);

}  // namespace napi
}  // namespace nabla
