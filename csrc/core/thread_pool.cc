#include "thread_pool.h"

#include <algorithm>
#include <cstdlib>

namespace nabla {

int defaultThreadCount() {
  if (const char* env = std::getenv("NABLA_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return std::min(n, 256);
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw ? int(hw) : 1;
}

ThreadPool& ThreadPool::instance() {
  // Leaked on purpose: joining threads from a static destructor at process exit can deadlock
  // when the addon is unloaded while a worker is still parked.
  static ThreadPool* pool = new ThreadPool(defaultThreadCount());
  return *pool;
}

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { workerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(m_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::runChunks(int worker) {
  for (;;) {
    int64_t begin;
    {
      std::lock_guard<std::mutex> lock(m_);
      if (next_ >= n_) return;
      begin = next_;
      next_ = std::min(n_, next_ + grain_);
    }
    (*body_)(begin, std::min(n_, begin + grain_), worker);
  }
}

void ThreadPool::workerLoop(int worker) {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(m_);
      wake_.wait(lock, [&] { return stop_ || epoch_ != seen; });
      if (stop_) return;
      seen = epoch_;
    }
    runChunks(worker);
    {
      std::lock_guard<std::mutex> lock(m_);
      if (--active_ == 0) done_.notify_all();
    }
  }
}

void ThreadPool::parallelFor(int64_t n, int64_t grain, const Body& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  if (workers_.empty() || n <= grain) {
    fn(0, n, 0);
    return;
  }
  std::lock_guard<std::mutex> submit(submit_);
  runJob(n, grain, fn);
}

void ThreadPool::parallelForNoWait(int64_t n, int64_t grain, const Body& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  std::unique_lock<std::mutex> submit(submit_, std::try_to_lock);
  if (workers_.empty() || n <= grain || !submit.owns_lock()) {
    fn(0, n, 0);
    return;
  }
  runJob(n, grain, fn);
}

void ThreadPool::runJob(int64_t n, int64_t grain, const Body& fn) {
  {
    std::lock_guard<std::mutex> lock(m_);
    body_ = &fn;
    n_ = n;
    grain_ = grain;
    next_ = 0;
    active_ = int(workers_.size());
    ++epoch_;
  }
  wake_.notify_all();
  runChunks(0);
  std::unique_lock<std::mutex> lock(m_);
  done_.wait(lock, [&] { return active_ == 0; });
  body_ = nullptr;
}

}  // namespace nabla
