#pragma once

// Those who wait for a process to rest (Node::Wait, WaitUntilDone, Await)
// and those who follow its changes (Node::Subscribe). A live process
// actor publishes each durable change; a process without one is read from
// the store.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "events/state.h"
#include "keel/node.h"
#include "keel/status.h"

namespace keel::runtime {

class RestWaiters {
 public:
  // What the waits read: a process's state from the store, whether it has a
  // live actor, and whether the timer service runs (a due timer will fire).
  struct Sources {
    std::function<Result<events::ProcessState>(const std::string& id)> load;
    std::function<bool(const std::string& id)> is_live;
    std::function<bool()> timers_running;
  };
  explicit RestWaiters(Sources sources) : sources_(std::move(sources)) {}

  // A durable change of a process (its actor's): wakes its waiters when it
  // rests and calls its subscribers.
  void Published(const events::ProcessState& state);
  // The actor of `id` stopped: its waiters read the store.
  void Stopped(const std::string& id);

  // Node::Wait (until_done = false) and Node::WaitUntilDone.
  Result<Json> WaitForSnapshot(const std::string& id, std::chrono::milliseconds timeout,
                               bool until_done);
  // Node::Await.
  Result<ProcessOutcome> WaitForOutcome(const std::string& id, std::chrono::milliseconds timeout);

  // Node::Subscribe: `fn` gets each published snapshot of `id` until the
  // returned function is called.
  std::function<void()> Subscribe(const std::string& id, std::function<void(const Json&)> fn);

  // Ends every wait (Aborted) and refuses new ones: the node is closing.
  void Close();

 private:
  struct Watch;
  template <typename T>
  Result<T> WaitForRest(const std::string& id, std::chrono::milliseconds timeout, bool until_done);
  template <typename T>
  static int& Waiters(Watch& w);
  template <typename T>
  static std::shared_ptr<T>& Rest(Watch& w);
  bool IsClosed();
  bool RestHasDueTimer(const std::string& id, const Json& snapshot);
  bool RestHasDueTimer(const std::string& id, const ProcessOutcome& outcome);

  // The waiters of one process. Nodes of an unordered_map do not move, so a
  // waiter may hold a reference while others come and go.
  struct Watch {
    int snapshot_waiters = 0;                 // in Wait
    int outcome_waiters = 0;                  // in Await
    uint64_t rests = 0;                       // times the process came to rest since watched
    uint64_t stops = 0;                       // times its actor stopped since watched
    std::shared_ptr<Json> snapshot;           // at the latest rest, if a Wait waits
    std::shared_ptr<ProcessOutcome> outcome;  // at the latest rest, if an Await waits
    std::condition_variable cv;
  };

  const Sources sources_;
  std::mutex mu_;
  std::unordered_map<std::string, Watch> watched_;  // guarded by mu_
  bool closed_ = false;                             // guarded by mu_: Close ends every wait
  std::unordered_map<std::string, std::map<int, std::function<void(const Json&)>>>
      subscribers_;      // guarded by mu_
  int next_token_ = 0;  // guarded by mu_
};

}  // namespace keel::runtime
