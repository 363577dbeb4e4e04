#pragma once
// A bounded worker pool for independent work items (e.g. observing every host at once).

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace pgc {

// Calls fn(i) for every i in [0, count) on at most max_workers threads and returns when all
// are done. fn must be safe to call concurrently for different i. If fn throws, the remaining
// items are skipped and the first exception is rethrown here, on the caller's thread, once every
// worker has ended (an exception escaping a thread would end the whole process).
template <typename Fn>
void parallel_for(std::size_t count, std::size_t max_workers, Fn&& fn) {
  if (count == 0) return;
  std::size_t workers = std::clamp<std::size_t>(max_workers, 1, count);
  if (workers == 1) {
    for (std::size_t i = 0; i < count; ++i) fn(i);
    return;
  }
  std::atomic<std::size_t> next{0};
  std::mutex failed_mutex;
  std::exception_ptr failed;
  {
    std::vector<std::jthread> threads;
    threads.reserve(workers);
    for (std::size_t w = 0; w < workers; ++w) {
      threads.emplace_back([&] {
        try {
          for (std::size_t i = next++; i < count; i = next++) fn(i);
        } catch (...) {
          std::lock_guard lock(failed_mutex);
          if (!failed) failed = std::current_exception();
          next = count;  // the others stop after their current item
        }
      });
    }
  }  // joined
  if (failed) std::rethrow_exception(failed);
}

}  // namespace pgc
