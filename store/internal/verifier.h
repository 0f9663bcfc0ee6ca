#pragma once

// The audit behind EventStore::Verify. Per stream: every value decodes, seqs
// run 1, 2, 3... without gaps, each prev_hash is the previous event's chain
// hash and each hash matches, the fold (events::Apply) accepts every event,
// each snapshot equals events::ToJson of the fold at its seq, every event has
// its log entry, and the index record, status keys and due timers agree with
// the events. Store-wide (when auditing everything): the log is dense and
// points only at existing events, and the index holds no stale keys and
// correct counters.

#include <string_view>
#include <vector>

#include "store/event_store.h"
#include "store/internal/rocks.h"

namespace keel::store::internal {

// One stream, or every stream when `stream` is empty. Reads a consistent
// RocksDB snapshot of `rocks`, which must outlive the call.
Result<std::vector<Problem>> Verify(Rocks* rocks, std::string_view stream);

}  // namespace keel::store::internal
