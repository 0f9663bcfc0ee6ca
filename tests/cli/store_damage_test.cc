// A damaged, foreign or busy store through the real `keel` binary: a damaged
// write-ahead log is refused by every command and recovered only by
// `keel repair --accept-loss`; a FORMAT this keel cannot read is refused and
// left untouched; a missing table file is reported; readers beside CLI nodes
// that open and close never report damage that is not there; parallel
// controls with no live node all land.

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "tests/cli/cli_fixture.h"

namespace keel {
namespace {

namespace fs = std::filesystem;
using testing::WaitUntil;
using Json = nlohmann::json;

// A workflow resting on an approval until someone moves it.
const char kApprovalYaml[] = R"(name: gate
steps:
  - {id: ok, approval: {prompt: "go"}}
  - {id: after, activity: echo, with: {text: done}}
)";

// Collects `count` signals on topic "tick", then completes.
std::string SignalsYaml(int count) {
  std::string yaml = "name: ticks\nsteps:\n";
  for (int i = 0; i < count; ++i) {
    yaml += "  - {id: t" + std::to_string(i) + ", wait_signal: {topic: tick}}\n";
  }
  return yaml;
}

// Every file under `dir` with its size, mtime and bytes: what "touches
// nothing" means.
std::map<std::string, std::string> FilesOf(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    struct stat st {};
    ::stat(entry.path().c_str(), &st);
    std::string what = std::to_string(st.st_size) + "@" + std::to_string(st.st_mtim.tv_sec) + "." +
                       std::to_string(st.st_mtim.tv_nsec) + "/" + std::to_string(st.st_mode);
    if (entry.is_regular_file()) what += ":" + testing::ReadFile(entry.path());
    files[entry.path().string()] = what;
  }
  return files;
}

class StoreDamageTest : public testing::KeelCliTest {
 protected:
  // Starts `keel serve` on a free port and waits for its node.json.
  void Serve() {
    server_ = Spawn("serve", {"serve", "--listen", "127.0.0.1:0"});
    ASSERT_FALSE(AwaitNodeAddress().empty()) << Err("serve");
  }
  int StopServer() {
    server_->Signal(SIGTERM);
    return server_->Wait();
  }

  // `count` hello processes run by a live node, which stops without a flush:
  // every event is in the write-ahead log only. Returns the log's path.
  std::string FillWal(int count) {
    Serve();
    std::string hello = Workflow("hello.yaml", testing::kHelloYaml);
    for (int i = 0; i < count; ++i) {
      auto r = Keel({"run", hello, "--input", "who=w" + std::to_string(i)});
      EXPECT_EQ(r.exit_code, 0) << r.err;
    }
    EXPECT_EQ(StopServer(), 128 + SIGTERM) << Err("serve");  // a graceful stop
    return Wal();
  }
  // The largest write-ahead log of the store.
  std::string Wal() {
    std::string wal;
    uintmax_t size = 0;
    for (const auto& entry : fs::directory_iterator(data() + "/db")) {
      if (entry.path().extension() == ".log" && entry.file_size() >= size) {
        size = entry.file_size();
        wal = entry.path();
      }
    }
    return wal;
  }

  std::unique_ptr<testing::Child> server_;
};

// ---- a damaged write-ahead log ---------------------------------------------------

TEST_F(StoreDamageTest, DamagedWalIsRefusedByEveryCommandAndRepairedOnlyOnRequest) {
  std::string wal = FillWal(40);
  ASSERT_FALSE(wal.empty());
  std::string bytes = testing::ReadFile(wal);
  ASSERT_GT(bytes.size(), 20000u);
  const size_t mid = bytes.size() / 2;
  for (size_t i = 0; i < 64; ++i) bytes[mid + i] = static_cast<char>(bytes[mid + i] ^ 0xff);
  testing::WriteFile(wal, bytes);

  // A node refuses to open it (the old code opened it and silently dropped
  // every event after the bad record).
  auto serve = Spawn("refused", {"serve", "--listen", "127.0.0.1:0"});
  ASSERT_TRUE(WaitUntil([&] { return serve->Exited(); }, std::chrono::seconds(30)))
      << "serve opened a store with a damaged log";
  EXPECT_EQ(serve->Wait(), 5) << Err("refused");
  EXPECT_NE(Err("refused").find(fs::path(wal).filename().string()), std::string::npos)
      << Err("refused");
  EXPECT_NE(Err("refused").find("keel repair"), std::string::npos) << Err("refused");
  std::string hello = Workflow("hello.yaml", testing::kHelloYaml);
  auto run = Keel({"run", hello, "--input", "who=x"});
  EXPECT_EQ(run.exit_code, 5) << run.err;
  for (std::vector<std::string> read : {std::vector<std::string>{"ls"}, {"verify"}, {"tail"}}) {
    auto r = Keel(read);
    EXPECT_EQ(r.exit_code, 5) << read[0] << ": " << r.out << r.err;
  }
  EXPECT_EQ(testing::ReadFile(wal), bytes) << "a refused open must leave the log as it is";

  // repair without consent explains and changes nothing.
  auto look = Keel({"repair"});
  EXPECT_EQ(look.exit_code, 2) << look.out << look.err;
  EXPECT_NE(look.out.find("would lose"), std::string::npos) << look.out;
  EXPECT_NE(look.err.find("--accept-loss"), std::string::npos) << look.err;
  EXPECT_EQ(testing::ReadFile(wal), bytes);

  auto repaired = Keel({"repair", "--accept-loss", "--json"});
  ASSERT_EQ(repaired.exit_code, 0) << repaired.out << repaired.err;
  Json report = Parse(repaired.out);
  EXPECT_EQ(report["damaged"], true);
  EXPECT_EQ(report["repaired"], true);
  const uint64_t before = report["before"]["events"], after = report["after"]["events"];
  EXPECT_EQ(before, 40u * 12u) << report.dump();  // hello: 12 events per process
  EXPECT_LT(after, before) << report.dump();
  EXPECT_EQ(report["lost_events"], before - after);
  EXPECT_TRUE(report["problems"].empty()) << report.dump();

  // Consistent afterwards: verify passes, ls counts what was kept, a node opens.
  auto verify = Keel({"verify", "--json"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_EQ(Parse(verify.out)["events"], after);
  auto ls = Keel({"ls", "--json"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_EQ(Parse(ls.out)["total"], report["after"]["processes"]);
  RunJson({hello, "--input", "who=again"});
  auto clean = Keel({"repair"});
  EXPECT_EQ(clean.exit_code, 0) << clean.out << clean.err;
  EXPECT_NE(clean.out.find("nothing to repair"), std::string::npos) << clean.out;
}

TEST_F(StoreDamageTest, WalCutShortAtItsEndStillOpens) {
  // A write torn by a crash is the last record of the newest log, never
  // acknowledged: recovery drops it and opens.
  std::string wal = FillWal(5);
  std::string bytes = testing::ReadFile(wal);
  ASSERT_GT(bytes.size(), 100u);
  testing::WriteFile(wal, bytes.substr(0, bytes.size() - 40));
  auto ls = Keel({"ls", "--json"});
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  RunJson({Workflow("hello.yaml", testing::kHelloYaml), "--input", "who=after"});
  auto verify = Keel({"verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

// ---- FORMAT ---------------------------------------------------------------------------

class ForeignFormatTest : public StoreDamageTest,
                          public ::testing::WithParamInterface<const char*> {};

TEST_P(ForeignFormatTest, EveryCommandRefusesItAndTouchesNothing) {
  Json p = RunJson({Workflow("gate.yaml", kApprovalYaml), "--id", "p1"}, 4);
  ASSERT_EQ(p["status"], "waiting");
  testing::WriteFile(data() + "/FORMAT", GetParam());
  const auto files = FilesOf(data());
  const std::vector<std::vector<std::string>> commands = {
      {"serve", "--listen", "127.0.0.1:0"},
      {"run", Workflow("hello.yaml", testing::kHelloYaml), "--input", "who=x"},
      {"ls"},
      {"show", "p1"},
      {"events", "p1"},
      {"tail"},
      {"replay", "p1"},
      {"verify"},
      {"export", "p1"},
      {"wait", "p1"},
      {"approve", "p1", "ok"},
      {"signal", "p1", "tick"},
      {"repair", "--accept-loss"}};
  for (const auto& command : commands) {
    auto r = Keel(command);
    EXPECT_EQ(r.exit_code, 5) << command[0] << ": " << r.out << r.err;
    EXPECT_NE(r.err.find("FORMAT"), std::string::npos) << command[0] << ": " << r.err;
  }
  EXPECT_EQ(FilesOf(data()), files) << "a refused store must be left as it was";
}

INSTANTIATE_TEST_SUITE_P(NewerAndGarbage, ForeignFormatTest,
                         ::testing::Values("99\n", "garbage\n", ""));

TEST_F(StoreDamageTest, StoreWithoutFormatFileStillOpensByItsMeta) {
  // A crash before FORMAT was first written, or a store older than the file.
  Json p = RunJson({Workflow("gate.yaml", kApprovalYaml), "--id", "p1"}, 4);
  fs::remove(data() + "/FORMAT");
  auto show = Keel({"show", "p1", "--json"});
  EXPECT_EQ(show.exit_code, 0) << show.err;
  auto approve = Keel({"approve", "p1", "ok"});
  EXPECT_EQ(approve.exit_code, 0) << approve.err;
  EXPECT_EQ(testing::ReadFile(data() + "/FORMAT"), "2\n");
}

// ---- missing table files ------------------------------------------------------------

TEST_F(StoreDamageTest, ReadsThatMeetAMissingTableFileReportIt) {
  std::string hello = Workflow("hello.yaml", testing::kHelloYaml);
  for (int i = 0; i < 12; ++i) RunJson({hello, "--input", "who=w" + std::to_string(i)});
  std::vector<fs::path> tables;
  for (const auto& entry : fs::directory_iterator(data() + "/db")) {
    if (entry.path().extension() == ".sst") tables.push_back(entry.path());
  }
  ASSERT_GE(tables.size(), 2u);
  std::sort(tables.begin(), tables.end());
  fs::remove(tables[tables.size() / 2]);
  for (std::vector<std::string> read : {std::vector<std::string>{"ls"}, {"verify"}, {"tail"}}) {
    auto r = Keel(read);
    EXPECT_EQ(r.exit_code, 5) << read[0] << ": " << r.out << r.err;
  }
  auto run = Keel({"run", hello, "--input", "who=x"});
  EXPECT_EQ(run.exit_code, 5) << run.out << run.err;
}

// ---- readers beside CLI nodes that open and close --------------------------------

TEST_F(StoreDamageTest, ReadersBesideOpeningAndClosingNodesNeverReportFalseDamage) {
  std::string hello = Workflow("hello.yaml", testing::kHelloYaml);
  for (int i = 0; i < 20; ++i) RunJson({hello, "--input", "who=w" + std::to_string(i)});
  Json p = RunJson({Workflow("gate.yaml", kApprovalYaml), "--id", "p1"}, 4);
  ASSERT_EQ(p["status"], "waiting");

  // Every pause and resume opens a node (which flushes the log it recovers,
  // writes a new manifest and deletes the old log), appends, and closes.
  std::atomic<bool> done{false};
  std::thread controls([&] {
    for (int i = 0; i < 10; ++i) {
      auto pause = Keel({"pause", "p1"});
      EXPECT_EQ(pause.exit_code, 0) << pause.err;
      auto resume = Keel({"resume", "p1"});
      EXPECT_EQ(resume.exit_code, 0) << resume.err;
    }
    done = true;
  });
  int reads = 0;
  while (!done || reads < 3) {
    for (std::vector<std::string> read :
         {std::vector<std::string>{"verify"}, {"ls"}, {"show", "p1"}, {"tail"}}) {
      auto r = Keel(read);
      EXPECT_EQ(r.exit_code, 0) << read[0] << " reported: " << r.out << r.err;
    }
    ++reads;
  }
  controls.join();
  auto verify = Keel({"verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

// ---- parallel controls with no live node ---------------------------------------------

TEST_F(StoreDamageTest, ParallelSignalsWithNoLiveNodeAllLand) {
  constexpr int kSignals = 50;
  Json p = RunJson({Workflow("ticks.yaml", SignalsYaml(kSignals)), "--id", "p1"}, 4);
  ASSERT_EQ(p["status"], "waiting");
  std::vector<testing::CommandResult> results(kSignals);
  std::vector<std::thread> threads;
  for (int i = 0; i < kSignals; ++i) {
    threads.emplace_back([&, i] {
      results[i] = Keel({"signal", "p1", "tick", "--payload", std::to_string(i)});
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kSignals; ++i) {
    EXPECT_EQ(results[i].exit_code, 0) << "signal " << i << ": " << results[i].err;
  }
  auto wait = Keel({"wait", "p1", "--json"});
  EXPECT_EQ(wait.exit_code, 0) << wait.out << wait.err;
  Json done = Parse(wait.out);
  EXPECT_EQ(done["status"], "completed");
  // Each landed once: no signal is left over, none was taken twice.
  EXPECT_TRUE(done.value("signals", Json::array()).empty()) << done["signals"].dump();
}

}  // namespace
}  // namespace keel
