// Reading op arguments from the plain object the TypeScript layer passes. The TS layer validates
// first; these checks run again here because the native boundary must never trust JS.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "../core/dtype.h"
#include "device_buffer.h"

namespace nabla {
namespace napi {

int64_t readInt(const Napi::Object& args, const char* name, int64_t min, int64_t max);
double readNumber(const Napi::Object& args, const char* name);
bool readBool(const Napi::Object& args, const char* name);
std::string readString(const Napi::Object& args, const char* name, const std::vector<std::string>& allowed);
DType readDType(const Napi::Object& args, const char* name);
// The second call argument: true runs the op on a worker and returns a Promise.
bool readAsync(const Napi::CallbackInfo& info);

// Typed-array classes the boundary accepts, by what they hold.
enum class Storage { Float32, Bits16, Int32, Uint8 };
inline Storage storageOf(DType t) { return t == DType::Float32 ? Storage::Float32 : Storage::Bits16; }
size_t storageBytes(Storage s);

// Memory an op reads or writes: a host typed array or a DeviceBuffer.
struct Operand {
  void* data = nullptr;
  size_t bytes = 0;
  int device = -1;                   // -1: host memory
  DeviceBuffer* buffer = nullptr;    // set for device memory
  bool onDevice() const { return device >= 0; }
};

// Everything a pending op must keep alive and in use until it finishes.
struct Holds {
  std::vector<Napi::Object> objects;
  std::vector<DeviceBuffer*> buffers;
};

// Reads args[name] as `elements` items of `storage`, on the host or on a device. Throws TypeError
// for the wrong kind and RangeError for the wrong length.
Operand readOperand(const Napi::Object& args, const char* name, Storage storage, size_t elements, Holds& holds);
// The same for an optional operand (undefined or null -> empty Operand).
Operand readOptionalOperand(const Napi::Object& args, const char* name, Storage storage, size_t elements, Holds& holds);
// Reads an optional host Int32Array (e.g. frame boundaries) into a vector.
std::vector<int32_t> readInt32List(const Napi::Object& args, const char* name);

}  // namespace napi
}  // namespace nabla
