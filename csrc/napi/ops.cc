// N-API bindings of the ops: blockPool, nablaMask, attention. Each reads one argument object
// (built by lib/native.ts), re-validates it, picks the backend and runs sync or async.
#include "ops.h"

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "../cpu/cpu_ops.h"
#include "../cuda/cuda_backend.h"
#include "args.h"
#include "cuda_stage.h"
#include "errors.h"
#include "worker.h"

namespace nabla {
namespace napi {
namespace {

// Largest element count any operand may have: typed arrays and every index in the kernels are
// 64-bit, but counts beyond 2^53 cannot be represented by JS numbers.
constexpr double kMaxElements = 9007199254740992.0;

size_t elementCount(Napi::Env env, const char* param, std::initializer_list<int64_t> dims) {
  double n = 1;
  for (int64_t d : dims) n *= double(d);
  if (n > kMaxElements) throwRangeError(env, param, "at most 2^53 elements", std::to_string(n));
  return size_t(n);
}

// The optional token grid (T, Ht, Wt): each size >= 1, the product (in 64 bits) < 2^31.
// Absent: TileLayout{} (blocks of 64 tokens).
TileLayout readTokenGrid(const Napi::Object& args) {
  std::vector<int32_t> g = readInt32List(args, "tokenGrid");
  if (g.empty() && (args.Get("tokenGrid").IsUndefined() || args.Get("tokenGrid").IsNull())) return TileLayout{};
  if (g.size() != 3 || g[0] < 1 || g[1] < 1 || g[2] < 1)
    throwRangeError(args.Env(), "tokenGrid", "3 positive token-grid sizes", describe(args.Get("tokenGrid")));
  const int64_t tokens = int64_t(g[0]) * g[1] * g[2];  // each < 2^31: the product fits 64 bits after the first check
  if (int64_t(g[0]) * g[1] >= kMaxDim || tokens >= kMaxDim)
    throwRangeError(args.Env(), "tokenGrid", "a token grid of fewer than 2^31 tokens",
                    std::to_string(g[0]) + " x " + std::to_string(g[1]) + " x " + std::to_string(g[2]));
  return TileLayout{g[0], g[1], g[2]};
}

int64_t tokenCount(const TileLayout& layout) { return int64_t(layout.t) * layout.ht * layout.wt; }

// A sequence length: with a grid exactly T*Ht*Wt tokens, without one a multiple of 64.
int64_t readSeq(const Napi::Object& args, const char* name, const TileLayout& layout) {
  int64_t s = readInt(args, name, 1, kMaxDim);
  if (layout.hasGrid()) {
    if (s != tokenCount(layout))
      throwRangeError(args.Env(), name,
                      std::to_string(tokenCount(layout)) + " tokens (the product of tokenGrid " +
                          std::to_string(layout.t) + " x " + std::to_string(layout.ht) + " x " +
                          std::to_string(layout.wt) + ")",
                      std::to_string(s));
  } else if (s < kBlockSize || s % kBlockSize != 0) {
    throwRangeError(args.Env(), name, "a multiple of " + std::to_string(kBlockSize), std::to_string(s));
  }
  return s;
}

// The q/k problem size shared by the mask and attention: batch, heads, seqQ, seqKv, headDim, and
// the token grid's layout (with a grid, self-attention only: seqQ == seqKv == T*Ht*Wt).
template <typename Params>
void readProblem(const Napi::Object& args, Params& p) {
  p.batch = readInt(args, "batch", 1, kMaxDim);
  p.heads = readInt(args, "heads", 1, kMaxDim);
  p.layout = readTokenGrid(args);
  p.seqQ = readSeq(args, "seqQ", p.layout);
  p.seqKv = readSeq(args, "seqKv", p.layout);
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

// What native.attention reports for each CUDA kernel; a new kernel adds its case here.
const char* cudaAttentionKernelName(cuda::AttentionKernel launched) {
  switch (launched) {
    case cuda::AttentionKernel::Fast: return "cuda-fast";
    case cuda::AttentionKernel::Simple: return "cuda-simple";
    case cuda::AttentionKernel::Hopper: return "cuda-hopper";
    case cuda::AttentionKernel::Fast2: return "cuda-fast2";
    case cuda::AttentionKernel::Auto: break;
  }
  return "cuda-auto";
}

// What native.nablaMask reports for each CUDA mask kernel; a new kernel adds its case here.
const char* cudaMaskKernelName(cuda::MaskKernel launched) {
  switch (launched) {
    case cuda::MaskKernel::Fast: return "cuda-fast";
    case cuda::MaskKernel::Simple: return "cuda-simple";
    case cuda::MaskKernel::Fast2: return "cuda-fast2";
    case cuda::MaskKernel::Auto: break;
  }
  return "cuda-auto";
}

// What native.blockPool reports for each CUDA pooling kernel ("cuda": the per-block kernel).
const char* cudaPoolKernelName(cuda::PoolKernel launched) {
  return launched == cuda::PoolKernel::Fast2 ? "cuda-fast2" : "cuda";
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
  const TileLayout layout = readTokenGrid(args);
  const int64_t seq = readSeq(args, "seq", layout);
  const int64_t headDim = readInt(args, "headDim", kMinHeadDim, kMaxHeadDim);
  Holds holds;
  Operand x = readOperand(args, "x", storageOf(dtype), elementCount(env, "x", {rows, seq, headDim}), holds);
  Operand out =
      readOperand(args, "out", Storage::Float32, elementCount(env, "out", {rows, layout.blocks(seq), headDim}), holds);
  Placement where = readPlacement(args, {&x, &out});
  const std::string kernelName = readOptionalString(args, "poolKernel", {"auto", "simple", "fast2"}, "auto");
  const auto kernel = kernelName == "fast2"    ? cuda::PoolKernel::Fast2
                      : kernelName == "simple" ? cuda::PoolKernel::Simple
                                               : cuda::PoolKernel::Auto;
  rereadHostOperands(env, {&x, &out});
  const bool async = readAsync(info);
  if (async) ownHostInput(env, x, holds);
  return runOp(env, async, std::move(holds), [=]() -> const char* {
    if (!where.cuda) {
      cpu::blockPool(x.data, dtype, rows, seq, headDim, layout, static_cast<float*>(out.data));
      return "cpu";
    }
    CudaStage stage(where.device);
    const void* xd = stage.input(x);
    float* od = static_cast<float*>(stage.output(out));
    cuda::PoolKernel launched = cuda::PoolKernel::Simple;
    checkCuda(cuda::blockPool(where.device, xd, dtype, rows, seq, headDim, od, layout, kernel, &launched));
    stage.finish();
    return cudaPoolKernelName(launched);
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
  const Napi::Value causal = args.Get("causal");
  if (!causal.IsUndefined() && !causal.IsBoolean()) throwTypeError(env, "causal", "a boolean", causal);
  p.causal = causal.IsBoolean() && causal.As<Napi::Boolean>().Value();
  if (p.causal && !p.layout.hasGrid())
    throwRangeError(env, "causal", "a token grid (tokenGrid) with causal: true", "no tokenGrid");
  const int64_t nq = p.qBlocks(), nk = p.kvBlocks();

  std::vector<int32_t> frames = readInt32List(args, "frames");
  const bool needsGrid = p.sta || !frames.empty();
  if (needsGrid) {
    p.grid = readGrid(args, "grid", nq);
    if (p.grid.blocks() != nq || nq != nk)
      throwRangeError(env, "grid", "a block grid of " + std::to_string(nq) + " blocks (one per 64 tokens)",
                      std::to_string(p.grid.blocks()) + " blocks");
    const BlockGrid tiles = p.layout.blockGrid();
    if (p.layout.hasGrid() && (p.grid.t != tiles.t || p.grid.h != tiles.h || p.grid.w != tiles.w))
      throwRangeError(env, "grid",
                      "the token grid's block grid " + std::to_string(tiles.t) + " x " + std::to_string(tiles.h) +
                          " x " + std::to_string(tiles.w),
                      std::to_string(p.grid.t) + " x " + std::to_string(p.grid.h) + " x " + std::to_string(p.grid.w));
  } else if (p.layout.hasGrid()) {
    p.grid = p.layout.blockGrid();
  }
  if (p.sta) p.window = readWindow(args, "window");
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
  Operand q =
      readOperand(args, "q", storageOf(dtype), elementCount(env, "q", {p.batch, p.heads, p.seqQ, p.headDim}), holds);
  Operand k =
      readOperand(args, "k", storageOf(dtype), elementCount(env, "k", {p.batch, p.heads, p.seqKv, p.headDim}), holds);
  Operand counts =
      readOperand(args, "kvCounts", Storage::Int32, elementCount(env, "kvCounts", {p.batch, p.heads, nq}), holds);
  Operand indices =
      readOperand(args, "kvIndices", Storage::Int32, elementCount(env, "kvIndices", {p.batch, p.heads, nq, nk}), holds);
  Operand map =
      readOptionalOperand(args, "map", Storage::Float32, elementCount(env, "map", {p.batch, p.heads, nq, nk}), holds);
  Placement where = readPlacement(args, {&q, &k, &counts, &indices, &map});
  const std::string kernelName = readOptionalString(args, "maskKernel", {"auto", "fast", "simple", "fast2"}, "auto");
  const auto kernel = kernelName == "fast"     ? cuda::MaskKernel::Fast
                      : kernelName == "simple" ? cuda::MaskKernel::Simple
                      : kernelName == "fast2"  ? cuda::MaskKernel::Fast2
                                               : cuda::MaskKernel::Auto;
  rereadHostOperands(env, {&q, &k, &counts, &indices, &map});
  const bool async = readAsync(info);
  // An async op must not read q and k after the call returns (JS may transfer or shrink them). On
  // the CPU the mask reads them only to pool them, so the call pools them here, on this thread,
  // instead of copying them: one read of q and k, 1/64 of their size written, and no pooling left
  // for the op (the copy cost as much as the whole mask at 4 heads of 4096 tokens).
  std::shared_ptr<const cpu::MaskPooling> pooled;
  if (async && !where.cuda) {
    try {
      pooled = std::make_shared<const cpu::MaskPooling>(cpu::poolForMask(p, q.data, k.data, dtype, /*noWait=*/true));
    } catch (const std::bad_alloc&) {
      throw toJsError(env,
                      OpError("out of host memory pooling q and k for an async mask", "ERR_NABLA_OUT_OF_HOST_MEMORY"));
    }
  } else if (async) {
    ownHostInput(env, q, holds);
    ownHostInput(env, k, holds);
  }

  return runOp(env, async, std::move(holds), [=]() -> const char* {
    MaskParams params = p;
    params.blockDoc = blockDoc.empty() ? nullptr : blockDoc.data();
    if (!where.cuda) {
      auto* cd = static_cast<int32_t*>(counts.data);
      auto* id = static_cast<int32_t*>(indices.data);
      auto* md = static_cast<float*>(map.data);
      if (pooled) cpu::nablaMask(params, *pooled, cd, id, md);
      else cpu::nablaMask(params, q.data, k.data, dtype, cd, id, md);
      return "cpu";
    }
    CudaStage stage(where.device);
    const void* qd = stage.input(q);
    const void* kd = stage.input(k);
    auto* cd = static_cast<int32_t*>(stage.output(counts));
    auto* id = static_cast<int32_t*>(stage.output(indices));
    auto* md = static_cast<float*>(stage.output(map));
    cuda::MaskKernel launched = kernel == cuda::MaskKernel::Simple ? kernel : cuda::MaskKernel::Fast;
    checkCuda(cuda::nablaMask(where.device, params, qd, kd, dtype, cd, id, md, kernel, &launched));
    stage.finish();
    return cudaMaskKernelName(launched);
  });
}

// Host masks are checked before any kernel reads them: counts in [0, nk], and each row's listed ids
// in [0, nk) and strictly ascending, hence distinct (a repeated block would count twice in the
// softmax). One pass over the lists.
static void checkHostMask(Napi::Env env, const Operand& counts, const Operand& indices, int64_t rows, int64_t nk) {
  const auto* c = static_cast<const int32_t*>(counts.data);
  const auto* idx = static_cast<const int32_t*>(indices.data);
  for (int64_t r = 0; r < rows; ++r) {
    if (c[r] < 0 || c[r] > nk)
      throwRangeError(env, "mask.kvCounts", "counts in [0, " + std::to_string(nk) + "]",
                      std::to_string(c[r]) + " at row " + std::to_string(r));
    int64_t previous = -1;
    for (int32_t j = 0; j < c[r]; ++j) {
      const int32_t id = idx[r * nk + j];
      if (id < 0 || id >= nk)
        throwRangeError(env, "mask.kvIndices", "block ids in [0, " + std::to_string(nk) + ")",
                        std::to_string(id) + " at row " + std::to_string(r));
      if (id <= previous)
        throwRangeError(env, "mask.kvIndices", "block ids rising strictly within each row",
                        std::to_string(id) + " after " + std::to_string(previous) + " at row " + std::to_string(r));
      previous = id;
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
  const double scale = readNumber(args, "scale");
  if (!(scale > 0 && scale <= kMaxScale))
    throwRangeError(env, "scale", "a positive number of at most 65536", describe(args.Get("scale")));
  p.scale = float(scale);
  const std::string kernelName = readString(args, "kernel", {"auto", "fast", "simple", "hopper", "fast2"});
  const auto kernel = kernelName == "fast"     ? cuda::AttentionKernel::Fast
                      : kernelName == "fast2"  ? cuda::AttentionKernel::Fast2
                      : kernelName == "hopper" ? cuda::AttentionKernel::Hopper
                      : kernelName == "simple" ? cuda::AttentionKernel::Simple
                                               : cuda::AttentionKernel::Auto;
  const std::string cpuKernelName = readOptionalString(args, "cpuKernel", {"auto", "avx2", "scalar"}, "auto");
  const auto cpuKernel = cpuKernelName == "avx2"     ? cpu::CpuKernel::Avx2
                         : cpuKernelName == "scalar" ? cpu::CpuKernel::Scalar
                                                     : cpu::CpuKernel::Auto;
  const int64_t nq = p.qBlocks(), nk = p.kvBlocks();

  Holds holds;
  Operand q =
      readOperand(args, "q", storageOf(dtype), elementCount(env, "q", {p.batch, p.heads, p.seqQ, p.headDim}), holds);
  Operand k =
      readOperand(args, "k", storageOf(dtype), elementCount(env, "k", {p.batch, p.heads, p.seqKv, p.headDim}), holds);
  Operand v =
      readOperand(args, "v", storageOf(dtype), elementCount(env, "v", {p.batch, p.heads, p.seqKv, p.valueDim}), holds);
  Operand out = readOperand(args, "out", storageOf(dtype),
                            elementCount(env, "out", {p.batch, p.heads, p.seqQ, p.valueDim}), holds);
  Operand counts = readOptionalOperand(args, "kvCounts", Storage::Int32,
                                       elementCount(env, "kvCounts", {p.batch, p.heads, nq}), holds);
  Operand indices = readOptionalOperand(args, "kvIndices", Storage::Int32,
                                        elementCount(env, "kvIndices", {p.batch, p.heads, nq, nk}), holds);
  const bool sparse = counts.bytes > 0, sparseIndices = indices.bytes > 0;
  if (sparse != sparseIndices)
    throwTypeError(env, "kvCounts and kvIndices", "both (block-sparse) or neither (dense)",
                   args.Get(sparse ? "kvCounts" : "kvIndices"));
  if (counts.onDevice() != indices.onDevice())
    throw Napi::TypeError::New(env,
                               "Expected both on the host or both on one device for kvCounts and kvIndices "
                               "but received one of each");
  Placement where = readPlacement(args, {&q, &k, &v, &out, &counts, &indices});
  rereadHostOperands(env, {&q, &k, &v, &out, &counts, &indices});  // no JS runs after this
  if (!where.cuda && cpuKernel == cpu::CpuKernel::Avx2) {
    const std::string why = cpu::avx2Unavailable();
    if (!why.empty())
      throw toJsError(env,
                      OpError("Expected a CPU kernel this machine can run for cpuKernel but received 'avx2': " + why,
                              "ERR_NABLA_KERNEL_UNAVAILABLE"));
  }
  // Host lists are checked where the kernels read them. An async op, and any op whose lists live
  // in a SharedArrayBuffer (another thread can change it under even a sync op), checks and reads
  // a copy that JS cannot change; a sync op over plain buffers reads them in place (no JS runs
  // until it returns: at 720p a copy would cost 176 MB per call). An async op also reads copies
  // of its host inputs (ownHostInput); its outputs are written in place.
  const bool async = readAsync(info);
  if (sparse && !counts.onDevice()) {
    if (async || counts.shared) ownHostInput(env, counts, holds);
    if (async || indices.shared) ownHostInput(env, indices, holds);
    checkHostMask(env, counts, indices, p.batch * p.heads * nq, nk);
  }
  if (async) {
    ownHostInput(env, q, holds);
    ownHostInput(env, k, holds);
    ownHostInput(env, v, holds);
  }

  return runOp(env, async, std::move(holds), [=]() -> const char* {
    AttentionParams params = p;
    if (!where.cuda) {
      params.kvCounts = static_cast<const int32_t*>(counts.data);
      params.kvIndices = static_cast<const int32_t*>(indices.data);
      return cpu::attention(params, q.data, k.data, v.data, dtype, out.data, cpuKernel) == cpu::CpuKernel::Scalar
                 ? "cpu-scalar"
                 : "cpu-avx2";
    }
    CudaStage stage(where.device);
    params.kvCounts = static_cast<const int32_t*>(stage.input(counts));
    params.kvIndices = static_cast<const int32_t*>(stage.input(indices));
    const void* qd = stage.input(q);
    const void* kd = stage.input(k);
    const void* vd = stage.input(v);
    void* od = stage.output(out);
    cuda::AttentionKernel launched = cuda::AttentionKernel::Simple;
    checkCuda(cuda::attention(where.device, params, qd, kd, vd, dtype, od, kernel, &launched));
    stage.finish();
    return cudaAttentionKernelName(launched);
  });
}

}  // namespace napi
}  // namespace nabla
