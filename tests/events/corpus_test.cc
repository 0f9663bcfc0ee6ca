// Runs the decoder over the fuzzing seed corpus (tests/fuzz/corpus), so that
// `make test` exercises it without clang. Files named event_* are the sealed
// events of one process in order; garbage_* must be rejected.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "events/state.h"
#include "tests/events/event_chain.h"
#include "tests/support/test_util.h"

namespace keel::events {
namespace {

namespace fs = std::filesystem;
using testing::EventChain;

std::vector<fs::path> CorpusFiles(std::string_view prefix) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(KEEL_CORPUS_DIR)) {
    if (entry.path().filename().string().starts_with(prefix)) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(CorpusTest, SealedEventsDecodeVerifyAndFoldInOrder) {
  auto files = CorpusFiles("event_");
  ASSERT_GE(files.size(), 10u);
  ProcessState state;
  for (const fs::path& file : files) {
    auto e = StoredEvent::Decode(keel::testing::ReadFile(file.string()));
    ASSERT_OK(e);
    EXPECT_TRUE(e->HashMatches()) << file;
    EXPECT_NO_THROW(ToJson(*e).dump()) << file;
    ASSERT_OK(Apply(state, *e));
  }
  EXPECT_EQ(state.status, ProcessStatus::kCompleted);
  EXPECT_EQ(state.last_seq, files.size());
  auto rebuilt = StateFromJson(ToJson(state));
  ASSERT_OK(rebuilt);
  EXPECT_EQ(ToJson(*rebuilt), ToJson(state));
}

TEST(CorpusTest, GarbageIsRejected) {
  auto files = CorpusFiles("garbage_");
  ASSERT_GE(files.size(), 3u);
  for (const fs::path& file : files) {
    auto e = StoredEvent::Decode(keel::testing::ReadFile(file.string()));
    EXPECT_FALSE(e.ok()) << file;
  }
}

TEST(CorpusTest, EveryFileFoldsIntoAnEmptyStateWithoutCrashing) {
  for (const auto& entry : fs::directory_iterator(KEEL_CORPUS_DIR)) {
    auto e = StoredEvent::Decode(keel::testing::ReadFile(entry.path().string()));
    if (!e.ok()) continue;
    ProcessState state;
    Status s = Apply(state, *e);
    // Only the first event of a stream may start a state.
    EXPECT_EQ(s.ok(), e->seq() == 1 && e->type() == EventType::ProcessCreated) << entry.path();
  }
}

// Writes the seed corpus. Run once by hand when the schema grows:
//   events_test --gtest_also_run_disabled_tests --gtest_filter='*WriteSeedCorpus*'
TEST(CorpusTest, DISABLED_WriteSeedCorpus) {
  EventChain c;
  std::vector<Draft> drafts;
  drafts.push_back(
      events::ProcessCreated(c.P(), "order", "5e1f", R"({"order_id":"o1"})", "{}", "idem"));
  drafts.push_back(events::ProcessStarted(c.P()));
  drafts.push_back(
      events::BranchStarted(c.H("main"), {.vars_json = R"({"v":1})", .first_step = "reserve"}));
  drafts.push_back(events::TaskScheduled(c.H("reserve"), "reserve", "main", R"({"n":1})"));
  drafts.push_back(events::TaskStarted(c.H("reserve"), 1, "p1/reserve/1"));
  drafts.push_back(events::TaskRetryScheduled(c.H("reserve"), 2, 99, "exit 1"));
  drafts.push_back(events::TimerScheduled(c.P(), "retry:reserve", 99, "retry", "reserve"));
  drafts.push_back(events::TimerFired(c.P(), "retry:reserve", 99));
  drafts.push_back(events::TaskStarted(c.H("reserve"), 2, "p1/reserve/2"));
  drafts.push_back(events::TaskCompleted(c.H("reserve"), R"({"ok":true})", "ship"));
  drafts.push_back(events::VariablesSet(c.H("main"), R"({"w":2})"));
  drafts.push_back(events::TaskScheduled(c.H("ship"), "ship", "main", "{}"));
  drafts.push_back(events::TaskWaitingForApproval(c.H("ship"), "ship?", "", 0));
  drafts.push_back(events::BranchSuspended(c.H("main"), "ship", "approval"));
  drafts.push_back(events::ProcessWaiting(c.P()));
  drafts.push_back(events::SignalReceived(c.P(), "payment", R"({"amount":5})"));
  drafts.push_back(events::TaskApproved(c.H("ship", "alice"), "alice", "ok"));
  drafts.push_back(events::ProcessResumed(c.P(), ""));
  drafts.push_back(events::BranchResumed(c.H("main")));
  drafts.push_back(events::TaskStarted(c.H("ship"), 1, "p1/ship/1"));
  drafts.push_back(events::TaskCompleted(c.H("ship"), "{}", "", 16));
  drafts.push_back(events::BranchCompleted(c.H("main"), "{}"));
  drafts.push_back(events::ProcessCompleted(c.P(), R"({"receipt":"r"})"));

  const std::string dir = KEEL_CORPUS_DIR;
  fs::create_directories(dir);
  std::string first;
  for (size_t i = 0; i < drafts.size(); ++i) {
    const std::string type = EventTypeName(drafts[i].type);
    StoredEvent e = c.Next(std::move(drafts[i]));
    c.Commit(e);
    if (i == 0) first = e.value();
    char name[64];
    std::snprintf(name, sizeof(name), "/event_%02zu_%s.bin", i + 1, type.c_str());
    keel::testing::WriteFile(dir + name, e.value());
  }
  std::mt19937_64 rng(1);
  std::string noise(200, '\0');
  for (char& ch : noise) ch = static_cast<char>(rng());
  keel::testing::WriteFile(dir + "/garbage_random.bin", noise);
  keel::testing::WriteFile(dir + "/garbage_truncated.bin", first.substr(0, first.size() / 2));
  std::string newer = first;
  flatbuffers::GetMutableRoot<fb::Envelope>(newer.data())
      ->mutate_schema_version(kSchemaVersion + 1);
  keel::testing::WriteFile(dir + "/garbage_newer_schema.bin", newer);
}

}  // namespace
}  // namespace keel::events
