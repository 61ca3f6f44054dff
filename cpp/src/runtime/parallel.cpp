#include "aneforge/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace af {

namespace {

// One parallel region: workers that wake for it hold it by shared_ptr, so a worker that
// wakes late only ever sees its own region's counters (never the next region's).
struct Region {
  const std::function<void(size_t)>* task;
  size_t nchunks;
  std::atomic<size_t> next{0};
  size_t pending;  // guarded by Pool::mu_
};

class Pool {
 public:
  explicit Pool(int n) { start(n); }
  ~Pool() { stop(); }

  int size() const { return nthreads_.load(); }

  // Waits for a running region to finish before changing the workers.
  void resize(int n) {
    std::lock_guard<std::mutex> call_lock(call_mu_);
    stop();
    start(n);
  }

  void run(size_t nchunks, const std::function<void(size_t)>& task) {
    std::lock_guard<std::mutex> call_lock(call_mu_);  // one parallel region at a time
    auto r = std::make_shared<Region>();
    r->task = &task;
    r->nchunks = nchunks;
    r->pending = nchunks;
    {
      std::lock_guard<std::mutex> g(mu_);
      region_ = r;
      ++generation_;
    }
    cv_.notify_all();
    work(*r);
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return r->pending == 0; });
    region_.reset();
  }

 private:
  void start(int n) {
    nthreads_.store(std::max(1, n));
    quit_ = false;
    for (int i = 1; i < nthreads_.load(); ++i) workers_.emplace_back([this] { loop(); });
  }

  void work(Region& r) {
    size_t done = 0;
    for (size_t i; (i = r.next.fetch_add(1)) < r.nchunks;) {
      (*r.task)(i);
      ++done;
    }
    if (done) {
      std::lock_guard<std::mutex> g(mu_);
      r.pending -= done;
      if (r.pending == 0) done_cv_.notify_all();
    }
  }

  void loop() {
    uint64_t seen = 0;
    for (;;) {
      std::shared_ptr<Region> r;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return quit_ || (generation_ != seen && region_); });
        if (quit_) return;
        seen = generation_;
        r = region_;
      }
      work(*r);
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

  std::atomic<int> nthreads_{1};
  std::vector<std::thread> workers_;
  std::mutex mu_, call_mu_;
  std::condition_variable cv_, done_cv_;
  std::shared_ptr<Region> region_;
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
