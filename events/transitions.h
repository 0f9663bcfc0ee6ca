#pragma once

// The states of processes, branches and tasks (spelled as in DESIGN.md), and
// one transition table per entity: which event moves which state where.
// An event that the table does not allow is refused before it is written and
// reported by verify when found in a log.

#include <optional>
#include <string_view>

#include "events/codec.h"

namespace keel::events {

enum class ProcessStatus : uint8_t {
  kPending,
  kRunning,
  kPauseRequested,
  kPaused,
  kResumeRequested,
  kCancelRequested,
  kCancelled,
  kWaiting,
  kCompleted,
  kFailed,
};
enum class BranchStatus : uint8_t {
  kPending,
  kRunning,
  kWaiting,
  kSuspended,
  kPaused,
  kCompleted,
  kFailed,
  kCancelled,
};
enum class TaskStatus : uint8_t {
  kPending,
  kScheduled,
  kRunning,
  kWaitForApproval,
  kRetrying,
  kCompleted,
  kFailed,
  kSkipped,
  kCancelled,
  kBlocked,
};

// JSON spellings: "pending", "pauseRequested", "waitForApproval", ...
const char* Name(ProcessStatus s);
const char* Name(BranchStatus s);
const char* Name(TaskStatus s);
std::optional<ProcessStatus> ParseProcessStatus(std::string_view name);
std::optional<BranchStatus> ParseBranchStatus(std::string_view name);
std::optional<TaskStatus> ParseTaskStatus(std::string_view name);

bool IsTerminal(ProcessStatus s);  // completed, failed, cancelled
bool IsTerminal(BranchStatus s);   // completed, failed, cancelled
bool IsTerminal(TaskStatus s);     // completed, failed, skipped, cancelled, blocked
// Ended, or resting until something from outside moves it (waiting, paused):
// a process needs no actor then, and a wait for its rest returns.
bool AtRest(ProcessStatus s);

enum class EntityKind : uint8_t { kNone, kProcess, kBranch, kTask, kSchedule };
// Which kind of entity an event type is about (SignalReceived, TimerScheduled,
// TimerFired and TimerCancelled are process events; VariablesSet a branch
// event; Schedule* events belong to a schedule's stream, never a process's).
EntityKind EntityOf(EventType type);

// The state after `type` from `from`, or nullopt when the table forbids it.
// Events that do not change an entity's status (SignalReceived, Timer*,
// VariablesSet) return `from` when allowed at all.
std::optional<ProcessStatus> Next(ProcessStatus from, EventType type);
std::optional<BranchStatus> Next(BranchStatus from, EventType type);
std::optional<TaskStatus> Next(TaskStatus from, EventType type);

}  // namespace keel::events
