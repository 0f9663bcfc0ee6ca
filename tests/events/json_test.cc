#include <gtest/gtest.h>

#include <limits>
#include <set>

#include "base/time.h"
#include "events/state.h"
#include "tests/events/event_chain.h"
#include "tests/support/test_util.h"

namespace keel::events {
namespace {

using nlohmann::json;
using testing::EventChain;
using testing::kT0;

std::set<std::string> Keys(const json& j) {
  std::set<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.insert(it.key());
  return keys;
}

bool HasAll(const json& j, const std::set<std::string>& keys) {
  for (const auto& k : keys) {
    if (!j.contains(k)) {
      ADD_FAILURE() << "missing key '" << k << "' in " << j.dump();
      return false;
    }
  }
  return true;
}

class JsonTest : public ::testing::Test {
 protected:
  Status Fold(Draft draft) { return testing::FoldNext(chain_, state_, std::move(draft)); }
  Header H(std::string_view entity) const { return chain_.H(entity); }
  Header P() const { return chain_.P(); }

  void Start(std::string_view idempotency_key = "") {
    ASSERT_OK(Fold(events::ProcessCreated(P(), "order", "abc123", R"({"order_id":"o1"})", "{}",
                                          idempotency_key)));
    ASSERT_OK(Fold(events::ProcessStarted(P())));
    ASSERT_OK(Fold(
        events::BranchStarted(H("main"), {.vars_json = R"({"v":1})", .first_step = "reserve"})));
  }

  // A process with a bit of everything: a completed task, a fork whose two
  // branches wait on a signal and an approval, a timer, a pending signal.
  void BuildBusyProcess() {
    Start("idem-1");
    ASSERT_OK(Fold(events::TaskScheduled(H("reserve"), "reserve", "main", R"({"n":1})")));
    ASSERT_OK(Fold(events::TaskStarted(H("reserve"), 1, "p1/reserve/1")));
    ASSERT_OK(Fold(events::TaskRetryScheduled(H("reserve"), 2, kT0 + 7'000'000'001, "flaky")));
    ASSERT_OK(Fold(events::TaskStarted(H("reserve"), 2, "p1/reserve/2")));
    ASSERT_OK(Fold(events::TaskCompleted(H("reserve"), R"({"ok":true})", "pack")));
    ASSERT_OK(Fold(events::TaskScheduled(H("pack"), "pack", "main", "{}")));
    ASSERT_OK(Fold(events::TaskStarted(H("pack"), 1, "p1/pack/1")));
    ASSERT_OK(Fold(events::BranchStarted(H("pack/0"), {.parent = "main",
                                                       .fork_task = "pack",
                                                       .name = "0",
                                                       .index = 0,
                                                       .item_json = R"({"sku":"a"})",
                                                       .vars_json = R"({"v":1})",
                                                       .first_step = "paid"})));
    ASSERT_OK(Fold(events::BranchStarted(H("pack/1"), {.parent = "main",
                                                       .fork_task = "pack",
                                                       .name = "1",
                                                       .index = 1,
                                                       .vars_json = R"({"v":1})",
                                                       .first_step = "ok"})));
    ASSERT_OK(Fold(events::BranchStarted(
        H("pack/2"),
        {.parent = "main", .fork_task = "pack", .name = "2", .index = 2, .first_step = "nap"})));
    ASSERT_OK(Fold(events::BranchWaiting(H("main"), "pack")));
    ASSERT_OK(
        Fold(events::TaskScheduled(H("pack/0/paid"), "paid", "pack/0", R"({"topic":"payment"})")));
    ASSERT_OK(Fold(events::TaskStarted(H("pack/0/paid"), 1, "k")));
    ASSERT_OK(Fold(events::BranchSuspended(H("pack/0"), "pack/0/paid", "signal")));
    ASSERT_OK(Fold(events::TaskScheduled(H("pack/1/ok"), "ok", "pack/1", "{}")));
    ASSERT_OK(Fold(events::TaskWaitingForApproval(H("pack/1/ok"), "ok?", "", kT0 + 99)));
    ASSERT_OK(Fold(events::BranchSuspended(H("pack/1"), "pack/1/ok", "approval")));
    ASSERT_OK(Fold(events::TaskScheduled(H("pack/2/nap"), "nap", "pack/2", R"({"for":"1s"})")));
    ASSERT_OK(Fold(events::TaskStarted(H("pack/2/nap"), 1, "k")));
    ASSERT_OK(Fold(events::TimerScheduled(P(), "sleep:pack/2/nap", kT0 + 5'000'000'123, "sleep",
                                          "pack/2/nap")));
    ASSERT_OK(Fold(events::BranchSuspended(H("pack/2"), "pack/2/nap", "timer")));
    ASSERT_OK(Fold(events::VariablesSet(H("pack/1"), R"({"w":[1,2]})")));
    ASSERT_OK(Fold(events::SignalReceived(P(), "early", R"({"p":true})")));
    ASSERT_OK(Fold(events::ProcessWaiting(P())));
  }

  EventChain chain_;
  ProcessState state_;
};

const std::set<std::string> kSnapshotKeys = {
    "id",       "workflow",        "status",     "inputs",     "variables",
    "outputs",  "error",           "created_at", "updated_at", "ended_at",
    "last_seq", "idempotency_key", "branches",   "tasks",      "waiting_on"};
const std::set<std::string> kBranchKeys = {"id", "parent", "status", "current_step"};
const std::set<std::string> kTaskKeys = {"id",         "step",     "branch",  "status",
                                         "attempts",   "input",    "output",  "error",
                                         "started_at", "ended_at", "approval"};

TEST_F(JsonTest, SnapshotHasEveryKeyOfTheInterface) {
  BuildBusyProcess();
  json j = ToJson(state_);
  EXPECT_TRUE(HasAll(j, kSnapshotKeys));
  ASSERT_EQ(j["branches"].size(), 4u);
  for (const json& b : j["branches"]) EXPECT_TRUE(HasAll(b, kBranchKeys));
  ASSERT_EQ(j["tasks"].size(), 5u);
  for (const json& t : j["tasks"]) EXPECT_TRUE(HasAll(t, kTaskKeys));
  const json& approval = j["tasks"][3]["approval"];
  EXPECT_TRUE(HasAll(approval, {"status", "by", "reason", "at", "prompt"}));

  EXPECT_EQ(j["id"], "p1");
  EXPECT_EQ(j["workflow"], "order");
  EXPECT_EQ(j["inputs"], json({{"order_id", "o1"}}));
  EXPECT_EQ(j["variables"], json({{"v", 1}}));
  EXPECT_EQ(j["outputs"], json::object());
  EXPECT_EQ(j["last_seq"], state_.last_seq);
  EXPECT_EQ(j["idempotency_key"], "idem-1");
  EXPECT_EQ(j["definition_hash"], "abc123");
  EXPECT_EQ(j["last_hash"], HexHash(state_.last_hash));
  EXPECT_EQ(j["created_at"], FormatTimeMs(EventChain::TimeOf(1)));
  EXPECT_EQ(j["updated_at"], FormatTimeMs(EventChain::TimeOf(state_.last_seq)));

  const json& reserve = j["tasks"][0];
  EXPECT_EQ(reserve["id"], "reserve");
  EXPECT_EQ(reserve["step"], "reserve");
  EXPECT_EQ(reserve["branch"], "main");
  EXPECT_EQ(reserve["attempts"], 2);
  EXPECT_EQ(reserve["input"], json({{"n", 1}}));
  EXPECT_EQ(reserve["output"], json({{"ok", true}}));
  EXPECT_EQ(reserve["error"], nullptr);
  EXPECT_EQ(reserve["started_at"], FormatTimeMs(EventChain::TimeOf(5)));
  EXPECT_EQ(reserve["ended_at"], FormatTimeMs(EventChain::TimeOf(8)));
  EXPECT_EQ(reserve["approval"], nullptr);

  const json& child = j["branches"][1];
  EXPECT_EQ(child["parent"], "main");
  EXPECT_EQ(child["fork_task"], "pack");
  EXPECT_EQ(child["item"], json({{"sku", "a"}}));
  EXPECT_EQ(j["branches"][2]["vars"], json({{"v", 1}, {"w", {1, 2}}}));
}

TEST_F(JsonTest, StatusesAreSpelledAsInDesign) {
  BuildBusyProcess();
  json j = ToJson(state_);
  EXPECT_EQ(j["status"], "waiting");
  EXPECT_EQ(j["branches"][0]["status"], "waiting");
  EXPECT_EQ(j["branches"][1]["status"], "suspended");
  EXPECT_EQ(j["tasks"][0]["status"], "completed");
  EXPECT_EQ(j["tasks"][1]["status"], "running");
  EXPECT_EQ(j["tasks"][3]["status"], "waitForApproval");
  EXPECT_EQ(j["tasks"][3]["approval"]["status"], "pending");

  ASSERT_OK(Fold(events::ProcessPauseRequested(P(), "")));
  EXPECT_EQ(ToJson(state_)["status"], "pauseRequested");
}

TEST_F(JsonTest, FreshProcessHasNullTimesAndNullableFields) {
  Start();
  ASSERT_OK(Fold(events::TaskScheduled(H("reserve"), "reserve", "main", "")));
  json j = ToJson(state_);
  EXPECT_EQ(j["ended_at"], nullptr);
  EXPECT_EQ(j["error"], nullptr);
  EXPECT_EQ(j["idempotency_key"], nullptr);
  EXPECT_EQ(j["waiting_on"], json::array());
  const json& main = j["branches"][0];
  EXPECT_EQ(main["id"], "main");
  EXPECT_EQ(main["parent"], nullptr);
  EXPECT_EQ(main["current_step"], "reserve");
  const json& task = j["tasks"][0];
  EXPECT_EQ(task["status"], "scheduled");
  EXPECT_EQ(task["input"], json::object());
  EXPECT_EQ(task["output"], nullptr);
  EXPECT_EQ(task["started_at"], nullptr);
  EXPECT_EQ(task["ended_at"], nullptr);
  EXPECT_EQ(task["approval"], nullptr);
  EXPECT_EQ(task["attempts"], 0);
}

TEST_F(JsonTest, CompletedBranchHasNullCurrentStep) {
  Start();
  ASSERT_OK(Fold(events::BranchCompleted(H("main"), "")));
  EXPECT_EQ(ToJson(state_)["branches"][0]["current_step"], nullptr);
}

TEST_F(JsonTest, WaitingOnIsDerivedFromParkedBranches) {
  BuildBusyProcess();
  json waiting = ToJson(state_)["waiting_on"];
  ASSERT_EQ(waiting.size(), 3u) << waiting.dump();
  EXPECT_EQ(waiting[0], json({{"kind", "signal"}, {"topic", "payment"}, {"task", "pack/0/paid"}}));
  EXPECT_EQ(waiting[1],
            json({{"kind", "approval"}, {"task", "pack/1/ok"}, {"step", "ok"}, {"prompt", "ok?"}}));
  EXPECT_EQ(waiting[2], json({{"kind", "timer"},
                              {"task", "pack/2/nap"},
                              {"due", FormatTimeMs(kT0 + 5'000'000'123)}}));
}

TEST_F(JsonTest, WaitingOnShowsAPause) {
  Start();
  ASSERT_OK(Fold(events::ProcessPauseRequested(P(), "deploy")));
  ASSERT_OK(Fold(events::ProcessPaused(P(), "deploy")));
  json j = ToJson(state_);
  EXPECT_EQ(j["waiting_on"], json::array({{{"kind", "pause"}, {"reason", "deploy"}}}));
  EXPECT_EQ(j["pause_reason"], "deploy");
}

TEST_F(JsonTest, StateRoundTripsThroughJson) {
  BuildBusyProcess();
  ASSERT_OK(Fold(events::TaskApproved(H("pack/1/ok"), "alice", "fine")));
  json once = ToJson(state_);
  auto rebuilt = StateFromJson(once);
  ASSERT_OK(rebuilt);
  EXPECT_EQ(ToJson(*rebuilt), once);
  EXPECT_EQ(rebuilt->last_hash, state_.last_hash);
  EXPECT_EQ(rebuilt->tasks[0].started_ns, state_.tasks[0].started_ns);  // ns, not ms
  EXPECT_EQ(rebuilt->signals.size(), 1u);
  EXPECT_EQ(rebuilt->timers.size(), 1u);

  // The rebuilt state folds on exactly like the original.
  EventChain copy = chain_;
  ASSERT_OK(testing::FoldNext(copy, *rebuilt, events::BranchResumed(H("pack/1"))));
  ASSERT_OK(Fold(events::BranchResumed(H("pack/1"))));
  EXPECT_EQ(ToJson(*rebuilt), ToJson(state_));
}

TEST_F(JsonTest, TerminalStateRoundTrips) {
  Start();
  ASSERT_OK(Fold(events::TaskScheduled(H("x"), "x", "main", "{}")));
  ASSERT_OK(Fold(events::TaskBlocked(H("x"), "rule", "denied")));
  ASSERT_OK(Fold(events::ProcessFailed(P(), "denied")));
  json once = ToJson(state_);
  auto rebuilt = StateFromJson(once);
  ASSERT_OK(rebuilt);
  EXPECT_EQ(ToJson(*rebuilt), once);
  EXPECT_EQ(once["error"], "denied");
  EXPECT_EQ(once["tasks"][0]["blocked_rule"], "rule");
}

TEST_F(JsonTest, StateFromJsonReadsRfc3339WhenNanosecondsAreAbsent) {
  Start();
  json j = ToJson(state_);
  j.erase("created_ns");
  auto rebuilt = StateFromJson(j);
  ASSERT_OK(rebuilt);
  // Milliseconds only: what the RFC 3339 text keeps.
  EXPECT_EQ(rebuilt->created_ns, state_.created_ns / 1'000'000 * 1'000'000);
}

TEST_F(JsonTest, StateFromJsonRefusesABadShape) {
  Start();
  const json good = ToJson(state_);
  auto corrupt = [&](auto mutate) {
    json j = good;
    mutate(j);
    auto r = StateFromJson(j);
    return r.ok() ? Status::OK() : r.status();
  };
  EXPECT_EQ(StateFromJson(json::array()).status().code(), Status::Code::kCorruption);
  EXPECT_EQ(corrupt([](json& j) { j["status"] = "sleeping"; }).code(), Status::Code::kCorruption);
  EXPECT_EQ(corrupt([](json& j) { j["tasks"] = 5; }).code(), Status::Code::kCorruption);
  EXPECT_EQ(corrupt([](json& j) { j["last_seq"] = "three"; }).code(), Status::Code::kCorruption);
  EXPECT_EQ(corrupt([](json& j) { j["last_hash"] = "zz"; }).code(), Status::Code::kCorruption);
  EXPECT_EQ(corrupt([](json& j) { j["branches"][0]["status"] = 1; }).code(),
            Status::Code::kCorruption);
  EXPECT_EQ(corrupt([](json& j) { j["branches"].push_back(j["branches"][0]); }).code(),
            Status::Code::kCorruption);
  EXPECT_EQ(corrupt([](json& j) {
              j.erase("created_ns");
              j["created_at"] = "yesterday";
            }).code(),
            Status::Code::kCorruption);
}

TEST_F(JsonTest, SummaryLacksBranchesTasksAndVariables) {
  BuildBusyProcess();
  json summary = SummaryJson(state_);
  for (const char* key : {"branches", "tasks", "variables", "signals", "timers"}) {
    EXPECT_FALSE(summary.contains(key)) << key;
  }
  json full = ToJson(state_);
  for (const char* key : {"branches", "tasks", "variables", "signals", "timers"}) full.erase(key);
  EXPECT_EQ(summary, full);
}

TEST_F(JsonTest, InvalidUtf8NeverBreaksDump) {
  Start();
  ASSERT_OK(Fold(events::ProcessPauseRequested(P(), "bad \xff\xfe bytes")));
  ASSERT_OK(Fold(events::SignalReceived(P(), "t", "\"\xc3\x28\"")));  // invalid JSON text
  std::string text;
  EXPECT_NO_THROW(text = ToJson(state_).dump());
  EXPECT_NE(text.find("bad \xEF\xBF\xBD\xEF\xBF\xBD bytes"), std::string::npos) << text;
}

// ---- event lines -----------------------------------------------------------

TEST(EventJsonTest, EventLineHasTheInterfaceShape) {
  EventChain chain;
  StoredEvent e = chain.At(
      events::TaskCompleted(chain.H("reserve", "alice"), R"({"ok":true,"n":[1,2]})", "ship", 7), 3);
  json j = ToJson(e);
  EXPECT_EQ(Keys(j), (std::set<std::string>{"stream", "seq", "global_seq", "time", "type", "entity",
                                            "actor", "data", "hash"}));
  EXPECT_EQ(j["stream"], "p1");
  EXPECT_EQ(j["seq"], 3);
  EXPECT_EQ(j["global_seq"], 103);
  EXPECT_EQ(j["time"], FormatTimeNs(EventChain::TimeOf(3)));
  EXPECT_EQ(j["type"], "TaskCompleted");
  EXPECT_EQ(j["entity"], "reserve");
  EXPECT_EQ(j["actor"], "alice");
  EXPECT_EQ(j["hash"], HexHash(e.hash()));
  EXPECT_EQ(j["hash"].get<std::string>().size(), 64u);
  EXPECT_EQ(j["data"],
            json({{"output", {{"ok", true}, {"n", {1, 2}}}}, {"next", "ship"}, {"signal_seq", 7}}));
}

TEST(EventJsonTest, DataEmbedsJsonFieldsAndKeepsScalars) {
  EventChain chain;
  json created = ToJson(
      chain.At(events::ProcessCreated(chain.P(), "order", "h", R"({"a":1})", "", "k"), 1))["data"];
  EXPECT_EQ(created, json({{"workflow", "order"},
                           {"definition_hash", "h"},
                           {"inputs", {{"a", 1}}},
                           {"forked_from", ""},  // not a fork (docs/fork.md)
                           {"forked_seq", 0},
                           {"vars", nullptr},
                           {"idempotency_key", "k"},
                           {"queue", ""},
                           {"queue_priority", 0},
                           {"queue_key", ""}}));

  json branch = ToJson(
      chain.At(events::BranchStarted(
                   chain.H("b"),
                   {.parent = "main", .index = -1, .item_json = "not json", .first_step = "s"}),
               2))["data"];
  EXPECT_EQ(branch["index"], -1);
  EXPECT_EQ(branch["item"], "not json");  // unparsable: kept as text
  EXPECT_EQ(branch["vars"], json::object());
  EXPECT_EQ(branch["first_step"], "s");

  json failed = ToJson(chain.At(events::TaskFailed(chain.H("t"), "boom", "", true, ""), 3))["data"];
  EXPECT_EQ(failed,
            json({{"error", "boom"}, {"output", nullptr}, {"retryable", true}, {"next", ""}}));

  json scheduled =
      ToJson(chain.At(events::TaskScheduled(chain.H("t"), "s", "main", "{}", 3), 4))["data"];
  EXPECT_EQ(scheduled["visit"], 3);
  json empty = ToJson(chain.At(events::ProcessStarted(chain.P()), 5))["data"];
  EXPECT_EQ(empty, json::object());
}

TEST(EventJsonTest, EveryEventTypeHasDataWithoutJsonSuffixes) {
  EventChain c;
  std::vector<Draft> drafts = {
      events::ProcessCreated(c.P(), "w", "h", "{}", "{}", ""),
      events::ProcessStarted(c.P()),
      events::ProcessPauseRequested(c.P(), "r", true),
      events::ProcessPaused(c.P(), "r"),
      events::ProcessResumeRequested(c.P(), "r"),
      events::ProcessResumed(c.P(), "r"),
      events::ProcessCancelRequested(c.P(), "r"),
      events::ProcessCancelled(c.P(), "r"),
      events::ProcessWaiting(c.P()),
      events::ProcessCompleted(c.P(), "{}"),
      events::ProcessFailed(c.P(), "e"),
      events::ProcessRetried(c.P(), "r"),
      events::BranchStarted(c.H("b"), {}),
      events::BranchWaiting(c.H("b"), "t"),
      events::BranchSuspended(c.H("b"), "t", "signal"),
      events::BranchResumed(c.H("b")),
      events::BranchPaused(c.H("b")),
      events::BranchCompleted(c.H("b"), "1"),
      events::BranchFailed(c.H("b"), "e"),
      events::BranchCancelled(c.H("b"), "r"),
      events::TaskScheduled(c.H("t"), "s", "b", "{}"),
      events::TaskStarted(c.H("t"), 1, "k"),
      events::TaskWaitingForApproval(c.H("t"), "p", "", 0),
      events::TaskApproved(c.H("t"), "a", "r"),
      events::TaskRejected(c.H("t"), "a", "r"),
      events::TaskBlocked(c.H("t"), "rule", "r"),
      events::TaskRetryScheduled(c.H("t"), 2, 5, "e"),
      events::TaskCompleted(c.H("t"), "{}", ""),
      events::TaskFailed(c.H("t"), "e", "", false, ""),
      events::TaskSkipped(c.H("t"), "r", "n"),
      events::TaskCancelled(c.H("t"), "r"),
      events::SignalReceived(c.P(), "topic", "[1]"),
      events::TimerScheduled(c.P(), "t1", 5, "sleep", "t"),
      events::TimerFired(c.P(), "t1", 5),
      events::VariablesSet(c.H("b"), R"({"a":1})"),
      events::TimerCancelled(c.P(), "t1", 5),
      events::ScheduleCreated(c.P(), {.cron = "* * * * *", .workflow = "w", .overlap = "skip"}),
      events::SchedulePaused(c.P(), "r"),
      events::ScheduleResumed(c.P(), "r"),
      events::ScheduleDeleted(c.P(), "r"),
      events::ScheduleFired(c.P(), 5, "sched-x-1", "started", false),
      events::ScheduleMissed(c.P(), 1, 5, 2),
      events::ProcessAdmitted(c.P(), "q"),
  };
  ASSERT_EQ(drafts.size(), static_cast<size_t>(EventType::MAX));
  for (size_t i = 0; i < drafts.size(); ++i) {
    const EventType type = drafts[i].type;
    EXPECT_EQ(static_cast<size_t>(type), i + 1);
    json j = ToJson(c.At(std::move(drafts[i]), i + 1));
    EXPECT_EQ(j["type"], EventTypeName(type));
    ASSERT_TRUE(j["data"].is_object());
    for (auto it = j["data"].begin(); it != j["data"].end(); ++it) {
      EXPECT_FALSE(it.key().ends_with("_json")) << EventTypeName(type) << "." << it.key();
    }
    EXPECT_NO_THROW(j.dump());
  }
}

// ---- time formats ----------------------------------------------------------

TEST(TimeFormatTest, MillisecondsAndNanosecondsInUtc) {
  EXPECT_EQ(FormatTimeMs(kT0 + 123'456'789), "2026-11-22T10:00:00.123Z");
  EXPECT_EQ(FormatTimeNs(kT0 + 123'456'789), "2026-11-22T10:00:00.123456789Z");
  EXPECT_EQ(FormatTimeMs(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatTimeNs(5), "1970-01-01T00:00:00.000000005Z");
  EXPECT_EQ(FormatTimeNs(-1), "1969-12-31T23:59:59.999999999Z");
  EXPECT_EQ(FormatTimeNs(INT64_MAX), "2262-04-11T23:47:16.854775807Z");
  EXPECT_EQ(FormatTimeNs(INT64_MIN), "1677-09-21T00:12:43.145224192Z");
  EXPECT_EQ(FormatTimeNs(-1), "1969-12-31T23:59:59.999999999Z");
  EXPECT_EQ(FormatTimeMs(1709164800LL * 1'000'000'000), "2024-02-29T00:00:00.000Z");
  EXPECT_EQ(FormatTimeMs(951782400LL * 1'000'000'000 + 86'399'999'000'000),
            "2000-02-29T23:59:59.999Z");
  EXPECT_EQ(FormatTimeNs(std::numeric_limits<int64_t>::max()), "2262-04-11T23:47:16.854775807Z");
  EXPECT_EQ(FormatTimeNs(std::numeric_limits<int64_t>::min()), "1677-09-21T00:12:43.145224192Z");
}

}  // namespace
}  // namespace keel::events
