#pragma once

// The node's schedule service: it keeps every schedule's fold (events/
// schedule.h) and one thread that fires them. All a schedule is lives in its
// stream; the service only caches the fold of what it appended, so the next
// fire is always derived from the log (the cursor), never from memory alone.
//
// A fire at time T starts process ScheduleFireId(name, T) and then records
// ScheduleFired. A crash between the two leaves a process and no record: the
// next node computes T again, its start is refused because the id exists,
// and the fire is recorded as started then. So a fire runs once, crash or
// not. Fires older than the catch-up window when the node gets to them are
// recorded as missed (one ScheduleMissed), the rest run in order, each by
// the overlap policy against the schedule's newest process.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "events/schedule.h"
#include "keel/status.h"
#include "keel/types.h"
#include "store/event_store.h"

namespace keel::runtime {

class ScheduleService {
 public:
  // What the service asks of its node.
  struct Hooks {
    // Starts a process of stored definition `hash` with `inputs` as `id`,
    // recorded as started by `actor`. Refused when the id exists.
    std::function<Status(const std::string& hash, const Json& inputs, const std::string& id,
                         const std::string& actor)>
        start;
    // Whether process `id` exists.
    std::function<bool(const std::string& id)> exists;
    // Whether process `id` has ended (or never began).
    std::function<bool(const std::string& id)> ended;
    // Cancels process `id` (the cancel_other policy).
    std::function<Status(const std::string& id, const std::string& reason)> cancel;
  };

  ScheduleService(store::EventStore& store, Hooks hooks)
      : store_(store), hooks_(std::move(hooks)) {}
  // Stop().
  ~ScheduleService();

  // Folds every schedule's stream (one the fold refuses is logged and left
  // out, as a process that cannot be resumed is). Called once, first.
  Status Load();
  // Starts the firing thread (once; not after Stop). Until then the service
  // records changes but fires nothing (a node opened with resume = false).
  void Start();
  // Stops and joins the thread; a fire under way is finished first. Idempotent.
  void Stop();

  // Records a new schedule (or a new one under a deleted one's name).
  // InvalidArgument for a bad name, rule or policy; Refused if it exists.
  Result<events::ScheduleState> Create(const std::string& name,
                                       const events::ScheduleDefinition& definition,
                                       const std::string& by);
  // NotFound for an unknown or deleted schedule; Refused when the state does
  // not allow it (pausing a paused one, resuming an active one).
  Result<events::ScheduleState> Pause(const std::string& name, const std::string& reason,
                                      const std::string& by);
  Result<events::ScheduleState> Resume(const std::string& name, const std::string& reason,
                                       const std::string& by);
  Result<events::ScheduleState> Delete(const std::string& name, const std::string& reason,
                                       const std::string& by);
  // Starts a process now, whatever the overlap policy and also while paused
  // (process ScheduleFireId(name, now, manual)); returns the schedule, whose
  // last_process is the new process.
  Result<events::ScheduleState> Trigger(const std::string& name, const std::string& by);

  Result<events::ScheduleState> Get(const std::string& name);
  // Every schedule that is not deleted, by name.
  std::vector<events::ScheduleState> List();

 private:
  void Loop();
  // Handles what is due of one schedule at `now`; returns when it next needs
  // a look (INT64_MAX: never). Holds mu_.
  int64_t Advance(events::ScheduleState& s, int64_t now);
  // Starts fire `fire_ns` of `s` and records it as started, or as skipped
  // with the reason when the start failed.
  Status StartFire(events::ScheduleState& s, int64_t fire_ns);
  // Appends `drafts` to the schedule's stream and folds what was sealed.
  Status Append(events::ScheduleState& s, std::vector<events::Draft> drafts);
  Result<events::ScheduleState*> Find(const std::string& name);
  void Wake();

  store::EventStore& store_;
  const Hooks hooks_;
  std::mutex mu_;  // guards everything below, and every append to a schedule's stream
  std::condition_variable cv_;
  std::map<std::string, events::ScheduleState> schedules_;  // by name, deleted ones too
  bool changed_ = false;
  bool stop_ = false;
  std::thread thread_;
};

// A fire's delay within the schedule's jitter: the same for the same
// schedule and fire time on every node, so a restart does not move it.
int64_t JitterNs(const events::ScheduleState& s, int64_t fire_ns);

}  // namespace keel::runtime
