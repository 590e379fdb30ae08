#include "device_buffer.h"

#include "../cuda/cuda_backend.h"
#include "args.h"
#include "cuda_stage.h"
#include "device_interop.h"
#include "errors.h"
#include "worker.h"

namespace nabla {
namespace napi {
namespace {
// Marks the JS objects this class wraps. A type tag, unlike instanceof, runs no JS (a Proxy's
// traps) and is not fooled by Object.create(DeviceBuffer.prototype); it needs no per-environment
// state, so the class works the same in every worker thread that loads the addon.
constexpr napi_type_tag kDeviceBufferTag = {0x6e61626c61646576ULL, 0x6963656275663031ULL};
}  // namespace

Napi::Function DeviceBuffer::Define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "DeviceBuffer", {});
  ctor.Get("prototype")
      .As<Napi::Object>()
      .DefineProperties({
          prototypeMethod<&DeviceBuffer::Dispose>(env, "dispose"),
          prototypeMethod<&DeviceBuffer::Upload>(env, "upload"),
          prototypeMethod<&DeviceBuffer::Download>(env, "download"),
          prototypeMethod<&DeviceBuffer::Fill>(env, "fill"),
          Napi::PropertyDescriptor::Accessor<&DeviceBuffer::GetBytes>("bytes"),
          Napi::PropertyDescriptor::Accessor<&DeviceBuffer::GetDevice>("device"),
          Napi::PropertyDescriptor::Accessor<&DeviceBuffer::GetDisposed>("disposed"),
          Napi::PropertyDescriptor::Accessor<&DeviceBuffer::GetPointer>("pointer"),
          Napi::PropertyDescriptor::Accessor<&DeviceBuffer::GetExternal>("external"),
      });
  return ctor;
}

bool hasTypeTag(Napi::Env env, const Napi::Value& v, const napi_type_tag& tag) {
  if (!v.IsObject()) return false;
  bool tagged = false;
  return napi_check_object_type_tag(env, v, &tag, &tagged) == napi_ok && tagged;
}

bool DeviceBuffer::Is(Napi::Env env, const Napi::Value& v) { return hasTypeTag(env, v, kDeviceBufferTag); }

// Stream-ordered and without waiting (so cheap enough for the GC finaliser): every op that used the
// memory enqueued its work on the device's one stream before this free. Wrapped memory belongs to
// its owner, who frees it.
DeviceMemory::~DeviceMemory() {
  if (!external) cuda::release(device, data);
}

int readDeviceIndex(Napi::Env env, const Napi::Value& device) {
  if (!device.IsNumber()) throwTypeError(env, "device", "a device index", device);
  const double index = device.As<Napi::Number>().DoubleValue();
  if (!(index >= 0 && index <= 1023 && index == double(int(index))))
    throwRangeError(env, "device", "a device index in [0, 1023]", describe(device));
  return int(index);
}

DeviceBuffer::DeviceBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceBuffer>(info) {
  Napi::Env env = info.Env();
  Napi::Value bytes = info[1];
  const int index = readDeviceIndex(env, info[0]);
  if (!bytes.IsNumber()) throwTypeError(env, "bytes", "a byte count", bytes);
  const double count = bytes.As<Napi::Number>().DoubleValue();
  if (!(count >= 0 && count < 9007199254740992.0 && count == double(int64_t(count))))
    throwRangeError(env, "bytes", "a byte count in [0, 2^53)", describe(bytes));
  device_ = index;
  bytes_ = size_t(count);
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    wrapExternal(env, info[2]);
    checkNapi(env, napi_type_tag_object(env, info.This(), &kDeviceBufferTag), "napi_type_tag_object");
    return;
  }
  void* p = nullptr;
  checkCudaHere(env, cuda::allocate(device_, bytes_ ? bytes_ : 1, &p));
  memory_ = std::make_shared<DeviceMemory>(device_, p, bytes_);
  checkNapi(env, napi_type_tag_object(env, info.This(), &kDeviceBufferTag), "napi_type_tag_object");
}

// What the runtime says of an address, for messages: "page-locked host memory".
static std::string pointerKindText(const cuda::PointerInfo& info) {
  switch (info.kind) {
    case cuda::PointerKind::Device: return "device memory of cuda:" + std::to_string(info.device);
    case cuda::PointerKind::Managed: return "managed memory of cuda:" + std::to_string(info.device);
    case cuda::PointerKind::Host: return "page-locked host memory";
    case cuda::PointerKind::Unregistered: break;
  }
  return "an address CUDA does not know: pageable host memory, or none";
}

// The checks of lib/interop.ts again (the native boundary trusts no JS), then the runtime's word on
// where the first and the last byte are: both in device (or managed) memory of device_. Whether
// the bytes between belong to one allocation the runtime API cannot tell.
void DeviceBuffer::wrapExternal(Napi::Env env, const Napi::Value& specValue) {
  if (!specValue.IsObject()) throwTypeError(env, "external", "an object { pointer, owner, elementBytes }", specValue);
  Napi::Object spec = specValue.As<Napi::Object>();
  Napi::Value elementValue = spec.Get("elementBytes");
  if (!elementValue.IsNumber()) throwTypeError(env, "elementBytes", "2 or 4", elementValue);
  const double elementBytes = elementValue.As<Napi::Number>().DoubleValue();
  if (elementBytes != 2 && elementBytes != 4) throwRangeError(env, "elementBytes", "2 or 4", describe(elementValue));
  const uint64_t pointer = readAddress(env, spec.Get("pointer"), "pointer", "a device address", 1);
  const uint64_t element = uint64_t(elementBytes);
  if (pointer % element != 0)
    throwRangeError(env, "pointer",
                    "an address aligned to " + std::to_string(element) + " bytes (the size of an element)",
                    addressText(pointer));
  if (bytes_ == 0 || bytes_ % element != 0)
    throwRangeError(env, "bytes", "a positive multiple of " + std::to_string(element) + " bytes",
                    std::to_string(bytes_));
  // the last byte's address, pointer + bytes - 1, must not wrap past 2^64
  if (bytes_ - 1 > UINT64_MAX - pointer)
    throwRangeError(env, "dims", "a size whose bytes end below 2^64",
                    std::to_string(bytes_) + " bytes from " + addressText(pointer));
  for (const uint64_t address : {pointer, pointer + (bytes_ - 1)}) {
    cuda::PointerInfo where;
    checkCudaHere(env, cuda::pointerInfo(device_, uintptr_t(address), &where));
    const bool onDevice = where.kind == cuda::PointerKind::Device || where.kind == cuda::PointerKind::Managed;
    if (!onDevice || where.device != device_)
      throwRangeError(env, "pointer", "an address of device memory on cuda:" + std::to_string(device_),
                      addressText(address) + " (" + pointerKindText(where) + ")");
  }
  Napi::Value owner = spec.Get("owner");
  // a primitive owner needs no reference (nothing collects it while the tensor needs it)
  if (owner.IsObject() || owner.IsFunction()) owner_ = Napi::Persistent(owner);
  memory_ = std::make_shared<DeviceMemory>(device_, reinterpret_cast<void*>(uintptr_t(pointer)), bytes_, true);
  external_ = true;
}

// The memory outlives this object while a pending op still shares it.
DeviceBuffer::~DeviceBuffer() = default;

// What every method of a disposed buffer throws.
static Napi::Error disposedError(Napi::Env env) {
  return Napi::TypeError::New(env, "Expected a live device tensor for tensor but received a disposed device tensor");
}

Napi::Value DeviceBuffer::Dispose(const Napi::CallbackInfo& info) {
  DeviceBuffer* buffer = self(info);
  if (buffer->memory_ && buffer->memory_->uses > 0)
    throw toJsError(info.Env(), OpError("Expected a device tensor no pending op uses for dispose() but received one "
                                        "in use; await the op first",
                                        "ERR_NABLA_IN_USE"));
  buffer->memory_.reset();
  buffer->owner_.Reset();
  return info.Env().Undefined();
}

DeviceBuffer* DeviceBuffer::self(const Napi::CallbackInfo& info) {
  if (!Is(info.Env(), info.This())) throwTypeError(info.Env(), "this", "a DeviceBuffer", info.This());
  return Unwrap(info.This());
}

Napi::Value DeviceBuffer::GetBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(self(info)->bytes_));
}
Napi::Value DeviceBuffer::GetDevice(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), self(info)->device_);
}
Napi::Value DeviceBuffer::GetDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), self(info)->disposed());
}
Napi::Value DeviceBuffer::GetPointer(const Napi::CallbackInfo& info) {
  DeviceBuffer* buffer = self(info);
  if (buffer->disposed()) throw disposedError(info.Env());
  return Napi::BigInt::New(info.Env(), uint64_t(reinterpret_cast<uintptr_t>(buffer->memory_->data)));
}
Napi::Value DeviceBuffer::GetExternal(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), self(info)->external_);
}

// Reads info[0] as a host typed array of exactly bytes_ bytes.
static Operand hostArrayOfSize(const Napi::CallbackInfo& info, size_t bytes, Holds& holds) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray())
    throwTypeError(env, "host", "a typed array", info.Length() ? info[0] : env.Undefined());
  Napi::TypedArray t = info[0].As<Napi::TypedArray>();
  HostView view = hostView(t);
  if (view.bytes != bytes)
    throwRangeError(env, "host", "a typed array of " + std::to_string(bytes) + " bytes",
                    std::to_string(view.bytes) + " bytes");
  holds.objects.push_back(t);
  Operand op;
  op.data = view.data;
  op.bytes = bytes;
  return op;
}

Napi::Value DeviceBuffer::Copy(const Napi::CallbackInfo& info, bool toDevice) {
  DeviceBuffer* buffer = self(info);
  if (buffer->disposed()) throw disposedError(info.Env());
  Holds holds;
  Operand host = hostArrayOfSize(info, buffer->bytes_, holds);
  const bool async = readAsync(info);
  if (async && toDevice) ownHostInput(info.Env(), host, holds);
  holds.objects.push_back(info.This().As<Napi::Object>());
  holds.memories.push_back(buffer->memory_);
  void* deviceData = buffer->memory_->data;
  int device = buffer->device_;
  return runOp(info.Env(), async, std::move(holds), [=]() -> const char* {
    checkCuda(toDevice ? cuda::copyToDevice(device, deviceData, host.data, host.bytes)
                       : cuda::copyToHost(device, host.data, deviceData, host.bytes));
    return nullptr;
  });
}

Napi::Value DeviceBuffer::Upload(const Napi::CallbackInfo& info) { return Copy(info, true); }

Napi::Value DeviceBuffer::Download(const Napi::CallbackInfo& info) { return Copy(info, false); }

Napi::Value DeviceBuffer::Fill(const Napi::CallbackInfo& info) {
  DeviceBuffer* buffer = self(info);
  if (buffer->disposed()) throw disposedError(info.Env());
  Napi::Value byte = info[0];
  if (!byte.IsNumber()) throwTypeError(info.Env(), "byteValue", "a byte value", byte);
  const double value = byte.As<Napi::Number>().DoubleValue();
  if (!(value >= 0 && value <= 255 && value == double(int(value))))
    throwRangeError(info.Env(), "byteValue", "an integer in [0, 255]", describe(byte));
  checkCudaHere(info.Env(), cuda::fill(buffer->device_, buffer->memory_->data, int(value), buffer->bytes_));
  return info.Env().Undefined();
}

Napi::Value DeviceMemoryUsage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int device = readDeviceIndex(env, info[0]);
  cuda::MemoryUsage usage;
  checkCudaHere(env, cuda::memoryUsage(device, &usage));
  Napi::Object result = Napi::Object::New(env);
  result.Set("inUse", Napi::Number::New(env, double(usage.inUse)));
  result.Set("reserved", Napi::Number::New(env, double(usage.reserved)));
  return result;
}

Napi::Value TrimDeviceMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int device = readDeviceIndex(env, info[0]);
  checkCudaHere(env, cuda::trimMemory(device));
  return env.Undefined();
}

}  // namespace napi
}  // namespace nabla
