// A minimal check macro for the host unit tests of csrc/ (compiled with g++ by test/hopper.test.ts):
// prints each failure with its location and counts it; main returns the count.
#pragma once

#include <cstdio>

inline int& failures() {
  static int count = 0;
  return count;
}

#define CHECK(condition, ...)                                                              \
  do {                                                                                     \
    if (!(condition)) {                                                                    \
      if (++failures() <= 20) {                                                            \
        std::fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #condition); \
        std::fprintf(stderr, __VA_ARGS__);                                                 \
        std::fprintf(stderr, "\n");                                                        \
      }                                                                                    \
    }                                                                                      \
  } while (0)

inline int finish(const char* name) {
  if (failures() == 0) std::printf("%s: ok\n", name);
  else std::printf("%s: %d failed checks\n", name, failures());
  return failures() == 0 ? 0 : 1;
}
