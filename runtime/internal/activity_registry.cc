#include "runtime/internal/activity_registry.h"

#include <mutex>

#include "runtime/internal/builtin_activities.h"
#include "runtime/internal/child_manager.h"

namespace keel::runtime {

ActivityRegistry::ActivityRegistry(ChildManager& children, const Options& options) {
  // echo and fail compute their result at once: called by the process actor
  // itself, without the activity pool's two thread hand-offs.
  auto at_once = [](ActivityResult (*fn)(const ActivityContext&)) {
    return actors::Activity{
        nullptr, [fn](const ActivityContext& c, std::function<void(ActivityResult)> done) {
          done(fn(c));
        }};
  };
  activities_["echo"] = at_once(Echo);
  activities_["fail"] = at_once(FailActivity);
  activities_["http"] = {Http, nullptr};
  // exec children are run by the child manager's loop, not on the pool.
  activities_["exec"] = {
      nullptr, [children = &children, policy = options.exec_policy, allow = options.exec_allow](
                   const ActivityContext& c, std::function<void(ActivityResult)> done) {
        auto command = ParseExec(c.input, policy, allow);
        if (!command.ok()) return done(ActivityResult::Fail(command.status().message(), false));
        children->Run(std::move(*command), c.cancel, c.idempotency_key, std::move(done));
      }};
}

Status ActivityRegistry::Register(const std::string& name, actors::Activity activity) {
  if (name.empty()) return Status::InvalidArgument("activity name is empty");
  std::unique_lock lock(mu_);
  activities_[name] = std::move(activity);
  return Status::OK();
}

const actors::Activity* ActivityRegistry::Find(const std::string& name) const {
  std::shared_lock lock(mu_);
  auto it = activities_.find(name);
  return it == activities_.end() ? nullptr : &it->second;
}

}  // namespace keel::runtime
