#include "worker.h"

#include <new>
#include <optional>

#include "errors.h"

namespace nabla {
namespace napi {
namespace {

// Runs work, turning every failure into an OpError.
std::optional<OpError> runCatching(const Work& work) {
  try {
    work();
  } catch (const OpError& e) {
    return e;
  } catch (const std::bad_alloc&) {
    return OpError("out of host memory while running the op", "ERR_NABLA_OUT_OF_HOST_MEMORY");
  } catch (const std::exception& e) {
    return OpError(e.what(), "ERR_NABLA_INTERNAL");
  }
  return std::nullopt;
}

class OpWorker : public Napi::AsyncWorker {
 public:
  OpWorker(Napi::Env env, Holds holds, Work work)
      : Napi::AsyncWorker(env, "nabla-attention:op"), deferred_(Napi::Promise::Deferred::New(env)),
        buffers_(std::move(holds.buffers)), work_(std::move(work)) {
    for (auto& o : holds.objects) refs_.push_back(Napi::Persistent(o));
    for (auto* b : buffers_) b->acquire();
  }
  ~OpWorker() override {
    for (auto* b : buffers_) b->releaseUse();
  }
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override { failure_ = runCatching(work_); }
  void OnOK() override {
    if (failure_) deferred_.Reject(toJsError(Env(), *failure_).Value());
    else deferred_.Resolve(Env().Undefined());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<Napi::ObjectReference> refs_;
  std::vector<DeviceBuffer*> buffers_;
  Work work_;
  std::optional<OpError> failure_;
};

}  // namespace

Napi::Value runOp(Napi::Env env, bool async, Holds holds, Work work) {
  if (async) {
    auto* worker = new OpWorker(env, std::move(holds), std::move(work));
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
  }
  for (auto* b : holds.buffers) b->acquire();
  std::optional<OpError> failure = runCatching(work);
  for (auto* b : holds.buffers) b->releaseUse();
  if (failure) throw toJsError(env, *failure);
  return env.Undefined();
}

}  // namespace napi
}  // namespace nabla
