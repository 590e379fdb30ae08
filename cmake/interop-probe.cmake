# nabla_interop_probe.node: a test-only addon that plays "another library's GPU code" for the
# CUDA interop tests (test/native/interop_probe.cu). Built beside the package's addon by CUDA
# builds of a checkout; the published package has no test/ folder and builds nothing here.
set(NABLA_INTEROP_PROBE_SOURCE "${CMAKE_SOURCE_DIR}/test/native/interop_probe.cu")
if(NABLA_WITH_CUDA AND EXISTS "${NABLA_INTEROP_PROBE_SOURCE}")
  add_library(nabla_interop_probe SHARED "${NABLA_INTEROP_PROBE_SOURCE}" ${CMAKE_JS_SRC})
  set_target_properties(nabla_interop_probe PROPERTIES PREFIX "" SUFFIX ".node")
  target_include_directories(nabla_interop_probe PRIVATE ${CMAKE_JS_INC} "${CMAKE_SOURCE_DIR}/${NODE_ADDON_API_DIR}")
  target_link_libraries(nabla_interop_probe PRIVATE ${CMAKE_JS_LIB})
  target_compile_definitions(nabla_interop_probe PRIVATE NAPI_VERSION=8 NAPI_CPP_EXCEPTIONS
    NODE_ADDON_API_DISABLE_DEPRECATED)
  target_compile_options(nabla_interop_probe PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>)
endif()
