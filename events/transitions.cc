#include "events/transitions.h"

#include <iterator>

namespace keel::events {
namespace {

using E = EventType;
using PS = ProcessStatus;
using BS = BranchStatus;
using TS = TaskStatus;

constexpr const char* kProcessNames[] = {
    "pending",         "running",   "pauseRequested", "paused",    "resumeRequested",
    "cancelRequested", "cancelled", "waiting",        "completed", "failed",
};
constexpr const char* kBranchNames[] = {
    "pending", "running", "waiting", "suspended", "paused", "completed", "failed", "cancelled",
};
constexpr const char* kTaskNames[] = {
    "pending",   "scheduled", "running", "waitForApproval", "retrying",
    "completed", "failed",    "skipped", "cancelled",       "blocked",
};

template <typename Enum, size_t N>
const char* NameIn(const char* const (&names)[N], Enum s) {
  auto i = static_cast<size_t>(s);
  return i < N ? names[i] : "unknown";
}

template <typename Enum, size_t N>
std::optional<Enum> ParseIn(const char* const (&names)[N], std::string_view name) {
  for (size_t i = 0; i < N; ++i) {
    if (name == names[i]) return static_cast<Enum>(i);
  }
  return std::nullopt;
}

template <typename S>
struct Row {
  S from;
  E event;
  S to;
};

// A transition table compiled into a [status][event] lookup.
template <typename S, size_t kStatuses>
class Table {
 public:
  template <size_t N>
  constexpr explicit Table(const Row<S> (&rows)[N]) {
    for (const Row<S>& row : rows) {
      next_[static_cast<size_t>(row.from)][static_cast<size_t>(row.event)] =
          static_cast<uint8_t>(static_cast<size_t>(row.to) + 1);
    }
  }
  std::optional<S> Next(S from, E event) const {
    auto f = static_cast<size_t>(from), e = static_cast<size_t>(event);
    if (f >= kStatuses || e >= kEvents || next_[f][e] == 0) return std::nullopt;
    return static_cast<S>(next_[f][e] - 1);
  }

 private:
  static constexpr size_t kEvents = static_cast<size_t>(E::MAX) + 1;
  uint8_t next_[kStatuses][kEvents] = {};  // next status + 1; 0 = refused
};

// One row per allowed move; every other (status, event) pair is refused.
constexpr Row<PS> kProcessRows[] = {
    {PS::kPending, E::ProcessStarted, PS::kRunning},
    {PS::kPending, E::ProcessCancelRequested, PS::kCancelRequested},
    {PS::kPending, E::ProcessCancelled, PS::kCancelled},
    {PS::kPending, E::ProcessFailed, PS::kFailed},
    {PS::kPending, E::ProcessAdmitted, PS::kPending},  // a queued process may start
    {PS::kRunning, E::ProcessPauseRequested, PS::kPauseRequested},
    {PS::kRunning, E::ProcessCancelRequested, PS::kCancelRequested},
    {PS::kRunning, E::ProcessWaiting, PS::kWaiting},
    {PS::kRunning, E::ProcessCompleted, PS::kCompleted},
    {PS::kRunning, E::ProcessFailed, PS::kFailed},
    {PS::kWaiting, E::ProcessResumed, PS::kRunning},
    {PS::kWaiting, E::ProcessPauseRequested, PS::kPauseRequested},
    {PS::kWaiting, E::ProcessCancelRequested, PS::kCancelRequested},
    {PS::kWaiting, E::ProcessCompleted, PS::kCompleted},
    {PS::kWaiting, E::ProcessFailed, PS::kFailed},
    {PS::kPauseRequested, E::ProcessPaused, PS::kPaused},
    {PS::kPauseRequested, E::ProcessCancelRequested, PS::kCancelRequested},
    {PS::kPauseRequested, E::ProcessResumeRequested, PS::kResumeRequested},  // withdraws it
    {PS::kPauseRequested, E::ProcessCompleted, PS::kCompleted},
    {PS::kPauseRequested, E::ProcessFailed, PS::kFailed},
    {PS::kPaused, E::ProcessResumeRequested, PS::kResumeRequested},
    {PS::kPaused, E::ProcessCancelRequested, PS::kCancelRequested},
    {PS::kResumeRequested, E::ProcessResumed, PS::kRunning},
    {PS::kResumeRequested, E::ProcessCancelRequested, PS::kCancelRequested},
    {PS::kResumeRequested, E::ProcessPauseRequested, PS::kPauseRequested},
    {PS::kCancelRequested, E::ProcessCancelled, PS::kCancelled},
    {PS::kCancelRequested, E::ProcessCompleted, PS::kCompleted},
    {PS::kCancelRequested, E::ProcessFailed, PS::kFailed},
    {PS::kFailed, E::ProcessRetried, PS::kRunning},
};

constexpr Row<BS> kBranchRows[] = {
    {BS::kPending, E::BranchStarted, BS::kRunning},
    {BS::kRunning, E::BranchWaiting, BS::kWaiting},
    {BS::kRunning, E::BranchSuspended, BS::kSuspended},
    {BS::kRunning, E::BranchPaused, BS::kPaused},
    {BS::kRunning, E::BranchCompleted, BS::kCompleted},
    {BS::kRunning, E::BranchFailed, BS::kFailed},
    {BS::kRunning, E::BranchCancelled, BS::kCancelled},
    {BS::kWaiting, E::BranchResumed, BS::kRunning},
    {BS::kWaiting, E::BranchPaused, BS::kPaused},
    {BS::kWaiting, E::BranchFailed, BS::kFailed},
    {BS::kWaiting, E::BranchCancelled, BS::kCancelled},
    {BS::kSuspended, E::BranchResumed, BS::kRunning},
    {BS::kSuspended, E::BranchPaused, BS::kPaused},
    {BS::kSuspended, E::BranchFailed, BS::kFailed},
    {BS::kSuspended, E::BranchCancelled, BS::kCancelled},
    {BS::kPaused, E::BranchResumed, BS::kRunning},
    {BS::kPaused, E::BranchCancelled, BS::kCancelled},
    {BS::kFailed, E::BranchResumed, BS::kRunning},  // the process was retried
};

constexpr Row<TS> kTaskRows[] = {
    {TS::kPending, E::TaskScheduled, TS::kScheduled},
    {TS::kPending, E::TaskSkipped, TS::kSkipped},
    {TS::kPending, E::TaskCancelled, TS::kCancelled},
    {TS::kScheduled, E::TaskStarted, TS::kRunning},
    {TS::kScheduled, E::TaskWaitingForApproval, TS::kWaitForApproval},
    {TS::kScheduled, E::TaskBlocked, TS::kBlocked},
    {TS::kScheduled, E::TaskSkipped, TS::kSkipped},
    {TS::kScheduled, E::TaskFailed, TS::kFailed},
    {TS::kScheduled, E::TaskCancelled, TS::kCancelled},
    {TS::kRunning, E::TaskStarted, TS::kRunning},  // re-run after a crash: a new attempt
    {TS::kRunning, E::TaskCompleted, TS::kCompleted},
    {TS::kRunning, E::TaskFailed, TS::kFailed},
    {TS::kRunning, E::TaskRetryScheduled, TS::kRetrying},
    {TS::kRunning, E::TaskCancelled, TS::kCancelled},
    {TS::kWaitForApproval, E::TaskApproved, TS::kScheduled},
    {TS::kWaitForApproval, E::TaskRejected, TS::kFailed},
    {TS::kWaitForApproval, E::TaskCancelled, TS::kCancelled},
    {TS::kRetrying, E::TaskStarted, TS::kRunning},
    {TS::kRetrying, E::TaskFailed, TS::kFailed},
    {TS::kRetrying, E::TaskCancelled, TS::kCancelled},
    {TS::kFailed, E::TaskScheduled, TS::kScheduled},  // retry from failure
    {TS::kBlocked, E::TaskScheduled, TS::kScheduled},
};

constexpr Table<PS, std::size(kProcessNames)> kProcessTable(kProcessRows);
constexpr Table<BS, std::size(kBranchNames)> kBranchTable(kBranchRows);
constexpr Table<TS, std::size(kTaskNames)> kTaskTable(kTaskRows);

// Events that touch no status: allowed while the process is alive; timer
// clean-up is also allowed after it ended.
std::optional<PS> ProcessSideEvent(PS from, E type) {
  if (!IsTerminal(from)) return from;
  if (type == E::TimerFired || type == E::TimerCancelled) return from;
  return std::nullopt;
}

}  // namespace

const char* Name(ProcessStatus s) { return NameIn(kProcessNames, s); }
const char* Name(BranchStatus s) { return NameIn(kBranchNames, s); }
const char* Name(TaskStatus s) { return NameIn(kTaskNames, s); }

std::optional<ProcessStatus> ParseProcessStatus(std::string_view name) {
  return ParseIn<ProcessStatus>(kProcessNames, name);
}
std::optional<BranchStatus> ParseBranchStatus(std::string_view name) {
  return ParseIn<BranchStatus>(kBranchNames, name);
}
std::optional<TaskStatus> ParseTaskStatus(std::string_view name) {
  return ParseIn<TaskStatus>(kTaskNames, name);
}

bool IsTerminal(ProcessStatus s) {
  return s == PS::kCompleted || s == PS::kFailed || s == PS::kCancelled;
}
bool AtRest(ProcessStatus s) { return IsTerminal(s) || s == PS::kWaiting || s == PS::kPaused; }
bool IsTerminal(BranchStatus s) {
  return s == BS::kCompleted || s == BS::kFailed || s == BS::kCancelled;
}
bool IsTerminal(TaskStatus s) {
  return s == TS::kCompleted || s == TS::kFailed || s == TS::kSkipped || s == TS::kCancelled ||
         s == TS::kBlocked;
}

EntityKind EntityOf(EventType type) {
  switch (type) {
    case E::ProcessCreated:
    case E::ProcessStarted:
    case E::ProcessPauseRequested:
    case E::ProcessPaused:
    case E::ProcessResumeRequested:
    case E::ProcessResumed:
    case E::ProcessCancelRequested:
    case E::ProcessCancelled:
    case E::ProcessWaiting:
    case E::ProcessCompleted:
    case E::ProcessFailed:
    case E::ProcessRetried:
    case E::SignalReceived:
    case E::TimerScheduled:
    case E::TimerFired:
    case E::TimerCancelled:
    case E::ProcessAdmitted:
      return EntityKind::kProcess;
    case E::BranchStarted:
    case E::BranchWaiting:
    case E::BranchSuspended:
    case E::BranchResumed:
    case E::BranchPaused:
    case E::BranchCompleted:
    case E::BranchFailed:
    case E::BranchCancelled:
    case E::VariablesSet:
      return EntityKind::kBranch;
    case E::TaskScheduled:
    case E::TaskStarted:
    case E::TaskWaitingForApproval:
    case E::TaskApproved:
    case E::TaskRejected:
    case E::TaskBlocked:
    case E::TaskRetryScheduled:
    case E::TaskCompleted:
    case E::TaskFailed:
    case E::TaskSkipped:
    case E::TaskCancelled:
      return EntityKind::kTask;
    case E::ScheduleCreated:
    case E::SchedulePaused:
    case E::ScheduleResumed:
    case E::ScheduleDeleted:
    case E::ScheduleFired:
    case E::ScheduleMissed:
      return EntityKind::kSchedule;
    case E::NONE:
      break;
  }
  return EntityKind::kNone;
}

std::optional<ProcessStatus> Next(ProcessStatus from, EventType type) {
  switch (type) {
    case E::SignalReceived:
    case E::TimerScheduled:
    case E::TimerFired:
    case E::TimerCancelled:
      return ProcessSideEvent(from, type);
    default:
      return kProcessTable.Next(from, type);
  }
}

std::optional<BranchStatus> Next(BranchStatus from, EventType type) {
  if (type == E::VariablesSet) {
    if (IsTerminal(from)) return std::nullopt;
    return from;
  }
  return kBranchTable.Next(from, type);
}

std::optional<TaskStatus> Next(TaskStatus from, EventType type) {
  return kTaskTable.Next(from, type);
}

}  // namespace keel::events
