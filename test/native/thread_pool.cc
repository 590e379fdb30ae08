// Host unit test of ThreadPool (csrc/core/thread_pool.cc): parallelFor covers every item once,
// and parallelForNoWait never waits behind another caller's job: while one thread's job is held
// open, a second caller's parallelForNoWait still finishes, on its own thread, covering every item.
#include "../../csrc/core/thread_pool.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "check.h"

using nabla::ThreadPool;

namespace {

// Counts how often each of n items is handled.
struct Coverage {
  std::vector<std::atomic<int>> hits;
  explicit Coverage(int64_t n) : hits(size_t(n)) {}
  ThreadPool::Body body() {
    return [this](int64_t begin, int64_t end, int) {
      for (int64_t i = begin; i < end; ++i) hits[size_t(i)]++;
    };
  }
  bool eachOnce() const {
    for (const auto& h : hits)
      if (h.load() != 1) return false;
    return true;
  }
};

}  // namespace

int main() {
  ThreadPool& pool = ThreadPool::instance();
  for (int64_t n : {1, 7, 1000, 100000}) {
    Coverage all(n), noWait(n);
    pool.parallelFor(n, 16, all.body());
    CHECK(all.eachOnce(), "parallelFor over %lld items", (long long)n);
    pool.parallelForNoWait(n, 16, noWait.body());
    CHECK(noWait.eachOnce(), "parallelForNoWait over %lld items (idle pool)", (long long)n);
  }

  // Another thread's job holds the pool until `release`; its first chunk says it started.
  std::atomic<bool> started{false}, release{false};
  std::thread holder([&] {
    pool.parallelFor(64, 1, [&](int64_t, int64_t, int) {
      started = true;
      while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
  });
  while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  Coverage busy(5000);
  std::thread::id ranOn;
  const std::thread::id self = std::this_thread::get_id();
  bool onlyHere = true;
  pool.parallelForNoWait(5000, 16, [&](int64_t begin, int64_t end, int worker) {
    if (std::this_thread::get_id() != self || worker != 0) onlyHere = false;
    ranOn = std::this_thread::get_id();
    for (int64_t i = begin; i < end; ++i) busy.hits[size_t(i)]++;
  });
  const bool holderStillRunning = !release;  // true: parallelForNoWait returned before the job ended
  release = true;
  holder.join();
  CHECK(holderStillRunning, "parallelForNoWait returned only after the other job");
  CHECK(busy.eachOnce(), "parallelForNoWait over a busy pool covers every item once");
  CHECK(onlyHere && ranOn == self, "parallelForNoWait over a busy pool runs on the calling thread, worker 0");
  return finish("thread_pool");
}
