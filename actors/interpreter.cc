#include "actors/interpreter.h"

#include <chrono>

#include "runtime/expression.h"

namespace keel::actors {
namespace {

using events::BranchState;
using events::BranchStatus;
using events::ProcessState;
using events::ProcessStatus;
using events::TaskState;
using events::TaskStatus;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One expression engine per thread: a Lua state is not thread-safe, and
// keeping it per thread (not per process) keeps idle processes cheap.
ExpressionEngine& Engine() {
  thread_local ExpressionEngine engine;
  return engine;
}

std::string Dump(const Json& j) { return j.is_null() ? std::string() : j.dump(); }

bool IsTruthy(const Json& v) { return !(v.is_null() || (v.is_boolean() && !v.get<bool>())); }

}  // namespace

std::string TaskId(const std::string& branch, const std::string& step, uint32_t visit) {
  std::string id = branch == "main" ? step : branch + "/" + step;
  if (visit > 1) id += "#" + std::to_string(visit);
  return id;
}

// Collects the events of one plan, stamped with the process id.
class Interpreter::Batch {
 public:
  Batch(const ProcessState& s, Plan& plan) : stream_(s.id), plan_(plan) {}
  events::Header H(std::string_view entity) const { return {stream_, entity, "system"}; }
  void Add(events::Draft d) { plan_.events.push_back(std::move(d)); }
  void Launch(const std::string& task) { plan_.launch.push_back(task); }
  void Cancel(const std::string& task) { plan_.cancel.push_back(task); }
  bool empty() const { return plan_.events.empty(); }
  // Entities cancelled earlier in this batch: the state does not show it yet.
  void MarkCancelled(const std::string& entity) { cancelled_.insert(entity); }
  bool Cancelled(const std::string& entity) const { return cancelled_.count(entity) > 0; }

 private:
  std::set<std::string> cancelled_;
  std::string stream_;
  Plan& plan_;
};

Interpreter::Interpreter(std::shared_ptr<const Workflow> workflow,
                         std::function<bool(const std::string&)> has_activity)
    : workflow_(std::move(workflow)), has_activity_(std::move(has_activity)) {}

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
  for (size_t i = 0; i < steps->size(); ++i) {
    if ((*steps)[i].id == step.id) return i + 1 < steps->size() ? (*steps)[i + 1].id : "";
  }
  return "";
}

// What expressions see: inputs, the branch's vars, every task as steps.<step>
// (the newest visit wins), and `item` inside a for_each (nearest ancestor).
Json Interpreter::Context(const ProcessState& s, const BranchState& b) const {
  Json ctx = Json::object();
  ctx["inputs"] = s.inputs;
  ctx["vars"] = b.vars;
  Json steps = Json::object();
  for (const auto& t : s.tasks) {
    steps[t.step] = {{"output", t.output}, {"status", events::Name(t.status)}};
  }
  ctx["steps"] = std::move(steps);
  for (const BranchState* a = &b; a != nullptr; a = a->parent.empty() ? nullptr : s.FindBranch(a->parent)) {
    if (a->index >= 0) {
      ctx["item"] = a->item;
      break;
    }
  }
  return ctx;
}

Plan Interpreter::Next(const ProcessState& s, const std::set<std::string>& executing) {
  Plan plan;
  Batch out(s, plan);
  const std::string& pid = s.id;
  switch (s.status) {
    case ProcessStatus::kCompleted:
    case ProcessStatus::kFailed:
    case ProcessStatus::kCancelled:
    case ProcessStatus::kPaused:
    case ProcessStatus::kWaiting:
      return plan;
    case ProcessStatus::kPending: {
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
        if (!events::IsTerminal(t.status)) out.Add(events::TaskCancelled(out.H(t.id), "process cancelled"));
      }
      for (auto it = s.branches.rbegin(); it != s.branches.rend(); ++it) {
        if (!events::IsTerminal(it->status)) out.Add(events::BranchCancelled(out.H(it->id), "process cancelled"));
      }
      for (const auto& [id, timer] : s.timers) out.Add(events::TimerCancelled(out.H(pid), id, timer.due_ns));
      out.Add(events::ProcessCancelled(out.H(pid), ""));
      return plan;
    }
    case ProcessStatus::kRunning:
      break;
  }
  for (const auto& b : s.branches) {
    if (b.status == BranchStatus::kRunning) PlanBranch(s, b, executing, out);
    else if (b.status == BranchStatus::kWaiting) PlanJoin(s, b, out);
  }
  return plan;
}

void Interpreter::PlanBranch(const ProcessState& s, const BranchState& b,
                             const std::set<std::string>& executing, Batch& out) {
  if (!b.current_task.empty()) {
    const TaskState* t = s.FindTask(b.current_task);
    if (t == nullptr) return;
    const Step* step = StepOf(*t);
    if (step == nullptr) return;
    bool runs_activity = step->kind == StepKind::kActivity;
    // Scheduled but not started (a crash between the two), or running with no
    // live execution and no outcome (a crash mid-attempt): a new attempt.
    if (runs_activity && (t->status == TaskStatus::kScheduled ||
                          (t->status == TaskStatus::kRunning && !executing.count(t->id)))) {
      uint32_t attempt = t->attempts + 1;
      out.Add(events::TaskStarted(out.H(t->id), attempt,
                                  s.id + "/" + t->id + "/" + std::to_string(attempt)));
      out.Launch(t->id);
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
    if (b.parent.empty()) out.Add(events::ProcessFailed(out.H(s.id), "unknown step '" + b.current_step + "'"));
    return;
  }
  StartStep(s, b, *step, out);
}

void Interpreter::StartStep(const ProcessState& s, const BranchState& b, const Step& step,
                            Batch& out) {
  uint32_t visit = 1;
  for (const auto& t : s.tasks) {
    if (t.branch == b.id && t.step == step.id) ++visit;
  }
  const std::string task = TaskId(b.id, step.id, visit);
  Json ctx = Context(s, b);
  auto& engine = Engine();

  if (!step.when.empty()) {
    auto cond = engine.Evaluate(step.when, ctx);
    if (!cond.ok()) {
      out.Add(events::TaskScheduled(out.H(task), step.id, b.id, "{}", visit));
      FailTask(s, b, task, step, "when: " + cond.status().message(), nullptr, false, out);
      return;
    }
    if (!IsTruthy(*cond)) {
      out.Add(events::TaskScheduled(out.H(task), step.id, b.id, "{}", visit));
      out.Add(events::TaskSkipped(out.H(task), "when '" + step.when + "' was false",
                                  NextAfter(s, b, step)));
      return;
    }
  }
  auto input = engine.Render(step.with, ctx);
  if (!input.ok()) {
    out.Add(events::TaskScheduled(out.H(task), step.id, b.id, "{}", visit));
    FailTask(s, b, task, step, "with: " + input.status().message(), nullptr, false, out);
    return;
  }
  const std::string key1 = s.id + "/" + task + "/1";
  switch (step.kind) {
    case StepKind::kActivity: {
      out.Add(events::TaskScheduled(out.H(task), step.id, b.id, input->dump(), visit));
      if (!has_activity_(step.activity)) {
        FailTask(s, b, task, step, "activity '" + step.activity + "' is not registered", nullptr,
                 false, out);
        return;
      }
      out.Add(events::TaskStarted(out.H(task), 1, key1));
      out.Launch(task);
      return;
    }
    case StepKind::kSet: {
      Json patch = Json::object();
      for (const auto& [var, expr] : step.set) {
        Json c = ctx;
        c["vars"].update(patch);
        auto v = engine.Evaluate(expr, c);
        if (!v.ok()) {
          out.Add(events::TaskScheduled(out.H(task), step.id, b.id, "{}", visit));
          FailTask(s, b, task, step, "set " + var + ": " + v.status().message(), nullptr, false, out);
          return;
        }
        patch[var] = *v;
      }
      out.Add(events::TaskScheduled(out.H(task), step.id, b.id, "{}", visit));
      out.Add(events::TaskStarted(out.H(task), 1, key1));
      // The decision (goto or next) sees the new values.
      BranchState after = b;
      after.vars.update(patch);
      out.Add(events::VariablesSet(out.H(b.id), patch.dump()));
      CompleteTask(s, after, task, step, patch, out);
      return;
    }
    case StepKind::kParallel:
    case StepKind::kForEach: {
      Json fork_input = *input;
      std::vector<Json> items;
      if (step.kind == StepKind::kForEach) {
        auto list = engine.Evaluate(step.for_each, ctx);
        // An empty Lua table has no JSON shape of its own: an empty list here.
        bool empty = list.ok() && (list->is_null() || (list->is_object() && list->empty()));
        if (!list.ok() || !(list->is_array() || empty)) {
          out.Add(events::TaskScheduled(out.H(task), step.id, b.id, "{}", visit));
          FailTask(s, b, task, step,
                   "for_each: " + (list.ok() ? std::string("'") + step.for_each + "' is not a list"
                                             : list.status().message()),
                   nullptr, false, out);
          return;
        }
        fork_input = Json::object({{"items", empty ? Json::array() : *list}});
      }
      out.Add(events::TaskScheduled(out.H(task), step.id, b.id, fork_input.dump(), visit));
      out.Add(events::TaskStarted(out.H(task), 1, key1));
      std::string vars = b.vars.dump();
      if (step.kind == StepKind::kParallel) {
        for (const auto& [name, steps] : step.branches) {
          std::string first = steps.empty() ? "" : steps.front().id;
          out.Add(events::BranchStarted(out.H(task + "/" + name),
                                        {.parent = b.id, .fork_task = task, .name = name,
                                         .vars_json = vars, .first_step = first}));
        }
      } else {
        const Json& list = fork_input["items"];
        size_t limit = step.concurrency == 0 ? list.size() : std::min<size_t>(step.concurrency, list.size());
        std::string first = step.steps.empty() ? "" : step.steps.front().id;
        for (size_t i = 0; i < limit; ++i) {
          std::string item = list[i].dump();
          out.Add(events::BranchStarted(
              out.H(task + "/" + std::to_string(i)),
              {.parent = b.id, .fork_task = task, .name = std::to_string(i),
               .index = static_cast<int32_t>(i), .item_json = item, .vars_json = vars,
               .first_step = first}));
        }
      }
      out.Add(events::BranchWaiting(out.H(b.id), task));
      return;
    }
    default: {
      out.Add(events::TaskScheduled(out.H(task), step.id, b.id, input->dump(), visit));
      FailTask(s, b, task, step, "this step kind is not supported by this keel version", nullptr,
               false, out);
      return;
    }
  }
}

void Interpreter::CompleteTask(const ProcessState& s, const BranchState& b,
                               const std::string& task, const Step& step, const Json& output,
                               Batch& out) {
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
  out.Add(events::TaskCompleted(out.H(task), Dump(output), next));
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
  out.Add(events::BranchFailed(out.H(b.id), message));
  if (b.parent.empty()) {
    // Whatever still runs elsewhere is stopped: the process has failed.
    for (const auto& other : s.branches) {
      if (other.id != b.id && !events::IsTerminal(other.status)) CancelBranchTree(s, other.id, "process failed", out);
    }
    out.Add(events::ProcessFailed(out.H(s.id), message));
  }
}

void Interpreter::CancelBranchTree(const ProcessState& s, const std::string& branch,
                                   const std::string& reason, Batch& out) {
  if (out.Cancelled(branch)) return;
  for (const auto& child : s.branches) {
    if (child.parent == branch && !events::IsTerminal(child.status)) CancelBranchTree(s, child.id, reason, out);
  }
  for (const auto& t : s.tasks) {
    if (t.branch == branch && !events::IsTerminal(t.status) && !out.Cancelled(t.id)) {
      out.Add(events::TaskCancelled(out.H(t.id), reason));
      out.MarkCancelled(t.id);
      if (t.status == TaskStatus::kRunning) out.Cancel(t.id);
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
  for (const auto& [name, expr] : workflow_->outputs) {
    auto v = expr.find("${") != std::string::npos ? Engine().Render(Json(expr), ctx)
                                                    : Engine().Evaluate(expr, ctx);
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

void Interpreter::PlanJoin(const ProcessState& s, const BranchState& b, Batch& out) {
  const TaskState* fork = s.FindTask(b.parked_on);
  if (fork == nullptr) return;
  const Step* step = StepOf(*fork);
  if (step == nullptr) return;
  std::vector<const BranchState*> children;
  for (const auto& c : s.branches) {
    if (c.parent == b.id && c.fork_task == fork->id) children.push_back(&c);
  }
  size_t done = 0, ok = 0, failed = 0, live = 0;
  const BranchState* first_done = nullptr;
  const BranchState* first_failed = nullptr;
  for (const auto* c : children) {
    if (c->status == BranchStatus::kCompleted) {
      ++done, ++ok;
      if (!first_done) first_done = c;
    } else if (c->status == BranchStatus::kFailed || c->status == BranchStatus::kCancelled) {
      ++done, ++failed;
      if (!first_done) first_done = c;
      if (!first_failed) first_failed = c;
    } else {
      ++live;
    }
  }

  size_t total = children.size();
  if (step->kind == StepKind::kForEach) {
    const Json& items = fork->input.contains("items") ? fork->input["items"] : Json::array();
    total = items.size();
    // Start more items while under the concurrency limit.
    size_t limit = step->concurrency == 0 ? total : step->concurrency;
    if (failed == 0 && children.size() < total && live < limit) {
      std::string vars = b.vars.dump();
      std::string first = step->steps.empty() ? "" : step->steps.front().id;
      for (size_t i = children.size(); i < total && live < limit; ++i, ++live) {
        out.Add(events::BranchStarted(
            out.H(fork->id + "/" + std::to_string(i)),
            {.parent = b.id, .fork_task = fork->id, .name = std::to_string(i),
             .index = static_cast<int32_t>(i), .item_json = items[i].dump(), .vars_json = vars,
             .first_step = first}));
      }
      return;
    }
  }

  // Decide by the join rule: success, failure, or not yet.
  enum { kWait, kSucceed, kFail } verdict = kWait;
  Join join = step->kind == StepKind::kForEach ? Join{} : step->join;
  switch (join.kind) {
    case Join::kAll:
      if (failed > 0) verdict = kFail;
      else if (ok == total) verdict = kSucceed;
      break;
    case Join::kFirst:
      if (first_done) verdict = first_done->status == BranchStatus::kCompleted ? kSucceed : kFail;
      break;
    case Join::kAny:
      if (ok > 0) verdict = kSucceed;
      else if (failed == total) verdict = kFail;
      break;
    case Join::kAtLeast:
      if (ok >= join.at_least) verdict = kSucceed;
      else if (total - failed < join.at_least) verdict = kFail;
      break;
  }
  if (verdict == kWait) return;

  // The branches no longer needed are cancelled.
  for (const auto* c : children) {
    if (!events::IsTerminal(c->status)) CancelBranchTree(s, c->id, "join '" + step->id + "' decided", out);
  }
  out.Add(events::BranchResumed(out.H(b.id)));
  if (verdict == kFail) {
    std::string why = first_failed && first_failed->error ? *first_failed->error : "a branch did not complete";
    FailTask(s, b, fork->id, *step, "branch '" + (first_failed ? first_failed->name : "") + "': " + why,
             nullptr, false, out);
    return;
  }
  Json output;
  if (step->kind == StepKind::kForEach) {
    output = Json::array();
    for (const auto* c : children) output.push_back(c->status == BranchStatus::kCompleted ? c->output : Json());
  } else {
    output = Json::object();
    for (const auto* c : children) {
      if (c->status == BranchStatus::kCompleted) output[c->name] = c->output;
    }
  }
  CompleteTask(s, b, fork->id, *step, output, out);
}

Plan Interpreter::OnResult(const ProcessState& s, const std::string& task, uint32_t attempt,
                           const ActivityResult& result) {
  Plan plan;
  Batch out(s, plan);
  const TaskState* t = s.FindTask(task);
  if (t == nullptr || t->status != TaskStatus::kRunning || t->attempts != attempt) return plan;
  if (events::IsTerminal(s.status)) return plan;
  const BranchState* b = s.FindBranch(t->branch);
  const Step* step = StepOf(*t);
  if (b == nullptr || step == nullptr) return plan;
  if (result.ok) {
    CompleteTask(s, *b, task, *step, result.output, out);
    return plan;
  }
  if (result.retryable && attempt < step->retry.max_attempts) {
    int64_t due = NowNs() + step->retry.DelayMs(attempt) * 1'000'000;
    std::string timer = "retry/" + task + "/" + std::to_string(attempt + 1);
    out.Add(events::TaskRetryScheduled(out.H(task), attempt + 1, due, result.error));
    out.Add(events::TimerScheduled(out.H(s.id), timer, due, "retry", task));
    return plan;
  }
  FailTask(s, *b, task, *step, result.error, result.output, result.retryable, out);
  return plan;
}

Plan Interpreter::OnTimer(const ProcessState& s, const std::string& timer) {
  Plan plan;
  Batch out(s, plan);
  auto it = s.timers.find(timer);
  if (it == s.timers.end() || events::IsTerminal(s.status)) return plan;
  out.Add(events::TimerFired(out.H(s.id), timer, it->second.due_ns));
  if (it->second.kind == "retry") {
    const TaskState* t = s.FindTask(it->second.task);
    if (t != nullptr && t->status == TaskStatus::kRetrying) {
      uint32_t attempt = t->attempts + 1;
      out.Add(events::TaskStarted(out.H(t->id), attempt,
                                  s.id + "/" + t->id + "/" + std::to_string(attempt)));
      out.Launch(t->id);
    }
  }
  return plan;
}

}  // namespace keel::actors
