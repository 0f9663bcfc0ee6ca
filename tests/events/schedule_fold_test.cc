// The schedule fold: what a schedule's stream may hold, and the state it
// rebuilds (the cursor, the buffer, the counters), as the service, `show`
// and `verify` see it.

#include <gtest/gtest.h>

#include "base/time.h"
#include "events/schedule.h"
#include "tests/events/event_chain.h"

namespace keel::events {
namespace {

using testing::EventChain;

class ScheduleFoldTest : public ::testing::Test {
 protected:
  ScheduleFoldTest() : chain_(ScheduleStream("nightly")) {}

  Header H() const { return {chain_.stream(), "nightly", "alice"}; }
  Status Fold(Draft draft) {
    StoredEvent event = chain_.Next(std::move(draft));
    Status s = ApplySchedule(state_, event);
    if (s.ok()) chain_.Commit(event);
    return s;
  }
  Draft Created(std::string_view overlap = "skip") {
    ScheduleDefinition d;
    d.cron = "*/5 * * * *";
    d.time_zone = "Europe/Berlin";
    d.workflow = "report";
    d.definition_hash = "abc";
    d.inputs_json = R"({"n":1})";
    d.overlap = overlap;
    d.catchup_window_ms = 3600'000;
    return ScheduleCreated(H(), d);
  }
  // A fire time after the creation (the events are 1 ms apart).
  static int64_t Fire(int minutes) { return testing::kT0 + int64_t{minutes} * 60'000'000'000; }
  Draft Fired(int minutes, std::string_view action, bool manual = false) {
    return ScheduleFired(H(), Fire(minutes), ScheduleFireId("nightly", Fire(minutes), manual),
                         action, manual);
  }

  EventChain chain_;
  ScheduleState state_;
};

TEST_F(ScheduleFoldTest, CreatedHoldsTheSpecAndStartsTheCursorAtItsTime) {
  ASSERT_TRUE(Fold(Created()).ok());
  EXPECT_EQ(state_.name, "nightly");
  EXPECT_EQ(state_.status, ScheduleStatus::kActive);
  EXPECT_EQ(state_.cron, "*/5 * * * *");
  EXPECT_EQ(state_.time_zone, "Europe/Berlin");
  EXPECT_EQ(state_.inputs, nlohmann::json({{"n", 1}}));
  EXPECT_EQ(state_.cursor_ns, EventChain::TimeOf(1));
  nlohmann::json view = ToJson(state_);
  EXPECT_EQ(view["overlap"], "skip");
  EXPECT_EQ(view["catchup_window"], "1h");
  EXPECT_EQ(view["every"], nullptr);
}

TEST_F(ScheduleFoldTest, FiresMoveTheCursorAndCount) {
  ASSERT_TRUE(Fold(Created()).ok());
  ASSERT_TRUE(Fold(Fired(5, "started")).ok());
  ASSERT_TRUE(Fold(Fired(10, "skipped")).ok());
  EXPECT_EQ(state_.cursor_ns, Fire(10));
  EXPECT_EQ(state_.started, 1u);
  EXPECT_EQ(state_.skipped, 1u);
  EXPECT_EQ(state_.last_process, "sched-nightly-20261122T100500Z");
}

TEST_F(ScheduleFoldTest, AFireAtOrBeforeTheCursorIsRefused) {
  ASSERT_TRUE(Fold(Created()).ok());
  ASSERT_TRUE(Fold(Fired(5, "started")).ok());
  Status again = Fold(Fired(5, "started"));
  EXPECT_EQ(again.code(), Status::Code::kCorruption) << again.ToString();
  EXPECT_EQ(state_.started, 1u);
}

TEST_F(ScheduleFoldTest, ABufferedFireStartsLaterWithoutMovingTheCursorBack) {
  ASSERT_TRUE(Fold(Created("buffer_all")).ok());
  ASSERT_TRUE(Fold(Fired(5, "started")).ok());
  ASSERT_TRUE(Fold(Fired(10, "buffered")).ok());
  ASSERT_TRUE(Fold(Fired(15, "buffered")).ok());
  EXPECT_EQ(state_.buffered.size(), 2u);
  ASSERT_TRUE(Fold(Fired(10, "started")).ok());
  EXPECT_EQ(state_.buffered, std::deque<int64_t>{Fire(15)});
  EXPECT_EQ(state_.cursor_ns, Fire(15));
  EXPECT_EQ(state_.last_fire_ns, Fire(10));
}

TEST_F(ScheduleFoldTest, PausedRefusesFiresButNotTriggersAndResumePassesTheGapBy) {
  ASSERT_TRUE(Fold(Created()).ok());
  ASSERT_TRUE(Fold(SchedulePaused(H(), "maintenance")).ok());
  EXPECT_EQ(Fold(Fired(5, "started")).code(), Status::Code::kCorruption);
  EXPECT_EQ(Fold(SchedulePaused(H(), "again")).code(), Status::Code::kCorruption);
  ASSERT_TRUE(Fold(Fired(6, "started", /*manual=*/true)).ok());
  EXPECT_EQ(state_.last_process, "sched-nightly-manual-20261122T100600000Z");
  ASSERT_TRUE(Fold(ScheduleResumed(H(), "")).ok());
  EXPECT_EQ(state_.status, ScheduleStatus::kActive);
  EXPECT_EQ(state_.cursor_ns, chain_.TimeOf(state_.last_seq));
  EXPECT_EQ(Fold(ScheduleResumed(H(), "")).code(), Status::Code::kCorruption);
}

TEST_F(ScheduleFoldTest, MissedFiresMoveTheCursorAndAreCounted) {
  ASSERT_TRUE(Fold(Created()).ok());
  ASSERT_TRUE(Fold(ScheduleMissed(H(), state_.cursor_ns, Fire(60), 12)).ok());
  EXPECT_EQ(state_.cursor_ns, Fire(60));
  EXPECT_EQ(state_.missed, 12u);
  EXPECT_EQ(Fold(Fired(30, "started")).code(), Status::Code::kCorruption);
}

TEST_F(ScheduleFoldTest, DeletedTakesNothingButANewCreation) {
  ASSERT_TRUE(Fold(Created()).ok());
  ASSERT_TRUE(Fold(Fired(5, "started")).ok());
  ASSERT_TRUE(Fold(ScheduleDeleted(H(), "gone")).ok());
  EXPECT_EQ(state_.status, ScheduleStatus::kDeleted);
  EXPECT_EQ(Fold(Fired(10, "started")).code(), Status::Code::kCorruption);
  EXPECT_EQ(Fold(ScheduleDeleted(H(), "")).code(), Status::Code::kCorruption);
  ASSERT_TRUE(Fold(Created("allow_all")).ok());
  EXPECT_EQ(state_.status, ScheduleStatus::kActive);
  EXPECT_EQ(state_.overlap, Overlap::kAllowAll);
  EXPECT_EQ(state_.started, 0u);
}

TEST_F(ScheduleFoldTest, AStreamMustBeginWithCreatedAndHoldOnlyScheduleEvents) {
  EXPECT_EQ(Fold(Fired(5, "started")).code(), Status::Code::kCorruption);
  ASSERT_TRUE(Fold(Created()).ok());
  EXPECT_EQ(Fold(Created()).code(), Status::Code::kCorruption);
  EXPECT_EQ(Fold(ProcessStarted(H())).code(), Status::Code::kCorruption);
  EXPECT_EQ(Fold(Fired(5, "exploded")).code(), Status::Code::kCorruption);
}

TEST(ScheduleEventsTest, AProcessStreamRefusesScheduleEvents) {
  EventChain chain("p1");
  ProcessState state;
  ASSERT_TRUE(
      testing::FoldNext(chain, state, ProcessCreated(chain.P(), "wf", "h", "{}", "{}", "")).ok());
  Status s = testing::FoldNext(chain, state, SchedulePaused(chain.P(), ""));
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
}

TEST(ScheduleNamesTest, NamesAndFireIds) {
  EXPECT_TRUE(CheckScheduleName("nightly-report.v2").ok());
  for (const char* bad : {"", "-x", ".x", "_x", "a/b", "a b", "a:b"}) {
    EXPECT_FALSE(CheckScheduleName(bad).ok()) << bad;
  }
  EXPECT_FALSE(CheckScheduleName(std::string(65, 'a')).ok());
  EXPECT_EQ(ScheduleStream("x"), "schedule/x");
  EXPECT_TRUE(IsScheduleStream("schedule/x"));
  EXPECT_FALSE(IsScheduleStream("schedule/"));
  EXPECT_FALSE(IsScheduleStream("p_1"));
  auto t = ParseTimeNs("2026-12-05T10:15:00Z");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(ScheduleFireId("x", *t, false), "sched-x-20261205T101500Z");
  EXPECT_EQ(ScheduleFireId("x", *t + 123'000'000, true), "sched-x-manual-20261205T101500123Z");
}

}  // namespace
}  // namespace keel::events
