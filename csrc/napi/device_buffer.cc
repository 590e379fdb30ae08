#include "device_buffer.h"

#include "../cuda/cuda_backend.h"
#include "args.h"
#include "cuda_stage.h"
#include "errors.h"
#include "worker.h"

namespace nabla {
namespace napi {
namespace {
struct AddonData {
  Napi::FunctionReference deviceBuffer;
};
}  // namespace

Napi::Function DeviceBuffer::Define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "DeviceBuffer", {
    InstanceMethod<&DeviceBuffer::Dispose>("dispose"),
    InstanceMethod<&DeviceBuffer::Upload>("upload"),
    InstanceMethod<&DeviceBuffer::Download>("download"),
    InstanceMethod<&DeviceBuffer::Fill>("fill"),
    InstanceAccessor<&DeviceBuffer::GetBytes>("bytes"),
    InstanceAccessor<&DeviceBuffer::GetDevice>("device"),
    InstanceAccessor<&DeviceBuffer::GetDisposed>("disposed"),
  });
  auto* data = new AddonData{Napi::Persistent(ctor)};
  env.SetInstanceData<AddonData>(data);
  return ctor;
}

bool DeviceBuffer::Is(Napi::Env env, const Napi::Value& v) {
  if (!v.IsObject()) return false;
  auto* data = env.GetInstanceData<AddonData>();
  return data && v.As<Napi::Object>().InstanceOf(data->deviceBuffer.Value());
}

DeviceBuffer::DeviceBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceBuffer>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber())
    throw Napi::TypeError::New(env, "Expected (device: number, bytes: number) for DeviceBuffer");
  device_ = info[0].As<Napi::Number>().Int32Value();
  double bytes = info[1].As<Napi::Number>().DoubleValue();
  if (!(bytes >= 0) || bytes > 9.0e15)
    throwRangeError(env, "bytes", "a byte count in [0, 2^53)", describe(info[1]));
  bytes_ = size_t(bytes);
  void* p = nullptr;
  cuda::Status s = cuda::allocate(device_, bytes_ ? bytes_ : 1, &p);
  if (!s.ok()) throw toJsError(env, OpError(s.message, s.name, s.code));
  data_ = p;
}

DeviceBuffer::~DeviceBuffer() { free(); }

void DeviceBuffer::free() {
  if (data_) cuda::release(device_, data_);
  data_ = nullptr;
}

Napi::Value DeviceBuffer::Dispose(const Napi::CallbackInfo& info) {
  if (uses_ > 0)
    throw Napi::Error::New(info.Env(), "cannot dispose a device tensor while a pending op uses it; await the op first");
  free();
  return info.Env().Undefined();
}

Napi::Value DeviceBuffer::GetBytes(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(bytes_)); }
Napi::Value DeviceBuffer::GetDevice(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), device_); }
Napi::Value DeviceBuffer::GetDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), disposed()); }

// Reads info[0] as a host typed array of exactly bytes_ bytes.
static Operand hostArrayOfSize(const Napi::CallbackInfo& info, size_t bytes, Holds& holds) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray())
    throwTypeError(env, "host", "a typed array", info.Length() ? info[0] : env.Undefined());
  Napi::TypedArray t = info[0].As<Napi::TypedArray>();
  if (t.ByteLength() != bytes)
    throwRangeError(env, "host", "a typed array of " + std::to_string(bytes) + " bytes",
                    std::to_string(t.ByteLength()) + " bytes");
  holds.objects.push_back(t);
  Operand op;
  op.data = static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
  op.bytes = bytes;
  return op;
}

Napi::Value DeviceBuffer::Copy(const Napi::CallbackInfo& info, bool toDevice) {
  if (disposed()) throw Napi::Error::New(info.Env(), "device tensor was disposed");
  Holds holds;
  Operand host = hostArrayOfSize(info, bytes_, holds);
  holds.objects.push_back(Value());
  holds.buffers.push_back(this);
  void* deviceData = data_;
  int device = device_;
  return runOp(info.Env(), readAsync(info), std::move(holds), [=] {
    checkCuda(toDevice ? cuda::copyToDevice(device, deviceData, host.data, host.bytes)
                       : cuda::copyToHost(device, host.data, deviceData, host.bytes));
  });
}

Napi::Value DeviceBuffer::Upload(const Napi::CallbackInfo& info) { return Copy(info, true); }

Napi::Value DeviceBuffer::Download(const Napi::CallbackInfo& info) { return Copy(info, false); }

Napi::Value DeviceBuffer::Fill(const Napi::CallbackInfo& info) {
  if (disposed()) throw Napi::Error::New(info.Env(), "device tensor was disposed");
  int value = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  cuda::Status s = cuda::fill(device_, data_, value & 0xff, bytes_);
  if (!s.ok()) throw toJsError(info.Env(), OpError(s.message, s.name, s.code));
  return info.Env().Undefined();
}

}  // namespace napi
}  // namespace nabla
