#pragma once
// A bounded worker pool for independent work items (e.g. observing every host at once).

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

namespace pgc {

// Calls fn(i) for every i in [0, count) on at most max_workers threads and returns when all
// are done. fn must be safe to call concurrently for different i and must not throw.
template <typename Fn>
void parallel_for(std::size_t count, std::size_t max_workers, Fn&& fn) {
  if (count == 0) return;
  std::size_t workers = std::clamp<std::size_t>(max_workers, 1, count);
  if (workers == 1) {
    for (std::size_t i = 0; i < count; ++i) fn(i);
    return;
  }
  std::atomic<std::size_t> next{0};
  std::vector<std::jthread> threads;
  threads.reserve(workers);
  for (std::size_t w = 0; w < workers; ++w) {
    threads.emplace_back([&] {
      for (std::size_t i = next++; i < count; i = next++) fn(i);
    });
  }
}

}  // namespace pgc
