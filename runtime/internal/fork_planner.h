#pragma once

// Plans a fork (Node::Fork, docs/fork.md): reads the source's log, finds the
// cut, builds the new stream (events/fork.h) and proves, before anything is
// written, that the process can go on from there: the interpreter, given the
// folded new stream as a node would load it, begins the chosen task again
// before anything else blocks it. What the node then does with the plan is
// one append (expected seq 0) and a resume.

#include <functional>
#include <string>
#include <vector>

#include "actors/policy.h"
#include "events/codec.h"
#include "events/fork.h"
#include "keel/node.h"
#include "keel/status.h"
#include "keel/workflow.h"
#include "store/event_store.h"

namespace keel::runtime {

// A fork ready to append.
struct ForkPlan {
  std::string id;                     // the new process
  events::ForkCut cut;                // where the source's log is cut
  std::vector<events::Draft> events;  // its whole first append, stamped
};

// What the planner needs from the node besides the store.
struct ForkContext {
  store::EventStore* store = nullptr;
  // The workflow stored under a definition hash.
  std::function<Result<std::shared_ptr<const Workflow>>(const std::string&)> definition;
  // Whether an activity name is registered on the node.
  std::function<bool(const std::string&)> has_activity;
  actors::Gates gates;
  int64_t now_ns = 0;
};

// Plans the fork of process `source` as `options` say into process `id`
// (already chosen and checked). Errors as Node::Fork documents them.
Result<ForkPlan> PlanFork(const ForkContext& context, const std::string& source,
                          const std::string& id, const ForkOptions& options);

}  // namespace keel::runtime
