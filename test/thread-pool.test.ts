// The shared CPU thread pool (csrc/core/thread_pool.cc), tested natively: test/native/thread_pool.cc,
// compiled with the machine's C++ compiler. An async CPU mask pools q and k on the JS thread with
// parallelForNoWait, which must never wait behind another op's job.
import { hostTest } from './native-host';

hostTest('thread_pool', 'parallelFor and parallelForNoWait, idle and busy pool, 1, 2 and 4 threads', {
  sources: ['csrc/core/thread_pool.cc'],
  flags: ['-pthread'],
  envs: ['1', '2', '4'].map((threads) => ({ NABLA_NUM_THREADS: threads })),
});
