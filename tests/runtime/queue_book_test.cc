// The admission rules of a queue (runtime/internal/queue_book.h) alone, and
// the spelling of queue specs (keel/options.h): no node, no clock.

#include "runtime/internal/queue_book.h"

#include <gtest/gtest.h>

namespace keel::runtime {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

QueueSpec Spec(const std::string& text) {
  auto spec = ParseQueueSpec(text);
  EXPECT_TRUE(spec.ok()) << spec.status().ToString();
  return spec.ok() ? *spec : QueueSpec{};
}

QueueEntry Entry(const std::string& id, int32_t priority, int64_t created, std::string key = "") {
  return {id, priority, created, std::move(key)};
}

TEST(QueueSpecTest, ReadsEverySettingAndSpellsItBack) {
  QueueSpec spec = Spec("orders:concurrency=8,per_key=1,key=inputs.customer,rate=100/1m");
  EXPECT_EQ(spec.name, "orders");
  EXPECT_EQ(spec.concurrency, 8u);
  EXPECT_EQ(spec.per_key, 1u);
  EXPECT_EQ(spec.key, "inputs.customer");
  EXPECT_EQ(spec.rate_limit, 100u);
  EXPECT_EQ(spec.rate_period, std::chrono::minutes(1));
  EXPECT_EQ(FormatQueueSpec(spec), "orders:concurrency=8,per_key=1,key=inputs.customer,rate=100/1m");
  EXPECT_EQ(Spec("plain").concurrency, 0u);
  EXPECT_EQ(FormatQueueSpec(Spec("plain")), "plain");
}

TEST(QueueSpecTest, RefusesWhatItCannotRead) {
  for (const char* bad : {"", ":concurrency=1", "-x", "q:concurrency=-1", "q:concurrency=x",
                          "q:speed=3", "q:rate=5", "q:rate=5/0s", "q:rate=5/soon", "q:key=customer",
                          "q:concurrency", "bad name"}) {
    EXPECT_FALSE(ParseQueueSpec(bad).ok()) << bad;
  }
}

TEST(QueueBookTest, ConcurrencyAdmitsInPriorityThenArrivalOrder) {
  QueueBook book(Spec("q:concurrency=2"), true);
  book.Enqueue(Entry("late-high", 0, 30));
  book.Enqueue(Entry("first", 1, 10));
  book.Enqueue(Entry("second", 1, 20));
  book.Enqueue(Entry("urgent", 0, 40));
  EXPECT_EQ(book.Position("late-high"), 1u);
  EXPECT_EQ(book.Position("urgent"), 2u);
  EXPECT_EQ(book.Position("first"), 3u);
  EXPECT_EQ(book.Position("second"), 4u);
  EXPECT_EQ(book.Admit(kSecond), (std::vector<std::string>{"late-high", "urgent"}));
  EXPECT_EQ(book.running(), 2u);
  EXPECT_EQ(book.depth(), 2u);
  EXPECT_TRUE(book.Admit(kSecond).empty());  // full
  EXPECT_EQ(book.Position("first"), 1u);
  book.Release("urgent");
  EXPECT_EQ(book.Admit(kSecond), std::vector<std::string>{"first"});
  EXPECT_EQ(book.Position("second"), 1u);
}

TEST(QueueBookTest, EnqueueOfAKnownProcessChangesNothing) {
  QueueBook book(Spec("q:concurrency=1"), true);
  book.Enqueue(Entry("a", 0, 1));
  ASSERT_EQ(book.Admit(kSecond), std::vector<std::string>{"a"});
  // A late report that it waits (its creation) must not put it back.
  book.Enqueue(Entry("a", 0, 1));
  EXPECT_EQ(book.depth(), 0u);
  EXPECT_EQ(book.running(), 1u);
  book.Hold(Entry("a", 0, 1));
  EXPECT_EQ(book.running(), 1u);
}

TEST(QueueBookTest, PerKeyLetsOtherKeysPassAFullKey) {
  QueueBook book(Spec("q:per_key=1"), true);
  book.Enqueue(Entry("a1", 0, 1, "alice"));
  book.Enqueue(Entry("a2", 0, 2, "alice"));
  book.Enqueue(Entry("b1", 0, 3, "bob"));
  EXPECT_EQ(book.Admit(kSecond), (std::vector<std::string>{"a1", "b1"}));
  EXPECT_EQ(book.Position("a2"), 1u);
  book.Release("b1");
  EXPECT_TRUE(book.Admit(kSecond).empty());  // alice still holds her one slot
  book.Release("a1");
  EXPECT_EQ(book.Admit(kSecond), std::vector<std::string>{"a2"});
}

TEST(QueueBookTest, RateCountsAdmissionsInTheWindowEvenOfEndedProcesses) {
  QueueBook book(Spec("q:rate=2/10s"), true);
  for (int i = 0; i < 4; ++i) book.Enqueue(Entry("p" + std::to_string(i), 0, i));
  EXPECT_EQ(book.Admit(100 * kSecond), (std::vector<std::string>{"p0", "p1"}));
  book.Release("p0");
  book.Release("p1");  // ended: their admissions still count
  EXPECT_TRUE(book.Admit(105 * kSecond).empty());
  EXPECT_EQ(book.RateUsed(105 * kSecond), 2u);
  EXPECT_EQ(book.NextRateOpening(105 * kSecond), 110 * kSecond + 1);
  EXPECT_EQ(book.Admit(110 * kSecond + 1), (std::vector<std::string>{"p2", "p3"}));
}

TEST(QueueBookTest, RebuiltAdmissionsCountAgainstTheRate) {
  QueueBook book(Spec("q:rate=1/1h"), true);
  book.CountAdmission(50 * kSecond);  // from the log
  book.Enqueue(Entry("x", 0, 1));
  EXPECT_TRUE(book.Admit(60 * kSecond).empty());
  EXPECT_EQ(book.Admit(50 * kSecond + 3600 * kSecond + 1), std::vector<std::string>{"x"});
}

TEST(QueueBookTest, AReturnedAdmissionWaitsAgainAndNoLongerCounts) {
  QueueBook book(Spec("q:concurrency=1,rate=1/1h"), true);
  book.Enqueue(Entry("a", 0, 1));
  ASSERT_EQ(book.Admit(kSecond), std::vector<std::string>{"a"});
  book.Return("a", kSecond);
  EXPECT_EQ(book.Position("a"), 1u);
  EXPECT_EQ(book.RateUsed(kSecond), 0u);
  EXPECT_EQ(book.Admit(2 * kSecond), std::vector<std::string>{"a"});
}

TEST(QueueBookTest, AQueueTheNodeDoesNotHaveAdmitsNobody) {
  QueueSpec spec;
  spec.name = "elsewhere";
  QueueBook book(spec, false);
  book.Enqueue(Entry("a", 0, 1));
  EXPECT_TRUE(book.Admit(kSecond).empty());
  EXPECT_EQ(book.Position("a"), 1u);
  EXPECT_FALSE(book.View(kSecond)["configured"].get<bool>());
}

TEST(QueueBookTest, ReleaseOfAWaitingProcessTakesItOut) {
  QueueBook book(Spec("q:concurrency=1"), true);
  book.Enqueue(Entry("a", 0, 1));
  book.Enqueue(Entry("b", 0, 2));
  book.Release("a");  // cancelled while it waited
  EXPECT_EQ(book.depth(), 1u);
  EXPECT_EQ(book.Admit(kSecond), std::vector<std::string>{"b"});
}

}  // namespace
}  // namespace keel::runtime
