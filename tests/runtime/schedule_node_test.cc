// Schedules through keel::Node: created, fired, paused, and rebuilt from the
// log by a node that opens the dir again (the schedule fold replayed).

#include <gtest/gtest.h>

#include <set>

#include "keel/node.h"
#include "runtime/internal/schedule_service.h"
#include "tests/support/test_util.h"

namespace keel {
namespace {

using testing::TempDir;
using testing::WaitUntil;

constexpr char kTick[] = R"(name: tick
inputs: {n: {default: 1}}
steps:
  - {id: hello, activity: echo, with: {n: "${inputs.n}"}}
)";

class ScheduleNodeTest : public ::testing::Test {
 protected:
  std::unique_ptr<Node> Open(bool resume = true) {
    Options options;
    options.data_dir = dir_.path();
    options.resume = resume;
    auto node = Node::Open(options);
    EXPECT_TRUE(node.ok()) << node.status().ToString();
    return node.ok() ? std::move(*node) : nullptr;
  }
  static Workflow Tick() {
    auto wf = ParseWorkflow(kTick, "tick.yaml");
    EXPECT_TRUE(wf.ok()) << wf.status().ToString();
    return *wf;
  }
  static ScheduleSpec Every(const std::string& name, std::chrono::milliseconds every) {
    ScheduleSpec spec;
    spec.name = name;
    spec.every = every;
    spec.inputs = {{"n", 3}};
    return spec;
  }
  static uint64_t Started(Node& node, const std::string& name) {
    auto view = node.GetSchedule(name);
    return view.ok() ? (*view)["fires"]["started"].get<uint64_t>() : 0;
  }

  TempDir dir_;
};

TEST_F(ScheduleNodeTest, FiresAndANewNodeRebuildsTheScheduleFromTheLog) {
  Json paused;
  {
    auto node = Open();
    ASSERT_TRUE(node);
    auto created = node->CreateSchedule(Every("t", std::chrono::seconds(1)), Tick());
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    ASSERT_TRUE(WaitUntil([&] { return Started(*node, "t") >= 2; }));
    auto p = node->PauseSchedule("t", {.reason = "for the test"});
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    paused = *p;
    std::string last = paused["last_process"];
    auto process = node->Get(last);
    ASSERT_TRUE(process.ok()) << last;
    EXPECT_EQ((*process)["inputs"], Json({{"n", 3}}));
    ASSERT_TRUE(node->Close().ok());
  }
  {
    auto node = Open(/*resume=*/false);  // fires nothing: only the fold
    ASSERT_TRUE(node);
    auto again = node->GetSchedule("t");
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, paused);
    ASSERT_TRUE(node->Close().ok());
  }
  auto node = Open();
  ASSERT_TRUE(node);
  uint64_t before = Started(*node, "t");
  ASSERT_TRUE(node->ResumeSchedule("t").ok());
  ASSERT_TRUE(WaitUntil([&] { return Started(*node, "t") > before; }));
  auto list = node->ListSchedules();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0]["status"], "active");
}

TEST_F(ScheduleNodeTest, RefusalsNameWhatIsWrong) {
  auto node = Open(/*resume=*/false);
  ASSERT_TRUE(node);
  ScheduleSpec spec = Every("t", std::chrono::minutes(1));
  ASSERT_TRUE(node->CreateSchedule(spec, Tick()).ok());
  EXPECT_EQ(node->CreateSchedule(spec, Tick()).status().code(), Status::Code::kRefused);
  ScheduleSpec bad = Every("u", std::chrono::minutes(1));
  bad.overlap = "sometimes";
  EXPECT_EQ(node->CreateSchedule(bad, Tick()).status().code(), Status::Code::kInvalidArgument);
  bad = Every("u", std::chrono::minutes(1));
  bad.time_zone = "Europe/Berlin";  // a zone is for a cron
  EXPECT_EQ(node->CreateSchedule(bad, Tick()).status().code(), Status::Code::kInvalidArgument);
  bad = Every("u", std::chrono::minutes(1));
  bad.inputs = {{"undeclared", 1}};
  EXPECT_EQ(node->CreateSchedule(bad, Tick()).status().code(), Status::Code::kInvalidArgument);
  bad = Every("u", std::chrono::milliseconds(0));
  bad.cron = "0 25 * * *";
  EXPECT_EQ(node->CreateSchedule(bad, Tick()).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(node->GetSchedule("u").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(node->ResumeSchedule("t").status().code(), Status::Code::kRefused);
  ASSERT_TRUE(node->DeleteSchedule("t").ok());
  EXPECT_EQ(node->PauseSchedule("t").status().code(), Status::Code::kNotFound);
  // A deleted name may be used again.
  EXPECT_TRUE(node->CreateSchedule(spec, Tick()).ok());
}

TEST(ScheduleJitterTest, TheDelayIsWithinTheJitterAndTheSameForTheSameFire) {
  events::ScheduleState s;
  s.name = "nightly";
  EXPECT_EQ(runtime::JitterNs(s, 1'000'000'000), 0);
  s.jitter_ms = 30'000;
  std::set<int64_t> delays;
  for (int64_t fire = 0; fire < 100; ++fire) {
    int64_t d = runtime::JitterNs(s, fire * 60'000'000'000);
    EXPECT_GE(d, 0);
    EXPECT_LT(d, 30'000'000'000);
    EXPECT_EQ(d, runtime::JitterNs(s, fire * 60'000'000'000));
    delays.insert(d);
  }
  EXPECT_GT(delays.size(), 50u);  // spread, not one fixed delay
}

}  // namespace
}  // namespace keel
