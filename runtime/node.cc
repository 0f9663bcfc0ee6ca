// keel::Node: a façade over the parts a node owns, each with one job: the
// store (the log), the process registry (live actors), the timer service,
// the rest waiters, the activity registry, the definition cache and the exec
// children. This file wires them together and checks what callers bring.

#include "keel/node.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <array>
#include <atomic>
#include <filesystem>
#include <future>
#include <mutex>
#include <random>
#include <thread>

#include "actors/blocking_pool.h"
#include "actors/host.h"
#include "base/data_dir.h"
#include "base/time.h"
#include "base/validate.h"
#include "events/state.h"
#include "runtime/internal/activity_registry.h"
#include "runtime/internal/child_manager.h"
#include "runtime/internal/definition_cache.h"
#include "runtime/internal/fork_planner.h"
#include "runtime/internal/process_registry.h"
#include "runtime/internal/queue_service.h"
#include "runtime/internal/rest_waiters.h"
#include "runtime/internal/schedule_service.h"
#include "runtime/internal/timer_service.h"
#include "store/event_store.h"
#include "store/load_state.h"

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

// What a start brings from outside, checked before anything is stored: the
// id and key (the alphabets of base/validate.h) and UTF-8 everywhere,
// since text that is not UTF-8 could be stored but never shown as JSON.
Status CheckStart(const Json& inputs, const StartOptions& opts) {
  if (!opts.id.empty()) KEEL_RETURN_IF_ERROR(CheckProcessId(opts.id));
  if (!opts.idempotency_key.empty())
    KEEL_RETURN_IF_ERROR(CheckIdempotencyKey(opts.idempotency_key));
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

// A store histogram in the public form.
template <size_t N>
Histogram ToHistogram(const std::array<double, N>& bounds, const std::array<uint64_t, N>& counts,
                      double sum) {
  return {std::vector<double>(bounds.begin(), bounds.end()),
          std::vector<uint64_t>(counts.begin(), counts.end()), sum};
}

}  // namespace

class Node::Impl : public actors::Host {
 public:
  explicit Impl(Options options) : options_(std::move(options)) {}
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
    auto children = runtime::ChildManager::Open(data_dir::Children(options_.data_dir));
    if (!children.ok()) return children.status();
    children_ = std::move(*children);
    activities_ = std::make_unique<runtime::ActivityRegistry>(*children_, options_);
    definitions_ = std::make_unique<runtime::DefinitionCache>(*store_);
    registry_ = std::make_unique<runtime::ProcessRegistry>(workers, *this, *store_, *definitions_);
    timers_ = std::make_unique<runtime::TimerService>(
        *store_, [this](const std::string& process, const std::string& timer) {
          actors::Control fire;
          fire.kind = actors::Control::Kind::kTimer;
          fire.target = timer;
          fire.by = "system";
          return registry_->Control(process, fire).status();
        });
    waiters_ = std::make_unique<runtime::RestWaiters>(runtime::RestWaiters::Sources{
        [this](const std::string& id) { return Load(id); },
        [this](const std::string& id) { return registry_->IsLive(id); },
        [this] { return timers_->Running(); }});
    schedules_ = std::make_unique<runtime::ScheduleService>(*store_, ScheduleHooks());
    auto queues = runtime::QueueService::Create(options_.queues, [this](const std::string& id) {
      actors::Control admit;
      admit.kind = actors::Control::Kind::kAdmit;
      admit.by = "system";
      return registry_->Control(id, admit).status();
    });
    if (!queues.ok()) return queues.status();
    queues_ = std::move(*queues);
    return schedules_->Load();
  }

  runtime::QueueService& queues() { return *queues_; }

  // A snapshot of a process waiting in a queue, with its place there.
  Json WithQueuePosition(const events::ProcessState& state, Json snapshot) {
    if (!state.WaitsInQueue()) return snapshot;
    for (auto& w : snapshot["waiting_on"]) {
      if (w.value("kind", "") == "queue") w["position"] = queues_->Position(state.queue, state.id);
    }
    return snapshot;
  }

  // What the schedule service asks of the node: starts of stored
  // definitions, and a look at and a cancel of the processes it started.
  runtime::ScheduleService::Hooks ScheduleHooks() {
    runtime::ScheduleService::Hooks hooks;
    hooks.start = [this](const std::string& hash, const Json& inputs, const std::string& id,
                         const std::string& actor) -> Status {
      auto wf = definitions_->Get(hash);
      if (!wf.ok()) return wf.status();
      StartOptions opts;
      opts.id = id;
      opts.actor = actor;
      std::string started_id;
      return Start(**wf, inputs, opts, nullptr, &started_id, /*snapshot=*/false).status();
    };
    hooks.exists = [this](const std::string& id) {
      auto last = store_->LastSeq(id);
      return last.ok() && *last > 0;
    };
    hooks.ended = [this](const std::string& id) {
      auto status = store_->StatusOf(id);
      return !status.ok() || events::IsTerminal(*status);
    };
    hooks.cancel = [this](const std::string& id, const std::string& reason) {
      actors::Control cancel;
      cancel.kind = actors::Control::Kind::kCancel;
      cancel.reason = reason;
      cancel.by = "system";
      return registry_->Control(id, cancel).status();
    };
    return hooks;
  }

  runtime::ScheduleService& schedules() { return *schedules_; }

  Result<Json> CreateSchedule(const ScheduleSpec& spec, const Workflow& wf,
                              const ControlOptions& options) {
    KEEL_RETURN_IF_ERROR(CheckUtf8(spec.cron, "the cron"));
    KEEL_RETURN_IF_ERROR(CheckUtf8(spec.time_zone, "the time zone"));
    KEEL_RETURN_IF_ERROR(CheckUtf8(options.by, "the actor ('by')"));
    KEEL_RETURN_IF_ERROR(CheckJsonUtf8(spec.inputs, "inputs"));
    if (!spec.inputs.is_object()) return Status::InvalidArgument("inputs must be a JSON object");
    auto resolved = ResolveInputs(wf, spec.inputs);  // refused now, not at every fire
    if (!resolved.ok()) return resolved.status();
    if (!spec.cron.empty() && spec.every.count() > 0) {
      return Status::InvalidArgument("a schedule has a cron or an interval, not both");
    }
    if (spec.cron.empty() && !spec.time_zone.empty()) {
      return Status::InvalidArgument("a time zone applies to a cron, not to an interval");
    }
    auto hashed = HashOf(wf);
    if (!hashed.ok()) return hashed.status();
    KEEL_RETURN_IF_ERROR(definitions_->Put(*hashed, wf));
    std::string inputs = spec.inputs.dump();
    events::ScheduleDefinition d;
    d.cron = spec.cron;
    d.every_ms = spec.every.count();
    d.time_zone = spec.time_zone;
    d.workflow = wf.name;
    d.definition_hash = *hashed;
    d.inputs_json = inputs;
    d.overlap = spec.overlap;
    d.catchup_window_ms = spec.catchup_window.count();
    d.jitter_ms = spec.jitter.count();
    auto created = schedules_->Create(spec.name, d, options.by);
    if (!created.ok()) return created.status();
    return events::ViewJson(*created);
  }

  // ---- actors::Host ----
  store::EventStore& store() override { return *store_; }
  const Options& options() const override { return options_; }
  const actors::Activity* FindActivity(const std::string& name) const override {
    return activities_->Find(name);
  }
  Result<std::shared_ptr<const Workflow>> Definition(const std::string& hash) override {
    return definitions_->Get(hash);
  }
  void Publish(const events::ProcessState& state) override {
    if (!state.queue.empty()) queues_->Track(state);
    waiters_->Published(state);
  }
  void Passivated(const std::string& id) override {
    registry_->Forget(id);
    waiters_->Stopped(id);
  }
  void TimerArmed(int64_t due_ns) override { timers_->Armed(due_ns); }
  actors::BlockingPool& pool() override { return *pool_; }
  void TaskStarted() override { tasks_running_.fetch_add(1, std::memory_order_relaxed); }
  void TaskEnded() override { tasks_running_.fetch_sub(1, std::memory_order_relaxed); }

  // ---- the parts, for Node ----
  runtime::ActivityRegistry& activities() { return *activities_; }
  runtime::ProcessRegistry& registry() { return *registry_; }
  runtime::RestWaiters& waiters() { return *waiters_; }

  NodeMetrics Metrics() const {
    return {tasks_running_.load(std::memory_order_relaxed), registry_->LiveCount()};
  }

  Result<events::ProcessState> Load(const std::string& id, uint64_t* tail = nullptr) {
    // A schedule's stream (events/schedule.h) holds no process.
    if (events::IsScheduleStream(id)) return Status::NotFound("no process with id '" + id + "'");
    return store::LoadState(*store_, id, UINT64_MAX, tail);
  }

  Result<Json> Control(const std::string& id, const actors::Control& control) {
    if (events::IsScheduleStream(id)) return Status::NotFound("no process with id '" + id + "'");
    KEEL_RETURN_IF_ERROR(CheckControl(control));
    return registry_->Control(id, control);
  }

  Status ResumeAll() {
    timers_->Start();
    if (options_.fire_schedules) schedules_->Start();
    auto ids = store_->UnfinishedProcesses();
    if (!ids.ok()) return ids.status();
    for (const auto& id : *ids) {
      uint64_t unsnapshotted = 0;
      auto state = Load(id, &unsnapshotted);
      if (!state.ok()) {
        spdlog::error("process {} cannot be resumed: {}", id, state.status().ToString());
        continue;
      }
      if (!state->queue.empty()) {
        queues_->Track(*state);
        if (state->WaitsInQueue()) continue;  // its queue admits it
      }
      if (events::AtRest(state->status)) continue;
      Status s = registry_->Activate(std::move(*state), unsnapshotted);
      if (!s.ok()) spdlog::error("process {} cannot be resumed: {}", id, s.ToString());
    }
    KEEL_RETURN_IF_ERROR(queues_->CountRecentAdmissions(*store_, NowNs()));
    queues_->Start();
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
      if (!activities_->Find(s->activity)) {
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
    std::string queue_key;
    if (!opts.queue.empty()) {
      if (!queues_->Has(opts.queue)) {
        KEEL_RETURN_IF_ERROR(CheckQueueName(opts.queue));
        return Status::InvalidArgument("no queue named '" + opts.queue + "' on this node");
      }
      queue_key = queues_->KeyFor(opts.queue, *resolved, opts.queue_key);
      KEEL_RETURN_IF_ERROR(CheckUtf8(queue_key, "the queue key"));
      if (queue_key.size() > 256) return Status::InvalidArgument("the queue key is over 256 bytes");
    }
    std::string id = opts.id.empty() ? NewProcessId() : opts.id;
    auto hashed = HashOf(wf);
    if (!hashed.ok()) return hashed.status();
    std::string hash = std::move(*hashed);
    KEEL_RETURN_IF_ERROR(definitions_->Put(hash, wf));
    // The new process's actor appends ProcessCreated with its first steps.
    auto done = std::make_shared<std::promise<Result<Json>>>();
    auto result = done->get_future();
    actors::Creation creation{
        events::ProcessCreated({id, id, opts.actor}, wf.name, hash, resolved->dump(),
                               wf.vars.dump(), opts.idempotency_key,
                               {opts.queue, opts.priority, queue_key}),
        [done](Result<Json> r) { done->set_value(std::move(r)); }, snapshot, opts.defer};
    KEEL_RETURN_IF_ERROR(registry_->SpawnNew(id, hash, std::move(creation)));
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
    if (!opts.queue.empty()) {
      // It waits in its queue from now on (its actor's publish says so too,
      // maybe after this returns): its place is known at once.
      auto state = Load(id);
      if (state.ok()) {
        queues_->Track(*state);
        if (created->is_object()) created = WithQueuePosition(*state, std::move(*created));
      }
    }
    *id_out = std::move(id);
    return created;
  }

  // Node::Fork: checks what the caller brings, plans the fork
  // (runtime/internal/fork_planner.h), appends the new stream in one append
  // and resumes it like a process recovered after a crash.
  Result<Json> Fork(const std::string& source, const ForkOptions& options) {
    if (!options.id.empty()) KEEL_RETURN_IF_ERROR(CheckProcessId(options.id));
    KEEL_RETURN_IF_ERROR(CheckUtf8(options.from, "the step"));
    KEEL_RETURN_IF_ERROR(CheckUtf8(options.actor, "the forking actor"));
    if (options.inputs) KEEL_RETURN_IF_ERROR(CheckJsonUtf8(*options.inputs, "inputs"));
    if (events::IsScheduleStream(source))
      return Status::NotFound("no process with id '" + source + "'");
    const std::string id = options.id.empty() ? NewProcessId() : options.id;
    auto taken = store_->LastSeq(id);
    if (!taken.ok()) return taken.status();
    if (*taken > 0) return Status::Refused("a process with id '" + id + "' already exists");
    runtime::ForkContext context;
    context.store = store_.get();
    context.definition = [this](const std::string& hash) { return definitions_->Get(hash); };
    context.has_activity = [this](const std::string& name) {
      return activities_->Find(name) != nullptr;
    };
    context.gates = actors::Gates(options_);
    context.now_ns = NowNs();
    auto plan = runtime::PlanFork(context, source, id, options);
    if (!plan.ok()) return plan.status();
    auto appended = store_->Append({id, 0, std::move(plan->events)});
    if (!appended.ok()) {
      if (appended.status().code() == Status::Code::kConflict)
        return Status::Refused("a process with id '" + id + "' already exists");
      return appended.status();
    }
    uint64_t unsnapshotted = 0;
    auto state = Load(id, &unsnapshotted);
    if (!state.ok()) return state.status();
    Json snapshot = events::ToJson(*state);
    if (!options.defer) {
      // Durable already: a node that cannot run it now (closing) leaves it
      // to the next one, which resumes it.
      Status s = registry_->Activate(std::move(*state), unsnapshotted);
      if (!s.ok()) spdlog::warn("fork {} not resumed yet: {}", id, s.ToString());
    }
    return snapshot;
  }

  Result<Json> Get(const std::string& id) {
    auto state = Load(id);
    if (!state.ok()) return state.status();
    return WithQueuePosition(*state, events::ToJson(*state));
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
      if (state.ok()) list.processes.push_back(WithQueuePosition(*state, events::SummaryJson(*state)));
    }
    return list;
  }
  Result<std::vector<Json>> Events(const std::string& id, uint64_t from_seq) {
    auto last = store_->LastSeq(id);
    if (!last.ok()) return last.status();
    if (*last == 0) return Status::NotFound("no process with id '" + id + "'");
    return Lines(store_->ReadStream(id, std::max<uint64_t>(from_seq, 1)));
  }

  Result<std::vector<Json>> LogEvents(uint64_t from_global_seq, size_t limit) {
    return Lines(store_->ReadLog(std::max<uint64_t>(from_global_seq, 1), limit));
  }

  Result<uint64_t> LastGlobalSeq() { return store_->LastGlobalSeq(); }

  // The last seq of `id`'s stream; NotFound for a stream never written.
  Result<uint64_t> KnownLastSeq(const std::string& id) {
    auto last = store_->LastSeq(id);
    if (!last.ok()) return last.status();
    if (*last == 0) return Status::NotFound("no process with id '" + id + "'");
    return *last;
  }

  Result<Json> DefinitionOf(const std::string& id) {
    auto state = Load(id);
    if (!state.ok()) return state.status();
    auto workflow = definitions_->Get(state->definition_hash);
    if (!workflow.ok()) return workflow.status();
    return (*workflow)->ToJson();
  }

  Result<Json> Replay(const std::string& id, uint64_t to_seq) {
    auto last = KnownLastSeq(id);
    if (!last.ok()) return last.status();
    if (to_seq == 0 || to_seq > *last) {
      return Status::InvalidArgument("seq " + std::to_string(to_seq) + " is outside " + id +
                                     "'s log (1 to " + std::to_string(*last) + ")");
    }
    auto log = store_->ReadStream(id, 1, to_seq);
    if (!log.ok()) return log.status();
    events::ProcessState state;
    for (const auto& event : *log) KEEL_RETURN_IF_ERROR(events::Apply(state, event));
    return events::ToJson(state);
  }

  Result<std::vector<std::string>> Verify(const std::string& id) {
    KEEL_RETURN_IF_ERROR(KnownLastSeq(id).status());
    auto problems = store_->Verify(id);
    if (!problems.ok()) return problems.status();
    std::vector<std::string> lines;
    for (const auto& p : *problems) {
      lines.push_back((p.seq ? "seq " + std::to_string(p.seq) + ": " : std::string()) + p.what);
    }
    return lines;
  }

  Result<LogStats> GetLogStats() {
    LogStats out;
    auto events = store_->LastGlobalSeq();
    if (!events.ok()) return events.status();
    out.events = *events;
    auto timers = store_->DueTimers(INT64_MAX, SIZE_MAX);
    if (!timers.ok()) return timers.status();
    out.timers_armed = timers->size();
    const store::StoreStats stats = store_->Stats();
    out.append_latency_seconds =
        ToHistogram(store::StoreStats::kLatencyBounds, stats.append_latency_buckets,
                    stats.append_latency_seconds_sum);
    out.group_commit_appends =
        ToHistogram(store::StoreStats::kBatchBounds, stats.batch_appends_buckets,
                    static_cast<double>(stats.batch_appends_sum));
    return out;
  }

  Status Close() {
    // A second Close (a CLI's signal handler, its main thread) returns once
    // the first is done.
    std::lock_guard closing(close_mu_);
    if (closed_) return Status::OK();
    closed_ = true;
    if (schedules_) schedules_->Stop();  // no fire starts a process from here on
    if (waiters_) waiters_->Close();
    if (registry_) registry_->Close();  // every actor stopped
    if (queues_) queues_->Stop();       // an admission under way was aborted with them
    if (timers_) timers_->Stop();
    children_.reset();  // stops what still runs; its last outcomes go to stopped actors
    pool_.reset();
    // The closed parts stay until the node is destroyed: a wait or control
    // racing with Close meets a closed part (Aborted), never a freed one.
    return store_ ? store_->Close() : Status::OK();
  }

 private:
  static Result<std::vector<Json>> Lines(Result<std::vector<events::StoredEvent>> events) {
    if (!events.ok()) return events.status();
    std::vector<Json> lines;
    lines.reserve(events->size());
    for (const auto& e : *events) lines.push_back(events::ToJson(e));
    return lines;
  }

  Options options_;
  std::unique_ptr<store::EventStore> store_;
  std::unique_ptr<actors::BlockingPool> pool_;
  std::unique_ptr<runtime::ChildManager> children_;  // runs the exec children
  std::unique_ptr<runtime::ActivityRegistry> activities_;
  std::unique_ptr<runtime::DefinitionCache> definitions_;
  std::unique_ptr<runtime::ProcessRegistry> registry_;
  std::unique_ptr<runtime::TimerService> timers_;
  std::unique_ptr<runtime::RestWaiters> waiters_;
  std::unique_ptr<runtime::ScheduleService> schedules_;
  std::unique_ptr<runtime::QueueService> queues_;
  std::atomic<int64_t> tasks_running_{0};  // live attempts (TaskStarted/TaskEnded)
  std::mutex close_mu_;                    // held through Close
  bool closed_ = false;                    // guarded by close_mu_
};

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Node::~Node() { Close().IgnoreError(); }

Result<std::unique_ptr<Node>> Node::Open(const Options& options) {
  auto impl = std::make_unique<Impl>(options);
  KEEL_RETURN_IF_ERROR(impl->Open());
  std::unique_ptr<Node> node(new Node(std::move(impl)));
  if (options.resume) KEEL_RETURN_IF_ERROR(node->Resume());
  return node;
}

Status Node::RegisterActivity(const std::string& name, ActivityFn fn) {
  return impl_->activities().Register(name, {std::move(fn), nullptr});
}
Status Node::RegisterAsyncActivity(const std::string& name, AsyncActivityFn fn) {
  return impl_->activities().Register(name, {nullptr, std::move(fn)});
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
Result<Json> Node::Fork(const std::string& source, const ForkOptions& options) {
  return impl_->Fork(source, options);
}
Result<Json> Node::Get(const std::string& id) { return impl_->Get(id); }
Result<ProcessList> Node::List(const ListFilter& filter) { return impl_->List(filter); }
Result<Json> Node::Wait(const std::string& id, std::chrono::milliseconds timeout) {
  return impl_->waiters().WaitForSnapshot(id, timeout, /*until_done=*/false);
}
Result<Json> Node::WaitUntilDone(const std::string& id, std::chrono::milliseconds timeout) {
  return impl_->waiters().WaitForSnapshot(id, timeout, /*until_done=*/true);
}
Result<ProcessOutcome> Node::Await(const std::string& id, std::chrono::milliseconds timeout) {
  return impl_->waiters().WaitForOutcome(id, timeout);
}
Result<std::function<void()>> Node::Subscribe(const std::string& id,
                                              std::function<void(const Json&)> fn) {
  return impl_->waiters().Subscribe(id, std::move(fn));
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
Result<Json> Node::CancelTask(const std::string& id, const std::string& task,
                              const ControlOptions& options) {
  if (task.empty()) return Status::InvalidArgument("cancel of a task needs the task id");
  return impl_->Control(id, MakeControl(actors::Control::Kind::kCancel, options, task));
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

namespace {

Result<Json> View(Result<events::ScheduleState> state) {
  if (!state.ok()) return state.status();
  return events::ViewJson(*state);
}

}  // namespace

Result<Json> Node::CreateSchedule(const ScheduleSpec& spec, const Workflow& workflow,
                                  const ControlOptions& options) {
  return impl_->CreateSchedule(spec, workflow, options);
}
Result<std::vector<Json>> Node::ListSchedules() {
  std::vector<Json> out;
  for (const auto& s : impl_->schedules().List()) out.push_back(events::ViewJson(s));
  return out;
}
Result<Json> Node::GetSchedule(const std::string& name) {
  return View(impl_->schedules().Get(name));
}
Result<Json> Node::PauseSchedule(const std::string& name, const ControlOptions& options) {
  KEEL_RETURN_IF_ERROR(CheckUtf8(options.reason, "the reason"));
  KEEL_RETURN_IF_ERROR(CheckUtf8(options.by, "the actor ('by')"));
  return View(impl_->schedules().Pause(name, options.reason, options.by));
}
Result<Json> Node::ResumeSchedule(const std::string& name, const ControlOptions& options) {
  KEEL_RETURN_IF_ERROR(CheckUtf8(options.reason, "the reason"));
  KEEL_RETURN_IF_ERROR(CheckUtf8(options.by, "the actor ('by')"));
  return View(impl_->schedules().Resume(name, options.reason, options.by));
}
Result<Json> Node::DeleteSchedule(const std::string& name, const ControlOptions& options) {
  KEEL_RETURN_IF_ERROR(CheckUtf8(options.reason, "the reason"));
  KEEL_RETURN_IF_ERROR(CheckUtf8(options.by, "the actor ('by')"));
  return View(impl_->schedules().Delete(name, options.reason, options.by));
}
Result<Json> Node::TriggerSchedule(const std::string& name, const ControlOptions& options) {
  KEEL_RETURN_IF_ERROR(CheckUtf8(options.by, "the actor ('by')"));
  return View(impl_->schedules().Trigger(name, options.by));
}

Result<std::vector<Json>> Node::ListQueues() { return impl_->queues().Views(); }
Result<Json> Node::GetQueue(const std::string& name) { return impl_->queues().View(name); }

Result<std::vector<Json>> Node::Events(const std::string& id, uint64_t from_seq) {
  return impl_->Events(id, from_seq);
}
Result<std::vector<Json>> Node::LogEvents(uint64_t from_global_seq, size_t limit) {
  return impl_->LogEvents(from_global_seq, limit);
}
Result<uint64_t> Node::LastGlobalSeq() { return impl_->LastGlobalSeq(); }
Result<Json> Node::Definition(const std::string& id) { return impl_->DefinitionOf(id); }
Result<Json> Node::Replay(const std::string& id, uint64_t to_seq) {
  return impl_->Replay(id, to_seq);
}
Result<std::vector<std::string>> Node::Verify(const std::string& id) { return impl_->Verify(id); }

NodeMetrics Node::Metrics() const { return impl_ ? impl_->Metrics() : NodeMetrics{}; }
Result<LogStats> Node::GetLogStats() { return impl_->GetLogStats(); }
const Options& Node::options() const { return impl_->options(); }

Status Node::Close() { return impl_ ? impl_->Close() : Status::OK(); }

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

bool AtRest(const Json& snapshot) {
  auto status = events::ParseProcessStatus(snapshot.value("status", ""));
  return status && events::AtRest(*status);
}

Json TasksPage(Json snapshot, size_t limit, size_t offset) {
  auto tasks = snapshot.find("tasks");
  if (limit == 0 || tasks == snapshot.end() || !tasks->is_array()) return snapshot;
  const size_t total = tasks->size();
  const size_t end = total - std::min(offset, total);  // past the page's newest
  const size_t begin = end - std::min(limit, end);
  Json page = Json::array();
  for (size_t i = begin; i < end; ++i) page.push_back(std::move((*tasks)[i]));
  *tasks = std::move(page);
  snapshot["tasks_total"] = total;
  snapshot["tasks_offset"] = offset;
  return snapshot;
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
