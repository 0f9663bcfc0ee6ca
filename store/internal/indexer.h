#pragma once

// Derives the index changes of one append from its events (store/format.h,
// index keys): ProcessCreated enters a process (record, creation, workflow,
// idempotency key, status pending); each later process event moves its status
// as events::Next says; Timer* events arm and disarm due-timer entries.

#include <rocksdb/write_batch.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "schema/keel_generated.h"
#include "store/internal/stream_cache.h"

namespace keel::store::internal {

// Status counter key (format::StatusCountKey, WorkflowStatusCountKey) -> change.
using CounterDeltas = std::unordered_map<std::string, int64_t>;

class Indexer {
 public:
  // `state` is the stream's state before the append; OnEvent updates its record.
  Indexer(std::string_view stream, StreamState* state, rocksdb::WriteBatch* batch,
          rocksdb::ColumnFamilyHandle* index, CounterDeltas* counters);

  // One sealed event of the append, in order. `time_ns` is its commit time.
  void OnEvent(const fb::Envelope& event, int64_t time_ns);
  // Writes the status keys, the record and the counter changes, once per append.
  void Finish();

 private:
  void Count(const format::ProcessRecord& record, int64_t delta);

  std::string_view stream_;
  StreamState* state_;
  rocksdb::WriteBatch* batch_;
  rocksdb::ColumnFamilyHandle* index_;
  CounterDeltas* counters_;
  bool existed_;  // indexed before this append
  events::ProcessStatus old_status_ = events::ProcessStatus::kPending;
};

}  // namespace keel::store::internal
