// The Akka persistence TCK (JournalSpec, SnapshotStoreSpec) and the
// persistence-query specs, ported to the event store: one test per Akka case,
// named as in Akka. A "persistence id" is a stream, a "message" an event.

#include <set>
#include <thread>

#include "tests/store/store_fixture.h"

namespace keel::store::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// JournalSpec: five events in stream "p-1", as Akka's writeMessages(1, 5).
class JournalSpec : public PerBackend {
 protected:
  void SetUp() override {
    PerBackend::SetUp();
    ProcessScript script("p-1");
    auto drafts = script.Start();  // seq 1..3
    for (auto& d : script.Task()) drafts.push_back(std::move(d));
    drafts.resize(5);  // ..TaskStarted at seq 5
    ASSERT_OK(Append("p-1", 0, std::move(drafts)));
  }
  std::vector<uint64_t> Replay(uint64_t from, uint64_t to, size_t limit) {
    auto events = store_->ReadStream("p-1", from, to, limit);
    EXPECT_TRUE(events.ok()) << events.status().ToString();
    return events.ok() ? Seqs(*events) : std::vector<uint64_t>{};
  }
};

TEST_P(JournalSpec, must_replay_all_messages) {
  EXPECT_THAT(Replay(1, UINT64_MAX, SIZE_MAX), ElementsAre(1, 2, 3, 4, 5));
}

TEST_P(JournalSpec, must_replay_messages_using_a_lower_sequence_number_bound) {
  EXPECT_THAT(Replay(3, UINT64_MAX, SIZE_MAX), ElementsAre(3, 4, 5));
}

TEST_P(JournalSpec, must_replay_messages_using_an_upper_sequence_number_bound) {
  EXPECT_THAT(Replay(1, 3, SIZE_MAX), ElementsAre(1, 2, 3));
}

TEST_P(JournalSpec, must_replay_messages_using_a_count_limit) {
  EXPECT_THAT(Replay(1, UINT64_MAX, 3), ElementsAre(1, 2, 3));
}

TEST_P(JournalSpec, must_replay_messages_using_a_lower_and_upper_sequence_number_bound) {
  EXPECT_THAT(Replay(2, 3, SIZE_MAX), ElementsAre(2, 3));
}

TEST_P(JournalSpec,
       must_replay_messages_using_a_lower_and_upper_sequence_number_bound_and_a_count_limit) {
  EXPECT_THAT(Replay(2, 5, 2), ElementsAre(2, 3));
}

TEST_P(JournalSpec,
       must_replay_a_single_if_lower_sequence_number_bound_equals_upper_sequence_number_bound) {
  EXPECT_THAT(Replay(2, 2, SIZE_MAX), ElementsAre(2));
}

TEST_P(JournalSpec, must_replay_a_single_message_if_count_limit_equals_1) {
  EXPECT_THAT(Replay(2, 4, 1), ElementsAre(2));
}

TEST_P(JournalSpec, must_not_replay_messages_if_count_limit_equals_0) {
  EXPECT_THAT(Replay(2, 4, 0), IsEmpty());
}

TEST_P(JournalSpec,
    must_not_replay_messages_if_lower_sequence_number_bound_is_greater_than_upper_sequence_number_bound) {
  EXPECT_THAT(Replay(3, 2, SIZE_MAX), IsEmpty());
}

TEST_P(JournalSpec, must_not_replay_messages_if_the_persistent_actor_has_not_yet_written_messages) {
  auto events = store_->ReadStream("p-never");
  ASSERT_OK(events);
  EXPECT_THAT(*events, IsEmpty());
  auto last = store_->LastSeq("p-never");
  ASSERT_OK(last);
  EXPECT_EQ(*last, 0u);
}

// Akka deletes messages here. This store never deletes events; its only
// deletion is snapshot pruning, which must not move the highest seq, and
// neither may a restart.
TEST_P(JournalSpec, must_not_reset_highest_sequence_nr_after_message_deletion) {
  ASSERT_OK(store_->SaveSnapshot("p-1", 2, "{}"));
  ASSERT_OK(store_->SaveSnapshot("p-1", 4, "{}"));
  ASSERT_OK(store_->PruneSnapshots("p-1", 5));
  auto snapshot = store_->LatestSnapshot("p-1");
  ASSERT_OK(snapshot);
  EXPECT_FALSE(snapshot->has_value());
  auto last = store_->LastSeq("p-1");
  ASSERT_OK(last);
  EXPECT_EQ(*last, 5u);
  Close();
  Open();
  last = store_->LastSeq("p-1");
  ASSERT_OK(last);
  EXPECT_EQ(*last, 5u);
  EXPECT_EQ(Append("p-1", 0, {events::ProcessStarted({"p-1", "p-1"})}).status().code(),
            Status::Code::kConflict);
}

TEST_P(JournalSpec, must_not_reset_highest_sequence_nr_after_journal_cleanup) {
  Close();
  Open(Durability::kAsync);
  Close();
  Open();
  auto last = store_->LastSeq("p-1");
  ASSERT_OK(last);
  EXPECT_EQ(*last, 5u);
  auto global = store_->LastGlobalSeq();
  ASSERT_OK(global);
  EXPECT_EQ(*global, 5u);
}

TEST_P(JournalSpec, must_reject_non_serializable_events) {
  events::Draft garbage{events::EventType::TaskCompleted, "not a flatbuffer"};
  ProcessScript script("p-1");
  auto drafts = script.Task();
  drafts.push_back(std::move(garbage));
  EXPECT_EQ(Append("p-1", 5, std::move(drafts)).status().code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(Seqs(ReadAll("p-1")), ElementsAre(1, 2, 3, 4, 5));
  // The stream still takes well-formed appends.
  ASSERT_OK(Append("p-1", 5, {events::TaskCompleted({"p-1", "t1"}, "{}", "")}));
}

TEST_P(JournalSpec, must_serialize_events) {
  auto appended = Append("p-2", 0, ProcessScript("p-2").Start());
  ASSERT_OK(appended);
  auto events = ReadAll("p-2");
  ASSERT_EQ(events.size(), appended->values.size());
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].value(), appended->values[i]);
    EXPECT_EQ(events[i].stream(), "p-2");
    EXPECT_EQ(events[i].time_ns(), appended->time_ns);
  }
  EXPECT_EQ(events[0].type(), events::EventType::ProcessCreated);
}

// SnapshotStoreSpec: snapshots of "p-1" at seqs 1..5 (state "s-<seq>").
class SnapshotStoreSpec : public JournalSpec {
 protected:
  void SetUp() override {
    JournalSpec::SetUp();
    for (uint64_t seq = 1; seq <= 5; ++seq) {
      ASSERT_OK(store_->SaveSnapshot("p-1", seq, "s-" + std::to_string(seq)));
    }
  }
  std::optional<Snapshot> Load(std::string_view stream, uint64_t max_seq = UINT64_MAX) {
    auto snapshot = store_->LatestSnapshot(stream, max_seq);
    EXPECT_TRUE(snapshot.ok()) << snapshot.status().ToString();
    return snapshot.ok() ? *snapshot : std::nullopt;
  }
};

TEST_P(SnapshotStoreSpec, must_not_load_a_snapshot_given_an_invalid_persistence_id) {
  EXPECT_FALSE(Load("p-unknown").has_value());
}

TEST_P(SnapshotStoreSpec, must_not_load_a_snapshot_given_non_matching_sequence_number_criteria) {
  ASSERT_OK(store_->PruneSnapshots("p-1", 3));  // keeps 3, 4, 5
  EXPECT_FALSE(Load("p-1", 2).has_value());
}

TEST_P(SnapshotStoreSpec, must_load_the_most_recent_snapshot) {
  auto snapshot = Load("p-1");
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_EQ(snapshot->seq, 5u);
  EXPECT_EQ(snapshot->state_json, "s-5");
}

TEST_P(SnapshotStoreSpec,
       must_load_the_most_recent_snapshot_matching_an_upper_sequence_number_bound) {
  auto snapshot = Load("p-1", 3);
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_EQ(snapshot->seq, 3u);
  EXPECT_EQ(snapshot->state_json, "s-3");
}

TEST_P(SnapshotStoreSpec, must_delete_snapshots_matching_an_upper_sequence_number_bound) {
  ASSERT_OK(store_->PruneSnapshots("p-1", 4));
  EXPECT_FALSE(Load("p-1", 3).has_value());
  auto snapshot = Load("p-1");
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_EQ(snapshot->seq, 5u);
}

TEST_P(SnapshotStoreSpec, must_save_and_overwrite_snapshot_with_same_sequence_number) {
  ASSERT_OK(store_->SaveSnapshot("p-1", 4, "s-4 again"));
  auto snapshot = Load("p-1", 4);
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_EQ(snapshot->state_json, "s-4 again");
}

TEST_P(SnapshotStoreSpec, must_save_bigger_size_snapshot) {
  std::string big(6 << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + (i / 4096) % 26);
  ASSERT_OK(store_->SaveSnapshot("p-1", 5, big));
  Close();
  Open();
  auto snapshot = Load("p-1");
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_EQ(snapshot->state_json, big);
}

TEST_P(SnapshotStoreSpec, must_refuse_a_snapshot_beyond_the_highest_sequence_number) {
  EXPECT_EQ(store_->SaveSnapshot("p-1", 6, "{}").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(store_->SaveSnapshot("p-1", 0, "{}").code(), Status::Code::kInvalidArgument);
}

// CurrentEventsByPersistenceIdSpec: "p-1" as in JournalSpec.
using CurrentEventsByPersistenceIdSpec = JournalSpec;

TEST_P(CurrentEventsByPersistenceIdSpec, must_find_existing_events) {
  auto events = ReadAll("p-1");
  EXPECT_THAT(Seqs(events), ElementsAre(1, 2, 3, 4, 5));
  for (const auto& e : events) EXPECT_TRUE(e.HashMatches());
}

TEST_P(CurrentEventsByPersistenceIdSpec, must_find_existing_events_up_to_a_sequence_number) {
  EXPECT_THAT(Replay(1, 2, SIZE_MAX), ElementsAre(1, 2));
}

TEST_P(CurrentEventsByPersistenceIdSpec,
       must_not_see_any_events_if_the_stream_starts_after_current_latest_event) {
  EXPECT_THAT(Replay(6, UINT64_MAX, SIZE_MAX), IsEmpty());
}

// EventsByPersistenceIdSpec (live): a secondary instance follows the writer.
using EventsByPersistenceIdSpec = JournalSpec;

TEST_P(EventsByPersistenceIdSpec, must_find_new_events) {
  TempDir scratch;
  auto follower = backend_->open_read_only(dir_.path(), scratch.path());
  ASSERT_OK(follower);
  EXPECT_TRUE((*follower)->read_only());
  auto seen = (*follower)->ReadStream("p-1");
  ASSERT_OK(seen);
  EXPECT_EQ(seen->size(), 5u);

  ASSERT_OK(Append("p-1", 5, {events::TaskCompleted({"p-1", "t1"}, "{}", "")}));
  ASSERT_OK(Append("p-9", 0, ProcessScript("p-9").Start()));
  ASSERT_OK((*follower)->TryCatchUp());
  seen = (*follower)->ReadStream("p-1", 6);
  ASSERT_OK(seen);
  EXPECT_THAT(Seqs(*seen), ElementsAre(6));
  auto last = (*follower)->LastSeq("p-9");
  ASSERT_OK(last);
  EXPECT_EQ(*last, 3u);
  auto status = (*follower)->StatusOf("p-9");
  ASSERT_OK(status);
  EXPECT_EQ(*status, events::ProcessStatus::kRunning);
}

TEST_P(EventsByPersistenceIdSpec, must_refuse_writes_on_a_read_only_instance) {
  TempDir scratch;
  auto follower = backend_->open_read_only(dir_.path(), scratch.path());
  ASSERT_OK(follower);
  auto appended = (*follower)->Append({"p-1", 5, {events::ProcessStarted({"p-1", "p-1"})}});
  EXPECT_EQ(appended.status().code(), Status::Code::kRefused);
  EXPECT_EQ((*follower)->SaveSnapshot("p-1", 1, "{}").code(), Status::Code::kRefused);
  EXPECT_EQ((*follower)->PutDefinition("h", "{}").code(), Status::Code::kRefused);
}

// The global log, keel's "events by tag" over every stream.
class GlobalLogSpec : public PerBackend {
 protected:
  void SetUp() override {
    PerBackend::SetUp();
    // Interleave three streams: 3 + 3 + 3 + 3 events.
    for (const char* id : {"a", "b", "c"}) ASSERT_OK(Append(id, 0, ProcessScript(id).Start()));
    ProcessScript b("b");
    ASSERT_OK(Append("b", 3, b.Task()));
  }
};

TEST_P(GlobalLogSpec, must_find_events_from_offset_inclusive) {
  auto events = store_->ReadLog(4, 3);
  ASSERT_OK(events);
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[0].global_seq(), 4u);
  EXPECT_EQ((*events)[0].stream(), "b");
  EXPECT_EQ((*events)[0].seq(), 1u);
  EXPECT_EQ((*events)[2].global_seq(), 6u);
}

TEST_P(GlobalLogSpec, must_see_every_event_exactly_once) {
  std::set<std::pair<std::string, uint64_t>> seen;
  uint64_t next = 1;
  for (;;) {
    auto page = store_->ReadLog(next, 5);
    ASSERT_OK(page);
    if (page->empty()) break;
    for (const auto& e : *page) {
      EXPECT_EQ(e.global_seq(), next);
      EXPECT_TRUE(seen.emplace(std::string(e.stream()), e.seq()).second);
      ++next;
    }
  }
  EXPECT_EQ(seen.size(), 12u);
  auto last = store_->LastGlobalSeq();
  ASSERT_OK(last);
  EXPECT_EQ(*last, 12u);
}

TEST_P(GlobalLogSpec, must_find_nothing_beyond_the_last_global_seq) {
  auto events = store_->ReadLog(13, 100);
  ASSERT_OK(events);
  EXPECT_THAT(*events, IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(Backends, JournalSpec, ::testing::ValuesIn(Backends()), BackendName);
INSTANTIATE_TEST_SUITE_P(Backends, SnapshotStoreSpec, ::testing::ValuesIn(Backends()),
                         BackendName);
INSTANTIATE_TEST_SUITE_P(Backends, GlobalLogSpec, ::testing::ValuesIn(Backends()), BackendName);
INSTANTIATE_TEST_SUITE_P(Backends, CurrentEventsByPersistenceIdSpec,
                         ::testing::ValuesIn(Backends()), BackendName);
INSTANTIATE_TEST_SUITE_P(Backends, EventsByPersistenceIdSpec, ::testing::ValuesIn(Backends()),
                         BackendName);

}  // namespace
}  // namespace keel::store::testing
