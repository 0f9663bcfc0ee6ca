#include "keel/node.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <atomic>
#include <caf/all.hpp>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <random>
#include <set>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "actors/blocking_pool.h"
#include "actors/host.h"
#include "actors/process_actor.h"
#include "events/state.h"
#include "runtime/duration.h"
#include "runtime/internal/builtin_activities.h"
#include "runtime/internal/child_manager.h"
#include "runtime/internal/http_server.h"
#include "runtime/validate.h"
#include "store/event_store.h"

namespace keel {
namespace {

using events::ProcessStatus;

// "p_" + a ULID: 48-bit ms time + 80 random bits, Crockford base32, so ids
// sort by creation time.
std::string NewProcessId() {
  static const char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  thread_local std::mt19937_64 rng(std::random_device{}() ^
                                   std::hash<std::thread::id>{}(std::this_thread::get_id()));
  uint64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  std::string id = "p_";
  for (int i = 9; i >= 0; --i) id += kAlphabet[(ms >> (5 * i)) & 31];
  uint64_t hi = rng(), lo = rng();
  for (int i = 0; i < 8; ++i) id += kAlphabet[(hi >> (5 * i)) & 31];
  for (int i = 0; i < 8; ++i) id += kAlphabet[(lo >> (5 * i)) & 31];
  return id;
}

// The Status an actor's reply code stands for.
Status FromCode(int32_t code, std::string message) {
  using Code = Status::Code;
  switch (static_cast<Code>(code)) {
    case Code::kOk:
      return Status::OK();
    case Code::kNotFound:
      return Status::NotFound(std::move(message));
    case Code::kInvalidArgument:
      return Status::InvalidArgument(std::move(message));
    case Code::kConflict:
      return Status::Conflict(std::move(message));
    case Code::kRefused:
      return Status::Refused(std::move(message));
    case Code::kCorruption:
      return Status::Corruption(std::move(message));
    case Code::kNotSupported:
      return Status::NotSupported(std::move(message));
    case Code::kIOError:
      return Status::IOError(std::move(message));
    case Code::kBusy:
      return Status::Busy(std::move(message));
    case Code::kTimedOut:
      return Status::TimedOut(std::move(message));
    case Code::kUnauthorized:
      return Status::Unauthorized(std::move(message));
    case Code::kAborted:
      return Status::Aborted(std::move(message));
    case Code::kInternal:
      break;
  }
  return Status::Internal(std::move(message));
}

ProcessOutcome OutcomeOf(const events::ProcessState& s) {
  return {s.id, events::Name(s.status), s.outputs, events::ProcessErrorJson(s)};
}

// How long a wait lets a due timer fire before it judges the process.
constexpr auto kDueTimerPatience = std::chrono::seconds(10);

// An armed timer of `s` is due: the timer service is about to move it.
bool HasDueTimer(const events::ProcessState& s) {
  const int64_t now = NowNs();
  for (const auto& [_, timer] : s.timers) {
    if (timer.due_ns <= now) return true;
  }
  return false;
}

bool AtRestStatus(ProcessStatus s) {
  return s == ProcessStatus::kCompleted || s == ProcessStatus::kFailed ||
         s == ProcessStatus::kCancelled || s == ProcessStatus::kWaiting ||
         s == ProcessStatus::kPaused;
}

void CollectActivities(const std::vector<Step>& steps, std::vector<const Step*>& out) {
  for (const auto& s : steps) {
    if (s.kind == StepKind::kActivity) out.push_back(&s);
    for (const auto& [_, branch] : s.branches) CollectActivities(branch, out);
    CollectActivities(s.steps, out);
  }
}

// spdlog's own default logger writes to stdout, where the host's output goes
// (the CLI's `--json`): unless the host set a logger of its own, keel's go
// to stderr.
void LogToStderr() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto* current = spdlog::default_logger_raw();
    if (current && !current->name().empty()) return;  // the host's
    spdlog::set_default_logger(std::make_shared<spdlog::logger>(
        "keel", std::make_shared<spdlog::sinks::stderr_color_sink_mt>()));
  });
}

// A new data dir is created readable by its owner only (0700, as PostgreSQL
// does): it holds every process's inputs and outputs. An existing dir keeps
// the mode its owner gave it.
void MakePrivateDir(const std::string& path) {
  std::error_code ec;
  if (path.empty() || std::filesystem::exists(path, ec)) return;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  ::mkdir(path.c_str(), 0700);  // on failure the store's open reports why
}

// CAF 0.17 leaves a reference to the actor system's logger in every thread
// that spawns an actor or makes a scoped_actor, and ~actor_system waits until
// each is dropped: a thread that keeps one (blocked in Wait, say) would hang a
// Close made by another (a CLI's signal handler). Drops it at scope exit.
struct ForgetCafLogger {
  ~ForgetCafLogger() { caf::logger::set_current_actor_system(nullptr); }
};

// What a start brings from outside, checked before anything is stored: the
// id and key (the alphabets of runtime/validate.h) and UTF-8 everywhere,
// since text that is not UTF-8 could be stored but never shown as JSON.
Status CheckStart(const Json& inputs, const StartOptions& opts) {
  if (!opts.id.empty()) KEEL_RETURN_IF_ERROR(CheckProcessId(opts.id));
  if (!opts.idempotency_key.empty()) KEEL_RETURN_IF_ERROR(CheckIdempotencyKey(opts.idempotency_key));
  KEEL_RETURN_IF_ERROR(CheckUtf8(opts.actor, "the starting actor"));
  return CheckJsonUtf8(inputs, "inputs");
}

// The workflow's hash; InvalidArgument for a Workflow built by hand (not
// validated) whose text is not UTF-8, so cannot be stored as JSON.
Result<std::string> HashOf(const Workflow& wf) {
  try {
    return wf.Hash();
  } catch (const Json::exception&) {
    return Status::InvalidArgument(wf.source + ": the workflow holds text that is not valid UTF-8");
  }
}

// A control's text is recorded in the log: it must be UTF-8.
Status CheckControl(const actors::Control& c) {
  KEEL_RETURN_IF_ERROR(CheckUtf8(c.target, "the step or topic"));
  KEEL_RETURN_IF_ERROR(CheckUtf8(c.reason, "the reason"));
  KEEL_RETURN_IF_ERROR(CheckUtf8(c.by, "the actor ('by')"));
  return CheckJsonUtf8(c.payload, "the payload");
}

}  // namespace

class Node::Impl : public actors::Host {
 public:
  explicit Impl(Options options) : options_(std::move(options)) {}

  // The HTTP API and DIR/node.json; started by Node::Open, stopped first by
  // Node::Close.
  std::unique_ptr<runtime::HttpServer> http_server;

  ~Impl() override { Close().IgnoreError(); }

  Status Open() {
    LogToStderr();
    MakePrivateDir(options_.data_dir);
    store::StoreOptions so;
    so.path = options_.data_dir;
    so.durability = options_.sync ? store::Durability::kSync : store::Durability::kAsync;
    auto opened = store::EventStore::Open(so);
    if (!opened.ok()) return opened.status();
    store_ = std::move(*opened);
    unsigned hw = std::max(2u, std::thread::hardware_concurrency());
    unsigned workers = options_.scheduler_threads ? options_.scheduler_threads : hw;
    unsigned pool = options_.activity_threads ? options_.activity_threads : std::max(8u, 4 * hw);
    pool_ = std::make_unique<actors::BlockingPool>(pool);
    auto children = runtime::ChildManager::Open(options_.data_dir + "/children");
    if (!children.ok()) return children.status();
    children_ = std::move(*children);
    config_.set("scheduler.max-threads", static_cast<size_t>(workers));
    config_.set("scheduler.policy", caf::atom("sharing"));
    config_.set("logger.file-verbosity", caf::atom("quiet"));
    config_.set("logger.console-verbosity", caf::atom("quiet"));
    system_ = std::make_unique<caf::actor_system>(config_);
    RegisterBuiltins();
    return Status::OK();
  }

  void RegisterBuiltins() {
    // echo and fail compute their result at once: called by the process
    // actor itself, without the activity pool's two thread hand-offs.
    auto at_once = [](ActivityResult (*fn)(const ActivityContext&)) {
      return actors::Activity{
          nullptr, [fn](const ActivityContext& c, std::function<void(ActivityResult)> done) {
            done(fn(c));
          }};
    };
    activities_["echo"] = at_once(runtime::Echo);
    activities_["fail"] = at_once(runtime::FailActivity);
    activities_["http"] = {runtime::Http, nullptr};
    ExecPolicy policy = options_.exec_policy;
    std::vector<std::string> allow = options_.exec_allow;
    // exec children are run by the child manager's loop, not on the pool.
    activities_["exec"] = {
        nullptr, [children = children_.get(), policy, allow](
                     const ActivityContext& c, std::function<void(ActivityResult)> done) {
          auto command = runtime::ParseExec(c.input, policy, allow);
          if (!command.ok()) return done(ActivityResult::Fail(command.status().message(), false));
          children->Run(std::move(*command), c.cancel, c.idempotency_key, std::move(done));
        }};
  }

  Status Register(const std::string& name, actors::Activity activity) {
    if (name.empty()) return Status::InvalidArgument("activity name is empty");
    std::unique_lock lock(activities_mu_);
    activities_[name] = std::move(activity);
    return Status::OK();
  }

  // ---- Host ----
  store::EventStore& store() override { return *store_; }
  const Options& options() const override { return options_; }
  const actors::Activity* FindActivity(const std::string& name) const override {
    std::shared_lock lock(activities_mu_);
    auto it = activities_.find(name);
    return it == activities_.end() ? nullptr : &it->second;
  }
  actors::BlockingPool& pool() override { return *pool_; }
  void TaskStarted() override { tasks_running_.fetch_add(1, std::memory_order_relaxed); }
  void TaskEnded() override { tasks_running_.fetch_sub(1, std::memory_order_relaxed); }

  int64_t tasks_running() const { return tasks_running_.load(std::memory_order_relaxed); }
  int64_t processes_live() {
    std::lock_guard lock(live_mu_);
    return static_cast<int64_t>(live_.size());
  }

  Result<std::shared_ptr<const Workflow>> Definition(const std::string& hash) override {
    {
      std::lock_guard lock(defs_mu_);
      auto it = defs_.find(hash);
      if (it != defs_.end()) return it->second;
    }
    auto text = store_->GetDefinition(hash);
    if (!text.ok()) return text.status();
    if (!*text)
      return Status::Corruption("workflow definition " + hash + " is missing from the store");
    Json json = Json::parse(**text, nullptr, false);
    if (json.is_discarded())
      return Status::Corruption("workflow definition " + hash + " is not JSON");
    auto wf = Workflow::FromJson(json);
    if (!wf.ok()) return wf.status();
    auto shared = std::make_shared<const Workflow>(std::move(*wf));
    std::lock_guard lock(defs_mu_);
    defs_[hash] = shared;
    return std::shared_ptr<const Workflow>(shared);
  }

  void Publish(const events::ProcessState& state) override {
    std::vector<std::function<void(const Json&)>> fns;
    {
      std::lock_guard lock(watch_mu_);
      // Only a rest wakes a waiter, and only the waiters of this process.
      auto w = watched_.find(state.id);
      if (w != watched_.end() && AtRestStatus(state.status)) {
        // The waiters take the state from here, in the forms they wait for:
        // no read of the store.
        Watch& watch = w->second;
        if (watch.snapshot_waiters) watch.snapshot = std::make_shared<Json>(events::ToJson(state));
        if (watch.outcome_waiters)
          watch.outcome = std::make_shared<ProcessOutcome>(OutcomeOf(state));
        watch.rests++;
        w->second.cv.notify_all();
      }
      auto s = subscribers_.find(state.id);
      if (s != subscribers_.end()) {
        for (const auto& [_, fn] : s->second) fns.push_back(fn);
      }
    }
    if (!fns.empty()) {
      Json snapshot = events::ToJson(state);
      for (const auto& fn : fns) fn(snapshot);
    }
  }

  void Passivated(const std::string& id) override {
    {
      std::lock_guard lock(live_mu_);
      live_.erase(id);
      live_cv_.notify_all();
    }
    std::lock_guard lock(watch_mu_);
    if (auto w = watched_.find(id); w != watched_.end()) {
      w->second.stops++;
      w->second.cv.notify_all();
    }
  }

  void TimerArmed(int64_t due_ns) override {
    std::lock_guard lock(timer_mu_);
    if (due_ns >= timer_wake_ns_) return;
    timer_wake_ns_ = due_ns;
    timer_cv_.notify_all();
  }

  // ---- operations ----

  // The state of `id`: its latest snapshot, if any, and the events after it,
  // whose count goes to `tail` when given.
  Result<events::ProcessState> Load(const std::string& id, uint64_t* tail = nullptr) {
    events::ProcessState state;
    uint64_t from = 1;
    auto snap = store_->LatestSnapshot(id);
    if (!snap.ok()) return snap.status();
    if (*snap) {
      auto parsed = Json::parse((*snap)->state_json, nullptr, false);
      if (parsed.is_discarded()) return Status::Corruption("snapshot of " + id + " is not JSON");
      auto restored = events::StateFromJson(parsed);
      if (!restored.ok()) return restored.status();
      state = std::move(*restored);
      from = (*snap)->seq + 1;
    }
    auto events = store_->ReadStream(id, from);
    if (!events.ok()) return events.status();
    if (from == 1 && events->empty()) return Status::NotFound("no process with id '" + id + "'");
    for (const auto& event : *events) KEEL_RETURN_IF_ERROR(events::Apply(state, event));
    if (tail) *tail = events->size();
    return state;
  }

  // Spawns the actor of `id` with `state` unless one is live.
  Status Activate(events::ProcessState state, uint64_t unsnapshotted) {
    std::lock_guard activating(activate_mu_);
    return Spawn(std::move(state), unsnapshotted).status();
  }

  // The live actor of `id`, spawned from the store's state when there is
  // none. NotFound for an unknown id, Aborted once the node is closing.
  Result<actors::process_actor> EnsureLive(const std::string& id) {
    {
      std::lock_guard lock(live_mu_);
      if (closing_) return Status::Aborted("the node is closing");
      if (auto it = live_.find(id); it != live_.end()) return it->second;
    }
    // Loads and spawns under activate_mu_: no other actor of `id` can write
    // between the load and the spawn (a stopping one is still in live_).
    std::lock_guard activating(activate_mu_);
    {
      std::lock_guard lock(live_mu_);
      if (auto it = live_.find(id); it != live_.end()) return it->second;
    }
    uint64_t unsnapshotted = 0;
    auto state = Load(id, &unsnapshotted);
    if (!state.ok()) return state.status();
    return Spawn(std::move(*state), unsnapshotted);
  }

  // Caller holds activate_mu_.
  Result<actors::process_actor> Spawn(events::ProcessState state, uint64_t unsnapshotted) {
    auto wf = Definition(state.definition_hash);
    if (!wf.ok()) return wf.status();
    std::lock_guard lock(live_mu_);
    if (closing_) return Status::Aborted("the node is closing");
    if (auto it = live_.find(state.id); it != live_.end()) return it->second;
    std::string id = state.id;
    ForgetCafLogger forget;
    auto actor = actors::SpawnProcess(*system_, *this, std::move(state), *wf, unsnapshotted);
    live_[id] = actor;
    return actor;
  }

  // Hands `control` to the actor of process `id` (activating it) and returns
  // its reply: the snapshot once the control's events are durable. An actor
  // that stopped before it read the control (it passivated) is replaced and
  // asked again.
  Result<Json> Control(const std::string& id, const actors::Control& control) {
    KEEL_RETURN_IF_ERROR(CheckControl(control));
    for (;;) {
      auto actor = EnsureLive(id);
      if (!actor.ok()) return actor.status();
      std::optional<Result<Json>> reply;
      ForgetCafLogger forget;  // after self is gone
      caf::scoped_actor self{*system_};
      self->request(*actor, caf::infinite, actors::control_atom::value, control)
          .receive(
              [&](int32_t code, std::string& text) {
                if (code == actors::kAskAgain) return;  // not the process: go again
                Status status = FromCode(code, text);
                if (!status.ok()) {
                  reply.emplace(std::move(status));
                  return;
                }
                Json snapshot = Json::parse(text, nullptr, false);
                if (snapshot.is_discarded())
                  reply.emplace(Status::Internal("bad snapshot from the process actor"));
                else
                  reply.emplace(std::move(snapshot));
              },
              [&](caf::error&) {});
      if (reply) return std::move(*reply);
      // The actor was gone, or was a new process's that was never created:
      // wait until it has left live_, then go again.
      std::unique_lock lock(live_mu_);
      live_cv_.wait(lock, [&] {
        auto it = live_.find(id);
        return closing_ || it == live_.end() || it->second != *actor;
      });
      if (closing_) return Status::Aborted("the node is closing");
    }
  }

  // The node's timer service: delivers every armed timer of the store's
  // due-timer index when it falls due, to a live actor or one it activates,
  // so waiting processes need no actor meanwhile. Timers that fell due while
  // the node was down fire at once; each fires once, since its process
  // records TimerFired only while the timer is armed.
  void TimerLoop() {
    std::unique_lock lock(timer_mu_);
    while (!timer_stop_) {
      timer_wake_ns_ = INT64_MAX;
      lock.unlock();
      int64_t next = FireDueTimers();
      lock.lock();
      timer_wake_ns_ = std::min(timer_wake_ns_, next);
      if (timer_stop_ || timer_wake_ns_ <= NowNs()) continue;
      auto wait = std::chrono::nanoseconds(timer_wake_ns_ == INT64_MAX ? INT64_MAX / 2
                                                                       : timer_wake_ns_ - NowNs());
      auto deadline = std::chrono::steady_clock::now() +
                      std::min<std::chrono::nanoseconds>(wait, std::chrono::hours(24));
      int64_t planned = timer_wake_ns_;
      timer_cv_.wait_until(lock, deadline, [&] { return timer_stop_ || timer_wake_ns_ < planned; });
    }
  }

  // Fires the due timers; returns when the next armed one is due (INT64_MAX
  // when none). A timer its process would not fire is not tried again in
  // this round.
  int64_t FireDueTimers() {
    auto due = store_->DueTimers(NowNs(), 256);
    if (!due.ok()) {
      spdlog::error("timer service: {}", due.status().ToString());
      return NowNs() + 1'000'000'000;
    }
    std::set<std::pair<std::string, std::string>> tried;
    for (const auto& timer : *due) {
      tried.emplace(timer.stream, timer.timer);
      actors::Control fire;
      fire.kind = actors::Control::Kind::kTimer;
      fire.target = timer.timer;
      fire.by = "system";
      auto fired = Control(timer.stream, fire);
      if (!fired.ok() && fired.status().code() != Status::Code::kAborted) {
        spdlog::error("process {}: timer {} not fired: {}", timer.stream, timer.timer,
                      fired.status().ToString());
      }
    }
    auto armed = store_->DueTimers(INT64_MAX, tried.size() + 1);
    if (!armed.ok()) return NowNs() + 1'000'000'000;
    for (const auto& timer : *armed) {
      if (!tried.count({timer.stream, timer.timer})) return timer.due_ns;
    }
    return INT64_MAX;
  }

  void StartTimers() {
    std::lock_guard lock(timer_mu_);
    if (timer_thread_.joinable() || timer_stop_) return;
    timer_thread_ = std::thread([this] { TimerLoop(); });
  }

  Status ResumeAll() {
    StartTimers();
    auto ids = store_->UnfinishedProcesses();
    if (!ids.ok()) return ids.status();
    for (const auto& id : *ids) {
      uint64_t unsnapshotted = 0;
      auto state = Load(id, &unsnapshotted);
      if (!state.ok()) {
        spdlog::error("process {} cannot be resumed: {}", id, state.status().ToString());
        continue;
      }
      if (actors::AtRest(*state)) continue;
      Status s = Activate(std::move(*state), unsnapshotted);
      if (!s.ok()) spdlog::error("process {} cannot be resumed: {}", id, s.ToString());
    }
    return Status::OK();
  }

  // Start and Submit: `id` receives the process's id; its snapshot is built
  // and returned only when `snapshot` is set (else null).
  Result<Json> Start(const Workflow& wf, const Json& inputs, const StartOptions& opts,
                     bool* started, std::string* id_out, bool snapshot) {
    if (started) *started = false;
    // The process that owns the key, when it runs the same definition (like
    // DBOS: a key names one workflow's process, so another workflow is a
    // conflict, not a silent answer).
    auto existing_process = [&](const std::string& existing) -> Result<Json> {
      auto state = Load(existing);
      if (!state.ok()) return state.status();
      if (state->definition_hash != wf.Hash()) {
        return Status::Conflict("idempotency key '" + opts.idempotency_key +
                                "' is already used by process '" + existing + "' of workflow '" +
                                state->workflow + "' (another definition)");
      }
      *id_out = existing;
      return snapshot ? events::ToJson(*state) : Json();
    };
    KEEL_RETURN_IF_ERROR(CheckStart(inputs, opts));
    auto resolved = ResolveInputs(wf, inputs);
    if (!resolved.ok()) return resolved.status();
    std::vector<const Step*> steps;
    CollectActivities(wf.steps, steps);
    for (const Step* s : steps) {
      if (!FindActivity(s->activity)) {
        return Status::InvalidArgument(wf.source + ":" + std::to_string(s->line) + ": step '" +
                                       s->id + "': activity '" + s->activity +
                                       "' is not registered");
      }
    }
    // No lock across the append: the store refuses a second ProcessCreated on
    // a stream and a second owner of an idempotency key (Conflict), so racing
    // starts resolve there.
    if (!opts.idempotency_key.empty()) {
      auto existing = store_->FindByIdempotencyKey(opts.idempotency_key);
      if (!existing.ok()) return existing.status();
      if (*existing) return existing_process(**existing);
    }
    std::string id = opts.id.empty() ? NewProcessId() : opts.id;
    auto hashed = HashOf(wf);
    if (!hashed.ok()) return hashed.status();
    std::string hash = std::move(*hashed);
    bool stored;
    {
      std::lock_guard lock(defs_mu_);
      stored = defs_.count(hash) > 0;  // cached = already in the store
    }
    if (!stored) {
      KEEL_RETURN_IF_ERROR(store_->PutDefinition(hash, wf.ToJson().dump()));
      auto definition = std::make_shared<const Workflow>(wf);
      std::lock_guard lock(defs_mu_);
      defs_.emplace(hash, std::move(definition));
    }
    // The new process's actor appends ProcessCreated with its first steps.
    auto done = std::make_shared<std::promise<Result<Json>>>();
    auto result = done->get_future();
    actors::Creation creation{
        events::ProcessCreated({id, id, opts.actor}, wf.name, hash, resolved->dump(),
                               wf.vars.dump(), opts.idempotency_key),
        [done](Result<Json> r) { done->set_value(std::move(r)); }, snapshot, opts.defer};
    {
      std::lock_guard activating(activate_mu_);
      auto definition = Definition(hash);
      if (!definition.ok()) return definition.status();
      std::lock_guard lock(live_mu_);
      if (closing_) return Status::Aborted("the node is closing");
      if (live_.count(id)) return Status::Refused("a process with id '" + id + "' already exists");
      ForgetCafLogger forget;
      live_[id] = actors::SpawnNewProcess(*system_, *this, id, *definition, std::move(creation));
    }
    Result<Json> created = result.get();
    if (!created.ok()) {
      if (created.status().code() != Status::Code::kConflict) return created.status();
      if (!opts.idempotency_key.empty()) {
        auto existing = store_->FindByIdempotencyKey(opts.idempotency_key);
        if (existing.ok() && *existing) return existing_process(**existing);
      }
      return Status::Refused("a process with id '" + id + "' already exists");
    }
    if (started) *started = true;
    *id_out = std::move(id);
    return created;
  }

  Result<Json> Get(const std::string& id) {
    auto state = Load(id);
    if (!state.ok()) return state.status();
    return events::ToJson(*state);
  }

  Result<ProcessList> List(const ListFilter& filter) {
    std::optional<ProcessStatus> status;
    if (!filter.status.empty()) {
      status = events::ParseProcessStatus(filter.status);
      if (!status) return Status::InvalidArgument("unknown status '" + filter.status + "'");
    }
    store::ListNarrowing narrow;
    narrow.idempotency_key = filter.idempotency_key;
    if (filter.created_since_ns != 0) narrow.since_ns = filter.created_since_ns;
    if (filter.created_until_ns != 0) narrow.until_ns = filter.created_until_ns;
    auto ids =
        store_->ListProcesses(status, filter.workflow, {filter.limit, filter.offset}, narrow);
    if (!ids.ok()) return ids.status();
    ProcessList list;
    list.total = ids->total;
    list.limit = filter.limit;
    list.offset = filter.offset;
    list.has_more = filter.offset + ids->ids.size() < ids->total;
    for (const auto& id : ids->ids) {
      auto state = Load(id);
      if (state.ok()) list.processes.push_back(events::SummaryJson(*state));
    }
    return list;
  }

  // Wait (T = Json, the snapshot) and Await (T = ProcessOutcome); with
  // `until_done` (T = Json only), WaitUntilDone: rests on timers alone are
  // passed by.
  template <typename T>
  Result<T> WaitForRest(const std::string& id, std::chrono::milliseconds timeout,
                        bool until_done = false) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    // A process resting on a timer that is already due is about to move:
    // the timer service fires it. Waited for this long at most, in case it
    // cannot fire.
    const auto due_patience = std::chrono::steady_clock::now() + kDueTimerPatience;
    {
      std::lock_guard lock(watch_mu_);
      Waiters<T>(watched_[id])++;
    }
    struct Unwatch {
      Impl* self;
      std::string id;
      ~Unwatch() {
        std::lock_guard lock(self->watch_mu_);
        Watch& watch = self->watched_[id];
        --Waiters<T>(watch);
        if (watch.snapshot_waiters + watch.outcome_waiters == 0) self->watched_.erase(id);
      }
    } unwatch{this, id};
    // A live actor publishes its rests and says when it stops; a process
    // with no actor is read from the store. Counts are taken before the
    // check of liveness, so that a rest or stop in between is not missed.
    uint64_t rests, stops;
    {
      std::lock_guard lock(watch_mu_);
      rests = watched_[id].rests;
      stops = watched_[id].stops;
    }
    bool read = !IsLive(id);
    bool due = false;  // it rests on a timer that is already due
    auto waits_for_timer = [&](bool has_due) {
      return has_due && TimersRunning() && std::chrono::steady_clock::now() < due_patience;
    };
    for (;;) {
      if (read) {
        auto state = Load(id);
        if (!state.ok()) return state.status();
        due = false;
        if (AtRestStatus(state->status)) {
          due = waits_for_timer(HasDueTimer(*state));
          if (!due && (!until_done || Settled(events::ToJson(*state)))) return Answer<T>(*state);
        }
      }
      std::shared_ptr<T> rest;
      bool last_waiter = false;
      {
        std::unique_lock lock(watch_mu_);
        Watch& watch = watched_[id];
        auto until = due ? std::min(deadline, due_patience) : deadline;
        if (!watch.cv.wait_until(lock, until, [&] {
              return watch.rests != rests || watch.stops != stops || waits_closed_;
            })) {
          if (until != deadline) {  // the due timer did not fire: judge the process as it is
            read = true;
            continue;
          }
          lock.unlock();
          auto last = Load(id);
          if (!last.ok()) return last.status();
          if (AtRestStatus(last->status)) return Answer<T>(*last);
          return Status::TimedOut("process '" + id + "' did not rest within the timeout");
        }
        if (watch.rests == rests && waits_closed_) return Status::Aborted("the node is closing");
        if (watch.rests == rests) {
          // Stopped without a rest seen here (it rested before this wait
          // began, or it failed): the store has its state.
          stops = watch.stops;
          read = true;
          continue;
        }
        rests = watch.rests;
        rest = Rest<T>(watch);
        last_waiter = Waiters<T>(watch) == 1;
      }
      // A rest that a due timer ends at once, or (until_done) a rest on
      // timers alone: wait for the next.
      due = waits_for_timer(RestHasDueTimer(id, *rest));
      bool settled = true;
      if constexpr (std::is_same_v<T, Json>) settled = !until_done || Settled(*rest);
      if (due || !settled) {
        read = false;
        continue;
      }
      if (last_waiter) return std::move(*rest);  // the last waiter takes it
      return *rest;
    }
  }

  // Whether a published rest has an armed timer that is already due: read
  // from the snapshot's timers, or for an outcome (no timers) from the store
  // when the process is unfinished.
  bool RestHasDueTimer(const std::string&, const Json& snapshot) {
    const int64_t now = NowNs();
    auto timers = snapshot.find("timers");
    if (timers == snapshot.end() || !timers->is_array()) return false;
    for (const auto& t : *timers) {
      if (t.value("due_ns", INT64_MAX) <= now) return true;
    }
    return false;
  }
  bool RestHasDueTimer(const std::string& id, const ProcessOutcome& outcome) {
    if (outcome.status != "waiting" && outcome.status != "paused") return false;
    auto state = Load(id);
    return state.ok() && HasDueTimer(*state);
  }

  bool TimersRunning() {
    std::lock_guard lock(timer_mu_);
    return timer_thread_.joinable() && !timer_stop_;
  }

  bool IsLive(const std::string& id) {
    std::lock_guard lock(live_mu_);
    return live_.count(id) > 0;
  }

  Result<std::function<void()>> Subscribe(const std::string& id,
                                          std::function<void(const Json&)> fn) {
    std::lock_guard lock(watch_mu_);
    int token = ++next_token_;
    subscribers_[id].emplace(token, std::move(fn));
    return std::function<void()>([this, id, token] {
      std::lock_guard l(watch_mu_);
      auto it = subscribers_.find(id);
      if (it == subscribers_.end()) return;
      it->second.erase(token);
      if (it->second.empty()) subscribers_.erase(it);
    });
  }

  Status Close() {
    // A second Close (a CLI's signal handler, its main thread) returns once
    // the first is done.
    std::lock_guard closing(close_mu_);
    {
      std::lock_guard lock(timer_mu_);
      timer_stop_ = true;
      timer_cv_.notify_all();
    }
    {
      std::lock_guard lock(live_mu_);
      if (closed_) return Status::OK();
      closed_ = closing_ = true;
      for (auto& [_, actor] : live_) caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
      live_cv_.notify_all();
    }
    {
      // A process stopped by the close may never rest: no wait outlasts it.
      std::lock_guard lock(watch_mu_);
      waits_closed_ = true;
      for (auto& [_, watch] : watched_) watch.cv.notify_all();
    }
    if (timer_thread_.joinable()) timer_thread_.join();
    if (system_) {
      system_->await_all_actors_done();
      children_.reset();  // stops what still runs; its last outcomes go to stopped actors
      system_.reset();
    }
    pool_.reset();
    Status s = store_ ? store_->Close() : Status::OK();
    return s;
  }

 private:
  // The waiters of one process. Nodes of an unordered_map do not move, so a
  // waiter may hold a reference while others come and go.
  struct Watch {
    int snapshot_waiters = 0;                 // in Wait
    int outcome_waiters = 0;                  // in Await
    uint64_t rests = 0;                       // times the process came to rest since watched
    uint64_t stops = 0;                       // times its actor stopped since watched
    std::shared_ptr<Json> snapshot;           // at the latest rest, if a Wait waits
    std::shared_ptr<ProcessOutcome> outcome;  // at the latest rest, if an Await waits
    std::condition_variable cv;
  };
  template <typename T>
  static int& Waiters(Watch& w) {
    if constexpr (std::is_same_v<T, Json>)
      return w.snapshot_waiters;
    else
      return w.outcome_waiters;
  }
  template <typename T>
  static std::shared_ptr<T>& Rest(Watch& w) {
    if constexpr (std::is_same_v<T, Json>)
      return w.snapshot;
    else
      return w.outcome;
  }
  template <typename T>
  static T Answer(const events::ProcessState& state) {
    if constexpr (std::is_same_v<T, Json>)
      return events::ToJson(state);
    else
      return OutcomeOf(state);
  }

  Options options_;
  std::unique_ptr<store::EventStore> store_;
  caf::actor_system_config config_;
  std::unique_ptr<caf::actor_system> system_;
  std::unique_ptr<actors::BlockingPool> pool_;
  // Runs the exec children.
  std::unique_ptr<runtime::ChildManager> children_;
  std::atomic<int64_t> tasks_running_{0};  // live attempts (TaskStarted/TaskEnded)

  mutable std::shared_mutex activities_mu_;
  std::unordered_map<std::string, actors::Activity> activities_;  // guarded by activities_mu_

  std::mutex defs_mu_;
  std::unordered_map<std::string, std::shared_ptr<const Workflow>> defs_;  // guarded by defs_mu_

  std::mutex close_mu_;     // held through Close
  std::mutex activate_mu_;  // serializes loading a process's state with spawning its actor

  std::mutex live_mu_;
  std::condition_variable live_cv_;
  std::unordered_map<std::string, actors::process_actor> live_;  // guarded by live_mu_
  bool closing_ = false, closed_ = false;                        // guarded by live_mu_

  std::mutex timer_mu_;
  std::condition_variable timer_cv_;
  int64_t timer_wake_ns_ = INT64_MAX;  // when the timer service looks next; guarded by timer_mu_
  bool timer_stop_ = false;            // guarded by timer_mu_
  std::thread timer_thread_;

  std::mutex watch_mu_;
  std::unordered_map<std::string, Watch> watched_;  // guarded by watch_mu_
  bool waits_closed_ = false;                       // guarded by watch_mu_: Close ends every wait
  std::unordered_map<std::string, std::map<int, std::function<void(const Json&)>>> subscribers_;
  int next_token_ = 0;
};

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Node::~Node() { Close().IgnoreError(); }

Result<std::unique_ptr<Node>> Node::Open(const Options& options) {
  auto impl = std::make_unique<Impl>(options);
  KEEL_RETURN_IF_ERROR(impl->Open());
  std::unique_ptr<Node> node(new Node(std::move(impl)));
  if (options.resume) KEEL_RETURN_IF_ERROR(node->Resume());
  if (!options.http_listen.empty()) {
    auto server = runtime::HttpServer::Start(*node, node->impl_->store(), options);
    if (!server.ok()) return server.status();
    node->impl_->http_server = std::move(*server);
  }
  return node;
}

void Node::StopServing() {
  if (impl_ && impl_->http_server) impl_->http_server->Stop();
}

Status Node::RegisterActivity(const std::string& name, ActivityFn fn) {
  return impl_->Register(name, {std::move(fn), nullptr});
}
Status Node::RegisterAsyncActivity(const std::string& name, AsyncActivityFn fn) {
  return impl_->Register(name, {nullptr, std::move(fn)});
}
Status Node::Resume() { return impl_->ResumeAll(); }
Result<Json> Node::Start(const Workflow& workflow, const Json& inputs, const StartOptions& options,
                         bool* started) {
  std::string id;
  return impl_->Start(workflow, inputs, options, started, &id, /*snapshot=*/true);
}
Result<std::string> Node::Submit(const Workflow& workflow, const Json& inputs,
                                 const StartOptions& options, bool* started) {
  std::string id;
  auto created = impl_->Start(workflow, inputs, options, started, &id, /*snapshot=*/false);
  if (!created.ok()) return created.status();
  return id;
}
Result<Json> Node::Get(const std::string& id) { return impl_->Get(id); }
Result<ProcessList> Node::List(const ListFilter& filter) { return impl_->List(filter); }
Result<Json> Node::Wait(const std::string& id, std::chrono::milliseconds timeout) {
  return impl_->WaitForRest<Json>(id, timeout);
}
Result<Json> Node::WaitUntilDone(const std::string& id, std::chrono::milliseconds timeout) {
  return impl_->WaitForRest<Json>(id, timeout, /*until_done=*/true);
}
Result<ProcessOutcome> Node::Await(const std::string& id, std::chrono::milliseconds timeout) {
  return impl_->WaitForRest<ProcessOutcome>(id, timeout);
}
Result<std::function<void()>> Node::Subscribe(const std::string& id,
                                              std::function<void(const Json&)> fn) {
  return impl_->Subscribe(id, std::move(fn));
}
namespace {

actors::Control MakeControl(actors::Control::Kind kind, const ControlOptions& options,
                            std::string target = {}) {
  actors::Control c;
  c.kind = kind;
  c.target = std::move(target);
  c.reason = options.reason;
  c.by = options.by.empty() ? "user" : options.by;
  c.now = options.now;
  return c;
}

}  // namespace

Result<Json> Node::Pause(const std::string& id, const ControlOptions& options) {
  return impl_->Control(id, MakeControl(actors::Control::Kind::kPause, options));
}
Result<Json> Node::Resume(const std::string& id, const ControlOptions& options) {
  return impl_->Control(id, MakeControl(actors::Control::Kind::kResume, options));
}
Result<Json> Node::Cancel(const std::string& id, const ControlOptions& options) {
  return impl_->Control(id, MakeControl(actors::Control::Kind::kCancel, options));
}
Result<Json> Node::Retry(const std::string& id, const ControlOptions& options) {
  return impl_->Control(id, MakeControl(actors::Control::Kind::kRetry, options));
}
Result<Json> Node::Approve(const std::string& id, const std::string& step,
                           const ControlOptions& options) {
  return impl_->Control(id, MakeControl(actors::Control::Kind::kApprove, options, step));
}
Result<Json> Node::Reject(const std::string& id, const std::string& step,
                          const ControlOptions& options) {
  return impl_->Control(id, MakeControl(actors::Control::Kind::kReject, options, step));
}
Result<Json> Node::Signal(const std::string& id, const std::string& topic, const Json& payload,
                          const ControlOptions& options) {
  actors::Control c = MakeControl(actors::Control::Kind::kSignal, options, topic);
  c.payload = payload;
  return impl_->Control(id, c);
}

NodeMetrics Node::Metrics() const {
  NodeMetrics metrics;
  if (impl_) {
    metrics.tasks_running = impl_->tasks_running();
    metrics.processes_live = impl_->processes_live();
  }
  return metrics;
}

Status Node::Close() {
  if (!impl_) return Status::OK();
  // Stop accepting requests and remove node.json before the node stops.
  if (impl_->http_server) impl_->http_server->Stop();
  return impl_->Close();
}

bool Settled(const Json& snapshot) {
  std::string status = snapshot.value("status", "");
  if (status == "completed" || status == "failed" || status == "cancelled" || status == "paused")
    return true;
  if (status != "waiting") return false;
  const Json& waiting_on = snapshot.value("waiting_on", Json::array());
  for (const auto& w : waiting_on) {
    if (w.value("kind", "") != "timer") return true;
  }
  return waiting_on.empty();  // waits for nothing it names: nothing will move it
}

int StatusExitCode(const Json& snapshot) {
  std::string status = snapshot.value("status", "");
  if (status == "completed") return 0;
  if (status == "failed") return 1;
  if (status == "cancelled") return 3;
  if (status == "waiting" || status == "paused") return 4;
  return -1;
}

}  // namespace keel
