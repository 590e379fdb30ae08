// Error reporting at the JS boundary. Argument errors read like the TypeScript layer's:
//   Expected <what> for <param> but received <value>
// Failures inside an op (CUDA errors, out of memory) travel as OpError from worker threads and
// become JS Errors with a `code` on the main thread.
#pragma once

#include <napi.h>

#include <stdexcept>
#include <string>

namespace nabla {
namespace napi {

// A short description of a JS value for messages: "3.5", "'abc'", "Float64Array(12)", "undefined".
std::string describe(const Napi::Value& v);

[[noreturn]] void throwTypeError(Napi::Env env, const std::string& param, const std::string& expected,
                                 const Napi::Value& received);
[[noreturn]] void throwRangeError(Napi::Env env, const std::string& param, const std::string& expected,
                                  const std::string& received);

struct OpError : std::runtime_error {
  std::string code;   // e.g. "cudaErrorMemoryAllocation", "ERR_NABLA_CUDA_UNAVAILABLE"
  int cudaError = 0;  // the cudaError_t value, 0 when not a CUDA runtime error
  OpError(std::string message, std::string code, int cudaError = 0)
      : std::runtime_error(std::move(message)), code(std::move(code)), cudaError(cudaError) {}
};

Napi::Error toJsError(Napi::Env env, const OpError& e);

// Throws when a Node-API call failed: the pending JS exception if the call left one, else an Error
// with code ERR_NABLA_INTERNAL naming the call.
void checkNapi(Napi::Env env, napi_status status, const char* call);

}  // namespace napi
}  // namespace nabla
