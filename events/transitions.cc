#include "events/transitions.h"

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
      break;
  }
  switch (from) {
    case PS::kPending:
      switch (type) {
        case E::ProcessStarted: return PS::kRunning;
        case E::ProcessCancelRequested: return PS::kCancelRequested;
        case E::ProcessCancelled: return PS::kCancelled;
        case E::ProcessFailed: return PS::kFailed;
        default: break;
      }
      break;
    case PS::kRunning:
      switch (type) {
        case E::ProcessPauseRequested: return PS::kPauseRequested;
        case E::ProcessCancelRequested: return PS::kCancelRequested;
        case E::ProcessWaiting: return PS::kWaiting;
        case E::ProcessCompleted: return PS::kCompleted;
        case E::ProcessFailed: return PS::kFailed;
        default: break;
      }
      break;
    case PS::kWaiting:
      switch (type) {
        case E::ProcessResumed: return PS::kRunning;
        case E::ProcessPauseRequested: return PS::kPauseRequested;
        case E::ProcessCancelRequested: return PS::kCancelRequested;
        case E::ProcessCompleted: return PS::kCompleted;
        case E::ProcessFailed: return PS::kFailed;
        default: break;
      }
      break;
    case PS::kPauseRequested:
      switch (type) {
        case E::ProcessPaused: return PS::kPaused;
        case E::ProcessCancelRequested: return PS::kCancelRequested;
        case E::ProcessCompleted: return PS::kCompleted;
        case E::ProcessFailed: return PS::kFailed;
        default: break;
      }
      break;
    case PS::kPaused:
      switch (type) {
        case E::ProcessResumeRequested: return PS::kResumeRequested;
        case E::ProcessCancelRequested: return PS::kCancelRequested;
        default: break;
      }
      break;
    case PS::kResumeRequested:
      switch (type) {
        case E::ProcessResumed: return PS::kRunning;
        case E::ProcessCancelRequested: return PS::kCancelRequested;
        case E::ProcessPauseRequested: return PS::kPauseRequested;
        default: break;
      }
      break;
    case PS::kCancelRequested:
      switch (type) {
        case E::ProcessCancelled: return PS::kCancelled;
        case E::ProcessCompleted: return PS::kCompleted;
        case E::ProcessFailed: return PS::kFailed;
        default: break;
      }
      break;
    case PS::kFailed:
      if (type == E::ProcessRetried) return PS::kRunning;
      break;
    case PS::kCompleted:
    case PS::kCancelled:
      break;
  }
  return std::nullopt;
}

std::optional<BranchStatus> Next(BranchStatus from, EventType type) {
  if (type == E::VariablesSet) {
    if (IsTerminal(from)) return std::nullopt;
    return from;
  }
  switch (from) {
    case BS::kPending:
      if (type == E::BranchStarted) return BS::kRunning;
      break;
    case BS::kRunning:
      switch (type) {
        case E::BranchWaiting: return BS::kWaiting;
        case E::BranchSuspended: return BS::kSuspended;
        case E::BranchPaused: return BS::kPaused;
        case E::BranchCompleted: return BS::kCompleted;
        case E::BranchFailed: return BS::kFailed;
        case E::BranchCancelled: return BS::kCancelled;
        default: break;
      }
      break;
    case BS::kWaiting:
    case BS::kSuspended:
      switch (type) {
        case E::BranchResumed: return BS::kRunning;
        case E::BranchPaused: return BS::kPaused;
        case E::BranchFailed: return BS::kFailed;
        case E::BranchCancelled: return BS::kCancelled;
        default: break;
      }
      break;
    case BS::kPaused:
      switch (type) {
        case E::BranchResumed: return BS::kRunning;
        case E::BranchCancelled: return BS::kCancelled;
        default: break;
      }
      break;
    case BS::kFailed:
      if (type == E::BranchResumed) return BS::kRunning;  // the process was retried
      break;
    case BS::kCompleted:
    case BS::kCancelled:
      break;
  }
  return std::nullopt;
}

std::optional<TaskStatus> Next(TaskStatus from, EventType type) {
  switch (from) {
    case TS::kPending:
      switch (type) {
        case E::TaskScheduled: return TS::kScheduled;
        case E::TaskSkipped: return TS::kSkipped;
        case E::TaskCancelled: return TS::kCancelled;
        default: break;
      }
      break;
    case TS::kScheduled:
      switch (type) {
        case E::TaskStarted: return TS::kRunning;
        case E::TaskWaitingForApproval: return TS::kWaitForApproval;
        case E::TaskBlocked: return TS::kBlocked;
        case E::TaskSkipped: return TS::kSkipped;
        case E::TaskFailed: return TS::kFailed;
        case E::TaskCancelled: return TS::kCancelled;
        default: break;
      }
      break;
    case TS::kRunning:
      switch (type) {
        case E::TaskStarted: return TS::kRunning;  // re-run after a crash: a new attempt
        case E::TaskCompleted: return TS::kCompleted;
        case E::TaskFailed: return TS::kFailed;
        case E::TaskRetryScheduled: return TS::kRetrying;
        case E::TaskCancelled: return TS::kCancelled;
        default: break;
      }
      break;
    case TS::kWaitForApproval:
      switch (type) {
        case E::TaskApproved: return TS::kScheduled;
        case E::TaskRejected: return TS::kFailed;
        case E::TaskCancelled: return TS::kCancelled;
        default: break;
      }
      break;
    case TS::kRetrying:
      switch (type) {
        case E::TaskStarted: return TS::kRunning;
        case E::TaskFailed: return TS::kFailed;
        case E::TaskCancelled: return TS::kCancelled;
        default: break;
      }
      break;
    case TS::kFailed:
    case TS::kBlocked:
      if (type == E::TaskScheduled) return TS::kScheduled;  // retry from failure
      break;
    case TS::kCompleted:
    case TS::kSkipped:
    case TS::kCancelled:
      break;
  }
  return std::nullopt;
}

}  // namespace keel::events
