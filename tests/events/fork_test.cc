// The fork's pure parts (events/fork.h): where a log is cut, and the new
// stream built from it — a copy that folds to the source's state at the cut,
// under the new id, with the fork's inputs and its origin on ProcessCreated.

#include "events/fork.h"

#include <gtest/gtest.h>

#include <vector>

#include "events/state.h"
#include "tests/events/event_chain.h"
#include "tests/support/test_util.h"

namespace keel::events {
namespace {

using testing::EventChain;

class ForkTest : public ::testing::Test {
 protected:
  // Appends `draft` to the source's log.
  void Add(Draft draft) {
    StoredEvent e = chain_.Next(std::move(draft));
    chain_.Commit(e);
    log_.push_back(std::move(e));
  }
  // main: a (completed) then b, visited twice by a loop, then a parallel
  // step `fan` with branches x and y, each running step `s`.
  void BuildSource() {
    Add(ProcessCreated(chain_.P(), "wf", "hash", R"({"n":1})", "{}", "key-1"));
    Add(ProcessStarted(chain_.P()));
    Add(BranchStarted(chain_.H("main"), {.first_step = "a"}));
    Add(TaskScheduled(chain_.H("a"), "a", "main", "{}"));  // 4
    Add(TaskStarted(chain_.H("a"), 1, "p1/a/1"));
    Add(TaskCompleted(chain_.H("a"), R"({"v":1})", "b"));
    Add(TaskScheduled(chain_.H("b"), "b", "main", "{}"));  // 7
    Add(TaskStarted(chain_.H("b"), 1, "p1/b/1"));
    Add(TimerScheduled(chain_.P(), "retry/b/2", 5, "retry", "b"));
    Add(TimerFired(chain_.P(), "retry/b/2", 5));
    Add(TaskCompleted(chain_.H("b"), "{}", "b"));
    Add(TaskScheduled(chain_.H("b#2"), "b", "main", "{}", 2));  // 12
    Add(TaskStarted(chain_.H("b#2"), 1, "p1/b#2/1"));
    Add(TaskCompleted(chain_.H("b#2"), "{}", "fan"));
    Add(TaskScheduled(chain_.H("fan"), "fan", "main", "{}"));  // 15
    Add(TaskStarted(chain_.H("fan"), 1, "p1/fan/1"));
    Add(BranchStarted(chain_.H("fan/x"),
                      {.parent = "main", .fork_task = "fan", .name = "x", .first_step = "s"}));
    Add(BranchStarted(chain_.H("fan/y"),
                      {.parent = "main", .fork_task = "fan", .name = "y", .first_step = "s"}));
    Add(BranchWaiting(chain_.H("main"), "fan"));
    Add(TaskScheduled(chain_.H("fan/x/s"), "s", "fan/x", "{}"));  // 20
    Add(TaskStarted(chain_.H("fan/x/s"), 1, "p1/fan/x/s/1"));
    Add(TaskScheduled(chain_.H("fan/y/s"), "s", "fan/y", "{}"));  // 22
  }

  // Folds drafts (stamped) as a reader would fold the stored stream.
  static Result<ProcessState> Fold(const std::vector<Draft>& drafts) {
    ProcessState state;
    for (const auto& d : drafts) KEEL_RETURN_IF_ERROR(Apply(state, StoredEvent::Unsealed(d)));
    return state;
  }
  static Result<ProcessState> Fold(const std::vector<StoredEvent>& log, uint64_t to) {
    ProcessState state;
    for (uint64_t i = 0; i < to; ++i) KEEL_RETURN_IF_ERROR(Apply(state, log[i]));
    return state;
  }

  EventChain chain_{"p1"};
  std::vector<StoredEvent> log_;
};

TEST_F(ForkTest, AStepIsCutBeforeItsFirstVisitBegan) {
  BuildSource();
  auto cut = FindForkCut(log_, "b", 0);
  ASSERT_OK(cut);
  EXPECT_EQ(cut->seq, 6u);
  EXPECT_EQ(cut->task, "b");
  EXPECT_EQ(cut->branch, "main");
  EXPECT_EQ(cut->visit, 1u);
}

TEST_F(ForkTest, AVisitNamesTheNthVisitOfAStep) {
  BuildSource();
  auto cut = FindForkCut(log_, "b", 2);
  ASSERT_OK(cut);
  EXPECT_EQ(cut->seq, 11u);
  EXPECT_EQ(cut->task, "b#2");
  // A task id names its visit itself.
  auto by_task = FindForkCut(log_, "b#2", 0);
  ASSERT_OK(by_task);
  EXPECT_EQ(by_task->seq, 11u);
}

TEST_F(ForkTest, AStepInBranchesIsCutAtItsFirstStartATaskIdAtItsOwn) {
  BuildSource();
  auto step = FindForkCut(log_, "s", 0);
  ASSERT_OK(step);
  EXPECT_EQ(step->seq, 19u);
  EXPECT_EQ(step->task, "fan/x/s");
  auto task = FindForkCut(log_, "fan/y/s", 0);
  ASSERT_OK(task);
  EXPECT_EQ(task->seq, 21u);
  EXPECT_EQ(task->branch, "fan/y");
}

TEST_F(ForkTest, AStepThatNeverBeganOrAMissingVisitIsRefused) {
  BuildSource();
  auto never = FindForkCut(log_, "zzz", 0);
  EXPECT_EQ(never.status().code(), Status::Code::kRefused);
  EXPECT_NE(never.status().message().find("never began"), std::string::npos);
  auto visit = FindForkCut(log_, "b", 3);
  EXPECT_EQ(visit.status().code(), Status::Code::kRefused);
  EXPECT_NE(visit.status().message().find("visits that began: 1, 2"), std::string::npos)
      << visit.status().message();
  EXPECT_EQ(FindForkCut({}, "a", 0).status().code(), Status::Code::kCorruption);
}

TEST_F(ForkTest, TheForkedStreamFoldsToTheSourceAtTheCutUnderTheNewId) {
  BuildSource();
  auto cut = FindForkCut(log_, "s", 0);
  ASSERT_OK(cut);
  const int64_t now = EventChain::TimeOf(1000);
  auto drafts = ForkedStream(
      log_, cut->seq, {.id = "p2", .actor = "alice", .inputs_json = R"({"n":2})", .time_ns = now});
  ASSERT_OK(drafts);
  ASSERT_EQ(drafts->size(), cut->seq);
  auto fork = Fold(*drafts);
  ASSERT_OK(fork);
  auto source = Fold(log_, cut->seq);
  ASSERT_OK(source);

  EXPECT_EQ(fork->id, "p2");
  EXPECT_EQ(fork->forked_from, "p1");
  EXPECT_EQ(fork->forked_seq, cut->seq);
  EXPECT_EQ(fork->inputs, nlohmann::json::parse(R"({"n":2})"));
  EXPECT_EQ(fork->idempotency_key, "");  // the source's key stays the source's
  EXPECT_EQ(fork->created_ns, now);
  EXPECT_EQ(fork->last_seq, cut->seq);
  // Everything but identity, inputs and creation is the source's at the cut.
  nlohmann::json a = ToJson(*fork), b = ToJson(*source);
  for (const char* key : {"id", "inputs", "idempotency_key", "created_at", "created_ns",
                          "last_hash", "forked_from"}) {
    a.erase(key);
    b.erase(key);
  }
  EXPECT_EQ(a, b);

  // Each copied event keeps its body, time and actor; process events are
  // about the new process.
  for (uint64_t seq = 2; seq <= cut->seq; ++seq) {
    StoredEvent copy = StoredEvent::Unsealed((*drafts)[seq - 1]);
    const StoredEvent& original = log_[seq - 1];
    EXPECT_EQ(copy.stream(), "p2");
    EXPECT_EQ(copy.seq(), seq);
    EXPECT_EQ(copy.time_ns(), original.time_ns());
    EXPECT_EQ(copy.type(), original.type());
    EXPECT_EQ(copy.entity(), original.entity() == "p1" ? "p2" : original.entity());
    EXPECT_EQ(ToJson(copy)["data"], ToJson(original)["data"]) << "seq " << seq;
  }
  StoredEvent created = StoredEvent::Unsealed(drafts->front());
  EXPECT_EQ(created.actor(), "alice");
  EXPECT_EQ(ToJson(created)["data"]["forked_from"], "p1");
  EXPECT_EQ(ToJson(created)["data"]["forked_seq"], cut->seq);
}

TEST_F(ForkTest, TheForkSurvivesTheSnapshotJson) {
  BuildSource();
  auto drafts =
      ForkedStream(log_, 6, {.id = "p2", .actor = "u", .inputs_json = "{}", .time_ns = 7});
  ASSERT_OK(drafts);
  auto fork = Fold(*drafts);
  ASSERT_OK(fork);
  nlohmann::json snapshot = ToJson(*fork);
  EXPECT_EQ(snapshot["forked_from"], nlohmann::json::parse(R"({"process":"p1","seq":6})"));
  auto back = StateFromJson(snapshot);
  ASSERT_OK(back);
  EXPECT_EQ(back->forked_from, "p1");
  EXPECT_EQ(back->forked_seq, 6u);
  EXPECT_EQ(ToJson(*back), snapshot);
  // A process started anew has no such key.
  auto plain = Fold(log_, 6);
  ASSERT_OK(plain);
  EXPECT_FALSE(ToJson(*plain).contains("forked_from"));
}

TEST_F(ForkTest, AShortLogIsCorruptionNotACopy) {
  BuildSource();
  auto drafts = ForkedStream(log_, log_.size() + 1,
                             {.id = "p2", .actor = "u", .inputs_json = "{}", .time_ns = 7});
  EXPECT_EQ(drafts.status().code(), Status::Code::kCorruption);
}

}  // namespace
}  // namespace keel::events
