#pragma once

// The activities a node's processes can call: the built-ins of WORKFLOW.md
// (echo, fail, exec, http) and those the embedding program registers.

#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "actors/host.h"
#include "keel/options.h"
#include "keel/status.h"

namespace keel::runtime {

class ChildManager;

class ActivityRegistry {
 public:
  // The built-ins; `exec` runs its children on `children` under `options`'
  // exec policy. `children` must outlive the registry's activities' calls.
  ActivityRegistry(ChildManager& children, const Options& options);

  // Makes `activity` callable as `name`, replacing a built-in or an earlier
  // one of that name. InvalidArgument for an empty name.
  Status Register(const std::string& name, actors::Activity activity);

  // nullptr when no activity of that name is registered. The pointer stays
  // valid until `name` is registered again.
  const actors::Activity* Find(const std::string& name) const;

 private:
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, actors::Activity> activities_;  // guarded by mu_
};

}  // namespace keel::runtime
