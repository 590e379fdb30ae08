// Moving an op's operands onto the CUDA device it runs on. Device operands are used in place;
// host operands are copied into temporaries (inputs before the op, outputs back after it), so a
// host tensor given to a CUDA op works transparently. Temporaries are freed on every path.
#pragma once

#include <vector>

#include "../cuda/cuda_backend.h"
#include "args.h"
#include "errors.h"

namespace nabla {
namespace napi {

// Throws OpError for a failed CUDA call (in an op's body, which runOp turns into a rejection).
void checkCuda(const cuda::Status& s);
// The same on the JS thread: throws the JS error, its code the status's name.
void checkCudaHere(Napi::Env env, const cuda::Status& s);

class CudaStage {
 public:
  explicit CudaStage(int device) : device_(device) {}
  ~CudaStage();
  CudaStage(const CudaStage&) = delete;
  CudaStage& operator=(const CudaStage&) = delete;

  int device() const { return device_; }
  // Device pointer holding the input's contents (null for an empty optional operand).
  const void* input(const Operand& op);
  // Device pointer the op writes; copied back to the host operand by finish().
  void* output(const Operand& op);
  // Copies outputs back to the host. Call after the op succeeded.
  void finish();

 private:
  void* temporary(size_t bytes);
  int device_;
  std::vector<void*> temps_;
  struct CopyBack {
    void* host;
    const void* dev;
    size_t bytes;
  };
  std::vector<CopyBack> copyBack_;
};

}  // namespace napi
}  // namespace nabla
