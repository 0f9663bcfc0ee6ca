#include "runtime/internal/timer_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <utility>

#include "base/time.h"

namespace keel::runtime {

TimerService::~TimerService() { Stop(); }

void TimerService::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread([this] { Loop(); });
}

void TimerService::Armed(int64_t due_ns) {
  std::lock_guard lock(mu_);
  if (due_ns >= wake_ns_) return;
  wake_ns_ = due_ns;
  cv_.notify_all();
}

bool TimerService::Running() {
  std::lock_guard lock(mu_);
  return thread_.joinable() && !stop_;
}

void TimerService::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void TimerService::Loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    wake_ns_ = INT64_MAX;
    lock.unlock();
    int64_t next = FireDue();
    lock.lock();
    wake_ns_ = std::min(wake_ns_, next);
    if (stop_ || wake_ns_ <= NowNs()) continue;
    auto wait = std::chrono::nanoseconds(wake_ns_ == INT64_MAX ? INT64_MAX / 2 : wake_ns_ - NowNs());
    auto deadline = std::chrono::steady_clock::now() +
                    std::min<std::chrono::nanoseconds>(wait, std::chrono::hours(24));
    int64_t planned = wake_ns_;
    cv_.wait_until(lock, deadline, [&] { return stop_ || wake_ns_ < planned; });
  }
}

int64_t TimerService::FireDue() {
  auto due = store_.DueTimers(NowNs(), 256);
  if (!due.ok()) {
    spdlog::error("timer service: {}", due.status().ToString());
    return NowNs() + 1'000'000'000;
  }
  // A timer its process would not fire is not tried again in this round.
  std::set<std::pair<std::string, std::string>> tried;
  for (const auto& timer : *due) {
    tried.emplace(timer.stream, timer.timer);
    Status fired = fire_(timer.stream, timer.timer);
    if (!fired.ok() && fired.code() != Status::Code::kAborted) {
      spdlog::error("process {}: timer {} not fired: {}", timer.stream, timer.timer,
                    fired.ToString());
    }
  }
  auto armed = store_.DueTimers(INT64_MAX, tried.size() + 1);
  if (!armed.ok()) return NowNs() + 1'000'000'000;
  for (const auto& timer : *armed) {
    if (!tried.count({timer.stream, timer.timer})) return timer.due_ns;
  }
  return INT64_MAX;
}

}  // namespace keel::runtime
