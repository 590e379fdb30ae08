// Reading op arguments from the plain object the TypeScript layer passes. The TS layer validates
// first; these checks run again here because the native boundary must never trust JS.
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../core/block_rules.h"
#include "../core/dtype.h"
#include "device_buffer.h"
#include "host_copy.h"

namespace nabla {
namespace napi {

int64_t readInt(const Napi::Object& args, const char* name, int64_t min, int64_t max);
double readNumber(const Napi::Object& args, const char* name);
bool readBool(const Napi::Object& args, const char* name);
std::string readString(const Napi::Object& args, const char* name, const std::vector<std::string>& allowed);
// The same for an optional string: undefined gives `fallback`.
std::string readOptionalString(const Napi::Object& args, const char* name, const std::vector<std::string>& allowed,
                               const std::string& fallback);
DType readDType(const Napi::Object& args, const char* name);
// The second call argument: true runs the op on a worker and returns a Promise.
bool readAsync(const Napi::CallbackInfo& info);

// Typed-array classes the boundary accepts, by what they hold.
enum class Storage { Float32, Bits16, Int32, Uint8 };
inline Storage storageOf(DType t) { return t == DType::Float32 ? Storage::Float32 : Storage::Bits16; }
size_t storageBytes(Storage s);

// Where a typed array's elements are, whether its buffer is an ArrayBuffer or a SharedArrayBuffer
// (node-addon-api's ArrayBuffer accessors refuse the latter).
struct HostView {
  void* data = nullptr;
  size_t length = 0;  // elements
  size_t bytes = 0;
  napi_typedarray_type type = napi_uint8_array;
  bool shared = false;  // a SharedArrayBuffer: another thread may write it at any time
};
HostView hostView(const Napi::TypedArray& t);

// Memory an op reads or writes: a host typed array or a DeviceBuffer's memory.
struct Operand {
  void* data = nullptr;
  size_t bytes = 0;
  int device = -1;                       // -1: host memory
  std::shared_ptr<DeviceMemory> memory;  // set for device memory
  napi_value array = nullptr;            // the host typed array (valid during the call)
  bool shared = false;                   // host memory of a SharedArrayBuffer
  const char* name = "";
  bool onDevice() const { return device >= 0; }
};

// Everything a pending op must keep alive and in use until it finishes.
struct Holds {
  std::vector<Napi::Object> objects;                    // referenced while the op runs
  std::vector<std::shared_ptr<DeviceMemory>> memories;  // in use while the op runs
  std::vector<std::unique_ptr<HostCopy>> copies;        // the op's own copies of host inputs
};

// Reads args[name] as `elements` items of `storage`, on the host or on a device. Throws TypeError
// for the wrong kind and RangeError for the wrong length.
Operand readOperand(const Napi::Object& args, const char* name, Storage storage, size_t elements, Holds& holds);
// The same for an optional operand (undefined or null -> empty Operand).
Operand readOptionalOperand(const Napi::Object& args, const char* name, Storage storage, size_t elements, Holds& holds);
// Reads an optional host Int32Array (e.g. frame boundaries) into a vector.
std::vector<int32_t> readInt32List(const Napi::Object& args, const char* name);

// Reads a block grid (frames, block rows, block cols) of positive sizes whose product is at most
// maxBlocks, multiplying in 64 bits with every partial product bounded, so it cannot wrap.
BlockGrid readGrid(const Napi::Object& args, const char* name, int64_t maxBlocks);
// Reads 3 positive STA window sizes: any int32 works (staKeeps compares halves, never sums them).
StaWindow readWindow(const Napi::Object& args, const char* name);

// Re-reads every host operand's address and length from its typed array, without running JS.
// Reading the args object runs its getters, which may detach, transfer or shrink an array read
// before: call this after the last read of args and before anything touches operand memory.
// Throws RangeError for an array whose length changed.
void rereadHostOperands(Napi::Env env, std::initializer_list<Operand*> operands);

// Points a host input at a copy the op owns (taken now, on the JS thread); device inputs and empty
// operands are left as they are. An async op reads its inputs after the call returned, when JS
// may have transferred, shrunk or freed their buffers: Node-API cannot pin a backing store, so
// the op must not read them in place. A failed allocation throws a JS Error with a code.
void ownHostInput(Napi::Env env, Operand& input, Holds& holds);

}  // namespace napi
}  // namespace nabla
