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

if(NOT WIN32)
  get_target_property(NABLA_OTHER_CUDA_LAUNCHER ${PROJECT_NAME} CUDA_COMPILER_LAUNCHER)
  if(NOT NABLA_OTHER_CUDA_LAUNCHER)
    set(NABLA_OTHER_CUDA_LAUNCHER "")
  endif()
  set_property(TARGET ${PROJECT_NAME} PROPERTY CUDA_COMPILER_LAUNCHER
    "${CMAKE_CURRENT_LIST_DIR}/hopper-ptxas-check.sh" ${NABLA_OTHER_CUDA_LAUNCHER})
endif()
