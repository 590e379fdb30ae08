{
  "targets": [
    {
      "target_name": "nabla_attention",
      "sources": [
        "csrc/core/thread_pool.cc",
        "csrc/cpu/pool.cc",
        "csrc/cpu/mask.cc",
        "csrc/cpu/attention.cc",
        "csrc/cuda/stub.cc",
        "csrc/napi/addon.cc",
        "csrc/napi/args.cc",
        "csrc/napi/cuda_stage.cc",
        "csrc/napi/device_buffer.cc",
        "csrc/napi/device_interop.cc",
        "csrc/napi/errors.cc",
        "csrc/napi/host_copy.cc",
        "csrc/napi/ops.cc",
        "csrc/napi/worker.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17"
      },
      "msvs_settings": { "VCCLCompilerTool": { "ExceptionHandling": 1, "AdditionalOptions": ["/std:c++17"] } }
    }
  ]
}
