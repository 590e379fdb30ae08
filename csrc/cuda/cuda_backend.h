// The CUDA backend as seen from the host: plain C++ (no CUDA headers), so the N-API layer compiles
// with any C++ compiler. Implemented by the .cu/.cc files in this folder when CUDA is compiled in,
// and by stub.cc (every call reports "not compiled in") otherwise.
//
// Every op enqueues on the device's own stream and waits for it before returning (allocate and
// release only enqueue): ops run on worker threads, never on the JS main thread. Pointers passed to ops are device
// pointers unless the comment says host.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../core/block_rules.h"
#include "../core/dtype.h"

namespace nabla {
namespace cuda {

// code is the cudaError_t value (0 = success); kNotCompiled when the binary has no CUDA backend.
struct Status {
  int code = 0;
  std::string name;     // e.g. "cudaErrorMemoryAllocation"
  std::string message;  // human readable, names the failing call
  bool ok() const { return code == 0; }
};
constexpr int kNotCompiled = -1;
constexpr int kErrorMemoryAllocation = 2;  // cudaErrorMemoryAllocation

struct DeviceInfo {
  int index = 0;
  std::string name;
  int major = 0, minor = 0;
  size_t memoryBytes = 0;
};

bool compiledIn();
std::string archList();  // e.g. "80;86;89;90a" (what the binary was built for)
int runtimeVersion();    // CUDA runtime version compiled against (e.g. 13000), 0 if none

// Lists devices. Fails (with the runtime's reason, e.g. cudaErrorInsufficientDriver or
// cudaErrorNoDevice) when none can be used.
Status devices(std::vector<DeviceInfo>* out);

// Device memory from this package's pool on the device, ordered on the device's stream (see
// "Device memory" in README.md): allocate() and release() enqueue and return without waiting, and
// memory released is handed out again only to work enqueued after the release.
Status allocate(int device, size_t bytes, void** ptr);
Status release(int device, void* ptr);

// Bytes of the pool handed out (inUse) and held from the device (reserved >= inUse).
struct MemoryUsage {
  uint64_t inUse = 0;
  uint64_t reserved = 0;
};
Status memoryUsage(int device, MemoryUsage* usage);
// Waits for the device's stream, then returns every byte of the pool not in use to the device.
Status trimMemory(int device);
Status copyToDevice(int device, void* dst, const void* hostSrc, size_t bytes);
Status copyToHost(int device, void* hostDst, const void* src, size_t bytes);
Status fill(int device, void* dst, int byteValue, size_t bytes);

// Device time of op bodies (CUDA events around each op's enqueued work), for benchmarks. Turns
// timing on or off and returns what was accumulated since the previous call (then resets it).
struct BodyTime {
  double ms = 0;
  uint64_t ops = 0;
};
BodyTime bodyTime(bool enable);

// x [rows, S, D] -> out [rows, nb, D] fp32 block means (nb = layout.blocks(S): S/64 without a grid,
// the tiles of the token grid with one; each block's mean is over its own tokens).
Status blockPool(int device, const void* x, DType dtype, int64_t rows, int64_t seq, int64_t headDim, float* out,
                 const TileLayout& layout = TileLayout{});

enum class MaskKernel : int32_t {
  Auto = 0,    // the fast kernel where it applies and fits, else the simple one
  Fast = 1,    // 8 rows per CTA; error where it does not apply
  Simple = 2,  // one CTA per row: every head dim
};

// Same semantics and output layout as cpu::nablaMask. p.blockDoc is a HOST pointer (copied in).
// map may be null. *ran receives the kernel that ran (Fast or Simple).
Status nablaMask(int device, const MaskParams& p, const void* q, const void* k, DType dtype, int32_t* kvCounts,
                 int32_t* kvIndices, float* map, MaskKernel kernel, MaskKernel* ran);

enum class AttentionKernel : int32_t {
  Auto = 0,    // fast tensor-core kernel where it applies, else the simple one
  Fast = 1,    // mma.sync flash kernel (fp16/bf16, head dims 64/128); error where it does not apply
  Simple = 2,  // scalar shared-memory kernel: every dtype and head dim, obviously correct
  Hopper = 3,  // wgmma + TMA kernel (compute capability 9.0, sm_90a builds; fast kernel's inputs);
               // opt-in until a GPU run has verified it; error where it does not apply
  Fast2 = 4,   // mma.sync flash kernel with a 2x2 warp grid (the fast kernel's inputs); opt-in until a
               // GPU run has timed it against Fast; error where it does not apply
};

// Same semantics as cpu::attention; p.kvCounts / p.kvIndices are DEVICE pointers (or null = dense).
// *ran receives the kernel that ran (never Auto).
Status attention(int device, const AttentionParams& p, const void* q, const void* k, const void* v, DType dtype,
                 void* out, AttentionKernel kernel, AttentionKernel* ran);

}  // namespace cuda
}  // namespace nabla
