// A small fixed thread pool for the executor's kernels. The calling thread takes part in the
// work. Workers spin briefly between jobs (kernels come in quick succession) and then sleep.
// A job ends when its tasks are done, not when every worker has seen it: on a busy machine a
// descheduled worker does not hold up the others.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace repq::runtime {

class ThreadPool {
 public:
  // `threads` >= 1, the calling thread included.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls task(i) for every i in [0, count), spread over the threads, and returns when all
  // are done. The first exception a task throws is rethrown here (remaining tasks are
  // skipped). A call from inside a task runs serially.
  void run(int64_t count, const std::function<void(int64_t)>& task);

 private:
  void worker_loop();
  void work_on_job();

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_;
  // Even: a job is published (or none yet); odd: the caller is replacing the job's fields.
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> active_{0};  // workers looking at the current job's fields
  std::atomic<bool> stop_{false};
  // The current job.
  std::atomic<const std::function<void(int64_t)>*> task_{nullptr};
  std::atomic<int64_t> count_{0};
  std::atomic<int64_t> next_{0};
  std::atomic<int64_t> done_{0};
  std::atomic<bool> failed_{false};
  std::mutex error_mu_;
  std::exception_ptr error_;
};

// Splits [0, n) into `parts` nearly equal ranges; range i is [begin, end).
inline void split_range(int64_t n, int64_t parts, int64_t i, int64_t& begin, int64_t& end) {
  const int64_t base = n / parts, extra = n % parts;
  begin = i * base + (i < extra ? i : extra);
  end = begin + base + (i < extra ? 1 : 0);
}

// Calls f(begin, end) on consecutive ranges of [0, n) of `chunk` elements each, in parallel.
template <class F>
void parallel_chunks(ThreadPool& pool, int64_t n, int64_t chunk, const F& f) {
  const int64_t parts = (n + chunk - 1) / chunk;
  if (parts <= 1) {
    if (n > 0) f(int64_t{0}, n);
    return;
  }
  pool.run(parts, [&](int64_t i) {
    const int64_t b = i * chunk;
    f(b, b + chunk < n ? b + chunk : n);
  });
}

// Calls f(i) for every i in [0, n), items grouped into tasks of about `grain` units of work
// when one item costs `cost` units (tiny tasks cost more in hand-off than they compute). The
// grouping depends on n and cost only.
template <class F>
void parallel_items(ThreadPool& pool, int64_t n, int64_t cost, const F& f,
                    int64_t grain = int64_t{1} << 15) {
  const int64_t per_task = cost >= grain ? 1 : grain / (cost < 1 ? 1 : cost);
  parallel_chunks(pool, n, per_task, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) f(i);
  });
}

}  // namespace repq::runtime
