// Loops built twice, portable and for AVX2, with the choice made at run time (pool.cc, mask.cc).
//
// The AVX2 copies are compiled without FMA on purpose: a * b + c still rounds twice, as in the
// portable copy, so both return the same bits and the mask does not depend on the CPU it ran on.
// The shared body is NABLA_ALWAYS_INLINE so that each copy is compiled for its own target.
#pragma once

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define NABLA_DISPATCH_AVX2 1
#define NABLA_TARGET_AVX2 __attribute__((target("avx2")))
#endif

#if defined(__GNUC__) || defined(__clang__)
#define NABLA_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define NABLA_ALWAYS_INLINE inline
#endif

namespace nabla {
namespace cpu {

// True when the AVX2 copies can run on this CPU.
inline bool useAvx2Loops() {
#ifdef NABLA_DISPATCH_AVX2
  static const bool hasAvx2 = __builtin_cpu_supports("avx2");
  return hasAvx2;
#else
  return false;
#endif
}

}  // namespace cpu
}  // namespace nabla
