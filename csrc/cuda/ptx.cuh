// Thin wrappers over the sm_80+ PTX the fast attention kernel is built from: cp.async (global ->
// shared copies that bypass registers), ldmatrix (shared -> mma fragments) and
// mma.sync.m16n8k16 with fp32 accumulators. Fragment layouts (PTX ISA, "Matrix fragments for
// mma.m16n8k16"), with g = lane / 4 and c = lane % 4:
//   A 16x16 (row-major), 4 x b32: a0 = A[g][2c..2c+1], a1 = A[g+8][2c..], a2 = A[g][2c+8..], a3 = A[g+8][2c+8..]
//   B 16x8 (k x n),      2 x b32: b0 = B[2c..2c+1][g], b1 = B[2c+8..2c+9][g]
//   C 16x8 fp32,         4 x f32: c0,c1 = C[g][2c..2c+1], c2,c3 = C[g+8][2c..2c+1]
// The lower-indexed element of a pair sits in the low 16 bits.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

namespace nabla {
namespace cuda {
namespace ptx {

__device__ __forceinline__ uint32_t sharedAddress(const void* pointer) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(pointer));
}

// 16 bytes global -> shared, asynchronous (L2 only: tiles are reused through shared memory).
__device__ __forceinline__ void copyAsync16(void* sharedDst, const void* globalSrc) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(sharedAddress(sharedDst)), "l"(globalSrc)
               : "memory");
}
// Same with zero-fill: when !valid, nothing is read (src-size 0; globalSrc need only be a valid
// address) and the 16 shared bytes become zeros.
__device__ __forceinline__ void copyAsync16OrZero(void* sharedDst, const void* globalSrc, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(sharedAddress(sharedDst)), "l"(globalSrc),
               "r"(valid ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void commitAsyncCopies() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Waits for all of this thread's committed copies (a __syncthreads must follow before other
// threads read them).
__device__ __forceinline__ void waitAsyncCopies() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }

// Four 8x8 b16 matrices; lanes 8m..8m+7 give the row addresses of matrix m, register m receives
// matrix m with lane l holding row l/4, columns 2(l%4) and 2(l%4)+1.
__device__ __forceinline__ void loadMatrixX4(uint32_t (&r)[4], const void* rowAddress) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(sharedAddress(rowAddress))
               : "memory");
}
// Same, transposed: lane l receives rows 2(l%4) and 2(l%4)+1 of column l/4.
__device__ __forceinline__ void loadMatrixX4Transposed(uint32_t (&r)[4], const void* rowAddress) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(sharedAddress(rowAddress))
               : "memory");
}

// C += A B for one 16x8x16 step; Elem selects f16 or bf16 inputs.
template <typename Elem>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  static_assert(std::is_same<Elem, __half>::value || std::is_same<Elem, __nv_bfloat16>::value,
                "mma16816 takes __half or __nv_bfloat16");
  if constexpr (std::is_same<Elem, __half>::value) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// Two fp32 -> one b32 of two Elem (round to nearest even), lo in the low half.
template <typename Elem>
__device__ __forceinline__ uint32_t packPair(float lo, float hi) {
  if constexpr (std::is_same<Elem, __half>::value) {
    const __half2 pair = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&pair);
  } else {
    const __nv_bfloat162 pair = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&pair);
  }
}

}  // namespace ptx
}  // namespace cuda
}  // namespace nabla
