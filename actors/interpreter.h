#pragma once

// The workflow interpreter: given a process's folded state, decides which
// events to persist next. Pure (no CAF, no I/O), so replaying the same log
// always leads to the same decisions: each decision is itself an event.
//
// The process actor owns one Interpreter per process and calls it whenever no
// append is in flight; it persists the Plan's events, folds them, and only
// then acts on them (launching and cancelling task executions, arming timers).

#include <functional>
#include <set>
#include <string>
#include <vector>

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

class Interpreter {
 public:
  // `has_activity` tells whether an activity name is registered on the node.
  Interpreter(std::shared_ptr<const Workflow> workflow,
              std::function<bool(const std::string&)> has_activity);

  // The next batch for `state`, given the tasks with a live execution. An
  // empty plan means the process waits for something outside (a task result,
  // a timer, a control).
  Plan Next(const events::ProcessState& state, const std::set<std::string>& executing);

  // The outcome of attempt `attempt` of `task`. Ignored (empty plan) when the
  // task has moved on: a late result of a cancelled or timed-out attempt.
  Plan OnResult(const events::ProcessState& state, const std::string& task, uint32_t attempt,
                const ActivityResult& result);

  // A durable timer fell due.
  Plan OnTimer(const events::ProcessState& state, const std::string& timer);

  const Workflow& workflow() const { return *workflow_; }
  // The step of a task (nullptr for an unknown one).
  const Step* StepOf(const events::TaskState& task) const;

 private:
  class Batch;
  void PlanBranch(const events::ProcessState& s, const events::BranchState& b,
                  const std::set<std::string>& executing, Batch& out);
  void PlanJoin(const events::ProcessState& s, const events::BranchState& b, Batch& out);
  void StartStep(const events::ProcessState& s, const events::BranchState& b, const Step& step,
                 Batch& out);
  void FailTask(const events::ProcessState& s, const events::BranchState& b,
                const std::string& task, const Step& step, const std::string& error,
                const Json& output, bool retryable, Batch& out);
  void CompleteTask(const events::ProcessState& s, const events::BranchState& b,
                    const std::string& task, const Step& step, const Json& output, Batch& out);
  void CancelBranchTree(const events::ProcessState& s, const std::string& branch,
                        const std::string& reason, Batch& out);
  void FinishBranch(const events::ProcessState& s, const events::BranchState& b, Batch& out);

  const std::vector<Step>* StepsOf(const events::ProcessState& s,
                                   const events::BranchState& b) const;
  std::string NextAfter(const events::ProcessState& s, const events::BranchState& b,
                        const Step& step) const;
  Json Context(const events::ProcessState& s, const events::BranchState& b) const;

  std::shared_ptr<const Workflow> workflow_;
  std::function<bool(const std::string&)> has_activity_;
};

// Task id of the `visit`-th visit of `step` in `branch`: the step id itself in
// main ("reserve", "reserve#2"), prefixed by the branch id elsewhere.
std::string TaskId(const std::string& branch, const std::string& step, uint32_t visit);

}  // namespace keel::actors
