#include "store/internal/verifier.h"

#include <rocksdb/iterator.h>

#include <algorithm>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "events/codec.h"
#include "events/schedule.h"
#include "events/state.h"
#include "events/transitions.h"
#include "store/format.h"

namespace keel::store::internal {
namespace {

using events::ProcessStatus;

std::string_view View(const flatbuffers::String* s) {
  return s ? std::string_view(s->data(), s->size()) : std::string_view();
}

// Where an event claims to sit in the global log.
struct LogRef {
  uint64_t global_seq;
  uint32_t stream;  // index into Audit::streams_
  uint64_t seq;
};

// What the index should hold, tallied over every audited stream (store-wide
// audit): with each expected key present, equal counts mean no stale keys.
struct Tally {
  uint64_t records = 0, idempotency = 0, timers = 0;
  std::map<ProcessStatus, uint64_t> by_status;
  std::map<std::pair<std::string, ProcessStatus>, uint64_t> by_workflow_status;
  std::map<std::string, uint64_t> by_workflow;
  std::unordered_set<std::string> timer_keys;
};

class Audit {
 public:
  explicit Audit(Rocks* rocks) : rocks_(rocks), db_(rocks->db()) {
    // A follower's view does not move during the audit; the primary's does.
    if (!rocks->follower()) snapshot_ = db_->GetSnapshot();
    ro_.snapshot = snapshot_;
  }
  ~Audit() {
    if (snapshot_) db_->ReleaseSnapshot(snapshot_);
  }

  Status One(std::string_view stream);
  Status All();
  std::vector<Problem> TakeProblems() { return std::move(problems_); }

 private:
  // The audit of one stream while its events go by in seq order.
  struct StreamAudit {
    std::string stream;
    uint64_t next_seq = 1;
    std::string prev_hash = std::string(events::kHashSize, '\0');
    events::ProcessState state;
    // A schedule's stream (events/schedule.h) is folded by its own fold.
    bool schedule = false;
    events::ScheduleState schedule_state;
    bool fold_ok = true;
    bool created = false;  // seq 1 is a ProcessCreated
    int64_t created_ns = 0;
    std::string workflow, idempotency_key;
    std::vector<std::pair<uint64_t, std::string>> snapshots;  // (seq, value), seq order
    size_t next_snapshot = 0;
    std::unordered_set<std::string> armed_timers;         // format::TimerKey
    std::vector<std::pair<uint64_t, uint64_t>> log_refs;  // (global_seq, seq)
  };

  void Report(std::string stream, uint64_t seq, std::string what) {
    problems_.push_back({std::move(stream), seq, std::move(what)});
  }
  Status Begin(StreamAudit& audit);
  void OnEvent(StreamAudit& audit, uint64_t key_seq, std::string value);
  void CheckSnapshot(StreamAudit& audit, uint64_t seq, const std::string& value);
  Status End(StreamAudit& audit, Tally* tally);
  bool Exists(Cf cf, const std::string& key, std::string* value = nullptr);
  Status CheckLogOfStream(const StreamAudit& audit);
  Status CheckLog(std::vector<LogRef>& refs);
  Status CheckOrphanSnapshots();
  Status CheckIndex(const Tally& tally);
  Status FindStaleKeys(char tag, const Tally& tally);

  Rocks* rocks_;
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snapshot_ = nullptr;
  rocksdb::ReadOptions ro_;
  std::vector<Problem> problems_;
  std::vector<std::string> streams_;  // store-wide audit: every stream, in key order
};

Status Audit::Begin(StreamAudit& audit) {
  std::string prefix = format::StreamPrefix(audit.stream);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro_, rocks_->cf(kSnapshots)));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    std::string_view stream;
    uint64_t seq = 0;
    if (!format::ParseStreamKey(it->key().ToStringView(), &stream, &seq)) {
      Report(audit.stream, 0, "malformed snapshot key");
      continue;
    }
    audit.snapshots.emplace_back(seq, it->value().ToString());
  }
  return ToStatus(it->status(), "read snapshots of " + audit.stream);
}

void Audit::OnEvent(StreamAudit& audit, uint64_t key_seq, std::string value) {
  const std::string& stream = audit.stream;
  if (key_seq != audit.next_seq) {
    Report(stream, key_seq,
           "seq gap: expected " + std::to_string(audit.next_seq) + ", found " +
               std::to_string(key_seq));
    audit.fold_ok = false;  // the fold cannot skip events
  }
  audit.next_seq = key_seq + 1;
  std::string stored_hash =
      value.size() >= events::kHashSize ? value.substr(value.size() - events::kHashSize) : "";
  Result<events::StoredEvent> decoded = events::StoredEvent::Decode(std::move(value));
  if (!decoded.ok()) {
    Report(stream, key_seq, "undecodable event: " + decoded.status().ToString());
    audit.fold_ok = false;
    audit.prev_hash = stored_hash;  // the next event still links to the stored hash
    return;
  }
  const events::StoredEvent& event = *decoded;
  if (event.stream() != stream || event.seq() != key_seq) {
    Report(stream, key_seq,
           "event stored under " + stream + "/" + std::to_string(key_seq) + " says it is " +
               std::string(event.stream()) + "/" + std::to_string(event.seq()));
  }
  if (event.prev_hash() != audit.prev_hash) {
    Report(stream, key_seq, "prev_hash is not the previous event's hash (chain broken)");
  }
  if (!event.HashMatches()) {
    Report(stream, key_seq, "hash does not match the event bytes (altered event)");
  }
  audit.prev_hash = std::string(event.hash());
  audit.log_refs.emplace_back(event.global_seq(), key_seq);

  using E = events::EventType;
  const fb::Envelope& env = event.envelope();
  switch (event.type()) {
    case E::ProcessCreated:
      if (key_seq == 1) {
        const auto* body = env.body_as_ProcessCreated();
        audit.created = true;
        audit.created_ns = event.time_ns();
        audit.workflow = View(body->workflow());
        audit.idempotency_key = View(body->idempotency_key());
      }
      break;
    case E::TimerScheduled: {
      const auto* body = env.body_as_TimerScheduled();
      audit.armed_timers.insert(format::TimerKey(body->due_ns(), stream, View(body->timer())));
      break;
    }
    case E::TimerFired: {
      const auto* body = env.body_as_TimerFired();
      audit.armed_timers.erase(format::TimerKey(body->due_ns(), stream, View(body->timer())));
      break;
    }
    case E::TimerCancelled: {
      const auto* body = env.body_as_TimerCancelled();
      audit.armed_timers.erase(format::TimerKey(body->due_ns(), stream, View(body->timer())));
      break;
    }
    default:
      break;
  }

  if (audit.fold_ok) {
    Status applied = audit.schedule ? events::ApplySchedule(audit.schedule_state, event)
                                    : events::Apply(audit.state, event);
    if (!applied.ok()) {
      Report(stream, key_seq, "the fold refuses the event: " + applied.ToString());
      audit.fold_ok = false;
    }
  }
  while (audit.next_snapshot < audit.snapshots.size() &&
         audit.snapshots[audit.next_snapshot].first <= key_seq) {
    const auto& [seq, snapshot] = audit.snapshots[audit.next_snapshot++];
    if (seq == key_seq && audit.fold_ok) CheckSnapshot(audit, seq, snapshot);
  }
}

void Audit::CheckSnapshot(StreamAudit& audit, uint64_t seq, const std::string& value) {
  uint64_t inner_seq = 0;
  std::string state_json;
  if (Status s = format::DecodeSnapshot(value, &inner_seq, &state_json); !s.ok()) {
    Report(audit.stream, seq, "snapshot: " + s.ToString());
    return;
  }
  if (inner_seq != seq) {
    Report(
        audit.stream, seq,
        "snapshot stored at seq " + std::to_string(seq) + " says seq " + std::to_string(inner_seq));
  }
  nlohmann::json stored = nlohmann::json::parse(state_json, nullptr, /*allow_exceptions=*/false);
  if (stored.is_discarded()) {
    Report(audit.stream, seq, "snapshot state_json is not JSON");
    return;
  }
  nlohmann::json folded =
      audit.schedule ? events::ToJson(audit.schedule_state) : events::ToJson(audit.state);
  if (stored != folded) {
    nlohmann::json patch = nlohmann::json::diff(folded, stored);
    std::string where = patch.empty() ? "" : patch[0].value("path", "");
    Report(audit.stream, seq, "snapshot differs from the fold at " + where);
  }
}

bool Audit::Exists(Cf cf, const std::string& key, std::string* value) {
  std::string scratch;
  return db_->Get(ro_, rocks_->cf(cf), key, value ? value : &scratch).ok();
}

Status Audit::End(StreamAudit& audit, Tally* tally) {
  const std::string& stream = audit.stream;
  for (size_t i = audit.next_snapshot; i < audit.snapshots.size(); ++i) {
    Report(stream, audit.snapshots[i].first,
           "snapshot beyond the stream's last seq " + std::to_string(audit.next_seq - 1));
  }
  std::string value;
  bool has_record = Exists(kIndex, format::ProcessKey(stream), &value);
  if (!audit.created) {
    if (has_record) Report(stream, 0, "index record for a stream without ProcessCreated");
    return Status::OK();
  }
  if (!has_record) {
    Report(stream, 0, "process missing from the index");
    return Status::OK();
  }
  std::optional<format::ProcessRecord> record = format::DecodeProcessRecord(value);
  if (!record) {
    Report(stream, 0, "malformed index record");
    return Status::OK();
  }
  if (audit.fold_ok && record->status != audit.state.status) {
    Report(stream, 0,
           std::string("index says status ") + events::Name(record->status) + ", the fold says " +
               events::Name(audit.state.status));
  }
  if (record->created_ns != audit.created_ns || record->workflow != audit.workflow ||
      record->idempotency_key != audit.idempotency_key) {
    Report(stream, 0, "index record disagrees with ProcessCreated");
  }
  const int64_t created = record->created_ns;
  const std::pair<std::string, const char*> keys[] = {
      {format::StatusKey(record->status, created, stream), "status"},
      {format::CreationKey(created, stream), "creation"},
      {format::WorkflowKey(record->workflow, created, stream), "workflow"},
      {format::WorkflowStatusKey(record->workflow, record->status, created, stream),
       "workflow+status"},
  };
  for (const auto& [key, name] : keys) {
    if (!Exists(kIndex, key)) Report(stream, 0, std::string("missing ") + name + " index entry");
  }
  if (!record->idempotency_key.empty()) {
    std::string owner;
    if (!Exists(kIndex, format::IdempotencyKey(record->idempotency_key), &owner) ||
        owner != stream) {
      Report(stream, 0, "idempotency key " + record->idempotency_key + " does not name it");
    }
  }
  for (const auto& key : audit.armed_timers) {
    if (!Exists(kIndex, key)) Report(stream, 0, "armed timer missing from the due-timer index");
  }
  if (tally) {
    ++tally->records;
    ++tally->by_status[record->status];
    ++tally->by_workflow[record->workflow];
    ++tally->by_workflow_status[{record->workflow, record->status}];
    if (!record->idempotency_key.empty()) ++tally->idempotency;
    tally->timers += audit.armed_timers.size();
    tally->timer_keys.insert(audit.armed_timers.begin(), audit.armed_timers.end());
  } else {
    // One stream: its stale timer entries can only be found by a scan.
    std::string prefix(1, format::kIndexTimer);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro_, rocks_->cf(kIndex)));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      int64_t due;
      std::string_view s, timer;
      if (format::ParseTimerKey(it->key().ToStringView(), &due, &s, &timer) && s == stream &&
          !audit.armed_timers.count(it->key().ToString())) {
        Report(stream, 0, "due-timer index holds timer " + std::string(timer) + " not armed");
      }
    }
    KEEL_RETURN_IF_ERROR(ToStatus(it->status(), "read timer index"));
  }
  return Status::OK();
}

Status Audit::CheckLogOfStream(const StreamAudit& audit) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro_, rocks_->cf(kLog)));
  // The entry at `it` when it holds the event's global seq: a stream's events
  // come in runs, one entry per append.
  uint64_t first = 0, last = 0;
  format::LogRun run;
  for (const auto& [global_seq, seq] : audit.log_refs) {
    if (global_seq < first || global_seq > last) {
      it->SeekForPrev(format::LogKey(global_seq));
      first = last = 0;
      if (it->Valid()) {
        auto key = format::DecodeU64(it->key().ToStringView());
        if (key && format::ParseLogValue(it->value().ToStringView(), &run)) {
          first = *key;
          last = first + run.count - 1;
        }
      }
      KEEL_RETURN_IF_ERROR(ToStatus(it->status(), "read log"));
    }
    if (global_seq < first || global_seq > last) {
      Report(audit.stream, seq, "no log entry for global seq " + std::to_string(global_seq));
    } else if (run.stream != audit.stream || run.seq + (global_seq - first) != seq) {
      Report(audit.stream, seq,
             "log entry " + std::to_string(global_seq) + " points at another event");
    }
  }
  return Status::OK();
}

Status Audit::One(std::string_view stream) {
  StreamAudit audit;
  audit.stream = std::string(stream);
  audit.schedule = events::IsScheduleStream(stream);
  KEEL_RETURN_IF_ERROR(Begin(audit));
  std::string prefix = format::StreamPrefix(stream);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro_, rocks_->cf(kEvents)));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    std::string_view s;
    uint64_t seq = 0;
    if (!format::ParseStreamKey(it->key().ToStringView(), &s, &seq)) {
      Report(audit.stream, 0, "malformed event key");
      continue;
    }
    OnEvent(audit, seq, it->value().ToString());
  }
  KEEL_RETURN_IF_ERROR(ToStatus(it->status(), "read stream " + audit.stream));
  if (audit.next_seq == 1) {
    if (!audit.snapshots.empty()) Report(audit.stream, 0, "snapshots of a stream with no events");
    if (Exists(kIndex, format::ProcessKey(stream))) {
      Report(audit.stream, 0, "index record of a stream with no events");
    }
    return Status::OK();
  }
  KEEL_RETURN_IF_ERROR(End(audit, nullptr));
  return CheckLogOfStream(audit);
}

Status Audit::All() {
  Tally tally;
  std::vector<LogRef> refs;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro_, rocks_->cf(kEvents)));
  std::unique_ptr<StreamAudit> audit;
  auto finish = [&]() -> Status {
    if (!audit) return Status::OK();
    KEEL_RETURN_IF_ERROR(End(*audit, &tally));
    auto index = static_cast<uint32_t>(streams_.size());
    streams_.push_back(audit->stream);
    for (const auto& [global_seq, seq] : audit->log_refs) refs.push_back({global_seq, index, seq});
    audit.reset();
    return Status::OK();
  };
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view stream;
    uint64_t seq = 0;
    if (!format::ParseStreamKey(it->key().ToStringView(), &stream, &seq)) {
      Report("", 0, "malformed event key of " + std::to_string(it->key().size()) + " bytes");
      continue;
    }
    if (!audit || audit->stream != stream) {
      KEEL_RETURN_IF_ERROR(finish());
      audit = std::make_unique<StreamAudit>();
      audit->stream = std::string(stream);
      audit->schedule = events::IsScheduleStream(stream);
      KEEL_RETURN_IF_ERROR(Begin(*audit));
    }
    OnEvent(*audit, seq, it->value().ToString());
  }
  KEEL_RETURN_IF_ERROR(ToStatus(it->status(), "read events"));
  KEEL_RETURN_IF_ERROR(finish());
  KEEL_RETURN_IF_ERROR(CheckLog(refs));
  KEEL_RETURN_IF_ERROR(CheckOrphanSnapshots());
  return CheckIndex(tally);
}

Status Audit::CheckLog(std::vector<LogRef>& refs) {
  std::sort(refs.begin(), refs.end(),
            [](const LogRef& a, const LogRef& b) { return a.global_seq < b.global_seq; });
  for (size_t i = 1; i < refs.size(); ++i) {
    if (refs[i].global_seq == refs[i - 1].global_seq) {
      Report(streams_[refs[i].stream], refs[i].seq,
             "global seq " + std::to_string(refs[i].global_seq) + " also used by " +
                 streams_[refs[i - 1].stream] + "/" + std::to_string(refs[i - 1].seq));
    }
  }
  size_t next = 0;
  uint64_t previous = 0;
  const uint64_t last_ref = refs.empty() ? 0 : refs.back().global_seq;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro_, rocks_->cf(kLog)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto first = format::DecodeU64(it->key().ToStringView());
    format::LogRun run;
    if (!first || !format::ParseLogValue(it->value().ToStringView(), &run)) {
      Report("", 0, "malformed log entry");
      continue;
    }
    if (*first != previous + 1) {
      Report("", 0,
             "global log gap: " + std::to_string(previous) + " then " + std::to_string(*first));
    }
    previous = *first + run.count - 1;
    if (previous > last_ref) {  // a damaged count: say so once, not per missing event
      Report(std::string(run.stream), run.seq,
             "log entry " + std::to_string(*first) + " runs to global seq " +
                 std::to_string(previous) + ", past the last event's " + std::to_string(last_ref));
    }
    for (uint64_t global_seq = *first; global_seq <= std::min(previous, last_ref); ++global_seq) {
      const uint64_t seq = run.seq + (global_seq - *first);
      while (next < refs.size() && refs[next].global_seq < global_seq) {
        Report(streams_[refs[next].stream], refs[next].seq,
               "no log entry for global seq " + std::to_string(refs[next].global_seq));
        ++next;
      }
      if (next < refs.size() && refs[next].global_seq == global_seq) {
        if (streams_[refs[next].stream] != run.stream || refs[next].seq != seq) {
          Report(streams_[refs[next].stream], refs[next].seq,
                 "log entry " + std::to_string(global_seq) + " points at " +
                     std::string(run.stream) + "/" + std::to_string(seq));
        }
        while (next < refs.size() && refs[next].global_seq == global_seq) ++next;
      } else {
        Report(std::string(run.stream), seq,
               "log entry " + std::to_string(global_seq) + " points at a missing event");
      }
    }
  }
  KEEL_RETURN_IF_ERROR(ToStatus(it->status(), "read log"));
  for (; next < refs.size(); ++next) {
    Report(streams_[refs[next].stream], refs[next].seq,
           "no log entry for global seq " + std::to_string(refs[next].global_seq));
  }
  std::string meta;
  if (Exists(kMeta, format::kMetaLastGlobalSeq, &meta)) {
    auto last = format::DecodeU64(meta);
    if (!last || *last < previous) {
      Report("", 0, "meta last_global_seq is behind the log (" + std::to_string(previous) + ")");
    }
  }
  return Status::OK();
}

Status Audit::CheckOrphanSnapshots() {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro_, rocks_->cf(kSnapshots)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view stream;
    uint64_t seq = 0;
    if (!format::ParseStreamKey(it->key().ToStringView(), &stream, &seq)) {
      Report("", 0, "malformed snapshot key");
      continue;
    }
    // streams_ is in key order, which for NUL-free ids is byte order.
    if (!std::binary_search(streams_.begin(), streams_.end(), stream)) {
      Report(std::string(stream), seq, "snapshot of a stream with no events");
    }
  }
  return ToStatus(it->status(), "read snapshots");
}

Status Audit::CheckIndex(const Tally& tally) {
  std::map<char, uint64_t> keys;  // per tag
  std::map<ProcessStatus, uint64_t> status_keys;
  std::vector<std::pair<std::string, uint64_t>> counters;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro_, rocks_->cf(kIndex)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view key = it->key().ToStringView();
    ++keys[key[0]];
    if (key[0] == format::kIndexByStatus && key.size() > 1) {
      ++status_keys[static_cast<ProcessStatus>(key[1])];
    }
    if (key[0] == format::kIndexStatusCount || key[0] == format::kIndexWorkflowStatusCount) {
      auto v = format::DecodeU64(it->value().ToStringView());
      counters.emplace_back(std::string(key), v.value_or(UINT64_MAX));
    }
  }
  KEEL_RETURN_IF_ERROR(ToStatus(it->status(), "read index"));

  std::map<std::string, uint64_t> expected_counters;
  for (const auto& [status, n] : tally.by_status) {
    expected_counters[format::StatusCountKey(status)] = n;
  }
  for (const auto& [wf_status, n] : tally.by_workflow_status) {
    expected_counters[format::WorkflowStatusCountKey(wf_status.first, wf_status.second)] = n;
  }
  for (const auto& [key, value] : counters) {
    auto found = expected_counters.find(key);
    uint64_t expected = found == expected_counters.end() ? 0 : found->second;
    if (value != expected) {
      Report("", 0,
             "index counter " + format::EscapeKey(key) + " is " + std::to_string(value) +
                 ", the events say " + std::to_string(expected));
    }
    if (found != expected_counters.end()) expected_counters.erase(found);
  }
  for (const auto& [key, expected] : expected_counters) {
    if (expected != 0) {
      Report("", 0,
             "index counter " + format::EscapeKey(key) + " missing (expected " +
                 std::to_string(expected) + ")");
    }
  }

  const std::pair<char, uint64_t> expected_keys[] = {
      {format::kIndexProcess, tally.records},
      {format::kIndexByStatus, tally.records},
      {format::kIndexByCreation, tally.records},
      {format::kIndexByWorkflow, tally.records},
      {format::kIndexByWorkflowStatus, tally.records},
      {format::kIndexIdempotency, tally.idempotency},
      {format::kIndexTimer, tally.timers},
  };
  for (const auto& [tag, expected] : expected_keys) {
    // Fewer keys than expected: the per-stream checks named the missing ones.
    if (keys[tag] > expected) KEEL_RETURN_IF_ERROR(FindStaleKeys(tag, tally));
  }
  return Status::OK();
}

// Slow path, only when a count is off: names each index key of `tag` that no
// stream's record or armed timers account for.
Status Audit::FindStaleKeys(char tag, const Tally& tally) {
  std::string prefix(1, tag);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro_, rocks_->cf(kIndex)));
  size_t found = 0;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    std::string key = it->key().ToString();
    if (tag == format::kIndexTimer) {
      int64_t due;
      std::string_view stream, timer;
      if (!format::ParseTimerKey(key, &due, &stream, &timer) || !tally.timer_keys.count(key)) {
        Report(std::string(stream), 0,
               "due-timer index holds timer " + std::string(timer) + " that is not armed");
        ++found;
      }
      continue;
    }
    std::string stream;
    if (tag == format::kIndexProcess) {
      stream = key.substr(1);
    } else if (tag == format::kIndexIdempotency) {
      stream = it->value().ToString();
    } else if (tag == format::kIndexByStatus) {
      stream = std::string(format::StreamAfterCreated(key, 2));
    } else if (tag == format::kIndexByCreation) {
      stream = std::string(format::StreamAfterCreated(key, 1));
    } else {
      size_t zero = key.find('\0');
      size_t fixed = tag == format::kIndexByWorkflow ? zero + 1 : zero + 2;
      stream = zero == std::string::npos ? "" : std::string(format::StreamAfterCreated(key, fixed));
    }
    std::string value;
    std::optional<format::ProcessRecord> record;
    if (!stream.empty() && Exists(kIndex, format::ProcessKey(stream), &value)) {
      record = format::DecodeProcessRecord(value);
    }
    bool ok = false;
    if (record && std::binary_search(streams_.begin(), streams_.end(), stream)) {
      const int64_t c = record->created_ns;
      if (tag == format::kIndexProcess) ok = true;
      if (tag == format::kIndexIdempotency) ok = key.substr(1) == record->idempotency_key;
      if (tag == format::kIndexByStatus) ok = key == format::StatusKey(record->status, c, stream);
      if (tag == format::kIndexByCreation) ok = key == format::CreationKey(c, stream);
      if (tag == format::kIndexByWorkflow)
        ok = key == format::WorkflowKey(record->workflow, c, stream);
      if (tag == format::kIndexByWorkflowStatus) {
        ok = key == format::WorkflowStatusKey(record->workflow, record->status, c, stream);
      }
    }
    if (!ok) {
      Report(stream, 0, "stale index entry " + format::EscapeKey(key));
      ++found;
    }
  }
  KEEL_RETURN_IF_ERROR(ToStatus(it->status(), "read index"));
  if (found == 0) {
    Report("", 0, std::string("index has more entries of kind '") + tag + "' than processes");
  }
  return Status::OK();
}

}  // namespace

Result<std::vector<Problem>> Verify(Rocks* rocks, std::string_view stream) {
  Audit audit(rocks);
  KEEL_RETURN_IF_ERROR(stream.empty() ? audit.All() : audit.One(stream));
  return audit.TakeProblems();
}

}  // namespace keel::store::internal
