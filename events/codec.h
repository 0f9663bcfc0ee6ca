#pragma once

// Encoding of events: builders that make an unsealed Envelope, the seal that
// the store's writer applies at commit, and the verified decode of a stored
// value. Pure code, no I/O.
//
// Stored value format (one RocksDB value in the `events` column family):
//   [Envelope flatbuffer bytes][32-byte SHA-256 chain hash]
// chain hash = SHA-256(prev_hash (32 bytes) || Envelope bytes), where prev_hash
// is the chain hash of the stream's previous event (all zero for seq 1) and is
// also stored inside the Envelope. A trailer rather than an Envelope field
// because the hash covers the Envelope bytes themselves.

#include <cstdint>
#include <string>
#include <string_view>

#include "keel/status.h"
#include "schema/keel_generated.h"

namespace keel::events {

using EventType = fb::Event;

// Newest schema version this build writes and understands.
inline constexpr uint16_t kSchemaVersion = 1;
inline constexpr size_t kHashSize = 32;

// "TaskCompleted" for EventType::TaskCompleted; "" for NONE or out of range.
const char* EventTypeName(EventType type);
// The inverse of EventTypeName; EventType::NONE when unknown.
EventType EventTypeFromName(std::string_view name);

// Who an event is about and who caused it.
struct Header {
  std::string_view stream;            // the process id
  std::string_view entity;            // process, branch or task id
  std::string_view actor = "system";  // "system" or a user name
};

// An encoded event not yet in the log: an Envelope whose seq, global_seq,
// time_ns and prev_hash are placeholders until Seal() fills them.
struct Draft {
  EventType type = EventType::NONE;
  std::string bytes;  // Envelope flatbuffer
};

// Fills the placeholders in place and returns the stored value (Envelope bytes
// + chain hash). `prev_hash` is 32 bytes (all zero for the first event). A
// stamped draft keeps its time; `time_ns` stamps the others.
std::string Seal(Draft draft, uint64_t seq, uint64_t global_seq, int64_t time_ns,
                 std::string_view prev_hash);

// Gives a draft its seq and time before it is appended, so that its author
// can fold it ahead of the append (the process actor plans a step's next
// events on the state its last events will make). `time_ns` must be non-zero.
void Stamp(Draft& draft, uint64_t seq, int64_t time_ns);

// SHA-256(prev_hash || envelope_bytes), 32 raw bytes.
std::string ChainHash(std::string_view prev_hash, std::string_view envelope_bytes);

// 64 lowercase hex digits for a 32-byte hash.
std::string HexHash(std::string_view hash);

// An event as read from the store: the verified stored value.
class StoredEvent {
 public:
  // Verifies the flatbuffer (never crashes on garbage) and the schema version:
  // Corruption for truncated or malformed bytes, NotSupported for a newer
  // schema_version or an unknown body type.
  static Result<StoredEvent> Decode(std::string value);
  // A stamped draft as it will read once stored, but with no global seq and
  // an all-zero prev_hash and hash: only for folding it before it is durable.
  static StoredEvent Unsealed(const Draft& stamped);

  const fb::Envelope& envelope() const {
    return *flatbuffers::GetRoot<fb::Envelope>(value_.data());
  }
  std::string_view envelope_bytes() const { return {value_.data(), value_.size() - kHashSize}; }
  std::string_view hash() const { return {value_.data() + value_.size() - kHashSize, kHashSize}; }
  std::string_view prev_hash() const;
  const std::string& value() const { return value_; }

  EventType type() const { return envelope().body_type(); }
  uint64_t seq() const { return envelope().seq(); }
  uint64_t global_seq() const { return envelope().global_seq(); }
  int64_t time_ns() const { return envelope().time_ns(); }
  std::string_view stream() const;
  std::string_view entity() const;
  std::string_view actor() const;
  // True when hash() == ChainHash(prev_hash(), envelope_bytes()).
  bool HashMatches() const;

 private:
  explicit StoredEvent(std::string value) : value_(std::move(value)) {}
  std::string value_;
};

// ---- builders: one per event type (fields as in schema/keel.fbs) ----------
// String fields that hold JSON (`*_json`) must be valid JSON text.

// Where a queued process waits before it starts (docs/queues.md); an empty
// queue: it starts at once.
struct QueuePlacement {
  std::string_view queue;
  int32_t priority = 0;
  std::string_view key;
};
Draft ProcessCreated(const Header& h, std::string_view workflow, std::string_view definition_hash,
                     std::string_view inputs_json, std::string_view vars_json,
                     std::string_view idempotency_key, const QueuePlacement& queue = {});
Draft ProcessStarted(const Header& h);
Draft ProcessPauseRequested(const Header& h, std::string_view reason, bool now = false);
Draft ProcessPaused(const Header& h, std::string_view reason);
Draft ProcessResumeRequested(const Header& h, std::string_view reason);
Draft ProcessResumed(const Header& h, std::string_view reason);
Draft ProcessCancelRequested(const Header& h, std::string_view reason);
Draft ProcessCancelled(const Header& h, std::string_view reason);
Draft ProcessWaiting(const Header& h);
Draft ProcessCompleted(const Header& h, std::string_view outputs_json);
Draft ProcessFailed(const Header& h, std::string_view error);
Draft ProcessRetried(const Header& h, std::string_view reason);

struct BranchStart {
  std::string_view parent, fork_task, name;
  int32_t index = -1;
  std::string_view item_json, vars_json = "{}", first_step;
};
Draft BranchStarted(const Header& h, const BranchStart& b);
Draft BranchWaiting(const Header& h, std::string_view task);
Draft BranchSuspended(const Header& h, std::string_view task, std::string_view kind);
Draft BranchResumed(const Header& h);
Draft BranchPaused(const Header& h);
Draft BranchCompleted(const Header& h, std::string_view output_json);
Draft BranchFailed(const Header& h, std::string_view error);
Draft BranchCancelled(const Header& h, std::string_view reason);

// `rule`: the policy rule whose decision allowed the task (empty: none matched).
Draft TaskScheduled(const Header& h, std::string_view step, std::string_view branch,
                    std::string_view input_json, uint32_t visit = 1, std::string_view rule = {});
Draft TaskStarted(const Header& h, uint32_t attempt, std::string_view idempotency_key);
Draft TaskWaitingForApproval(const Header& h, std::string_view prompt, std::string_view rule,
                             int64_t expires_ns);
Draft TaskApproved(const Header& h, std::string_view by, std::string_view reason);
// `next`: the on_error step the branch goes to; empty = the branch fails.
Draft TaskRejected(const Header& h, std::string_view by, std::string_view reason,
                   std::string_view next = {});
Draft TaskBlocked(const Header& h, std::string_view rule, std::string_view reason);
Draft TaskRetryScheduled(const Header& h, uint32_t attempt, int64_t run_after_ns,
                         std::string_view error);
Draft TaskCompleted(const Header& h, std::string_view output_json, std::string_view next,
                    uint64_t signal_seq = 0);
Draft TaskFailed(const Header& h, std::string_view error, std::string_view output_json,
                 bool retryable, std::string_view next);
Draft TaskSkipped(const Header& h, std::string_view reason, std::string_view next);
Draft TaskCancelled(const Header& h, std::string_view reason);

Draft SignalReceived(const Header& h, std::string_view topic, std::string_view payload_json);
Draft TimerScheduled(const Header& h, std::string_view timer, int64_t due_ns, std::string_view kind,
                     std::string_view task);
Draft TimerFired(const Header& h, std::string_view timer, int64_t due_ns);
Draft TimerCancelled(const Header& h, std::string_view timer, int64_t due_ns);
Draft VariablesSet(const Header& h, std::string_view patch_json);

// Schedule events: `h.stream` is the schedule's stream, `h.entity` its name.
struct ScheduleDefinition {
  std::string_view cron;
  int64_t every_ms = 0;
  std::string_view time_zone, workflow, definition_hash, inputs_json = "{}", overlap;
  int64_t catchup_window_ms = 0, jitter_ms = 0;
};
Draft ScheduleCreated(const Header& h, const ScheduleDefinition& d);
Draft SchedulePaused(const Header& h, std::string_view reason);
Draft ScheduleResumed(const Header& h, std::string_view reason);
Draft ScheduleDeleted(const Header& h, std::string_view reason);
Draft ScheduleFired(const Header& h, int64_t fire_ns, std::string_view process,
                    std::string_view action, bool manual, std::string_view reason = {});
Draft ScheduleMissed(const Header& h, int64_t after_ns, int64_t until_ns, uint64_t count);
Draft ProcessAdmitted(const Header& h, std::string_view queue);

}  // namespace keel::events
