// Append semantics, the index, the format version, exclusivity, and Verify.

#include <atomic>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "base/data_dir.h"
#include "events/state.h"
#include "tests/store/store_fixture.h"

namespace keel::store::testing {
namespace {

using events::ProcessStatus;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using Code = Status::Code;

class EventStoreTest : public StoreFixture {
 protected:
  // A started process with `tasks` completed tasks.
  void Started(const std::string& id, int tasks = 0, const std::string& workflow = "wf",
               const std::string& key = "") {
    ProcessScript script(id, workflow, key);
    auto drafts = script.Start();
    for (int i = 0; i < tasks; ++i) drafts = Concat(std::move(drafts), script.Task());
    ASSERT_OK(Append(id, 0, std::move(drafts)));
  }
  uint64_t Last(const std::string& id) {
    auto last = store_->LastSeq(id);
    EXPECT_TRUE(last.ok());
    return last.ok() ? *last : 0;
  }
  std::string Dump(const std::vector<Problem>& problems) {
    std::string out;
    for (const auto& p : problems)
      out += p.stream + "/" + std::to_string(p.seq) + ": " + p.what + "\n";
    return out;
  }
};

TEST_F(EventStoreTest, AppendWithStaleExpectedSeqIsRejectedAndWritesNothing) {
  ASSERT_OK(Append("p1", 0, ProcessScript("p1").Start()));
  auto stale = Append("p1", 0, {events::ProcessStarted({"p1", "p1"})});
  EXPECT_EQ(stale.status().code(), Code::kConflict);
  EXPECT_EQ(ReadAll("p1").size(), 3u);
  auto global = store_->LastGlobalSeq();
  ASSERT_OK(global);
  EXPECT_EQ(*global, 3u);
}

TEST_F(EventStoreTest, AppendReturnsSeqsAndTheChainLinks) {
  ProcessScript script("p1");
  auto first = Append("p1", 0, script.Start());
  ASSERT_OK(first);
  EXPECT_EQ(first->first_seq, 1u);
  EXPECT_EQ(first->last_seq, 3u);
  EXPECT_EQ(first->last_global_seq, 3u);
  auto second = Append("p1", 3, script.Task());
  ASSERT_OK(second);
  EXPECT_EQ(second->first_seq, 4u);
  EXPECT_EQ(second->last_seq, 6u);
  auto events = ReadAll("p1");
  ASSERT_EQ(events.size(), 6u);
  EXPECT_EQ(events[0].prev_hash(), std::string(events::kHashSize, '\0'));
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_TRUE(events[i].HashMatches()) << i;
    if (i > 0) {
      EXPECT_EQ(events[i].prev_hash(), events[i - 1].hash()) << i;
    }
  }
  EXPECT_EQ(events[5].hash(), second->last_hash);
  EXPECT_LE(first->time_ns, second->time_ns);
}

TEST_F(EventStoreTest, ConflictInABatchLeavesTheOthersOfTheBatchAlone) {
  Open(Durability::kSync, /*commit_on_caller=*/false);
  ASSERT_OK(Append("p1", 0, ProcessScript("p1").Start()));
  // Queue several appends at once so that they share a group commit.
  std::vector<std::promise<Result<AppendResult>>> done(3);
  auto submit = [&](int i, const std::string& id, uint64_t expected,
                    std::vector<events::Draft> drafts) {
    store_->AppendAsync({id, expected, std::move(drafts)},
                        [&done, i](Result<AppendResult> r) { done[i].set_value(std::move(r)); });
  };
  ProcessScript p1("p1");
  submit(0, "p1", 3, p1.Task());
  submit(1, "p1", 3, p1.Task());  // stale once the first is in the batch
  submit(2, "p2", 0, ProcessScript("p2").Start());
  auto r0 = done[0].get_future().get();
  auto r1 = done[1].get_future().get();
  auto r2 = done[2].get_future().get();
  ASSERT_OK(r0);
  EXPECT_EQ(r1.status().code(), Code::kConflict);
  ASSERT_OK(r2);
  EXPECT_EQ(Last("p1"), 6u);
  EXPECT_EQ(Last("p2"), 3u);
  EXPECT_THAT(VerifyAll(), IsEmpty());
}

TEST_F(EventStoreTest, AnAppendToAnIdleStoreCommitsOnTheCallersThread) {
  std::optional<std::thread::id> ran_on;
  store_->AppendAsync({"p1", 0, ProcessScript("p1").Start()}, [&ran_on](Result<AppendResult> r) {
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    ran_on = std::this_thread::get_id();
  });
  ASSERT_TRUE(ran_on.has_value()) << "the callback ran before AppendAsync returned";
  EXPECT_EQ(*ran_on, std::this_thread::get_id());
  EXPECT_EQ(Last("p1"), 3u);

  Open(Durability::kSync, /*commit_on_caller=*/false);
  std::promise<std::thread::id> writer;
  store_->AppendAsync({"p2", 0, ProcessScript("p2").Start()}, [&writer](Result<AppendResult>) {
    writer.set_value(std::this_thread::get_id());
  });
  EXPECT_NE(writer.get_future().get(), std::this_thread::get_id());
  EXPECT_THAT(VerifyAll(), IsEmpty());
}

TEST_F(EventStoreTest, RefusesMalformedAppends) {
  EXPECT_EQ(Append("", 0, ProcessScript("").Start()).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Append(std::string("a\0b", 3), 0, {}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Append("p1", 0, {}).status().code(), Code::kInvalidArgument);
  // An event built for another stream.
  EXPECT_EQ(Append("p1", 0, ProcessScript("p2").Start()).status().code(), Code::kInvalidArgument);
  // ProcessCreated only as the first event.
  ASSERT_OK(Append("p1", 0, ProcessScript("p1").Start()));
  EXPECT_EQ(Append("p1", 3, {ProcessScript("p1").Created()}).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(Last("p1"), 3u);
}

TEST_F(EventStoreTest, IndexFollowsTheStatusOfEachProcess) {
  Started("p1");
  Started("p2");
  ASSERT_OK(Append("p3", 0, {ProcessScript("p3").Created()}));
  auto status = store_->StatusOf("p3");
  ASSERT_OK(status);
  EXPECT_EQ(*status, ProcessStatus::kPending);
  EXPECT_EQ(store_->StatusOf("nope").status().code(), Code::kNotFound);

  ASSERT_OK(Append("p1", 3, ProcessScript("p1").Finish()));
  status = store_->StatusOf("p1");
  ASSERT_OK(status);
  EXPECT_EQ(*status, ProcessStatus::kCompleted);

  auto running = store_->ListProcesses(ProcessStatus::kRunning, "", {});
  ASSERT_OK(running);
  EXPECT_THAT(running->ids, ElementsAre("p2"));
  EXPECT_EQ(running->total, 1u);
  auto completed = store_->ListProcesses(ProcessStatus::kCompleted, "", {});
  ASSERT_OK(completed);
  EXPECT_THAT(completed->ids, ElementsAre("p1"));

  // Pause and resume p2: running -> pauseRequested -> paused -> resumeRequested -> running.
  ASSERT_OK(Append("p2", 3,
                   {events::ProcessPauseRequested({"p2", "p2"}, "ops"),
                    events::ProcessPaused({"p2", "p2"}, "ops")}));
  auto paused = store_->ListProcesses(ProcessStatus::kPaused, "", {});
  ASSERT_OK(paused);
  EXPECT_THAT(paused->ids, ElementsAre("p2"));
  running = store_->ListProcesses(ProcessStatus::kRunning, "", {});
  ASSERT_OK(running);
  EXPECT_THAT(running->ids, IsEmpty());
  EXPECT_EQ(running->total, 0u);

  auto unfinished = store_->UnfinishedProcesses();
  ASSERT_OK(unfinished);
  EXPECT_THAT(*unfinished, ElementsAre("p2", "p3"));  // oldest first
  EXPECT_THAT(VerifyAll(), IsEmpty());
}

TEST_F(EventStoreTest, ListsByWorkflowAndStatusNewestFirstWithTotals) {
  for (int i = 0; i < 10; ++i) {
    Started("p" + std::to_string(i), 0, i % 2 ? "odd" : "even");
  }
  ASSERT_OK(Append("p4", 3, ProcessScript("p4").Finish()));

  auto all = store_->ListProcesses(std::nullopt, "", {3, 0});
  ASSERT_OK(all);
  EXPECT_THAT(all->ids, ElementsAre("p9", "p8", "p7"));
  EXPECT_EQ(all->total, 10u);
  auto next = store_->ListProcesses(std::nullopt, "", {3, 8});
  ASSERT_OK(next);
  EXPECT_THAT(next->ids, ElementsAre("p1", "p0"));  // offset + size == total: no more

  auto even = store_->ListProcesses(std::nullopt, "even", {2, 1});
  ASSERT_OK(even);
  EXPECT_THAT(even->ids, ElementsAre("p6", "p4"));
  EXPECT_EQ(even->total, 5u);

  auto even_running = store_->ListProcesses(ProcessStatus::kRunning, "even", {});
  ASSERT_OK(even_running);
  EXPECT_THAT(even_running->ids, ElementsAre("p8", "p6", "p2", "p0"));
  EXPECT_EQ(even_running->total, 4u);

  auto odd_completed = store_->ListProcesses(ProcessStatus::kCompleted, "odd", {});
  ASSERT_OK(odd_completed);
  EXPECT_THAT(odd_completed->ids, IsEmpty());
  EXPECT_EQ(odd_completed->total, 0u);

  auto none = store_->ListProcesses(std::nullopt, "unknown", {});
  ASSERT_OK(none);
  EXPECT_EQ(none->total, 0u);
}

TEST_F(EventStoreTest, ListsACreationRangeNewestFirstAndTheProcessOfAKey) {
  std::vector<int64_t> created;
  for (int i = 0; i < 5; ++i) {
    std::string id = "p" + std::to_string(i);
    auto appended = Append(id, 0, ProcessScript(id, "wf", "key" + std::to_string(i)).Start());
    ASSERT_OK(appended);
    created.push_back(appended->time_ns);
    if (i > 0) {
      ASSERT_LT(created[i - 1], created[i]);
    }
  }
  ListNarrowing middle;
  middle.since_ns = created[1];
  middle.until_ns = created[3];
  auto range = store_->ListProcesses(std::nullopt, "", {2, 0}, middle);
  ASSERT_OK(range);
  EXPECT_THAT(range->ids, ElementsAre("p3", "p2"));
  EXPECT_EQ(range->total, 3u);  // counted over the range, not the whole index
  auto rest = store_->ListProcesses(ProcessStatus::kRunning, "wf", {2, 2}, middle);
  ASSERT_OK(rest);
  EXPECT_THAT(rest->ids, ElementsAre("p1"));
  ListNarrowing before;
  before.until_ns = created[0] - 1;
  auto none = store_->ListProcesses(std::nullopt, "", {}, before);
  ASSERT_OK(none);
  EXPECT_THAT(none->ids, IsEmpty());
  EXPECT_EQ(none->total, 0u);

  ListNarrowing key;
  key.idempotency_key = "key2";
  auto found = store_->ListProcesses(std::nullopt, "", {}, key);
  ASSERT_OK(found);
  EXPECT_THAT(found->ids, ElementsAre("p2"));
  EXPECT_EQ(found->total, 1u);
  for (auto [status, workflow] : {std::pair{std::optional(ProcessStatus::kCompleted), "wf"},
                                  std::pair{std::optional<ProcessStatus>(), "other"}}) {
    auto filtered = store_->ListProcesses(status, workflow, {}, key);
    ASSERT_OK(filtered);
    EXPECT_THAT(filtered->ids, IsEmpty());
  }
  key.since_ns = created[3];
  auto too_old = store_->ListProcesses(std::nullopt, "", {}, key);
  ASSERT_OK(too_old);
  EXPECT_EQ(too_old->total, 0u);
}

TEST_F(EventStoreTest, IdempotencyKeyFindsItsProcessAndCannotBeReused) {
  Started("p1", 0, "wf", "order-42");
  auto found = store_->FindByIdempotencyKey("order-42");
  ASSERT_OK(found);
  EXPECT_EQ(found->value_or(""), "p1");
  auto missing = store_->FindByIdempotencyKey("order-43");
  ASSERT_OK(missing);
  EXPECT_FALSE(missing->has_value());

  auto reused = Append("p2", 0, ProcessScript("p2", "wf", "order-42").Start());
  EXPECT_EQ(reused.status().code(), Code::kConflict);
  EXPECT_EQ(Last("p2"), 0u);
}

TEST_F(EventStoreTest, DueTimersAppearAndDisappear) {
  Started("p1");
  Started("p2");
  events::Header h1{"p1", "p1"}, h2{"p2", "p2"};
  ASSERT_OK(Append("p1", 3,
                   {events::TimerScheduled(h1, "sleep-a", 2000, "sleep", "t1"),
                    events::TimerScheduled(h1, "sleep-b", -5, "sleep", "t1")}));
  ASSERT_OK(Append("p2", 3, {events::TimerScheduled(h2, "retry", 1000, "retry", "t1")}));

  auto due = store_->DueTimers(1500, 10);
  ASSERT_OK(due);
  ASSERT_EQ(due->size(), 2u);
  EXPECT_EQ((*due)[0].due_ns, -5);
  EXPECT_EQ((*due)[0].stream, "p1");
  EXPECT_EQ((*due)[0].timer, "sleep-b");
  EXPECT_EQ((*due)[1].due_ns, 1000);
  EXPECT_EQ((*due)[1].stream, "p2");
  auto limited = store_->DueTimers(INT64_MAX, 1);
  ASSERT_OK(limited);
  EXPECT_EQ(limited->size(), 1u);

  ASSERT_OK(Append("p1", 5, {events::TimerFired(h1, "sleep-b", -5)}));
  ASSERT_OK(Append("p2", 4, {events::TimerCancelled(h2, "retry", 1000)}));
  due = store_->DueTimers(INT64_MAX, 10);
  ASSERT_OK(due);
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].timer, "sleep-a");
  EXPECT_THAT(VerifyAll(), IsEmpty());
  EXPECT_THAT(VerifyAll("p1"), IsEmpty());
}

TEST_F(EventStoreTest, DefinitionsAreStoredByHash) {
  ASSERT_OK(store_->PutDefinition("abc", R"({"name":"wf"})"));
  ASSERT_OK(store_->PutDefinition("abc", R"({"name":"wf"})"));
  auto def = store_->GetDefinition("abc");
  ASSERT_OK(def);
  EXPECT_EQ(def->value_or(""), R"({"name":"wf"})");
  auto missing = store_->GetDefinition("zzz");
  ASSERT_OK(missing);
  EXPECT_FALSE(missing->has_value());
}

TEST_F(EventStoreTest, StateSurvivesReopenAndAppendsContinueTheChain) {
  ProcessScript script("p1");
  Started("p1", 2);
  Close();
  Open();
  auto next = Append("p1", 9, {events::BranchCompleted({"p1", "main"}, "null")});
  ASSERT_OK(next);
  EXPECT_EQ(next->last_global_seq, 10u);
  EXPECT_THAT(VerifyAll(), IsEmpty());
}

TEST_F(EventStoreTest, SecondReadWriteOpenOfTheSameDirIsBusy) {
  auto second = OpenAgain();
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kBusy) << second.status().ToString();
  EXPECT_NE(second.status().message().find(dir_.path()), std::string::npos);
  // The first instance is unaffected.
  ASSERT_OK(Append("p1", 0, ProcessScript("p1").Start()));
}

// What a newer keel leaves: the version in the meta and in the FORMAT file;
// or in the meta only (a crash before the file was written).
class NewerFormatTest : public EventStoreTest, public ::testing::WithParamInterface<bool> {};

TEST_P(NewerFormatTest, IsRefusedAndLeftUntouched) {
  const bool with_file = GetParam();
  Started("p1");
  Close();
  {
    RawDb raw(dir_.path());
    ASSERT_TRUE(raw.ok()) << raw.error();
    raw.Put(format::kMetaCf, format::kMetaFormatVersion,
            format::EncodeU32(format::kFormatVersion + 1));
  }
  const std::string file = data_dir::FormatFile(dir_.path());
  if (with_file)
    keel::testing::WriteFile(file, std::to_string(format::kFormatVersion + 1) + "\n");
  else
    std::filesystem::remove(file);
  auto opened = OpenAgain();
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), Code::kNotSupported) << opened.status().ToString();
  TempDir scratch;
  auto follower = EventStore::OpenReadOnly(dir_.path(), scratch.path());
  EXPECT_EQ(follower.status().code(), Code::kNotSupported);
  RawDb raw(dir_.path());
  ASSERT_TRUE(raw.ok()) << raw.error();
  EXPECT_EQ(format::DecodeU32(raw.Get(format::kMetaCf, format::kMetaFormatVersion)),
            format::kFormatVersion + 1);
  EXPECT_EQ(raw.Get(format::kEventsCf, format::StreamKey("p1", 3)).empty(), false);
}

INSTANTIATE_TEST_SUITE_P(FormatFile, NewerFormatTest, ::testing::Bool());

// Open decides from the FORMAT file alone, before RocksDB touches a file.
TEST_F(EventStoreTest, AFormatFileSayingNewerIsRefusedBeforeTheStoreIsOpened) {
  Started("p1");
  Close();
  const std::string file = data_dir::FormatFile(dir_.path());
  keel::testing::WriteFile(file, std::to_string(format::kFormatVersion + 1) + "\n");
  auto listing = [&] {
    std::set<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir_.path() + "/db"))
      names.insert(e.path().filename().string() + ":" + std::to_string(e.file_size()));
    return names;
  };
  const auto before = listing();
  auto opened = OpenAgain();
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), Code::kNotSupported) << opened.status().ToString();
  EXPECT_NE(opened.status().message().find(dir_.path()), std::string::npos);
  EXPECT_EQ(listing(), before);
  keel::testing::WriteFile(file, std::to_string(format::kFormatVersion) + "\n");
  Open();
  EXPECT_EQ(Last("p1"), 3u);
}

TEST_F(EventStoreTest, OpenWritesTheFormatFileAndRestoresAMissingOne) {
  Started("p1");
  Close();
  const std::string file = data_dir::FormatFile(dir_.path());
  EXPECT_EQ(keel::testing::ReadFile(file), std::to_string(format::kFormatVersion) + "\n");
  std::filesystem::remove(file);  // a store from before the file: inspected, then marked
  Open();
  EXPECT_EQ(keel::testing::ReadFile(file), std::to_string(format::kFormatVersion) + "\n");
  EXPECT_EQ(Last("p1"), 3u);
}

TEST_F(EventStoreTest, OpenWithoutCreateIfMissingIsNotFound) {
  TempDir empty;
  StoreOptions options;
  options.path = empty.path();
  options.create_if_missing = false;
  EXPECT_EQ(EventStore::Open(options).status().code(), Code::kNotFound);
  TempDir scratch;
  EXPECT_EQ(EventStore::OpenReadOnly(empty.path(), scratch.path()).status().code(),
            Code::kNotFound);
}

TEST_F(EventStoreTest, CloseIsIdempotentAndLaterCallsAreAborted) {
  ASSERT_OK(store_->Close());
  ASSERT_OK(store_->Close());
  EXPECT_EQ(Append("p1", 0, ProcessScript("p1").Start()).status().code(), Code::kAborted);
  EXPECT_EQ(store_->LastSeq("p1").status().code(), Code::kAborted);
}

TEST_F(EventStoreTest, CloseCommitsQueuedAsyncAppends) {
  std::atomic<int> ok{0};
  for (int i = 0; i < 50; ++i) {
    std::string id = "p" + std::to_string(i);
    store_->AppendAsync({id, 0, ProcessScript(id).Start()}, [&ok](Result<AppendResult> r) {
      if (r.ok()) ++ok;
    });
  }
  ASSERT_OK(store_->Close());
  EXPECT_EQ(ok.load(), 50);
  Open();
  auto global = store_->LastGlobalSeq();
  ASSERT_OK(global);
  EXPECT_EQ(*global, 150u);
}

// ---- Verify -----------------------------------------------------------------

TEST_F(EventStoreTest, VerifyPassesOnAHealthyStoreWithSnapshots) {
  Started("p1", 3);
  Started("p2", 1);
  ASSERT_OK(Append("p2", 6, ProcessScript("p2").Finish()));
  auto state_at = [&](const std::string& id, uint64_t seq) {
    events::ProcessState state;
    for (const auto& e : ReadAll(id)) {
      if (e.seq() > seq) break;
      EXPECT_OK(events::Apply(state, e));
    }
    return events::ToJson(state).dump();
  };
  ASSERT_OK(store_->SaveSnapshot("p1", 6, state_at("p1", 6)));
  ASSERT_OK(store_->SaveSnapshot("p1", 12, state_at("p1", 12)));
  ASSERT_OK(store_->SaveSnapshot("p2", 8, state_at("p2", 8)));
  auto problems = VerifyAll();
  EXPECT_THAT(problems, IsEmpty()) << Dump(problems);
  problems = VerifyAll("p1");
  EXPECT_THAT(problems, IsEmpty()) << Dump(problems);
}

// Retention: a new snapshot deletes its stream's older ones in the same
// write; other streams keep theirs, verify still proves every event.
TEST_F(EventStoreTest, ASnapshotPrunesItsStreamsOlderOnesAndVerifyStillPasses) {
  Started("p1", 3);
  Started("p2", 1);
  auto state_at = [&](const std::string& id, uint64_t seq) {
    events::ProcessState state;
    for (const auto& e : ReadAll(id)) {
      if (e.seq() > seq) break;
      EXPECT_OK(events::Apply(state, e));
    }
    return events::ToJson(state).dump();
  };
  ASSERT_OK(store_->SaveSnapshot("p1", 4, state_at("p1", 4)));
  ASSERT_OK(store_->SaveSnapshot("p1", 6, state_at("p1", 6)));
  ASSERT_OK(store_->SaveSnapshot("p2", 3, state_at("p2", 3)));
  ASSERT_OK(store_->SaveSnapshot("p1", 12, state_at("p1", 12), /*keep=*/2));
  auto newest = store_->LatestSnapshot("p1");
  ASSERT_OK(newest);
  ASSERT_TRUE(newest->has_value());
  EXPECT_EQ((*newest)->seq, 12u);
  auto kept = store_->LatestSnapshot("p1", 11);
  ASSERT_OK(kept);
  ASSERT_TRUE(kept->has_value());
  EXPECT_EQ((*kept)->seq, 6u);
  auto pruned = store_->LatestSnapshot("p1", 5);
  ASSERT_OK(pruned);
  EXPECT_FALSE(pruned->has_value()) << "the snapshot at 4 was kept";
  auto other = store_->LatestSnapshot("p2");
  ASSERT_OK(other);
  ASSERT_TRUE(other->has_value());
  EXPECT_EQ((*other)->seq, 3u);
  ASSERT_OK(store_->SaveSnapshot("p1", 12, state_at("p1", 12), /*keep=*/1));
  auto only = store_->LatestSnapshot("p1", 11);
  ASSERT_OK(only);
  EXPECT_FALSE(only->has_value()) << "keep 1 kept an older snapshot";
  auto problems = VerifyAll();
  EXPECT_THAT(problems, IsEmpty()) << Dump(problems);
}

TEST_F(EventStoreTest, VerifyFindsASnapshotThatDisagreesWithTheFold) {
  Started("p1", 2);
  events::ProcessState state;
  for (const auto& e : ReadAll("p1")) {
    if (e.seq() > 6) break;
    ASSERT_OK(events::Apply(state, e));
  }
  nlohmann::json json = events::ToJson(state);
  json["status"] = "completed";
  ASSERT_OK(store_->SaveSnapshot("p1", 6, json.dump()));
  for (std::string_view stream : {std::string_view(), std::string_view("p1")}) {
    auto problems = VerifyAll(stream);
    ASSERT_EQ(problems.size(), 1u) << Dump(problems);
    EXPECT_EQ(problems[0].stream, "p1");
    EXPECT_EQ(problems[0].seq, 6u);
    EXPECT_NE(problems[0].what.find("snapshot"), std::string::npos);
  }
}

TEST_F(EventStoreTest, VerifyReportsAFlippedByteInAnEvent) {
  Started("p1", 2);
  Started("p2", 1);
  Close();
  {
    RawDb raw(dir_.path());
    ASSERT_TRUE(raw.ok()) << raw.error();
    std::string key = format::StreamKey("p1", 5);
    std::string value = raw.Get(format::kEventsCf, key);
    // Inside the TaskStarted's idempotency key string: still a valid flatbuffer.
    size_t at = value.find("p1/t1/1");
    ASSERT_NE(at, std::string::npos);
    value[at + 3] ^= 0x01;
    raw.Put(format::kEventsCf, key, value);
  }
  Open();
  for (std::string_view stream : {std::string_view(), std::string_view("p1")}) {
    auto problems = VerifyAll(stream);
    ASSERT_FALSE(problems.empty());
    EXPECT_EQ(problems[0].stream, "p1") << Dump(problems);
    EXPECT_EQ(problems[0].seq, 5u) << Dump(problems);
    for (const auto& p : problems) EXPECT_EQ(p.stream, "p1") << Dump(problems);
  }
  EXPECT_THAT(VerifyAll("p2"), IsEmpty());
}

TEST_F(EventStoreTest, VerifyReportsAGarbageValueWithoutCrashing) {
  Started("p1", 2);
  Close();
  {
    RawDb raw(dir_.path());
    ASSERT_TRUE(raw.ok()) << raw.error();
    raw.Put(format::kEventsCf, format::StreamKey("p1", 4), "garbage, not an event at all!!");
    raw.Put(format::kEventsCf, format::StreamKey("p1", 7), "x");
  }
  Open();
  auto problems = VerifyAll();
  ASSERT_GE(problems.size(), 2u) << Dump(problems);
  EXPECT_EQ(problems[0].stream, "p1");
  EXPECT_EQ(problems[0].seq, 4u);
  bool seven = false;
  for (const auto& p : problems) seven |= p.seq == 7;
  EXPECT_TRUE(seven) << Dump(problems);
  // Reading the stream reports the damage as Corruption.
  EXPECT_EQ(store_->ReadStream("p1").status().code(), Code::kCorruption);
}

TEST_F(EventStoreTest, VerifyReportsAMissingEventAndLogEntry) {
  Started("p1", 2);
  Started("p2");
  Started("p3");
  const uint64_t p2_first = Last("p1") + 1;  // one log entry per append
  Close();
  {
    RawDb raw(dir_.path());
    ASSERT_TRUE(raw.ok()) << raw.error();
    raw.Delete(format::kEventsCf, format::StreamKey("p1", 4));
    raw.Delete(format::kLogCf, format::LogKey(p2_first));
  }
  Open();
  auto problems = VerifyAll();
  std::string all = Dump(problems);
  EXPECT_NE(all.find("p1/5: seq gap"), std::string::npos) << all;
  EXPECT_NE(all.find("log entry 4 points at a missing event"), std::string::npos) << all;
  EXPECT_NE(all.find("p2/1: no log entry"), std::string::npos) << all;
  EXPECT_NE(all.find("p2/2: no log entry"), std::string::npos) << all;
  EXPECT_NE(all.find("global log gap"), std::string::npos) << all;
  // Verifying one stream finds the same.
  auto p2 = store_->Verify("p2");
  ASSERT_OK(p2);
  EXPECT_NE(Dump(*p2).find("p2/1: no log entry"), std::string::npos) << Dump(*p2);
}

TEST_F(EventStoreTest, VerifyReportsALogEntryWhoseCountIsDamagedOnce) {
  Started("p1", 1);
  Close();
  {
    RawDb raw(dir_.path());
    ASSERT_TRUE(raw.ok()) << raw.error();
    raw.Put(format::kLogCf, format::LogKey(1), format::LogValue("p1", 1, 4'000'000'000u));
  }
  Open();
  auto problems = VerifyAll();
  std::string all = Dump(problems);
  EXPECT_NE(all.find("log entry 1 runs to global seq 4000000000, past the last event's"),
            std::string::npos)
      << all;
  EXPECT_LT(problems.size(), 5u) << all;
}

// A store of format 1 wrote one log entry per event, its value the event's
// key: such entries read, tail and verify like runs, beside new ones.
TEST_F(EventStoreTest, LogEntriesOfFormatOneReadBesideRuns) {
  Started("p1", 1);
  const uint64_t p1_last = Last("p1");
  Close();
  {
    RawDb raw(dir_.path());
    ASSERT_TRUE(raw.ok()) << raw.error();
    raw.Delete(format::kLogCf, format::LogKey(1));
    for (uint64_t g = 1; g <= p1_last; ++g) {
      raw.Put(format::kLogCf, format::LogKey(g), format::StreamKey("p1", g));
    }
    raw.Put(format::kMetaCf, format::kMetaFormatVersion, format::EncodeU32(1));
  }
  const std::string file = data_dir::FormatFile(dir_.path());
  keel::testing::WriteFile(file, "1\n");
  Open();  // marked as this keel's format: an older keel now refuses it
  EXPECT_EQ(keel::testing::ReadFile(file), std::to_string(format::kFormatVersion) + "\n");
  Started("p2", 1);
  auto problems = VerifyAll();
  EXPECT_TRUE(problems.empty()) << Dump(problems);
  auto p1 = store_->Verify("p1");
  ASSERT_OK(p1);
  EXPECT_TRUE(p1->empty()) << Dump(*p1);
  auto last_global = store_->LastGlobalSeq();
  ASSERT_OK(last_global);
  const uint64_t last = *last_global;
  EXPECT_EQ(last, p1_last + Last("p2"));
  // From every point, in the middle of an old entry's range or of a run.
  for (uint64_t from = 1; from <= last; ++from) {
    auto events = store_->ReadLog(from, 3);
    ASSERT_OK(events);
    ASSERT_EQ(events->size(), std::min<uint64_t>(3, last - from + 1)) << from;
    for (size_t i = 0; i < events->size(); ++i) EXPECT_EQ((*events)[i].global_seq(), from + i);
  }
  Close();
  RawDb raw(dir_.path());
  ASSERT_TRUE(raw.ok()) << raw.error();
  EXPECT_EQ(format::DecodeU32(raw.Get(format::kMetaCf, format::kMetaFormatVersion)),
            format::kFormatVersion);
}

TEST_F(EventStoreTest, VerifyReportsAnIndexThatDisagreesWithTheEvents) {
  Started("p1");
  Started("p2");
  Close();
  {
    RawDb raw(dir_.path());
    ASSERT_TRUE(raw.ok()) << raw.error();
    auto record = format::DecodeProcessRecord(raw.Get(format::kIndexCf, format::ProcessKey("p1")));
    ASSERT_TRUE(record.has_value());
    record->status = ProcessStatus::kPaused;
    raw.Put(format::kIndexCf, format::ProcessKey("p1"), format::EncodeProcessRecord(*record));
    raw.Put(format::kIndexCf, format::TimerKey(5, "p2", "ghost"), "");
  }
  Open();
  auto problems = VerifyAll();
  std::string all = Dump(problems);
  EXPECT_NE(all.find("p1/0: index says status paused, the fold says running"), std::string::npos)
      << all;
  EXPECT_NE(all.find("p2/0: due-timer index holds timer ghost"), std::string::npos) << all;
  all = Dump(VerifyAll("p2"));
  EXPECT_NE(all.find("p2/0: due-timer index holds timer ghost"), std::string::npos) << all;
}

TEST_F(EventStoreTest, VerifyReportsAnIllegalTransition) {
  Started("p1");
  // The store does not judge transitions (the runtime does, before it
  // appends); Verify finds one that slipped through.
  ASSERT_OK(Append("p1", 3, {events::ProcessResumed({"p1", "p1"}, "")}));
  auto problems = VerifyAll();
  ASSERT_EQ(problems.size(), 1u) << Dump(problems);
  EXPECT_EQ(problems[0].seq, 4u);
  EXPECT_NE(problems[0].what.find("fold"), std::string::npos) << Dump(problems);
}

}  // namespace
}  // namespace keel::store::testing
