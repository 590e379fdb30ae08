// Host tests of csrc/cuda/hopper/layout.h: the wgmma descriptor fields against the PTX ISA's
// layout, the 128B swizzle (a bijection, the same permutation written two ways), the kernel's
// descriptor advance against the swizzled tiles TMA writes, and the register fragment mappings.
#include <cstdint>
#include <vector>

#include "../../csrc/cuda/hopper/layout.h"
#include "check.h"

using namespace nabla::cuda::hopper;

namespace {

uint64_t bits(uint64_t value, int low, int high) { return (value >> low) & ((uint64_t(1) << (high - low + 1)) - 1); }

void descriptorFields() {
  // PTX ISA "Matrix Descriptor Format": 0-13 start >> 4, 16-29 LBO >> 4, 32-45 SBO >> 4,
  // 49-51 base offset, 62-63 swizzle (1 = 128B); the other bits are zero
  CHECK(matrixDescriptor(0x400, 16, 1024, Swizzle::B128) == 0x4000004000010040ull, "a hand-encoded value");
  const uint32_t addresses[] = {0, 0x400, 0x2000, 0x3FC00, 0x12340};
  const uint32_t offsets[] = {16, 1024, 8192, 0x3FFF0};
  const Swizzle swizzles[] = {Swizzle::None, Swizzle::B128, Swizzle::B64, Swizzle::B32};
  for (uint32_t address : addresses)
    for (uint32_t lbo : offsets)
      for (uint32_t sbo : offsets)
        for (Swizzle swizzle : swizzles) {
          const uint64_t d = matrixDescriptor(address, lbo, sbo, swizzle);
          CHECK(bits(d, 0, 13) == (address & 0x3FFFF) >> 4, "start of %x", address);
          CHECK(bits(d, 16, 29) == lbo >> 4, "LBO %u", lbo);
          CHECK(bits(d, 32, 45) == sbo >> 4, "SBO %u", sbo);
          CHECK(bits(d, 49, 51) == 0, "base offset");
          CHECK(bits(d, 62, 63) == uint64_t(swizzle), "swizzle mode");
          CHECK(bits(d, 14, 15) == 0 && bits(d, 30, 31) == 0 && bits(d, 46, 48) == 0 && bits(d, 52, 61) == 0,
                "reserved bits of %016llx", (unsigned long long)d);
        }
}

void swizzleIsABijection() {
  std::vector<int> hits(8192, 0);
  for (uint32_t offset = 0; offset < 8192; ++offset) {
    const uint32_t to = swizzle128(offset);
    CHECK(to < 8192, "offset %u leaves the region", offset);
    if (to < 8192) ++hits[to];
    CHECK((to & ~uint32_t(0x70)) == (offset & ~uint32_t(0x70)), "only bits 4-6 move (%u -> %u)", offset, to);
    CHECK(swizzle128(to) == offset, "an involution (%u)", offset);
  }
  for (uint32_t offset = 0; offset < 8192; ++offset)
    CHECK(hits[offset] == 1, "offset %u hit %d times", offset, hits[offset]);
  for (uint32_t row = 0; row < 64; ++row)
    for (uint32_t chunk = 0; chunk < 8; ++chunk)
      CHECK(swizzledChunkOffset(row, chunk) == swizzle128(row * 128 + chunk * 16), "row %u chunk %u", row, chunk);
  // row r of an atom: chunk 0 of row 1 sits in chunk 1, chunk 1 of row 3 in chunk 2 (1 ^ 3)
  CHECK(swizzledChunkOffset(1, 0) == 128 + 16 && swizzledChunkOffset(3, 1) == 3 * 128 + 32, "examples");
}

void tileLayoutIsABijection(uint32_t headDim) {
  std::vector<int> hits(64 * headDim, 0);
  for (uint32_t row = 0; row < 64; ++row)
    for (uint32_t col = 0; col < headDim; ++col) {
      const uint32_t at = tileElementOffset(row, col);
      CHECK(at % 2 == 0 && at / 2 < hits.size(), "(%u, %u) -> %u", row, col, at);
      if (at % 2 == 0 && at / 2 < hits.size()) ++hits[at / 2];
      // the half a column lives in, and the 128-byte row inside it, are fixed; only chunks move
      CHECK(at / kHalfBytes == col / 64 && (at % kHalfBytes) / 128 == row, "(%u, %u) in its row", row, col);
    }
  for (size_t i = 0; i < hits.size(); ++i)
    CHECK(hits[i] == 1, "element slot %zu hit %d times (D %u)", i, hits[i], headDim);
}

// What wgmma reads at reduction step kk through the kernel's descriptors is what TMA put there.
void descriptorAdvanceMatchesTiles(uint32_t headDim) {
  const uint32_t base = 0x3000;  // any 1024-aligned shared address
  for (int kk = 0; kk < int(headDim) / 16; ++kk) {
    const uint64_t d = kMajorDescriptor(base, kk);
    const uint32_t start = uint32_t(bits(d, 0, 13) << 4), sbo = uint32_t(bits(d, 32, 45) << 4);
    CHECK(bits(d, 62, 63) == 1, "128B swizzle");
    for (uint32_t row = 0; row < 64; ++row)
      for (uint32_t k = 0; k < 16; ++k)
        CHECK(kMajorReadOffset(start, sbo, row, k) - base == tileElementOffset(row, kk * 16 + k),
              "K-major D %u step %d: element (%u, %u)", headDim, kk, row, k);
  }
  for (int kk = 0; kk < 4; ++kk) {  // V: 64 keys, 16 per step; n runs over all head dims
    const uint64_t d = mnMajorDescriptor(base, kk);
    const uint32_t start = uint32_t(bits(d, 0, 13) << 4), lbo = uint32_t(bits(d, 16, 29) << 4),
                   sbo = uint32_t(bits(d, 32, 45) << 4);
    for (uint32_t k = 0; k < 16; ++k)
      for (uint32_t n = 0; n < headDim; ++n)
        CHECK(mnMajorReadOffset(start, lbo, sbo, k, n) - base == tileElementOffset(kk * 16 + k, n),
              "MN-major D %u step %d: key %u dim %u", headDim, kk, k, n);
  }
}

// The epilogue's 4-byte stores of one D column tile: 32 lanes, 32 different banks.
void epilogueStoresAvoidBankConflicts(uint32_t headDim) {
  for (uint32_t warp = 0; warp < 4; ++warp)
    for (uint32_t j = 0; j < headDim / 8; ++j)
      for (uint32_t half = 0; half < 2; ++half) {
        uint32_t banks = 0;
        for (uint32_t lane = 0; lane < 32; ++lane) {
          const uint32_t at = tileElementOffset(warp * 16 + lane / 4 + 8 * half, j * 8 + 2 * (lane % 4));
          banks |= 1u << ((at / 4) % 32);
        }
        CHECK(banks == 0xFFFFFFFFu, "warp %u tile %u: banks %08x", warp, j, banks);
      }
}

// Register fragments: each layout covers its matrix exactly once; the kernel's P hand-off keeps
// every element in the thread that holds it; the softmax's row bookkeeping matches the layout.
void fragmentLayouts() {
  for (uint32_t n : {64u, 128u}) {
    std::vector<int> hits(64 * n, 0);
    for (uint32_t t = 0; t < 128; ++t)
      for (uint32_t i = 0; i < n / 2; ++i) {
        const Cell cell = accumulatorCell(t, i);
        CHECK(cell.row < 64 && cell.col < n, "D cell (%u, %u)", cell.row, cell.col);
        if (cell.row < 64 && cell.col < n) ++hits[cell.row * n + cell.col];
        // element 4j + 2h + e sits in row 16w + g + 8h: the kernel's "half" h of the online softmax
        CHECK(cell.row == 16 * (t / 32) + (t % 32) / 4 + 8 * ((i % 4) / 2), "row of t %u element %u", t, i);
        // the four threads of a quad (t ^ 1, t ^ 2) share rows: the shuffle reduction of max and sum
        CHECK(accumulatorCell(t ^ 1, i).row == cell.row && accumulatorCell(t ^ 2, i).row == cell.row, "quad rows");
        // pairs (i, i + 1) for even i are adjacent columns of one row: the epilogue's 4-byte stores
        if (i % 2 == 0) {
          const Cell next = accumulatorCell(t, i + 1);
          CHECK(next.row == cell.row && next.col == cell.col + 1, "pair at t %u element %u", t, i);
        }
      }
    for (size_t i = 0; i < hits.size(); ++i) CHECK(hits[i] == 1, "D (N %u) cell %zu held %d times", n, i, hits[i]);
  }
  std::vector<int> hits(64 * 16, 0);
  for (uint32_t t = 0; t < 128; ++t)
    for (uint32_t r = 0; r < 4; ++r)
      for (uint32_t e = 0; e < 2; ++e) {
        const Cell cell = operandACell(t, r, e);
        CHECK(cell.row < 64 && cell.col < 16, "A cell (%u, %u)", cell.row, cell.col);
        if (cell.row < 64 && cell.col < 16) ++hits[cell.row * 16 + cell.col];
        for (uint32_t kk = 0; kk < 4; ++kk) {  // P[row][16kk + col] must be this thread's S element
          const Cell source = accumulatorCell(t, pSourceIndex(kk, r, e));
          CHECK(source.row == cell.row && source.col == 16 * kk + cell.col,
                "P hand-off: t %u step %u register %u half %u reads S(%u, %u), A wants (%u, %u)", t, kk, r, e,
                source.row, source.col, cell.row, 16 * kk + cell.col);
        }
      }
  for (size_t i = 0; i < hits.size(); ++i) CHECK(hits[i] == 1, "A cell %zu held %d times", i, hits[i]);
}

}  // namespace

int main() {
  fragmentLayouts();
  descriptorFields();
  swizzleIsABijection();
  for (uint32_t d : {64u, 128u}) {
    tileLayoutIsABijection(d);
    descriptorAdvanceMatchesTiles(d);
    epilogueStoresAvoidBankConflicts(d);
  }
  return finish("hopper_layout");
}
