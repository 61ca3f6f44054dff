// A small persistent thread pool (no busy waiting, so it coexists with BLAS threads).
#pragma once
#include <cstddef>
#include <functional>

namespace af {

int num_threads();
void set_num_threads(int n);
// Calls fn(begin, end) on chunks of [0, n); runs inline when n < grain or one thread.
void parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn);

}  // namespace af
