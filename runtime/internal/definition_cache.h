#pragma once

// The workflow definitions a node's processes run, by hash: stored in the
// log's store once, parsed once, shared by every process of the definition.

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "keel/status.h"
#include "keel/workflow.h"
#include "store/event_store.h"

namespace keel::runtime {

class DefinitionCache {
 public:
  explicit DefinitionCache(store::EventStore& store) : store_(store) {}

  // The definition stored under `hash`; Corruption when the store lacks it
  // or holds one that does not parse (a process's definition is in the
  // store before its ProcessCreated).
  Result<std::shared_ptr<const Workflow>> Get(const std::string& hash);

  // Stores `workflow` under `hash` unless it is there; durable on return.
  Status Put(const std::string& hash, const Workflow& workflow);

 private:
  store::EventStore& store_;
  std::mutex mu_;
  // Parsed definitions; a hash here is in the store.
  std::unordered_map<std::string, std::shared_ptr<const Workflow>> cached_;  // guarded by mu_
};

}  // namespace keel::runtime
