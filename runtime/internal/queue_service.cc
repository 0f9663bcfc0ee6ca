#include "runtime/internal/queue_service.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "base/time.h"
#include "events/schedule.h"
#include "store/load_state.h"

namespace keel::runtime {
namespace {

// How long an admission that failed (not refused: the store failed) waits
// before the queue tries again.
constexpr auto kRetryAfterFailure = std::chrono::seconds(1);
// Events read at a time when the rate windows are rebuilt, newest first.
constexpr uint64_t kScanChunk = 1024;
// Commit order and event times may disagree a little (each process stamps
// its own times): the scan goes this much further back than the window.
constexpr int64_t kScanSlackNs = 60'000'000'000;

QueueEntry EntryOf(const events::ProcessState& s) {
  return {s.id, s.queue_priority, s.created_ns, s.queue_key};
}

}  // namespace

Result<std::unique_ptr<QueueService>> QueueService::Create(const std::vector<QueueSpec>& specs,
                                                           AdmitFn admit) {
  std::map<std::string, QueueSpec> by_name;
  for (const auto& spec : specs) {
    KEEL_RETURN_IF_ERROR(CheckQueueName(spec.name));
    if (spec.rate_limit && spec.rate_period.count() <= 0) {
      return Status::InvalidArgument("queue '" + spec.name + "': a rate needs a period");
    }
    if (!spec.key.empty() && (spec.key.rfind("inputs.", 0) != 0 || spec.key.size() == 7)) {
      return Status::InvalidArgument("queue '" + spec.name +
                                     "': key must be a path into the inputs (inputs.NAME)");
    }
    if (!by_name.emplace(spec.name, spec).second) {
      return Status::InvalidArgument("queue '" + spec.name + "' is configured twice");
    }
  }
  return std::unique_ptr<QueueService>(new QueueService(std::move(by_name), std::move(admit)));
}

QueueService::QueueService(std::map<std::string, QueueSpec> specs, AdmitFn admit)
    : specs_(std::move(specs)), admit_(std::move(admit)) {
  for (const auto& [name, spec] : specs_) books_.emplace(name, QueueBook(spec, true));
}

QueueService::~QueueService() { Stop(); }

Result<std::unique_ptr<QueueService>> QueueService::Rebuild(store::EventStore& store,
                                                            const std::vector<QueueSpec>& specs) {
  auto service = Create(specs, [](const std::string&) { return Status::OK(); });
  if (!service.ok()) return service.status();
  auto ids = store.UnfinishedProcesses();
  if (!ids.ok()) return ids.status();
  for (const auto& id : *ids) {
    if (events::IsScheduleStream(id)) continue;
    auto state = store::LoadState(store, id, UINT64_MAX, nullptr);
    if (state.ok() && !state->queue.empty()) (*service)->Track(*state);
  }
  KEEL_RETURN_IF_ERROR((*service)->CountRecentAdmissions(store, NowNs()));
  return service;
}

std::string QueueService::KeyFor(const std::string& name, const Json& inputs,
                                 const std::string& given) const {
  if (!given.empty()) return given;
  auto spec = specs_.find(name);
  if (spec == specs_.end() || spec->second.key.empty()) return {};
  const Json* at = &inputs;
  std::string_view path = std::string_view(spec->second.key).substr(7);  // after "inputs."
  while (!path.empty()) {
    auto dot = path.find('.');
    std::string part(path.substr(0, dot));
    path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
    if (!at->is_object()) return {};
    auto it = at->find(part);
    if (it == at->end()) return {};
    at = &*it;
  }
  if (at->is_null()) return {};
  return at->is_string() ? at->get<std::string>() : at->dump();
}

QueueBook& QueueService::BookOf(const std::string& name) {
  auto it = books_.find(name);
  if (it == books_.end()) {
    QueueSpec spec;
    spec.name = name;
    it = books_.emplace(name, QueueBook(spec, false)).first;
  }
  return it->second;
}

void QueueService::Track(const events::ProcessState& s) {
  if (s.queue.empty()) return;
  std::lock_guard lock(mu_);
  QueueBook& book = BookOf(s.queue);
  const size_t depth = book.depth(), running = book.running();
  if (events::IsTerminal(s.status)) {
    book.Release(s.id);
  } else if (s.WaitsInQueue()) {
    book.Enqueue(EntryOf(s));
  } else if (s.admitted_ns != 0) {
    book.Hold(EntryOf(s));
  } else {
    // Never admitted and no longer pending: cancelled or failed before it
    // started (its terminal state follows); it waits no more.
    book.Release(s.id);
  }
  if (book.depth() == depth && book.running() == running) return;  // a step of a running one
  changed_ = true;
  wake_.notify_one();
}

Status QueueService::CountRecentAdmissions(store::EventStore& store, int64_t now_ns) {
  int64_t longest_ns = 0;
  for (const auto& [_, spec] : specs_) {
    if (spec.rate_limit) longest_ns = std::max<int64_t>(longest_ns, spec.rate_period.count() * 1'000'000);
  }
  std::lock_guard lock(mu_);
  if (longest_ns == 0 || counted_) return Status::OK();
  counted_ = true;
  auto last = store.LastGlobalSeq();
  if (!last.ok()) return last.status();
  const int64_t oldest_ns = now_ns - longest_ns;
  uint64_t end = *last + 1;  // scanned: [end, last]
  while (end > 1) {
    uint64_t from = end > kScanChunk ? end - kScanChunk : 1;
    auto events = store.ReadLog(from, end - from);
    if (!events.ok()) return events.status();
    bool all_older = true;
    for (const auto& e : *events) {
      if (e.global_seq() >= end) break;
      if (e.time_ns() >= oldest_ns - kScanSlackNs) all_older = false;
      if (e.type() != events::EventType::ProcessAdmitted) continue;
      const auto* body = e.envelope().body_as_ProcessAdmitted();
      std::string queue = body->queue() ? body->queue()->str() : std::string();
      auto spec = specs_.find(queue);
      if (spec == specs_.end() || spec->second.rate_limit == 0) continue;
      if (e.time_ns() > now_ns - spec->second.rate_period.count() * 1'000'000) {
        books_.at(queue).CountAdmission(e.time_ns());
      }
    }
    if (all_older) break;
    end = from;
  }
  return Status::OK();
}

void QueueService::Start() {
  std::lock_guard lock(mu_);
  if (started_ || stopping_) return;
  started_ = true;
  changed_ = true;
  thread_ = std::thread([this] { Loop(); });
}

void QueueService::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    wake_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void QueueService::Loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    changed_ = false;
    const int64_t now = NowNs();
    std::vector<std::pair<std::string, std::string>> admitted;  // queue, id
    int64_t next_opening = 0;
    for (auto& [name, book] : books_) {
      for (auto& id : book.Admit(now)) admitted.emplace_back(name, std::move(id));
      int64_t opening = book.NextRateOpening(now);
      if (opening && (!next_opening || opening < next_opening)) next_opening = opening;
    }
    if (!admitted.empty()) {
      bool failed = false;
      // Decided; the process's actor records it (ProcessAdmitted) before it
      // runs anything. No lock while it does: its changes come back here.
      lock.unlock();
      std::vector<std::pair<size_t, Status>> outcomes;
      for (size_t i = 0; i < admitted.size(); ++i) {
        Status s = admit_(admitted[i].second);
        if (!s.ok()) outcomes.emplace_back(i, std::move(s));
      }
      lock.lock();
      for (auto& [i, s] : outcomes) {
        auto& [queue, id] = admitted[i];
        if (s.code() == Status::Code::kRefused || s.code() == Status::Code::kNotFound) {
          books_.at(queue).Release(id);  // it waits no more (cancelled meanwhile)
        } else {
          if (s.code() != Status::Code::kAborted)
            spdlog::warn("queue {}: process {} not admitted: {}", queue, id, s.ToString());
          books_.at(queue).Return(id, now);
          failed = true;
        }
      }
      if (failed) wake_.wait_for(lock, kRetryAfterFailure, [&] { return stopping_; });
      continue;  // others may fit now
    }
    if (changed_) continue;
    if (next_opening) {
      auto wait = std::chrono::nanoseconds(std::max<int64_t>(next_opening - NowNs(), 0));
      wake_.wait_for(lock, wait, [&] { return stopping_ || changed_; });
    } else {
      wake_.wait(lock, [&] { return stopping_ || changed_; });
    }
  }
}

size_t QueueService::Position(const std::string& queue, const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = books_.find(queue);
  return it == books_.end() ? 0 : it->second.Position(id);
}

std::vector<Json> QueueService::Views() const {
  std::lock_guard lock(mu_);
  std::vector<Json> out;
  const int64_t now = NowNs();
  for (auto& [_, book] : books_) out.push_back(book.View(now));
  return out;
}

Result<Json> QueueService::View(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = books_.find(name);
  if (it == books_.end()) return Status::NotFound("no queue named '" + name + "'");
  return it->second.View(NowNs());
}

}  // namespace keel::runtime
