#include "http/connection_threads.h"

#include <algorithm>
#include <thread>

namespace keel::http {
namespace {

// An idle thread beyond the kept ones ends after this long without work.
constexpr auto kIdleEnd = std::chrono::seconds(30);

}  // namespace

ConnectionThreads::ConnectionThreads(size_t max_threads, size_t keep_idle)
    : max_threads_(std::max<size_t>(max_threads, 1)), keep_idle_(keep_idle) {}

ConnectionThreads::~ConnectionThreads() { shutdown(); }

void ConnectionThreads::enqueue(std::function<void()> fn) {
  std::lock_guard lock(mu_);
  jobs_.push_back(std::move(fn));
  if (idle_ < jobs_.size() && live_ < max_threads_) {
    ++live_;
    std::thread([this] { Work(); }).detach();
  }
  work_cv_.notify_one();
}

void ConnectionThreads::shutdown() {
  std::unique_lock lock(mu_);
  stopping_ = true;
  work_cv_.notify_all();
  ended_cv_.wait(lock, [&] { return live_ == 0; });
}

void ConnectionThreads::Work() {
  std::unique_lock lock(mu_);
  for (;;) {
    ++idle_;
    bool woken = work_cv_.wait_for(lock, kIdleEnd, [&] { return stopping_ || !jobs_.empty(); });
    --idle_;
    if (jobs_.empty()) {
      if (stopping_ || (!woken && live_ > keep_idle_)) break;
      continue;
    }
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job();
    job = nullptr;  // closes what the job holds before the thread counts as free
    lock.lock();
  }
  // The last touch of `this`: shutdown() may return (and destroy it) as soon
  // as the lock is released.
  --live_;
  ended_cv_.notify_all();
}

}  // namespace keel::http
