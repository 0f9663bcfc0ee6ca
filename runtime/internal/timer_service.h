#pragma once

// The node's timer service: one thread that delivers every armed timer of
// the store's due-timer index when it falls due, so that a waiting process
// needs no actor meanwhile. Timers that fell due while the node was down
// fire at once; each fires once, since its process records TimerFired only
// while the timer is armed.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "keel/status.h"
#include "store/event_store.h"

namespace keel::runtime {

class TimerService {
 public:
  // Delivers timer `timer` of process `process` (a Control of kind kTimer).
  using Fire = std::function<Status(const std::string& process, const std::string& timer)>;

  TimerService(store::EventStore& store, Fire fire) : store_(store), fire_(std::move(fire)) {}
  // Stop().
  ~TimerService();

  // Starts the thread (once; not after Stop).
  void Start();
  // A process armed a timer due at `due_ns`: the service looks no later.
  void Armed(int64_t due_ns);
  // True between Start and Stop: a due timer will fire.
  bool Running();
  // Stops and joins the thread. Idempotent.
  void Stop();

 private:
  void Loop();
  // Fires the due timers; returns when the next armed one is due (INT64_MAX
  // when none).
  int64_t FireDue();

  store::EventStore& store_;
  const Fire fire_;
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t wake_ns_ = INT64_MAX;  // when the service looks next; guarded by mu_
  bool stop_ = false;            // guarded by mu_
  std::thread thread_;
};

}  // namespace keel::runtime
