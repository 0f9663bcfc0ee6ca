#pragma once

// The event store: an append-only log per process stream in RocksDB, with the
// global log, snapshots and indexes as projections written in the same batch.
// The only module that includes rocksdb/. Layouts: store/format.h.

#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "events/codec.h"
#include "events/transitions.h"
#include "keel/status.h"

namespace keel::store {

enum class Durability : uint8_t {
  kSync,   // fsync (WAL sync) per group commit; nothing acknowledged before it
  kAsync,  // WAL written, not synced: a machine crash may lose the newest appends
};

struct StoreOptions {
  std::string path;  // data dir; the RocksDB files live in path/db
  Durability durability = Durability::kSync;
  bool create_if_missing = true;
  size_t max_batch_events = 4096;       // group-commit cap per WriteBatch
  size_t stream_cache_entries = 65536;  // streams whose last seq/hash the writer keeps
  // An append that finds the writer idle is committed on the caller's thread
  // (no hand-off to the writer thread and back); false: always by the writer.
  bool commit_on_caller = true;
};

// One stream's append: all of its events or none.
struct AppendRequest {
  std::string stream;
  uint64_t expected_seq = 0;  // the stream's last seq the caller saw (0 = new)
  std::vector<events::Draft> events;
};

struct AppendResult {
  uint64_t first_seq = 0;  // seq of events[0]
  uint64_t last_seq = 0;
  uint64_t last_global_seq = 0;
  int64_t time_ns = 0;              // commit time: of every event not stamped before
  std::string last_hash;            // chain hash of the last event (32 bytes)
  std::vector<std::string> values;  // the sealed stored values, in order
};

using AppendCallback = std::function<void(Result<AppendResult>)>;

struct Page {
  size_t limit = 50;
  size_t offset = 0;
};

// What narrows a listing beyond status and workflow.
struct ListNarrowing {
  // Creation times kept: since_ns <= created_ns <= until_ns.
  int64_t since_ns = std::numeric_limits<int64_t>::min();
  int64_t until_ns = std::numeric_limits<int64_t>::max();
  std::string idempotency_key;  // "" = any; else at most the process it started

  bool all_times() const {
    return since_ns == std::numeric_limits<int64_t>::min() &&
           until_ns == std::numeric_limits<int64_t>::max();
  }
};

struct IdList {
  std::vector<std::string> ids;  // newest first
  uint64_t total = 0;            // all matches, ignoring the page
};

struct Snapshot {
  uint64_t seq = 0;
  std::string state_json;  // events::ToJson(ProcessState) as text
};

struct DueTimer {
  int64_t due_ns = 0;
  std::string stream;
  std::string timer;
};

// One problem that Verify found.
struct Problem {
  std::string stream;  // empty for store-wide problems
  uint64_t seq = 0;    // 0 when not about one event
  std::string what;
};

// What the group-commit writer has done since the store was opened (all zero
// for a read-only instance). Histograms are Prometheus-style: bucket i counts
// the observations <= its bound (cumulative); the last bound is +Inf, so the
// last bucket is the observation count.
struct StoreStats {
  // Upper bounds of the append latency buckets, in seconds.
  static constexpr std::array<double, 14> kLatencyBounds = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
      0.025,  0.05,    0.1,    0.25,  0.5,    1.0,   std::numeric_limits<double>::infinity()};
  // Upper bounds of the group-commit size buckets, in appends per WriteBatch.
  static constexpr std::array<double, 10> kBatchBounds = {
      1, 2, 4, 8, 16, 32, 64, 128, 256, std::numeric_limits<double>::infinity()};

  uint64_t appends = 0;  // appends completed (committed or failed)
  uint64_t events = 0;   // events committed
  uint64_t batches = 0;  // group commits written (one db->Write each)
  // Submit-to-completion latency of every completed append (count = appends).
  std::array<uint64_t, kLatencyBounds.size()> append_latency_buckets{};
  double append_latency_seconds_sum = 0;
  // Appends committed per group commit (count = batches).
  std::array<uint64_t, kBatchBounds.size()> batch_appends_buckets{};
  uint64_t batch_appends_sum = 0;
  // Time spent in db->Write (including the WAL sync in kSync mode).
  double write_seconds_sum = 0;
};

class EventStore {
 public:
  // Opens (creating if allowed) the store read-write. Only one read-write
  // instance may hold a data dir: Busy otherwise. NotSupported for a store of
  // a newer format, Corruption for a FORMAT file without a version, a damaged
  // write-ahead log (never cut: store/repair.h) or a missing table file; each
  // left untouched.
  static Result<std::unique_ptr<EventStore>> Open(const StoreOptions& options);

  // Opens a read-only secondary instance (RocksDB OpenAsSecondary) that never
  // blocks or stops a live writer; `scratch_dir` holds its own info log.
  // Call TryCatchUp() to see the writer's newest commits. Refuses what Open
  // refuses, with the same codes.
  static Result<std::unique_ptr<EventStore>> OpenReadOnly(const std::string& path,
                                                          const std::string& scratch_dir);

  // Waits for in-flight appends, then closes. Safe to call twice.
  virtual ~EventStore() = default;
  virtual Status Close() = 0;
  virtual bool read_only() const = 0;
  virtual Status TryCatchUp() = 0;

  // ---- writes (read-write instance only) ----

  // Appends atomically, with their `log` entries, index updates and chain
  // hashes, in a group commit shared with concurrent appends. Conflict (and
  // nothing written) when the stream's last seq != expected_seq, or when a
  // ProcessCreated's idempotency key already names another process.
  // InvalidArgument for no events, a stream id that is empty or holds NUL, a
  // Draft not from an events:: builder or for another stream, or a
  // ProcessCreated that is not the stream's first event. Returns only after
  // the batch is durable per the durability mode; IOError means the outcome
  // is unknown (re-read LastSeq). Refused on a read-only instance, Aborted
  // after Close.
  virtual Result<AppendResult> Append(AppendRequest request) = 0;
  // The same, without waiting for other appends: `done` runs once the batch
  // is durable (or failed), on the writer thread, or on the caller's before
  // AppendAsync returns when nothing else was being written (the caller then
  // waits for its own write). Must not block.
  virtual void AppendAsync(AppendRequest request, AppendCallback done) = 0;

  // Stores a snapshot of `stream` as of `seq` (overwrites one at the same seq)
  // and, in the same write, deletes all but the stream's newest `keep`
  // snapshots at or below `seq`, this one counted (0: deletes none), so that
  // a process keeps its newest few however long it lives. InvalidArgument
  // unless 1 <= seq <= LastSeq(stream).
  virtual Status SaveSnapshot(std::string_view stream, uint64_t seq, std::string_view state_json,
                              uint32_t keep = 0) = 0;
  // Deletes the stream's snapshots with seq < below_seq (events are never
  // deleted, so LastSeq is unaffected).
  virtual Status PruneSnapshots(std::string_view stream, uint64_t below_seq) = 0;
  // Stores a workflow definition under its content hash (idempotent).
  virtual Status PutDefinition(std::string_view hash, std::string_view definition_json) = 0;

  // ---- reads (both instances) ----

  // Events of `stream` with from_seq <= seq <= to_seq, at most `limit`.
  virtual Result<std::vector<events::StoredEvent>> ReadStream(std::string_view stream,
                                                              uint64_t from_seq = 1,
                                                              uint64_t to_seq = UINT64_MAX,
                                                              size_t limit = SIZE_MAX) = 0;
  // The ids of the streams that start with `prefix`, in key order: one seek
  // per stream, not a read of its events (the schedules' streams,
  // events::kScheduleStreamPrefix, which no index lists).
  virtual Result<std::vector<std::string>> ListStreams(std::string_view prefix) = 0;
  // Highest seq of the stream; 0 for a stream never written.
  virtual Result<uint64_t> LastSeq(std::string_view stream) = 0;
  // Global log: events with global_seq >= from (inclusive), at most `limit`.
  virtual Result<std::vector<events::StoredEvent>> ReadLog(uint64_t from_global_seq,
                                                           size_t limit) = 0;
  // Highest global seq; 0 for an empty store.
  virtual Result<uint64_t> LastGlobalSeq() = 0;

  // Newest snapshot with seq <= max_seq; nullopt when there is none.
  virtual Result<std::optional<Snapshot>> LatestSnapshot(std::string_view stream,
                                                         uint64_t max_seq = UINT64_MAX) = 0;
  virtual Result<std::optional<std::string>> GetDefinition(std::string_view hash) = 0;

  // Index lookups (kept in step with the log by Append). Empty filter = all.
  // A creation range is read from the index's time order, its total counted
  // over the range; an idempotency key is looked up.
  virtual Result<IdList> ListProcesses(std::optional<events::ProcessStatus> status,
                                       std::string_view workflow, Page page,
                                       const ListNarrowing& narrow = {}) = 0;
  // Processes whose status is not terminal (resume on start), oldest first.
  virtual Result<std::vector<std::string>> UnfinishedProcesses() = 0;
  virtual Result<std::optional<std::string>> FindByIdempotencyKey(std::string_view key) = 0;
  // Armed timers with due_ns <= until_ns, earliest first, at most `limit`.
  virtual Result<std::vector<DueTimer>> DueTimers(int64_t until_ns, size_t limit) = 0;
  // Current status of a process per the index; NotFound when unknown.
  virtual Result<events::ProcessStatus> StatusOf(std::string_view stream) = 0;

  // ---- audit ----

  // Checks `stream` (or every stream when empty): decoding, seq continuity,
  // chain hashes, legal transitions (the fold), every snapshot == the fold at
  // its seq, the log and index entries agree with the events. Returns every
  // problem found; an empty list means the audit passed.
  virtual Result<std::vector<Problem>> Verify(std::string_view stream = {}) = 0;

  // ---- observability ----

  // The writer's counters so far; cheap (relaxed atomic loads), callable from
  // any thread, also after Close. All zero on a read-only instance.
  virtual StoreStats Stats() const { return {}; }
};

}  // namespace keel::store
