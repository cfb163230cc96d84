#include "runtime/thread_pool.h"

#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define REPQ_CPU_RELAX() _mm_pause()
#else
#define REPQ_CPU_RELAX() std::this_thread::yield()
#endif

namespace repq::runtime {
namespace {

thread_local bool t_inside_task = false;

// How long an idle worker spins before it sleeps: long enough to cover the gap between two
// kernels of one forward pass, short enough not to burn a core when nothing runs.
constexpr auto kSpinTime = std::chrono::microseconds(300);

// Spins, then yields, until pred() holds.
template <class Pred>
void wait_until(const Pred& pred) {
  unsigned spins = 0;
  while (!pred()) {
    if (++spins < 2048) {
      REPQ_CPU_RELAX();
    } else {
      std::this_thread::yield();
    }
  }
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

// Claims and runs tasks of the current job until none is left.
void ThreadPool::work_on_job() {
  const bool was_inside = t_inside_task;
  t_inside_task = true;
  const int64_t count = count_.load();
  const std::function<void(int64_t)>* task = task_.load();
  for (;;) {
    const int64_t i = next_.fetch_add(1);
    if (i >= count) break;
    if (!failed_.load(std::memory_order_relaxed)) {
      try {
        (*task)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mu_);
        if (!error_) error_ = std::current_exception();
        failed_.store(true);
      }
    }
    done_.fetch_add(1);
  }
  t_inside_task = was_inside;
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    auto spin_start = std::chrono::steady_clock::now();
    unsigned spins = 0;
    uint64_t gen = generation_.load();
    while ((gen == seen || (gen & 1u)) && !stop_.load()) {
      REPQ_CPU_RELAX();
      gen = generation_.load();
      if ((++spins & 63u) != 0) continue;
      if (std::chrono::steady_clock::now() - spin_start < kSpinTime) continue;
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] {
        gen = generation_.load();
        return (gen != seen && !(gen & 1u)) || stop_.load();
      });
      spin_start = std::chrono::steady_clock::now();
    }
    if (stop_.load()) return;
    // Announce, then check that the job did not change meanwhile (the caller waits for
    // active_ to drop to 0 before it rewrites the fields).
    active_.fetch_add(1);
    if (generation_.load() == gen) work_on_job();
    active_.fetch_sub(1);
    seen = gen;
  }
}

void ThreadPool::run(int64_t count, const std::function<void(int64_t)>& task) {
  if (count <= 0) return;
  if (workers_.empty() || count == 1 || t_inside_task) {
    for (int64_t i = 0; i < count; ++i) task(i);
    return;
  }
  const uint64_t gen = generation_.load();
  generation_.store(gen + 1);  // odd: fields are being replaced
  wait_until([&] { return active_.load() == 0; });
  task_.store(&task);
  count_.store(count);
  done_.store(0);
  failed_.store(false);
  error_ = nullptr;
  next_.store(0);
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation_.store(gen + 2);
  }
  wake_.notify_all();
  work_on_job();
  wait_until([&] { return done_.load() == count; });
  if (failed_.load()) {
    std::exception_ptr e;
    {
      std::lock_guard<std::mutex> lock(error_mu_);
      e = error_;
      error_ = nullptr;
    }
    std::rethrow_exception(e);
  }
}

}  // namespace repq::runtime
