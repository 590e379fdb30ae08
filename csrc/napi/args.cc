#include "args.h"

#include <cmath>

#include "errors.h"

namespace nabla {
namespace napi {

int64_t readInt(const Napi::Object& args, const char* name, int64_t min, int64_t max) {
  Napi::Value v = args.Get(name);
  if (!v.IsNumber()) throwTypeError(args.Env(), name, "an integer", v);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d) throwTypeError(args.Env(), name, "an integer", v);
  if (d < double(min) || d > double(max))
    throwRangeError(args.Env(), name,
                    "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]", describe(v));
  return int64_t(d);
}

double readNumber(const Napi::Object& args, const char* name) {
  Napi::Value v = args.Get(name);
  if (!v.IsNumber()) throwTypeError(args.Env(), name, "a number", v);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throwRangeError(args.Env(), name, "a finite number", describe(v));
  return d;
}

bool readBool(const Napi::Object& args, const char* name) {
  Napi::Value v = args.Get(name);
  if (!v.IsBoolean()) throwTypeError(args.Env(), name, "a boolean", v);
  return v.As<Napi::Boolean>().Value();
}

std::string readString(const Napi::Object& args, const char* name, const std::vector<std::string>& allowed) {
  Napi::Value v = args.Get(name);
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "'" : ", '") + a + "'";
  if (!v.IsString()) throwTypeError(args.Env(), name, "one of " + list, v);
  std::string s = v.As<Napi::String>().Utf8Value();
  for (const auto& a : allowed)
    if (s == a) return s;
  throwRangeError(args.Env(), name, "one of " + list, describe(v));
}

DType readDType(const Napi::Object& args, const char* name) {
  return DType(readInt(args, name, 0, 2));
}

bool readAsync(const Napi::CallbackInfo& info) { return info.Length() > 1 && info[1].ToBoolean().Value(); }

size_t storageBytes(Storage s) {
  switch (s) {
    case Storage::Float32: return 4;
    case Storage::Bits16: return 2;
    case Storage::Int32: return 4;
    case Storage::Uint8: return 1;
  }
  return 1;
}

static const char* storageName(Storage s) {
  switch (s) {
    case Storage::Float32: return "a Float32Array";
    case Storage::Bits16: return "a Uint16Array";
    case Storage::Int32: return "an Int32Array";
    case Storage::Uint8: return "a Uint8Array";
  }
  return "";
}

static napi_typedarray_type arrayTypeOf(Storage s) {
  switch (s) {
    case Storage::Float32: return napi_float32_array;
    case Storage::Bits16: return napi_uint16_array;
    case Storage::Int32: return napi_int32_array;
    case Storage::Uint8: return napi_uint8_array;
  }
  return napi_uint8_array;
}

Operand readOperand(const Napi::Object& args, const char* name, Storage storage, size_t elements, Holds& holds) {
  Napi::Env env = args.Env();
  Napi::Value v = args.Get(name);
  const size_t bytes = elements * storageBytes(storage);
  Operand op;
  if (v.IsTypedArray()) {
    Napi::TypedArray t = v.As<Napi::TypedArray>();
    if (t.TypedArrayType() != arrayTypeOf(storage)) throwTypeError(env, name, storageName(storage), v);
    if (t.ElementLength() != elements)
      throwRangeError(env, name, std::to_string(elements) + " elements", std::to_string(t.ElementLength()));
    op.data = static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
    op.bytes = bytes;
    holds.objects.push_back(t);
    return op;
  }
  if (DeviceBuffer::Is(env, v)) {
    DeviceBuffer* buf = DeviceBuffer::Unwrap(v);
    if (buf->disposed()) throwTypeError(env, name, "a live device tensor", v);
    if (buf->bytes() != bytes)
      throwRangeError(env, name, "a device buffer of " + std::to_string(bytes) + " bytes",
                      std::to_string(buf->bytes()) + " bytes");
    op.data = buf->data();
    op.bytes = bytes;
    op.device = buf->device();
    op.buffer = buf;
    holds.objects.push_back(v.As<Napi::Object>());
    holds.buffers.push_back(buf);
    return op;
  }
  throwTypeError(env, name, std::string(storageName(storage)) + " or a device buffer", v);
}

Operand readOptionalOperand(const Napi::Object& args, const char* name, Storage storage, size_t elements, Holds& holds) {
  Napi::Value v = args.Get(name);
  if (v.IsUndefined() || v.IsNull()) return Operand{};
  return readOperand(args, name, storage, elements, holds);
}

std::vector<int32_t> readInt32List(const Napi::Object& args, const char* name) {
  Napi::Value v = args.Get(name);
  if (v.IsUndefined() || v.IsNull()) return {};
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throwTypeError(args.Env(), name, "an Int32Array", v);
  Napi::Int32Array a = v.As<Napi::Int32Array>();
  return std::vector<int32_t>(a.Data(), a.Data() + a.ElementLength());
}

}  // namespace napi
}  // namespace nabla
