#include "runtime/internal/process_registry.h"

#include <caf/all.hpp>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "actors/process_actor.h"
#include "runtime/internal/definition_cache.h"
#include "store/load_state.h"

namespace keel::runtime {
namespace {

// CAF 0.17 leaves a reference to the actor system's logger in every thread
// that spawns an actor or makes a scoped_actor, and ~actor_system waits until
// each is dropped: a thread that keeps one (blocked in Wait, say) would hang a
// Close made by another (a CLI's signal handler). Drops it at scope exit.
struct ForgetCafLogger {
  ~ForgetCafLogger() { caf::logger::set_current_actor_system(nullptr); }
};

}  // namespace

class ProcessRegistry::Impl {
 public:
  Impl(unsigned scheduler_threads, actors::Host& host, store::EventStore& store,
       DefinitionCache& definitions)
      : host_(host), store_(store), definitions_(definitions) {
    config_.set("scheduler.max-threads", static_cast<size_t>(scheduler_threads));
    config_.set("scheduler.policy", caf::atom("sharing"));
    config_.set("logger.file-verbosity", caf::atom("quiet"));
    config_.set("logger.console-verbosity", caf::atom("quiet"));
    system_ = std::make_unique<caf::actor_system>(config_);
  }

  ~Impl() {
    Close();
    system_.reset();
  }

  Status Activate(events::ProcessState state, uint64_t unsnapshotted) {
    std::lock_guard activating(activate_mu_);
    return Spawn(std::move(state), unsnapshotted).status();
  }

  Status SpawnNew(const std::string& id, const std::string& hash, actors::Creation creation) {
    std::lock_guard activating(activate_mu_);
    auto definition = definitions_.Get(hash);
    if (!definition.ok()) return definition.status();
    std::lock_guard lock(live_mu_);
    if (closing_) return Status::Aborted("the node is closing");
    if (live_.count(id)) return Status::Refused("a process with id '" + id + "' already exists");
    ForgetCafLogger forget;
    live_[id] = actors::SpawnNewProcess(*system_, host_, id, *definition, std::move(creation));
    return Status::OK();
  }

  Result<Json> Control(const std::string& id, const actors::Control& control) {
    for (;;) {
      auto actor = EnsureLive(id);
      if (!actor.ok()) return actor.status();
      std::optional<Result<Json>> reply;
      ForgetCafLogger forget;  // after self is gone
      caf::scoped_actor self{*system_};
      self->request(*actor, caf::infinite, actors::control_atom::value, control)
          .receive(
              [&](int32_t code, actors::ControlReply& answer) {
                if (code == actors::kAskAgain) return;  // not the process: go again
                Status status = Status::FromCode(static_cast<Status::Code>(code), answer.message);
                if (!status.ok()) {
                  reply.emplace(std::move(status));
                  return;
                }
                if (answer.state == nullptr)
                  reply.emplace(Status::Internal("no state from the process actor"));
                else
                  reply.emplace(events::ToJson(*answer.state));  // the JSON, made at the edge
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

  void Forget(const std::string& id) {
    std::lock_guard lock(live_mu_);
    live_.erase(id);
    live_cv_.notify_all();
  }

  bool IsLive(const std::string& id) {
    std::lock_guard lock(live_mu_);
    return live_.count(id) > 0;
  }

  int64_t LiveCount() {
    std::lock_guard lock(live_mu_);
    return static_cast<int64_t>(live_.size());
  }

  void Close() {
    {
      std::unique_lock lock(live_mu_);
      if (closing_) return;
      closing_ = true;
      for (auto& [_, actor] : live_) caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
      live_cv_.notify_all();
      // Every actor has told the host it stopped (its Passivated ran) before
      // Close returns, so none calls into a host being torn down.
      live_cv_.wait(lock, [&] { return live_.empty(); });
    }
    system_->await_all_actors_done();
  }

 private:
  // The live actor of `id`, spawned from the store's state when there is
  // none. NotFound for an unknown id, Aborted once closing.
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
    auto state = store::LoadState(store_, id, UINT64_MAX, &unsnapshotted);
    if (!state.ok()) return state.status();
    return Spawn(std::move(*state), unsnapshotted);
  }

  // Caller holds activate_mu_.
  Result<actors::process_actor> Spawn(events::ProcessState state, uint64_t unsnapshotted) {
    auto wf = definitions_.Get(state.definition_hash);
    if (!wf.ok()) return wf.status();
    std::lock_guard lock(live_mu_);
    if (closing_) return Status::Aborted("the node is closing");
    if (auto it = live_.find(state.id); it != live_.end()) return it->second;
    std::string id = state.id;
    ForgetCafLogger forget;
    auto actor = actors::SpawnProcess(*system_, host_, std::move(state), *wf, unsnapshotted);
    live_[id] = actor;
    return actor;
  }

  actors::Host& host_;
  store::EventStore& store_;
  DefinitionCache& definitions_;
  caf::actor_system_config config_;
  std::unique_ptr<caf::actor_system> system_;

  std::mutex activate_mu_;  // serializes loading a process's state with spawning its actor
  std::mutex live_mu_;
  std::condition_variable live_cv_;
  std::unordered_map<std::string, actors::process_actor> live_;  // guarded by live_mu_
  bool closing_ = false;                                         // guarded by live_mu_
};

ProcessRegistry::ProcessRegistry(unsigned scheduler_threads, actors::Host& host,
                                 store::EventStore& store, DefinitionCache& definitions)
    : impl_(std::make_unique<Impl>(scheduler_threads, host, store, definitions)) {}
ProcessRegistry::~ProcessRegistry() = default;

Status ProcessRegistry::Activate(events::ProcessState state, uint64_t unsnapshotted) {
  return impl_->Activate(std::move(state), unsnapshotted);
}
Status ProcessRegistry::SpawnNew(const std::string& id, const std::string& hash,
                                 actors::Creation creation) {
  return impl_->SpawnNew(id, hash, std::move(creation));
}
Result<Json> ProcessRegistry::Control(const std::string& id, const actors::Control& control) {
  return impl_->Control(id, control);
}
void ProcessRegistry::Forget(const std::string& id) { impl_->Forget(id); }
bool ProcessRegistry::IsLive(const std::string& id) { return impl_->IsLive(id); }
int64_t ProcessRegistry::LiveCount() { return impl_->LiveCount(); }
void ProcessRegistry::Close() { impl_->Close(); }

}  // namespace keel::runtime
