#include "cuda_stage.h"

namespace nabla {
namespace napi {

void checkCuda(const cuda::Status& s) {
  if (!s.ok()) throw OpError(s.message, s.name.empty() ? "ERR_NABLA_CUDA" : s.name, s.code);
}

void checkCudaHere(Napi::Env env, const cuda::Status& s) {
  if (!s.ok()) throw toJsError(env, OpError(s.message, s.name, s.code));
}

// Stream-ordered: the op's work on the device's stream is ahead of these frees.
CudaStage::~CudaStage() {
  for (void* p : temps_) cuda::release(device_, p);
}

void* CudaStage::temporary(size_t bytes) {
  void* p = nullptr;
  checkCuda(cuda::allocate(device_, bytes ? bytes : 1, &p));
  temps_.push_back(p);
  return p;
}

const void* CudaStage::input(const Operand& op) {
  if (!op.data) return nullptr;
  if (op.onDevice()) return op.data;
  void* p = temporary(op.bytes);
  checkCuda(cuda::copyToDevice(device_, p, op.data, op.bytes));
  return p;
}

void* CudaStage::output(const Operand& op) {
  if (!op.data) return nullptr;
  if (op.onDevice()) return op.data;
  void* p = temporary(op.bytes);
  copyBack_.push_back({op.data, p, op.bytes});
  return p;
}

void CudaStage::finish() {
  for (const auto& c : copyBack_) checkCuda(cuda::copyToHost(device_, c.host, c.dev, c.bytes));
}

}  // namespace napi
}  // namespace nabla
