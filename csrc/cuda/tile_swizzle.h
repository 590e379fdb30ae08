// The shared-memory layout of the 64-row Q, K and V tiles of the mma.sync attention kernels (fast and
// fast2). Plain C++ (host and device), so that the host tests model shared memory with this very
// function (test/native/fast2_layout.cc).
#pragma once

#include "../core/block_rules.h"

namespace nabla {
namespace cuda {

// Element offset of (row, col) in a [64][headDim] tile whose 16-byte chunks (8 elements) are
// permuted by chunk ^ (row % 8): the 8 rows an ldmatrix reads at one column chunk land in 8
// different groups of 4 banks, so the read is conflict-free.
NABLA_HD inline int swizzledOffset(int headDim, int row, int col) {
  return row * headDim + ((col >> 3) ^ (row & 7)) * 8 + (col & 7);
}

}  // namespace cuda
}  // namespace nabla
