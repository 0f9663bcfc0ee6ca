// A damaged write-ahead log, FORMAT file or table file at the store API: every
// open refuses it and touches nothing; RepairStore alone drops data, up to the
// damage, and says how much.

#include <algorithm>
#include <filesystem>

#include "base/data_dir.h"
#include "store/repair.h"
#include "tests/store/store_fixture.h"

namespace keel::store::testing {
namespace {

using Code = Status::Code;
namespace fs = std::filesystem;

class DamageTest : public StoreFixture {
 protected:
  // `count` finished processes of 11 events each, one append per step; the
  // store is closed without a flush, so all of them are in the WAL only.
  void Fill(int count, int first = 0) {
    for (int i = first; i < first + count; ++i) {
      ProcessScript p("p" + std::to_string(i));
      uint64_t seq = 0;
      for (auto drafts : {p.Start(), p.Task(), p.Task(), p.Finish()}) {
        auto appended = Append(p.pid(), seq, std::move(drafts));
        ASSERT_TRUE(appended.ok()) << appended.status().ToString();
        seq = appended->last_seq;
      }
    }
    Close();
  }
  std::string Wal() {
    std::string wal;
    uintmax_t size = 0;
    for (const auto& entry : fs::directory_iterator(dir_.path() + "/db")) {
      if (entry.path().extension() == ".log" && entry.file_size() >= size) {
        size = entry.file_size();
        wal = entry.path();
      }
    }
    return wal;
  }
  // XORs 64 bytes in the middle of the WAL; returns its new bytes.
  std::string DamageWal() {
    std::string wal = Wal(), bytes = keel::testing::ReadFile(wal);
    const size_t mid = bytes.size() / 2;
    for (size_t i = 0; i < 64; ++i) bytes[mid + i] = static_cast<char>(bytes[mid + i] ^ 0x5a);
    keel::testing::WriteFile(wal, bytes);
    return bytes;
  }
};

TEST_F(DamageTest, EveryOpenRefusesADamagedWalAndLeavesIt) {
  Fill(50);
  const std::string wal = Wal();
  const std::string bytes = DamageWal();
  auto opened = OpenAgain();
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), Code::kCorruption) << opened.status().ToString();
  EXPECT_NE(opened.status().message().find(fs::path(wal).filename().string()), std::string::npos)
      << opened.status().ToString();
  TempDir scratch;
  auto follower = EventStore::OpenReadOnly(dir_.path(), scratch.path());
  EXPECT_EQ(follower.status().code(), Code::kCorruption) << follower.status().ToString();
  EXPECT_EQ(keel::testing::ReadFile(wal), bytes);
}

TEST_F(DamageTest, RepairDropsFromTheDamageOnAndSaysHowMuch) {
  Fill(50);
  DamageWal();
  auto look = InspectDamage(dir_.path());
  ASSERT_TRUE(look.ok()) << look.status().ToString();
  EXPECT_TRUE(look->damaged);
  EXPECT_EQ(look->readable.events, 50u * 11u);
  EXPECT_LT(look->kept.events, look->readable.events);

  auto repaired = RepairStore(dir_.path());
  ASSERT_TRUE(repaired.ok()) << repaired.status().ToString();
  EXPECT_TRUE(repaired->damaged);
  EXPECT_EQ(repaired->kept.events, look->kept.events);
  EXPECT_TRUE(repaired->problems.empty());
  Open();
  EXPECT_THAT(VerifyAll(), ::testing::IsEmpty());
  auto last = store_->LastGlobalSeq();
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(*last, repaired->kept.events);
  auto listed = store_->ListProcesses(std::nullopt, "", {0, 0});
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->total, repaired->kept.processes);
  // Appends go on from the cut.
  ProcessScript p("after");
  EXPECT_TRUE(Append("after", 0, p.Start()).ok());
  EXPECT_EQ(store_->LastGlobalSeq().value(), repaired->kept.events + 3);
}

TEST_F(DamageTest, ATornLastRecordIsAnUnacknowledgedWriteAndOpens) {
  Fill(5);
  const std::string wal = Wal();
  std::string bytes = keel::testing::ReadFile(wal);
  keel::testing::WriteFile(wal, bytes.substr(0, bytes.size() - 20));
  Open();
  EXPECT_THAT(VerifyAll(), ::testing::IsEmpty());
  EXPECT_EQ(store_->LastGlobalSeq().value(), 5u * 11u - 2u);  // the last append was cut
}

TEST_F(DamageTest, RepairLeavesAHealthyStoreAlone) {
  Fill(3);
  auto repaired = RepairStore(dir_.path());
  ASSERT_TRUE(repaired.ok()) << repaired.status().ToString();
  EXPECT_FALSE(repaired->damaged);
  EXPECT_EQ(repaired->kept.events, 33u);
  EXPECT_EQ(repaired->kept.processes, 3u);
}

TEST_F(DamageTest, AFormatFileWithoutAVersionIsRefusedByEveryOpen) {
  Fill(1);
  for (const char* garbage : {"", "two\n", "2x", "\n"}) {
    keel::testing::WriteFile(data_dir::FormatFile(dir_.path()), garbage);
    auto opened = OpenAgain();
    EXPECT_EQ(opened.status().code(), Code::kCorruption) << garbage;
    EXPECT_NE(opened.status().message().find("FORMAT"), std::string::npos);
    TempDir scratch;
    EXPECT_EQ(EventStore::OpenReadOnly(dir_.path(), scratch.path()).status().code(),
              Code::kCorruption);
    EXPECT_EQ(keel::testing::ReadFile(data_dir::FormatFile(dir_.path())), garbage);
  }
}

TEST_F(DamageTest, AMissingTableFileIsRefused) {
  for (int i = 0; i < 3; ++i) {
    Fill(1, i);
    Open();  // the recovery flush writes the WAL's contents to table files
  }
  Close();
  std::vector<fs::path> tables;
  for (const auto& entry : fs::directory_iterator(dir_.path() + "/db")) {
    if (entry.path().extension() == ".sst") tables.push_back(entry.path());
  }
  ASSERT_GE(tables.size(), 3u);
  std::sort(tables.begin(), tables.end());
  fs::remove(tables[tables.size() / 2]);
  TempDir scratch;
  auto follower = EventStore::OpenReadOnly(dir_.path(), scratch.path());
  EXPECT_EQ(follower.status().code(), Code::kCorruption) << follower.status().ToString();
  auto opened = OpenAgain();
  EXPECT_FALSE(opened.ok());
}

}  // namespace
}  // namespace keel::store::testing
