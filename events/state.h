#pragma once

// The state of one process as rebuilt from its events (the fold), and its JSON
// form: the snapshot of INTERFACE.md plus the internal fields that resume needs.
// The same fold serves the process actor, projections, replay and verify.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "events/codec.h"
#include "events/transitions.h"
#include "keel/status.h"

namespace keel::events {

struct Approval {
  std::string status;  // "pending", "approved", "rejected"
  std::string prompt;
  std::string rule;  // policy rule that asked for it; empty for an approval step
  std::string by;
  std::string reason;
  int64_t at_ns = 0;
  int64_t expires_ns = 0;
};

struct TaskState {
  std::string id;  // unique in the process; == step for the first visit in main
  std::string step;
  std::string branch;
  TaskStatus status = TaskStatus::kPending;
  uint32_t attempts = 0;
  uint32_t visit = 1;
  nlohmann::json input = nlohmann::json::object();
  nlohmann::json output;  // null until completed (or failed with output)
  std::optional<std::string> error;
  std::string idempotency_key;  // of the current attempt
  int64_t scheduled_ns = 0, started_ns = 0, ended_ns = 0;
  int64_t retry_at_ns = 0;  // when retrying
  std::optional<Approval> approval;
  std::string blocked_rule;
  std::string policy_rule;  // the policy rule that allowed it, if one matched
  std::string next;         // the step chosen after it ended
};

struct BranchState {
  std::string id;      // "main", or "<fork task>/<name>"
  std::string parent;  // empty for main
  std::string fork_task;
  std::string name;
  int32_t index = -1;
  nlohmann::json item;  // for_each item (null otherwise)
  BranchStatus status = BranchStatus::kPending;
  std::string current_step;  // empty once the branch has no step left
  std::string current_task;  // task id at current_step, if scheduled
  nlohmann::json vars = nlohmann::json::object();
  nlohmann::json output;  // last task output (the join sees it)
  std::optional<std::string> error;
  std::string parked_on;    // task it waits/suspends on
  std::string parked_kind;  // "join", "signal", "timer", "approval"
};

struct PendingSignal {
  uint64_t seq = 0;  // seq of its SignalReceived
  std::string topic;
  nlohmann::json payload;
  int64_t at_ns = 0;
};

struct TimerState {
  std::string id;
  int64_t due_ns = 0;
  std::string kind;  // "sleep", "retry", "timeout", "expiry"
  std::string task;
};

struct ProcessState {
  std::string id;
  std::string workflow;
  std::string definition_hash;
  std::string idempotency_key;
  ProcessStatus status = ProcessStatus::kPending;
  nlohmann::json inputs = nlohmann::json::object();
  nlohmann::json outputs = nlohmann::json::object();
  std::optional<std::string> error;
  int64_t created_ns = 0, updated_ns = 0, ended_ns = 0;
  uint64_t last_seq = 0;
  std::string last_hash;  // chain hash of last_seq (raw 32 bytes)
  std::string pause_reason;
  // A fork (docs/fork.md): the source process and the last of its seqs this
  // stream copies; empty / 0 for a process started anew.
  std::string forked_from;
  uint64_t forked_seq = 0;
  // Queues (docs/queues.md): the queue the process waits in before it
  // starts (empty = none), its priority and key there, and when it was
  // admitted (0 = not yet).
  std::string queue;
  int32_t queue_priority = 0;
  std::string queue_key;
  int64_t admitted_ns = 0;
  // Pending in a queue, not admitted yet: it must not start.
  bool WaitsInQueue() const {
    return !queue.empty() && admitted_ns == 0 && status == ProcessStatus::kPending;
  }

  std::vector<BranchState> branches;  // in start order; branches[0] is main
  // In order of first scheduling. A deque: a long process has many tasks, and
  // growing a vector would move every one (and fault in twice the memory).
  std::deque<TaskState> tasks;
  std::deque<PendingSignal> signals;         // received, not yet consumed, arrival order
  std::map<std::string, TimerState> timers;  // armed, by timer id

  // Lookups; nullptr when absent.
  BranchState* FindBranch(std::string_view id);
  const BranchState* FindBranch(std::string_view id) const;
  TaskState* FindTask(std::string_view id);
  const TaskState* FindTask(std::string_view id) const;
  // Variables of branch main (the snapshot's `variables`).
  const nlohmann::json& variables() const;
  // The position in `tasks` of each step's newest visit (what `steps.<id>`
  // means to expressions). Kept up as tasks are added, so a long loop does
  // not pay for its whole history at every step.
  const std::map<std::string, size_t, std::less<>>& NewestVisits() const;

 private:
  // Positions of ids in `branches` or `tasks`: open addressing over 32-bit
  // hashes of the ids, 8 bytes a slot and no allocation per entry; the ids
  // themselves are compared in the container.
  class Index {
   public:
    static constexpr size_t kNone = SIZE_MAX;
    size_t size() const { return size_; }
    // The position of `id`, where `is(position)` says whether the entity at
    // a position has that id; kNone if none.
    template <class Is>
    size_t Find(std::string_view id, Is is) const;
    // Adds `id` at `position`; the caller knows that `id` is absent.
    void Insert(std::string_view id, size_t position);

   private:
    struct Slot {
      uint32_t hash = 0;
      uint32_t position = 0;  // + 1; 0 for an empty slot
    };
    static uint32_t Hash(std::string_view id);
    void Grow();
    std::vector<Slot> slots_;  // size 0 or a power of two, at most half full
    size_t size_ = 0;
  };

  BranchState& AddBranch(BranchState branch);
  TaskState& AddTask(std::string_view id);

  // Positions in branches/tasks. Code that fills the containers directly
  // leaves them stale; the Find* functions then fall back to a linear scan.
  Index branch_index_;
  Index task_index_;
  // NewestVisits() over tasks[0, newest_scanned_): tasks are only appended
  // and a task's step never changes, so the rest is scanned when asked.
  mutable std::map<std::string, size_t, std::less<>> newest_visits_;
  mutable size_t newest_scanned_ = 0;
  friend Status Apply(ProcessState&, const StoredEvent&);
  friend Result<ProcessState> StateFromJson(const nlohmann::json&);
};

// Folds one event into `state`. Refuses (kCorruption, naming stream, seq, entity
// and the two states) an event that its entity's transition table does not
// allow, or whose seq is not last_seq + 1; `state` is unchanged on error.
Status Apply(ProcessState& state, const StoredEvent& event);

// Checks, without applying, that `type` on `entity` is legal in `state`
// (kRefused with a reason).
Status CheckTransition(const ProcessState& state, EventType type, std::string_view entity);

// The snapshot JSON of INTERFACE.md (ids, statuses as spelled in DESIGN.md,
// RFC 3339 times with milliseconds, `waiting_on`), plus keel's extension keys:
// branches[].vars/.output/.error, `signals`, `timers`, `definition_hash`.
nlohmann::json ToJson(const ProcessState& state);
// The summary of `ls`: ToJson without branches, tasks and variables.
nlohmann::json SummaryJson(const ProcessState& state);
// The snapshot's `error`: why the process failed, as a JSON string, or null.
nlohmann::json ProcessErrorJson(const ProcessState& state);
// Rebuilds the state from ToJson() output (snapshots); Corruption on bad shape.
Result<ProcessState> StateFromJson(const nlohmann::json& json);

// The event line of INTERFACE.md: stream, seq, global_seq, time (ns precision),
// type, entity, actor, data (the body; `*_json` fields embedded as JSON values
// without the suffix), hash (hex).
nlohmann::json ToJson(const StoredEvent& event);

}  // namespace keel::events
