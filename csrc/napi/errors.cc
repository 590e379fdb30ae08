#include "errors.h"

namespace nabla {
namespace napi {

std::string describe(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? "true" : "false";
  if (v.IsNumber()) {
    Napi::Value s = v.ToString();
    return s.As<Napi::String>().Utf8Value();
  }
  if (v.IsString()) {
    std::string s = v.As<Napi::String>().Utf8Value();
    if (s.size() > 40) s = s.substr(0, 40) + "...";
    return "'" + s + "'";
  }
  if (v.IsBigInt()) return v.ToString().Utf8Value();  // decimal, as String(value) in lib/errors.ts
  if (v.IsTypedArray()) {
    Napi::TypedArray t = v.As<Napi::TypedArray>();
    Napi::Value ctor = t.Get("constructor");
    std::string name = "TypedArray";
    if (ctor.IsFunction()) name = ctor.As<Napi::Object>().Get("name").ToString().Utf8Value();
    return name + "(" + std::to_string(t.ElementLength()) + ")";
  }
  if (v.IsArray()) return "Array(" + std::to_string(v.As<Napi::Array>().Length()) + ")";
  if (v.IsFunction()) return "a function";
  if (v.IsObject()) return "an object";
  return "a value of another type";
}

void throwTypeError(Napi::Env env, const std::string& param, const std::string& expected, const Napi::Value& received) {
  throw Napi::TypeError::New(env, "Expected " + expected + " for " + param + " but received " + describe(received));
}

void throwRangeError(Napi::Env env, const std::string& param, const std::string& expected,
                     const std::string& received) {
  throw Napi::RangeError::New(env, "Expected " + expected + " for " + param + " but received " + received);
}

Napi::Error toJsError(Napi::Env env, const OpError& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  err.Set("code", Napi::String::New(env, e.code));
  if (e.cudaError != 0) err.Set("cudaError", Napi::Number::New(env, e.cudaError));
  return err;
}

void checkNapi(Napi::Env env, napi_status status, const char* call) {
  if (status == napi_ok) return;
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) throw Napi::Error::New(env);
  const napi_extended_error_info* info = nullptr;
  std::string why = napi_get_last_error_info(env, &info) == napi_ok && info && info->error_message
                        ? info->error_message
                        : "status " + std::to_string(int(status));
  throw toJsError(env, OpError(std::string(call) + " failed: " + why, "ERR_NABLA_INTERNAL"));
}

}  // namespace napi
}  // namespace nabla
