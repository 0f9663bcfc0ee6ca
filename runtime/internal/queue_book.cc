#include "runtime/internal/queue_book.h"

#include "base/time.h"

namespace keel::runtime {

QueueBook::QueueBook(QueueSpec spec, bool configured)
    : spec_(std::move(spec)), configured_(configured) {}

void QueueBook::Enqueue(const QueueEntry& e) {
  if (waiting_ids_.count(e.id) || holding_.count(e.id)) return;
  Order order = OrderOf(e);
  waiting_ids_.emplace(e.id, order);
  waiting_.emplace(std::move(order), e);
}

void QueueBook::Hold(const QueueEntry& e) {
  if (holding_.count(e.id)) return;
  if (auto w = waiting_ids_.find(e.id); w != waiting_ids_.end()) {
    waiting_.erase(w->second);
    waiting_ids_.erase(w);
  }
  holding_per_key_[e.key]++;
  holding_.emplace(e.id, e);
}

void QueueBook::CountAdmission(int64_t at_ns) { window_.insert(at_ns); }

void QueueBook::Release(const std::string& id) {
  if (auto w = waiting_ids_.find(id); w != waiting_ids_.end()) {
    waiting_.erase(w->second);
    waiting_ids_.erase(w);
    return;
  }
  auto h = holding_.find(id);
  if (h == holding_.end()) return;
  auto k = holding_per_key_.find(h->second.key);
  if (k != holding_per_key_.end() && --k->second == 0) holding_per_key_.erase(k);
  holding_.erase(h);
}

void QueueBook::Return(const std::string& id, int64_t at_ns) {
  auto h = holding_.find(id);
  if (h == holding_.end()) return;
  QueueEntry e = h->second;
  Release(id);
  if (auto t = window_.find(at_ns); t != window_.end()) window_.erase(t);
  Enqueue(e);
}

void QueueBook::Prune(int64_t now_ns) {
  if (spec_.rate_limit == 0) {
    window_.clear();
    return;
  }
  const int64_t period_ns = spec_.rate_period.count() * 1'000'000;
  // An admission at t counts while t > now - period.
  while (!window_.empty() && *window_.begin() <= now_ns - period_ns) window_.erase(window_.begin());
}

std::vector<std::string> QueueBook::Admit(int64_t now_ns) {
  std::vector<std::string> admitted;
  if (!configured_) return admitted;
  Prune(now_ns);
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (spec_.concurrency && holding_.size() >= spec_.concurrency) break;
    if (spec_.rate_limit && window_.size() >= spec_.rate_limit) break;
    const QueueEntry& e = it->second;
    if (spec_.per_key) {
      auto k = holding_per_key_.find(e.key);
      if (k != holding_per_key_.end() && k->second >= spec_.per_key) {
        ++it;  // its key is full; later ones of other keys may go
        continue;
      }
    }
    QueueEntry entry = e;
    waiting_ids_.erase(entry.id);
    it = waiting_.erase(it);
    admitted.push_back(entry.id);
    holding_per_key_[entry.key]++;
    holding_.emplace(entry.id, std::move(entry));
    window_.insert(now_ns);
  }
  return admitted;
}

int64_t QueueBook::NextRateOpening(int64_t now_ns) {
  if (!configured_ || spec_.rate_limit == 0 || waiting_.empty()) return 0;
  Prune(now_ns);
  if (window_.size() < spec_.rate_limit) return 0;
  if (spec_.concurrency && holding_.size() >= spec_.concurrency) return 0;  // a slot first
  // The oldest admission leaves the window one period after it.
  return *window_.begin() + spec_.rate_period.count() * 1'000'000 + 1;
}

size_t QueueBook::Position(const std::string& id) const {
  auto w = waiting_ids_.find(id);
  if (w == waiting_ids_.end()) return 0;
  size_t position = 1;
  for (auto it = waiting_.begin(); it != waiting_.end() && it->first < w->second; ++it) ++position;
  return position;
}

size_t QueueBook::RateUsed(int64_t now_ns) {
  Prune(now_ns);
  return window_.size();
}

Json QueueBook::View(int64_t now_ns, size_t list) {
  Json rate = nullptr;
  if (spec_.rate_limit) {
    rate = {{"limit", spec_.rate_limit},
            {"period", FormatDurationMs(spec_.rate_period.count())},
            {"used", RateUsed(now_ns)}};
  }
  Json waiting = Json::array();
  for (const auto& [_, e] : waiting_) {
    if (waiting.size() >= list) break;
    waiting.push_back({{"id", e.id}, {"priority", e.priority}, {"key", e.key}});
  }
  auto limit = [](uint32_t n) { return n ? Json(n) : Json(nullptr); };
  return {{"name", spec_.name},
          {"configured", configured_},
          {"spec", FormatQueueSpec(spec_)},
          {"concurrency", limit(spec_.concurrency)},
          {"per_key", limit(spec_.per_key)},
          {"key", spec_.key.empty() ? Json(nullptr) : Json(spec_.key)},
          {"rate", rate},
          {"depth", waiting_.size()},
          {"running", holding_.size()},
          {"waiting", waiting}};
}

}  // namespace keel::runtime
