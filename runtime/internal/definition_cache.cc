#include "runtime/internal/definition_cache.h"

namespace keel::runtime {

Result<std::shared_ptr<const Workflow>> DefinitionCache::Get(const std::string& hash) {
  {
    std::lock_guard lock(mu_);
    if (auto it = cached_.find(hash); it != cached_.end()) return it->second;
  }
  auto text = store_.GetDefinition(hash);
  if (!text.ok()) return text.status();
  if (!*text) return Status::Corruption("workflow definition " + hash + " is missing from the store");
  Json json = Json::parse(**text, nullptr, false);
  if (json.is_discarded()) return Status::Corruption("workflow definition " + hash + " is not JSON");
  auto wf = Workflow::FromJson(json);
  if (!wf.ok()) return wf.status();
  auto shared = std::make_shared<const Workflow>(std::move(*wf));
  std::lock_guard lock(mu_);
  return cached_.emplace(hash, std::move(shared)).first->second;
}

Status DefinitionCache::Put(const std::string& hash, const Workflow& workflow) {
  {
    std::lock_guard lock(mu_);
    if (cached_.count(hash)) return Status::OK();
  }
  KEEL_RETURN_IF_ERROR(store_.PutDefinition(hash, workflow.ToJson().dump()));
  auto shared = std::make_shared<const Workflow>(workflow);
  std::lock_guard lock(mu_);
  cached_.emplace(hash, std::move(shared));
  return Status::OK();
}

}  // namespace keel::runtime
