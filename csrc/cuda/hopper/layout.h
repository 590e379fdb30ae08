// Pure layout arithmetic of the Hopper attention kernel, shared by the kernel and by the host unit
// tests (test/native/hopper_layout.cc): no CUDA header, every function host + device.
//
// Glossary (PTX ISA, "Asynchronous Warpgroup Level Matrix Shared Memory Layout"):
//   swizzle atom   8 rows x 128 bytes = 1024 B; the 16-byte chunk j of row r (r < 8) is stored at
//                  chunk j ^ r. TMA with CU_TENSOR_MAP_SWIZZLE_128B writes exactly this pattern and
//                  wgmma reads it back, both computing the XOR from address bits [7:9] -> [4:6],
//                  so every tile starts on a 1024-byte boundary.
//   tile half      a 64-row tile of head dim 128 is two 64 x 64 halves (one per 128-byte row of
//                  64 elements), 8 KiB each, half h holding dims 64h..64h+63; one TMA box each.
//   descriptor     64-bit wgmma operand descriptor: bits 0-13 start address >> 4, 16-29 leading
//                  byte offset (LBO) >> 4, 32-45 stride byte offset (SBO) >> 4, 49-51 base offset,
//                  62-63 swizzle (0 none, 1 = 128B, 2 = 64B, 3 = 32B).
//   K-major        operand stored with the reduction dim contiguous (Q rows, K rows): SBO = 1024
//                  (next 8 rows), LBO unused (1); advancing 16 elements of K = +32 bytes of start.
//   MN-major       operand stored with M/N contiguous (V rows: keys x dims, dims contiguous,
//                  "transposed B"): LBO = 8192 (next 64 dims = next tile half), SBO = 1024 (next 8
//                  keys); advancing 16 keys = +2048 bytes of start.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define NABLA_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define NABLA_HOST_DEVICE inline
#endif

namespace nabla {
namespace cuda {
namespace hopper {

constexpr int kSwizzleRowBytes = 128;                     // one swizzled row: 64 bf16/fp16 elements
constexpr int kSwizzleAtomBytes = 1024;                   // 8 rows
constexpr int kTileRows = 64;                             // one NABLA block of queries or keys
constexpr int kHalfBytes = kTileRows * kSwizzleRowBytes;  // 8 KiB: 64 rows x 64 elements

// Byte offset of 16-byte chunk `chunk` (0..7) of row `row` in a 128B-swizzled region that starts on
// a 1024-byte boundary: the chunk moves to chunk ^ (row % 8).
NABLA_HOST_DEVICE uint32_t swizzledChunkOffset(uint32_t row, uint32_t chunk) {
  return row * kSwizzleRowBytes + ((chunk ^ (row & 7u)) << 4);
}

// The same permutation written on a linear (unswizzled) byte offset, as the hardware applies it:
// bits [4:6] ^= bits [7:9]. An involution, hence a bijection on every 1024-byte atom.
NABLA_HOST_DEVICE uint32_t swizzle128(uint32_t linearOffset) {
  return linearOffset ^ (((linearOffset >> 7) & 7u) << 4);
}

// Byte offset of element (row, col) of a [64][headDim] tile of 2-byte elements stored as
// headDim / 64 swizzled halves: the layout TMA produces with a 64 x 64 box and 128B swizzle.
NABLA_HOST_DEVICE uint32_t tileElementOffset(uint32_t row, uint32_t col) {
  const uint32_t half = col / 64, inHalf = col % 64;
  return half * kHalfBytes + swizzledChunkOffset(row, inHalf / 8) + (inHalf % 8) * 2;
}

enum class Swizzle : uint32_t { None = 0, B128 = 1, B64 = 2, B32 = 3 };

// wgmma shared-memory matrix descriptor (field layout in the glossary above).
NABLA_HOST_DEVICE uint64_t matrixDescriptor(uint32_t sharedAddress, uint32_t leadingBytes, uint32_t strideBytes,
                                            Swizzle swizzle) {
  uint64_t d = 0;
  d |= uint64_t((sharedAddress & 0x3FFFFu) >> 4);       // bits 0-13
  d |= uint64_t((leadingBytes & 0x3FFFFu) >> 4) << 16;  // bits 16-29
  d |= uint64_t((strideBytes & 0x3FFFFu) >> 4) << 32;   // bits 32-45
  // bits 49-51 (base offset) stay 0: every operand starts on a 1024-byte boundary
  d |= uint64_t(swizzle) << 62;  // bits 62-63
  return d;
}

// K-major operand (Q or K tile) at reduction step kk (16 elements each): tile half kk / 4, and
// +32 bytes per step inside the 128-byte swizzled row.
NABLA_HOST_DEVICE uint64_t kMajorDescriptor(uint32_t tileAddress, int kk) {
  return matrixDescriptor(tileAddress + uint32_t(kk / 4) * kHalfBytes + uint32_t(kk % 4) * 32u, 16u, kSwizzleAtomBytes,
                          Swizzle::B128);
}

// MN-major operand (V tile, keys x dims) at key step kk (16 keys = two 8-row groups).
NABLA_HOST_DEVICE uint64_t mnMajorDescriptor(uint32_t tileAddress, int kk) {
  return matrixDescriptor(tileAddress + uint32_t(kk) * 2u * kSwizzleAtomBytes, kHalfBytes, kSwizzleAtomBytes,
                          Swizzle::B128);
}

// Where wgmma reads element (row, k) of a K-major 128B-swizzled operand whose descriptor holds
// start address `start` and stride byte offset `sbo`: rows in 8-row groups sbo apart, 128 bytes per
// row, k contiguous, then the swizzle on the absolute address (the model against which the host
// test checks the descriptor advance; the GPU ladder checks the model).
NABLA_HOST_DEVICE uint32_t kMajorReadOffset(uint32_t start, uint32_t sbo, uint32_t row, uint32_t k) {
  return swizzle128(start + (row / 8) * sbo + (row % 8) * kSwizzleRowBytes + k * 2);
}

// Same for an MN-major operand: element (k, n) with n contiguous in 64-element atoms `lbo` apart,
// k in rows of 128 bytes, 8-row groups `sbo` apart.
NABLA_HOST_DEVICE uint32_t mnMajorReadOffset(uint32_t start, uint32_t lbo, uint32_t sbo, uint32_t k, uint32_t n) {
  return swizzle128(start + (n / 64) * lbo + (k / 8) * sbo + (k % 8) * kSwizzleRowBytes + (n % 64) * 2);
}

// ---- register fragments of wgmma .m64nNk16 (PTX ISA figures "WGMMA .m64nNk16 register fragment
// layout"), thread t of the warpgroup: w = t / 32, g = (t % 32) / 4, c = t % 4 ----
struct Cell {
  uint32_t row, col;
};
// Accumulator D (64 x N fp32, N/2 per thread): element i = 4j + 2h + e is D[16w + g + 8h][8j + 2c + e].
NABLA_HOST_DEVICE Cell accumulatorCell(uint32_t t, uint32_t i) {
  const uint32_t w = t / 32, g = (t % 32) / 4, c = t % 4, j = i / 4, h = (i % 4) / 2, e = i % 2;
  return Cell{16 * w + g + 8 * h, 8 * j + 2 * c + e};
}
// A from registers (64 x 16, four b32 per thread): half e (0 = low 16 bits) of register r is
// A[16w + g + 8 (r % 2)][2c + 8 (r / 2) + e].
NABLA_HOST_DEVICE Cell operandACell(uint32_t t, uint32_t r, uint32_t e) {
  const uint32_t w = t / 32, g = (t % 32) / 4, c = t % 4;
  return Cell{16 * w + g + 8 * (r % 2), 2 * c + 8 * (r / 2) + e};
}
// P = S (64 x 64) handed from the accumulator to the A operand of key step kk (keys 16kk..16kk+15)
// without leaving the thread: half e of register r comes from accumulator element
// 8kk + 4 (r / 2) + 2 (r % 2) + e (column tiles 2kk and 2kk + 1).
NABLA_HOST_DEVICE uint32_t pSourceIndex(uint32_t kk, uint32_t r, uint32_t e) {
  return 8 * kk + 4 * (r / 2) + 2 * (r % 2) + e;
}

// Position in a ring of `stages` buffers guarded by full/empty mbarrier pairs. The n-th tile of the
// stream (over all rows one consumer processes) uses stage n % stages in round n / stages; the
// consumer waits full[stage] for parity round & 1, the producer waits empty[stage] for parity
// (round & 1) ^ 1 (a fresh barrier counts as having completed the phase of parity 1, so the first
// round passes at once).
struct PipelineState {
  int stage = 0;
  uint32_t phase = 0;                                                    // round & 1
  NABLA_HOST_DEVICE uint32_t fullParity() const { return phase; }        // what the consumer waits for
  NABLA_HOST_DEVICE uint32_t emptyParity() const { return phase ^ 1u; }  // what the producer waits for
  NABLA_HOST_DEVICE void advance(int stages) {
    if (++stage == stages) {
      stage = 0;
      phase ^= 1u;
    }
  }
};

// K/V tiles of a row the producer issues BEFORE waiting for the row's Q slot (qEmpty, released
// only after the previous row's epilogue, which stages its output there): these load during that
// epilogue, so the ring is not empty when the row starts. At most `stages`: tile stages of the row
// would wait for the slot of the row's tile 0, freed only once the consumer has used tile 0, which
// needs the row's Q, not yet issued: a deadlock (test/native/hopper_pipeline.cc shows it).
NABLA_HOST_DEVICE int tilesBeforeQ(int count, int stages) { return count < stages ? count : stages; }

}  // namespace hopper
}  // namespace cuda
}  // namespace nabla
