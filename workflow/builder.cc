// WorkflowBuilder: workflows written in C++. Build() goes through the
// canonical JSON and Workflow::FromJson, so a built workflow is validated by
// exactly the code that validates a stored one.

#include "keel/workflow.h"

namespace keel {

template <typename Self>
Step* StepListBuilderBase<Self>::Last() {
  return steps_.empty() ? nullptr : &steps_.back();
}

namespace {

Step Make(std::string id, StepKind kind) {
  Step s;
  s.id = std::move(id);
  s.kind = kind;
  return s;
}

}  // namespace

template <typename Self>
Self& StepListBuilderBase<Self>::Activity(std::string id, std::string activity, Json with) {
  Step s = Make(std::move(id), StepKind::kActivity);
  s.activity = std::move(activity);
  s.with = std::move(with);
  return AddStep(std::move(s));
}

template <typename Self>
Self& StepListBuilderBase<Self>::Approval(std::string id, std::string prompt, int64_t expires_ms) {
  Step s = Make(std::move(id), StepKind::kApproval);
  s.prompt = std::move(prompt);
  s.expires_ms = expires_ms;
  return AddStep(std::move(s));
}

template <typename Self>
Self& StepListBuilderBase<Self>::Parallel(
    std::string id, std::vector<std::pair<std::string, std::vector<Step>>> branches, Join join) {
  Step s = Make(std::move(id), StepKind::kParallel);
  s.branches = std::move(branches);
  s.join = join;
  return AddStep(std::move(s));
}

template <typename Self>
Self& StepListBuilderBase<Self>::ForEach(std::string id, std::string items_expr,
                                         std::vector<Step> steps, uint32_t concurrency) {
  Step s = Make(std::move(id), StepKind::kForEach);
  s.for_each = std::move(items_expr);
  s.steps = std::move(steps);
  s.concurrency = concurrency;
  return AddStep(std::move(s));
}

template <typename Self>
Self& StepListBuilderBase<Self>::WaitSignal(std::string id, std::string topic, int64_t timeout_ms,
                                            std::string on_timeout) {
  Step s = Make(std::move(id), StepKind::kWaitSignal);
  s.topic = std::move(topic);
  s.wait_timeout_ms = timeout_ms;
  s.on_timeout = std::move(on_timeout);
  return AddStep(std::move(s));
}

template <typename Self>
Self& StepListBuilderBase<Self>::Sleep(std::string id, int64_t ms) {
  Step s = Make(std::move(id), StepKind::kSleep);
  s.sleep_ms = ms;
  return AddStep(std::move(s));
}

template <typename Self>
Self& StepListBuilderBase<Self>::SleepUntil(std::string id, std::string rfc3339_or_template) {
  Step s = Make(std::move(id), StepKind::kSleep);
  s.sleep_until = std::move(rfc3339_or_template);
  return AddStep(std::move(s));
}

template <typename Self>
Self& StepListBuilderBase<Self>::Pause(std::string id, std::string reason) {
  Step s = Make(std::move(id), StepKind::kPause);
  s.pause_reason = std::move(reason);
  return AddStep(std::move(s));
}

template <typename Self>
Self& StepListBuilderBase<Self>::Set(std::string id,
                                     std::vector<std::pair<std::string, std::string>> assignments) {
  Step s = Make(std::move(id), StepKind::kSet);
  s.set = std::move(assignments);
  return AddStep(std::move(s));
}

template <typename Self>
Self& StepListBuilderBase<Self>::AddStep(Step step) {
  steps_.push_back(std::move(step));
  return self();
}

#define KEEL_MODIFY_LAST(what, body)                                         \
  do {                                                                       \
    Step* s = Last();                                                        \
    if (s == nullptr) {                                                      \
      if (misuse_.empty()) misuse_ = std::string(what) + " before any step"; \
    } else {                                                                 \
      body;                                                                  \
    }                                                                        \
    return self();                                                           \
  } while (0)

template <typename Self>
Self& StepListBuilderBase<Self>::SaveAs(std::string var) {
  KEEL_MODIFY_LAST("SaveAs", s->save_as = std::move(var));
}

template <typename Self>
Self& StepListBuilderBase<Self>::When(std::string expr) {
  KEEL_MODIFY_LAST("When", s->when = std::move(expr));
}

template <typename Self>
Self& StepListBuilderBase<Self>::Timeout(int64_t ms) {
  KEEL_MODIFY_LAST("Timeout", s->timeout_ms = ms);
}

template <typename Self>
Self& StepListBuilderBase<Self>::Retry(RetryPolicy policy) {
  KEEL_MODIFY_LAST("Retry", s->retry = policy);
}

template <typename Self>
Self& StepListBuilderBase<Self>::OnError(std::string step) {
  KEEL_MODIFY_LAST("OnError", s->on_error = std::move(step));
}

template <typename Self>
Self& StepListBuilderBase<Self>::Goto(std::string step, std::string when) {
  KEEL_MODIFY_LAST("Goto", (s->go_to = GotoRule{std::move(step), std::move(when)}));
}

#undef KEEL_MODIFY_LAST

template class StepListBuilderBase<StepListBuilder>;
template class StepListBuilderBase<WorkflowBuilder>;

WorkflowBuilder::WorkflowBuilder(std::string name) { wf_.name = std::move(name); }

WorkflowBuilder& WorkflowBuilder::Input(std::string name, InputSpec spec) {
  wf_.inputs[std::move(name)] = std::move(spec);
  return *this;
}

WorkflowBuilder& WorkflowBuilder::Var(std::string name, Json value) {
  wf_.vars[std::move(name)] = std::move(value);
  return *this;
}

WorkflowBuilder& WorkflowBuilder::Output(std::string name, std::string expr) {
  wf_.outputs.emplace_back(std::move(name), std::move(expr));
  return *this;
}

Result<Workflow> WorkflowBuilder::Build() const {
  const std::string source = "<builder>";
  if (!misuse_.empty()) {
    return Status::InvalidArgument(source + ": workflow '" + wf_.name + "': " + misuse_);
  }
  Workflow wf = wf_;
  wf.steps = steps_;
  return Workflow::FromJson(wf.ToJson(), source);
}

}  // namespace keel
