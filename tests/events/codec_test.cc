#include "events/codec.h"

#include <gtest/gtest.h>

#include <random>

#include "events/state.h"
#include "tests/events/event_chain.h"
#include "tests/support/test_util.h"

namespace keel::events {
namespace {

using testing::EventChain;

const std::string kZeroHash(kHashSize, '\0');

std::string SealedCompleted(uint64_t seq = 4) {
  EventChain chain;
  return Seal(events::TaskCompleted(chain.H("reserve"), R"({"ok":true})", "ship"), seq, 40,
              EventChain::TimeOf(seq), kZeroHash);
}

TEST(CodecTest, SealFillsSeqGlobalSeqTimeAndPrevHash) {
  EventChain chain;
  const std::string prev(kHashSize, '\x5a');
  std::string value = Seal(events::ProcessStarted(chain.P()), 9, 77, 123456789, prev);
  auto e = StoredEvent::Decode(value);
  ASSERT_OK(e);
  EXPECT_EQ(e->seq(), 9u);
  EXPECT_EQ(e->global_seq(), 77u);
  EXPECT_EQ(e->time_ns(), 123456789);
  EXPECT_EQ(e->prev_hash(), prev);
  EXPECT_EQ(e->stream(), "p1");
  EXPECT_EQ(e->entity(), "p1");
  EXPECT_EQ(e->actor(), "system");
  EXPECT_EQ(e->type(), EventType::ProcessStarted);
  EXPECT_EQ(e->envelope().schema_version(), kSchemaVersion);
  EXPECT_EQ(e->hash(), ChainHash(prev, e->envelope_bytes()));
  EXPECT_EQ(e->value(), value);
}

TEST(CodecTest, HashMatchesAndFailsAfterFlippingAnyByte) {
  std::string value = SealedCompleted();
  auto e = StoredEvent::Decode(value);
  ASSERT_OK(e);
  EXPECT_TRUE(e->HashMatches());
  size_t tampered_undetected = 0;
  for (size_t i = 0; i < value.size(); ++i) {
    std::string flipped = value;
    flipped[i] ^= 0x01;
    auto f = StoredEvent::Decode(flipped);
    if (f.ok() && f->HashMatches()) ++tampered_undetected;
  }
  EXPECT_EQ(tampered_undetected, 0u);
}

TEST(CodecTest, ChainLinksEachEventToThePreviousHash) {
  EventChain chain;
  StoredEvent first = chain.Next(events::ProcessCreated(chain.P(), "w", "", "{}", "{}", ""));
  EXPECT_EQ(first.prev_hash(), kZeroHash);
  chain.Commit(first);
  StoredEvent second = chain.Next(events::ProcessStarted(chain.P()));
  EXPECT_EQ(second.prev_hash(), first.hash());
  EXPECT_TRUE(second.HashMatches());
  EXPECT_EQ(HexHash(second.hash()).size(), 64u);
}

TEST(CodecTest, TruncatedBytesAreCorruption) {
  const std::string value = SealedCompleted();
  for (size_t len = 0; len < value.size(); ++len) {
    auto e = StoredEvent::Decode(value.substr(0, len));
    // Cutting only into the trailer can leave a valid envelope whose hash is
    // then wrong; everything shorter must fail to decode.
    if (len >= value.size() - kHashSize && e.ok()) {
      EXPECT_FALSE(e->HashMatches()) << len;
      continue;
    }
    ASSERT_FALSE(e.ok()) << "decoded " << len << " of " << value.size() << " bytes";
    EXPECT_EQ(e.status().code(), Status::Code::kCorruption) << e.status().ToString();
  }
}

TEST(CodecTest, RandomGarbageIsRejectedWithoutCrashing) {
  std::mt19937_64 rng(42);
  int decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string garbage(rng() % 300, '\0');
    for (char& c : garbage) c = static_cast<char>(rng());
    auto e = StoredEvent::Decode(garbage);
    if (!e.ok()) {
      EXPECT_TRUE(e.status().code() == Status::Code::kCorruption ||
                  e.status().code() == Status::Code::kNotSupported)
          << e.status().ToString();
      continue;
    }
    ++decoded;  // astronomically unlikely; must still be usable
    EXPECT_FALSE(e->HashMatches());
    (void)ToJson(*e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  EXPECT_LT(decoded, 5);
}

TEST(CodecTest, MutatedRealEventsNeverCrashDecodeOrFold) {
  const std::string value = SealedCompleted(1);
  std::mt19937_64 rng(7);
  int refused = 0, detected = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string m = value;
    for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k) {
      m[rng() % m.size()] = static_cast<char>(rng());
    }
    bool changed = m != value;
    auto e = StoredEvent::Decode(std::move(m));
    if (!e.ok()) {
      ++refused;
      continue;
    }
    // What still decodes is caught by the chain hash, unless nothing changed.
    if (changed) {
      EXPECT_FALSE(e->HashMatches()) << "mutation " << i;
      ++detected;
    }
    (void)ToJson(*e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    ProcessState state;
    Apply(state, *e).IgnoreError();
  }
  EXPECT_GT(refused, 0) << "the verifier refused no garbage";
  EXPECT_GT(detected, 0);
}

TEST(CodecTest, NewerSchemaVersionIsNotSupported) {
  std::string value = SealedCompleted();
  auto* env = flatbuffers::GetMutableRoot<fb::Envelope>(value.data());
  ASSERT_TRUE(env->mutate_schema_version(kSchemaVersion + 1));
  auto e = StoredEvent::Decode(value);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), Status::Code::kNotSupported);
  EXPECT_NE(e.status().message().find("schema_version 2"), std::string::npos)
      << e.status().message();
}

TEST(CodecTest, UnknownBodyTypeIsRejected) {
  std::string value = SealedCompleted();
  // No generated mutator for a union's type tag: patch the table field.
  auto* table = reinterpret_cast<flatbuffers::Table*>(
      flatbuffers::GetMutableRoot<fb::Envelope>(value.data()));
  ASSERT_TRUE(table->SetField<uint8_t>(fb::Envelope::VT_BODY_TYPE, 200, 0));
  auto e = StoredEvent::Decode(value);
  ASSERT_FALSE(e.ok());
  // The verifier does not know the tag (Corruption) or Decode refuses it (NotSupported).
  EXPECT_TRUE(e.status().code() == Status::Code::kNotSupported ||
              e.status().code() == Status::Code::kCorruption)
      << e.status().ToString();
}

TEST(CodecTest, EventTypeNamesRoundTripForEveryType) {
  for (int i = 1; i <= static_cast<int>(EventType::MAX); ++i) {
    auto type = static_cast<EventType>(i);
    std::string name = EventTypeName(type);
    ASSERT_FALSE(name.empty()) << i;
    EXPECT_EQ(EventTypeFromName(name), type) << name;
  }
  EXPECT_STREQ(EventTypeName(EventType::NONE), "");
  EXPECT_STREQ(EventTypeName(static_cast<EventType>(200)), "");
  EXPECT_EQ(EventTypeFromName("NoSuchEvent"), EventType::NONE);
  EXPECT_EQ(EventTypeFromName("NONE"), EventType::NONE);
  EXPECT_EQ(EventTypeFromName(""), EventType::NONE);
}

TEST(CodecTest, InterfaceListsEveryEventTypeName) {
  // The names of INTERFACE.md (plus keel's extensions: TimerCancelled and the
  // schedule events of docs/schedules.md).
  const char* kNames[] = {"ProcessCreated",
                          "ProcessStarted",
                          "ProcessPauseRequested",
                          "ProcessPaused",
                          "ProcessResumeRequested",
                          "ProcessResumed",
                          "ProcessCancelRequested",
                          "ProcessCancelled",
                          "ProcessWaiting",
                          "ProcessCompleted",
                          "ProcessFailed",
                          "ProcessRetried",
                          "BranchStarted",
                          "BranchWaiting",
                          "BranchSuspended",
                          "BranchResumed",
                          "BranchPaused",
                          "BranchCompleted",
                          "BranchFailed",
                          "BranchCancelled",
                          "TaskScheduled",
                          "TaskStarted",
                          "TaskWaitingForApproval",
                          "TaskApproved",
                          "TaskRejected",
                          "TaskBlocked",
                          "TaskRetryScheduled",
                          "TaskCompleted",
                          "TaskFailed",
                          "TaskSkipped",
                          "TaskCancelled",
                          "SignalReceived",
                          "TimerScheduled",
                          "TimerFired",
                          "VariablesSet",
                          "TimerCancelled",
                          "ScheduleCreated",
                          "SchedulePaused",
                          "ScheduleResumed",
                          "ScheduleDeleted",
                          "ScheduleFired",
                          "ScheduleMissed",
                          "ProcessAdmitted"};
  for (const char* name : kNames) EXPECT_NE(EventTypeFromName(name), EventType::NONE) << name;
}

}  // namespace
}  // namespace keel::events
