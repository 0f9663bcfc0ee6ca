#pragma once

// What the actors need from the node that hosts them, without CAF: the store,
// registered activities, workflow definitions, and where to report changes;
// and what the node gives the actor of a new process (Creation).

#include <functional>
#include <memory>
#include <string>

#include "events/state.h"
#include "keel/options.h"
#include "keel/types.h"
#include "keel/workflow.h"
#include "store/event_store.h"

namespace keel::actors {

class BlockingPool;

// A registered activity: exactly one of the two forms is set.
struct Activity {
  ActivityFn fn;
  AsyncActivityFn async_fn;
};

// A process not in the log yet: its ProcessCreated goes in the same append
// as its start and first steps (one durable write, not two, before the first
// task runs). `done` gets the snapshot once that append is durable, or why it
// was refused (Conflict: the id or idempotency key is taken).
struct Creation {
  events::Draft created;
  std::function<void(Result<Json>)> done;
  bool snapshot = true;  // done gets the snapshot; else null (Node::Submit)
  bool defer = false;    // append ProcessCreated alone, then stop (StartOptions::defer)
};

class Host {
 public:
  virtual ~Host() = default;
  virtual store::EventStore& store() = 0;
  virtual const Options& options() const = 0;
  // nullptr when no activity of that name is registered (built-ins included).
  virtual const Activity* FindActivity(const std::string& name) const = 0;
  // The definition stored under `hash` (cached).
  virtual Result<std::shared_ptr<const Workflow>> Definition(const std::string& hash) = 0;
  // Called by a process actor after each durable change of its state.
  virtual void Publish(const events::ProcessState& state) = 0;
  // Called by a process actor when it stops (at rest, or on shutdown).
  virtual void Passivated(const std::string& process_id) = 0;
  // Called by a process actor whose armed timers (durable in the store's
  // due-timer index) have `due_ns` as the earliest: the node's timer service
  // delivers each one (as Control::kTimer) when due.
  virtual void TimerArmed(int64_t due_ns) = 0;
  virtual BlockingPool& pool() = 0;
  // Called by a process actor when it starts an attempt and, exactly once,
  // when that attempt ends (whatever the outcome): the node's tasks-running
  // gauge.
  virtual void TaskStarted() {}
  virtual void TaskEnded() {}
};

}  // namespace keel::actors
