// The interpreter alone: a workflow, a state folded from the events it
// planned, a time given by the test. No node, no actors, no store, no sleeps:
// each test drives the plans the process actor would persist and checks them.

#include "actors/interpreter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "events/codec.h"
#include "events/state.h"
#include "events/transitions.h"
#include "tests/events/event_chain.h"
#include "tests/support/test_util.h"

namespace keel::actors {
namespace {

using events::testing::EventChain;
using events::testing::kT0;

constexpr int64_t kSecond = 1'000'000'000;

// The event types of a plan, in order ("TaskScheduled", ...).
std::vector<std::string> Types(const Plan& plan) {
  std::vector<std::string> types;
  for (const auto& d : plan.events) types.emplace_back(events::EventTypeName(d.type));
  return types;
}

bool Has(const std::vector<std::string>& types, const std::string& type) {
  return std::find(types.begin(), types.end(), type) != types.end();
}

class InterpreterTest : public ::testing::Test {
 protected:
  // Loads `yaml` and creates the process with `inputs`.
  void Load(std::string_view yaml, const Json& inputs = Json::object(), Gates gates = {}) {
    auto wf = ParseWorkflow(yaml, "t.yaml");
    ASSERT_TRUE(wf.ok()) << wf.status().ToString();
    workflow_ = std::make_shared<const Workflow>(std::move(*wf));
    interpreter_ = std::make_unique<Interpreter>(
        workflow_, [](const std::string& name) { return name != "unregistered"; },
        std::move(gates));
    auto resolved = ResolveInputs(*workflow_, inputs);  // defaults, as Node::Start does
    ASSERT_TRUE(resolved.ok()) << resolved.status().ToString();
    Plan create;
    create.events.push_back(events::ProcessCreated(chain_.P(), workflow_->name, "hash",
                                                   resolved->dump(), workflow_->vars.dump(), ""));
    Fold(create);
  }

  // Folds every event of `plan` as the actor does once it is durable, and
  // tracks the executions it launches and cancels.
  void Fold(const Plan& plan) {
    for (const auto& d : plan.events) {
      Status s = events::testing::FoldNext(chain_, state_, d);
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
    for (const auto& t : plan.cancel) executing_.erase(t);
    for (const auto& t : plan.launch) {
      executing_.insert(t);
      launched_.push_back(t);
    }
  }

  // Plans with Next until the process waits for something outside; the
  // types of every event planned on the way.
  std::vector<std::string> Settle() {
    std::vector<std::string> all;
    for (int i = 0; i < 1000; ++i) {
      Plan plan = interpreter_->Next(state_, executing_, now_);
      if (plan.empty()) return all;
      for (auto& t : Types(plan)) all.push_back(std::move(t));
      Fold(plan);
    }
    ADD_FAILURE() << "Next never came to rest";
    return all;
  }

  // The result of the running attempt of `task`, then Settle.
  std::vector<std::string> Finish(const std::string& task, const ActivityResult& result) {
    const events::TaskState* t = state_.FindTask(task);
    EXPECT_NE(t, nullptr) << task;
    if (t == nullptr) return {};
    executing_.erase(task);
    Plan plan = interpreter_->OnResult(state_, task, t->attempts, result, now_);
    auto types = Types(plan);
    Fold(plan);
    for (auto& more : Settle()) types.push_back(std::move(more));
    return types;
  }

  // A control, then Settle; the control's refusal if it is refused.
  Result<std::vector<std::string>> Act(Control control) {
    auto plan = interpreter_->OnControl(state_, control, executing_, now_);
    if (!plan.ok()) return plan.status();
    auto types = Types(*plan);
    Fold(*plan);
    for (auto& more : Settle()) types.push_back(std::move(more));
    return types;
  }

  // Fires timer `id` at its due time.
  std::vector<std::string> Fire(const std::string& id) {
    auto it = state_.timers.find(id);
    EXPECT_NE(it, state_.timers.end()) << "no armed timer " << id;
    if (it == state_.timers.end()) return {};
    now_ = it->second.due_ns;
    Control timer;
    timer.kind = Control::Kind::kTimer;
    timer.target = id;
    auto types = Act(timer);
    EXPECT_TRUE(types.ok()) << types.status().ToString();
    return types.ok() ? *types : std::vector<std::string>{};
  }

  std::string State() const { return events::Name(state_.status); }
  std::string TaskStatus(const std::string& task) const {
    const events::TaskState* t = state_.FindTask(task);
    return t ? events::Name(t->status) : "absent";
  }

  EventChain chain_{"p1"};
  events::ProcessState state_;
  std::shared_ptr<const Workflow> workflow_;
  std::unique_ptr<Interpreter> interpreter_;
  std::set<std::string> executing_;
  std::vector<std::string> launched_;
  int64_t now_ = kT0;
};

TEST_F(InterpreterTest, ActivitiesRunInOrderAndTheOutputsAreEvaluatedAtTheEnd) {
  Load(R"(name: t
inputs: {x: {required: true}}
steps:
  - {id: a, activity: work, with: {x: "${inputs.x}"}, save_as: va}
  - {id: b, activity: work, with: {x: "${vars.va}"}}
outputs: {result: "steps.b.output"}
)",
       {{"x", 1}});
  auto types = Settle();
  EXPECT_TRUE(Has(types, "ProcessStarted"));
  EXPECT_EQ(launched_, std::vector<std::string>{"a"});
  EXPECT_EQ(state_.FindTask("a")->input, Json({{"x", 1}}));  // a whole ${} keeps its type
  Finish("a", ActivityResult::Ok(2));
  EXPECT_EQ(launched_, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(state_.FindTask("b")->input, Json({{"x", 2}}));
  auto end = Finish("b", ActivityResult::Ok(3));
  EXPECT_TRUE(Has(end, "ProcessCompleted"));
  EXPECT_EQ(State(), "completed");
  EXPECT_EQ(state_.outputs, Json({{"result", 3}}));
}

TEST_F(InterpreterTest, TheSameStateAndTimeGiveTheSamePlanAndDueTimesCountFromTheGivenTime) {
  Load("name: t\nsteps:\n  - {id: nap, sleep: 10m}\n");
  Fold(interpreter_->Next(state_, executing_, now_));  // ProcessStarted, main branch
  Plan first = interpreter_->Next(state_, executing_, now_);
  Plan again = interpreter_->Next(state_, executing_, now_);
  ASSERT_EQ(first.events.size(), again.events.size());
  for (size_t i = 0; i < first.events.size(); ++i) {
    EXPECT_EQ(first.events[i].bytes, again.events[i].bytes) << "event " << i;
  }
  now_ = kT0 + 7 * kSecond;
  Settle();
  ASSERT_EQ(state_.timers.count("sleep/nap"), 1u);
  EXPECT_EQ(state_.timers.at("sleep/nap").due_ns, kT0 + 7 * kSecond + 600 * kSecond);
  EXPECT_EQ(TaskStatus("nap"), "running");
  auto woke = Fire("sleep/nap");
  EXPECT_TRUE(Has(woke, "TimerFired"));
  EXPECT_EQ(TaskStatus("nap"), "completed");
  EXPECT_EQ(State(), "completed");
}

TEST_F(InterpreterTest, AFalseWhenSkipsTheStepAndABadOneFailsIt) {
  Load(R"(name: t
inputs: {n: {default: 1}}
steps:
  - {id: big, activity: work, when: "inputs.n > 10"}
  - {id: bad, activity: work, when: "inputs.n.deep > 1"}
)");
  auto types = Settle();
  EXPECT_EQ(TaskStatus("big"), "skipped");
  EXPECT_TRUE(Has(types, "TaskSkipped"));
  EXPECT_EQ(TaskStatus("bad"), "failed");
  EXPECT_NE(state_.FindTask("bad")->error->find("when:"), std::string::npos);
  EXPECT_EQ(State(), "failed");
  EXPECT_TRUE(launched_.empty());
}

TEST_F(InterpreterTest, ARetryableFailureWaitsItsBackoffThenRunsAgainUntilAttemptsRunOut) {
  Load(R"(name: t
steps:
  - {id: a, activity: work, retry: {max_attempts: 3, backoff: 2s, multiplier: 3}}
)");
  Settle();
  auto first = Finish("a", ActivityResult::Fail("flaky"));
  EXPECT_TRUE(Has(first, "TaskRetryScheduled"));
  ASSERT_EQ(state_.timers.count("retry/a/2"), 1u);
  EXPECT_EQ(state_.timers.at("retry/a/2").due_ns, now_ + 2 * kSecond);
  EXPECT_EQ(launched_.size(), 1u);  // nothing runs during the backoff
  Fire("retry/a/2");
  EXPECT_EQ(launched_.size(), 2u);
  EXPECT_EQ(state_.FindTask("a")->attempts, 2u);
  Finish("a", ActivityResult::Fail("flaky"));
  ASSERT_EQ(state_.timers.count("retry/a/3"), 1u);
  EXPECT_EQ(state_.timers.at("retry/a/3").due_ns, now_ + 6 * kSecond);
  Fire("retry/a/3");
  auto last = Finish("a", ActivityResult::Fail("flaky"));
  EXPECT_FALSE(Has(last, "TaskRetryScheduled"));
  EXPECT_EQ(TaskStatus("a"), "failed");
  EXPECT_EQ(State(), "failed");
}

TEST_F(InterpreterTest, ANonRetryableFailureGoesToOnErrorWithTheErrorInVars) {
  Load(R"(name: t
steps:
  - {id: a, activity: work, retry: {max_attempts: 5}, on_error: undo}
  - {id: never, activity: work}
  - {id: undo, activity: work, with: {why: "${vars.error.message}"}}
)");
  Settle();
  Finish("a", ActivityResult::Fail("out of stock", /*retryable=*/false));
  EXPECT_EQ(TaskStatus("a"), "failed");
  EXPECT_EQ(TaskStatus("never"), "absent");
  ASSERT_EQ(launched_.back(), "undo");
  EXPECT_EQ(state_.FindTask("undo")->input, Json({{"why", "out of stock"}}));
  Finish("undo", ActivityResult::Ok(nullptr));
  EXPECT_EQ(State(), "completed");
}

TEST_F(InterpreterTest, AGotoLoopVisitsItsStepsAgainAndExpressionsSeeTheNewestVisit) {
  Load(R"(name: t
vars: {i: 0}
steps:
  - {id: work, activity: work, with: {i: "${vars.i}"}}
  - id: count
    set: {i: "vars.i + 1", last: "steps.work.output"}
    goto: {step: work, when: "vars.i < 3"}
)");
  Settle();
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(launched_.size(), static_cast<size_t>(i + 1));
    Finish(launched_.back(), ActivityResult::Ok(i * 10));
  }
  EXPECT_EQ(launched_, (std::vector<std::string>{"work", "work#2", "work#3"}));
  EXPECT_EQ(state_.variables()["i"], 3);
  EXPECT_EQ(state_.variables()["last"], 20);  // the third visit's output
  EXPECT_EQ(State(), "completed");
}

TEST_F(InterpreterTest, ASignalThatCameFirstIsKeptForTheWaitThatComes) {
  Load(R"(name: t
steps:
  - {id: a, activity: work}
  - {id: paid, wait_signal: {topic: pay}, save_as: payment}
)");
  Settle();
  Control signal;
  signal.kind = Control::Kind::kSignal;
  signal.target = "pay";
  signal.payload = {{"amount", 5}};
  ASSERT_TRUE(Act(signal).ok());
  EXPECT_EQ(state_.signals.size(), 1u);
  Finish("a", ActivityResult::Ok(nullptr));
  EXPECT_EQ(TaskStatus("paid"), "completed");
  EXPECT_TRUE(state_.signals.empty());
  EXPECT_EQ(state_.variables()["payment"], Json({{"amount", 5}}));
  EXPECT_EQ(State(), "completed");
}

TEST_F(InterpreterTest, AWaitThatTimesOutRoutesToOnTimeout) {
  Load(R"(name: t
steps:
  - {id: paid, wait_signal: {topic: pay, timeout: 1h, on_timeout: chase}}
  - {id: never, activity: work}
  - {id: chase, activity: work}
)");
  Settle();
  EXPECT_EQ(State(), "waiting");
  ASSERT_EQ(state_.timers.count("timeout/paid"), 1u);
  EXPECT_EQ(state_.timers.at("timeout/paid").due_ns, kT0 + 3600 * kSecond);
  Fire("timeout/paid");
  EXPECT_EQ(launched_, std::vector<std::string>{"chase"});
  EXPECT_EQ(TaskStatus("never"), "absent");
}

TEST_F(InterpreterTest, AnApprovedStepGoesOnAndAnUnknownStepIsNotFound) {
  const char* yaml = R"(name: t
steps:
  - {id: ok, approval: {prompt: "ship?", expires: 1h}}
  - {id: a, activity: work}
)";
  Load(yaml);
  Settle();
  EXPECT_EQ(TaskStatus("ok"), "waitForApproval");
  Control approve;
  approve.kind = Control::Kind::kApprove;
  approve.target = "ok";
  approve.by = "ann";
  auto approved = Act(approve);
  ASSERT_TRUE(approved.ok()) << approved.status().ToString();
  EXPECT_TRUE(Has(*approved, "TaskApproved"));
  EXPECT_EQ(launched_, std::vector<std::string>{"a"});
  EXPECT_EQ(state_.timers.count("expiry/ok"), 0u);  // the approval's expiry is disarmed

  Control unknown = approve;
  unknown.target = "nope";
  EXPECT_EQ(Act(unknown).status().code(), Status::Code::kNotFound);
}

TEST_F(InterpreterTest, ARejectedStepFailsTheProcessWithWhoAndWhyAndIsRejectedOnce) {
  Load("name: t\nsteps:\n  - {id: ok, approval: {prompt: p, expires: 1h}}\n"
       "  - {id: a, activity: work}\n");
  Settle();
  Control reject;
  reject.kind = Control::Kind::kReject;
  reject.target = "ok";
  reject.by = "bob";
  reject.reason = "not today";
  auto rejected = Act(reject);
  ASSERT_TRUE(rejected.ok()) << rejected.status().ToString();
  EXPECT_TRUE(Has(*rejected, "TaskRejected"));
  EXPECT_EQ(TaskStatus("ok"), "failed");
  EXPECT_EQ(state_.FindTask("ok")->approval->status, "rejected");
  EXPECT_EQ(state_.FindTask("ok")->approval->by, "bob");
  EXPECT_EQ(state_.FindTask("ok")->approval->reason, "not today");
  EXPECT_TRUE(launched_.empty());  // the step after a rejection never runs
  EXPECT_EQ(State(), "failed");
  EXPECT_EQ(state_.timers.count("expiry/ok"), 0u);
  EXPECT_FALSE(Act(reject).ok());  // nothing waits for approval any more
}

TEST_F(InterpreterTest, AnApprovalThatExpiresIsRejectedBySystem) {
  Load("name: t\nsteps:\n  - {id: ok, approval: {prompt: p, expires: 30m}}\n");
  Settle();
  auto expired = Fire("expiry/ok");
  EXPECT_TRUE(Has(expired, "TaskRejected"));
  EXPECT_EQ(state_.FindTask("ok")->approval->by, "system");
  EXPECT_EQ(State(), "failed");
}

TEST_F(InterpreterTest, ParallelBranchesJoinAllAndTheForkSeesEachBranchsOutput) {
  Load(R"(name: t
steps:
  - id: pack
    parallel:
      label: [{id: print, activity: work}]
      box: [{id: fold, activity: work}]
    save_as: packed
)");
  Settle();
  std::sort(launched_.begin(), launched_.end());
  EXPECT_EQ(launched_, (std::vector<std::string>{"pack/box/fold", "pack/label/print"}));
  Finish("pack/label/print", ActivityResult::Ok("L"));
  EXPECT_EQ(TaskStatus("pack"), "running");  // all: one branch is not enough
  Finish("pack/box/fold", ActivityResult::Ok("B"));
  EXPECT_EQ(TaskStatus("pack"), "completed");
  EXPECT_EQ(state_.variables()["packed"], Json({{"box", "B"}, {"label", "L"}}));
  EXPECT_EQ(State(), "completed");
}

TEST_F(InterpreterTest, JoinFirstTakesTheFirstBranchToEndAndCancelsTheOther) {
  Load(R"(name: t
steps:
  - id: race
    parallel:
      fast: [{id: f, activity: work}]
      slow: [{id: s, activity: work}]
    join: first
)");
  Settle();
  auto types = Finish("race/fast/f", ActivityResult::Ok(1));
  EXPECT_TRUE(Has(types, "BranchCancelled"));
  EXPECT_EQ(executing_.count("race/slow/s"), 0u);  // its execution is stopped
  EXPECT_EQ(TaskStatus("race/slow/s"), "cancelled");
  EXPECT_EQ(State(), "completed");
}

TEST_F(InterpreterTest, JoinAnyFailsOnlyWhenEveryBranchFailed) {
  Load(R"(name: t
steps:
  - id: try
    parallel:
      one: [{id: a, activity: work}]
      two: [{id: b, activity: work}]
    join: any
)");
  Settle();
  Finish("try/one/a", ActivityResult::Fail("no", false));
  EXPECT_EQ(TaskStatus("try"), "running");
  Finish("try/two/b", ActivityResult::Fail("no", false));
  EXPECT_EQ(TaskStatus("try"), "failed");
  EXPECT_EQ(State(), "failed");
}

TEST_F(InterpreterTest, ForEachRunsAtMostItsConcurrencyAndCollectsOutputsInItemOrder) {
  Load(R"(name: t
steps:
  - id: each
    for_each: "{3, 1, 2}"
    concurrency: 2
    steps: [{id: do, activity: work, with: {n: "${item}"}}]
    save_as: outs
)");
  Settle();
  EXPECT_EQ(executing_.size(), 2u);
  std::vector<std::string> first(executing_.begin(), executing_.end());
  Finish(first[0], ActivityResult::Ok(state_.FindTask(first[0])->input["n"]));
  EXPECT_EQ(executing_.size(), 2u);  // the third item starts as one ends
  while (!executing_.empty()) {
    std::string t = *executing_.begin();
    Finish(t, ActivityResult::Ok(state_.FindTask(t)->input["n"]));
  }
  EXPECT_EQ(state_.variables()["outs"], Json::array({3, 1, 2}));
  EXPECT_EQ(launched_.size(), 3u);
  EXPECT_EQ(State(), "completed");
}

TEST_F(InterpreterTest, PauseWaitsForRunningTasksResumeGoesOnCancelStopsEverything) {
  Load(R"(name: t
steps:
  - {id: a, activity: work}
  - {id: b, activity: work}
)");
  Settle();
  Control pause;
  pause.kind = Control::Kind::kPause;
  ASSERT_TRUE(Act(pause).ok());
  EXPECT_EQ(State(), "pauseRequested");  // a runs on
  EXPECT_EQ(Act(pause).status().code(), Status::Code::kRefused);
  Finish("a", ActivityResult::Ok(nullptr));
  EXPECT_EQ(State(), "paused");
  EXPECT_EQ(launched_.size(), 1u);  // b waits for the resume
  Control resume;
  resume.kind = Control::Kind::kResume;
  ASSERT_TRUE(Act(resume).ok());
  EXPECT_EQ(launched_.back(), "b");
  Control cancel;
  cancel.kind = Control::Kind::kCancel;
  cancel.reason = "enough";
  ASSERT_TRUE(Act(cancel).ok());
  EXPECT_TRUE(executing_.empty());  // b's execution is stopped
  EXPECT_EQ(TaskStatus("b"), "cancelled");
  EXPECT_EQ(State(), "cancelled");
  EXPECT_EQ(Act(resume).status().code(), Status::Code::kRefused);
  // A late result of the cancelled attempt changes nothing.
  EXPECT_TRUE(interpreter_->OnResult(state_, "b", 1, ActivityResult::Ok(1), now_).empty());
}

TEST_F(InterpreterTest, RetryOfAFailedProcessRunsTheFailedTaskAgainNotTheCompletedOnes) {
  Load(R"(name: t
steps:
  - {id: a, activity: work}
  - {id: b, activity: work}
)");
  Settle();
  Finish("a", ActivityResult::Ok(1));
  Finish("b", ActivityResult::Fail("down", false));
  EXPECT_EQ(State(), "failed");
  Control retry;
  retry.kind = Control::Kind::kRetry;
  ASSERT_TRUE(Act(retry).ok());
  EXPECT_EQ(launched_, (std::vector<std::string>{"a", "b", "b"}));
  EXPECT_EQ(state_.FindTask("b")->attempts, 2u);
  Finish("b", ActivityResult::Ok(2));
  EXPECT_EQ(State(), "completed");
}

TEST_F(InterpreterTest, TheExecPolicyBlocksExecAndAPauseStepPausesTheProcess) {
  Options options;
  options.exec_policy = ExecPolicy::kDeny;
  Load(R"(name: t
steps:
  - {id: hold, pause: "look first"}
  - {id: run, activity: exec, with: {argv: [rm, -rf, /]}}
)",
       Json::object(), Gates(options));
  Settle();
  EXPECT_EQ(State(), "paused");
  EXPECT_EQ(state_.pause_reason, "look first");
  Control resume;
  resume.kind = Control::Kind::kResume;
  auto resumed = Act(resume);
  ASSERT_TRUE(resumed.ok());
  EXPECT_TRUE(Has(*resumed, "TaskBlocked"));
  EXPECT_EQ(TaskStatus("run"), "blocked");
  EXPECT_TRUE(launched_.empty());
}

TEST_F(InterpreterTest, CancellingATasksAttemptStopsItThenItsRetryPolicyDecides) {
  Load("name: t\nsteps:\n  - {id: a, activity: work, retry: {max_attempts: 2, backoff: 1s}}\n");
  Settle();
  Control cancel;
  cancel.kind = Control::Kind::kCancel;
  cancel.target = "a";
  cancel.by = "ann";
  auto first = Act(cancel);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(executing_.empty());  // the attempt is stopped
  EXPECT_TRUE(Has(*first, "TaskRetryScheduled"));
  EXPECT_EQ(State(), "running");
  EXPECT_EQ(Act(cancel).status().code(), Status::Code::kRefused);  // nothing runs during the backoff
  Fire("retry/a/2");
  ASSERT_EQ(executing_.count("a"), 1u);
  ASSERT_TRUE(Act(cancel).ok());
  EXPECT_EQ(TaskStatus("a"), "failed");
  EXPECT_EQ(*state_.FindTask("a")->error, "cancelled by ann");
  EXPECT_EQ(State(), "failed");
  cancel.target = "nope";
  EXPECT_EQ(Act(cancel).status().code(), Status::Code::kRefused);  // the process has ended
}

}  // namespace
}  // namespace keel::actors
