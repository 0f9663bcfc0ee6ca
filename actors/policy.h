#pragma once

// Policy gates: whether an activity task may run, must wait for approval, or
// is blocked, decided from the node's exec policy and its PolicyRules
// (WORKFLOW.md "Policy gates"). Pure; the interpreter records the decision.

#include <string>
#include <string_view>
#include <vector>

#include "keel/options.h"
#include "keel/types.h"
#include "keel/workflow.h"

namespace keel::actors {

// What the gates decided for one task, and why.
struct GateDecision {
  PolicyRule::Decision decision = PolicyRule::Decision::kAllow;
  std::string rule;    // the matched rule's name ("exec_policy" for the exec policy); empty = none
  std::string reason;  // for block and require_approval: a sentence for the log and the user
};

// The node's gates: its exec policy and its rules, in order.
class Gates {
 public:
  Gates() = default;
  explicit Gates(const Options& options);

  // Decides for `step` (an activity step) of workflow `workflow` with its
  // rendered `input`. The exec policy comes first: an `exec` it refuses is
  // blocked whatever the rules say.
  GateDecision Check(const std::string& workflow, const Step& step, const Json& input) const;

 private:
  ExecPolicy exec_policy_ = ExecPolicy::kFull;
  std::vector<std::string> exec_allow_;
  std::vector<PolicyRule> rules_;
};

// True when `text` matches `pattern`, where `*` matches any run of characters
// (also none) and every other character matches itself.
bool GlobMatch(std::string_view pattern, std::string_view text);

}  // namespace keel::actors
