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

// ---- Interop with other CUDA code in the process (README "Interop with other GPU code") ----
// Streams and events cross this header as opaque handles (cudaStream_t / cudaEvent_t values).

// What the runtime knows of an address (cudaPointerGetAttributes).
enum class PointerKind : int32_t {
  Device = 0,        // device memory (cudaMalloc, a memory pool, ...)
  Managed = 1,       // managed memory (cudaMallocManaged)
  Host = 2,          // page-locked host memory (cudaMallocHost, cudaHostRegister)
  Unregistered = 3,  // not known to CUDA: pageable host memory or no memory at all
};
struct PointerInfo {
  PointerKind kind = PointerKind::Unregistered;
  int device = -1;  // the device of device and managed memory
};
// Asks the runtime about `address` (with `device` current, whose context the query needs).
Status pointerInfo(int device, uintptr_t address, PointerInfo* info);

// The device's own stream, on which every op of this package on that device runs in order
// (created on first use; never destroyed).
Status deviceStream(int device, uintptr_t* stream);
// The device that a stream handle belongs to (cudaStreamGetDevice), or -1 where the runtime
// cannot tell (built against CUDA before 12.8).
Status streamDevice(int device, uintptr_t stream, int* streamDevice);
// Make the device's stream wait, without blocking the host, for the work enqueued so far on
// `stream` (through an event recorded there; 0 is the legacy default stream) or for `event`.
Status waitForStream(int device, uintptr_t stream);
Status waitForEvent(int device, uintptr_t event);
// Creates an event (no timing) and records it on the device's stream: it completes when the work
// enqueued so far on the device is done. destroyEvent frees it (safe while still pending), with
// the event's device current while it does.
Status recordEvent(int device, uintptr_t* event);
Status destroyEvent(int device, uintptr_t event);

// Device time of op bodies (CUDA events around each op's enqueued work), for benchmarks. Turns
// timing on or off and returns what was accumulated since the previous call (then resets it).
struct BodyTime {
  double ms = 0;
  uint64_t ops = 0;
};
BodyTime bodyTime(bool enable);

enum class PoolKernel : int32_t {
  Auto = 0,    // Fast2 where it applies, else Simple (the same bits either way)
  Simple = 1,  // one CTA per (row, block), one element per thread per load: every head dim
  Fast2 = 2,   // one warp per (row, block), 16-byte loads, q and k in one launch; where it does not
               // apply (head dim not a multiple of 8, x or out not 16-byte aligned) Simple runs
};

// x [rows, S, D] -> out [rows, nb, D] fp32 block means (nb = layout.blocks(S): S/64 without a grid,
// the tiles of the token grid with one; each block's mean is over its own tokens). Both kernels
// add each column in the same order (same bits). *ran (when not null) receives the kernel that ran.
Status blockPool(int device, const void* x, DType dtype, int64_t rows, int64_t seq, int64_t headDim, float* out,
                 const TileLayout& layout = TileLayout{}, PoolKernel kernel = PoolKernel::Auto,
                 PoolKernel* ran = nullptr);

enum class MaskKernel : int32_t {
  Auto = 0,    // Fast2 where it applies and fits, else Fast where it does, else Simple
  Fast = 1,    // 8 rows per CTA; error where it does not apply
  Simple = 2,  // one CTA per row: every head dim
  Fast2 = 3,   // 16 rows per CTA, each row's keys in registers, vectorised pooling of q and k in one
               // launch; error where it does not apply
};

// Same semantics and output layout as cpu::nablaMask. p.blockDoc is a HOST pointer (copied in).
// map may be null. *ran receives the kernel that ran (Fast, Simple or Fast2).
Status nablaMask(int device, const MaskParams& p, const void* q, const void* k, DType dtype, int32_t* kvCounts,
                 int32_t* kvIndices, float* map, MaskKernel kernel, MaskKernel* ran);

enum class AttentionKernel : int32_t {
  Auto = 0,    // fast tensor-core kernel where it applies, else the simple one
  Fast = 1,    // mma.sync flash kernel (fp16/bf16, head dims 64/128); error where it does not apply
  Simple = 2,  // scalar shared-memory kernel: every dtype and head dim, obviously correct
  Hopper = 3,  // wgmma + TMA kernel (compute capability 9.0, sm_90a builds; fast kernel's inputs);
               // opt-in until a GPU run has verified it; error where it does not apply
  Fast2 = 4,   // mma.sync flash kernel with a 2x2 warp grid (the fast kernel's inputs); opt-in: an H200
               // run timed it within 1-4% of Fast (bench/RESULTS.md); error where it does not apply
};

// Same semantics as cpu::attention; p.kvCounts / p.kvIndices are DEVICE pointers (or null = dense).
// *ran receives the kernel that ran (never Auto).
Status attention(int device, const AttentionParams& p, const void* q, const void* k, const void* v, DType dtype,
                 void* out, AttentionKernel kernel, AttentionKernel* ran);

}  // namespace cuda
}  // namespace nabla
