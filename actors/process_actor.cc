#include "actors/process_actor.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <caf/all.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <variant>

#include "actors/blocking_pool.h"
#include "base/time.h"

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

using Reply = caf::typed_response_promise<int32_t, ControlReply>;

struct PendingControl {
  Control control;
  Reply reply;
};

// What the actor received and has not planned yet, in arrival order, so that
// controls, results and timers are decided in the order the mailbox gave them.
using Input = std::variant<PendingResult, PendingControl>;

// Runs one attempt: a blocking activity on the pool, an async one at once.
// Its outcome goes straight to the process actor.
void RunAttempt(Host* host, const Activity* activity, const ActivityContext& ctx,
                process_actor parent) {
  auto reply = [parent](const ActivityContext& c, ActivityResult r) {
    try {
      (void)r.output.dump();  // what the log will hold
    } catch (const Json::exception&) {
      // A string that is not UTF-8: recorded with U+FFFD in its place.
      r.output = Json::parse(r.output.dump(-1, ' ', false, Json::error_handler_t::replace));
    }
    caf::anon_send(parent, result_atom::value, c.task_id, c.attempt, std::move(r));
  };
  if (activity->async_fn) {
    activity->async_fn(ctx, [ctx, reply](ActivityResult r) { reply(ctx, std::move(r)); });
    return;
  }
  host->pool().Submit([ctx, reply, fn = activity->fn] {
    // Cancelled or timed out while it waited for a thread: it never runs
    // (its outcome would be dropped, its side effect would not).
    if (ctx.cancel.cancelled()) return;
    ActivityResult r;
    try {
      r = fn(ctx);
    } catch (const std::exception& e) {
      r = ActivityResult::Fail(std::string("activity threw: ") + e.what());
    }
    reply(ctx, std::move(r));
  });
}

// Actor states declare a constructor: CAF 0.17 builds a state from the actor
// pointer when it can, and C++20 lets an aggregate be built that way (the
// pointer would become its first member).
struct ProcessActorState {
  ProcessActorState() = default;
  static inline const char* name = "keel.process";
  Host* host = nullptr;
  events::ProcessState state;
  std::unique_ptr<Interpreter> interpreter;
  // A live attempt: counted in the node's tasks-running gauge until it ends.
  struct Execution {
    uint32_t attempt = 0;
    int64_t timeout_ms = 0;
    CancellationToken cancel;
  };
  std::map<std::string, Execution> executing;  // live attempts by task id
  std::deque<Input> inputs;                    // not planned yet, arrival order
  bool appending = false;
  Plan inflight;
  std::vector<Reply> replies;  // recorded controls, answered when idle
  std::shared_ptr<AppendSlot> slot = std::make_shared<AppendSlot>();
  std::optional<Creation> creation;  // a new process: its first append creates it
  uint64_t since_snapshot = 0;       // events after the latest snapshot
};

using Self = process_actor::stateful_pointer<ProcessActorState>;

void Pump(Self self);

// A snapshot costs in proportion to the state (its tasks and branches), a
// load in proportion to the events after the latest snapshot: one is taken
// once the events since the last reach `threshold` and four times the
// state's entities, so that snapshots cost O(1) per event.
bool SnapshotDue(const ProcessActorState& st, uint64_t threshold) {
  const uint64_t entities = st.state.tasks.size() + st.state.branches.size();
  return st.since_snapshot >= std::max<uint64_t>(threshold, 4 * entities);
}

void SaveSnapshot(ProcessActorState& st) {
  st.since_snapshot = 0;
  Status s = st.host->store().SaveSnapshot(st.state.id, st.state.last_seq,
                                           events::ToJson(st.state).dump(),
                                           st.host->options().snapshots_kept);
  if (!s.ok()) spdlog::warn("process {}: snapshot not saved: {}", st.state.id, s.ToString());
}

// Ends a live attempt; `cancel` tells the activity to stop (its outcome, if
// it comes, is dropped).
void EndExecution(ProcessActorState& st,
                  std::map<std::string, ProcessActorState::Execution>::iterator it, bool cancel) {
  if (cancel) it->second.cancel.Cancel();
  st.host->TaskEnded();
  st.executing.erase(it);
}

void Deliver(Reply& reply, const Status& status,
             std::shared_ptr<const events::ProcessState> state = nullptr) {
  ControlReply answer;
  if (status.ok())
    answer.state = std::move(state);
  else
    answer.message = status.message();
  reply.deliver(static_cast<int32_t>(status.code()), std::move(answer));
}

// Answers every control that is still waiting (the actor is about to stop).
void FailPending(ProcessActorState& st, const Status& why) {
  // An actor whose process was never created (its id was taken) answers
  // the controls that reached it with kAskAgain, not with its own failure.
  const bool never_created = st.creation.has_value();  // reset by its first durable append
  auto answer = [&](Reply& reply) {
    if (never_created) {
      reply.deliver(kAskAgain, ControlReply{});
    } else {
      Deliver(reply, why);
    }
  };
  if (st.creation) {
    st.creation->done(why);
    st.creation.reset();
  }
  for (auto& reply : st.replies) answer(reply);
  st.replies.clear();
  for (auto& input : st.inputs) {
    if (auto* control = std::get_if<PendingControl>(&input)) answer(control->reply);
  }
  st.inputs.clear();
  while (!st.executing.empty()) EndExecution(st, st.executing.begin(), true);
}

void Stop(Self self, const Status& why) {
  FailPending(self->state, why);
  self->quit(caf::exit_reason::user_shutdown);
}

void Launch(Self self, const std::string& task_id) {
  auto& st = self->state;
  const events::TaskState* t = st.state.FindTask(task_id);
  if (t == nullptr || t->status != events::TaskStatus::kRunning) return;
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
  st.host->TaskStarted();
  st.executing[task_id] = {ctx.attempt, ctx.timeout_ms, ctx.cancel};
  if (ctx.timeout_ms > 0) {
    self->delayed_send(self, std::chrono::milliseconds(ctx.timeout_ms), timeout_atom::value,
                       task_id, ctx.attempt);
  }
  RunAttempt(st.host, activity, ctx, self);
}

// One append's worth of plans, each folded into the actor's state as soon as
// it is planned, so that the next plan sees it: a task's completion and the
// next step's start go to the log together. The state then runs ahead of the
// log until the append is durable; nothing acts on it or shows it before
// (controls are answered, tasks launched and changes published after).
class Speculation {
 public:
  explicit Speculation(ProcessActorState& st)
      : st_(st), time_ns_(std::max(NowNs(), st.state.updated_ns)) {
    for (const auto& [task, _] : st.executing) executing_.insert(task);
  }

  // Folds `plan` in; an error means the interpreter planned an illegal event.
  Status Add(Plan plan) {
    for (auto& draft : plan.events) {
      events::Stamp(draft, st_.state.last_seq + 1, time_ns_);
      KEEL_RETURN_IF_ERROR(events::Apply(st_.state, events::StoredEvent::Unsealed(draft)));
      batch_.events.push_back(std::move(draft));
    }
    for (auto& task : plan.cancel) {
      executing_.erase(task);
      // Launched in this batch: it never starts.
      auto launched = std::find(batch_.launch.begin(), batch_.launch.end(), task);
      if (launched != batch_.launch.end())
        batch_.launch.erase(launched);
      else
        batch_.cancel.push_back(std::move(task));
    }
    for (auto& task : plan.launch) {
      executing_.insert(task);
      batch_.launch.push_back(std::move(task));
    }
    return Status::OK();
  }

  // Tasks with a live execution once this batch is durable.
  const std::set<std::string>& executing() const { return executing_; }
  bool full() const { return batch_.events.size() >= kMaxEvents; }
  bool empty() const { return batch_.empty(); }
  Plan Take() { return std::move(batch_); }

 private:
  // Bounds one append (a for_each over a long list starts its branches over
  // several); well under the store's per-batch limit.
  static constexpr size_t kMaxEvents = 1024;
  ProcessActorState& st_;
  const int64_t time_ns_;
  std::set<std::string> executing_;
  Plan batch_;
};

void Persist(Self self, Plan plan) {
  auto& st = self->state;
  st.appending = true;
  uint64_t expected = st.state.last_seq - plan.events.size();
  store::AppendRequest request{st.state.id, expected, std::move(plan.events)};
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
  if (r && r->ok() && (*r)->last_seq != st.state.last_seq) {
    r.emplace(Status::Internal("the store wrote up to seq " + std::to_string((*r)->last_seq) +
                               ", the actor folded up to " + std::to_string(st.state.last_seq)));
  }
  if (!r || !r->ok()) {
    // The state is ahead of the log: stop; the next actor loads the log.
    Status why = r ? r->status() : Status::Internal("no append result");
    if (st.creation && why.code() == Status::Code::kConflict) {
      // A Start of a taken id or idempotency key: Start reports it.
      spdlog::debug("process {}: not created: {}", st.state.id, why.ToString());
    } else {
      spdlog::error("process {}: append failed: {}", st.state.id, why.ToString());
    }
    Stop(self, why);
    return;
  }
  // Durable: the state is the log's (the fold ran ahead with the same seqs
  // and times; only the chain hash was not known yet). Now act on it.
  st.state.last_hash = (*r)->last_hash;
  st.since_snapshot += (*r)->values.size();
  for (const auto& task : st.inflight.cancel) {
    auto it = st.executing.find(task);
    if (it != st.executing.end()) EndExecution(st, it, true);
  }
  for (const auto& task : st.inflight.launch) Launch(self, task);
  st.inflight = Plan();
  const bool deferred = st.creation && st.creation->defer;
  if (st.creation) {
    st.creation->done(st.creation->snapshot ? events::ToJson(st.state) : Json());
    st.creation.reset();
  }
  if (SnapshotDue(st, st.host->options().snapshot_every)) SaveSnapshot(st);
  int64_t earliest = INT64_MAX;
  for (const auto& [_, timer] : st.state.timers) earliest = std::min(earliest, timer.due_ns);
  if (earliest != INT64_MAX) st.host->TimerArmed(earliest);
  st.host->Publish(st.state);
  if (deferred && st.inputs.empty()) {
    self->quit();  // created, not started: the next resume runs it
    return;
  }
  Pump(self);
}

// Plans one input into `batch`. A control is answered at once when it is
// refused or changes nothing; otherwise once its events are durable.
Status PlanInput(Self self, Input input, Speculation& batch) {
  auto& st = self->state;
  if (auto* r = std::get_if<PendingResult>(&input))
    return batch.Add(st.interpreter->OnResult(st.state, r->task, r->attempt, r->result, NowNs()));
  auto& control = std::get<PendingControl>(input);
  Result<Plan> plan = st.interpreter->OnControl(st.state, control.control, batch.executing(), NowNs());
  if (!plan.ok() || plan->empty()) {
    Deliver(control.reply, plan.ok() ? Status::OK() : plan.status(),
            plan.ok() ? std::make_shared<const events::ProcessState>(st.state) : nullptr);
    return Status::OK();
  }
  st.replies.push_back(std::move(control.reply));
  return batch.Add(std::move(*plan));
}

void Pump(Self self) {
  auto& st = self->state;
  if (st.appending) return;
  Speculation batch(st);
  Status planned;
  if (st.creation && st.state.last_seq == 0) {
    Plan create;
    create.events.push_back(std::move(st.creation->created));
    planned = batch.Add(std::move(create));
    if (planned.ok() && st.creation->defer) return Persist(self, batch.Take());
  }
  // Inputs in arrival order. A control is planned first in a batch only, so
  // that the state it is decided on (and answered with) is the log's.
  while (planned.ok() && !st.inputs.empty() && !batch.full()) {
    bool control = std::holds_alternative<PendingControl>(st.inputs.front());
    if (control && !batch.empty()) break;
    Input input = std::move(st.inputs.front());
    st.inputs.pop_front();
    planned = PlanInput(self, std::move(input), batch);
    if (control && !batch.empty()) break;
  }
  // Then what follows, until the process waits for something outside.
  while (planned.ok() && !batch.full()) {
    Plan next = st.interpreter->Next(st.state, batch.executing(), NowNs());
    if (next.empty()) break;
    planned = batch.Add(std::move(next));
  }
  if (!planned.ok()) {
    // An interpreter bug, never a user error: nothing was written; stop this
    // process's actor, the log stays as it was.
    spdlog::error("process {}: refusing an illegal batch: {}", st.state.id, planned.ToString());
    Stop(self, Status::Internal("process " + st.state.id + ": " + planned.message()));
    return;
  }
  if (!batch.empty()) return Persist(self, batch.Take());
  // The controls have taken effect: the process rests or waits for its tasks.
  if (!st.replies.empty()) {
    auto state = std::make_shared<const events::ProcessState>(st.state);
    for (auto& reply : st.replies) Deliver(reply, Status::OK(), state);
    st.replies.clear();
  }
  // Nothing runs and nothing can be planned: the process waits for its
  // timers (a retry's backoff) or for the outside, and needs no actor; the
  // timer service wakes it.
  bool idle = st.executing.empty() && (events::AtRest(st.state.status) || !st.state.timers.empty() ||
                                       st.state.WaitsInQueue());
  if (idle) {
    // The next load replays what came after the last snapshot; a short tail
    // folds faster than a snapshot parses.
    if (SnapshotDue(st, st.host->options().snapshot_every / 4)) SaveSnapshot(st);
    self->quit();
  }
}

process_actor::behavior_type ProcessActor(Self self, Host* host, events::ProcessState state,
                                          std::shared_ptr<const Workflow> workflow,
                                          uint64_t unsnapshotted,
                                          std::optional<Creation> creation) {
  auto& st = self->state;
  st.host = host;
  st.since_snapshot = unsnapshotted;
  st.creation = std::move(creation);
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
      [=](result_atom, const std::string& task, uint32_t attempt, ActivityResult& result) {
        auto& s = self->state;
        // Only the first outcome of a live attempt counts: a late one of an
        // attempt that timed out or was cancelled (a pause with `now` runs
        // it again on resume) is dropped.
        auto it = s.executing.find(task);
        if (it == s.executing.end() || it->second.attempt != attempt) return;
        EndExecution(s, it, false);
        s.inputs.push_back(PendingResult{task, attempt, std::move(result)});
        Pump(self);
      },
      [=](timeout_atom, const std::string& task, uint32_t attempt) {
        auto& s = self->state;
        auto it = s.executing.find(task);
        if (it == s.executing.end() || it->second.attempt != attempt) return;  // it ended first
        std::string error = "timed out after " + std::to_string(it->second.timeout_ms) + "ms";
        EndExecution(s, it, true);
        s.inputs.push_back(PendingResult{task, attempt, ActivityResult::Fail(error, true)});
        Pump(self);
      },
      [=](control_atom, Control& control) -> caf::result<int32_t, ControlReply> {
        auto reply = self->make_response_promise<int32_t, ControlReply>();
        self->state.inputs.push_back(PendingControl{std::move(control), reply});
        Pump(self);
        return reply;
      },
  };
}

}  // namespace

process_actor SpawnProcess(caf::actor_system& system, Host& host, events::ProcessState state,
                           std::shared_ptr<const Workflow> workflow, uint64_t unsnapshotted) {
  return system.spawn(ProcessActor, &host, std::move(state), std::move(workflow), unsnapshotted,
                      std::optional<Creation>());
}

process_actor SpawnNewProcess(caf::actor_system& system, Host& host, const std::string& id,
                              std::shared_ptr<const Workflow> workflow, Creation creation) {
  events::ProcessState state;
  state.id = id;
  return system.spawn(ProcessActor, &host, std::move(state), std::move(workflow), 0,
                      std::optional<Creation>(std::move(creation)));
}

}  // namespace keel::actors
