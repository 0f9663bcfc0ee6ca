#pragma once

// A process's state as the log makes it: its latest snapshot, if one can be
// read, and the events after it folded on top.

#include <cstdint>
#include <string>

#include "events/schedule.h"
#include "events/state.h"
#include "keel/status.h"
#include "store/event_store.h"

namespace keel::store {

// The state of process `id` as of `to_seq` (the latest by default). A
// snapshot that cannot be read is passed by and the whole stream replayed:
// snapshots are projections of the log, which alone decides. `tail`, when
// given, receives how many events were folded on top of the snapshot.
// NotFound "no process with id '<id>'" for a stream with no events.
Result<events::ProcessState> LoadState(EventStore& store, const std::string& id,
                                       uint64_t to_seq = UINT64_MAX, uint64_t* tail = nullptr);

// Schedule `name` as its stream makes it, folded from the first event (a
// schedule's stream holds one event per fire it handled). NotFound "no
// schedule named '<name>'" for a stream with no events; a deleted schedule
// is returned as such.
Result<events::ScheduleState> LoadSchedule(EventStore& store, std::string_view name);

}  // namespace keel::store
