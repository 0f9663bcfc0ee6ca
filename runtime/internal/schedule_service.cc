#include "runtime/internal/schedule_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "base/cron.h"
#include "base/time.h"

namespace keel::runtime {
namespace {

using events::Overlap;
using events::ScheduleState;
using events::ScheduleStatus;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSecond = 1000 * kMs;
// How often a schedule with buffered fires looks whether its process ended.
constexpr int64_t kBufferPoll = 250 * kMs;
// The longest the thread sleeps without looking (a clock set forward).
constexpr int64_t kMaxSleep = 60 * kSecond;
// Missed fires counted one by one at most (a per-second schedule down for years).
constexpr uint64_t kMaxMissedCount = 1'000'000;

Result<FireRule> RuleOf(const ScheduleState& s) {
  return s.cron.empty() ? FireRule::Every(s.every_ms) : FireRule::Cron(s.cron, s.time_zone);
}

std::string Actor(const std::string& name) { return "schedule:" + name; }

}  // namespace

int64_t JitterNs(const ScheduleState& s, int64_t fire_ns) {
  if (s.jitter_ms <= 0) return 0;
  // FNV-1a of the name and the fire time: stable across builds and nodes.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](unsigned char c) { h = (h ^ c) * 1099511628211ull; };
  for (char c : s.name) mix(static_cast<unsigned char>(c));
  for (int i = 0; i < 8; ++i) mix(static_cast<unsigned char>(fire_ns >> (8 * i)));
  return static_cast<int64_t>(h % static_cast<uint64_t>(s.jitter_ms)) * kMs;
}

ScheduleService::~ScheduleService() { Stop(); }

Status ScheduleService::Load() {
  auto streams = store_.ListStreams(events::kScheduleStreamPrefix);
  if (!streams.ok()) return streams.status();
  std::lock_guard lock(mu_);
  for (const auto& stream : *streams) {
    auto read = store_.ReadStream(stream);
    if (!read.ok()) return read.status();
    ScheduleState state;
    Status folded;
    for (const auto& event : *read) {
      folded = events::ApplySchedule(state, event);
      if (!folded.ok()) break;
    }
    if (!folded.ok()) {
      // As a process that cannot be resumed: the node opens, `verify` says why.
      spdlog::error("schedule stream {} cannot be loaded: {}", stream, folded.ToString());
      continue;
    }
    if (state.created()) schedules_[state.name] = std::move(state);
  }
  return Status::OK();
}

void ScheduleService::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread([this] { Loop(); });
}

void ScheduleService::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void ScheduleService::Wake() {
  changed_ = true;
  cv_.notify_all();
}

void ScheduleService::Loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    changed_ = false;
    int64_t now = NowNs();
    int64_t next = INT64_MAX;
    for (auto& [name, s] : schedules_) {
      if (stop_) break;
      next = std::min(next, Advance(s, now));
    }
    if (stop_ || changed_) continue;
    int64_t sleep =
        std::clamp<int64_t>(next == INT64_MAX ? kMaxSleep : next - NowNs(), 0, kMaxSleep);
    if (sleep == 0) continue;
    cv_.wait_for(lock, std::chrono::nanoseconds(sleep), [&] { return stop_ || changed_; });
  }
}

int64_t ScheduleService::Advance(ScheduleState& s, int64_t now) {
  if (s.status != ScheduleStatus::kActive) return INT64_MAX;
  auto rule = RuleOf(s);
  if (!rule.ok()) return INT64_MAX;  // refused at creation; not in a log keel wrote
  int64_t look = INT64_MAX;
  auto running = [&] { return !s.last_process.empty() && !hooks_.ended(s.last_process); };
  // A buffered fire starts once the schedule's newest process has ended.
  if (!s.buffered.empty()) {
    if (running()) {
      look = now + kBufferPoll;
    } else {
      Status started = StartFire(s, s.buffered.front());
      if (!started.ok()) return now + kSecond;  // the log refused: look again later
      if (!s.buffered.empty()) look = now + kBufferPoll;
    }
  }
  const int64_t window = std::max<int64_t>(s.catchup_window_ms * kMs, kSecond);
  while (!stop_) {
    std::optional<int64_t> fire = rule->NextAfter(s.cursor_ns);
    if (!fire) break;
    const int64_t due = *fire + JitterNs(s, *fire);
    if (due > now) return std::min(look, due);
    if (now - due > window) {
      // Came due while no node ran, too long ago: passed by, all at once.
      int64_t until = *fire;
      uint64_t count = 1;
      for (auto f = rule->NextAfter(until); f && count < kMaxMissedCount; f = rule->NextAfter(*f)) {
        if (now - (*f + JitterNs(s, *f)) <= window) break;
        until = *f;
        ++count;
      }
      spdlog::warn("schedule {}: {} fire(s) up to {} missed (older than the catch-up window)",
                   s.name, count, FormatTime(until));
      events::Header h{s.stream, s.name, "system"};
      if (!Append(s, {events::ScheduleMissed(h, s.cursor_ns, until, count)}).ok()) {
        return now + kSecond;
      }
      continue;
    }
    Status handled;
    events::Header h{s.stream, s.name, "system"};
    const bool busy = s.overlap != Overlap::kAllowAll && running();
    if (!busy) {
      handled = StartFire(s, *fire);
    } else if (s.overlap == Overlap::kCancelOther) {
      Status cancelled = hooks_.cancel(s.last_process, "schedule " + s.name + ": a newer fire");
      if (!cancelled.ok()) {
        spdlog::warn("schedule {}: cancelling {}: {}", s.name, s.last_process,
                     cancelled.ToString());
      }
      handled = StartFire(s, *fire);
    } else if (s.overlap == Overlap::kBufferAll ||
               (s.overlap == Overlap::kBufferOne && s.buffered.empty())) {
      handled = Append(s, {events::ScheduleFired(h, *fire, "", "buffered", false)});
      look = std::min(look, now + kBufferPoll);
    } else {
      handled = Append(s, {events::ScheduleFired(h, *fire, "", "skipped", false,
                                                 "overlap: " + s.last_process + " is running")});
    }
    if (!handled.ok()) return now + kSecond;
  }
  return look;
}

Status ScheduleService::StartFire(ScheduleState& s, int64_t fire_ns) {
  const std::string id = events::ScheduleFireId(s.name, fire_ns, /*manual=*/false);
  events::Header h{s.stream, s.name, "system"};
  Status started = hooks_.start(s.definition_hash, s.inputs, id, Actor(s.name));
  if (!started.ok() && !hooks_.exists(id)) {
    spdlog::error("schedule {}: the fire of {} did not start: {}", s.name, FormatTime(fire_ns),
                  started.ToString());
    if (started.code() == Status::Code::kAborted) return started;  // the node is closing
    // Recorded as skipped (a buffered one leaves the buffer so).
    return Append(s, {events::ScheduleFired(h, fire_ns, "", "skipped", false,
                                            "did not start: " + started.ToString())});
  }
  // Started now, or by a node that crashed before it could record it.
  return Append(s, {events::ScheduleFired(h, fire_ns, id, "started", false)});
}

Status ScheduleService::Append(ScheduleState& s, std::vector<events::Draft> drafts) {
  std::string stream = s.stream.empty() ? events::ScheduleStream(s.name) : s.stream;
  auto appended = store_.Append({stream, s.last_seq, std::move(drafts)});
  if (!appended.ok()) {
    spdlog::error("schedule {}: {}", s.name, appended.status().ToString());
    return appended.status();
  }
  for (auto& value : appended->values) {
    auto event = events::StoredEvent::Decode(std::move(value));
    if (!event.ok()) return event.status();
    KEEL_RETURN_IF_ERROR(events::ApplySchedule(s, *event));
  }
  return Status::OK();
}

Result<ScheduleState*> ScheduleService::Find(const std::string& name) {
  auto it = schedules_.find(name);
  if (it == schedules_.end() || it->second.status == ScheduleStatus::kDeleted) {
    return Status::NotFound("no schedule named '" + name + "'");
  }
  return &it->second;
}

Result<ScheduleState> ScheduleService::Create(const std::string& name,
                                              const events::ScheduleDefinition& d,
                                              const std::string& by) {
  KEEL_RETURN_IF_ERROR(events::CheckScheduleName(name));
  if (!d.cron.empty() && d.every_ms > 0) {
    return Status::InvalidArgument("a schedule has a cron or an interval, not both");
  }
  if (d.cron.empty() && d.every_ms <= 0) {
    return Status::InvalidArgument("a schedule needs a cron or an interval");
  }
  auto rule = d.cron.empty() ? FireRule::Every(d.every_ms) : FireRule::Cron(d.cron, d.time_zone);
  if (!rule.ok()) return rule.status();
  if (!events::ParseOverlap(d.overlap)) {
    return Status::InvalidArgument("overlap '" + std::string(d.overlap) +
                                   "' is not one of skip, buffer_one, buffer_all, cancel_other, "
                                   "allow_all");
  }
  if (d.catchup_window_ms < 0 || d.jitter_ms < 0) {
    return Status::InvalidArgument("the catch-up window and the jitter cannot be negative");
  }
  std::lock_guard lock(mu_);
  ScheduleState& s = schedules_[name];
  if (s.created() && s.status != ScheduleStatus::kDeleted) {
    return Status::Refused("schedule '" + name + "' exists (delete it first)");
  }
  std::string stream = events::ScheduleStream(name);
  s.name = name;
  s.stream = stream;
  events::Header h{stream, name, by.empty() ? "user" : by};
  Status appended = Append(s, {events::ScheduleCreated(h, d)});
  if (!appended.ok()) {
    if (s.last_seq == 0) schedules_.erase(name);
    return appended;
  }
  Wake();
  return s;
}

Result<ScheduleState> ScheduleService::Pause(const std::string& name, const std::string& reason,
                                             const std::string& by) {
  std::lock_guard lock(mu_);
  auto s = Find(name);
  if (!s.ok()) return s.status();
  if ((*s)->status == ScheduleStatus::kPaused) {
    return Status::Refused("schedule '" + name + "' is paused already");
  }
  KEEL_RETURN_IF_ERROR(Append(
      **s, {events::SchedulePaused({(*s)->stream, name, by.empty() ? "user" : by}, reason)}));
  Wake();
  return **s;
}

Result<ScheduleState> ScheduleService::Resume(const std::string& name, const std::string& reason,
                                              const std::string& by) {
  std::lock_guard lock(mu_);
  auto s = Find(name);
  if (!s.ok()) return s.status();
  if ((*s)->status != ScheduleStatus::kPaused) {
    return Status::Refused("schedule '" + name + "' is not paused");
  }
  KEEL_RETURN_IF_ERROR(Append(
      **s, {events::ScheduleResumed({(*s)->stream, name, by.empty() ? "user" : by}, reason)}));
  Wake();
  return **s;
}

Result<ScheduleState> ScheduleService::Delete(const std::string& name, const std::string& reason,
                                              const std::string& by) {
  std::lock_guard lock(mu_);
  auto s = Find(name);
  if (!s.ok()) return s.status();
  KEEL_RETURN_IF_ERROR(Append(
      **s, {events::ScheduleDeleted({(*s)->stream, name, by.empty() ? "user" : by}, reason)}));
  Wake();
  return **s;
}

Result<ScheduleState> ScheduleService::Trigger(const std::string& name, const std::string& by) {
  std::lock_guard lock(mu_);
  auto s = Find(name);
  if (!s.ok()) return s.status();
  ScheduleState& state = **s;
  int64_t fire_ns = NowNs() / kMs * kMs;
  std::string id = events::ScheduleFireId(name, fire_ns, /*manual=*/true);
  while (hooks_.exists(id)) {  // two triggers within a millisecond
    fire_ns += kMs;
    id = events::ScheduleFireId(name, fire_ns, /*manual=*/true);
  }
  KEEL_RETURN_IF_ERROR(hooks_.start(state.definition_hash, state.inputs, id, Actor(name)));
  KEEL_RETURN_IF_ERROR(
      Append(state, {events::ScheduleFired({state.stream, name, by.empty() ? "user" : by}, fire_ns,
                                           id, "started", true)}));
  return state;
}

Result<ScheduleState> ScheduleService::Get(const std::string& name) {
  std::lock_guard lock(mu_);
  auto s = Find(name);
  if (!s.ok()) return s.status();
  return **s;
}

std::vector<ScheduleState> ScheduleService::List() {
  std::lock_guard lock(mu_);
  std::vector<ScheduleState> out;
  for (const auto& [name, s] : schedules_) {
    if (s.status != ScheduleStatus::kDeleted) out.push_back(s);
  }
  return out;
}

}  // namespace keel::runtime
