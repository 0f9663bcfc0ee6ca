#pragma once

// The threads that serve the HTTP API's connections (an httplib TaskQueue).

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>

namespace keel::http {

// Runs each connection on a thread of its own, reusing idle threads, up to
// `max_threads`. httplib's ThreadPool queues a connection behind busy
// workers, so open event streams and idle sockets (each holding a worker
// until its read timeout) stalled every other request, /v1/health included.
// Past the cap, connections wait for a thread. Idle threads beyond
// `keep_idle` end after a while.
class ConnectionThreads : public httplib::TaskQueue {
 public:
  ConnectionThreads(size_t max_threads, size_t keep_idle);
  // shutdown().
  ~ConnectionThreads() override;

  void enqueue(std::function<void()> fn) override;
  // Runs what is queued, then waits until every thread has ended.
  void shutdown() override;

 private:
  void Work();

  const size_t max_threads_;
  const size_t keep_idle_;
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable ended_cv_;
  std::deque<std::function<void()>> jobs_;  // guarded by mu_
  size_t live_ = 0;                         // threads; guarded by mu_
  size_t idle_ = 0;                         // threads waiting for a job; guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
};

}  // namespace keel::http
