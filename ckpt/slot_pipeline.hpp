// Two stages over a ring of jobs, one thread each: the caller's thread fills a job
// (acquire, fill, submit), a worker thread of the pipeline consumes the jobs in the order
// they were submitted, and the job goes back to the ring. The dump reads a process's
// memory on one core while the image is written on the other; the restore reads and
// checks the image while the pages go into the process.
//
// Errors: the first error of the consumer is kept; acquire() and finish() return it and
// nothing is consumed after it. No exception leaves: when no thread can be started the
// consumer runs inline in submit() (same results, no overlap).
#pragma once
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "kernel/result.hpp"

namespace envrun::ckpt {

template <class Job>
class SlotPipeline {
 public:
  using Consumer = std::function<Result<void>(Job&)>;

  // `depth` jobs, each made by `make` (e.g. with its buffer); `consume` runs on the worker.
  SlotPipeline(size_t depth, const std::function<Job()>& make, Consumer consume) : consume_(std::move(consume)) {
    jobs_.reserve(depth);
    for (size_t i = 0; i < depth; ++i) jobs_.push_back(make());
    for (auto& j : jobs_) free_.push_back(&j);
    try {
      worker_ = std::thread([this] { run(); });
    } catch (...) {
      inline_ = true;
    }
  }
  SlotPipeline(const SlotPipeline&) = delete;
  SlotPipeline& operator=(const SlotPipeline&) = delete;
  ~SlotPipeline() { (void)finish(); }

  // A free job, waiting while every job is queued or being consumed.
  Result<Job*> acquire() {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return !free_.empty() || failed_; });
    if (failed_) return *failed_;
    Job* j = free_.front();
    free_.pop_front();
    return j;
  }

  // Queues a job from acquire() for the consumer.
  void submit(Job* j) {
    if (inline_) {
      if (!failed_) {
        auto r = consume_(*j);
        if (!r) failed_ = std::move(r).error();
      }
      free_.push_back(j);
      return;
    }
    {
      std::lock_guard lk(mu_);
      ready_.push_back(j);
    }
    cv_.notify_all();
  }

  // Gives back a job from acquire() unused.
  void release(Job* j) {
    {
      std::lock_guard lk(mu_);
      free_.push_front(j);
    }
    cv_.notify_all();
  }

  // Waits until every submitted job is consumed and stops the worker; the consumer's
  // first error. The pipeline takes no job after this.
  Result<void> finish() {
    if (worker_.joinable()) {
      {
        std::lock_guard lk(mu_);
        stop_ = true;
      }
      cv_.notify_all();
      worker_.join();
    }
    if (failed_) return *failed_;
    return ok();
  }

 private:
  void run() {
    std::unique_lock lk(mu_);
    for (;;) {
      cv_.wait(lk, [&] { return !ready_.empty() || stop_; });
      if (ready_.empty()) return;  // stop_ and nothing left
      Job* j = ready_.front();
      ready_.pop_front();
      bool skip = failed_.has_value();
      lk.unlock();
      Result<void> r = skip ? Result<void>(ok()) : consume_(*j);
      lk.lock();
      if (!r && !failed_) failed_ = std::move(r).error();
      free_.push_back(j);
      cv_.notify_all();
    }
  }

  Consumer consume_;
  std::vector<Job> jobs_;
  std::deque<Job*> free_, ready_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Error> failed_;
  bool stop_ = false;
  bool inline_ = false;
  std::thread worker_;
};

}  // namespace envrun::ckpt
