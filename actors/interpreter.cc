#include "actors/interpreter.h"

#include <chrono>

#include "base/time.h"
#include "workflow/expression.h"

namespace keel::actors {
namespace {

using events::BranchState;
using events::BranchStatus;
using events::ProcessState;
using events::ProcessStatus;
using events::TaskState;
using events::TaskStatus;

// One expression engine per thread: a Lua state is not thread-safe, and
// keeping it per thread (not per process) keeps idle processes cheap.
ExpressionEngine& Engine() {
  thread_local ExpressionEngine engine;
  return engine;
}

std::string Dump(const Json& j) { return j.is_null() ? std::string() : j.dump(); }

// The items of a for_each task's input.
const Json& Items(const Json& fork_input) {
  static const Json kNone = Json::array();
  auto it = fork_input.find("items");
  return it != fork_input.end() && it->is_array() ? *it : kNone;
}

bool IsTruthy(const Json& v) { return !(v.is_null() || (v.is_boolean() && !v.get<bool>())); }

std::string AsText(const Json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

bool Armed(const ProcessState& s, const std::string& timer) { return s.timers.count(timer) > 0; }

Status Refuse(const ProcessState& s, const std::string& what) {
  return Status::Refused("process '" + s.id + "' is " + events::Name(s.status) + ": " + what);
}

}  // namespace

std::string TaskId(const std::string& branch, const std::string& step, uint32_t visit) {
  std::string id = branch == "main" ? step : branch + "/" + step;
  if (visit > 1) id += "#" + std::to_string(visit);
  return id;
}

// Collects the events of one plan, stamped with the process id.
class Interpreter::Batch {
 public:
  Batch(const ProcessState& s, Plan& plan, int64_t now_ns)
      : state_(s), stream_(s.id), plan_(plan), now_ns_(now_ns) {}
  // The time the plan is made at (the caller's clock): due times are counted
  // from it, so the interpreter never reads a clock itself.
  int64_t now_ns() const { return now_ns_; }
  // {"steps": every step's newest visit as steps.<step>}: what expressions
  // see, the same for every branch planned in this batch (a fork of 100
  // branches would otherwise build it 100 times).
  const Json& Steps() {
    if (steps_.is_null()) {
      Json steps = Json::object();
      for (const auto& [step, position] : state_.NewestVisits()) {
        const auto& t = state_.tasks[position];
        steps[step] = {{"output", t.output}, {"status", events::Name(t.status)}};
      }
      steps_ = Json::object({{"steps", std::move(steps)}});
    }
    return steps_;
  }
  events::Header H(std::string_view entity) const { return {stream_, entity, "system"}; }
  // A header for an event caused by `actor` (a control's user).
  events::Header As(std::string_view entity, std::string_view actor) const {
    return {stream_, entity, actor};
  }
  void Add(events::Draft d) { plan_.events.push_back(std::move(d)); }
  void Launch(const std::string& task) { plan_.launch.push_back(task); }
  void Cancel(const std::string& task) { plan_.cancel.push_back(task); }
  bool empty() const { return plan_.events.empty(); }
  // Entities cancelled earlier in this batch: the state does not show it yet.
  void MarkCancelled(const std::string& entity) { cancelled_.insert(entity); }
  bool Cancelled(const std::string& entity) const { return cancelled_.count(entity) > 0; }
  // The first received signal on `topic` not consumed yet (also in this batch).
  const events::PendingSignal* TakeSignal(const ProcessState& s, const std::string& topic) {
    for (const auto& sig : s.signals) {
      if (sig.topic == topic && consumed_.insert(sig.seq).second) return &sig;
    }
    return nullptr;
  }
  // A pause step asks once per batch; later planning stops there.
  bool pause_requested() const { return pause_requested_; }
  void RequestPause() { pause_requested_ = true; }

 private:
  std::set<std::string> cancelled_;
  std::set<uint64_t> consumed_;
  bool pause_requested_ = false;
  const ProcessState& state_;
  std::string stream_;
  Plan& plan_;
  int64_t now_ns_;
  Json steps_;  // null until Steps() builds it
};

Interpreter::Interpreter(std::shared_ptr<const Workflow> workflow,
                         std::function<bool(const std::string&)> has_activity, Gates gates)
    : workflow_(std::move(workflow)),
      has_activity_(std::move(has_activity)),
      gates_(std::move(gates)) {}

bool AllParked(const ProcessState& s) {
  bool parked = false;
  for (const auto& b : s.branches) {
    if (events::IsTerminal(b.status)) continue;
    if (b.status == BranchStatus::kSuspended) {
      parked = true;
    } else if (b.status != BranchStatus::kWaiting) {
      return false;
    }
  }
  return parked;
}

const Step* Interpreter::StepOf(const TaskState& task) const {
  return workflow_->FindStep(task.step);
}

const std::vector<Step>* Interpreter::StepsOf(const ProcessState& s, const BranchState& b) const {
  if (b.parent.empty()) return &workflow_->steps;
  const TaskState* fork = s.FindTask(b.fork_task);
  if (fork == nullptr) return nullptr;
  const Step* step = workflow_->FindStep(fork->step);
  if (step == nullptr) return nullptr;
  if (step->kind == StepKind::kForEach) return &step->steps;
  for (const auto& [name, steps] : step->branches) {
    if (name == b.name) return &steps;
  }
  return nullptr;
}

std::string Interpreter::NextAfter(const ProcessState& s, const BranchState& b,
                                   const Step& step) const {
  const auto* steps = StepsOf(s, b);
  if (steps == nullptr) return "";
  // `step` is usually an element of `steps`: its position is known at once.
  const std::less<const Step*> before;
  if (!steps->empty() && !before(&step, steps->data()) &&
      before(&step, steps->data() + steps->size())) {
    size_t i = static_cast<size_t>(&step - steps->data());
    return i + 1 < steps->size() ? (*steps)[i + 1].id : "";
  }
  for (size_t i = 0; i < steps->size(); ++i) {
    if ((*steps)[i].id == step.id) return i + 1 < steps->size() ? (*steps)[i + 1].id : "";
  }
  return "";
}

// What expressions see: inputs, the branch's vars, and `item` inside a
// for_each (nearest ancestor); `steps` comes from Steps(), given as `more`.
Json Interpreter::Context(const ProcessState& s, const BranchState& b) const {
  Json ctx = Json::object();
  ctx["inputs"] = s.inputs;
  ctx["vars"] = b.vars;
  for (const BranchState* a = &b; a != nullptr;
       a = a->parent.empty() ? nullptr : s.FindBranch(a->parent)) {
    if (a->index >= 0) {
      ctx["item"] = a->item;
      break;
    }
  }
  return ctx;
}

Plan Interpreter::Next(const ProcessState& s, const std::set<std::string>& executing,
                       int64_t now_ns) {
  Plan plan;
  Batch out(s, plan, now_ns);
  const std::string& pid = s.id;
  switch (s.status) {
    case ProcessStatus::kCompleted:
    case ProcessStatus::kFailed:
    case ProcessStatus::kCancelled:
    case ProcessStatus::kPaused:
      return plan;
    case ProcessStatus::kPending: {
      if (s.WaitsInQueue()) return plan;  // until its queue admits it (kAdmit)
      out.Add(events::ProcessStarted(out.H(pid)));
      std::string vars = workflow_->vars.dump();
      std::string first = workflow_->steps.empty() ? "" : workflow_->steps.front().id;
      out.Add(events::BranchStarted(out.H("main"), {.vars_json = vars, .first_step = first}));
      return plan;
    }
    case ProcessStatus::kResumeRequested:
      out.Add(events::ProcessResumed(out.H(pid), ""));
      return plan;
    case ProcessStatus::kPauseRequested:
      if (executing.empty()) out.Add(events::ProcessPaused(out.H(pid), s.pause_reason));
      return plan;
    case ProcessStatus::kCancelRequested: {
      for (const auto& t : executing) out.Cancel(t);
      for (const auto& t : s.tasks) {
        if (!events::IsTerminal(t.status))
          out.Add(events::TaskCancelled(out.H(t.id), "process cancelled"));
      }
      for (auto it = s.branches.rbegin(); it != s.branches.rend(); ++it) {
        if (!events::IsTerminal(it->status))
          out.Add(events::BranchCancelled(out.H(it->id), "process cancelled"));
      }
      for (const auto& [id, timer] : s.timers)
        out.Add(events::TimerCancelled(out.H(pid), id, timer.due_ns));
      out.Add(events::ProcessCancelled(out.H(pid), ""));
      return plan;
    }
    case ProcessStatus::kWaiting: {
      // Something woke it (a signal, a decision, a fired timer) when there is
      // anything to do: then it runs again.
      Plan woken;
      Batch run(s, woken, now_ns);
      PlanRunning(s, executing, run);
      if (woken.empty()) return plan;
      out.Add(events::ProcessResumed(out.H(pid), ""));
      for (auto& d : woken.events) out.Add(std::move(d));
      plan.launch = std::move(woken.launch);
      plan.cancel = std::move(woken.cancel);
      return plan;
    }
    case ProcessStatus::kRunning:
      PlanRunning(s, executing, out);
      if (out.empty() && executing.empty() && AllParked(s))
        out.Add(events::ProcessWaiting(out.H(pid)));
      return plan;
  }
  return plan;
}

void Interpreter::PlanRunning(const ProcessState& s, const std::set<std::string>& executing,
                              Batch& out) {
  for (const auto& b : s.branches) {
    if (out.pause_requested()) return;  // a pause step: nothing more starts
    if (out.Cancelled(b.id)) continue;  // a join decided earlier in this batch
    if (b.status == BranchStatus::kRunning)
      PlanBranch(s, b, executing, out);
    else if (b.status == BranchStatus::kSuspended)
      PlanParked(s, b, out);
    else if (b.status == BranchStatus::kWaiting)
      PlanJoin(s, b, out);
  }
}

void Interpreter::PlanBranch(const ProcessState& s, const BranchState& b,
                             const std::set<std::string>& executing, Batch& out) {
  if (!b.current_task.empty()) {
    const TaskState* t = s.FindTask(b.current_task);
    if (t == nullptr) return;
    const Step* step = StepOf(*t);
    if (step == nullptr) return;
    const uint32_t attempt = t->attempts + 1;
    // A retry whose backoff timer has fired.
    bool retry_due = t->status == TaskStatus::kRetrying &&
                     !Armed(s, "retry/" + t->id + "/" + std::to_string(attempt));
    // Scheduled but not started (approved by a gate, or a crash between the
    // two), or running with no live execution and no outcome (a crash or a
    // pause with `now` mid-attempt): a new attempt.
    bool relaunch = step->kind == StepKind::kActivity &&
                    (t->status == TaskStatus::kScheduled ||
                     (t->status == TaskStatus::kRunning && !executing.count(t->id)));
    bool approved = step->kind == StepKind::kApproval && t->status == TaskStatus::kScheduled;
    if (!retry_due && !relaunch && !approved) return;  // most branches, most batches
    const std::string key = s.id + "/" + t->id + "/" + std::to_string(attempt);
    if (retry_due || relaunch) {
      out.Add(events::TaskStarted(out.H(t->id), attempt, key));
      out.Launch(t->id);
    } else {
      // Approved: the step's output is the decision.
      out.Add(events::TaskStarted(out.H(t->id), attempt, key));
      const events::Approval& a = t->approval ? *t->approval : events::Approval{};
      CompleteTask(s, b, t->id, *step, {{"approved", true}, {"by", a.by}, {"reason", a.reason}},
                   out);
    }
    return;
  }
  if (b.current_step.empty()) {
    FinishBranch(s, b, out);
    return;
  }
  const Step* step = workflow_->FindStep(b.current_step);
  if (step == nullptr) {
    out.Add(events::BranchFailed(out.H(b.id), "unknown step '" + b.current_step + "'"));
    if (b.parent.empty())
      out.Add(events::ProcessFailed(out.H(s.id), "unknown step '" + b.current_step + "'"));
    return;
  }
  StartStep(s, b, *step, out);
}

// A suspended branch goes on once what it waits for has happened.
void Interpreter::PlanParked(const ProcessState& s, const BranchState& b, Batch& out) {
  const TaskState* t = s.FindTask(b.parked_on);
  const Step* step = t ? StepOf(*t) : nullptr;
  if (step == nullptr) return;
  BranchState running = b;
  running.status = BranchStatus::kRunning;
  if (b.parked_kind == "approval") {
    if (t->status == TaskStatus::kWaitForApproval) return;
    if (t->status == TaskStatus::kFailed && t->next.empty()) {
      FailBranch(s, b, "step '" + step->id + "' failed: " + t->error.value_or("rejected"), out);
      return;
    }
    out.Add(events::BranchResumed(out.H(b.id)));
    if (t->status == TaskStatus::kScheduled) PlanBranch(s, running, {}, out);
    return;  // rejected with on_error: the branch is already at that step
  }
  if (t->status != TaskStatus::kRunning) return;
  if (b.parked_kind == "signal") {
    const std::string topic = t->input.is_object() ? t->input.value("topic", "") : "";
    const std::string timer = "timeout/" + t->id;
    if (const events::PendingSignal* sig = out.TakeSignal(s, topic)) {
      if (Armed(s, timer))
        out.Add(events::TimerCancelled(out.H(s.id), timer, s.timers.at(timer).due_ns));
      out.Add(events::BranchResumed(out.H(b.id)));
      CompleteTask(s, running, t->id, *step, sig->payload, out, sig->seq);
      return;
    }
    if (step->wait_timeout_ms <= 0 || Armed(s, timer)) return;
    out.Add(events::BranchResumed(out.H(b.id)));
    const std::string error =
        "no signal '" + topic + "' within " + FormatDurationMs(step->wait_timeout_ms);
    if (step->on_timeout.empty()) {
      FailTask(s, running, t->id, *step, error, nullptr, false, out);
      return;
    }
    out.Add(events::TaskFailed(out.H(t->id), error, "", false, step->on_timeout));
    Json patch = {{"error", {{"message", error}, {"step", step->id}, {"task", t->id}}}};
    out.Add(events::VariablesSet(out.H(b.id), patch.dump()));
    return;
  }
  if (b.parked_kind == "timer" && !Armed(s, "sleep/" + t->id)) {
    out.Add(events::BranchResumed(out.H(b.id)));
    CompleteTask(s, running, t->id, *step, t->input, out);
  }
}

// One visit of a step as it starts: its task, attempt and the context its
// expressions see.
struct Interpreter::Visit {
  const ProcessState& s;
  const BranchState& b;
  const Step& step;
  std::string task;
  uint32_t visit;
  uint32_t attempt;
  std::string key;  // the attempt's idempotency key
  Json ctx;
  ExpressionEngine::More steps;
};

void Interpreter::StartStep(const ProcessState& s, const BranchState& b, const Step& step,
                            Batch& out, const TaskState* reuse, const TaskState* retry_of) {
  // Visits of a step in a branch are numbered 1, 2, ... without gaps: the
  // next is found by searching the task ids, not by scanning every task.
  auto seen = [&](uint32_t v) { return s.FindTask(TaskId(b.id, step.id, v)) != nullptr; };
  uint32_t visit = 1;
  if (reuse != nullptr) {
    visit = reuse->visit;
  } else if (seen(1)) {
    uint32_t lo = 1, hi = 2;  // seen(lo); the next visit is in (lo, hi]
    while (seen(hi)) lo = hi, hi *= 2;
    while (hi - lo > 1) {
      uint32_t mid = lo + (hi - lo) / 2;
      (seen(mid) ? lo : hi) = mid;
    }
    visit = hi;
  }
  const std::string task = reuse ? reuse->id : TaskId(b.id, step.id, visit);
  const uint32_t attempt = reuse ? reuse->attempts + 1 : 1;
  const Visit v{.s = s,
                .b = b,
                .step = step,
                .task = task,
                .visit = visit,
                .attempt = attempt,
                .key = s.id + "/" + task + "/" + std::to_string(attempt),
                .ctx = Context(s, b),
                .steps = [&out]() -> const Json& { return out.Steps(); }};
  auto& engine = Engine();
  if (!step.when.empty()) {
    auto cond = engine.Evaluate(step.when, v.ctx, v.steps);
    if (!cond.ok()) return FailVisit(v, "when: " + cond.status().message(), out);
    if (!IsTruthy(*cond)) {
      out.Add(events::TaskScheduled(out.H(task), step.id, b.id, "{}", visit));
      out.Add(events::TaskSkipped(out.H(task), "when '" + step.when + "' was false",
                                  NextAfter(s, b, step)));
      return;
    }
  }
  auto input = engine.Render(step.with, v.ctx, v.steps);
  if (!input.ok()) return FailVisit(v, "with: " + input.status().message(), out);
  switch (step.kind) {
    case StepKind::kActivity:
      return StartActivity(s, b, step, task, attempt, out, *input, visit);
    case StepKind::kApproval:
      return StartApproval(v, out);
    case StepKind::kWaitSignal:
      return StartWaitSignal(v, out);
    case StepKind::kSleep:
      return StartSleep(v, out);
    case StepKind::kPause:
      return StartPause(v, out);
    case StepKind::kSet:
      return StartSet(v, out);
    case StepKind::kParallel:
    case StepKind::kForEach:
      return StartFork(v, *input, retry_of, out);
  }
}

void Interpreter::FailVisit(const Visit& v, const std::string& why, Batch& out) {
  out.Add(events::TaskScheduled(out.H(v.task), v.step.id, v.b.id, "{}", v.visit));
  FailTask(v.s, v.b, v.task, v.step, why, nullptr, false, out);
}

void Interpreter::StartApproval(const Visit& v, Batch& out) {
  auto prompt = Engine().Render(Json(v.step.prompt), v.ctx, v.steps);
  if (!prompt.ok()) return FailVisit(v, "approval.prompt: " + prompt.status().message(), out);
  std::string text = AsText(*prompt);
  out.Add(events::TaskScheduled(out.H(v.task), v.step.id, v.b.id,
                                Json({{"prompt", text}}).dump(), v.visit));
  WaitForApproval(v.s, v.b, v.task, text, "", v.step.expires_ms, out);
}

void Interpreter::StartWaitSignal(const Visit& v, Batch& out) {
  auto topic = Engine().Render(Json(v.step.topic), v.ctx, v.steps);
  if (!topic.ok()) return FailVisit(v, "wait_signal.topic: " + topic.status().message(), out);
  std::string text = AsText(*topic);
  out.Add(events::TaskScheduled(out.H(v.task), v.step.id, v.b.id, Json({{"topic", text}}).dump(),
                                v.visit));
  out.Add(events::TaskStarted(out.H(v.task), v.attempt, v.key));
  if (const events::PendingSignal* sig = out.TakeSignal(v.s, text)) {
    return CompleteTask(v.s, v.b, v.task, v.step, sig->payload, out, sig->seq);
  }
  if (v.step.wait_timeout_ms > 0) {
    out.Add(events::TimerScheduled(out.H(v.s.id), "timeout/" + v.task,
                                   out.now_ns() + v.step.wait_timeout_ms * 1'000'000, "timeout",
                                   v.task));
  }
  out.Add(events::BranchSuspended(out.H(v.b.id), v.task, "signal"));
}

void Interpreter::StartSleep(const Visit& v, Batch& out) {
  Result<int64_t> due = out.now_ns() + v.step.sleep_ms * 1'000'000;
  if (!v.step.sleep_until.empty()) {
    auto until = Engine().Render(Json(v.step.sleep_until), v.ctx, v.steps);
    due = until.ok() ? ParseTimeNs(AsText(*until)) : Result<int64_t>(until.status());
  }
  if (!due.ok()) return FailVisit(v, "sleep.until: " + due.status().message(), out);
  out.Add(events::TaskScheduled(out.H(v.task), v.step.id, v.b.id,
                                Json({{"until", FormatTime(*due)}}).dump(), v.visit));
  out.Add(events::TaskStarted(out.H(v.task), v.attempt, v.key));
  out.Add(events::TimerScheduled(out.H(v.s.id), "sleep/" + v.task, *due, "sleep", v.task));
  out.Add(events::BranchSuspended(out.H(v.b.id), v.task, "timer"));
}

void Interpreter::StartPause(const Visit& v, Batch& out) {
  auto reason = Engine().Render(Json(v.step.pause_reason), v.ctx, v.steps);
  std::string text = reason.ok() ? AsText(*reason) : "";
  if (text.empty()) text = "pause step '" + v.step.id + "'";
  out.Add(events::TaskScheduled(out.H(v.task), v.step.id, v.b.id, Json({{"reason", text}}).dump(),
                                v.visit));
  out.Add(events::TaskStarted(out.H(v.task), v.attempt, v.key));
  CompleteTask(v.s, v.b, v.task, v.step, nullptr, out);
  out.Add(events::ProcessPauseRequested(out.H(v.s.id), text));
  out.RequestPause();
}

void Interpreter::StartSet(const Visit& v, Batch& out) {
  Json patch = Json::object();
  for (const auto& [var, expr] : v.step.set) {
    Json c = v.ctx;
    c["vars"].update(patch);  // later assignments see the earlier ones
    auto value = Engine().Evaluate(expr, c, v.steps);
    if (!value.ok()) return FailVisit(v, "set " + var + ": " + value.status().message(), out);
    patch[var] = *value;
  }
  out.Add(events::TaskScheduled(out.H(v.task), v.step.id, v.b.id, "{}", v.visit));
  out.Add(events::TaskStarted(out.H(v.task), v.attempt, v.key));
  // The decision (goto or next) sees the new values.
  BranchState after = v.b;
  after.vars.update(patch);
  out.Add(events::VariablesSet(out.H(v.b.id), patch.dump()));
  CompleteTask(v.s, after, v.task, v.step, patch, out);
}

void Interpreter::StartFork(const Visit& v, const Json& input, const TaskState* retry_of,
                            Batch& out) {
  const Step& step = v.step;
  Json fork_input = input;
  if (step.kind == StepKind::kForEach) {
    auto list = Engine().Evaluate(step.for_each, v.ctx, v.steps);
    // An empty Lua table has no JSON shape of its own: an empty list here.
    bool empty = list.ok() && (list->is_null() || (list->is_object() && list->empty()));
    if (!list.ok() || !(list->is_array() || empty)) {
      return FailVisit(v,
                       "for_each: " + (list.ok() ? std::string("'") + step.for_each +
                                                       "' is not a list"
                                                 : list.status().message()),
                       out);
    }
    fork_input = Json::object({{"items", empty ? Json::array() : *list}});
  }
  if (retry_of != nullptr && (fork_input.is_object() || fork_input.is_null())) {
    fork_input["retry_of"] = retry_of->id;  // recorded: the log says what was carried over
  }
  out.Add(events::TaskScheduled(out.H(v.task), step.id, v.b.id, fork_input.dump(), v.visit));
  out.Add(events::TaskStarted(out.H(v.task), v.attempt, v.key));
  if (step.kind == StepKind::kParallel) {
    const std::string vars = v.b.vars.dump();
    for (const auto& [name, steps] : step.branches) {
      std::string first = steps.empty() ? "" : steps.front().id;
      StartChild(v.s, fork_input, v.task + "/" + name,
                 {.parent = v.b.id,
                  .fork_task = v.task,
                  .name = name,
                  .vars_json = vars,
                  .first_step = first},
                 out);
    }
  } else {
    StartItems(v.s, v.b, step, v.task, fork_input, 0, 0, out);
  }
  out.Add(events::BranchWaiting(out.H(v.b.id), v.task));
}

void Interpreter::StartItems(const ProcessState& s, const BranchState& b, const Step& step,
                             const std::string& fork, const Json& fork_input, size_t from,
                             size_t running, Batch& out) {
  const Json& items = Items(fork_input);
  const size_t limit = step.concurrency == 0 ? items.size() : step.concurrency;
  const std::string vars = b.vars.dump();
  const std::string first = step.steps.empty() ? "" : step.steps.front().id;
  for (size_t i = from; i < items.size() && running < limit; ++i) {
    const std::string item = items[i].dump();
    running += StartChild(s, fork_input, fork + "/" + std::to_string(i),
                          {.parent = b.id,
                           .fork_task = fork,
                           .name = std::to_string(i),
                           .index = static_cast<int32_t>(i),
                           .item_json = item,
                           .vars_json = vars,
                           .first_step = first},
                          out);
  }
}

bool Interpreter::StartChild(const ProcessState& s, const Json& fork_input, const std::string& id,
                             const events::BranchStart& start, Batch& out) {
  const BranchState* earlier = nullptr;
  if (auto retry_of = fork_input.find("retry_of");
      retry_of != fork_input.end() && retry_of->is_string()) {
    earlier = s.FindBranch(retry_of->get_ref<const std::string&>() + "/" + std::string(start.name));
  }
  if (earlier != nullptr && earlier->status == BranchStatus::kCompleted &&
      earlier->item == (start.item_json.empty()
                            ? Json()
                            : Json::parse(start.item_json, nullptr, /*allow_exceptions=*/false))) {
    events::BranchStart carried = start;
    carried.first_step = "";
    out.Add(events::BranchStarted(out.H(id), carried));
    out.Add(events::BranchCompleted(out.H(id), Dump(earlier->output)));
    return false;
  }
  out.Add(events::BranchStarted(out.H(id), start));
  return true;
}

void Interpreter::StartActivity(const ProcessState& s, const BranchState& b, const Step& step,
                                const std::string& task, uint32_t attempt, Batch& out,
                                const Json& input, uint32_t visit) {
  GateDecision gate = gates_.Check(workflow_->name, step, input);
  using Decision = PolicyRule::Decision;
  const std::string allowed_by = gate.decision == Decision::kAllow ? gate.rule : "";
  out.Add(events::TaskScheduled(out.H(task), step.id, b.id, input.dump(), visit, allowed_by));
  if (gate.decision == Decision::kBlock) {
    out.Add(events::TaskBlocked(out.H(task), gate.rule, gate.reason));
    FailBranch(s, b, "step '" + step.id + "' blocked: " + gate.reason, out);
    return;
  }
  if (!has_activity_(step.activity)) {
    FailTask(s, b, task, step, "activity '" + step.activity + "' is not registered", nullptr, false,
             out);
    return;
  }
  if (gate.decision == Decision::kRequireApproval) {
    WaitForApproval(s, b, task, gate.reason + ": approve?", gate.rule, 0, out);
    return;
  }
  out.Add(
      events::TaskStarted(out.H(task), attempt, s.id + "/" + task + "/" + std::to_string(attempt)));
  out.Launch(task);
}

void Interpreter::WaitForApproval(const ProcessState& s, const BranchState& b,
                                  const std::string& task, const std::string& prompt,
                                  const std::string& rule, int64_t expires_ms, Batch& out) {
  int64_t expires_ns = expires_ms > 0 ? out.now_ns() + expires_ms * 1'000'000 : 0;
  out.Add(events::TaskWaitingForApproval(out.H(task), prompt, rule, expires_ns));
  if (expires_ns != 0) {
    out.Add(events::TimerScheduled(out.H(s.id), "expiry/" + task, expires_ns, "expiry", task));
  }
  out.Add(events::BranchSuspended(out.H(b.id), task, "approval"));
}

void Interpreter::CompleteTask(const ProcessState& s, const BranchState& b, const std::string& task,
                               const Step& step, const Json& output, Batch& out,
                               uint64_t signal_seq) {
  BranchState after = b;
  if (!step.save_as.empty()) {
    Json patch = {{step.save_as, output}};
    after.vars.update(patch);
    out.Add(events::VariablesSet(out.H(b.id), patch.dump()));
  }
  std::string next = NextAfter(s, b, step);
  if (step.go_to) {
    bool jump = true;
    if (!step.go_to->when.empty()) {
      Json ctx = Context(s, after);
      ctx["steps"] = out.Steps()["steps"];
      ctx["steps"][step.id] = {{"output", output}, {"status", "completed"}};
      auto cond = Engine().Evaluate(step.go_to->when, ctx);
      if (!cond.ok()) {
        FailTask(s, b, task, step, "goto.when: " + cond.status().message(), output, false, out);
        return;
      }
      jump = IsTruthy(*cond);
    }
    if (jump) next = step.go_to->step;
  }
  out.Add(events::TaskCompleted(out.H(task), Dump(output), next, signal_seq));
}

void Interpreter::FailTask(const ProcessState& s, const BranchState& b, const std::string& task,
                           const Step& step, const std::string& error, const Json& output,
                           bool retryable, Batch& out) {
  std::string message = "step '" + step.id + "' failed: " + error;
  if (!step.on_error.empty()) {
    out.Add(events::TaskFailed(out.H(task), error, Dump(output), retryable, step.on_error));
    Json patch = {{"error", {{"message", error}, {"step", step.id}, {"task", task}}}};
    out.Add(events::VariablesSet(out.H(b.id), patch.dump()));
    return;
  }
  out.Add(events::TaskFailed(out.H(task), error, Dump(output), retryable, ""));
  FailBranch(s, b, message, out);
}

void Interpreter::FailBranch(const ProcessState& s, const BranchState& b,
                             const std::string& message, Batch& out) {
  out.Add(events::BranchFailed(out.H(b.id), message));
  if (!b.parent.empty()) return;  // the parent's join sees it next
  // Whatever still runs elsewhere is stopped: the process has failed.
  for (const auto& other : s.branches) {
    if (other.id != b.id && !events::IsTerminal(other.status))
      CancelBranchTree(s, other.id, "process failed", out);
  }
  out.Add(events::ProcessFailed(out.H(s.id), message));
}

void Interpreter::CancelBranchTree(const ProcessState& s, const std::string& branch,
                                   const std::string& reason, Batch& out) {
  if (out.Cancelled(branch)) return;
  for (const auto& child : s.branches) {
    if (child.parent == branch && !events::IsTerminal(child.status))
      CancelBranchTree(s, child.id, reason, out);
  }
  for (const auto& t : s.tasks) {
    if (t.branch == branch && !events::IsTerminal(t.status) && !out.Cancelled(t.id)) {
      out.Add(events::TaskCancelled(out.H(t.id), reason));
      out.MarkCancelled(t.id);
      if (t.status == TaskStatus::kRunning) out.Cancel(t.id);
      for (const auto& [id, timer] : s.timers) {
        if (timer.task == t.id) out.Add(events::TimerCancelled(out.H(s.id), id, timer.due_ns));
      }
    }
  }
  const BranchState* b = s.FindBranch(branch);
  if (b != nullptr && !events::IsTerminal(b->status)) {
    out.Add(events::BranchCancelled(out.H(branch), reason));
    out.MarkCancelled(branch);
  }
}

void Interpreter::FinishBranch(const ProcessState& s, const BranchState& b, Batch& out) {
  out.Add(events::BranchCompleted(out.H(b.id), Dump(b.output)));
  if (!b.parent.empty()) return;  // the parent's join sees it next
  Json outputs = Json::object();
  Json ctx = Context(s, b);
  const ExpressionEngine::More steps = [&out]() -> const Json& { return out.Steps(); };
  for (const auto& [name, expr] : workflow_->outputs) {
    auto v = expr.find("${") != std::string::npos ? Engine().Render(Json(expr), ctx, steps)
                                                  : Engine().Evaluate(expr, ctx, steps);
    if (!v.ok() || v->is_null()) {
      out.Add(events::ProcessFailed(
          out.H(s.id), "output '" + name + "': " +
                           (v.ok() ? "'" + expr + "' has no value" : v.status().message())));
      return;
    }
    outputs[name] = *v;
  }
  out.Add(events::ProcessCompleted(out.H(s.id), outputs.dump()));
}

namespace {

// What the child branches of one fork have come to.
struct Tally {
  std::vector<const BranchState*> children;  // in start order
  size_t ok = 0, failed = 0, live = 0;
  const BranchState* first_done = nullptr;
  const BranchState* first_failed = nullptr;
};

Tally CountChildren(const ProcessState& s, const BranchState& parent, const std::string& fork) {
  Tally t;
  for (const auto& c : s.branches) {
    if (c.parent != parent.id || c.fork_task != fork) continue;
    t.children.push_back(&c);
    if (c.status == BranchStatus::kCompleted) {
      ++t.ok;
      if (!t.first_done) t.first_done = &c;
    } else if (c.status == BranchStatus::kFailed || c.status == BranchStatus::kCancelled) {
      ++t.failed;
      if (!t.first_done) t.first_done = &c;
      if (!t.first_failed) t.first_failed = &c;
    } else {
      ++t.live;
    }
  }
  return t;
}

enum class Verdict { kWait, kSucceed, kFail };

// The join rule over `total` children: success, failure, or not yet.
Verdict Decide(const Join& join, const Tally& t, size_t total) {
  switch (join.kind) {
    case Join::kAll:
      if (t.failed > 0) return Verdict::kFail;
      return t.ok == total ? Verdict::kSucceed : Verdict::kWait;
    case Join::kFirst:
      if (!t.first_done) return Verdict::kWait;
      return t.first_done->status == BranchStatus::kCompleted ? Verdict::kSucceed : Verdict::kFail;
    case Join::kAny:
      if (t.ok > 0) return Verdict::kSucceed;
      return t.failed == total ? Verdict::kFail : Verdict::kWait;
    case Join::kAtLeast:
      if (t.ok >= join.at_least) return Verdict::kSucceed;
      return total - t.failed < join.at_least ? Verdict::kFail : Verdict::kWait;
  }
  return Verdict::kWait;
}

// A fork's output: the children's outputs in item order (for_each), or
// branch name -> output of those that completed (parallel).
Json ForkOutput(const Step& step, const Tally& t) {
  if (step.kind == StepKind::kForEach) {
    Json output = Json::array();
    for (const auto* c : t.children)
      output.push_back(c->status == BranchStatus::kCompleted ? c->output : Json());
    return output;
  }
  Json output = Json::object();
  for (const auto* c : t.children) {
    if (c->status == BranchStatus::kCompleted) output[c->name] = c->output;
  }
  return output;
}

}  // namespace

void Interpreter::PlanJoin(const ProcessState& s, const BranchState& b, Batch& out) {
  const TaskState* fork = s.FindTask(b.parked_on);
  if (fork == nullptr) return;
  const Step* step = StepOf(*fork);
  if (step == nullptr) return;
  const Tally tally = CountChildren(s, b, fork->id);
  size_t total = tally.children.size();
  if (step->kind == StepKind::kForEach) {
    total = Items(fork->input).size();
    // Start more items while under the concurrency limit.
    size_t limit = step->concurrency == 0 ? total : step->concurrency;
    if (tally.failed == 0 && tally.children.size() < total && tally.live < limit) {
      StartItems(s, b, *step, fork->id, fork->input, tally.children.size(), tally.live, out);
      return;
    }
  }
  const Verdict verdict = Decide(step->kind == StepKind::kForEach ? Join{} : step->join, tally, total);
  if (verdict == Verdict::kWait) return;
  // The branches no longer needed are cancelled.
  for (const auto* c : tally.children) {
    if (!events::IsTerminal(c->status))
      CancelBranchTree(s, c->id, "join '" + step->id + "' decided", out);
  }
  out.Add(events::BranchResumed(out.H(b.id)));
  if (verdict == Verdict::kFail) {
    const BranchState* failed = tally.first_failed;
    std::string why = failed && failed->error ? *failed->error : "a branch did not complete";
    FailTask(s, b, fork->id, *step, "branch '" + (failed ? failed->name : "") + "': " + why,
             nullptr, false, out);
    return;
  }
  CompleteTask(s, b, fork->id, *step, ForkOutput(*step, tally), out);
}

Plan Interpreter::OnResult(const ProcessState& s, const std::string& task, uint32_t attempt,
                           const ActivityResult& result, int64_t now_ns) {
  Plan plan;
  Batch out(s, plan, now_ns);
  const TaskState* t = s.FindTask(task);
  if (t == nullptr || t->status != TaskStatus::kRunning || t->attempts != attempt) return plan;
  if (events::IsTerminal(s.status) || s.status == ProcessStatus::kCancelRequested) return plan;
  const BranchState* b = s.FindBranch(t->branch);
  const Step* step = StepOf(*t);
  if (b == nullptr || step == nullptr) return plan;
  if (result.ok) {
    CompleteTask(s, *b, task, *step, result.output, out);
    return plan;
  }
  EndAttempt(s, *b, task, *step, attempt, result, out);
  return plan;
}

void Interpreter::EndAttempt(const ProcessState& s, const BranchState& b, const std::string& task,
                             const Step& step, uint32_t attempt, const ActivityResult& result,
                             Batch& out) {
  if (result.retryable && attempt < step.retry.max_attempts) {
    int64_t due = out.now_ns() + step.retry.DelayMs(attempt) * 1'000'000;
    std::string timer = "retry/" + task + "/" + std::to_string(attempt + 1);
    out.Add(events::TaskRetryScheduled(out.H(task), attempt + 1, due, result.error));
    out.Add(events::TimerScheduled(out.H(s.id), timer, due, "retry", task));
    return;
  }
  FailTask(s, b, task, step, result.error, result.output, result.retryable, out);
}

Plan Interpreter::OnTimer(const ProcessState& s, const std::string& timer, int64_t now_ns) {
  Plan plan;
  Batch out(s, plan, now_ns);
  auto it = s.timers.find(timer);
  if (it == s.timers.end()) return plan;
  out.Add(events::TimerFired(out.H(s.id), timer, it->second.due_ns));
  if (it->second.kind != "expiry" || events::IsTerminal(s.status)) return plan;
  // An approval that expired is rejected by `system`.
  const TaskState* t = s.FindTask(it->second.task);
  if (t == nullptr || t->status != TaskStatus::kWaitForApproval) return plan;
  const Step* step = StepOf(*t);
  const std::string next = step ? step->on_error : "";
  out.Add(events::TaskRejected(out.H(t->id), "system", "expired", next));
  if (!next.empty()) {
    Json patch = {
        {"error",
         {{"message", "rejected by system: expired"}, {"step", t->step}, {"task", t->id}}}};
    out.Add(events::VariablesSet(out.H(t->branch), patch.dump()));
  }
  return plan;
}

Result<Plan> Interpreter::OnControl(const ProcessState& s, const Control& c,
                                    const std::set<std::string>& executing, int64_t now_ns) {
  using Kind = Control::Kind;
  if (c.kind == Kind::kTimer) return OnTimer(s, c.target, now_ns);
  Plan plan;
  Batch out(s, plan, now_ns);
  Status recorded = Status::Internal("unknown control");
  switch (c.kind) {
    case Kind::kPause:
      recorded = PlanPause(s, c, executing, out);
      break;
    case Kind::kResume:
      recorded = PlanResume(s, c, out);
      break;
    case Kind::kCancel:
      recorded = c.target.empty() ? PlanCancel(s, c, out) : PlanCancelTask(s, c, executing, out);
      break;
    case Kind::kRetry:
      recorded = PlanRetry(s, c, out);
      break;
    case Kind::kApprove:
    case Kind::kReject:
      recorded = PlanDecision(s, c, out);
      break;
    case Kind::kSignal:
      recorded = PlanSignal(s, c, out);
      break;
    case Kind::kTimer:
      break;
    case Kind::kAdmit:
      if (!s.WaitsInQueue()) return Refuse(s, "it waits in no queue");
      out.Add(events::ProcessAdmitted(out.H(s.id), s.queue));
      recorded = Status::OK();
      break;
  }
  if (!recorded.ok()) return recorded;
  return plan;
}

Status Interpreter::PlanPause(const ProcessState& s, const Control& c,
                              const std::set<std::string>& executing, Batch& out) {
  if (s.status == ProcessStatus::kPaused || s.status == ProcessStatus::kPauseRequested) {
    return Refuse(s, "it is already paused");
  }
  if (!events::Next(s.status, events::EventType::ProcessPauseRequested)) {
    return Refuse(s, "only a running or waiting process can be paused");
  }
  out.Add(events::ProcessPauseRequested(out.As(s.id, c.by), c.reason, c.now));
  // Interrupted attempts keep no outcome: they run again on resume.
  if (c.now) {
    for (const auto& t : executing) out.Cancel(t);
  }
  return Status::OK();
}

Status Interpreter::PlanResume(const ProcessState& s, const Control& c, Batch& out) {
  if (s.status != ProcessStatus::kPaused && s.status != ProcessStatus::kPauseRequested) {
    return Refuse(s, "only a paused process can be resumed");
  }
  out.Add(events::ProcessResumeRequested(out.As(s.id, c.by), c.reason));
  return Status::OK();
}

Status Interpreter::PlanCancel(const ProcessState& s, const Control& c, Batch& out) {
  if (events::IsTerminal(s.status)) return Refuse(s, "it has already ended");
  if (s.status == ProcessStatus::kCancelRequested) return Refuse(s, "it is already being cancelled");
  out.Add(events::ProcessCancelRequested(out.As(s.id, c.by), c.reason));
  return Status::OK();
}

Status Interpreter::PlanCancelTask(const ProcessState& s, const Control& c,
                                   const std::set<std::string>& executing, Batch& out) {
  if (events::IsTerminal(s.status)) return Refuse(s, "it has no running task");
  const TaskState* t = s.FindTask(c.target);
  if (t == nullptr)
    return Status::NotFound("process '" + s.id + "' has no task '" + c.target + "'");
  if (t->status != TaskStatus::kRunning || executing.count(t->id) == 0) {
    return Status::Refused("task '" + t->id + "' has no running attempt (it is " +
                           events::Name(t->status) + ")");
  }
  const BranchState* b = s.FindBranch(t->branch);
  const Step* step = StepOf(*t);
  if (b == nullptr || step == nullptr) return Status::Internal("task '" + t->id + "' is orphaned");
  const std::string by = c.by.empty() ? "user" : c.by;
  std::string why = "cancelled by " + by + (c.reason.empty() ? "" : ": " + c.reason);
  out.Cancel(t->id);  // stopped once the outcome below is durable
  EndAttempt(s, *b, t->id, *step, t->attempts, ActivityResult::Fail(why, /*retryable=*/true), out);
  return Status::OK();
}

Status Interpreter::PlanRetry(const ProcessState& s, const Control& c, Batch& out) {
  if (s.status != ProcessStatus::kFailed) return Refuse(s, "only a failed process can be retried");
  const BranchState* main = s.FindBranch("main");
  const TaskState* t =
      main && main->status == BranchStatus::kFailed ? s.FindTask(main->current_task) : nullptr;
  const Step* step = t ? StepOf(*t) : nullptr;
  if (step == nullptr ||
      !(t->status == TaskStatus::kFailed || t->status == TaskStatus::kBlocked)) {
    return Refuse(s, "it did not fail at a step, so there is nothing to retry");
  }
  out.Add(events::ProcessRetried(out.As(s.id, c.by), c.reason));
  out.Add(events::BranchResumed(out.H(main->id)));
  BranchState running = *main;
  running.status = BranchStatus::kRunning;
  // A fan-out starts over as a new visit (its child branches are over) that
  // runs again only the children that did not complete; any other step runs
  // again as a new attempt of the same task.
  bool fork = step->kind == StepKind::kParallel || step->kind == StepKind::kForEach;
  StartStep(s, running, *step, out, fork ? nullptr : t, fork ? t : nullptr);
  return Status::OK();
}

namespace {

// The task an approve or reject names: a task id, or a step id whose one
// task waits for approval.
Result<const TaskState*> ApprovalTarget(const ProcessState& s, const std::string& target) {
  const TaskState* t = s.FindTask(target);
  if (t != nullptr) return t;
  for (const auto& task : s.tasks) {
    if (task.step != target) continue;
    if (t != nullptr && task.status == TaskStatus::kWaitForApproval &&
        t->status == TaskStatus::kWaitForApproval) {
      return Status::Refused("step '" + target +
                             "' has several tasks waiting for approval; name the task id");
    }
    if (t == nullptr || task.status == TaskStatus::kWaitForApproval) t = &task;
  }
  if (t == nullptr)
    return Status::NotFound("process '" + s.id + "' has no task or step '" + target + "'");
  return t;
}

}  // namespace

Status Interpreter::PlanDecision(const ProcessState& s, const Control& c, Batch& out) {
  if (events::IsTerminal(s.status)) return Refuse(s, "it has no approval to decide");
  auto found = ApprovalTarget(s, c.target);
  if (!found.ok()) return found.status();
  const TaskState* t = *found;
  if (t->status != TaskStatus::kWaitForApproval) {
    if (t->approval && t->approval->status != "pending") {
      return Status::Refused("task '" + t->id + "' was already " + t->approval->status + " by " +
                             t->approval->by);
    }
    return Status::Refused("task '" + t->id + "' is not waiting for approval (it is " +
                           events::Name(t->status) + ")");
  }
  const std::string by = c.by.empty() ? "user" : c.by;
  if (c.kind == Control::Kind::kApprove) {
    out.Add(events::TaskApproved(out.As(t->id, by), by, c.reason));
  } else {
    const Step* step = StepOf(*t);
    const std::string next = step ? step->on_error : "";
    out.Add(events::TaskRejected(out.As(t->id, by), by, c.reason, next));
    if (!next.empty()) {
      std::string message = "rejected by " + by + (c.reason.empty() ? "" : ": " + c.reason);
      Json patch = {{"error", {{"message", message}, {"step", t->step}, {"task", t->id}}}};
      out.Add(events::VariablesSet(out.H(t->branch), patch.dump()));
    }
  }
  if (auto timer = s.timers.find("expiry/" + t->id); timer != s.timers.end()) {
    out.Add(events::TimerCancelled(out.H(s.id), timer->first, timer->second.due_ns));
  }
  return Status::OK();
}

Status Interpreter::PlanSignal(const ProcessState& s, const Control& c, Batch& out) {
  if (events::IsTerminal(s.status)) return Refuse(s, "it takes no more signals");
  if (c.target.empty()) return Status::InvalidArgument("a signal needs a topic");
  out.Add(events::SignalReceived(out.As(s.id, c.by), c.target, c.payload.dump()));
  return Status::OK();
}

}  // namespace keel::actors
