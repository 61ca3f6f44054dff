#include "aneforge/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace af {

namespace {

class Pool {
 public:
  explicit Pool(int n) { resize(n); }
  ~Pool() { stop(); }

  int size() const { return nthreads_; }

  void resize(int n) {
    stop();
    nthreads_ = std::max(1, n);
    quit_ = false;
    for (int i = 1; i < nthreads_; ++i) workers_.emplace_back([this] { loop(); });
  }

  void run(size_t nchunks, const std::function<void(size_t)>& task) {
    std::unique_lock<std::mutex> call_lock(call_mu_);  // one parallel region at a time
    {
      std::lock_guard<std::mutex> g(mu_);
      task_ = &task;
      nchunks_ = nchunks;
      next_.store(0);
      pending_ = nchunks;
      ++generation_;
    }
    cv_.notify_all();
    work();
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return pending_ == 0; });
    task_ = nullptr;
  }

 private:
  void work() {
    size_t done = 0;
    for (size_t i; (i = next_.fetch_add(1)) < nchunks_;) {
      (*task_)(i);
      ++done;
    }
    if (done) {
      std::lock_guard<std::mutex> g(mu_);
      pending_ -= done;
      if (pending_ == 0) done_cv_.notify_all();
    }
  }

  void loop() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return quit_ || (generation_ != seen && task_); });
        if (quit_) return;
        seen = generation_;
      }
      work();
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> g(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  int nthreads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex mu_, call_mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(size_t)>* task_ = nullptr;
  size_t nchunks_ = 0, pending_ = 0;
  std::atomic<size_t> next_{0};
  uint64_t generation_ = 0;
  bool quit_ = false;
};

Pool& pool() {
  static Pool p(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  return p;
}

thread_local bool t_in_parallel = false;

}  // namespace

int num_threads() { return pool().size(); }
void set_num_threads(int n) { pool().resize(n); }

void parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn) {
  int nt = num_threads();
  if (n == 0) return;
  if (nt <= 1 || n < 2 * grain || t_in_parallel) return fn(0, n);
  size_t nchunks = std::min<size_t>(static_cast<size_t>(nt) * 4, (n + grain - 1) / grain);
  size_t step = (n + nchunks - 1) / nchunks;
  nchunks = (n + step - 1) / step;
  std::function<void(size_t)> task = [&](size_t c) {
    bool prev = t_in_parallel;
    t_in_parallel = true;
    fn(c * step, std::min(n, (c + 1) * step));
    t_in_parallel = prev;
  };
  pool().run(nchunks, task);
}

}  // namespace af
