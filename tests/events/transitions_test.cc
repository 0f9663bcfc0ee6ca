#include "events/transitions.h"

#include <gtest/gtest.h>

#include <set>
#include <tuple>
#include <vector>

namespace keel::events {
namespace {

using E = EventType;
using PS = ProcessStatus;
using BS = BranchStatus;
using TS = TaskStatus;

template <typename S>
struct Row {
  S from;
  E event;
  S to;
};

// The tables exactly as specified; every (status, event) pair not listed must
// be refused.
const std::vector<Row<PS>> kProcessTable = {
    {PS::kPending, E::ProcessStarted, PS::kRunning},
    {PS::kPending, E::ProcessCancelRequested, PS::kCancelRequested},
    {PS::kPending, E::ProcessCancelled, PS::kCancelled},
    {PS::kPending, E::ProcessFailed, PS::kFailed},
    {PS::kPending, E::ProcessAdmitted, PS::kPending},  // queues (the fold checks the rest)
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
    {PS::kPauseRequested, E::ProcessCompleted, PS::kCompleted},
    {PS::kPauseRequested, E::ProcessFailed, PS::kFailed},
    {PS::kPauseRequested, E::ProcessResumeRequested, PS::kResumeRequested},
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

const std::vector<Row<BS>> kBranchTable = {
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
    {BS::kFailed, E::BranchResumed, BS::kRunning},
    // VariablesSet: any live status, unchanged.
    {BS::kPending, E::VariablesSet, BS::kPending},
    {BS::kRunning, E::VariablesSet, BS::kRunning},
    {BS::kWaiting, E::VariablesSet, BS::kWaiting},
    {BS::kSuspended, E::VariablesSet, BS::kSuspended},
    {BS::kPaused, E::VariablesSet, BS::kPaused},
};

const std::vector<Row<TS>> kTaskTable = {
    {TS::kPending, E::TaskScheduled, TS::kScheduled},
    {TS::kPending, E::TaskSkipped, TS::kSkipped},
    {TS::kPending, E::TaskCancelled, TS::kCancelled},
    {TS::kScheduled, E::TaskStarted, TS::kRunning},
    {TS::kScheduled, E::TaskWaitingForApproval, TS::kWaitForApproval},
    {TS::kScheduled, E::TaskBlocked, TS::kBlocked},
    {TS::kScheduled, E::TaskSkipped, TS::kSkipped},
    {TS::kScheduled, E::TaskFailed, TS::kFailed},
    {TS::kScheduled, E::TaskCancelled, TS::kCancelled},
    {TS::kRunning, E::TaskStarted, TS::kRunning},
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
    {TS::kFailed, E::TaskScheduled, TS::kScheduled},
    {TS::kBlocked, E::TaskScheduled, TS::kScheduled},
};

constexpr E kProcessSideEvents[] = {E::SignalReceived, E::TimerScheduled, E::TimerFired,
                                    E::TimerCancelled};

std::vector<E> AllEvents() {
  std::vector<E> all;
  for (int i = 1; i <= static_cast<int>(E::MAX); ++i) all.push_back(static_cast<E>(i));
  return all;
}

template <typename S>
std::vector<S> AllStatuses(S last) {
  std::vector<S> all;
  for (int i = 0; i <= static_cast<int>(last); ++i) all.push_back(static_cast<S>(i));
  return all;
}

// Checks every listed row, and that nothing else is allowed.
template <typename S>
void ExpectExactly(const std::vector<Row<S>>& table, S last_status,
                   const std::vector<Row<S>>& extra = {}) {
  std::set<std::pair<S, E>> allowed;
  for (const auto* rows : {&table, &extra}) {
    for (const Row<S>& row : *rows) {
      allowed.insert({row.from, row.event});
      auto next = Next(row.from, row.event);
      ASSERT_TRUE(next.has_value()) << Name(row.from) << " + " << EventTypeName(row.event);
      EXPECT_EQ(*next, row.to) << Name(row.from) << " + " << EventTypeName(row.event) << " went to "
                               << Name(*next);
    }
  }
  for (S from : AllStatuses(last_status)) {
    for (E event : AllEvents()) {
      if (allowed.count({from, event})) continue;
      EXPECT_FALSE(Next(from, event).has_value())
          << Name(from) << " + " << EventTypeName(event) << " should be refused";
    }
  }
}

TEST(TransitionsTest, ProcessTableAllowsExactlyTheListedTransitions) {
  std::vector<Row<PS>> side;
  for (PS s : AllStatuses(PS::kFailed)) {
    for (E e : kProcessSideEvents) {
      bool cleanup = e == E::TimerFired || e == E::TimerCancelled;
      if (!IsTerminal(s) || cleanup) side.push_back({s, e, s});
    }
  }
  ExpectExactly(kProcessTable, PS::kFailed, side);
}

TEST(TransitionsTest, BranchTableAllowsExactlyTheListedTransitions) {
  ExpectExactly(kBranchTable, BS::kCancelled);
}

TEST(TransitionsTest, TaskTableAllowsExactlyTheListedTransitions) {
  ExpectExactly(kTaskTable, TS::kBlocked);
}

TEST(TransitionsTest, CompletedTaskCannotStart) {
  EXPECT_FALSE(Next(TS::kCompleted, E::TaskStarted));
  EXPECT_FALSE(Next(TS::kSkipped, E::TaskStarted));
  EXPECT_FALSE(Next(TS::kCancelled, E::TaskScheduled));
}

TEST(TransitionsTest, TaskWaitingForApprovalCannotCompleteWithoutADecision) {
  EXPECT_FALSE(Next(TS::kWaitForApproval, E::TaskCompleted));
  EXPECT_FALSE(Next(TS::kWaitForApproval, E::TaskStarted));
  EXPECT_FALSE(Next(TS::kScheduled, E::TaskApproved));
}

TEST(TransitionsTest, PausedProcessCannotBePausedAgain) {
  EXPECT_FALSE(Next(PS::kPaused, E::ProcessPauseRequested));
  EXPECT_FALSE(Next(PS::kPaused, E::ProcessPaused));
  EXPECT_FALSE(Next(PS::kPaused, E::ProcessResumed));  // resume goes through resumeRequested
}

TEST(TransitionsTest, CancelledProcessRefusesSignalsButCleansUpTimers) {
  EXPECT_FALSE(Next(PS::kCancelled, E::SignalReceived));
  EXPECT_FALSE(Next(PS::kCancelled, E::TimerScheduled));
  EXPECT_EQ(Next(PS::kCancelled, E::TimerCancelled), PS::kCancelled);
  EXPECT_EQ(Next(PS::kCompleted, E::TimerFired), PS::kCompleted);
}

TEST(TransitionsTest, TerminalProcessesOnlyRetryFromFailure) {
  EXPECT_FALSE(Next(PS::kCompleted, E::ProcessRetried));
  EXPECT_FALSE(Next(PS::kCancelled, E::ProcessRetried));
  EXPECT_FALSE(Next(PS::kCompleted, E::ProcessStarted));
  EXPECT_EQ(Next(PS::kFailed, E::ProcessRetried), PS::kRunning);
}

TEST(TransitionsTest, CompletedBranchRefusesEverythingIncludingVariables) {
  for (E e : AllEvents()) {
    EXPECT_FALSE(Next(BS::kCompleted, e)) << EventTypeName(e);
    EXPECT_FALSE(Next(BS::kCancelled, e)) << EventTypeName(e);
  }
  EXPECT_FALSE(Next(BS::kFailed, E::VariablesSet));
  EXPECT_FALSE(Next(BS::kRunning, E::BranchStarted));
}

TEST(TransitionsTest, EventsOfOtherEntitiesNeverMoveAStatus) {
  EXPECT_FALSE(Next(PS::kRunning, E::TaskStarted));
  EXPECT_FALSE(Next(BS::kRunning, E::ProcessCompleted));
  EXPECT_FALSE(Next(TS::kRunning, E::BranchCompleted));
  EXPECT_FALSE(Next(PS::kPending, E::ProcessCreated));  // creation is not a transition
}

TEST(TransitionsTest, EntityOfEveryEventType) {
  for (E e : AllEvents()) {
    std::string_view name = EventTypeName(e);
    EntityKind expected = EntityKind::kProcess;
    if (name.starts_with("Branch") || name == "VariablesSet") expected = EntityKind::kBranch;
    if (name.starts_with("Task")) expected = EntityKind::kTask;
    if (name.starts_with("Schedule")) expected = EntityKind::kSchedule;
    EXPECT_EQ(EntityOf(e), expected) << name;
  }
  EXPECT_EQ(EntityOf(E::NONE), EntityKind::kNone);
}

TEST(TransitionsTest, StatusNamesAreSpelledAsInDesignAndParseBack) {
  const std::vector<std::string> process = {
      "pending",         "running",   "pauseRequested", "paused",    "resumeRequested",
      "cancelRequested", "cancelled", "waiting",        "completed", "failed"};
  const std::vector<std::string> branch = {"pending", "running",   "waiting", "suspended",
                                           "paused",  "completed", "failed",  "cancelled"};
  const std::vector<std::string> task = {"pending",   "scheduled", "running", "waitForApproval",
                                         "retrying",  "completed", "failed",  "skipped",
                                         "cancelled", "blocked"};
  for (size_t i = 0; i < process.size(); ++i) {
    EXPECT_EQ(Name(static_cast<PS>(i)), process[i]);
    EXPECT_EQ(ParseProcessStatus(process[i]), static_cast<PS>(i));
  }
  for (size_t i = 0; i < branch.size(); ++i) {
    EXPECT_EQ(Name(static_cast<BS>(i)), branch[i]);
    EXPECT_EQ(ParseBranchStatus(branch[i]), static_cast<BS>(i));
  }
  for (size_t i = 0; i < task.size(); ++i) {
    EXPECT_EQ(Name(static_cast<TS>(i)), task[i]);
    EXPECT_EQ(ParseTaskStatus(task[i]), static_cast<TS>(i));
  }
  EXPECT_FALSE(ParseProcessStatus("Running"));
  EXPECT_FALSE(ParseTaskStatus("waitingForApproval"));
  EXPECT_FALSE(ParseBranchStatus(""));
}

TEST(TransitionsTest, TerminalStatuses) {
  for (PS s : AllStatuses(PS::kFailed)) {
    EXPECT_EQ(IsTerminal(s), s == PS::kCompleted || s == PS::kFailed || s == PS::kCancelled);
  }
  for (TS s : AllStatuses(TS::kBlocked)) {
    EXPECT_EQ(IsTerminal(s), s == TS::kCompleted || s == TS::kFailed || s == TS::kSkipped ||
                                 s == TS::kCancelled || s == TS::kBlocked);
  }
  for (BS s : AllStatuses(BS::kCancelled)) {
    EXPECT_EQ(IsTerminal(s), s == BS::kCompleted || s == BS::kFailed || s == BS::kCancelled);
  }
}

}  // namespace
}  // namespace keel::events
