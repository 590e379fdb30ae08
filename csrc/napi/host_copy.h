// Host memory an async op owns: its copy of a host input, taken on the JS thread at call time
// (Node-API cannot pin a JS backing store, and JS may transfer, shrink or free it while the op
// runs). Freed blocks are kept for reuse, up to kMaxCachedBytes: fresh pages cost the kernel a
// fault and a zeroing each (about 1-1.5 s/GB on a loaded 2-core machine, several times the copy
// itself), and an application tends to repeat its op sizes.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nabla {
namespace napi {

class HostCopy {
 public:
  // Throws std::bad_alloc.
  explicit HostCopy(size_t bytes);
  ~HostCopy();
  HostCopy(const HostCopy&) = delete;
  HostCopy& operator=(const HostCopy&) = delete;

  uint8_t* data() const { return data_; }

  // Idle blocks kept for reuse, in all: at most this many bytes and kMaxCachedBlocks blocks.
  static constexpr size_t kMaxCachedBytes = size_t(64) << 20;
  static constexpr size_t kMaxCachedBlocks = 8;

 private:
  uint8_t* data_;
  size_t capacity_;
};

}  // namespace napi
}  // namespace nabla
