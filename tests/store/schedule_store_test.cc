// Schedules' streams in a real store: listed without an index, folded back,
// and audited by verify with the schedule fold.

#include <gtest/gtest.h>

#include "events/schedule.h"
#include "store/load_state.h"
#include "tests/store/store_fixture.h"

namespace keel::store::testing {
namespace {

class ScheduleStoreTest : public StoreFixture {
 protected:
  Status Create(const std::string& name) {
    events::ScheduleDefinition d;
    d.every_ms = 60'000;
    d.workflow = "w";
    d.definition_hash = "h";
    d.overlap = "skip";
    std::string stream = events::ScheduleStream(name);
    events::Header h{stream, name, "alice"};
    return Append(stream, 0, {events::ScheduleCreated(h, d)}).status();
  }
};

TEST_F(ScheduleStoreTest, ListStreamsFindsEachScheduleOnceAndNoProcess) {
  ASSERT_TRUE(Create("b").ok());
  ASSERT_TRUE(Create("a").ok());
  std::string stream = events::ScheduleStream("a");
  events::Header h{stream, "a", "alice"};
  ASSERT_TRUE(
      Append(stream, 1, {events::SchedulePaused(h, ""), events::ScheduleResumed(h, "")}).ok());
  ASSERT_TRUE(
      Append("p1", 0, {events::ProcessCreated({"p1", "p1"}, "w", "h", "{}", "{}", "")}).ok());
  auto streams = store_->ListStreams(events::kScheduleStreamPrefix);
  ASSERT_TRUE(streams.ok()) << streams.status().ToString();
  EXPECT_EQ(*streams, (std::vector<std::string>{"schedule/a", "schedule/b"}));
}

TEST_F(ScheduleStoreTest, LoadScheduleFoldsTheStream) {
  ASSERT_TRUE(Create("a").ok());
  std::string stream = events::ScheduleStream("a");
  events::Header h{stream, "a", "alice"};
  ASSERT_TRUE(Append(stream, 1, {events::SchedulePaused(h, "")}).ok());
  auto state = LoadSchedule(*store_, "a");
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(state->status, events::ScheduleStatus::kPaused);
  EXPECT_EQ(state->every_ms, 60'000);
  EXPECT_EQ(LoadSchedule(*store_, "nope").status().code(), Status::Code::kNotFound);
}

TEST_F(ScheduleStoreTest, VerifyPassesASchedulesStreamAndReportsAnIllegalOne) {
  ASSERT_TRUE(Create("a").ok());
  std::string stream = events::ScheduleStream("a");
  events::Header h{stream, "a", "alice"};
  ASSERT_TRUE(
      Append(stream, 1, {events::ScheduleFired(h, INT64_MAX / 2, "sched-a-x", "started", false)})
          .ok());
  EXPECT_TRUE(VerifyAll().empty());
  EXPECT_TRUE(VerifyAll(stream).empty());
  // The store takes what its writer is given; the fold refuses a fire at
  // the same time again, and verify says so.
  ASSERT_TRUE(
      Append(stream, 2, {events::ScheduleFired(h, INT64_MAX / 2, "sched-a-x", "started", false)})
          .ok());
  auto problems = VerifyAll();
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].stream, stream);
  EXPECT_EQ(problems[0].seq, 3u);
  EXPECT_NE(problems[0].what.find("cursor"), std::string::npos) << problems[0].what;
}

}  // namespace
}  // namespace keel::store::testing
