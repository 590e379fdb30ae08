// Running an op synchronously (on the JS thread) or asynchronously (on a libuv worker thread,
// settling a Promise). Either way the op's inputs and outputs stay referenced and their device
// buffers stay in use until it finishes.
#pragma once

#include <napi.h>

#include <functional>

#include "args.h"

namespace nabla {
namespace napi {

// work() runs the op and reports failure by throwing OpError (or std::bad_alloc).
using Work = std::function<void()>;

// Returns undefined (sync) or a Promise<undefined> (async). A sync failure throws a JS Error.
Napi::Value runOp(Napi::Env env, bool async, Holds holds, Work work);

}  // namespace napi
}  // namespace nabla
