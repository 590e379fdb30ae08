#include "worker.h"

#include <memory>
#include <new>
#include <optional>

#include "errors.h"

namespace nabla {
namespace napi {
namespace {

// Runs work, turning every failure into an OpError.
std::optional<OpError> runCatching(const Work& work, const char** kernel) {
  try {
    *kernel = work();
  } catch (const OpError& e) {
    return e;
  } catch (const std::bad_alloc&) {
    return OpError("out of host memory while running the op", "ERR_NABLA_OUT_OF_HOST_MEMORY");
  } catch (const std::exception& e) {
    return OpError(e.what(), "ERR_NABLA_INTERNAL");
  } catch (...) {
    return OpError("the op failed with an unknown exception", "ERR_NABLA_INTERNAL");
  }
  return std::nullopt;
}

// One async op: what it holds, its work and its outcome. Owned by the libuv request; deleted by
// the completion callback, which Node calls exactly once (also while tearing an environment down).
struct PendingOp {
  napi_env env = nullptr;
  napi_async_work request = nullptr;
  napi_deferred deferred = nullptr;
  std::vector<napi_ref> refs;  // inputs and outputs kept from the garbage collector
  Holds holds;                 // copies of host inputs and device-buffer uses
  Work work;
  const char* kernel = nullptr;
  std::optional<OpError> failure;

  ~PendingOp() {
    for (auto& memory : holds.memories) memory->releaseUse();
    // failures here mean the environment is gone, and its references with it
    for (napi_ref ref : refs) napi_delete_reference(env, ref);
    if (request != nullptr) napi_delete_async_work(env, request);
  }
};

void execute(napi_env, void* data) {
  auto* op = static_cast<PendingOp*>(data);
  op->failure = runCatching(op->work, &op->kernel);
}

// The settled value, or nullptr if it cannot be made (the environment is shutting down).
napi_value settledValue(napi_env env, const PendingOp& op) {
  napi_value value = nullptr;
  if (op.failure) {
    napi_value message = nullptr, code = nullptr;
    if (napi_create_string_utf8(env, op.failure->what(), NAPI_AUTO_LENGTH, &message) != napi_ok ||
        napi_create_string_utf8(env, op.failure->code.c_str(), NAPI_AUTO_LENGTH, &code) != napi_ok ||
        napi_create_error(env, code, message, &value) != napi_ok ||
        napi_set_named_property(env, value, "code", code) != napi_ok)
      return nullptr;
    if (op.failure->cudaError != 0) {
      napi_value cudaError = nullptr;
      if (napi_create_int32(env, op.failure->cudaError, &cudaError) != napi_ok ||
          napi_set_named_property(env, value, "cudaError", cudaError) != napi_ok)
        return nullptr;
    }
    return value;
  }
  napi_status s =
      op.kernel ? napi_create_string_utf8(env, op.kernel, NAPI_AUTO_LENGTH, &value) : napi_get_undefined(env, &value);
  return s == napi_ok ? value : nullptr;
}

void complete(napi_env env, napi_status status, void* data) {
  std::unique_ptr<PendingOp> op(static_cast<PendingOp*>(data));
  if (status != napi_ok) return;  // cancelled: nobody awaits the result
  napi_handle_scope scope = nullptr;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (napi_value value = settledValue(env, *op)) {
    // A failed settle leaves the deferred to the dying environment, which frees it.
    if (op->failure) napi_reject_deferred(env, op->deferred, value);
    else napi_resolve_deferred(env, op->deferred, value);
  }
  napi_close_handle_scope(env, scope);
}

Napi::Value queue(Napi::Env env, Holds holds, Work work) {
  auto op = std::make_unique<PendingOp>();
  op->env = env;
  op->work = std::move(work);
  for (auto& o : holds.objects) {
    napi_ref ref = nullptr;
    checkNapi(env, napi_create_reference(env, o, 1, &ref), "napi_create_reference");
    op->refs.push_back(ref);
  }
  holds.objects.clear();
  op->holds = std::move(holds);
  for (auto& memory : op->holds.memories) memory->acquire();
  napi_value promise = nullptr, name = nullptr;
  checkNapi(env, napi_create_promise(env, &op->deferred, &promise), "napi_create_promise");
  checkNapi(env, napi_create_string_utf8(env, "nabla-attention:op", NAPI_AUTO_LENGTH, &name),
            "napi_create_string_utf8");
  checkNapi(env, napi_create_async_work(env, nullptr, name, execute, complete, op.get(), &op->request),
            "napi_create_async_work");
  checkNapi(env, napi_queue_async_work(env, op->request), "napi_queue_async_work");
  op.release();  // owned by the request now; complete() deletes it
  return Napi::Value(env, promise);
}

}  // namespace

Napi::Value runOp(Napi::Env env, bool async, Holds holds, Work work) {
  if (async) return queue(env, std::move(holds), std::move(work));
  for (auto& memory : holds.memories) memory->acquire();
  const char* kernel = nullptr;
  std::optional<OpError> failure = runCatching(work, &kernel);
  for (auto& memory : holds.memories) memory->releaseUse();
  if (failure) throw toJsError(env, *failure);
  return kernel ? Napi::Value(Napi::String::New(env, kernel)) : env.Undefined();
}

}  // namespace napi
}  // namespace nabla
