#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "events/internal/json_util.h"
#include "events/state.h"
#include "tests/events/event_chain.h"
#include "tests/support/test_util.h"

namespace keel::events {
namespace {

using nlohmann::json;
using testing::EventChain;
using testing::kT0;

class FoldTest : public ::testing::Test {
 protected:
  Status Fold(Draft draft) { return testing::FoldNext(chain_, state_, std::move(draft)); }

  Header H(std::string_view entity) const { return chain_.H(entity); }
  Header P() const { return chain_.P(); }
  int64_t TimeOfLast() const { return EventChain::TimeOf(state_.last_seq); }

  // Created, started, branch main running with vars {"x": 1}.
  void Start() {
    ASSERT_OK(
        Fold(events::ProcessCreated(P(), "order", "d1f", R"({"order_id":"o1"})", "{}", "key-1")));
    ASSERT_OK(Fold(events::ProcessStarted(P())));
    ASSERT_OK(Fold(
        events::BranchStarted(H("main"), {.vars_json = R"({"x":1})", .first_step = "reserve"})));
  }

  // Schedules, starts (attempt 1) and completes task `id` of `branch`.
  void RunTask(std::string_view id, std::string_view branch, std::string_view output,
               std::string_view next) {
    ASSERT_OK(Fold(events::TaskScheduled(H(id), id, branch, "{}")));
    ASSERT_OK(Fold(events::TaskStarted(H(id), 1, "p1/" + std::string(id) + "/1")));
    ASSERT_OK(Fold(events::TaskCompleted(H(id), output, next)));
  }

  const TaskState& Task(std::string_view id) {
    const TaskState* t = state_.FindTask(id);
    EXPECT_NE(t, nullptr) << id;
    static const TaskState kNone;
    return t ? *t : kNone;
  }
  const BranchState& Branch(std::string_view id) {
    const BranchState* b = state_.FindBranch(id);
    EXPECT_NE(b, nullptr) << id;
    static const BranchState kNone;
    return b ? *b : kNone;
  }

  EventChain chain_;
  ProcessState state_;
};

TEST_F(FoldTest, LinearRunToCompletion) {
  Start();
  EXPECT_EQ(state_.id, "p1");
  EXPECT_EQ(state_.workflow, "order");
  EXPECT_EQ(state_.definition_hash, "d1f");
  EXPECT_EQ(state_.idempotency_key, "key-1");
  EXPECT_EQ(state_.inputs, json({{"order_id", "o1"}}));
  EXPECT_EQ(state_.created_ns, EventChain::TimeOf(1));
  EXPECT_EQ(state_.status, ProcessStatus::kRunning);
  EXPECT_EQ(Branch("main").current_step, "reserve");
  EXPECT_EQ(state_.variables(), json({{"x", 1}}));

  ASSERT_OK(Fold(events::TaskScheduled(H("reserve"), "reserve", "main", R"({"n":2})")));
  EXPECT_EQ(Branch("main").current_task, "reserve");
  EXPECT_EQ(Task("reserve").status, TaskStatus::kScheduled);
  EXPECT_EQ(Task("reserve").scheduled_ns, TimeOfLast());
  ASSERT_OK(Fold(events::TaskStarted(H("reserve"), 1, "p1/reserve/1")));
  const int64_t started = TimeOfLast();
  ASSERT_OK(Fold(events::TaskCompleted(H("reserve"), R"({"ok":true})", "ship")));
  ASSERT_OK(Fold(events::VariablesSet(H("main"), R"({"y":"set","x":2})")));
  RunTask("ship", "main", R"({"tracking":"T1"})", "");
  ASSERT_OK(Fold(events::BranchCompleted(H("main"), R"({"tracking":"T1"})")));
  ASSERT_OK(Fold(events::ProcessCompleted(P(), R"({"receipt":"T1"})")));

  EXPECT_EQ(state_.status, ProcessStatus::kCompleted);
  EXPECT_EQ(state_.outputs, json({{"receipt", "T1"}}));
  EXPECT_FALSE(state_.error.has_value());
  EXPECT_EQ(state_.ended_ns, TimeOfLast());
  EXPECT_EQ(state_.updated_ns, TimeOfLast());
  EXPECT_EQ(state_.last_seq, 12u);
  EXPECT_EQ(state_.last_hash.size(), kHashSize);
  EXPECT_EQ(state_.variables(), json({{"x", 2}, {"y", "set"}}));

  const TaskState& reserve = Task("reserve");
  EXPECT_EQ(reserve.status, TaskStatus::kCompleted);
  EXPECT_EQ(reserve.step, "reserve");
  EXPECT_EQ(reserve.branch, "main");
  EXPECT_EQ(reserve.attempts, 1u);
  EXPECT_EQ(reserve.input, json({{"n", 2}}));
  EXPECT_EQ(reserve.output, json({{"ok", true}}));
  EXPECT_EQ(reserve.next, "ship");
  EXPECT_EQ(reserve.idempotency_key, "p1/reserve/1");
  EXPECT_EQ(reserve.started_ns, started);
  EXPECT_EQ(reserve.ended_ns, started + EventChain::TimeOf(1) - EventChain::TimeOf(0));

  const BranchState& main = Branch("main");
  EXPECT_EQ(main.status, BranchStatus::kCompleted);
  EXPECT_EQ(main.current_step, "");
  EXPECT_EQ(main.current_task, "");
  EXPECT_EQ(main.output, json({{"tracking", "T1"}}));
  ASSERT_EQ(state_.tasks.size(), 2u);
  EXPECT_EQ(state_.tasks[1].id, "ship");
}

TEST_F(FoldTest, LastHashFollowsTheChain) {
  Start();
  StoredEvent next = chain_.Next(events::ProcessWaiting(P()));
  ASSERT_OK(Apply(state_, next));
  EXPECT_EQ(state_.last_hash, next.hash());
  EXPECT_TRUE(next.HashMatches());
}

TEST_F(FoldTest, RetryThenSuccessKeepsFirstStartAndCountsAttempts) {
  Start();
  ASSERT_OK(Fold(events::TaskScheduled(H("reserve"), "reserve", "main", "{}")));
  ASSERT_OK(Fold(events::TaskStarted(H("reserve"), 1, "p1/reserve/1")));
  const int64_t first_start = TimeOfLast();
  const int64_t due = kT0 + 60'000'000'000;
  ASSERT_OK(Fold(events::TaskRetryScheduled(H("reserve"), 2, due, "exit 1")));
  ASSERT_OK(Fold(events::TimerScheduled(P(), "retry:reserve:2", due, "retry", "reserve")));
  EXPECT_EQ(Task("reserve").status, TaskStatus::kRetrying);
  EXPECT_EQ(Task("reserve").retry_at_ns, due);
  EXPECT_EQ(Task("reserve").error, "exit 1");
  ASSERT_EQ(state_.timers.size(), 1u);
  EXPECT_EQ(state_.timers.at("retry:reserve:2").task, "reserve");
  EXPECT_EQ(state_.timers.at("retry:reserve:2").kind, "retry");

  ASSERT_OK(Fold(events::TimerFired(P(), "retry:reserve:2", due)));
  ASSERT_OK(Fold(events::TaskStarted(H("reserve"), 2, "p1/reserve/2")));
  EXPECT_TRUE(state_.timers.empty());
  EXPECT_EQ(Task("reserve").attempts, 2u);
  EXPECT_EQ(Task("reserve").retry_at_ns, 0);
  ASSERT_OK(Fold(events::TaskCompleted(H("reserve"), R"({"ok":1})", "")));

  const TaskState& t = Task("reserve");
  EXPECT_EQ(t.status, TaskStatus::kCompleted);
  EXPECT_FALSE(t.error.has_value());
  EXPECT_EQ(t.started_ns, first_start);
  EXPECT_EQ(t.idempotency_key, "p1/reserve/2");
}

TEST_F(FoldTest, RerunAfterCrashIsANewAttemptOfARunningTask) {
  Start();
  ASSERT_OK(Fold(events::TaskScheduled(H("reserve"), "reserve", "main", "{}")));
  ASSERT_OK(Fold(events::TaskStarted(H("reserve"), 1, "p1/reserve/1")));
  ASSERT_OK(Fold(events::TaskStarted(H("reserve"), 2, "p1/reserve/2")));
  EXPECT_EQ(Task("reserve").status, TaskStatus::kRunning);
  EXPECT_EQ(Task("reserve").attempts, 2u);
}

TEST_F(FoldTest, ProcessRetryReschedulesTheFailedTaskKeepingItsAttempts) {
  Start();
  ASSERT_OK(Fold(events::TaskScheduled(H("reserve"), "reserve", "main", "{}")));
  ASSERT_OK(Fold(events::TaskStarted(H("reserve"), 1, "p1/reserve/1")));
  ASSERT_OK(Fold(events::TaskFailed(H("reserve"), "boom", R"({"code":3})", true, "")));
  ASSERT_OK(Fold(events::BranchFailed(H("main"), "task reserve failed: boom")));
  ASSERT_OK(Fold(events::ProcessFailed(P(), "boom")));
  EXPECT_EQ(state_.status, ProcessStatus::kFailed);
  EXPECT_EQ(state_.error, "boom");
  EXPECT_NE(state_.ended_ns, 0);
  EXPECT_EQ(Task("reserve").output, json({{"code", 3}}));
  EXPECT_EQ(Branch("main").current_step, "reserve");  // failing without next stays put
  EXPECT_EQ(Branch("main").error, "task reserve failed: boom");

  ASSERT_OK(Fold(events::ProcessRetried(P(), "operator")));
  ASSERT_OK(Fold(events::BranchResumed(H("main"))));
  ASSERT_OK(Fold(events::TaskScheduled(H("reserve"), "reserve", "main", "{}")));
  EXPECT_EQ(state_.status, ProcessStatus::kRunning);
  EXPECT_FALSE(state_.error.has_value());
  EXPECT_EQ(state_.ended_ns, 0);
  EXPECT_EQ(Branch("main").status, BranchStatus::kRunning);
  EXPECT_EQ(Task("reserve").status, TaskStatus::kScheduled);
  EXPECT_EQ(Task("reserve").attempts, 1u);
  EXPECT_FALSE(Task("reserve").error.has_value());
  EXPECT_EQ(Task("reserve").ended_ns, 0);
  ASSERT_OK(Fold(events::TaskStarted(H("reserve"), 2, "p1/reserve/2")));
  EXPECT_EQ(Task("reserve").attempts, 2u);
  EXPECT_EQ(state_.tasks.size(), 1u);
}

TEST_F(FoldTest, FailedTaskWithOnErrorTargetMovesItsBranchOn) {
  Start();
  ASSERT_OK(Fold(events::TaskScheduled(H("reserve"), "reserve", "main", "{}")));
  ASSERT_OK(Fold(events::TaskStarted(H("reserve"), 1, "k")));
  ASSERT_OK(Fold(events::TaskFailed(H("reserve"), "timeout", "", false, "compensate")));
  EXPECT_EQ(Task("reserve").output, nullptr);
  EXPECT_EQ(Branch("main").current_step, "compensate");
  EXPECT_EQ(Branch("main").current_task, "");
}

TEST_F(FoldTest, ParallelForkWithTwoBranchesAndAJoin) {
  Start();
  ASSERT_OK(Fold(events::TaskScheduled(H("pack"), "pack", "main", "{}")));
  ASSERT_OK(Fold(events::TaskStarted(H("pack"), 1, "p1/pack/1")));
  ASSERT_OK(Fold(events::BranchStarted(H("pack/label"), {.parent = "main",
                                                         .fork_task = "pack",
                                                         .name = "label",
                                                         .vars_json = R"({"x":1})",
                                                         .first_step = "label"})));
  ASSERT_OK(Fold(events::BranchStarted(H("pack/box"), {.parent = "main",
                                                       .fork_task = "pack",
                                                       .name = "box",
                                                       .index = 1,
                                                       .item_json = R"("big")",
                                                       .vars_json = R"({"x":1})",
                                                       .first_step = "box"})));
  ASSERT_OK(Fold(events::BranchWaiting(H("main"), "pack")));
  EXPECT_EQ(Branch("main").status, BranchStatus::kWaiting);
  EXPECT_EQ(Branch("main").parked_on, "pack");
  EXPECT_EQ(Branch("main").parked_kind, "join");

  ASSERT_OK(Fold(events::VariablesSet(H("pack/box"), R"({"x":5})")));
  RunTask("pack/label/label", "pack/label", R"("L")", "");
  RunTask("pack/box/box", "pack/box", R"("B")", "");
  EXPECT_EQ(Branch("pack/box").output, "B");
  ASSERT_OK(Fold(events::BranchCompleted(H("pack/label"), R"("L")")));
  ASSERT_OK(Fold(events::BranchCompleted(H("pack/box"), R"("B")")));
  ASSERT_OK(Fold(events::BranchResumed(H("main"))));
  ASSERT_OK(Fold(events::TaskCompleted(H("pack"), R"({"label":"L","box":"B"})", "paid")));

  ASSERT_EQ(state_.branches.size(), 3u);
  EXPECT_EQ(state_.branches[0].id, "main");
  const BranchState& box = Branch("pack/box");
  EXPECT_EQ(box.parent, "main");
  EXPECT_EQ(box.fork_task, "pack");
  EXPECT_EQ(box.name, "box");
  EXPECT_EQ(box.index, 1);
  EXPECT_EQ(box.item, "big");
  EXPECT_EQ(box.vars, json({{"x", 5}}));
  EXPECT_EQ(box.status, BranchStatus::kCompleted);
  EXPECT_EQ(Branch("pack/label").item, nullptr);
  EXPECT_EQ(Branch("pack/label").index, -1);
  EXPECT_EQ(state_.variables(), json({{"x", 1}}));  // a child's vars are its own

  const BranchState& main = Branch("main");
  EXPECT_EQ(main.status, BranchStatus::kRunning);
  EXPECT_EQ(main.parked_on, "");
  EXPECT_EQ(main.parked_kind, "");
  EXPECT_EQ(main.current_step, "paid");
  EXPECT_EQ(main.output, json({{"label", "L"}, {"box", "B"}}));
  EXPECT_EQ(Task("pack/box/box").branch, "pack/box");
}

TEST_F(FoldTest, SignalReceivedBeforeItsWaitIsKeptAndConsumedBySignalSeq) {
  Start();
  ASSERT_OK(Fold(events::SignalReceived(P(), "payment", R"({"amount":5})")));
  const uint64_t signal_seq = state_.last_seq;
  ASSERT_OK(Fold(events::SignalReceived(P(), "other", "")));
  ASSERT_EQ(state_.signals.size(), 2u);
  EXPECT_EQ(state_.signals[0].seq, signal_seq);
  EXPECT_EQ(state_.signals[0].topic, "payment");
  EXPECT_EQ(state_.signals[0].payload, json({{"amount", 5}}));
  EXPECT_EQ(state_.signals[0].at_ns, EventChain::TimeOf(signal_seq));
  EXPECT_EQ(state_.signals[1].payload, nullptr);
  EXPECT_EQ(state_.status, ProcessStatus::kRunning);

  ASSERT_OK(Fold(events::TaskScheduled(H("paid"), "paid", "main", R"({"topic":"payment"})")));
  ASSERT_OK(Fold(events::TaskStarted(H("paid"), 1, "p1/paid/1")));
  ASSERT_OK(Fold(events::TaskCompleted(H("paid"), R"({"amount":5})", "", signal_seq)));
  ASSERT_EQ(state_.signals.size(), 1u);
  EXPECT_EQ(state_.signals[0].topic, "other");
  EXPECT_EQ(Task("paid").output, json({{"amount", 5}}));
}

TEST_F(FoldTest, SuspendedOnSignalThenResumed) {
  Start();
  ASSERT_OK(Fold(events::TaskScheduled(H("paid"), "paid", "main", R"({"topic":"payment"})")));
  ASSERT_OK(Fold(events::TaskStarted(H("paid"), 1, "k")));
  ASSERT_OK(Fold(events::BranchSuspended(H("main"), "paid", "signal")));
  ASSERT_OK(Fold(events::ProcessWaiting(P())));
  EXPECT_EQ(state_.status, ProcessStatus::kWaiting);
  EXPECT_EQ(Branch("main").parked_kind, "signal");
  ASSERT_OK(Fold(events::SignalReceived(P(), "payment", "{}")));
  ASSERT_OK(Fold(events::ProcessResumed(P(), "")));
  ASSERT_OK(Fold(events::BranchResumed(H("main"))));
  EXPECT_EQ(state_.status, ProcessStatus::kRunning);
  EXPECT_EQ(Branch("main").status, BranchStatus::kRunning);
  EXPECT_EQ(Branch("main").parked_on, "");
}

TEST_F(FoldTest, TimersAreArmedFiredAndCancelled) {
  Start();
  ASSERT_OK(Fold(events::TimerScheduled(P(), "t1", kT0 + 5, "sleep", "nap")));
  ASSERT_OK(Fold(events::TimerScheduled(P(), "t2", kT0 + 9, "timeout", "paid")));
  ASSERT_EQ(state_.timers.size(), 2u);
  EXPECT_EQ(state_.timers.at("t1").due_ns, kT0 + 5);
  EXPECT_EQ(state_.timers.at("t1").id, "t1");
  ASSERT_OK(Fold(events::TimerFired(P(), "t1", kT0 + 5)));
  EXPECT_EQ(state_.timers.count("t1"), 0u);
  ASSERT_OK(Fold(events::ProcessCompleted(P(), "{}")));
  // Clean-up after the end is allowed; arming or signalling is not.
  ASSERT_OK(Fold(events::TimerCancelled(P(), "t2", kT0 + 9)));
  EXPECT_TRUE(state_.timers.empty());
  EXPECT_EQ(Fold(events::TimerScheduled(P(), "t3", kT0, "sleep", "x")).code(),
            Status::Code::kCorruption);
  EXPECT_EQ(Fold(events::SignalReceived(P(), "late", "{}")).code(), Status::Code::kCorruption);
  // Firing a timer that is not armed is a harmless no-op.
  ASSERT_OK(Fold(events::TimerFired(P(), "never", 0)));
}

TEST_F(FoldTest, ApprovalApproved) {
  Start();
  ASSERT_OK(Fold(events::TaskScheduled(H("ship"), "ship", "main", "{}")));
  ASSERT_OK(Fold(events::TaskWaitingForApproval(H("ship"), "ship o1?", "", kT0 + 1000)));
  ASSERT_OK(Fold(events::BranchSuspended(H("main"), "ship", "approval")));
  ASSERT_TRUE(Task("ship").approval.has_value());
  EXPECT_EQ(Task("ship").status, TaskStatus::kWaitForApproval);
  EXPECT_EQ(Task("ship").approval->status, "pending");
  EXPECT_EQ(Task("ship").approval->prompt, "ship o1?");
  EXPECT_EQ(Task("ship").approval->expires_ns, kT0 + 1000);

  ASSERT_OK(Fold(events::TaskApproved(chain_.H("ship", "alice"), "alice", "ok")));
  const int64_t approved_at = TimeOfLast();
  ASSERT_OK(Fold(events::BranchResumed(H("main"))));
  ASSERT_OK(Fold(events::TaskStarted(H("ship"), 1, "k")));
  ASSERT_OK(Fold(events::TaskCompleted(H("ship"), "{}", "")));
  const Approval& a = *Task("ship").approval;
  EXPECT_EQ(a.status, "approved");
  EXPECT_EQ(a.by, "alice");
  EXPECT_EQ(a.reason, "ok");
  EXPECT_EQ(a.at_ns, approved_at);
  EXPECT_EQ(a.prompt, "ship o1?");
  EXPECT_EQ(Task("ship").status, TaskStatus::kCompleted);
}

// A paused process keeps its branch parked until it resumes; what it waits
// on follows the tasks, not the parked branch (issue 14).
TEST_F(FoldTest, WaitingOnAgreesWithTheTasksOfAPausedProcess) {
  auto kinds = [&] {
    std::vector<std::string> out;
    const json snapshot = ToJson(state_);
    for (const auto& w : snapshot["waiting_on"]) out.push_back(w["kind"]);
    return out;
  };
  Start();
  ASSERT_OK(Fold(events::TaskScheduled(H("ship"), "ship", "main", "{}")));
  ASSERT_OK(Fold(events::TaskWaitingForApproval(H("ship"), "ship o1?", "", 0)));
  ASSERT_OK(Fold(events::BranchSuspended(H("main"), "ship", "approval")));
  ASSERT_OK(Fold(events::ProcessWaiting(P())));
  EXPECT_EQ(kinds(), std::vector<std::string>({"approval"}));
  ASSERT_OK(Fold(events::ProcessPauseRequested(P(), "look")));
  ASSERT_OK(Fold(events::ProcessPaused(P(), "")));
  EXPECT_EQ(kinds(), std::vector<std::string>({"pause", "approval"}));
  ASSERT_OK(Fold(events::TaskApproved(chain_.H("ship", "alice"), "alice", "ok")));
  EXPECT_EQ(Task("ship").status, TaskStatus::kScheduled);
  EXPECT_EQ(Branch("main").status, BranchStatus::kSuspended);
  EXPECT_EQ(kinds(), std::vector<std::string>({"pause"}));
}

TEST_F(FoldTest, WaitingOnDropsATimerThatFiredWhilePaused) {
  auto kinds = [&] {
    std::vector<std::string> out;
    const json snapshot = ToJson(state_);
    for (const auto& w : snapshot["waiting_on"]) out.push_back(w["kind"]);
    return out;
  };
  Start();
  ASSERT_OK(Fold(events::TaskScheduled(H("cool"), "cool", "main", "{}")));
  ASSERT_OK(Fold(events::TimerScheduled(P(), "sleep/cool", kT0 + 5, "sleep", "cool")));
  ASSERT_OK(Fold(events::BranchSuspended(H("main"), "cool", "timer")));
  ASSERT_OK(Fold(events::ProcessWaiting(P())));
  EXPECT_EQ(kinds(), std::vector<std::string>({"timer"}));
  ASSERT_OK(Fold(events::ProcessPauseRequested(P(), "")));
  ASSERT_OK(Fold(events::ProcessPaused(P(), "")));
  ASSERT_OK(Fold(events::TimerFired(P(), "sleep/cool", kT0 + 5)));
  EXPECT_EQ(kinds(), std::vector<std::string>({"pause"}));
}

TEST_F(FoldTest, ApprovalRejectedFailsTheTask) {
  Start();
  ASSERT_OK(Fold(events::TaskScheduled(H("ship"), "ship", "main", "{}")));
  ASSERT_OK(Fold(events::TaskWaitingForApproval(H("ship"), "ship?", "big-amount", 0)));
  ASSERT_OK(Fold(events::TaskRejected(H("ship"), "bob", "too big")));
  const TaskState& t = Task("ship");
  EXPECT_EQ(t.status, TaskStatus::kFailed);
  EXPECT_EQ(t.error, "rejected by bob: too big");
  EXPECT_EQ(t.ended_ns, TimeOfLast());
  EXPECT_EQ(t.approval->status, "rejected");
  EXPECT_EQ(t.approval->rule, "big-amount");
  EXPECT_EQ(t.approval->by, "bob");
  // A decided approval cannot be decided again.
  EXPECT_EQ(Fold(events::TaskApproved(H("ship"), "alice", "")).code(), Status::Code::kCorruption);
}

TEST_F(FoldTest, RejectionWithoutReason) {
  Start();
  ASSERT_OK(Fold(events::TaskScheduled(H("ship"), "ship", "main", "{}")));
  ASSERT_OK(Fold(events::TaskWaitingForApproval(H("ship"), "ship?", "", 0)));
  ASSERT_OK(Fold(events::TaskRejected(H("ship"), "bob", "")));
  EXPECT_EQ(Task("ship").error, "rejected by bob");
}

TEST_F(FoldTest, RejectionWithOnErrorMovesTheBranchToThatStep) {
  Start();
  ASSERT_OK(Fold(events::TaskScheduled(H("ship"), "ship", "main", "{}")));
  ASSERT_OK(Fold(events::TaskWaitingForApproval(H("ship"), "ship?", "", 0)));
  ASSERT_OK(Fold(events::BranchSuspended(H("main"), "ship", "approval")));
  ASSERT_OK(Fold(events::TaskRejected(H("ship"), "bob", "no", "fallback")));
  EXPECT_EQ(Task("ship").status, TaskStatus::kFailed);
  EXPECT_EQ(Task("ship").next, "fallback");
  EXPECT_EQ(Branch("main").current_step, "fallback");
  EXPECT_EQ(Branch("main").current_task, "");
}

TEST_F(FoldTest, TheAllowingPolicyRuleIsKeptWithTheTask) {
  Start();
  ASSERT_OK(Fold(events::TaskScheduled(H("get"), "get", "main", "{}", 1, "internal-http")));
  EXPECT_EQ(Task("get").policy_rule, "internal-http");
  ProcessState copy = state_;
  auto restored = StateFromJson(ToJson(copy));
  ASSERT_OK(restored);
  EXPECT_EQ(restored->FindTask("get")->policy_rule, "internal-http");
}

TEST_F(FoldTest, BlockedSkippedAndCancelledTasks) {
  Start();
  ASSERT_OK(Fold(events::TaskScheduled(H("rm"), "rm", "main", "{}")));
  ASSERT_OK(Fold(events::TaskBlocked(H("rm"), "no-exec", "exec is denied")));
  EXPECT_EQ(Task("rm").status, TaskStatus::kBlocked);
  EXPECT_EQ(Task("rm").blocked_rule, "no-exec");
  EXPECT_EQ(Task("rm").error, "exec is denied");
  EXPECT_EQ(Task("rm").ended_ns, TimeOfLast());

  ASSERT_OK(Fold(events::TaskScheduled(H("approve"), "approve", "main", "{}")));
  ASSERT_OK(Fold(events::TaskSkipped(H("approve"), "when was false", "pack")));
  EXPECT_EQ(Task("approve").status, TaskStatus::kSkipped);
  EXPECT_EQ(Task("approve").next, "pack");
  EXPECT_EQ(Branch("main").current_step, "pack");
  EXPECT_EQ(Branch("main").current_task, "");

  ASSERT_OK(Fold(events::TaskScheduled(H("pack"), "pack", "main", "{}")));
  ASSERT_OK(Fold(events::TaskStarted(H("pack"), 1, "k")));
  ASSERT_OK(Fold(events::TaskCancelled(H("pack"), "process cancelled")));
  EXPECT_EQ(Task("pack").error, "cancelled: process cancelled");
  ASSERT_OK(Fold(events::TaskScheduled(H("other"), "other", "main", "{}")));
  ASSERT_OK(Fold(events::TaskCancelled(H("other"), "")));
  EXPECT_EQ(Task("other").error, "cancelled");
}

TEST_F(FoldTest, PauseResumeAndCancel) {
  Start();
  ASSERT_OK(Fold(events::ProcessPauseRequested(P(), "maintenance")));
  EXPECT_EQ(state_.pause_reason, "maintenance");
  ASSERT_OK(Fold(events::ProcessPaused(P(), "")));
  EXPECT_EQ(state_.status, ProcessStatus::kPaused);
  EXPECT_EQ(state_.pause_reason, "maintenance");
  ASSERT_OK(Fold(events::ProcessResumeRequested(P(), "")));
  EXPECT_EQ(state_.status, ProcessStatus::kResumeRequested);
  ASSERT_OK(Fold(events::ProcessResumed(P(), "")));
  EXPECT_EQ(state_.status, ProcessStatus::kRunning);
  EXPECT_EQ(state_.pause_reason, "");
  // A resume before the running work ended withdraws the pause.
  ASSERT_OK(Fold(events::ProcessPauseRequested(P(), "again")));
  ASSERT_OK(Fold(events::ProcessResumeRequested(P(), "")));
  ASSERT_OK(Fold(events::ProcessResumed(P(), "")));
  EXPECT_EQ(state_.status, ProcessStatus::kRunning);
  ASSERT_OK(Fold(events::ProcessCancelRequested(P(), "user")));
  ASSERT_OK(Fold(events::BranchCancelled(H("main"), "process cancelled")));
  ASSERT_OK(Fold(events::ProcessCancelled(P(), "user")));
  EXPECT_EQ(state_.status, ProcessStatus::kCancelled);
  EXPECT_EQ(Branch("main").status, BranchStatus::kCancelled);
  EXPECT_EQ(state_.ended_ns, TimeOfLast());
  EXPECT_FALSE(state_.error.has_value());
}

TEST_F(FoldTest, IllegalEventIsRefusedAndStateIsUnchanged) {
  Start();
  RunTask("reserve", "main", "{}", "");
  const json before = ToJson(state_);
  StoredEvent bad = chain_.Next(events::TaskStarted(H("reserve"), 2, "k"));
  Status s = Apply(state_, bad);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("'p1'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("seq 7"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("TaskStarted"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("'reserve'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("completed"), std::string::npos) << s.message();
  EXPECT_EQ(ToJson(state_), before);
}

TEST_F(FoldTest, SeqGapIsRefused) {
  Start();
  const json before = ToJson(state_);
  StoredEvent gap = chain_.At(events::ProcessWaiting(P()), state_.last_seq + 2);
  Status s = Apply(state_, gap);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("expected seq 4"), std::string::npos) << s.message();
  StoredEvent replayed = chain_.At(events::ProcessWaiting(P()), state_.last_seq);
  EXPECT_EQ(Apply(state_, replayed).code(), Status::Code::kCorruption);
  EXPECT_EQ(ToJson(state_), before);
}

TEST_F(FoldTest, EventOfAnotherStreamIsRefused) {
  Start();
  EventChain other("p2");
  StoredEvent foreign = other.At(events::ProcessWaiting(other.P()), state_.last_seq + 1);
  EXPECT_EQ(Apply(state_, foreign).code(), Status::Code::kCorruption);
}

TEST_F(FoldTest, FirstEventMustCreateTheProcess) {
  EXPECT_EQ(Fold(events::ProcessStarted(P())).code(), Status::Code::kCorruption);
  EXPECT_EQ(state_.last_seq, 0u);
  ASSERT_OK(Fold(events::ProcessCreated(P(), "w", "", "", "", "")));
  EXPECT_EQ(state_.inputs, json::object());
  EXPECT_EQ(state_.status, ProcessStatus::kPending);
  EXPECT_EQ(Fold(events::ProcessCreated(P(), "w", "", "", "", "")).code(),
            Status::Code::kCorruption);
}

TEST_F(FoldTest, EntitiesMustExistExceptWhereTheEventCreatesThem) {
  Start();
  const json before = ToJson(state_);
  EXPECT_EQ(Fold(events::BranchStarted(H("main"), {})).code(), Status::Code::kCorruption);
  EXPECT_EQ(Fold(events::BranchCompleted(H("ghost"), "")).code(), Status::Code::kCorruption);
  EXPECT_EQ(Fold(events::VariablesSet(H("ghost"), "{}")).code(), Status::Code::kCorruption);
  EXPECT_EQ(Fold(events::TaskStarted(H("ghost"), 1, "k")).code(), Status::Code::kCorruption);
  EXPECT_EQ(Fold(events::TaskScheduled(H("t"), "t", "ghost", "{}")).code(),
            Status::Code::kCorruption);
  EXPECT_EQ(Fold(events::ProcessWaiting(H("not-the-process"))).code(), Status::Code::kCorruption);
  EXPECT_EQ(ToJson(state_), before);
}

TEST_F(FoldTest, MalformedJsonFieldsAreKeptAsText) {
  Start();
  ASSERT_OK(Fold(events::TaskScheduled(H("t"), "t", "main", "{not json")));
  EXPECT_EQ(Task("t").input, "{not json");
  ASSERT_OK(Fold(events::VariablesSet(H("main"), "[1,2]")));  // not an object: no-op
  EXPECT_EQ(state_.variables(), json({{"x", 1}}));
}

TEST_F(FoldTest, CheckTransitionRefusesWithAReadableReason) {
  Start();
  RunTask("reserve", "main", "{}", "");
  Status s = CheckTransition(state_, EventType::TaskApproved, "reserve");
  EXPECT_EQ(s.code(), Status::Code::kRefused);
  EXPECT_EQ(s.message(), "TaskApproved: task 'reserve' is completed");
  EXPECT_EQ(CheckTransition(state_, EventType::ProcessPaused, "p1").message(),
            "ProcessPaused: process 'p1' is running");
  EXPECT_EQ(CheckTransition(state_, EventType::TaskApproved, "nope").message(),
            "TaskApproved: task 'nope' does not exist");
  EXPECT_OK(CheckTransition(state_, EventType::ProcessPauseRequested, "p1"));
  EXPECT_OK(CheckTransition(state_, EventType::TaskScheduled, "new-task"));
  EXPECT_OK(CheckTransition(ProcessState(), EventType::ProcessCreated, "p9"));
  EXPECT_EQ(CheckTransition(ProcessState(), EventType::ProcessStarted, "p9").code(),
            Status::Code::kRefused);
}

TEST_F(FoldTest, LookupsFallBackWhenVectorsAreFilledDirectly) {
  ProcessState s;
  s.branches.push_back({.id = "main", .vars = json({{"v", 1}})});
  s.tasks.push_back({.id = "a"});
  ASSERT_NE(s.FindBranch("main"), nullptr);
  ASSERT_NE(s.FindTask("a"), nullptr);
  EXPECT_EQ(s.FindTask("b"), nullptr);
  EXPECT_EQ(s.variables(), json({{"v", 1}}));
  EXPECT_EQ(ProcessState().variables(), json::object());
}

TEST_F(FoldTest, CopiedStateKeepsWorkingLookups) {
  Start();
  RunTask("reserve", "main", "{}", "");
  ProcessState copy = state_;
  ASSERT_NE(copy.FindTask("reserve"), nullptr);
  EXPECT_EQ(copy.FindTask("reserve"), &copy.tasks[0]);
  EXPECT_EQ(copy.FindBranch("main"), &copy.branches[0]);
}

TEST_F(FoldTest, LookupsOverManyTasks) {
  Start();
  for (int i = 0; i < 3000; ++i) {
    std::string id = "t" + std::to_string(i);
    RunTask(id, "main", std::to_string(i), "t" + std::to_string(i + 1));
  }
  ASSERT_EQ(state_.tasks.size(), 3000u);
  for (int i = 0; i < 3000; ++i) {
    std::string id = "t" + std::to_string(i);
    const TaskState* t = state_.FindTask(id);
    ASSERT_EQ(t, &state_.tasks[i]) << id;
    EXPECT_EQ(t->output, json(i));
  }
  EXPECT_EQ(state_.FindTask("t3000"), nullptr);
  EXPECT_EQ(state_.FindTask(""), nullptr);
  EXPECT_EQ(state_.FindTask("t"), nullptr);
  // A task scheduled again (a new id) after many others still folds.
  ASSERT_OK(Fold(events::TaskScheduled(H("t5#2"), "t5", "main", "{}", 2)));
  EXPECT_EQ(state_.FindTask("t5#2"), &state_.tasks.back());
  EXPECT_EQ(Fold(events::TaskScheduled(H("t7"), "t7", "main", "{}")).code(),
            Status::Code::kCorruption);
}

// The fold parses small `*_json` values itself; they must come out exactly
// (types included) as the JSON parser makes them.
bool SameJson(const json& a, const json& b) {
  if (a.type() != b.type()) return false;
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(), jt = b.begin(); it != a.end(); ++it, ++jt) {
      if (it.key() != jt.key() || !SameJson(it.value(), jt.value())) return false;
    }
    return true;
  }
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (!SameJson(a[i], b[i])) return false;
    }
    return true;
  }
  return a == b;
}

TEST_F(FoldTest, JsonFieldsFoldAsTheParserReadsThem) {
  Start();
  std::string deep;
  for (int i = 0; i < 20; ++i) deep += "{\"k\":";
  deep += "1";
  for (int i = 0; i < 20; ++i) deep += "}";
  const std::vector<std::string> texts = {
      "0",
      "7",
      "-1",
      "-0",
      "01",
      "-01",
      "00",
      "123456789012345678",
      "-123456789012345678",
      "1234567890123456789",
      "18446744073709551615",
      "18446744073709551616",
      "1.5",
      "1e3",
      "1E3",
      "-",
      "+1",
      "true",
      "false",
      "null",
      "tru",
      "nul",
      "truex",
      R"("s")",
      R"("")",
      R"("a\"b")",
      R"("a\\b")",
      "\"\x01\"",
      "\"\x7f\"",
      "\"\xc3\xa9\"",
      "\"\xff\"",
      R"("open)",
      "{}",
      "[]",
      "{ }",
      "[ ]",
      R"({"a":1,"a":2})",
      R"({"b":1,"a":[true,null,"x",-3]})",
      R"([1,[2,{"k":[]}]])",
      R"({"x":4000005})",
      " 1",
      "1 ",
      R"({"a":1,})",
      "[1,]",
      R"({"a"})",
      R"({"a":})",
      R"({a:1})",
      "[1 2]",
      "{\"a\":1}x",
      "not json",
      deep,
      R"({"n":-5,"s":"v","t":true,"f":false,"z":null,"o":{},"l":[]})"};
  int i = 0;
  for (const std::string& text : texts) {
    std::string id = "j" + std::to_string(i++);
    ASSERT_OK(Fold(events::TaskScheduled(H(id), id, "main", text)));
    ASSERT_OK(Fold(events::TaskStarted(H(id), 1, "k")));
    ASSERT_OK(Fold(events::TaskCompleted(H(id), text, "")));
    const TaskState& t = Task(id);
    const json expected = internal::ParseJsonField(text);
    EXPECT_TRUE(SameJson(t.input, expected)) << text << ": " << t.input.dump();
    EXPECT_TRUE(SameJson(t.output, expected)) << text << ": " << t.output.dump();
    EXPECT_TRUE(SameJson(Branch("main").output, expected)) << text;
  }
}

// Replay speed of the fold (decode + apply) over 1M events of 20,000
// processes with 16 tasks each. Run by hand:
//   events_test --gtest_also_run_disabled_tests --gtest_filter='*Throughput*'
TEST(FoldPerfTest, DISABLED_ReplayThroughput) {
  constexpr int kProcesses = 20'000;
  constexpr int kTasks = 16;
  std::vector<std::vector<std::string>> streams;
  size_t total = 0;
  for (int p = 0; p < kProcesses; ++p) {
    EventChain chain("p_" + std::to_string(p));
    std::vector<std::string>& values = streams.emplace_back();
    auto add = [&](Draft d) {
      StoredEvent e = chain.Next(std::move(d));
      chain.Commit(e);
      values.push_back(e.value());
    };
    add(events::ProcessCreated(chain.P(), "bench", "h", R"({"n":1})", "{}", ""));
    add(events::ProcessStarted(chain.P()));
    add(events::BranchStarted(chain.H("main"), {.first_step = "step-0"}));
    for (int i = 0; i < kTasks; ++i) {
      std::string id = "step-" + std::to_string(i);
      add(events::TaskScheduled(chain.H(id), id, "main", "{}"));
      add(events::TaskStarted(chain.H(id), 1, chain.stream() + "/" + id + "/1"));
      add(events::TaskCompleted(chain.H(id), R"({"ok":true})", "step-" + std::to_string(i + 1)));
    }
    add(events::BranchCompleted(chain.H("main"), R"({"ok":true})"));
    add(events::ProcessCompleted(chain.P(), "{}"));
    total += values.size();
  }
  auto start = std::chrono::steady_clock::now();
  for (auto& values : streams) {
    ProcessState state;
    for (std::string& v : values) {
      auto e = StoredEvent::Decode(std::move(v));
      ASSERT_TRUE(e.ok());
      ASSERT_OK(Apply(state, *e));
    }
    ASSERT_EQ(state.status, ProcessStatus::kCompleted);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("folded %zu events in %.3f s: %.2f M events/s\n", total, secs, total / secs / 1e6);
}

}  // namespace
}  // namespace keel::events

namespace keel::events {
namespace {

// The process actor folds a batch before it is durable: stamped drafts, read
// back unsealed, must fold to the state that the sealed events fold to.
class SpeculativeFoldTest : public FoldTest {
 protected:
  std::vector<Draft> Step(std::string_view id, std::string_view output) {
    std::vector<Draft> batch;
    batch.push_back(events::TaskScheduled(H(id), id, "main", R"({"n":1})"));
    batch.push_back(events::TaskStarted(H(id), 1, "p1/" + std::string(id) + "/1"));
    batch.push_back(events::TaskCompleted(H(id), output, ""));
    batch.push_back(events::VariablesSet(H("main"), R"({"y":2})"));
    batch.push_back(events::BranchCompleted(H("main"), output));
    batch.push_back(events::ProcessCompleted(P(), R"({"ok":true})"));
    return batch;
  }
};

TEST_F(SpeculativeFoldTest, StampedDraftsFoldLikeTheSealedEvents) {
  Start();
  ProcessState ahead = state_;
  for (Draft& d : Step("t", R"({"v":3})")) {
    const uint64_t seq = ahead.last_seq + 1;
    Stamp(d, seq, EventChain::TimeOf(seq));
    ASSERT_OK(Apply(ahead, StoredEvent::Unsealed(d)));
    ASSERT_OK(Fold(d));  // the sealed copy keeps the stamped time
  }
  EXPECT_EQ(TimeOfLast(), ahead.updated_ns);
  ahead.last_hash = state_.last_hash;  // known only once sealed
  EXPECT_EQ(ToJson(ahead), ToJson(state_));
}

TEST_F(SpeculativeFoldTest, SealKeepsAStampedTimeAndStampsTheRest) {
  Draft stamped = events::ProcessStarted(P());
  Stamp(stamped, 7, 42);
  auto kept = StoredEvent::Decode(Seal(stamped, 7, 1, 99, std::string(kHashSize, '\0')));
  ASSERT_OK(kept.status());
  EXPECT_EQ(kept->time_ns(), 42);
  EXPECT_EQ(kept->seq(), 7u);
  auto sealed = StoredEvent::Decode(
      Seal(events::ProcessStarted(P()), 7, 1, 99, std::string(kHashSize, '\0')));
  ASSERT_OK(sealed.status());
  EXPECT_EQ(sealed->time_ns(), 99);
}

TEST_F(SpeculativeFoldTest, RefusesTheSecondCancelOfOneTaskInABatch) {
  Start();
  ASSERT_OK(Fold(events::TaskScheduled(H("t"), "t", "main", "{}")));
  Draft first = events::TaskCancelled(H("t"), "join decided");
  Draft second = events::TaskCancelled(H("t"), "process failed");
  Stamp(first, state_.last_seq + 1, 1);
  Stamp(second, state_.last_seq + 2, 1);
  ASSERT_OK(Apply(state_, StoredEvent::Unsealed(first)));
  Status s = Apply(state_, StoredEvent::Unsealed(second));
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("cancelled"), std::string::npos) << s.ToString();
}

// steps.<id> of expressions: the newest visit of each step, kept up as
// tasks come (a loop's step cost must not grow with its history), and right
// for a state whose tasks were filled or replaced directly (a snapshot).
TEST(NewestVisitsTest, NamesEachStepsNewestTaskAsTasksAreAdded) {
  ProcessState state;
  auto add = [&](const std::string& id, const std::string& step) {
    TaskState& t = state.tasks.emplace_back();
    t.id = id;
    t.step = step;
  };
  add("work", "work");
  add("count", "count");
  EXPECT_EQ(state.NewestVisits().at("work"), 0u);
  add("work#2", "work");
  EXPECT_EQ(state.NewestVisits().at("work"), 2u);
  EXPECT_EQ(state.NewestVisits().at("count"), 1u);
  ProcessState copy = state;
  add("count#2", "count");
  EXPECT_EQ(state.NewestVisits().at("count"), 3u);
  EXPECT_EQ(copy.NewestVisits().at("count"), 1u);
  copy.tasks.clear();  // replaced wholesale: nothing stale survives
  TaskState& only = copy.tasks.emplace_back();
  only.id = "other";
  only.step = "other";
  EXPECT_EQ(copy.NewestVisits().size(), 1u);
  EXPECT_EQ(copy.NewestVisits().at("other"), 0u);
}

}  // namespace
}  // namespace keel::events
