// N-API bindings of the ops: blockPool, nablaMask, attention. Each reads one argument object
// (built by lib/native.ts), re-validates it, picks the backend and runs sync or async.
#include "ops.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>
#include <limits>

#include "../cpu/cpu_ops.h"
#include "../cuda/cuda_backend.h"
#include "args.h"
#include "cuda_stage.h"
#include "errors.h"
#include "worker.h"

namespace nabla {
namespace napi {
namespace {

constexpr int64_t kMaxDim = int64_t(1) << 31;
// Largest element count any operand may have: typed arrays and every index in the kernels are
// 64-bit, but counts beyond 2^53 cannot be represented by JS numbers.
constexpr double kMaxElements = 9007199254740992.0;

size_t elementCount(Napi::Env env, const char* param, std::initializer_list<int64_t> dims) {
  double n = 1;
  for (int64_t d : dims) n *= double(d);
  if (n > kMaxElements) throwRangeError(env, param, "at most 2^53 elements", std::to_string(n));
  return size_t(n);
}

int64_t readSeq(const Napi::Object& args, const char* name) {
  int64_t s = readInt(args, name, kBlockSize, kMaxDim);
  if (s % kBlockSize != 0)
    throwRangeError(args.Env(), name, "a multiple of " + std::to_string(kBlockSize), std::to_string(s));
  return s;
}

// The q/k problem size shared by the mask and attention: batch, heads, seqQ, seqKv, headDim.
template <typename Params>
void readProblem(const Napi::Object& args, Params& p) {
  p.batch = readInt(args, "batch", 1, kMaxDim);
  p.heads = readInt(args, "heads", 1, kMaxDim);
  p.seqQ = readSeq(args, "seqQ");
  p.seqKv = readSeq(args, "seqKv");
  p.headDim = readInt(args, "headDim", kMinHeadDim, kMaxHeadDim);
}

// Where an op runs: the CPU, or one CUDA device (every device operand must live on it).
struct Placement {
  bool cuda = false;
  int device = 0;
};

Placement readPlacement(const Napi::Object& args, std::initializer_list<const Operand*> operands) {
  Napi::Env env = args.Env();
  Placement p;
  p.cuda = readString(args, "backend", {"cpu", "cuda"}) == "cuda";
  p.device = int(readInt(args, "device", 0, 1023));
  bool seen = false;
  for (const Operand* op : operands) {
    if (!op->onDevice()) continue;
    if (!p.cuda)
      throw Napi::TypeError::New(env, "Expected host tensors for backend 'cpu' but received a device tensor (cuda:" +
                                          std::to_string(op->device) + ")");
    if (seen && op->device != p.device)
      throwRangeError(env, "device", "every device tensor of one op on the same device",
                      "tensors on cuda:" + std::to_string(p.device) + " and cuda:" + std::to_string(op->device));
    p.device = op->device;
    seen = true;
  }
  return p;
}

Napi::Object readArgs(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsObject())
    throwTypeError(info.Env(), "args", "an object", info.Length() ? info[0] : info.Env().Undefined());
  return info[0].As<Napi::Object>();
}

}  // namespace

Napi::Value BlockPool(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object args = readArgs(info);
  const DType dtype = readDType(args, "dtype");
  const int64_t rows = readInt(args, "rows", 1, kMaxDim);
  const int64_t seq = readSeq(args, "seq");
  const int64_t headDim = readInt(args, "headDim", kMinHeadDim, kMaxHeadDim);
  Holds holds;
  Operand x = readOperand(args, "x", storageOf(dtype), elementCount(env, "x", {rows, seq, headDim}), holds);
  Operand out = readOperand(args, "out", Storage::Float32, elementCount(env, "out", {rows, seq / kBlockSize, headDim}), holds);
  Placement where = readPlacement(args, {&x, &out});
  return runOp(env, readAsync(info), std::move(holds), [=] {
    if (!where.cuda) return cpu::blockPool(x.data, dtype, rows, seq, headDim, static_cast<float*>(out.data));
    CudaStage stage(where.device);
    const void* xd = stage.input(x);
    float* od = static_cast<float*>(stage.output(out));
    checkCuda(cuda::blockPool(where.device, xd, dtype, rows, seq, headDim, od));
    stage.finish();
  });
}

Napi::Value NablaMask(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object args = readArgs(info);
  const DType dtype = readDType(args, "dtype");
  MaskParams p;
  readProblem(args, p);
  const double threshold = readNumber(args, "threshold");
  if (!(threshold > 0.0 && threshold <= 1.0))
    throwRangeError(env, "threshold", "a number in (0, 1]", describe(args.Get("threshold")));
  p.threshold = float(threshold);
  p.method = readString(args, "method", {"cdf", "topk"}) == "topk" ? MaskMethod::TopK : MaskMethod::Cdf;
  p.sta = readBool(args, "sta");
  const int64_t nq = p.qBlocks(), nk = p.kvBlocks();

  std::vector<int32_t> frames = readInt32List(args, "frames");
  const bool needsGrid = p.sta || !frames.empty();
  if (needsGrid) {
    std::vector<int32_t> grid = readInt32List(args, "grid");
    if (grid.size() != 3 || grid[0] < 1 || grid[1] < 1 || grid[2] < 1)
      throwRangeError(env, "grid", "3 positive block-grid sizes", std::to_string(grid.size()) + " values");
    p.grid = {grid[0], grid[1], grid[2]};
    if (p.grid.blocks() != nq || nq != nk)
      throwRangeError(env, "grid", "a block grid of " + std::to_string(nq) + " blocks (one per 64 tokens)",
                      std::to_string(p.grid.blocks()) + " blocks");
  }
  if (p.sta) {
    std::vector<int32_t> window = readInt32List(args, "window");
    if (window.size() != 3 || window[0] < 1 || window[1] < 1 || window[2] < 1)
      throwRangeError(env, "window", "3 positive STA window sizes", std::to_string(window.size()) + " values");
    p.window = {window[0], window[1], window[2]};
  }
  std::vector<int32_t> blockDoc;
  if (!frames.empty()) {
    bool ok = frames.size() >= 2 && frames.front() == 0 && frames.back() == p.grid.t;
    for (size_t i = 1; ok && i < frames.size(); ++i) ok = frames[i] > frames[i - 1];
    if (!ok)
      throwRangeError(env, "frames", "boundaries rising strictly from 0 to " + std::to_string(p.grid.t),
                      describe(args.Get("frames")));
    blockDoc = blockDocuments(p.grid, frames);
  }

  Holds holds;
  Operand q = readOperand(args, "q", storageOf(dtype), elementCount(env, "q", {p.batch, p.heads, p.seqQ, p.headDim}), holds);
  Operand k = readOperand(args, "k", storageOf(dtype), elementCount(env, "k", {p.batch, p.heads, p.seqKv, p.headDim}), holds);
  Operand counts = readOperand(args, "kvCounts", Storage::Int32, elementCount(env, "kvCounts", {p.batch, p.heads, nq}), holds);
  Operand indices = readOperand(args, "kvIndices", Storage::Int32, elementCount(env, "kvIndices", {p.batch, p.heads, nq, nk}), holds);
  Operand map = readOptionalOperand(args, "map", Storage::Float32, elementCount(env, "map", {p.batch, p.heads, nq, nk}), holds);
  Placement where = readPlacement(args, {&q, &k, &counts, &indices, &map});
  // read here, on the JS thread: a worker reading the environment could race process.env writes
  const char* maskKernel = std::getenv("NABLA_MASK_KERNEL");
  const bool simpleKernel = maskKernel != nullptr && std::strcmp(maskKernel, "simple") == 0;

  return runOp(env, readAsync(info), std::move(holds), [=] {
    MaskParams params = p;
    params.blockDoc = blockDoc.empty() ? nullptr : blockDoc.data();
    if (!where.cuda)
      return cpu::nablaMask(params, q.data, k.data, dtype, static_cast<int32_t*>(counts.data),
                            static_cast<int32_t*>(indices.data), static_cast<float*>(map.data));
    CudaStage stage(where.device);
    const void* qd = stage.input(q);
    const void* kd = stage.input(k);
    auto* cd = static_cast<int32_t*>(stage.output(counts));
    auto* id = static_cast<int32_t*>(stage.output(indices));
    auto* md = static_cast<float*>(stage.output(map));
    checkCuda(cuda::nablaMask(where.device, params, qd, kd, dtype, cd, id, md, simpleKernel));
    stage.finish();
  });
}

// Host masks are checked before any kernel reads them: counts in [0, nk], listed ids in [0, nk).
static void checkHostMask(Napi::Env env, const Operand& counts, const Operand& indices, int64_t rows, int64_t nk) {
  const auto* c = static_cast<const int32_t*>(counts.data);
  const auto* idx = static_cast<const int32_t*>(indices.data);
  for (int64_t r = 0; r < rows; ++r) {
    if (c[r] < 0 || c[r] > nk)
      throwRangeError(env, "mask.kvCounts", "counts in [0, " + std::to_string(nk) + "]",
                      std::to_string(c[r]) + " at row " + std::to_string(r));
    for (int32_t j = 0; j < c[r]; ++j) {
      int32_t id = idx[r * nk + j];
      if (id < 0 || id >= nk)
        throwRangeError(env, "mask.kvIndices", "block ids in [0, " + std::to_string(nk) + ")",
                        std::to_string(id) + " at row " + std::to_string(r));
    }
  }
}

Napi::Value Attention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object args = readArgs(info);
  const DType dtype = readDType(args, "dtype");
  AttentionParams p;
  readProblem(args, p);
  p.valueDim = readInt(args, "valueDim", kMinHeadDim, kMaxHeadDim);
  p.scale = float(readNumber(args, "scale"));
  const std::string kernelName = readString(args, "kernel", {"auto", "fast", "simple", "hopper"});
  const auto kernel = kernelName == "fast" ? cuda::AttentionKernel::Fast
                      : kernelName == "hopper" ? cuda::AttentionKernel::Hopper
                      : kernelName == "simple" ? cuda::AttentionKernel::Simple : cuda::AttentionKernel::Auto;
  const int64_t nq = p.qBlocks(), nk = p.kvBlocks();

  Holds holds;
  Operand q = readOperand(args, "q", storageOf(dtype), elementCount(env, "q", {p.batch, p.heads, p.seqQ, p.headDim}), holds);
  Operand k = readOperand(args, "k", storageOf(dtype), elementCount(env, "k", {p.batch, p.heads, p.seqKv, p.headDim}), holds);
  Operand v = readOperand(args, "v", storageOf(dtype), elementCount(env, "v", {p.batch, p.heads, p.seqKv, p.valueDim}), holds);
  Operand out = readOperand(args, "out", storageOf(dtype), elementCount(env, "out", {p.batch, p.heads, p.seqQ, p.valueDim}), holds);
  Operand counts = readOptionalOperand(args, "kvCounts", Storage::Int32, elementCount(env, "kvCounts", {p.batch, p.heads, nq}), holds);
  Operand indices = readOptionalOperand(args, "kvIndices", Storage::Int32, elementCount(env, "kvIndices", {p.batch, p.heads, nq, nk}), holds);
  if (bool(counts.data) != bool(indices.data))
    throw Napi::TypeError::New(env, "Expected both kvCounts and kvIndices, or neither (dense), but received only one");
  if (counts.onDevice() != indices.onDevice())
    throw Napi::TypeError::New(env, "Expected kvCounts and kvIndices both on the host or both on one device");
  // Host lists are checked here, on the JS thread. An async op reads a copy taken before the check,
  // so changing the arrays while it is pending cannot send a kernel out of bounds; a sync op runs
  // before JS can touch them again and reads them in place.
  const bool async = readAsync(info);
  std::shared_ptr<std::vector<int32_t>> hostLists;  // the async op's copy
  if (counts.data && !counts.onDevice()) {
    const size_t rows = size_t(p.batch * p.heads * nq), entries = rows * size_t(nk);
    if (async) {
      hostLists = std::make_shared<std::vector<int32_t>>();
      const auto* c = static_cast<const int32_t*>(counts.data);
      const auto* idx = static_cast<const int32_t*>(indices.data);
      hostLists->reserve(rows + entries);
      hostLists->insert(hostLists->end(), c, c + rows);
      hostLists->insert(hostLists->end(), idx, idx + entries);
      counts.data = hostLists->data();
      indices.data = hostLists->data() + rows;
    }
    checkHostMask(env, counts, indices, int64_t(rows), nk);
  }
  Placement where = readPlacement(args, {&q, &k, &v, &out, &counts, &indices});

  return runOp(env, async, std::move(holds), [=] {
    (void)hostLists;  // keeps the checked copy alive while the op runs
    AttentionParams params = p;
    if (!where.cuda) {
      params.kvCounts = static_cast<const int32_t*>(counts.data);
      params.kvIndices = static_cast<const int32_t*>(indices.data);
      return cpu::attention(params, q.data, k.data, v.data, dtype, out.data);
    }
    CudaStage stage(where.device);
    params.kvCounts = static_cast<const int32_t*>(stage.input(counts));
    params.kvIndices = static_cast<const int32_t*>(stage.input(indices));
    const void* qd = stage.input(q);
    const void* kd = stage.input(k);
    const void* vd = stage.input(v);
    void* od = stage.output(out);
    checkCuda(cuda::attention(where.device, params, qd, kd, vd, dtype, od, kernel));
    stage.finish();
  });
}

}  // namespace napi
}  // namespace nabla
