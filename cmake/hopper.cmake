# The Hopper attention kernel (csrc/cuda/hopper, kernels/attention_hopper_*.cu): its host sources
# and the build checks that -Werror cannot make. ptxas reports register spills, stack frames and
# the wgmma/setmaxnreg performance losses (C7508: setmaxnreg ignored; C7510-C7520: wgmma
# serialized, waits inserted) as *info* lines; hopper-ptxas-check.sh runs every CUDA compile of the
# target and fails the ones of the Hopper kernel that print any of them.
if(NOT NABLA_WITH_CUDA)
  return()
endif()

file(GLOB NABLA_HOPPER_HOST_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/../csrc/cuda/hopper/*.cu)
target_sources(${PROJECT_NAME} PRIVATE ${NABLA_HOPPER_HOST_SOURCES})

file(GLOB NABLA_HOPPER_KERNEL_SOURCES CONFIGURE_DEPENDS
  ${CMAKE_CURRENT_LIST_DIR}/../csrc/cuda/kernels/attention_hopper_*.cu)
set_source_files_properties(${NABLA_HOPPER_KERNEL_SOURCES} PROPERTIES COMPILE_OPTIONS "-Xptxas=-v")
# The opt-in fast2 kernels (attention, mask, pooling) keep their rows and fragments in registers by
# design: the same check fails a compile of theirs that gets a stack frame or a spill.
file(GLOB NABLA_FAST2_KERNEL_SOURCES CONFIGURE_DEPENDS
  ${CMAKE_CURRENT_LIST_DIR}/../csrc/cuda/kernels/attention_fast2_*.cu
  ${CMAKE_CURRENT_LIST_DIR}/../csrc/cuda/mask.cu
  ${CMAKE_CURRENT_LIST_DIR}/../csrc/cuda/pool.cu)
set_source_files_properties(${NABLA_FAST2_KERNEL_SOURCES} PROPERTIES COMPILE_OPTIONS "-Xptxas=-v")

# NABLA_HOPPER_SPIN_LIMIT_NS: when set to a positive number of nanoseconds, every mbarrier wait of
# the Hopper kernel traps after waiting that long, so a pipeline phase that never completes fails
# the launch instead of hanging the process (ptx_sm90.cuh, ptx::wait). For GPU test rounds of the
# unverified kernel (bench/hopper/README.md); empty (off) by default, and release builds leave it
# off. The environment variable of the same name sets it for `npm run build:native` without
# touching the cache, so the next build without it is a release build again.
set(NABLA_HOPPER_SPIN_LIMIT_NS "" CACHE STRING "Hopper-kernel barrier waits trap after this many ns (empty: off)")
if(DEFINED ENV{NABLA_HOPPER_SPIN_LIMIT_NS})
  set(NABLA_HOPPER_SPIN_LIMIT_NS "$ENV{NABLA_HOPPER_SPIN_LIMIT_NS}")
endif()
if(NOT NABLA_HOPPER_SPIN_LIMIT_NS STREQUAL "")
  if(NOT NABLA_HOPPER_SPIN_LIMIT_NS MATCHES "^[1-9][0-9]*$")
    message(FATAL_ERROR "NABLA_HOPPER_SPIN_LIMIT_NS must be a positive number of nanoseconds, got '${NABLA_HOPPER_SPIN_LIMIT_NS}'")
  endif()
  set_property(SOURCE ${NABLA_HOPPER_KERNEL_SOURCES} APPEND PROPERTY COMPILE_DEFINITIONS
    "NABLA_HOPPER_SPIN_LIMIT_NS=${NABLA_HOPPER_SPIN_LIMIT_NS}ULL")
  message(STATUS "nabla-attention: Hopper kernel barrier waits trap after ${NABLA_HOPPER_SPIN_LIMIT_NS} ns")
endif()

if(NOT WIN32)
  get_target_property(NABLA_OTHER_CUDA_LAUNCHER ${PROJECT_NAME} CUDA_COMPILER_LAUNCHER)
  if(NOT NABLA_OTHER_CUDA_LAUNCHER)
    set(NABLA_OTHER_CUDA_LAUNCHER "")
  endif()
  set_property(TARGET ${PROJECT_NAME} PROPERTY CUDA_COMPILER_LAUNCHER
    "${CMAKE_CURRENT_LIST_DIR}/hopper-ptxas-check.sh" ${NABLA_OTHER_CUDA_LAUNCHER})
endif()
