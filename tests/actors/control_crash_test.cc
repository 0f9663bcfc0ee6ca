// Crash tests for parked processes: a driver process (control_driver) runs a
// workflow until it rests (paused, waiting for an approval, sleeping) and is
// SIGKILLed there. A node reopened on the same dir then resumes, approves or
// lets the timer fire; the process must complete with exactly one
// TaskCompleted per task, each activity run once, and a log that verifies.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "keel/node.h"
#include "store/event_store.h"
#include "tests/support/test_util.h"

namespace keel::testing {
namespace {

struct Case {
  std::string name;
  std::string middle;  // the step the process rests at
  std::function<void(Node&, const std::string& id)> wake;
};

int Lines(const std::string& path) {
  std::ifstream in(path);
  int n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

void WaitFor(const std::function<bool()>& cond) {
  auto guard = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!cond()) {
    ASSERT_LT(std::chrono::steady_clock::now(), guard) << "condition never held";
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

class ControlCrashTest : public ::testing::TestWithParam<Case> {
 protected:
  TempDir dir_;
};

TEST_P(ControlCrashTest, KilledWhileParkedCompletesExactlyOnceAfterReopen) {
  const Case& c = GetParam();
  std::string data = dir_ / "data";
  std::filesystem::create_directories(data);
  std::string file = dir_ / "wf.yaml";
  WriteFile(file, "name: parked\nsteps:\n  - {id: a, activity: count, with: {key: a}}\n  - " +
                      c.middle + "\n  - {id: b, activity: count, with: {key: b}}\n");
  std::string ready = dir_ / "ready";

  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    execl(KEEL_CONTROL_DRIVER, KEEL_CONTROL_DRIVER, data.c_str(), file.c_str(), ready.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  WaitFor([&] {
    int status;
    if (waitpid(child, &status, WNOHANG) == child) {
      ADD_FAILURE() << "driver exited early with " << status;
      return true;
    }
    return std::filesystem::exists(ready);
  });
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  std::string id = ReadFile(ready);

  Options options;
  options.data_dir = data;
  options.resume = false;
  {
    auto node = Node::Open(options);
    ASSERT_OK(node);
    ASSERT_OK((*node)->RegisterActivity("count", [data](const ActivityContext& ctx) {
      std::ofstream(data + "/count-" + ctx.input.value("key", "count"), std::ios::app)
          << ctx.task_id << "\n";
      return ActivityResult::Ok(1);
    }));
    ASSERT_OK((*node)->Resume());
    c.wake(**node, id);
    // Waiting is at rest too: wait until the process has ended.
    Json last;
    WaitFor([&] {
      auto snap = (*node)->Get(id);
      if (snap.ok()) last = *snap;
      return snap.ok() && StatusExitCode(*snap) >= 0 && (*snap)["status"] != "waiting" &&
             (*snap)["status"] != "paused";
    });
    EXPECT_EQ(last["status"], "completed") << last.dump(2);
    ASSERT_OK((*node)->Close());
  }
  EXPECT_EQ(Lines(data + "/count-a"), 1);
  EXPECT_EQ(Lines(data + "/count-b"), 1);

  store::StoreOptions so;
  so.path = data;
  auto store = store::EventStore::Open(so);
  ASSERT_OK(store);
  auto problems = (*store)->Verify();
  ASSERT_OK(problems);
  for (const auto& p : *problems) ADD_FAILURE() << p.stream << " " << p.seq << ": " << p.what;
  auto events = (*store)->ReadStream(id);
  ASSERT_OK(events);
  std::map<std::string, int> completed;
  for (const auto& e : *events) {
    if (e.type() == events::EventType::TaskCompleted) ++completed[std::string(e.entity())];
  }
  EXPECT_EQ(completed.size(), 3u);
  for (const auto& [task, n] : completed) EXPECT_EQ(n, 1) << task;
  ASSERT_OK((*store)->Close());
}

INSTANTIATE_TEST_SUITE_P(
    Parked, ControlCrashTest,
    ::testing::Values(Case{"Paused", "{id: hold, pause: inspect}",
                           [](Node& node, const std::string& id) { ASSERT_OK(node.Resume(id)); }},
                      Case{"WaitingForApproval", "{id: ok, approval: \"ship?\"}",
                           [](Node& node, const std::string& id) {
                             ASSERT_OK(node.Approve(id, "ok", {.by = "alice"}));
                           }},
                      Case{"Sleeping", "{id: cool, sleep: 500ms}",
                           [](Node&, const std::string&) {}}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace keel::testing
