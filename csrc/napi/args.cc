#include "args.h"

#include <cmath>
#include <cstring>
#include <new>

#include "device_interop.h"
#include "errors.h"

namespace nabla {
namespace napi {

int64_t readInt(const Napi::Object& args, const char* name, int64_t min, int64_t max) {
  Napi::Value v = args.Get(name);
  if (!v.IsNumber()) throwTypeError(args.Env(), name, "an integer", v);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d) throwTypeError(args.Env(), name, "an integer", v);
  if (d < double(min) || d > double(max))
    throwRangeError(args.Env(), name, "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]",
                    describe(v));
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

std::string readOptionalString(const Napi::Object& args, const char* name, const std::vector<std::string>& allowed,
                               const std::string& fallback) {
  if (args.Get(name).IsUndefined()) return fallback;
  return readString(args, name, allowed);
}

DType readDType(const Napi::Object& args, const char* name) { return DType(readInt(args, name, 0, 2)); }

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

static size_t elementBytes(napi_typedarray_type type) {
  switch (type) {
    case napi_int8_array:
    case napi_uint8_array:
    case napi_uint8_clamped_array: return 1;
    case napi_int16_array:
    case napi_uint16_array: return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array: return 4;
    default: return 8;
  }
}

HostView hostView(const Napi::TypedArray& t) {
  HostView view;
  void* data = nullptr;
  napi_value buffer = nullptr;
  size_t offset = 0;
  checkNapi(t.Env(), napi_get_typedarray_info(t.Env(), t, &view.type, &view.length, &data, &buffer, &offset),
            "napi_get_typedarray_info");
  view.data = data;  // already offset; null for a detached or empty buffer
  view.bytes = view.length * elementBytes(view.type);
  bool plain = false;  // napi_is_arraybuffer is false for a SharedArrayBuffer
  checkNapi(t.Env(), napi_is_arraybuffer(t.Env(), buffer, &plain), "napi_is_arraybuffer");
  view.shared = !plain;
  return view;
}

Operand readOperand(const Napi::Object& args, const char* name, Storage storage, size_t elements, Holds& holds) {
  Napi::Env env = args.Env();
  Napi::Value v = args.Get(name);
  const size_t bytes = elements * storageBytes(storage);
  Operand op;
  if (v.IsTypedArray()) {
    HostView view = hostView(v.As<Napi::TypedArray>());
    if (view.type != arrayTypeOf(storage)) throwTypeError(env, name, storageName(storage), v);
    if (view.length != elements)
      throwRangeError(env, name, std::to_string(elements) + " elements", std::to_string(view.length));
    op.data = view.data;
    op.bytes = bytes;
    op.array = v;
    op.name = name;
    op.shared = view.shared;
    holds.objects.push_back(v.As<Napi::Object>());
    return op;
  }
  if (DeviceBuffer::Is(env, v)) {
    DeviceBuffer* buf = DeviceBuffer::Unwrap(v);
    if (buf->disposed()) throwTypeError(env, name, "a live device tensor", v);
    if (buf->bytes() != bytes)
      throwRangeError(env, name, "a device buffer of " + std::to_string(bytes) + " bytes",
                      std::to_string(buf->bytes()) + " bytes");
    // memory wrapped from another library is checked against its dtype when wrapped; a buffer
    // read as another element type must still be aligned to it (a misaligned load on the device
    // is an error that ends the CUDA context)
    if (reinterpret_cast<uintptr_t>(buf->memory()->data) % storageBytes(storage) != 0)
      throwRangeError(env, name, "a device buffer aligned to " + std::to_string(storageBytes(storage)) + " bytes",
                      addressText(uint64_t(reinterpret_cast<uintptr_t>(buf->memory()->data))));
    op.memory = buf->memory();
    op.data = op.memory->data;
    op.bytes = bytes;
    op.device = op.memory->device;
    holds.objects.push_back(v.As<Napi::Object>());
    holds.memories.push_back(op.memory);
    return op;
  }
  throwTypeError(env, name, std::string(storageName(storage)) + " or a device buffer", v);
}

Operand readOptionalOperand(const Napi::Object& args, const char* name, Storage storage, size_t elements,
                            Holds& holds) {
  Napi::Value v = args.Get(name);
  if (v.IsUndefined() || v.IsNull()) return Operand{};
  return readOperand(args, name, storage, elements, holds);
}

std::vector<int32_t> readInt32List(const Napi::Object& args, const char* name) {
  Napi::Value v = args.Get(name);
  if (v.IsUndefined() || v.IsNull()) return {};
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throwTypeError(args.Env(), name, "an Int32Array", v);
  HostView view = hostView(v.As<Napi::TypedArray>());
  const auto* a = static_cast<const int32_t*>(view.data);
  return a ? std::vector<int32_t>(a, a + view.length) : std::vector<int32_t>();
}

BlockGrid readGrid(const Napi::Object& args, const char* name, int64_t maxBlocks) {
  std::vector<int32_t> g = readInt32List(args, name);
  if (g.size() != 3 || g[0] < 1 || g[1] < 1 || g[2] < 1)
    throwRangeError(args.Env(), name, "3 positive block-grid sizes", describe(args.Get(name)));
  int64_t blocks = 1;
  for (int32_t side : g) {
    blocks *= side;  // both factors <= 2^31: no overflow
    if (blocks > maxBlocks)
      throwRangeError(args.Env(), name, "a block grid of at most " + std::to_string(maxBlocks) + " blocks",
                      std::to_string(g[0]) + " x " + std::to_string(g[1]) + " x " + std::to_string(g[2]));
  }
  return BlockGrid{g[0], g[1], g[2]};
}

StaWindow readWindow(const Napi::Object& args, const char* name) {
  std::vector<int32_t> w = readInt32List(args, name);
  if (w.size() != 3 || w[0] < 1 || w[1] < 1 || w[2] < 1)
    throwRangeError(args.Env(), name, "3 positive STA window sizes", describe(args.Get(name)));
  return StaWindow{w[0], w[1], w[2]};
}

void rereadHostOperands(Napi::Env env, std::initializer_list<Operand*> operands) {
  for (Operand* op : operands) {
    if (op->array == nullptr) continue;
    HostView view = hostView(Napi::TypedArray(env, op->array));
    if (view.bytes != op->bytes)
      throwRangeError(env, op->name, "its " + std::to_string(op->bytes) + " bytes for the whole call",
                      std::to_string(view.bytes) + " bytes (changed while the arguments were read)");
    op->data = view.data;
  }
}

void ownHostInput(Napi::Env env, Operand& input, Holds& holds) {
  if (input.data == nullptr || input.onDevice()) return;
  std::unique_ptr<HostCopy> copy;
  try {
    copy = std::make_unique<HostCopy>(input.bytes);
  } catch (const std::bad_alloc&) {
    throw toJsError(
        env, OpError("out of host memory copying an input of " + std::to_string(input.bytes) + " bytes for an async op",
                     "ERR_NABLA_OUT_OF_HOST_MEMORY"));
  }
  std::memcpy(copy->data(), input.data, input.bytes);
  input.data = copy->data();
  holds.copies.push_back(std::move(copy));
}

}  // namespace napi
}  // namespace nabla
