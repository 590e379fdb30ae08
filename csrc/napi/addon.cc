// Module entry: the native surface that lib/native.ts declares, in one place.
#include <napi.h>

#include "../core/block_rules.h"
#include "../core/thread_pool.h"
#include "../cuda/cuda_backend.h"
#include "args.h"
#include "device_buffer.h"
#include "device_interop.h"
#include "errors.h"
#include "ops.h"

namespace nabla {
namespace napi {
namespace {

// floor(sqrt(2^53)): the most blocks whose nb x nb STA map a JS typed array could index.
constexpr int64_t kMaxStaBlocks = 94906265;

// backends() -> { cpu, cuda, devices: [{ index, name, computeCapability, memoryBytes }], reason, build }
Napi::Value Backends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("cpu", true);
  std::vector<cuda::DeviceInfo> devices;
  cuda::Status status = cuda::devices(&devices);
  Napi::Array list = Napi::Array::New(env, devices.size());
  for (size_t i = 0; i < devices.size(); ++i) {
    Napi::Object d = Napi::Object::New(env);
    d.Set("index", devices[i].index);
    d.Set("name", devices[i].name);
    d.Set("computeCapability", std::to_string(devices[i].major) + "." + std::to_string(devices[i].minor));
    d.Set("memoryBytes", double(devices[i].memoryBytes));
    list.Set(uint32_t(i), d);
  }
  const bool usable = status.ok() && !devices.empty();
  result.Set("cuda", usable);
  result.Set("devices", list);
  if (!usable) {
    std::string reason = status.ok() ? "no CUDA device found" : status.message + " (" + status.name + ")";
    result.Set("reason", reason);
  }
  Napi::Object build = Napi::Object::New(env);
  build.Set("cudaCompiled", cuda::compiledIn());
  build.Set("cudaArchs", cuda::archList());
  build.Set("cudaRuntimeVersion", cuda::runtimeVersion());
  build.Set("cpuThreads", ThreadPool::instance().threads());
  build.Set("napiVersion", NAPI_VERSION);
  result.Set("build", build);
  return result;
}

// staMask({ grid: Int32Array[3] (block grid), window: Int32Array[3], out: Uint8Array[nb*nb] })
Napi::Value StaMask(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject())
    throwTypeError(env, "args", "an object", info.Length() ? info[0] : env.Undefined());
  Napi::Object args = info[0].As<Napi::Object>();
  // nb * nb map entries, at most 2^53 (so nb < 2^31 too: staKeeps works in int32)
  const BlockGrid grid = readGrid(args, "grid", kMaxStaBlocks);
  const StaWindow window = readWindow(args, "window");
  const int64_t nb = grid.blocks();
  Holds holds;
  Operand out = readOperand(args, "out", Storage::Uint8, size_t(nb * nb), holds);
  if (out.onDevice()) throwTypeError(env, "out", "a host Uint8Array", args.Get("out"));
  auto* dense = static_cast<uint8_t*>(out.data);
  for (int64_t i = 0; i < nb; ++i)
    for (int64_t j = 0; j < nb; ++j) dense[i * nb + j] = staKeeps(grid, window, int32_t(i), int32_t(j)) ? 1 : 0;
  return env.Undefined();
}

// bodyTime(enable) -> { ms, ops }: device time of CUDA op bodies since the previous call (benchmarks).
Napi::Value BodyTime(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBoolean())
    throwTypeError(env, "enable", "a boolean", info.Length() ? info[0] : env.Undefined());
  const cuda::BodyTime total = cuda::bodyTime(info[0].As<Napi::Boolean>().Value());
  Napi::Object result = Napi::Object::New(env);
  result.Set("ms", total.ms);
  result.Set("ops", double(total.ops));
  return result;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("backends", Napi::Function::New<Backends>(env, "backends"));
  exports.Set("staMask", Napi::Function::New<StaMask>(env, "staMask"));
  exports.Set("blockPool", Napi::Function::New<BlockPool>(env, "blockPool"));
  exports.Set("nablaMask", Napi::Function::New<NablaMask>(env, "nablaMask"));
  exports.Set("attention", Napi::Function::New<Attention>(env, "attention"));
  exports.Set("DeviceBuffer", DeviceBuffer::Define(env));
  exports.Set("deviceMemory", Napi::Function::New<DeviceMemoryUsage>(env, "deviceMemory"));
  exports.Set("bodyTime", Napi::Function::New<BodyTime>(env, "bodyTime"));
  exports.Set("trimDeviceMemory", Napi::Function::New<TrimDeviceMemory>(env, "trimDeviceMemory"));
  exports.Set("DeviceEvent", DeviceEvent::Define(env));
  exports.Set("deviceStream", Napi::Function::New<DeviceStream>(env, "deviceStream"));
  exports.Set("waitForExternal", Napi::Function::New<WaitForExternal>(env, "waitForExternal"));
  Napi::Object limits = Napi::Object::New(env);
  limits.Set("blockSize", kBlockSize);
  limits.Set("tileSide", kTileSide);
  limits.Set("minHeadDim", kMinHeadDim);
  limits.Set("maxHeadDim", kMaxHeadDim);
  limits.Set("maxDim", double(kMaxDim));
  limits.Set("maxScale", kMaxScale);
  exports.Set("limits", limits);
  return exports;
}

}  // namespace napi
}  // namespace nabla

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return nabla::napi::Init(env, exports); }
NODE_API_MODULE(nabla_attention, InitModule)
