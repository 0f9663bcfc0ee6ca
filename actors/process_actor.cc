#include "actors/process_actor.h"

#include <spdlog/spdlog.h>

#include <caf/all.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <set>

#include "actors/blocking_pool.h"
#include "actors/interpreter.h"

namespace keel::actors {
namespace {

using events::ProcessStatus;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

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
        if (!self->state.done) self->send(parent, result_atom::value, task, attempt, ok, out, err, retryable);
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
  std::deque<PendingResult> results;            // outcomes not yet planned
  std::deque<std::string> due_timers;
  std::set<std::string> armed;                  // timers with a delayed message
  bool appending = false;
  Plan inflight;
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

void Launch(Self self, const std::string& task_id) {
  auto& st = self->state;
  const events::TaskState* t = st.state.FindTask(task_id);
  if (t == nullptr) return;
  const Step* step = st.interpreter->StepOf(*t);
  const Activity* activity = step ? st.host->FindActivity(step->activity) : nullptr;
  if (activity == nullptr) {
    // Unregistered since the task started (a node restarted without it).
    st.results.push_back({task_id, t->attempts,
                          ActivityResult::Fail("activity '" + (step ? step->activity : "?") +
                                                   "' is not registered on this node",
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
  st.executing[task_id] =
      self->system().spawn(TaskActor, me, st.host, activity, std::move(ctx));
}

void ArmTimers(Self self) {
  auto& st = self->state;
  int64_t now = NowNs();
  for (const auto& [id, timer] : st.state.timers) {
    if (st.armed.count(id)) continue;
    st.armed.insert(id);
    auto delay = std::chrono::nanoseconds(std::max<int64_t>(0, timer.due_ns - now));
    self->delayed_send(self, delay, timer_atom::value, id);
  }
}

void Persist(Self self, Plan plan) {
  auto& st = self->state;
  if (Status legal = events::CheckDrafts(st.state, plan.events); !legal.ok()) {
    // An interpreter bug, never a user error: refuse to write it, stop this
    // process's actor; the log stays as it was.
    spdlog::error("process {}: refusing an illegal batch: {}", st.state.id, legal.ToString());
    self->quit(caf::exit_reason::user_shutdown);
    return;
  }
  st.appending = true;
  store::AppendRequest request{st.state.id, st.state.last_seq, std::move(plan.events)};
  plan.events.clear();
  st.inflight = std::move(plan);
  process_actor me = self;
  st.host->store().AppendAsync(std::move(request), [slot = st.slot, me](Result<store::AppendResult> r) {
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
    spdlog::error("process {}: append failed: {}", st.state.id,
                  r ? r->status().ToString() : std::string("no result"));
    self->quit(caf::exit_reason::user_shutdown);
    return;
  }
  for (auto& value : (*r)->values) {
    auto event = events::StoredEvent::Decode(std::move(value));
    Status applied = event.ok() ? events::Apply(st.state, *event) : event.status();
    if (!applied.ok()) {
      spdlog::error("process {}: cannot fold its own event: {}", st.state.id, applied.ToString());
      self->quit(caf::exit_reason::user_shutdown);
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
  ArmTimers(self);
  if (st.since_snapshot >= st.host->options().snapshot_every) SaveSnapshot(st);
  st.host->Publish(st.state);
  Pump(self);
}

void Pump(Self self) {
  auto& st = self->state;
  if (st.appending) return;
  while (!st.results.empty()) {
    PendingResult r = std::move(st.results.front());
    st.results.pop_front();
    Plan plan = st.interpreter->OnResult(st.state, r.task, r.attempt, r.result);
    if (!plan.empty()) return Persist(self, std::move(plan));
  }
  while (!st.due_timers.empty()) {
    std::string timer = std::move(st.due_timers.front());
    st.due_timers.pop_front();
    Plan plan = st.interpreter->OnTimer(st.state, timer);
    if (!plan.empty()) return Persist(self, std::move(plan));
  }
  std::set<std::string> executing;
  for (const auto& [task, _] : st.executing) executing.insert(task);
  Plan plan = st.interpreter->Next(st.state, executing);
  if (!plan.empty()) return Persist(self, std::move(plan));
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
      std::move(workflow), [host](const std::string& name) { return host->FindActivity(name) != nullptr; });
  std::string id = st.state.id;
  self->attach_functor([host, id] { host->Passivated(id); });
  self->set_down_handler([](caf::down_msg&) {});
  ArmTimers(self);
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
        s.results.push_back({task, attempt, ActivityResult{ok, std::move(output), err, retryable}});
        Pump(self);
      },
      [=](timer_atom, const std::string& timer) {
        self->state.armed.erase(timer);
        self->state.due_timers.push_back(timer);
        Pump(self);
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
      return s.timers.empty();
    default:
      return false;
  }
}

process_actor SpawnProcess(caf::actor_system& system, Host& host, events::ProcessState state,
                           std::shared_ptr<const Workflow> workflow) {
  return system.spawn(ProcessActor, &host, std::move(state), std::move(workflow));
}

}  // namespace keel::actors
