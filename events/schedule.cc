#include "events/schedule.h"

#include <algorithm>

#include "base/cron.h"
#include "base/time.h"
#include "events/internal/json_util.h"
#include "events/transitions.h"

namespace keel::events {
namespace {

using internal::View;
using json = nlohmann::json;
using E = EventType;

constexpr const char* kOverlapNames[] = {"skip", "buffer_one", "buffer_all", "cancel_other",
                                         "allow_all"};

std::string Compact(std::string time) {
  std::erase_if(time, [](char c) { return c == '-' || c == ':' || c == '.'; });
  return time;
}

Status Refuse(const StoredEvent& ev, const std::string& why) {
  return Status::Corruption("stream '" + std::string(ev.stream()) + "' seq " +
                            std::to_string(ev.seq()) + ": " + EventTypeName(ev.type()) +
                            " refused: " + why);
}

json TimeOrNull(int64_t ns) { return ns ? json(FormatTimeMs(ns)) : json(nullptr); }

// Why `ev` may not follow the state `s`; empty when it may.
std::string WhyNot(const ScheduleState& s, const StoredEvent& ev) {
  const fb::Envelope& env = ev.envelope();
  const E type = ev.type();
  if (EntityOf(type) != EntityKind::kSchedule) return "not a schedule's event";
  if (!IsScheduleStream(ev.stream())) return "not a schedule's stream";
  if (ev.entity() != ev.stream().substr(kScheduleStreamPrefix.size())) {
    return "entity '" + std::string(ev.entity()) + "' is not the schedule's name";
  }
  if (type == E::ScheduleCreated) {
    if (s.created() && s.status != ScheduleStatus::kDeleted) return "the schedule exists";
    const auto* b = env.body_as_ScheduleCreated();
    bool cron = b->cron() && b->cron()->size() > 0;
    if (cron == (b->every_ms() > 0)) return "needs either a cron or an interval";
    if (!ParseOverlap(View(b->overlap()))) return "unknown overlap policy";
    return {};
  }
  if (!s.created()) return "the schedule is not created yet";
  if (s.status == ScheduleStatus::kDeleted) return "the schedule is deleted";
  switch (type) {
    case E::SchedulePaused:
      return s.status == ScheduleStatus::kActive ? "" : "the schedule is paused";
    case E::ScheduleResumed:
      return s.status == ScheduleStatus::kPaused ? "" : "the schedule is not paused";
    case E::ScheduleDeleted:
      return {};
    case E::ScheduleFired: {
      const auto* b = env.body_as_ScheduleFired();
      std::string_view action = View(b->action());
      if (action != "started" && action != "skipped" && action != "buffered") {
        return "unknown action '" + std::string(action) + "'";
      }
      if (action == "started" && View(b->process()).empty()) return "a start names no process";
      if (b->manual()) return action == "started" ? "" : "a trigger is always started";
      if (s.status == ScheduleStatus::kPaused) return "the schedule is paused";
      if (action != "buffered" &&
          std::find(s.buffered.begin(), s.buffered.end(), b->fire_ns()) != s.buffered.end()) {
        return {};  // a buffered fire's turn
      }
      if (b->fire_ns() <= s.cursor_ns) return "fire time at or before the schedule's cursor";
      return {};
    }
    case E::ScheduleMissed: {
      const auto* b = env.body_as_ScheduleMissed();
      if (s.status == ScheduleStatus::kPaused) return "the schedule is paused";
      if (b->until_ns() <= s.cursor_ns) return "missed fires at or before the schedule's cursor";
      return {};
    }
    default:
      return "not a schedule's event";
  }
}

}  // namespace

std::string ScheduleStream(std::string_view name) {
  return std::string(kScheduleStreamPrefix) + std::string(name);
}

bool IsScheduleStream(std::string_view stream) {
  return stream.size() > kScheduleStreamPrefix.size() && stream.starts_with(kScheduleStreamPrefix);
}

Status CheckScheduleName(std::string_view name) {
  auto ok_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  };
  bool ok = !name.empty() && name.size() <= kMaxScheduleNameLength &&
            std::all_of(name.begin(), name.end(), ok_char) && name[0] != '_' && name[0] != '-' &&
            name[0] != '.';
  if (ok) return Status::OK();
  std::string shown(name.substr(0, 64));
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  }
  return Status::InvalidArgument("schedule name '" + shown + "' must be 1 to " +
                                 std::to_string(kMaxScheduleNameLength) +
                                 " letters, digits, '_', '-' or '.', starting with a letter or a "
                                 "digit");
}

std::string ScheduleFireId(std::string_view name, int64_t fire_ns, bool manual) {
  std::string id = "sched-" + std::string(name) + "-";
  if (manual) return id + "manual-" + Compact(FormatTimeMs(fire_ns));
  return id + Compact(FormatTime(fire_ns));
}

const char* Name(ScheduleStatus s) {
  switch (s) {
    case ScheduleStatus::kActive:
      return "active";
    case ScheduleStatus::kPaused:
      return "paused";
    case ScheduleStatus::kDeleted:
      return "deleted";
  }
  return "";
}

const char* Name(Overlap o) { return kOverlapNames[static_cast<int>(o)]; }

std::optional<Overlap> ParseOverlap(std::string_view name) {
  for (int i = 0; i < 5; ++i) {
    if (name == kOverlapNames[i]) return static_cast<Overlap>(i);
  }
  return std::nullopt;
}

Status ApplySchedule(ScheduleState& s, const StoredEvent& ev) {
  if (ev.seq() != s.last_seq + 1) {
    return Refuse(ev, "expected seq " + std::to_string(s.last_seq + 1));
  }
  if (s.created() && ev.stream() != s.stream) {
    return Refuse(ev, "the state is of stream '" + s.stream + "'");
  }
  if (std::string why = WhyNot(s, ev); !why.empty()) return Refuse(ev, why);

  const fb::Envelope& env = ev.envelope();
  const int64_t now = ev.time_ns();
  s.last_seq = ev.seq();
  s.last_hash.assign(ev.hash());
  s.updated_ns = now;
  switch (ev.type()) {
    case E::ScheduleCreated: {
      const auto* b = env.body_as_ScheduleCreated();
      uint64_t last_seq = s.last_seq;
      std::string last_hash = std::move(s.last_hash);
      s = ScheduleState{};
      s.last_seq = last_seq;
      s.last_hash = std::move(last_hash);
      s.name.assign(ev.entity());
      s.stream.assign(ev.stream());
      s.cron.assign(View(b->cron()));
      s.every_ms = b->every_ms();
      s.time_zone.assign(View(b->time_zone()));
      s.workflow.assign(View(b->workflow()));
      s.definition_hash.assign(View(b->definition_hash()));
      s.inputs = json::parse(View(b->inputs_json()), nullptr, false);
      if (s.inputs.is_discarded()) s.inputs = json::object();
      s.overlap = *ParseOverlap(View(b->overlap()));
      s.catchup_window_ms = b->catchup_window_ms();
      s.jitter_ms = b->jitter_ms();
      s.created_ns = s.updated_ns = s.cursor_ns = now;
      break;
    }
    case E::SchedulePaused:
      s.status = ScheduleStatus::kPaused;
      break;
    case E::ScheduleResumed:
      s.status = ScheduleStatus::kActive;
      s.cursor_ns = std::max(s.cursor_ns, now);  // what came due while paused is passed by
      break;
    case E::ScheduleDeleted:
      s.status = ScheduleStatus::kDeleted;
      s.buffered.clear();
      break;
    case E::ScheduleFired: {
      const auto* b = env.body_as_ScheduleFired();
      std::string_view action = View(b->action());
      const int64_t fire = b->fire_ns();
      if (action == "started") {
        ++s.started;
        s.last_process.assign(View(b->process()));
        s.last_fire_ns = fire;
        if (b->manual()) break;
      }
      if (action == "skipped") ++s.skipped;
      auto waiting = std::find(s.buffered.begin(), s.buffered.end(), fire);
      if (action != "buffered" && waiting != s.buffered.end()) {
        s.buffered.erase(waiting);  // its turn came; the cursor is past it
      } else {
        s.cursor_ns = fire;
        if (action == "buffered") s.buffered.push_back(fire);
      }
      break;
    }
    case E::ScheduleMissed: {
      const auto* b = env.body_as_ScheduleMissed();
      s.cursor_ns = b->until_ns();
      s.missed += b->count();
      break;
    }
    default:
      break;
  }
  return Status::OK();
}

nlohmann::json ToJson(const ScheduleState& s) {
  json buffered = json::array();
  for (int64_t t : s.buffered) buffered.push_back(FormatTimeMs(t));
  return {
      {"name", s.name},
      {"status", Name(s.status)},
      {"cron", s.cron.empty() ? json(nullptr) : json(s.cron)},
      {"every", s.every_ms ? json(FormatDurationMs(s.every_ms)) : json(nullptr)},
      {"time_zone", s.time_zone.empty() ? "UTC" : s.time_zone},
      {"workflow", s.workflow},
      {"definition_hash", s.definition_hash},
      {"inputs", s.inputs},
      {"overlap", Name(s.overlap)},
      {"catchup_window", FormatDurationMs(s.catchup_window_ms)},
      {"jitter", FormatDurationMs(s.jitter_ms)},
      {"created_at", TimeOrNull(s.created_ns)},
      {"updated_at", TimeOrNull(s.updated_ns)},
      {"handled_until", TimeOrNull(s.cursor_ns)},
      {"buffered", buffered},
      {"last_fire_at", TimeOrNull(s.last_fire_ns)},
      {"last_process", s.last_process.empty() ? json(nullptr) : json(s.last_process)},
      {"fires", {{"started", s.started}, {"skipped", s.skipped}, {"missed", s.missed}}},
      {"last_seq", s.last_seq},
  };
}

std::optional<int64_t> NextFire(const ScheduleState& s) {
  if (!s.created() || s.status != ScheduleStatus::kActive) return std::nullopt;
  auto rule = s.cron.empty() ? FireRule::Every(s.every_ms) : FireRule::Cron(s.cron, s.time_zone);
  if (!rule.ok()) return std::nullopt;
  return rule->NextAfter(s.cursor_ns);
}

nlohmann::json ViewJson(const ScheduleState& s) {
  json view = ToJson(s);
  view["next_fire_at"] = TimeOrNull(NextFire(s).value_or(0));
  return view;
}

}  // namespace keel::events
