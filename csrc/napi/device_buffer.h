// DeviceBuffer: a block of CUDA device memory owned by a JS object. Freed by dispose() or, as a
// safety net, by the garbage collector's finaliser. Ops hold a use count so that a buffer cannot
// be freed while a pending async op reads or writes it.
#pragma once

#include <napi.h>

#include <atomic>
#include <cstddef>

namespace nabla {
namespace napi {

class DeviceBuffer : public Napi::ObjectWrap<DeviceBuffer> {
 public:
  static Napi::Function Define(Napi::Env env);
  static bool Is(Napi::Env env, const Napi::Value& v);
  static DeviceBuffer* Unwrap(const Napi::Value& v) { return Napi::ObjectWrap<DeviceBuffer>::Unwrap(v.As<Napi::Object>()); }

  // new DeviceBuffer(device, bytes)
  explicit DeviceBuffer(const Napi::CallbackInfo& info);
  ~DeviceBuffer() override;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  int device() const { return device_; }
  bool disposed() const { return data_ == nullptr; }

  void acquire() { ++uses_; }
  void releaseUse() { --uses_; }

 private:
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value GetBytes(const Napi::CallbackInfo& info);
  Napi::Value GetDevice(const Napi::CallbackInfo& info);
  Napi::Value GetDisposed(const Napi::CallbackInfo& info);
  // upload(hostTypedArray, async): copy host -> device (sizes must match); a Promise when async.
  Napi::Value Upload(const Napi::CallbackInfo& info);
  // download(hostTypedArray, async): copy device -> host; a Promise when async.
  Napi::Value Download(const Napi::CallbackInfo& info);
  // fill(byteValue): synchronous memset (tests poison outputs with it).
  Napi::Value Fill(const Napi::CallbackInfo& info);
  // Upload and Download: one host typed array of exactly bytes_, copied in the given direction.
  Napi::Value Copy(const Napi::CallbackInfo& info, bool toDevice);
  void free();

  void* data_ = nullptr;
  size_t bytes_ = 0;
  int device_ = 0;
  std::atomic<int> uses_{0};
};

}  // namespace napi
}  // namespace nabla
