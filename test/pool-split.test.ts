// The vectorised CUDA pooling kernel's index math, checked on the host without a GPU: the host
// unit test test/native/pool_split.cc (compiled with the system C++ compiler) replays the kernel's
// split of ragged blocks into 16-byte loads and its summation order against the per-block kernel's.
import { hostTest } from './native-host';

hostTest('pool_split', 'pool_split.cc: every element read once, aligned loads, the per-block order');
