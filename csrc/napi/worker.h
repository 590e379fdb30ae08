// Running an op synchronously (on the JS thread) or asynchronously (on a libuv worker thread,
// settling a Promise). Either way the op's inputs and outputs stay referenced and their device
// buffers stay in use until it finishes.
//
// The async completion uses the plain Node-API calls and checks their status instead of throwing:
// when the environment that started the op is being torn down (worker.terminate(), process.exit()
// in a worker) the op still finishes, but JS can no longer run, the Promise cannot be settled and
// an exception thrown from the completion would end the whole process. Such a result is dropped;
// the op's copies, references and device-buffer uses are released all the same.
#pragma once

#include <napi.h>

#include <functional>

#include "args.h"

namespace nabla {
namespace napi {

// work() runs the op and returns the name of the kernel that ran (a string literal, or nullptr
// for ops that report none). It reports failure by throwing OpError (or std::bad_alloc).
using Work = std::function<const char*()>;

// Returns the kernel name (undefined when none; sync) or a Promise of it (async). A sync failure
// throws a JS Error.
Napi::Value runOp(Napi::Env env, bool async, Holds holds, Work work);

}  // namespace napi
}  // namespace nabla
