#include "host_copy.h"

#include <mutex>
#include <new>
#include <vector>

namespace nabla {
namespace napi {
namespace {

constexpr std::align_val_t kAlignment{64};

struct Block {
  uint8_t* data;
  size_t capacity;
};

// Shared by every environment (main thread and workers), hence the lock.
struct Cache {
  std::mutex lock;
  std::vector<Block> idle;
  size_t idleBytes = 0;
};

Cache& cache() {
  static Cache* instance = new Cache;  // never destroyed: blocks may be returned during exit
  return *instance;
}

// An idle block of at least `bytes` and at most twice that (the smallest such), or none.
bool reuse(size_t bytes, Block* found) {
  Cache& c = cache();
  std::lock_guard<std::mutex> guard(c.lock);
  size_t best = c.idle.size();
  for (size_t i = 0; i < c.idle.size(); ++i) {
    const size_t capacity = c.idle[i].capacity;
    if (capacity >= bytes && capacity / 2 <= bytes && (best == c.idle.size() || capacity < c.idle[best].capacity))
      best = i;
  }
  if (best == c.idle.size()) return false;
  *found = c.idle[best];
  c.idleBytes -= found->capacity;
  c.idle.erase(c.idle.begin() + std::ptrdiff_t(best));
  return true;
}

// Keeps the block if it fits the cache (evicting the oldest blocks), else frees it.
void recycle(Block block) {
  Cache& c = cache();
  std::vector<Block> evicted;
  {
    std::lock_guard<std::mutex> guard(c.lock);
    if (block.capacity <= HostCopy::kMaxCachedBytes) {
      while (!c.idle.empty() && (c.idleBytes + block.capacity > HostCopy::kMaxCachedBytes ||
                                 c.idle.size() >= HostCopy::kMaxCachedBlocks)) {
        evicted.push_back(c.idle.front());
        c.idleBytes -= c.idle.front().capacity;
        c.idle.erase(c.idle.begin());
      }
      c.idle.push_back(block);
      c.idleBytes += block.capacity;
    } else {
      evicted.push_back(block);
    }
  }
  for (const Block& b : evicted) ::operator delete(b.data, kAlignment);
}

}  // namespace

HostCopy::HostCopy(size_t bytes) {
  Block block{nullptr, bytes ? bytes : 1};
  if (!reuse(block.capacity, &block)) block.data = static_cast<uint8_t*>(::operator new(block.capacity, kAlignment));
  data_ = block.data;
  capacity_ = block.capacity;
}

HostCopy::~HostCopy() { recycle(Block{data_, capacity_}); }

}  // namespace napi
}  // namespace nabla
