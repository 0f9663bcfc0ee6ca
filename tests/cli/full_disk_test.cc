// A full disk through the real `keel` binary, on a small tmpfs the test mounts
// (96 MiB: RocksDB resumes writing only with room for a memtable flush, 64 MiB)
// (skipped where it may not mount): a write that fails for lack of space
// fails its appends with a clear error and never aborts keel; the node keeps
// serving reads and takes work again once space is back; opening on a full
// disk says so.

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "tests/cli/cli_fixture.h"

namespace keel {
namespace {

namespace fs = std::filesystem;
using testing::WaitUntil;
using Json = nlohmann::json;

const char kBlobYaml[] = R"(name: blob
inputs: {blob: {required: true}}
steps:
  - {id: a, activity: echo, with: {text: "${inputs.blob}"}}
)";

class FullDiskTest : public testing::KeelCliTest {
 protected:
  void SetUp() override {
    disk_ = dir_ / "disk";
    fs::create_directories(disk_);
    if (::mount("tmpfs", disk_.c_str(), "tmpfs", 0, "size=96m") != 0) {
      // make test runs as root (CI does): a test that cannot run fails, never skips.
      GTEST_FAIL() << "cannot mount a small tmpfs here (" << std::strerror(errno) << ")";
    }
    mounted_ = true;
    fs::create_directories(disk_ + "/data");
    // KeelCliTest passes --data dir/data: let it lead onto the small disk.
    fs::create_directory_symlink(disk_ + "/data", data());
    blob_ = Workflow("blob.yaml", kBlobYaml);
  }
  void TearDown() override {
    if (server_ && !server_->Exited()) {
      server_->Signal(SIGKILL);
      server_->Wait();
    }
    if (mounted_) ::umount2(disk_.c_str(), MNT_DETACH);
  }

  // Fills the small disk with a file until a write fails for lack of space,
  // then gives `leave` bytes back.
  void Fill(off_t leave = 0) {
    int fd = ::open((disk_ + "/filler").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ASSERT_GE(fd, 0);
    std::string chunk(1 << 20, 'x');
    while (::write(fd, chunk.data(), chunk.size()) > 0) {
    }
    ASSERT_EQ(errno, ENOSPC);
    while (::write(fd, chunk.data(), 1) > 0) {
    }
    if (leave > 0) {
      ASSERT_EQ(::ftruncate(fd, ::lseek(fd, 0, SEEK_END) - leave), 0);
    }
    ::close(fd);
  }
  void Free() { fs::remove(disk_ + "/filler"); }

  // An input too random to compress, ~`size` bytes.
  static std::string Blob(size_t size) {
    static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    std::mt19937 rng(42);
    std::string blob(size, 'a');
    for (char& c : blob) c = kAlphabet[rng() % 62];
    return blob;
  }

  void Serve() {
    server_ = Spawn("serve", {"serve", "--listen", "127.0.0.1:0"});
    ASSERT_FALSE(AwaitNodeAddress().empty()) << Err("serve");
  }

  std::string disk_, blob_;
  bool mounted_ = false;
  std::unique_ptr<testing::Child> server_;
};

TEST_F(FullDiskTest, AppendsFailOnAFullDiskAndTheNodeResumesWhenSpaceIsBack) {
  // A little room only, so that RocksDB cannot preallocate its log (where
  // writes would go on for a while on a full disk).
  Fill(2 << 20);
  Serve();
  Json before = RunJson({blob_, "--input", "blob=small", "--id", "before"});
  EXPECT_EQ(before["status"], "completed");
  testing::CommandResult full;
  for (int i = 0; i < 400 && full.exit_code != 1 && full.exit_code != 2; ++i) {
    full = Keel({"run", blob_, "--input", "blob=" + Blob(20000), "--id", "p" + std::to_string(i)});
  }
  EXPECT_NE(full.exit_code, 0);
  EXPECT_EQ(full.signal, 0) << full.err;
  EXPECT_NE(full.err.find("space"), std::string::npos) << full.err;
  ASSERT_FALSE(server_->Exited()) << "the node must not abort: " << Err("serve");

  // Reads go on meanwhile (a secondary keeps its own files off this disk).
  auto show = Keel({"show", "before", "--json"});
  EXPECT_EQ(show.exit_code, 0) << show.err;
  auto ls = Keel({"ls", "--json"});
  EXPECT_EQ(ls.exit_code, 0) << ls.err;

  auto again = Keel({"run", blob_, "--input", "blob=x"});
  EXPECT_NE(again.exit_code, 0) << "the disk is still full";
  EXPECT_NE(again.err.find("space"), std::string::npos) << again.err;

  // RocksDB checks for free space every few seconds: the node takes work
  // again within a bounded wait.
  Free();
  int attempts = 0;
  EXPECT_TRUE(WaitUntil([&] {
    ++attempts;
    return Keel({"run", blob_, "--input", "blob=" + Blob(20000), "--id",
                 "after" + std::to_string(attempts)})
               .exit_code == 0;
  })) << Err("serve");
  server_->Signal(SIGTERM);
  EXPECT_EQ(server_->Wait(), 128 + SIGTERM) << Err("serve");  // a graceful stop
  auto verify = Keel({"verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

TEST_F(FullDiskTest, OpeningOnAFullDiskSaysSoAndNeverAborts) {
  for (int i = 0; i < 3; ++i) RunJson({blob_, "--input", "blob=" + Blob(20000)});
  Fill();
  for (int i = 0; i < 2; ++i) {
    auto run = Keel({"run", blob_, "--input", "blob=x"});
    EXPECT_TRUE(run.exit_code == 2 || run.exit_code == 5) << run.exit_code << " " << run.err;
    EXPECT_EQ(run.signal, 0) << run.err;
    EXPECT_NE(run.err.find("space"), std::string::npos) << run.err;
  }
  auto ls = Keel({"ls", "--json"});
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  Free();
  RunJson({blob_, "--input", "blob=x"});
  auto verify = Keel({"verify", "--json"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_EQ(Parse(verify.out)["streams"], 4);
}

}  // namespace
}  // namespace keel
