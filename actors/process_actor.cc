#include "actors/process_actor.h"

#include <spdlog/spdlog.h>

#include <caf/all.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <variant>

#include "actors/blocking_pool.h"

namespace keel::actors {
namespace {

using events::ProcessStatus;

// Hands an append's result from the store's writer thread to the actor.
struct AppendSlot {
  std::mutex mu;
  std::optional<Result<store::AppendResult>> result;
};

struct PendingResult {
  std::string task;
  uint32_t attempt;
  ActivityResult result;
};

using Reply = caf::typed_response_promise<int32_t, std::string>;

struct PendingControl {
  Control control;
  Reply reply;
};

// What the actor received and has not planned yet, in arrival order, so that
// controls, results and timers are decided in the order the mailbox gave them.
using Input = std::variant<PendingResult, PendingControl>;

// Actor states declare a constructor: CAF 0.17 builds a state from the actor
// pointer when it can, and C++20 lets an aggregate be built that way (the
// pointer would become its first member).
struct TaskActorState {
  TaskActorState() = default;
  static inline const char* name = "keel.task";
  bool done = false;
};

// Runs one attempt: blocking activities on the pool, async ones directly;
// enforces the timeout and forwards the outcome to the process actor.
task_actor::behavior_type TaskActor(task_actor::stateful_pointer<TaskActorState> self,
                                    process_actor parent, Host* host, const Activity* activity,
                                    ActivityContext ctx) {
  task_actor me = self;
  // Counted from here until the actor terminates, by whatever path.
  host->TaskStarted();
  self->attach_functor([host] { host->TaskEnded(); });
  auto reply = [me](const ActivityContext& c, ActivityResult r) {
    caf::anon_send(me, result_atom::value, c.task_id, c.attempt, r.ok,
                   r.output.is_null() ? std::string() : r.output.dump(), r.error, r.retryable);
  };
  if (activity->async_fn) {
    activity->async_fn(ctx, [ctx, reply](ActivityResult r) { reply(ctx, std::move(r)); });
  } else {
    host->pool().Submit([ctx, reply, fn = activity->fn] {
      ActivityResult r;
      try {
        r = fn(ctx);
      } catch (const std::exception& e) {
        r = ActivityResult::Fail(std::string("activity threw: ") + e.what());
      }
      reply(ctx, std::move(r));
    });
  }
  if (ctx.timeout_ms > 0) {
    self->delayed_send(self, std::chrono::milliseconds(ctx.timeout_ms), timeout_atom::value);
  }
  return {
      [=](result_atom, const std::string& task, uint32_t attempt, bool ok, const std::string& out,
          const std::string& err, bool retryable) {
        if (!self->state.done)
          self->send(parent, result_atom::value, task, attempt, ok, out, err, retryable);
        self->state.done = true;
        self->quit();
      },
      [=](timeout_atom) {
        ctx.cancel.Cancel();
        if (!self->state.done) {
          self->send(parent, result_atom::value, ctx.task_id, ctx.attempt, false, std::string(),
                     "timed out after " + std::to_string(ctx.timeout_ms) + "ms", true);
        }
        self->state.done = true;
        self->quit();
      },
      [=](cancel_atom) {
        ctx.cancel.Cancel();
        self->state.done = true;
        self->quit();
      },
  };
}

struct ProcessActorState {
  ProcessActorState() = default;
  static inline const char* name = "keel.process";
  Host* host = nullptr;
  events::ProcessState state;
  std::unique_ptr<Interpreter> interpreter;
  std::map<std::string, task_actor> executing;  // live attempts by task id
  std::deque<Input> inputs;                     // not planned yet, arrival order
  bool appending = false;
  Plan inflight;
  std::vector<Reply> replies;  // recorded controls, answered when idle
  std::shared_ptr<AppendSlot> slot = std::make_shared<AppendSlot>();
  uint32_t since_snapshot = 0;
};

using Self = process_actor::stateful_pointer<ProcessActorState>;

void Pump(Self self);

void SaveSnapshot(ProcessActorState& st) {
  st.since_snapshot = 0;
  Status s = st.host->store().SaveSnapshot(st.state.id, st.state.last_seq,
                                           events::ToJson(st.state).dump());
  if (!s.ok()) spdlog::warn("process {}: snapshot not saved: {}", st.state.id, s.ToString());
}

void Deliver(Reply& reply, const Status& status, const std::string& text) {
  reply.deliver(static_cast<int32_t>(status.code()), status.ok() ? text : status.message());
}

// Answers every control that is still waiting (the actor is about to stop).
void FailPending(ProcessActorState& st, const Status& why) {
  for (auto& reply : st.replies) Deliver(reply, why, "");
  st.replies.clear();
  for (auto& input : st.inputs) {
    if (auto* control = std::get_if<PendingControl>(&input)) Deliver(control->reply, why, "");
  }
  st.inputs.clear();
}

void Stop(Self self, const Status& why) {
  FailPending(self->state, why);
  self->quit(caf::exit_reason::user_shutdown);
}

void Launch(Self self, const std::string& task_id) {
  auto& st = self->state;
  const events::TaskState* t = st.state.FindTask(task_id);
  if (t == nullptr) return;
  const Step* step = st.interpreter->StepOf(*t);
  const Activity* activity = step ? st.host->FindActivity(step->activity) : nullptr;
  if (activity == nullptr) {
    // Unregistered since the task started (a node restarted without it).
    st.inputs.push_back(PendingResult{
        task_id, t->attempts,
        ActivityResult::Fail(
            "activity '" + (step ? step->activity : "?") + "' is not registered on this node",
            false)});
    return;
  }
  ActivityContext ctx;
  ctx.process_id = st.state.id;
  ctx.task_id = t->id;
  ctx.step = t->step;
  ctx.attempt = t->attempts;
  ctx.idempotency_key = t->idempotency_key;
  ctx.input = t->input;
  ctx.timeout_ms = step->timeout_ms;
  process_actor me = self;
  st.executing[task_id] = self->system().spawn(TaskActor, me, st.host, activity, std::move(ctx));
}

void Persist(Self self, Plan plan) {
  auto& st = self->state;
  if (Status legal = events::CheckDrafts(st.state, plan.events); !legal.ok()) {
    // An interpreter bug, never a user error: refuse to write it, stop this
    // process's actor; the log stays as it was.
    spdlog::error("process {}: refusing an illegal batch: {}", st.state.id, legal.ToString());
    Stop(self, Status::Internal("process " + st.state.id + ": " + legal.message()));
    return;
  }
  st.appending = true;
  store::AppendRequest request{st.state.id, st.state.last_seq, std::move(plan.events)};
  plan.events.clear();
  st.inflight = std::move(plan);
  process_actor me = self;
  st.host->store().AppendAsync(std::move(request),
                               [slot = st.slot, me](Result<store::AppendResult> r) {
                                 {
                                   std::lock_guard<std::mutex> lock(slot->mu);
                                   slot->result.emplace(std::move(r));
                                 }
                                 caf::anon_send(me, persisted_atom::value);
                               });
}

void OnPersisted(Self self) {
  auto& st = self->state;
  std::optional<Result<store::AppendResult>> r;
  {
    std::lock_guard<std::mutex> lock(st.slot->mu);
    r.swap(st.slot->result);
  }
  st.appending = false;
  if (!r || !r->ok()) {
    Status why = r ? r->status() : Status::Internal("no append result");
    spdlog::error("process {}: append failed: {}", st.state.id, why.ToString());
    Stop(self, why);
    return;
  }
  for (auto& value : (*r)->values) {
    auto event = events::StoredEvent::Decode(std::move(value));
    Status applied = event.ok() ? events::Apply(st.state, *event) : event.status();
    if (!applied.ok()) {
      spdlog::error("process {}: cannot fold its own event: {}", st.state.id, applied.ToString());
      Stop(self, applied);
      return;
    }
    ++st.since_snapshot;
  }
  // Durable: now act on it.
  for (const auto& task : st.inflight.cancel) {
    auto it = st.executing.find(task);
    if (it != st.executing.end()) {
      self->send(it->second, cancel_atom::value);
      st.executing.erase(it);
    }
  }
  for (const auto& task : st.inflight.launch) Launch(self, task);
  st.inflight = Plan();
  if (st.since_snapshot >= st.host->options().snapshot_every) SaveSnapshot(st);
  int64_t earliest = INT64_MAX;
  for (const auto& [_, timer] : st.state.timers) earliest = std::min(earliest, timer.due_ns);
  if (earliest != INT64_MAX) st.host->TimerArmed(earliest);
  st.host->Publish(st.state);
  Pump(self);
}

std::set<std::string> Executing(const ProcessActorState& st) {
  std::set<std::string> executing;
  for (const auto& [task, _] : st.executing) executing.insert(task);
  return executing;
}

// Plans the oldest input; false when it asked for nothing to be written.
bool PlanInput(Self self, Input input) {
  auto& st = self->state;
  if (auto* r = std::get_if<PendingResult>(&input)) {
    Plan plan = st.interpreter->OnResult(st.state, r->task, r->attempt, r->result);
    if (plan.empty()) return false;
    Persist(self, std::move(plan));
    return true;
  }
  auto& control = std::get<PendingControl>(input);
  Result<Plan> plan = st.interpreter->OnControl(st.state, control.control, Executing(st));
  if (!plan.ok() || plan->empty()) {
    Deliver(control.reply, plan.ok() ? Status::OK() : plan.status(),
            plan.ok() ? events::ToJson(st.state).dump() : "");
    return false;
  }
  st.replies.push_back(std::move(control.reply));
  Persist(self, std::move(*plan));
  return true;
}

void Pump(Self self) {
  auto& st = self->state;
  if (st.appending) return;
  while (!st.inputs.empty()) {
    Input input = std::move(st.inputs.front());
    st.inputs.pop_front();
    if (PlanInput(self, std::move(input))) return;
  }
  Plan plan = st.interpreter->Next(st.state, Executing(st));
  if (!plan.empty()) return Persist(self, std::move(plan));
  // The controls have taken effect: the process rests or waits for its tasks.
  if (!st.replies.empty()) {
    std::string snapshot = events::ToJson(st.state).dump();
    for (auto& reply : st.replies) Deliver(reply, Status::OK(), snapshot);
    st.replies.clear();
  }
  if (st.executing.empty() && AtRest(st.state)) {
    SaveSnapshot(st);
    self->quit();
  }
}

process_actor::behavior_type ProcessActor(Self self, Host* host, events::ProcessState state,
                                          std::shared_ptr<const Workflow> workflow) {
  auto& st = self->state;
  st.host = host;
  st.state = std::move(state);
  st.interpreter = std::make_unique<Interpreter>(
      std::move(workflow),
      [host](const std::string& name) { return host->FindActivity(name) != nullptr; },
      Gates(host->options()));
  std::string id = st.state.id;
  self->attach_functor([host, id] { host->Passivated(id); });
  self->set_down_handler([](caf::down_msg&) {});
  // Shutdown: answer the waiting controls instead of leaving them hanging.
  self->set_exit_handler([=](caf::exit_msg& msg) {
    FailPending(self->state, Status::Aborted("the node is closing"));
    self->quit(msg.reason);
  });
  self->send(self, wake_atom::value);
  return {
      [=](wake_atom) { Pump(self); },
      [=](persisted_atom) { OnPersisted(self); },
      [=](result_atom, const std::string& task, uint32_t attempt, bool ok, const std::string& out,
          const std::string& err, bool retryable) {
        auto& s = self->state;
        auto it = s.executing.find(task);
        if (it != s.executing.end()) s.executing.erase(it);
        Json output = out.empty() ? Json() : Json::parse(out, nullptr, false);
        s.inputs.push_back(
            PendingResult{task, attempt, ActivityResult{ok, std::move(output), err, retryable}});
        Pump(self);
      },
      [=](control_atom, Control& control) -> caf::result<int32_t, std::string> {
        auto reply = self->make_response_promise<int32_t, std::string>();
        self->state.inputs.push_back(PendingControl{std::move(control), reply});
        Pump(self);
        return reply;
      },
  };
}

}  // namespace

bool AtRest(const events::ProcessState& s) {
  switch (s.status) {
    case ProcessStatus::kCompleted:
    case ProcessStatus::kFailed:
    case ProcessStatus::kCancelled:
      return true;
    case ProcessStatus::kPaused:
    case ProcessStatus::kWaiting:
      return true;
    default:
      return false;
  }
}

process_actor SpawnProcess(caf::actor_system& system, Host& host, events::ProcessState state,
                           std::shared_ptr<const Workflow> workflow) {
  return system.spawn(ProcessActor, &host, std::move(state), std::move(workflow));
}

}  // namespace keel::actors
