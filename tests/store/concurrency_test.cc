// Many appenders at once: to their own streams and all to one shared stream.

#include <atomic>
#include <set>
#include <thread>
#include <tuple>

#include "tests/store/store_fixture.h"

namespace keel::store::testing {
namespace {

// Per backend, per durability.
class ConcurrencyTest : public StoreFixture,
                        public ::testing::WithParamInterface<std::tuple<Backend, Durability>> {
 protected:
  void SetUp() override {
    backend_ = &std::get<0>(GetParam());
    Open(std::get<1>(GetParam()));
  }
};

TEST_P(ConcurrencyTest, SixtyFourThreadsLoseNothingAndOrderEverything) {
  constexpr int kThreads = 64;
  constexpr int kOwnTasks = 10;      // appends of 3 events to a thread's own stream
  constexpr int kSharedAppends = 5;  // appends of 1 event to the shared stream, per thread
  ASSERT_OK(Append("shared", 0, ProcessScript("shared").Start()));

  std::atomic<uint64_t> conflicts{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string own = "own-" + std::to_string(t);
      ProcessScript script(own);
      uint64_t own_seq = 0;
      auto append_own = [&](std::vector<events::Draft> drafts) {
        size_t n = drafts.size();
        auto r = store_->Append({own, own_seq, std::move(drafts)});
        if (!r.ok()) ++failures;
        own_seq += n;
      };
      append_own(script.Start());
      for (int i = 0; i < kOwnTasks; ++i) {
        append_own(script.Task());
        if (i >= kSharedAppends) continue;
        std::string task = "s-" + std::to_string(t) + "-" + std::to_string(i);
        for (uint64_t expected = 3;;) {
          auto r = store_->Append(
              {"shared", expected, {events::TaskScheduled({"shared", task}, task, "main", "{}")}});
          if (r.ok()) break;
          if (r.status().code() != Status::Code::kConflict) {
            ++failures;
            break;
          }
          ++conflicts;
          auto last = store_->LastSeq("shared");
          if (!last.ok()) {
            ++failures;
            break;
          }
          expected = *last;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(conflicts.load(), 0u) << "64 writers on one stream never conflicted";

  for (int t = 0; t < kThreads; ++t) {
    auto events = ReadAll("own-" + std::to_string(t));
    ASSERT_EQ(events.size(), 3u + 3u * kOwnTasks);
    for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].seq(), i + 1);
  }
  auto shared = ReadAll("shared");
  ASSERT_EQ(shared.size(), 3u + kThreads * kSharedAppends);
  std::set<std::string> tasks;
  for (size_t i = 3; i < shared.size(); ++i) {
    EXPECT_TRUE(tasks.emplace(shared[i].entity()).second) << shared[i].entity();
  }

  const uint64_t total = 3 + kThreads * (3 + 3 * kOwnTasks) + kThreads * kSharedAppends;
  auto last = store_->LastGlobalSeq();
  ASSERT_OK(last);
  EXPECT_EQ(*last, total);
  auto log = store_->ReadLog(1, SIZE_MAX);
  ASSERT_OK(log);
  ASSERT_EQ(log->size(), total);
  std::set<std::pair<std::string, uint64_t>> seen;
  for (size_t i = 0; i < log->size(); ++i) {
    EXPECT_EQ((*log)[i].global_seq(), i + 1);  // dense: a total order
    EXPECT_TRUE(seen.emplace(std::string((*log)[i].stream()), (*log)[i].seq()).second);
  }
  auto problems = VerifyAll();
  EXPECT_TRUE(problems.empty()) << problems.size() << " problems, first: " << problems[0].what;
}

INSTANTIATE_TEST_SUITE_P(Backends, ConcurrencyTest,
                         ::testing::Combine(::testing::ValuesIn(Backends()),
                                            ::testing::Values(Durability::kSync,
                                                              Durability::kAsync)),
                         [](const auto& info) {
                           return std::get<0>(info.param).name + "_" +
                                  (std::get<1>(info.param) == Durability::kSync ? "sync" : "async");
                         });

}  // namespace
}  // namespace keel::store::testing
