#pragma once

// The workflow interpreter: given a process's folded state and the time,
// decides which events to persist next. Pure (no CAF, no I/O, no clock, no
// cache that outlives a call), so the same state and time always give the
// same plan, and replaying the log never re-decides: each decision is itself
// an event. Every entry point takes `now_ns`, the caller's clock, from which
// due times (sleeps, timeouts, expiries, retry backoff) are counted.
//
// The process actor owns one Interpreter per process and calls it whenever no
// append is in flight; it persists the Plan's events, folds them, and only
// then acts on them (launching and cancelling task executions, replying to
// controls).
//
// Outside facts (a control, a signal, an approval, a due timer) are recorded
// first (OnControl, OnTimer); what follows from them (a branch going on, a
// wait ending) is decided by Next() from the state alone, so facts that arrive
// while the process is paused take effect when it is resumed.
//
// Timers are named by what they are for: "sleep/<task>", "timeout/<task>"
// (a wait_signal timeout), "expiry/<task>" (an approval), and
// "retry/<task>/<attempt>" (backoff). A wait whose timer is no longer armed
// has seen it fire.

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "actors/policy.h"
#include "events/state.h"
#include "keel/types.h"
#include "keel/workflow.h"

namespace keel::actors {

struct Plan {
  std::vector<events::Draft> events;  // one atomic append
  std::vector<std::string> launch;    // tasks whose new attempt starts after the append
  std::vector<std::string> cancel;    // executing tasks to stop after the append
  bool empty() const { return events.empty(); }
};

// A request from outside the process: a user's control, or a due timer.
struct Control {
  enum class Kind : uint8_t {
    kPause,
    kResume,
    kCancel,
    kRetry,
    kApprove,
    kReject,
    kSignal,
    kTimer,
    kAdmit  // a queue lets the process start (the node's queue service only)
  };
  Kind kind = Kind::kPause;
  std::string target;  // approve/reject: step or task id; signal: topic; timer: timer id;
                       // cancel: a task id (its running attempt), or empty (the process)
  Json payload;        // signal
  std::string reason;
  std::string by = "user";
  bool now = false;  // pause: interrupt running tasks (they run again on resume)
};

class Interpreter {
 public:
  // `has_activity` tells whether an activity name is registered on the node;
  // `gates` decide whether activity tasks may run.
  Interpreter(std::shared_ptr<const Workflow> workflow,
              std::function<bool(const std::string&)> has_activity, Gates gates = {});

  // The next batch for `state`, given the tasks with a live execution. An
  // empty plan means the process waits for something outside (a task result,
  // a timer, a control).
  Plan Next(const events::ProcessState& state, const std::set<std::string>& executing,
            int64_t now_ns);

  // The outcome of attempt `attempt` of `task`. Ignored (empty plan) when the
  // task has moved on: a late result of a cancelled or timed-out attempt, or
  // any result once the process is being cancelled.
  Plan OnResult(const events::ProcessState& state, const std::string& task, uint32_t attempt,
                const ActivityResult& result, int64_t now_ns);

  // A durable timer fell due: records TimerFired (and an approval's expiry as
  // a rejection by `system`). Empty when the timer is not armed any more.
  Plan OnTimer(const events::ProcessState& state, const std::string& timer, int64_t now_ns);

  // Records a control (not kTimer). Refused with the reason when the state
  // does not allow it (no control but retry of a failed one on a finished
  // process), NotFound for an unknown step.
  Result<Plan> OnControl(const events::ProcessState& state, const Control& control,
                         const std::set<std::string>& executing, int64_t now_ns);

  const Workflow& workflow() const { return *workflow_; }
  // The step of a task (nullptr for an unknown one).
  const Step* StepOf(const events::TaskState& task) const;

 private:
  class Batch;
  void PlanRunning(const events::ProcessState& s, const std::set<std::string>& executing,
                   Batch& out);
  void PlanBranch(const events::ProcessState& s, const events::BranchState& b,
                  const std::set<std::string>& executing, Batch& out);
  void PlanParked(const events::ProcessState& s, const events::BranchState& b, Batch& out);
  void PlanJoin(const events::ProcessState& s, const events::BranchState& b, Batch& out);
  // Starts `step` in branch `b`: a new task, or `reuse` again (retry from
  // failure). `retry_of`: the failed visit of a fan-out that a retry starts
  // again (see StartChild).
  void StartStep(const events::ProcessState& s, const events::BranchState& b, const Step& step,
                 Batch& out, const events::TaskState* reuse = nullptr,
                 const events::TaskState* retry_of = nullptr);
  // One start per step kind (StartStep dispatches; activities: StartActivity).
  struct Visit;
  void StartApproval(const Visit& v, Batch& out);
  void StartWaitSignal(const Visit& v, Batch& out);
  void StartSleep(const Visit& v, Batch& out);
  void StartPause(const Visit& v, Batch& out);
  void StartSet(const Visit& v, Batch& out);
  void StartFork(const Visit& v, const Json& input, const events::TaskState* retry_of, Batch& out);
  // The visit fails before it starts (a `when`, `with` or other expression
  // that cannot be evaluated): scheduled, then failed, not retried.
  void FailVisit(const Visit& v, const std::string& why, Batch& out);
  // Starts child branch `id` of the fan-out whose task input is `fork_input`.
  // On a retry (that input's `retry_of` names the failed visit), a child that
  // completed in that visit with the same name and item does not run again:
  // it starts and completes at once with its earlier output. True when the
  // child runs.
  bool StartChild(const events::ProcessState& s, const Json& fork_input, const std::string& id,
                  const events::BranchStart& start, Batch& out);
  // Starts the children of for_each `step` (task `fork`) from item `from` on
  // while fewer than its concurrency limit run; `running` run already.
  // Children carried over from a failed visit do not count against the limit.
  void StartItems(const events::ProcessState& s, const events::BranchState& b, const Step& step,
                  const std::string& fork, const Json& fork_input, size_t from, size_t running,
                  Batch& out);
  // An activity task through the policy gates: started, blocked, or waiting
  // for approval.
  void StartActivity(const events::ProcessState& s, const events::BranchState& b, const Step& step,
                     const std::string& task, uint32_t attempt, Batch& out, const Json& input,
                     uint32_t visit);
  void WaitForApproval(const events::ProcessState& s, const events::BranchState& b,
                       const std::string& task, const std::string& prompt, const std::string& rule,
                       int64_t expires_ms, Batch& out);
  void FailTask(const events::ProcessState& s, const events::BranchState& b,
                const std::string& task, const Step& step, const std::string& error,
                const Json& output, bool retryable, Batch& out);
  void FailBranch(const events::ProcessState& s, const events::BranchState& b,
                  const std::string& message, Batch& out);
  void CompleteTask(const events::ProcessState& s, const events::BranchState& b,
                    const std::string& task, const Step& step, const Json& output, Batch& out,
                    uint64_t signal_seq = 0);
  void CancelBranchTree(const events::ProcessState& s, const std::string& branch,
                        const std::string& reason, Batch& out);
  void FinishBranch(const events::ProcessState& s, const events::BranchState& b, Batch& out);

  // One function per control (OnControl dispatches): each records the
  // control or refuses it with the reason.
  Status PlanPause(const events::ProcessState& s, const Control& c,
                   const std::set<std::string>& executing, Batch& out);
  Status PlanResume(const events::ProcessState& s, const Control& c, Batch& out);
  Status PlanCancel(const events::ProcessState& s, const Control& c, Batch& out);
  Status PlanCancelTask(const events::ProcessState& s, const Control& c,
                        const std::set<std::string>& executing, Batch& out);
  // An attempt ended without success: another after its backoff while the
  // retry policy allows (retryable only), else the task fails.
  void EndAttempt(const events::ProcessState& s, const events::BranchState& b,
                  const std::string& task, const Step& step, uint32_t attempt,
                  const ActivityResult& result, Batch& out);
  Status PlanRetry(const events::ProcessState& s, const Control& c, Batch& out);
  Status PlanDecision(const events::ProcessState& s, const Control& c, Batch& out);
  Status PlanSignal(const events::ProcessState& s, const Control& c, Batch& out);

  const std::vector<Step>* StepsOf(const events::ProcessState& s,
                                   const events::BranchState& b) const;
  std::string NextAfter(const events::ProcessState& s, const events::BranchState& b,
                        const Step& step) const;
  Json Context(const events::ProcessState& s, const events::BranchState& b) const;

  std::shared_ptr<const Workflow> workflow_;
  std::function<bool(const std::string&)> has_activity_;
  Gates gates_;
};

// Task id of the `visit`-th visit of `step` in `branch`: the step id itself in
// main ("reserve", "reserve#2"), prefixed by the branch id elsewhere.
std::string TaskId(const std::string& branch, const std::string& step, uint32_t visit);

// True when every live branch of a running process is parked (on a signal, a
// timer, an approval, or a join of parked branches): it is then `waiting`.
bool AllParked(const events::ProcessState& state);

}  // namespace keel::actors
