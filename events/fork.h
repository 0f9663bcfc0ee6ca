#pragma once

// A fork's new stream, made from its source's log (docs/fork.md). Pure: the
// cut is found and the new events are built from events already read; the
// runtime checks that the process can go on from the cut, appends the stream
// in one append and resumes it like a process recovered after a crash.
//
// The new stream is a plain log, proved from seq 1 like any other:
//   seq 1          ProcessCreated naming the source and the cut
//                  (forked_from, forked_seq), with the fork's inputs
//   seq 2..cut     the source's events 2..cut, the same bodies and times,
//                  re-encoded for the new stream and re-chained
// so replaying it folds to the source's state just before the cut, with the
// fork's inputs, and everything after is the fork's own.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "events/codec.h"
#include "keel/status.h"

namespace keel::events {

// Where a fork cuts its source's log: just before the first event of a task's
// first start (its first TaskScheduled).
struct ForkCut {
  uint64_t seq = 0;  // the last seq of the source that the fork copies
  std::string task;  // the task whose start the cut precedes
  std::string step;
  std::string branch;
  uint32_t visit = 1;  // the task's visit of its step in its branch (goto loops)
};

// The cut of `log` (a process's stream from seq 1, in order) before `from`
// began: a task id (then `visit` must be 0), or a step id whose visit
// `visit` (0 means 1) began first in the log, in any branch. A task started
// again by a retry is cut before its first start, not the retry's.
// InvalidArgument for a visit given with a task id; Refused when no such task
// or visit of the step ever began in the log (the message says which visits
// did); Corruption for a log that does not start with ProcessCreated.
Result<ForkCut> FindForkCut(const std::vector<StoredEvent>& log, std::string_view from,
                            uint32_t visit);

// What a fork's ProcessCreated says beyond what it copies from the source's.
struct ForkStart {
  std::string_view id;           // the new process
  std::string_view actor;        // who forked it (the event's actor)
  std::string_view inputs_json;  // the fork's inputs (resolved), a JSON object
  int64_t time_ns = 0;           // its creation time; non-zero
};

// The fork's stream (see the top of this file), every draft stamped with its
// seq and time, ready for one append with expected seq 0. `log` holds at
// least the source's events 1..cut_seq. Events about the source process
// itself (its entity is the source's id) are about `start.id` in the copy.
// Corruption when `log` is shorter than cut_seq or does not start with
// ProcessCreated; Internal for a body this build cannot copy.
Result<std::vector<Draft>> ForkedStream(const std::vector<StoredEvent>& log, uint64_t cut_seq,
                                        const ForkStart& start);

// `event`'s body unchanged under a new header (stream, entity, actor), with
// placeholders for seq, global seq, time and prev hash like a builder's
// draft. Any body the schema defines is copied field by field (strings and
// scalars), so a field added to the schema later is copied too.
Result<Draft> CopyEvent(const StoredEvent& event, const Header& header);

}  // namespace keel::events
