#pragma once

// Workflow definitions: what a workflow file (YAML or JSON, see WORKFLOW.md)
// or a WorkflowBuilder describes, once parsed and validated.
//
// Every way in (ParseWorkflow, LoadWorkflowFile, Workflow::FromJson,
// WorkflowBuilder::Build) runs the same validation, so a Workflow that exists
// is well formed: step ids are unique across the whole workflow, every
// goto / on_error / on_timeout names a step of the same step list, every
// duration is valid and every expression and template compiles. What is not
// checked here: whether activities are registered (the node checks that at
// start) and whether expressions succeed on real data (that is only known at
// run time).
//
// Errors are InvalidArgument with one line "<file>:<line>: step '<id>': <what>"
// (the step's line; " (line N)" is appended when the offending key sits on
// another line). Definitions without positions (built in C++, loaded from the
// store) leave out the line: "<source>: step '<id>': <what>".
//
// Value types only: a Workflow is immutable after construction by convention
// and safe to share between threads for reading.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keel/status.h"
#include "keel/types.h"  // Json

namespace keel {

// When and how often a failed activity attempt is tried again. Only failures
// the activity marks retryable are retried.
struct RetryPolicy {
  uint32_t max_attempts = 1;   // attempts in all, >= 1 (1 = no retry)
  int64_t backoff_ms = 0;      // delay before the 2nd attempt
  double multiplier = 1.0;     // growth of the delay per further attempt, >= 1
  int64_t max_backoff_ms = 0;  // cap on the delay; 0 = no cap

  // Delay before attempt `failed_attempt + 1`, i.e. after attempt
  // `failed_attempt` (1-based) failed: backoff * multiplier^(failed_attempt-1),
  // capped by max_backoff_ms when that is set. 0 for failed_attempt 0.
  int64_t DelayMs(uint32_t failed_attempt) const;
};

// How a `parallel` step rendezvous with its branches (WORKFLOW.md):
// kAll: every branch completes (a failure fails the step);
// kFirst: the first branch to end decides, success or failure;
// kAny: the first success; fails when every branch failed;
// kAtLeast: `at_least` branches completed; fails once that cannot happen.
struct Join {
  enum Kind { kAll, kFirst, kAny, kAtLeast } kind = kAll;
  uint32_t at_least = 0;  // kAtLeast only: 1 <= at_least <= branch count
};

// A jump after a step completes: to `step` (a step of the same step list)
// when `when` (an expression) is true; an empty `when` always jumps.
struct GotoRule {
  std::string step;
  std::string when;
};

// What a step does; exactly one per step.
enum class StepKind {
  kActivity,
  kApproval,
  kParallel,
  kForEach,
  kWaitSignal,
  kSleep,
  kPause,
  kSet
};

// The file spelling of a kind ("activity", "for_each", "wait_signal", ...).
const char* StepKindName(StepKind kind);

// One step of a step list. Fields that belong to other kinds stay at their
// defaults. Strings documented as expressions or templates are kept as
// written (unevaluated): the runtime evaluates them against the process state.
struct Step {
  std::string id;  // unique in the whole workflow; task ids derive from it
  int line = 0;    // 1-based line in the source file; 0 when unknown
  StepKind kind = StepKind::kActivity;

  // activity
  std::string activity;        // registered or built-in activity name
  Json with = Json::object();  // the activity's input; strings may be templates

  // common to the kinds where they apply
  std::string save_as;     // variable that receives the task's output
  int64_t timeout_ms = 0;  // activity: per attempt; 0 = none
  RetryPolicy retry;       // activity only
  std::string on_error;    // step of the same list to go to after the task failed
  std::string when;        // expression; false -> the task is skipped; empty = always

  // approval
  std::string prompt;      // template
  int64_t expires_ms = 0;  // 0 = never; expiry counts as rejected

  // parallel: branches in file order, each a name and its step list
  std::vector<std::pair<std::string, std::vector<Step>>> branches;
  Join join;

  // for_each
  std::string for_each;      // expression yielding a list; `item` bound inside
  uint32_t concurrency = 0;  // children running at once; 0 = unbounded
  std::vector<Step> steps;   // the steps each child runs

  // wait_signal
  std::string topic;            // template
  int64_t wait_timeout_ms = 0;  // 0 = wait forever
  std::string on_timeout;       // step of the same list to go to on timeout; empty = fail

  // sleep: exactly one of the two
  int64_t sleep_ms = 0;
  std::string sleep_until;  // RFC 3339 time, or a template rendering one

  // pause
  std::string pause_reason;

  // set: variable -> expression, in file order; each sees the ones before it
  std::vector<std::pair<std::string, std::string>> set;

  std::optional<GotoRule> go_to;
};

// A declared input. An input that is not required and has no default is
// simply absent when not given.
struct InputSpec {
  bool required = false;
  std::optional<Json> default_value = std::nullopt;  // never together with required
};

// Where each step of a validated workflow sits (defined in workflow.cc).
struct StepIndex;

// A validated workflow definition.
struct Workflow {
  std::string name;
  std::map<std::string, InputSpec> inputs;
  Json vars = Json::object();  // initial variables of branch main
  std::vector<Step> steps;
  // name -> expression, or template when the text contains "${"; file order.
  std::vector<std::pair<std::string, std::string>> outputs;
  std::string source;  // file name (or "<builder>", "<stored>") for messages

  // The canonical JSON form: every field that differs from its default,
  // durations in ms, ordered maps (branches, set, outputs) as lists, sorted
  // object keys, no source positions. Two files that differ only in layout,
  // key order, comments or duration spelling ("90s" vs "1m30s") give the same
  // canonical form. It is what the log stores, once per hash, so a process can
  // be replayed without its file. Layout (format 1):
  //   {"format": 1, "name", "inputs": {n: {"required"?, "default"?}}, "vars"?,
  //    "steps": [step], "outputs"?: [[name, expr]]}
  //   step: {"id", "kind", kind fields as in Step with *_ms durations,
  //          "branches": [{"name", "steps"}], "join": "all|first|any" | {"at_least": N},
  //          "set": [[var, expr]], "goto": {"step", "when"?}, "retry": {...}}
  Json ToJson() const;
  // Lowercase hex SHA-256 of ToJson().dump() (compact, sorted keys, UTF-8).
  std::string Hash() const;

  // The step with this id, searched through nested branches and for_each
  // bodies; nullptr when there is none. Logarithmic in the number of steps
  // once validated (through step_index), linear otherwise.
  const Step* FindStep(std::string_view id) const;

  // Set by validation: each step's position, shared by copies (positions
  // hold in a copy). Steps changed after validation are still found.
  std::shared_ptr<const StepIndex> step_index;

  // Rebuilds a workflow from its canonical JSON and validates it. Unknown
  // keys are refused (InvalidArgument), a newer format is NotSupported.
  static Result<Workflow> FromJson(const Json& canonical, std::string source = "<stored>");
};

// Reads and parses a workflow file. The format is found from the content
// (JSON is valid YAML), not from the extension. IOError if it cannot be read.
Result<Workflow> LoadWorkflowFile(const std::string& path);

// Parses YAML or JSON text; `source` names the text in messages.
Result<Workflow> ParseWorkflow(std::string_view text, std::string source);

// Checks the inputs of a start against the declared ones and returns them
// completed: an undeclared input is refused, a missing required one is
// refused, a missing one with a default gets the default. `given` must be an
// object (null counts as {}). Errors are InvalidArgument.
Result<Json> ResolveInputs(const Workflow& wf, const Json& given);

// Builds a workflow in C++, with the same validation as a file at Build():
//
//   auto wf = WorkflowBuilder("order")
//                 .Input("x", {.required = true})
//                 .Activity("a", "inc", {{"x", "${inputs.x}"}}).SaveAs("v")
//                 .Output("result", "vars.v")
//                 .Build();
//
// Step methods append a step; modifier methods (SaveAs, When, Retry, ...)
// change the step appended last (calling one before any step is an error
// reported by Build). Nested step lists for Parallel and ForEach are built
// with a StepListBuilder.
template <typename Self>
class StepListBuilderBase {
 public:
  // Steps, one per kind (see Step for the meaning of each field).
  Self& Activity(std::string id, std::string activity, Json with = Json::object());
  Self& Approval(std::string id, std::string prompt, int64_t expires_ms = 0);
  Self& Parallel(std::string id, std::vector<std::pair<std::string, std::vector<Step>>> branches,
                 Join join = {});
  Self& ForEach(std::string id, std::string items_expr, std::vector<Step> steps,
                uint32_t concurrency = 0);
  Self& WaitSignal(std::string id, std::string topic, int64_t timeout_ms = 0,
                   std::string on_timeout = "");
  Self& Sleep(std::string id, int64_t ms);
  Self& SleepUntil(std::string id, std::string rfc3339_or_template);
  Self& Pause(std::string id, std::string reason);
  Self& Set(std::string id, std::vector<std::pair<std::string, std::string>> assignments);
  // Appends a step made by hand.
  Self& AddStep(Step step);

  // Modifiers of the last step.
  Self& SaveAs(std::string var);
  Self& When(std::string expr);
  Self& Timeout(int64_t ms);
  Self& Retry(RetryPolicy policy);
  Self& OnError(std::string step);
  Self& Goto(std::string step, std::string when = "");

  const std::vector<Step>& steps() const& { return steps_; }
  std::vector<Step> steps() && { return std::move(steps_); }

 protected:
  Step* Last();
  Self& self() { return static_cast<Self&>(*this); }

  std::vector<Step> steps_;
  std::string misuse_;  // first misuse of a modifier, reported by Build
};

// A step list for a parallel branch or a for_each body:
//   StepListBuilder().Activity("print", "echo", {{"text", "label"}}).steps()
class StepListBuilder : public StepListBuilderBase<StepListBuilder> {};

class WorkflowBuilder : public StepListBuilderBase<WorkflowBuilder> {
 public:
  explicit WorkflowBuilder(std::string name);

  WorkflowBuilder& Input(std::string name, InputSpec spec = {});
  WorkflowBuilder& Var(std::string name, Json value);
  // `expr` is an expression, or a template when it contains "${".
  WorkflowBuilder& Output(std::string name, std::string expr);

  // The validated workflow (source "<builder>"), or the first problem.
  Result<Workflow> Build() const;

 private:
  Workflow wf_;
};

extern template class StepListBuilderBase<StepListBuilder>;
extern template class StepListBuilderBase<WorkflowBuilder>;

}  // namespace keel
