// The op entry points exported to JS: fn(args: object, async: boolean) -> undefined | Promise.
#pragma once

#include <napi.h>

namespace nabla {
namespace napi {

Napi::Value BlockPool(const Napi::CallbackInfo& info);
Napi::Value NablaMask(const Napi::CallbackInfo& info);
Napi::Value Attention(const Napi::CallbackInfo& info);

}  // namespace napi
}  // namespace nabla
