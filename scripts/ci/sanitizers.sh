#!/usr/bin/env bash
# CI job: the CPU path (NABLA_CUDA=OFF) built with AddressSanitizer + UndefinedBehaviorSanitizer in
# build-asan/, then the CPU jest suites against it with leak detection on. Node itself is not
# instrumented, so the gcc runtime is preloaded; any report fails the job (halt_on_error, and a
# non-zero exit from leaks at exit).
set -euo pipefail
cd "$(dirname "$0")/../.."

jobs=$(nproc)
# cmake-js sets CMAKE_CXX_FLAGS itself: the sanitizer flags go in the Release flags it leaves alone
flags="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
node node_modules/cmake-js/bin/cmake-js configure --out build-asan --CDNABLA_CUDA=OFF \
  "--CDCMAKE_CXX_FLAGS_RELEASE=$flags" "--CDCMAKE_SHARED_LINKER_FLAGS=-fsanitize=address,undefined"
node node_modules/cmake-js/bin/cmake-js build --out build-asan --parallel "$jobs"
grep -q fsanitize=address build-asan/build.ninja  # the flags reached the compiler
npm run --silent build:ts

asan_runtime=$(g++ -print-file-name=libasan.so)
export NABLA_NATIVE_PATH="$PWD/build-asan/Release/nabla_attention.node"
export LD_PRELOAD="$asan_runtime"
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:exitcode=86"
export LSAN_OPTIONS="suppressions=$PWD/scripts/ci/lsan.supp:print_suppressions=0:exitcode=86"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=87"
# one process: a report at exit (leaks) sets jest's own exit status
node node_modules/jest/bin/jest.js --config scripts/ci/jest.sanitizers.config.js --runInBand test/attention.test.ts test/mask.test.ts test/mask-rules.test.ts test/blockmask.test.ts \
  test/tiles.test.ts test/validation.test.ts test/npy.test.ts test/fuzz.test.ts test/native-safety.test.ts \
  test/mask-order.test.ts test/tensor-interop.test.ts test/device-memory.test.ts
