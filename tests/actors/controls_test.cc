// Controls and waits through the Node API on real actors and a real store:
// pause/resume/cancel/retry, approvals, signals, durable timers and policy
// gates. Tests wait on conditions (snapshots, activity progress), never on
// how fast the machine is.

#include <signal.h>

#include <cerrno>
#include <fstream>
#include <future>

#include "tests/actors/controls_fixture.h"

namespace keel::testing {
namespace {

// ---- pause / resume --------------------------------------------------------

const char kHoldThenCount[] = R"(name: hc
steps:
  - {id: a, activity: hold, with: {key: a}}
  - {id: b, activity: count, with: {key: b}}
)";

TEST_F(ControlsTest, PauseLetsTheRunningTaskFinishAndStartsNothingNew) {
  Open();
  std::string id = Start(kHoldThenCount);
  WaitHolding("a");
  auto paused = node_->Pause(id, {.reason = "inspect", .by = "alice"});
  ASSERT_OK(paused);
  EXPECT_EQ((*paused)["status"], "pauseRequested");
  EXPECT_EQ(node_->Pause(id).status().code(), Status::Code::kRefused);

  board_->Release("a");
  Json snap = WaitStatus(id, "paused");
  EXPECT_EQ(Task(snap, "a")["status"], "completed");
  EXPECT_TRUE(Task(snap, "b").is_null());
  EXPECT_EQ(board_->Count("b"), 0);
  EXPECT_EQ(snap["waiting_on"][0]["kind"], "pause");
  EXPECT_EQ(snap["pause_reason"], "inspect");
  EXPECT_EQ(node_->Pause(id).status().code(), Status::Code::kRefused);

  ASSERT_OK(node_->Resume(id, {.reason = "go on"}));
  EXPECT_EQ(WaitStatus(id, "completed")["status"], "completed");
  EXPECT_EQ(board_->Count("b"), 1);
  auto resumed = node_->Resume(id);
  EXPECT_EQ(resumed.status().code(), Status::Code::kRefused);

  auto events = Events(id);
  EXPECT_EQ(CountOf(events, "ProcessPauseRequested"), 1);
  EXPECT_EQ(CountOf(events, "ProcessPaused"), 1);
  EXPECT_EQ(CountOf(events, "ProcessResumeRequested"), 1);
  EXPECT_EQ(CountOf(events, "ProcessResumed"), 1);
}

TEST_F(ControlsTest, ResumingARunningProcessIsRefused) {
  Open();
  std::string id = Start(kHoldThenCount);
  WaitHolding("a");
  auto resumed = node_->Resume(id);
  EXPECT_EQ(resumed.status().code(), Status::Code::kRefused);
  EXPECT_NE(resumed.status().message().find("running"), std::string::npos);
  board_->Release("a");
  WaitStatus(id, "completed");
  EXPECT_EQ(CountOf(Events(id), "ProcessResumeRequested"), 0);
}

TEST_F(ControlsTest, ResumeBeforeTheRunningTaskEndsWithdrawsThePause) {
  Open();
  std::string id = Start(kHoldThenCount);
  WaitHolding("a");
  ASSERT_OK(node_->Pause(id));
  ASSERT_OK(node_->Resume(id));
  board_->Release("a");
  WaitStatus(id, "completed");
  EXPECT_EQ(board_->Count("b"), 1);
  auto events = Events(id);
  EXPECT_EQ(CountOf(events, "ProcessPaused"), 0);
  EXPECT_EQ(CountOf(events, "ProcessResumed"), 1);
}

TEST_F(ControlsTest, PauseNowInterruptsTheTaskWhichRunsAgainOnResume) {
  Open();
  std::string id = Start(kHoldThenCount);
  WaitHolding("a");
  ASSERT_OK(node_->Pause(id, {.now = true}));
  Json snap = WaitStatus(id, "paused");
  EXPECT_EQ(Task(snap, "a")["status"], "running");  // no outcome recorded
  EXPECT_EQ(Task(snap, "a")["attempts"], 1);
  ASSERT_OK(node_->Resume(id));
  WaitHolding("a", 2);
  board_->Release("a");
  snap = WaitStatus(id, "completed");
  EXPECT_EQ(Task(snap, "a")["attempts"], 2);
  EXPECT_EQ(CountOf(Events(id), "TaskCompleted", "a"), 1);
}

TEST_F(ControlsTest, ClosingTheNodeTellsRunningActivitiesToStopAndReopenRunsThemAgain) {
  Open();
  std::string id = Start(kHoldThenCount);
  WaitHolding("a");
  Close();  // would wait forever for `hold` had its token not been cancelled
  EXPECT_EQ(board_->Count("a/cancelled"), 1);
  EXPECT_EQ(board_->Count("a/returned"), 0);
  Open();
  WaitHolding("a", 2);
  board_->Release("a");
  Json snap = WaitStatus(id, "completed");
  EXPECT_EQ(Task(snap, "a")["attempts"], 2);
}

TEST_F(ControlsTest, AnOutputThatIsNotUtf8IsRecordedWithReplacementCharacters) {
  Open();
  ASSERT_OK(node_->RegisterActivity(
      "latin1", [](const ActivityContext&) { return ActivityResult::Ok(Json("caf\xe9")); }));
  std::string id = Start(R"(name: l1
steps:
  - {id: a, activity: latin1, save_as: v}
)");
  Json snap = WaitStatus(id, "completed");
  EXPECT_EQ(Task(snap, "a")["output"], "caf\xef\xbf\xbd");  // U+FFFD
  EXPECT_EQ(snap["variables"]["v"], "caf\xef\xbf\xbd");
}

TEST_F(ControlsTest, DuringARetryBackoffTheProcessHasNoActorAndItsTimerWakesIt) {
  Open();
  auto board = board_;
  ASSERT_OK(node_->RegisterActivity("flaky", [board](const ActivityContext&) {
    board->Bump("flaky");
    if (!board->Released("flaky")) return ActivityResult::Fail("not yet", true);
    return ActivityResult::Ok("done");
  }));
  std::string id = Start(R"(name: backoff
steps:
  - {id: a, activity: flaky, retry: {max_attempts: 2, backoff: 4s}}
)");
  WaitFor([&] { return board_->Count("flaky") == 1; });
  // The first attempt failed; until the backoff ends nothing runs or waits
  // on a live actor.
  WaitFor([&] { return node_->Metrics().processes_live == 0; });
  Json snap = node_->Get(id).value();
  EXPECT_EQ(snap["status"], "running");
  EXPECT_EQ(Task(snap, "a")["status"], "retrying");
  board_->Release("flaky");
  snap = WaitStatus(id, "completed");
  EXPECT_EQ(Task(snap, "a")["attempts"], 2);
  EXPECT_EQ(board_->Count("flaky"), 2);
}

// ---- Submit / Await -----------------------------------------------------------

const char kHoldThenOutput[] = R"(name: ho
inputs: {v: {required: true}}
steps:
  - {id: a, activity: hold, with: {key: a, value: "${inputs.v}"}, save_as: out}
outputs: {got: "vars.out"}
)";

TEST_F(ControlsTest, SubmitAndAwaitAnswerWithTheOutcomeWhileWaitAnswersWithTheSnapshot) {
  Open();
  auto wf = ParseWorkflow(kHoldThenOutput, "ho.yaml");
  ASSERT_OK(wf);
  auto id = node_->Submit(*wf, {{"v", 7}}, {.idempotency_key = "k1"});
  ASSERT_OK(id);
  // The same key names the same process.
  auto again = node_->Submit(*wf, {{"v", 8}}, {.idempotency_key = "k1"});
  ASSERT_OK(again);
  EXPECT_EQ(*again, *id);
  WaitHolding("a");

  // An Await and a Wait on the same live process each get their own answer.
  Result<ProcessOutcome> outcome = Status::Internal("not set");
  Result<Json> snapshot = Status::Internal("not set");
  std::thread awaiting([&] { outcome = node_->Await(*id, std::chrono::seconds(60)); });
  std::thread waiting([&] { snapshot = node_->Wait(*id, std::chrono::seconds(60)); });
  board_->Release("a");
  awaiting.join();
  waiting.join();
  ASSERT_OK(outcome);
  EXPECT_EQ(outcome->id, *id);
  EXPECT_EQ(outcome->status, "completed");
  EXPECT_EQ(outcome->outputs, Json({{"got", 7}}));
  EXPECT_TRUE(outcome->error.is_null());
  ASSERT_OK(snapshot);
  EXPECT_EQ((*snapshot)["status"], "completed");
  EXPECT_EQ((*snapshot)["outputs"], outcome->outputs);
  EXPECT_EQ(Task(*snapshot, "a")["status"], "completed");

  // At rest, with no actor: read from the store.
  auto later = node_->Await(*id, std::chrono::seconds(60));
  ASSERT_OK(later);
  EXPECT_EQ(later->outputs, outcome->outputs);
  EXPECT_EQ(node_->Await("no-such-process", std::chrono::seconds(1)).status().code(),
            Status::Code::kNotFound);
}

TEST_F(ControlsTest, ClosingTheNodeEndsAWaitOnAProcessThatWillNotRest) {
  Open();
  std::string id = Start(kHoldThenOutput, {{"v", 1}});
  WaitHolding("a");
  auto awaiting =
      std::async(std::launch::async, [&] { return node_->Await(id, std::chrono::hours(1)); });
  // Whether the wait began before the close or after, it ends with it (the
  // guard catches a hang; it is not a timing assertion).
  ASSERT_OK(node_->Close());
  ASSERT_EQ(awaiting.wait_for(std::chrono::seconds(60)), std::future_status::ready)
      << "Await outlived Close";
  auto outcome = awaiting.get();
  EXPECT_EQ(outcome.status().code(), Status::Code::kAborted) << outcome.status().ToString();
  node_.reset();
}

TEST_F(ControlsTest, AwaitGivesTheErrorOfAFailedProcess) {
  Open();
  auto wf =
      ParseWorkflow("name: t\nsteps:\n  - {id: a, activity: toggle, with: {key: off}}\n", "t.yaml");
  ASSERT_OK(wf);
  auto id = node_->Submit(*wf, Json::object());
  ASSERT_OK(id);
  auto outcome = node_->Await(*id, std::chrono::seconds(60));
  ASSERT_OK(outcome);
  EXPECT_EQ(outcome->status, "failed");
  ASSERT_TRUE(outcome->error.is_string());
  EXPECT_NE(outcome->error.get<std::string>().find("off is off"), std::string::npos)
      << outcome->error;
  EXPECT_EQ(node_->Get(*id).value()["error"], outcome->error);
}

TEST_F(ControlsTest, PauseStepParksTheProcessUntilResumed) {
  Open();
  std::string id = Start(R"(name: ps
inputs: {who: {default: bob}}
steps:
  - {id: hold, pause: "check ${inputs.who}"}
  - {id: after, activity: count, with: {key: after}}
)");
  Json snap = WaitStatus(id, "paused");
  EXPECT_EQ(snap["pause_reason"], "check bob");
  EXPECT_EQ(board_->Count("after"), 0);
  ASSERT_OK(node_->Resume(id));
  WaitStatus(id, "completed");
  EXPECT_EQ(board_->Count("after"), 1);
}

TEST_F(ControlsTest, ControlsOnAnUnknownProcessAreNotFound) {
  Open();
  EXPECT_EQ(node_->Pause("p_nope").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(node_->Signal("p_nope", "t", 1).status().code(), Status::Code::kNotFound);
}

// A Start that reuses the id of a resting process spawns an actor whose
// creation then fails; a control sent meanwhile may reach that actor. It must
// still reach the process, never get the failed Start's Conflict. (The window
// is small: the loop makes it likely, not certain, to be hit.)
TEST_F(ControlsTest, AControlRacingAStartOfATakenIdReachesTheProcess) {
  Open();
  const char kWaits[] = "name: w\nsteps:\n  - {id: a, wait_signal: never}\n";
  auto wf = ParseWorkflow(kWaits, "w.yaml");
  ASSERT_OK(wf);
  ASSERT_OK(node_->Start(*wf, Json::object(), {.id = "taken"}));
  WaitStatus("taken", "waiting");
  for (int i = 0; i < 200; ++i) {
    Result<Json> duplicate = Status::Internal("not set");
    std::thread start([&] { duplicate = node_->Start(*wf, Json::object(), {.id = "taken"}); });
    auto signalled = node_->Signal("taken", "other", i);
    start.join();
    ASSERT_TRUE(signalled.ok()) << "round " << i << ": " << signalled.status().ToString();
    EXPECT_EQ(duplicate.status().code(), Status::Code::kRefused) << duplicate.status().ToString();
  }
  EXPECT_EQ(node_->Get("taken").value()["signals"].size(), 200u);
}

// ---- cancel ----------------------------------------------------------------

TEST_F(ControlsTest, CancelStopsALongExecChildAndASecondCancelIsRefused) {
  Open();
  std::string pid_file = dir_ / "child.pid";
  std::string id = Start(R"(name: long
inputs: {pidfile: {required: true}}
steps:
  - id: run
    activity: exec
    with: {argv: [sh, -c, "echo $$ > ${inputs.pidfile}.tmp && mv ${inputs.pidfile}.tmp ${inputs.pidfile} && exec sleep 1000"]}
)",
                         {{"pidfile", pid_file}});
  pid_t child = 0;
  WaitFor([&] {
    std::ifstream in(pid_file);
    return static_cast<bool>(in >> child);
  });
  ASSERT_GT(child, 0);
  ASSERT_EQ(kill(child, 0), 0);
  auto cancelled = node_->Cancel(id, {.reason = "stop it", .by = "ops"});
  ASSERT_OK(cancelled);
  Json snap = WaitStatus(id, "cancelled");
  EXPECT_EQ(Task(snap, "run")["status"], "cancelled");
  WaitFor([&] { return kill(child, 0) != 0 && errno == ESRCH; });

  auto again = node_->Cancel(id);
  EXPECT_EQ(again.status().code(), Status::Code::kRefused);
  EXPECT_NE(again.status().message().find("already ended"), std::string::npos)
      << again.status().ToString();
  auto events = Events(id);
  EXPECT_EQ(CountOf(events, "ProcessCancelRequested"), 1);
  EXPECT_EQ(CountOf(events, "TaskCancelled", "run"), 1);
  EXPECT_EQ(CountOf(events, "ProcessCancelled"), 1);
}

TEST_F(ControlsTest, ALateCompletionOfACancelledTaskIsNotRecorded) {
  Open();
  std::string id = Start(R"(name: late
steps: [{id: a, activity: hold, with: {key: a, heed_cancel: false}}]
)");
  WaitHolding("a");
  ASSERT_OK(node_->Cancel(id));
  WaitStatus(id, "cancelled");
  board_->Release("a");
  WaitFor([&] { return board_->Count("a/returned") == 1; });
  auto events = Events(id);  // closes the node: the late result has been handled
  EXPECT_EQ(CountOf(events, "TaskCompleted", "a"), 0);
  EXPECT_EQ(CountOf(events, "TaskCancelled", "a"), 1);
}

TEST_F(ControlsTest, EveryControlOnAFinishedProcessIsRefused) {
  Open();
  std::string id = Start("name: quick\nsteps: [{id: a, activity: count}]\n");
  WaitStatus(id, "completed");
  auto cancelled = node_->Cancel(id);
  EXPECT_EQ(cancelled.status().code(), Status::Code::kRefused);
  EXPECT_NE(cancelled.status().message().find("completed"), std::string::npos)
      << cancelled.status().ToString();
  EXPECT_EQ(node_->Pause(id).status().code(), Status::Code::kRefused);
  EXPECT_EQ(node_->Resume(id).status().code(), Status::Code::kRefused);
  EXPECT_EQ(node_->Signal(id, "t", nullptr).status().code(), Status::Code::kRefused);
  EXPECT_EQ(node_->Retry(id).status().code(), Status::Code::kRefused);
  EXPECT_EQ(CountOf(Events(id), "ProcessCancelRequested"), 0);
}

// ---- approvals -------------------------------------------------------------

const char kApproval[] = R"(name: ship
inputs: {order: {required: true}}
steps:
  - id: ok
    approval: {prompt: "ship ${inputs.order}?"}
    save_as: decision
  - {id: after, activity: count, with: {key: after}}
)";

TEST_F(ControlsTest, ApproveRecordsWhoAndWhyAndContinues) {
  Open();
  std::string id = Start(kApproval, {{"order", "A7"}});
  Json snap = WaitStatus(id, "waiting");
  ASSERT_EQ(snap["waiting_on"].size(), 1u);
  EXPECT_EQ(snap["waiting_on"][0]["kind"], "approval");
  EXPECT_EQ(snap["waiting_on"][0]["prompt"], "ship A7?");
  EXPECT_EQ(Task(snap, "ok")["status"], "waitForApproval");

  ASSERT_OK(node_->Approve(id, "ok", {.reason = "fine", .by = "alice"}));
  snap = WaitStatus(id, "completed");
  EXPECT_EQ(Task(snap, "ok")["approval"]["status"], "approved");
  EXPECT_EQ(Task(snap, "ok")["approval"]["by"], "alice");
  EXPECT_EQ(Task(snap, "ok")["approval"]["reason"], "fine");
  EXPECT_EQ(snap["variables"]["decision"]["by"], "alice");
  EXPECT_EQ(board_->Count("after"), 1);

  auto twice = node_->Approve(id, "ok");
  EXPECT_EQ(twice.status().code(), Status::Code::kRefused);
}

TEST_F(ControlsTest, DecidingTwiceIsRefused) {
  Open();
  std::string id = Start(R"(name: two
steps:
  - {id: first, approval: "first?"}
  - {id: second, approval: "second?"}
)");
  WaitUntil(id, [](const Json& s) { return Task(s, "first")["status"] == "waitForApproval"; });
  ASSERT_OK(node_->Approve(id, "first", {.by = "alice"}));
  WaitUntil(id, [](const Json& s) { return Task(s, "second")["status"] == "waitForApproval"; });
  auto again = node_->Reject(id, "first", {.by = "bob"});
  EXPECT_EQ(again.status().code(), Status::Code::kRefused);
  EXPECT_NE(again.status().message().find("already approved by alice"), std::string::npos);
  EXPECT_EQ(node_->Approve(id, "nope").status().code(), Status::Code::kNotFound);
}

TEST_F(ControlsTest, RejectFailsTheTaskAndTheProcess) {
  Open();
  std::string id = Start(kApproval, {{"order", "A7"}});
  WaitStatus(id, "waiting");
  ASSERT_OK(node_->Reject(id, "ok", {.reason = "too big", .by = "bob"}));
  Json snap = WaitStatus(id, "failed");
  EXPECT_EQ(Task(snap, "ok")["status"], "failed");
  EXPECT_EQ(Task(snap, "ok")["approval"]["by"], "bob");
  EXPECT_EQ(Task(snap, "ok")["approval"]["reason"], "too big");
  EXPECT_EQ(board_->Count("after"), 0);
  EXPECT_EQ(node_->Reject(id, "ok").status().code(), Status::Code::kRefused);
}

TEST_F(ControlsTest, RejectRoutesToOnError) {
  Open();
  std::string id = Start(R"(name: routed
steps:
  - {id: ok, approval: "go?", on_error: fallback}
  - {id: skipped, activity: count, with: {key: skipped}}
  - {id: fallback, activity: echo, with: {text: "${vars.error.message}"}}
)");
  WaitStatus(id, "waiting");
  ASSERT_OK(node_->Reject(id, "ok", {.reason = "no", .by = "bob"}));
  Json snap = WaitStatus(id, "completed");
  EXPECT_EQ(Task(snap, "fallback")["output"], "rejected by bob: no");
  EXPECT_EQ(board_->Count("skipped"), 0);
}

TEST_F(ControlsTest, AnExpiredApprovalIsRejectedBySystem) {
  Open();
  std::string id = Start(R"(name: exp
steps: [{id: ok, approval: {prompt: "quick?", expires: 20ms}}]
)");
  Json snap = WaitStatus(id, "failed");
  EXPECT_EQ(Task(snap, "ok")["approval"]["status"], "rejected");
  EXPECT_EQ(Task(snap, "ok")["approval"]["by"], "system");
  EXPECT_EQ(Task(snap, "ok")["approval"]["reason"], "expired");
  EXPECT_EQ(CountOf(Events(id), "TimerFired"), 1);
}

// ---- signals ---------------------------------------------------------------

TEST_F(ControlsTest, ASignalSentBeforeTheWaitIsKeptAndConsumed) {
  Open();
  std::string id = Start(R"(name: early
steps:
  - {id: a, activity: hold, with: {key: a}}
  - {id: paid, wait_signal: payment, save_as: payment}
)");
  WaitHolding("a");
  auto sent = node_->Signal(id, "payment", {{"amount", 5}});
  ASSERT_OK(sent);
  ASSERT_EQ((*sent)["signals"].size(), 1u);
  board_->Release("a");
  Json snap = WaitStatus(id, "completed");
  EXPECT_EQ(snap["variables"]["payment"]["amount"], 5);
  EXPECT_TRUE(snap["signals"].empty());
}

TEST_F(ControlsTest, ASignalAfterTheWaitWakesTheProcess) {
  Open();
  std::string id = Start(R"(name: late
inputs: {order: {required: true}}
steps: [{id: paid, wait_signal: "pay-${inputs.order}", save_as: payment}]
outputs: {paid: "vars.payment"}
)",
                         {{"order", 9}});
  Json snap = WaitStatus(id, "waiting");
  ASSERT_EQ(snap["waiting_on"].size(), 1u);
  EXPECT_EQ(snap["waiting_on"][0]["kind"], "signal");
  EXPECT_EQ(snap["waiting_on"][0]["topic"], "pay-9");
  EXPECT_EQ(snap["branches"][0]["status"], "suspended");
  ASSERT_OK(node_->Signal(id, "other", 1));  // kept, not consumed
  ASSERT_OK(node_->Signal(id, "pay-9", "cash"));
  snap = WaitStatus(id, "completed");
  EXPECT_EQ(snap["outputs"]["paid"], "cash");
  ASSERT_EQ(snap["signals"].size(), 1u);
  EXPECT_EQ(snap["signals"][0]["topic"], "other");
}

TEST_F(ControlsTest, TwoSignalsAreConsumedInArrivalOrder) {
  Open();
  std::string id = Start(R"(name: order
steps:
  - {id: a, activity: hold, with: {key: a}}
  - {id: first, wait_signal: t, save_as: one}
  - {id: second, wait_signal: t, save_as: two}
)");
  WaitHolding("a");
  ASSERT_OK(node_->Signal(id, "t", 1));
  ASSERT_OK(node_->Signal(id, "t", 2));
  board_->Release("a");
  Json snap = WaitStatus(id, "completed");
  EXPECT_EQ(snap["variables"]["one"], 1);
  EXPECT_EQ(snap["variables"]["two"], 2);
}

TEST_F(ControlsTest, AWaitTimeoutRoutesToOnTimeout) {
  Open();
  std::string id = Start(R"(name: timeout
inputs: {order: {required: true}}
steps:
  - {id: paid, wait_signal: {topic: "pay-${inputs.order}", timeout: 20ms, on_timeout: late}}
  - {id: never, activity: count, with: {key: never}}
  - {id: late, activity: echo, with: {text: "${vars.error.message}"}}
)",
                         {{"order", 3}});
  Json snap = WaitStatus(id, "completed");
  EXPECT_EQ(Task(snap, "paid")["status"], "failed");
  EXPECT_NE(Task(snap, "late")["output"].get<std::string>().find("pay-3"), std::string::npos);
  EXPECT_EQ(board_->Count("never"), 0);
  // A signal after the timeout is kept but nothing waits for it any more.
  EXPECT_EQ(CountOf(Events(id), "TimerFired"), 1);
}

// ---- durable timers --------------------------------------------------------

TEST_F(ControlsTest, ASleepDueWhileTheNodeWasDownFiresOnceOnReopen) {
  Open();
  std::string id = Start(R"(name: nap
steps:
  - {id: cool, sleep: 300ms}
  - {id: after, activity: count, with: {key: after}}
)");
  Json snap = WaitStatus(id, "waiting");
  ASSERT_EQ(snap["waiting_on"].size(), 1u);
  EXPECT_EQ(snap["waiting_on"][0]["kind"], "timer");
  int64_t due_ns = snap["timers"][0]["due_ns"];
  Close();
  // Wait (on the clock, not a timing assertion) until the timer is overdue.
  WaitFor([&] {
    return std::chrono::system_clock::now().time_since_epoch() > std::chrono::nanoseconds(due_ns);
  });
  Open();
  WaitStatus(id, "completed");
  EXPECT_EQ(board_->Count("after"), 1);
  auto events = Events(id);
  EXPECT_EQ(CountOf(events, "TimerFired"), 1);
  EXPECT_EQ(CountOf(events, "TaskCompleted", "cool"), 1);
}

TEST_F(ControlsTest, ASleepUntilAPastTimeFiresAtOnce) {
  Open();
  std::string id = Start(R"(name: past
steps: [{id: cool, sleep: {until: "2020-01-01T00:00:00Z"}}]
)");
  WaitStatus(id, "completed");
  EXPECT_EQ(CountOf(Events(id), "TimerFired"), 1);
}

// ---- retry from failure ----------------------------------------------------

TEST_F(ControlsTest, RetryRunsTheFailedTaskAgainButNotTheCompletedOnes) {
  Open();
  std::string id = Start(R"(name: again
steps:
  - {id: a, activity: count, with: {key: a}}
  - {id: b, activity: toggle, with: {key: b}}
  - {id: c, activity: count, with: {key: c}}
)");
  Json snap = WaitStatus(id, "failed");
  EXPECT_EQ(Task(snap, "b")["status"], "failed");
  board_->Release("b");
  auto retried = node_->Retry(id, {.reason = "fixed", .by = "ops"});
  ASSERT_OK(retried);
  snap = WaitStatus(id, "completed");
  EXPECT_EQ(board_->Count("a"), 1);
  EXPECT_EQ(board_->Count("b"), 2);
  EXPECT_EQ(board_->Count("c"), 1);
  EXPECT_EQ(Task(snap, "b")["attempts"], 2);
  EXPECT_TRUE(snap["error"].is_null());
  EXPECT_EQ(node_->Retry(id).status().code(), Status::Code::kRefused);
  auto events = Events(id);
  EXPECT_EQ(CountOf(events, "ProcessRetried"), 1);
  EXPECT_EQ(CountOf(events, "TaskCompleted", "a"), 1);
}

TEST_F(ControlsTest, RetryOfAFailedFanOutStartsItAgainAsANewVisit) {
  Open();
  std::string id = Start(R"(name: fan
steps:
  - {id: a, activity: count, with: {key: a}}
  - id: pack
    parallel:
      good: [{id: g, activity: count, with: {key: g}}]
      bad: [{id: t, activity: toggle, with: {key: t}}]
    save_as: packed
)");
  WaitStatus(id, "failed");
  board_->Release("t");
  ASSERT_OK(node_->Retry(id));
  Json snap = WaitStatus(id, "completed");
  EXPECT_EQ(board_->Count("a"), 1);
  EXPECT_EQ(Task(snap, "pack#2")["status"], "completed");
  EXPECT_EQ(Task(snap, "pack#2")["input"]["retry_of"], "pack");
  EXPECT_EQ(snap["variables"]["packed"]["bad"], "on");
  // The branch that completed is carried over with its output, not run again.
  EXPECT_EQ(board_->Count("g"), 1);
  EXPECT_EQ(snap["variables"]["packed"]["good"], 1);
  EXPECT_EQ(board_->Count("t"), 2);
  auto events = Events(id);
  EXPECT_EQ(CountOf(events, "BranchCompleted", "pack#2/good"), 1);
  EXPECT_EQ(CountOf(events, "TaskScheduled", "pack#2/good/g"), 0);
  EXPECT_EQ(CountOf(events, "TaskScheduled", "pack#2/bad/t"), 1);
}

TEST_F(ControlsTest, RetryOfAFailedForEachRunsOnlyTheItemsThatDidNotComplete) {
  Open();
  for (const char* key : {"t0", "t1", "t3"}) board_->Release(key);
  std::string id = Start(R"(name: each
steps:
  - id: each
    for_each: "{0, 1, 2, 3}"
    concurrency: 2
    steps: [{id: s, activity: toggle, with: {key: "t${item}"}}]
    save_as: outs
)");
  WaitStatus(id, "failed");
  EXPECT_EQ(board_->Count("t2"), 1);
  board_->Release("t2");
  ASSERT_OK(node_->Retry(id));
  Json snap = WaitStatus(id, "completed");
  EXPECT_EQ(snap["variables"]["outs"], Json({"on", "on", "on", "on"}));
  // Items 0 and 1 completed before item 2 failed: carried over, within the
  // concurrency limit's order; item 2 ran again.
  EXPECT_EQ(board_->Count("t0"), 1);
  EXPECT_EQ(board_->Count("t1"), 1);
  EXPECT_EQ(board_->Count("t2"), 2);
  auto events = Events(id);
  EXPECT_EQ(CountOf(events, "TaskScheduled", "each#2/0/s"), 0);
  EXPECT_EQ(CountOf(events, "TaskScheduled", "each#2/2/s"), 1);
}

TEST_F(ControlsTest, AFanOutRevisitedByALoopRunsEveryBranchAgain) {
  Open();
  std::string id = Start(R"(name: loop
vars: {n: 0}
steps:
  - id: pack
    parallel:
      one: [{id: c, activity: count, with: {key: c}}]
  - id: again
    set: {n: "vars.n + 1"}
    goto: {step: pack, when: "vars.n < 2"}
)");
  WaitStatus(id, "completed");
  EXPECT_EQ(board_->Count("c"), 2);
}

// ---- controls on parked processes -------------------------------------------

TEST_F(ControlsTest, CancellingAWaitingProcessCancelsItsWaitAndTimer) {
  Open();
  std::string id = Start(R"(name: parked
steps: [{id: ok, approval: {prompt: "go?", expires: 24h}}]
)");
  WaitStatus(id, "waiting");
  ASSERT_OK(node_->Cancel(id));
  Json snap = WaitStatus(id, "cancelled");
  EXPECT_EQ(Task(snap, "ok")["status"], "cancelled");
  EXPECT_TRUE(snap["timers"].empty());
  EXPECT_EQ(node_->Approve(id, "ok").status().code(), Status::Code::kRefused);
  auto events = Events(id);
  EXPECT_EQ(CountOf(events, "TimerCancelled"), 1);
  EXPECT_EQ(CountOf(events, "TimerFired"), 0);
}

TEST_F(ControlsTest, ASignalToAPausedProcessIsConsumedAfterResume) {
  Open();
  std::string id = Start(R"(name: ps
steps: [{id: paid, wait_signal: pay, save_as: payment}]
)");
  WaitStatus(id, "waiting");
  ASSERT_OK(node_->Pause(id));
  WaitStatus(id, "paused");
  ASSERT_OK(node_->Signal(id, "pay", 42));
  Json snap = WaitStatus(id, "paused");
  EXPECT_EQ(snap["signals"].size(), 1u);
  ASSERT_OK(node_->Resume(id));
  snap = WaitStatus(id, "completed");
  EXPECT_EQ(snap["variables"]["payment"], 42);
}

// ---- policy gates ----------------------------------------------------------

TEST_F(ControlsTest, ABlockRuleBlocksTheTaskAndFailsTheProcess) {
  options_.policy = {{"no-https",
                      {{"activity", "http"}, {"with.url", "https://*"}},
                      PolicyRule::Decision::kBlock}};
  Open();
  std::string id = Start(R"(name: net
steps: [{id: get, activity: http, with: {url: "https://example.com/x"}}]
)");
  Json snap = WaitStatus(id, "failed");
  EXPECT_EQ(Task(snap, "get")["status"], "blocked");
  EXPECT_EQ(Task(snap, "get")["blocked_rule"], "no-https");
  EXPECT_EQ(CountOf(Events(id), "TaskBlocked", "get"), 1);
}

TEST_F(ControlsTest, ARequireApprovalRuleWaitsForAnApproval) {
  options_.policy = {
      {"counted",
       {{"activity", "count"}, {"with.key", "gated*"}},
       PolicyRule::Decision::kRequireApproval},
      {"fine", {{"activity", "count"}}, PolicyRule::Decision::kAllow},
  };
  Open();
  std::string id = Start(R"(name: gated
steps:
  - {id: free, activity: count, with: {key: free}}
  - {id: gated, activity: count, with: {key: gated-1}}
)");
  Json snap = WaitStatus(id, "waiting");
  EXPECT_EQ(Task(snap, "free")["policy_rule"], "fine");
  EXPECT_EQ(Task(snap, "gated")["status"], "waitForApproval");
  EXPECT_EQ(Task(snap, "gated")["approval"]["rule"], "counted");
  EXPECT_EQ(board_->Count("gated-1"), 0);
  ASSERT_OK(node_->Approve(id, "gated", {.by = "alice"}));
  WaitStatus(id, "completed");
  EXPECT_EQ(board_->Count("gated-1"), 1);
}

TEST_F(ControlsTest, ExecDeniedByTheExecPolicyIsBlocked) {
  options_.exec_policy = ExecPolicy::kDeny;
  Open();
  std::string id = Start(R"(name: denied
steps: [{id: run, activity: exec, with: {argv: ["true"]}}]
)");
  Json snap = WaitStatus(id, "failed");
  EXPECT_EQ(Task(snap, "run")["status"], "blocked");
  EXPECT_EQ(Task(snap, "run")["blocked_rule"], "exec_policy");
  EXPECT_NE(Task(snap, "run")["error"].dump().find("deny"), std::string::npos);
}

TEST_F(ControlsTest, ExecOutsideTheAllowlistIsBlocked) {
  options_.exec_policy = ExecPolicy::kAllowlist;
  options_.exec_allow = {"true"};
  Open();
  std::string ok =
      Start("name: ok\nsteps: [{id: run, activity: exec, with: {argv: [\"true\"]}}]\n");
  std::string bad =
      Start("name: bad\nsteps: [{id: run, activity: exec, with: {argv: [\"false\"]}}]\n");
  WaitStatus(ok, "completed");
  Json snap = WaitStatus(bad, "failed");
  EXPECT_EQ(Task(snap, "run")["status"], "blocked");
}

// A process that lives long keeps only its newest snapshots; the log keeps
// every event, so the store still verifies and a resumed node loads it.
TEST_F(ControlsTest, ALongProcessKeepsOnlyItsNewestSnapshots) {
  options_.snapshot_every = 8;
  options_.snapshots_kept = 2;
  Open();
  // Many events on one task (a snapshot's interval grows with the entities):
  // 60 failed attempts, each retried after a backoff, then a success.
  auto calls = std::make_shared<std::atomic<int>>(0);
  ASSERT_OK(node_->RegisterActivity("flaky", [calls](const ActivityContext&) {
    if (++*calls <= 60) return ActivityResult::Fail("not yet", /*retryable=*/true);
    return ActivityResult::Ok(Json(calls->load()));
  }));
  std::string id = Start(R"(name: flaky
steps:
  - {id: work, activity: flaky, retry: {max_attempts: 100, backoff: 1ms, multiplier: 1}}
)");
  auto done = node_->Wait(id, std::chrono::minutes(5));
  ASSERT_OK(done);
  ASSERT_EQ((*done)["status"], "completed");
  Close();
  auto store = store::EventStore::Open({.path = dir_.path()});
  ASSERT_OK(store);
  auto last = (*store)->LastSeq(id);
  ASSERT_OK(last);
  std::vector<uint64_t> kept;
  for (uint64_t below = UINT64_MAX;;) {
    auto snapshot = (*store)->LatestSnapshot(id, below);
    ASSERT_OK(snapshot);
    if (!snapshot->has_value()) break;
    kept.push_back((*snapshot)->seq);
    below = (*snapshot)->seq - 1;
  }
  EXPECT_EQ(kept.size(), 2u) << "of " << *last << " events";
  auto problems = (*store)->Verify();
  ASSERT_OK(problems);
  EXPECT_TRUE(problems->empty());
  ASSERT_OK((*store)->Close());
  Open();
  auto again = node_->Get(id);
  ASSERT_OK(again);
  EXPECT_EQ((*again)["status"], "completed");
  EXPECT_EQ((*again)["tasks"][0]["attempts"], 61);
}

}  // namespace
}  // namespace keel::testing
