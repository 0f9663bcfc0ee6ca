#pragma once

// A schedule as rebuilt from its own stream (the fold), and its JSON form.
// A schedule lives in stream "schedule/<name>": ScheduleCreated, then pauses,
// resumes, the fires it handled, and ScheduleDeleted (after which a
// ScheduleCreated may start it anew). Process ids never hold a '/', so no
// process stream can be taken for a schedule's. The fold is what the
// schedule service acts on, what `keel schedule show` prints and what
// `verify` checks, as events::Apply is for processes.

#include <cstdint>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "events/codec.h"
#include "keel/status.h"

namespace keel::events {

inline constexpr std::string_view kScheduleStreamPrefix = "schedule/";
// Schedule names: 1 to this many letters, digits, '_', '-' and '.', the first
// a letter or a digit, so that "sched-<name>-<time>" is a process id.
inline constexpr size_t kMaxScheduleNameLength = 64;

// "schedule/<name>".
std::string ScheduleStream(std::string_view name);
// True for a stream named as ScheduleStream names them.
bool IsScheduleStream(std::string_view stream);
// InvalidArgument naming `name` unless it is a schedule name (above).
Status CheckScheduleName(std::string_view name);

// The process id of a fire: "sched-<name>-20261205T101500Z" for the fire
// time (whole seconds, UTC); a trigger's (`manual`) carries milliseconds:
// "sched-<name>-manual-20261205T101500123Z".
std::string ScheduleFireId(std::string_view name, int64_t fire_ns, bool manual);

enum class ScheduleStatus : uint8_t { kActive, kPaused, kDeleted };
const char* Name(ScheduleStatus s);  // "active", "paused", "deleted"

// What a fire does while the schedule's previous process still runs.
enum class Overlap : uint8_t {
  kSkip,         // nothing: the fire is recorded as skipped
  kBufferOne,    // it starts when the running process ends; at most one waits
  kBufferAll,    // every such fire waits and starts in turn
  kCancelOther,  // the running process is cancelled and the fire starts
  kAllowAll,     // it starts at once
};
const char* Name(Overlap o);  // "skip", "buffer_one", ...
std::optional<Overlap> ParseOverlap(std::string_view name);

struct ScheduleState {
  std::string name;  // empty until ScheduleCreated
  std::string stream;
  ScheduleStatus status = ScheduleStatus::kActive;
  std::string cron;  // empty for an interval
  int64_t every_ms = 0;
  std::string time_zone;
  std::string workflow;
  std::string definition_hash;
  nlohmann::json inputs = nlohmann::json::object();
  Overlap overlap = Overlap::kSkip;
  int64_t catchup_window_ms = 0;
  int64_t jitter_ms = 0;
  int64_t created_ns = 0, updated_ns = 0;
  // Every fire time at or before this has been handled or passed by; the
  // next fire is the rule's first after it. Starts at the creation time.
  int64_t cursor_ns = 0;
  std::deque<int64_t> buffered;  // fire times waiting for the running process, oldest first
  std::string last_process;      // the newest process a fire or trigger started
  int64_t last_fire_ns = 0;      // its fire time
  uint64_t started = 0, skipped = 0, missed = 0;
  uint64_t last_seq = 0;
  std::string last_hash;  // chain hash of last_seq (raw 32 bytes)

  bool created() const { return last_seq > 0; }
};

// Folds one event into `s`. Corruption (naming stream, seq and why) for an
// event the schedule's state does not allow: a gap in seqs, a first event
// that is not ScheduleCreated, a fire while paused or deleted, a fire time
// at or before the cursor, a process event. `s` is unchanged then.
Status ApplySchedule(ScheduleState& s, const StoredEvent& ev);

// The fold as JSON (what a snapshot of the stream would hold).
nlohmann::json ToJson(const ScheduleState& s);

// The first fire time after the schedule's cursor by its cron or interval;
// nullopt when it is not active or its rule never fires again.
std::optional<int64_t> NextFire(const ScheduleState& s);

// The schedule as `keel schedule show --json` and the HTTP API show it:
// ToJson plus `next_fire_at` (null unless active).
nlohmann::json ViewJson(const ScheduleState& s);

}  // namespace keel::events
