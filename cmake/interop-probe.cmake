# nabla_interop_probe.node: a test-only addon that plays "another library's GPU code" for the
# CUDA interop tests (test/native/interop_probe*). Built beside the package's addon by CUDA
# builds of a checkout; the published package has no test/ folder and builds nothing here.
# Like the main target, napi.h is compiled by the host compiler only (interop_probe.cc); nvcc
# compiles the CUDA half (interop_probe_cuda.cu), which includes nothing of Node's.
set(NABLA_INTEROP_PROBE_DIR "${CMAKE_SOURCE_DIR}/test/native")
if(NABLA_WITH_CUDA AND EXISTS "${NABLA_INTEROP_PROBE_DIR}/interop_probe.cc")
  add_library(nabla_interop_probe SHARED "${NABLA_INTEROP_PROBE_DIR}/interop_probe.cc"
    "${NABLA_INTEROP_PROBE_DIR}/interop_probe_cuda.cu" ${CMAKE_JS_SRC})
  set_target_properties(nabla_interop_probe PROPERTIES PREFIX "" SUFFIX ".node")
  target_include_directories(nabla_interop_probe PRIVATE ${CMAKE_JS_INC} "${CMAKE_SOURCE_DIR}/${NODE_ADDON_API_DIR}")
  target_link_libraries(nabla_interop_probe PRIVATE ${CMAKE_JS_LIB})
  target_compile_definitions(nabla_interop_probe PRIVATE NAPI_VERSION=8 NAPI_CPP_EXCEPTIONS
    NODE_ADDON_API_DISABLE_DEPRECATED)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(nabla_interop_probe PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>)
  endif()
  target_compile_options(nabla_interop_probe PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>)
endif()
