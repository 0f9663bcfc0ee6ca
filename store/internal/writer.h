#pragma once

// The group-commit writer: one committer at a time owns every write of
// events. It drains all pending appends (up to max_batch_events), checks each
// one's expected seq, seals its events onto the stream's hash chain, and
// commits the events, their log entries and index changes in ONE WriteBatch
// and one db->Write (WAL synced in kSync mode). Only then does it complete the
// appends. The committer is the writer thread, or, when an append finds
// nobody committing and nothing queued, the appending thread itself (as in
// RocksDB's write group): a lone append then costs no thread hand-off.

#include <rocksdb/write_batch.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "store/event_store.h"
#include "store/internal/indexer.h"
#include "store/internal/rocks.h"
#include "store/internal/stream_cache.h"

namespace keel::store::internal {

// The writer's counters: written by the writer thread (relaxed atomics, one
// bucket increment per observation), read from any thread by Snapshot().
class WriterStats {
 public:
  // Records one completed append that waited `latency` since Submit.
  void ObserveAppend(std::chrono::nanoseconds latency);
  // Records one written group commit: `appends` committed, `events` in them,
  // `write` spent in db->Write (and the WAL sync).
  void ObserveBatch(uint64_t appends, uint64_t events, std::chrono::nanoseconds write);
  // Cumulative buckets and totals as StoreStats.
  StoreStats Snapshot() const;

 private:
  // Per-bucket (not cumulative) counts; Snapshot() accumulates them.
  std::array<std::atomic<uint64_t>, StoreStats::kLatencyBounds.size()> latency_{};
  std::atomic<uint64_t> latency_ns_sum_{0};
  std::array<std::atomic<uint64_t>, StoreStats::kBatchBounds.size()> batch_{};
  std::atomic<uint64_t> batch_appends_sum_{0};
  std::atomic<uint64_t> events_{0};
  std::atomic<uint64_t> write_ns_sum_{0};
};

class Writer {
 public:
  // `rocks` must outlive the writer.
  Writer(Rocks* rocks, const StoreOptions& options);
  ~Writer();

  // Loads the high-water mark and the status counters, starts the thread.
  Status Start();
  // Queues an append; `done` runs on the committing thread once it is
  // committed or failed: the writer thread, or the caller's own before Submit
  // returns (see above; also with Aborted when the writer has stopped).
  void Submit(AppendRequest request, AppendCallback done);
  // The same, waiting for the outcome.
  Result<AppendResult> SubmitAndWait(AppendRequest request);
  // Commits everything queued, then stops the thread. Idempotent.
  void Stop();
  // The counters; shared so that they outlive the writer (Stats after Close).
  std::shared_ptr<const WriterStats> stats() const { return stats_; }

 private:
  struct Pending {
    std::chrono::steady_clock::time_point submitted;
    AppendRequest request;
    AppendCallback done;  // or:
    std::promise<Result<AppendResult>>* promise = nullptr;
    Status error;  // refused before queueing
  };

  void Enqueue(Pending pending);
  void Run();
  void Commit(std::vector<Pending>& batch);
  // Checks one append against its stream and the batch so far; OK or why not.
  Status Admit(const AppendRequest& request, const StreamState& state,
               std::unordered_map<std::string, std::string>& claimed_keys);
  Result<StreamState> Load(const std::string& stream);
  // After a failed write the DB may or may not hold the batch: forget what
  // the writer believed and read it back.
  void Resync();
  Status LoadCounters();
  // Hands each append its result, recording its latency.
  void Complete(std::vector<Pending>& batch, std::vector<Result<AppendResult>>& results);

  Rocks* rocks_;
  const StoreOptions options_;
  rocksdb::WriteOptions write_options_;
  const std::shared_ptr<WriterStats> stats_ = std::make_shared<WriterStats>();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;  // GUARDED_BY(mu_)
  bool stopping_ = false;      // GUARDED_BY(mu_)
  bool committing_ = false;    // GUARDED_BY(mu_): a thread is in Commit
  std::thread thread_;

  // Owned by the committing thread (and Start before the writer runs).
  StreamCache cache_;
  std::unordered_map<std::string, uint64_t> counters_;  // index counter key -> value
  uint64_t last_global_seq_ = 0;
  int64_t last_time_ns_ = 0;
  // Why the last write failed (a full disk, say), empty after a success:
  // RocksDB then refuses every write until DB::Resume, which the next commit
  // calls first.
  std::string write_error_;
};

// Checks what Append can check without the stream's state: names and drafts.
Status ValidateRequest(const AppendRequest& request);

}  // namespace keel::store::internal
