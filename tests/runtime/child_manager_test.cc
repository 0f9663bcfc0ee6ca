// The node's exec child manager with real children: one loop runs many at
// once, feeds stdin and collects output; a cancelled attempt is never
// forked; timeouts and Close stop a child's whole process group; records
// left by a killed node get their groups killed by the next.
#include "runtime/internal/child_manager.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>

#include "tests/support/test_util.h"

namespace keel::runtime {
namespace {

using testing::TempDir;
using testing::WaitUntil;

std::string StatField22(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  std::getline(f, text);
  std::istringstream rest(text.substr(text.rfind(')') + 1));
  std::string field;
  for (int i = 3; i <= 22; ++i) rest >> field;
  return field;
}

std::string BootId() {
  std::ifstream f("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(f, id);
  return id;
}

ExecCommand Sh(const std::string& script) { return {{"sh", "-c", script}, {}, "", "", 0}; }

// Runs one command to its outcome.
ActivityResult RunOne(ChildManager& children, ExecCommand command, CancellationToken cancel = {}) {
  std::promise<ActivityResult> outcome;
  children.Run(std::move(command), cancel, "p/t/1",
               [&](ActivityResult r) { outcome.set_value(std::move(r)); });
  return outcome.get_future().get();
}

class ChildManagerTest : public ::testing::Test {
 protected:
  std::unique_ptr<ChildManager> Open() {
    auto opened = ChildManager::Open(dir_ / "children");
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    return opened.ok() ? std::move(*opened) : nullptr;
  }
  bool NoRecords() { return std::filesystem::is_empty(dir_ / "children"); }
  TempDir dir_;
};

TEST_F(ChildManagerTest, NeverForksACancelledAttempt) {
  auto children = Open();
  CancellationToken cancel;
  cancel.Cancel();
  std::string touched = dir_ / "touched";
  ActivityResult r = RunOne(*children, Sh("touch '" + touched + "'"), cancel);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "exec: sh: cancelled");
  children.reset();
  EXPECT_FALSE(std::filesystem::exists(touched));
  EXPECT_TRUE(NoRecords());
}

TEST_F(ChildManagerTest, RunsManyAtOnceFeedingStdinAndCollectingOutput) {
  auto children = Open();
  constexpr int kChildren = 200;
  std::mutex mu;
  std::vector<ActivityResult> results(kChildren);
  std::promise<void> all;
  int left = kChildren;
  std::string big(1 << 20, 'x');  // more than a pipe holds: written as the child reads
  for (int i = 0; i < kChildren; ++i) {
    ExecCommand c = Sh("cat; echo \" $N\"; echo warn >&2");
    c.env = {"N=" + std::to_string(i)};
    c.stdin_text = i == 0 ? big : "in" + std::to_string(i);
    children->Run(std::move(c), {}, "p/t/1", [&, i](ActivityResult r) {
      std::lock_guard lock(mu);
      results[i] = std::move(r);
      if (--left == 0) all.set_value();
    });
  }
  all.get_future().get();
  for (int i = 0; i < kChildren; ++i) {
    ASSERT_TRUE(results[i].ok) << i << ": " << results[i].error;
    std::string in = i == 0 ? big : "in" + std::to_string(i);
    EXPECT_EQ(results[i].output["stdout"], in + " " + std::to_string(i) + "\n");
    EXPECT_EQ(results[i].output["stderr"], "warn\n");
    EXPECT_EQ(results[i].output["exit_code"], 0);
  }
  EXPECT_TRUE(NoRecords());
}

TEST_F(ChildManagerTest, ExitCodesJsonCwdAndAProgramThatIsNotThere) {
  auto children = Open();
  ActivityResult failed = RunOne(*children, Sh("echo oops >&2; exit 3"));
  EXPECT_FALSE(failed.ok);
  EXPECT_TRUE(failed.retryable);
  EXPECT_EQ(failed.output["exit_code"], 3);
  EXPECT_EQ(failed.error, "exec: sh exited with 3: oops");
  ExecCommand pwd = {{"pwd"}, {}, dir_.path(), "", 0};
  ActivityResult where = RunOne(*children, pwd);
  EXPECT_EQ(where.output["stdout"], dir_.path() + "\n");
  ActivityResult json = RunOne(*children, Sh("echo '{\"a\": 1}'"));
  EXPECT_EQ(json.output["json"]["a"], 1);
  ActivityResult missing = RunOne(*children, {{"no-such-program-keel"}, {}, "", "", 0});
  EXPECT_FALSE(missing.ok);
  EXPECT_EQ(missing.output["exit_code"], 127);
}

TEST_F(ChildManagerTest, ATimeoutStopsTheWholeGroup) {
  auto children = Open();
  std::string bg = dir_ / "bg";
  ExecCommand c = Sh("sleep 1000 & echo $! > '" + bg + "'; wait");
  c.timeout_ms = 300;
  ActivityResult r = RunOne(*children, c);
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.retryable);
  EXPECT_EQ(r.error, "exec: sh: timed out after 300ms");
  pid_t pid = std::stoi(testing::ReadFile(bg));
  EXPECT_TRUE(WaitUntil([&] { return !testing::ProcessRunning(pid); }, std::chrono::seconds(10)));
  EXPECT_TRUE(NoRecords());
}

TEST_F(ChildManagerTest, ClosingStopsWhatRunsAndAnswersIt) {
  auto children = Open();
  std::string pid_file = dir_ / "pid";
  std::promise<ActivityResult> outcome;
  children->Run(Sh("echo $$ > '" + pid_file + "'; exec sleep 1000"), {}, "p/t/1",
                [&](ActivityResult r) { outcome.set_value(std::move(r)); });
  ASSERT_TRUE(WaitUntil([&] { return !testing::ReadFile(pid_file).empty(); }));
  pid_t pid = std::stoi(testing::ReadFile(pid_file));
  EXPECT_EQ(std::filesystem::exists(dir_ / ("children/" + std::to_string(pid))), true);
  children.reset();
  EXPECT_EQ(outcome.get_future().get().error, "exec: sh: cancelled");
  EXPECT_FALSE(testing::ProcessRunning(pid));
  EXPECT_TRUE(NoRecords());
}

// A process group as a killed node's child leaves it: its leader runs sleep.
pid_t Group() {
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    execlp("sleep", "sleep", "1000", nullptr);
    _exit(127);
  }
  setpgid(pid, pid);
  return pid;
}

TEST_F(ChildManagerTest, OpeningKillsTheGroupsAKilledNodeLeft) {
  std::filesystem::create_directories(dir_ / "children");
  pid_t left = Group(), reused = Group();
  ASSERT_TRUE(WaitUntil([&] { return StatField22(left) != "" && StatField22(reused) != ""; }));
  auto record = [&](pid_t pid, const std::string& start) {
    nlohmann::json r = {{"pgid", pid}, {"start", start}, {"boot", BootId()}, {"owner", "p/t/1"}};
    testing::WriteFile(dir_ / ("children/" + std::to_string(pid)), r.dump());
  };
  record(left, StatField22(left));
  record(reused, "1");  // its pid now names another process: left alone
  auto children = Open();
  int status = 0;
  ASSERT_EQ(waitpid(left, &status, 0), left);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_TRUE(testing::ProcessRunning(reused));
  kill(reused, SIGKILL);
  waitpid(reused, &status, 0);
  EXPECT_TRUE(NoRecords());
}

}  // namespace
}  // namespace keel::runtime
