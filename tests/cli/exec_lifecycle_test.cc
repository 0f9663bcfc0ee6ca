// The life of activity attempts and `exec` children, through the real `keel`
// binary: an attempt cancelled or timed out before it starts never runs; exec
// children run concurrently without a thread each; children never outlive
// their node (SIGINT/SIGTERM stop them, SIGKILL takes them along, and the next
// node kills what an earlier one left behind before it runs the task again).
#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "tests/cli/cli_fixture.h"

namespace keel {
namespace {

using testing::WaitUntil;
using Json = nlohmann::json;

// The pids of a file with one per line.
std::vector<pid_t> Pids(const std::string& path) {
  std::vector<pid_t> pids;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) pids.push_back(std::stoi(line));
  }
  return pids;
}

// The node's activity pool: max(8, 4 x cores) threads (runtime/node.cc).
int PoolSize() {
  return std::max(8, 4 * static_cast<int>(std::max(2u, std::thread::hardware_concurrency())));
}

class ExecLifecycleTest : public testing::KeelCliTest {
 protected:
  std::string Status(const std::string& id) {
    Json s = Json::parse(Keel({"show", id, "--json"}).out, nullptr, false);
    return s.is_discarded() ? "" : s.value("status", "");
  }
  std::vector<Json> Tasks(const std::string& id) {
    Json s = Json::parse(Keel({"show", id, "--json"}).out, nullptr, false);
    if (s.is_discarded() || !s.contains("tasks")) return {};
    return s["tasks"].get<std::vector<Json>>();
  }
};

// An HTTP server for `http` steps: GET /slow holds its request until
// Release(); GET /append counts the requests that reached it.
class SlowServer {
 public:
  SlowServer() {
    server_.new_task_queue = [] { return new httplib::ThreadPool(64); };
    server_.Get("/slow", [this](const httplib::Request&, httplib::Response& res) {
      std::unique_lock lock(mu_);
      holding_++;
      cv_.wait(lock, [this] { return released_; });
      holding_--;
      res.set_content("{}", "application/json");
    });
    server_.Get("/append", [this](const httplib::Request&, httplib::Response& res) {
      appended_++;
      res.set_content("{}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~SlowServer() {
    Release();
    server_.stop();
    thread_.join();
  }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int holding() {
    std::lock_guard lock(mu_);
    return holding_;
  }
  int appended() const { return appended_.load(); }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  int holding_ = 0;
  bool released_ = false;
  std::atomic<int> appended_{0};
};

// A for_each of `slow` requests to /slow, which fill the activity pool, then
// five to /append, which wait for a thread.
std::string PoolWorkflow(int slow) {
  std::string items;
  for (int i = 0; i < slow; ++i) items += "'slow', ";
  items += "'append', 'append', 'append', 'append', 'append'";
  return "name: pool\ninputs: {base: {required: true}}\nsteps:\n"
         "  - id: each\n    for_each: \"{" +
         items +
         "}\"\n    steps:\n"
         "      - {id: get, activity: http, with: {url: \"${inputs.base}/${item}\"}}\n";
}

// Cancelled while they wait for the activity pool: they never run.
TEST_F(ExecLifecycleTest, AttemptsCancelledWhileQueuedNeverRun) {
  SlowServer server;
  const int slow = PoolSize();
  auto run = Spawn("run", {"run", Workflow("pool.yaml", PoolWorkflow(slow)), "--input",
                           "base=" + server.base(), "--id", "p_pool", "--json"});
  ASSERT_TRUE(WaitUntil([&] { return server.holding() == slow; })) << Err("run");
  // The cancel waits for the process to rest and, when `run` closes its
  // node meanwhile, for the dir: it ends once the pool lets the node close.
  auto cancel = Spawn("cancel", {"cancel", "p_pool"});
  ASSERT_TRUE(WaitUntil([&] { return Status("p_pool") == "cancelled"; })) << Err("cancel");
  server.Release();
  EXPECT_EQ(cancel->Wait(), 0) << Err("cancel");
  EXPECT_EQ(run->Wait(), 3) << Err("run");
  EXPECT_EQ(Status("p_pool"), "cancelled");
  EXPECT_EQ(server.appended(), 0) << "a cancelled attempt ran after it got a thread";
}

// Timed out while they wait for the activity pool: they never run either.
TEST_F(ExecLifecycleTest, AttemptsTimedOutWhileQueuedNeverRun) {
  SlowServer server;
  const int slow = PoolSize();
  // The slow ones hold the pool; the five appends behind them time out.
  std::string items;
  for (int i = 0; i < slow; ++i) items += "'slow', ";
  items.resize(items.size() - 2);
  std::string yaml =
      "name: pool\ninputs: {base: {required: true}}\nsteps:\n"
      "  - id: both\n    parallel:\n"
      "      hold:\n"
      "        - id: each\n          for_each: \"{" +
      items +
      "}\"\n          steps:\n"
      "            - {id: get, activity: http, with: {url: \"${inputs.base}/${item}\"}}\n"
      "      late:\n"
      "        - id: gate\n          for_each: \"{1, 2, 3, 4, 5}\"\n          steps:\n"
      "            - {id: add, activity: http, timeout: 300ms,\n"
      "               with: {url: \"${inputs.base}/append\"}}\n";
  auto run = Spawn("run", {"run", Workflow("pool.yaml", yaml), "--input", "base=" + server.base(),
                           "--id", "p_late", "--json"});
  ASSERT_TRUE(WaitUntil([&] { return server.holding() == slow; })) << Err("run");
  // The five time out (and the process fails) while the pool is full.
  ASSERT_TRUE(WaitUntil([&] {
    int failed = 0;
    for (const auto& t : Tasks("p_late")) {
      if (t.value("step", "") == "add" && t.value("status", "") == "failed") ++failed;
    }
    return failed > 0 && Status("p_late") != "running";
  })) << Err("run");
  server.Release();
  EXPECT_EQ(run->Wait(), 1) << Err("run");
  EXPECT_EQ(server.appended(), 0) << "a timed-out attempt ran after it got a thread";
}

// More exec steps than the activity pool has threads all run at once: the
// children are watched by one loop, not a thread each.
TEST_F(ExecLifecycleTest, ExecChildrenRunAtOnceWithoutAThreadEach) {
  const int n = std::max(50, PoolSize() + 8);
  std::string items;
  for (int i = 1; i <= n; ++i) items += (i > 1 ? ", " : "") + std::to_string(i);
  std::string pids = dir_ / "pids";
  std::filesystem::create_directories(pids);
  // Each child blocks reading a line from a FIFO the test holds open (no
  // polling: n pollers would starve a small machine).
  std::string gate = dir_ / "gate";
  ASSERT_EQ(mkfifo(gate.c_str(), 0600), 0);
  int gate_fd = open(gate.c_str(), O_RDWR);
  ASSERT_GE(gate_fd, 0);
  std::string yaml = "name: many\nsteps:\n  - id: each\n    for_each: \"{" + items +
                     "}\"\n    steps:\n      - id: hold\n        activity: exec\n"
                     "        with: {argv: [sh, -c, \"echo $$ > '" +
                     pids + "/${item}'; read line < '" + gate +
                     "'; echo ${item}\"]}\n"
                     "    save_as: outs\noutputs: {count: \"#vars.outs\"}\n";
  auto run = Spawn("run", {"run", Workflow("many.yaml", yaml), "--id", "p_many", "--json"});
  // A child's file exists before its pid is written in it: count the written.
  auto started = [&] {
    int written = 0;
    for (const auto& entry : std::filesystem::directory_iterator(pids)) {
      if (!Pids(entry.path()).empty()) ++written;
    }
    return written;
  };
  // None can finish before the gate opens: all n, more than the activity
  // pool's threads, are alive together.
  ASSERT_TRUE(WaitUntil([&] { return started() == n; }, std::chrono::seconds(30)))
      << started() << " of " << n << " exec children started; " << Err("run");
  int alive = 0;
  for (const auto& entry : std::filesystem::directory_iterator(pids)) {
    if (testing::ProcessRunning(Pids(entry.path())[0])) ++alive;
  }
  EXPECT_EQ(alive, n);
  std::string lines(n, '\n');
  ASSERT_EQ(write(gate_fd, lines.data(), lines.size()), static_cast<ssize_t>(lines.size()));
  EXPECT_EQ(run->Wait(), 0) << Err("run");
  close(gate_fd);
  EXPECT_EQ(Parse(Out("run"))["outputs"]["count"], n);
}

// A workflow whose one exec step records its shell's pid and a background
// child's pid (appending, one line per attempt), then waits for ever.
std::string HoldYaml(const std::string& dir) {
  return "name: hold\nsteps:\n  - id: hold\n    activity: exec\n"
         "    with: {argv: [sh, -c, \"echo $$ >> '" +
         dir + "/sh.pids'; sleep 1000 & echo $! >> '" + dir + "/bg.pids'; wait\"]}\n";
}

// SIGINT or SIGTERM to `keel run`: its children are stopped, node.json is
// removed, and it exits 128 + the signal.
class StopSignalTest : public ExecLifecycleTest, public ::testing::WithParamInterface<int> {};

TEST_P(StopSignalTest, RunStopsItsChildrenAndExits128PlusTheSignal) {
  const int sig = GetParam();
  std::string d = dir_.path();
  auto run = Spawn("run", {"run", Workflow("hold.yaml", HoldYaml(d)), "--id", "p_hold"});
  ASSERT_TRUE(WaitUntil([&] { return Pids(d + "/bg.pids").size() == 1; })) << Err("run");
  ASSERT_TRUE(std::filesystem::exists(data() + "/node.json"));
  pid_t sh = Pids(d + "/sh.pids")[0], bg = Pids(d + "/bg.pids")[0];
  run->Signal(sig);
  EXPECT_EQ(run->Wait(), 128 + sig) << Err("run");
  EXPECT_FALSE(std::filesystem::exists(data() + "/node.json"));
  EXPECT_TRUE(WaitUntil([&] { return !testing::ProcessRunning(sh) && !testing::ProcessRunning(bg); }, std::chrono::seconds(10)))
      << "exec children outlived `keel run`";
  // Not finished: the next node runs the task again.
  EXPECT_EQ(Status("p_hold"), "running");
}

INSTANTIATE_TEST_SUITE_P(Signals, StopSignalTest, ::testing::Values(SIGINT, SIGTERM));

// A second Ctrl-C does not wait for a child that ignores SIGTERM.
TEST_F(ExecLifecycleTest, ASecondInterruptExitsAtOnce) {
  std::string d = dir_.path();
  std::string yaml =
      "name: stubborn\nsteps:\n  - id: hold\n    activity: exec\n"
      "    with: {argv: [sh, -c, \"trap '' TERM; echo $$ > '" +
      d + "/sh.pid'; while :; do sleep 0.05; done\"]}\n";
  auto run = Spawn("run", {"run", Workflow("stubborn.yaml", yaml), "--id", "p_stubborn"});
  ASSERT_TRUE(WaitUntil([&] { return Pids(d + "/sh.pid").size() == 1; })) << Err("run");
  pid_t sh = Pids(d + "/sh.pid")[0];
  run->Signal(SIGINT);
  ASSERT_TRUE(WaitUntil([&] { return Err("run").find("stopping") != std::string::npos; }))
      << Err("run");
  run->Signal(SIGINT);
  EXPECT_EQ(run->Wait(), 130) << Err("run");
  EXPECT_TRUE(WaitUntil([&] { return !testing::ProcessRunning(sh); }, std::chrono::seconds(10)))
      << "the child outlived `keel run`";
}

// SIGKILL of `keel serve`: its children die with it, and the next node kills
// what they left in their process group before it runs the task again.
TEST_F(ExecLifecycleTest, ChildrenDieWithAKilledNodeAndTheNextNodeKillsTheirGroup) {
  std::string d = dir_.path();
  auto serve = Spawn("serve", {"serve", "--listen", "127.0.0.1:0", "--exec-policy", "full"});
  ASSERT_TRUE(WaitUntil([&] { return std::filesystem::exists(data() + "/node.json"); }))
      << Err("serve");
  auto started = Keel({"run", Workflow("hold.yaml", HoldYaml(d)), "--id", "p_orphan", "--detach"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  ASSERT_TRUE(WaitUntil([&] { return Pids(d + "/bg.pids").size() == 1; })) << Err("serve");
  pid_t sh = Pids(d + "/sh.pids")[0], bg = Pids(d + "/bg.pids")[0];
  serve->Signal(SIGKILL);
  serve->Wait();
  EXPECT_TRUE(WaitUntil([&] { return !testing::ProcessRunning(sh); }, std::chrono::seconds(10)))
      << "the exec child outlived its SIGKILLed node";
  ASSERT_TRUE(testing::ProcessRunning(bg)) << "its own background child survives the node (not the leader)";
  // The next node resumes the task; before the new attempt runs, the group
  // of the old one is gone.
  auto waiter = Spawn("wait", {"wait", "p_orphan"});
  ASSERT_TRUE(WaitUntil([&] { return Pids(d + "/bg.pids").size() == 2; })) << Err("wait");
  EXPECT_FALSE(testing::ProcessRunning(bg)) << "the old attempt's group ran beside the new attempt";
  auto cancelled = Keel({"cancel", "p_orphan"});
  EXPECT_EQ(cancelled.exit_code, 0) << cancelled.err;
  EXPECT_EQ(waiter->Wait(), 3) << Err("wait");
  pid_t sh2 = Pids(d + "/sh.pids")[1], bg2 = Pids(d + "/bg.pids")[1];
  EXPECT_TRUE(WaitUntil([&] { return !testing::ProcessRunning(sh2) && !testing::ProcessRunning(bg2); }, std::chrono::seconds(10)))
      << "a cancelled attempt's children kept running";
  EXPECT_TRUE(std::filesystem::is_empty(data() + "/children"));
}

}  // namespace
}  // namespace keel
