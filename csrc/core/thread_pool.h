// A persistent pool of worker threads shared by every CPU op.
//
// parallelFor(n, fn) splits [0, n) into chunks that the workers and the calling thread claim from
// an atomic counter, so uneven rows (block-sparse masks) balance themselves. Calls from several
// threads at once (concurrent async ops) are serialised: each runs on all cores in turn.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace nabla {

class ThreadPool {
 public:
  // fn(begin, end, worker) handles items [begin, end); worker is in [0, threads()) so callers
  // can keep per-thread scratch buffers.
  using Body = std::function<void(int64_t begin, int64_t end, int worker)>;

  static ThreadPool& instance();

  int threads() const { return int(workers_.size()) + 1; }
  void parallelFor(int64_t n, int64_t grain, const Body& fn);
  // The same without ever waiting for another caller's job: when the workers are busy, fn runs on
  // the calling thread alone. For the JS thread, which must not wait behind an async op that may
  // hold the workers for seconds.
  void parallelForNoWait(int64_t n, int64_t grain, const Body& fn);

  ~ThreadPool();

 private:
  explicit ThreadPool(int threads);
  void workerLoop(int worker);
  void runChunks(int worker);
  void runJob(int64_t n, int64_t grain, const Body& fn);  // submit_ held, workers not empty

  std::vector<std::thread> workers_;
  std::mutex submit_;  // one job at a time
  std::mutex m_;
  std::condition_variable wake_, done_;
  const Body* body_ = nullptr;
  int64_t n_ = 0, grain_ = 1;
  int64_t next_ = 0;  // next unclaimed item, guarded by m_
  int active_ = 0;    // workers still inside the current job
  uint64_t epoch_ = 0;
  bool stop_ = false;
};

// Number of threads to use: NABLA_NUM_THREADS if set, else the hardware concurrency.
int defaultThreadCount();

}  // namespace nabla
