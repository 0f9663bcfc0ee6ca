// Crash tests: `keel run` of a 20-task workflow (parallel branches, a
// for_each, subprocesses) is SIGKILLed at random points, then `keel wait`
// resumes it from the log. Every run must end completed with the right
// outputs, exactly one TaskCompleted per task, and a log that verifies.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "store/event_store.h"
#include "tests/support/test_util.h"

namespace keel {
namespace {

using Json = nlohmann::json;

const char kWorkflow[] = R"(name: crashy
steps:
  - {id: s1, activity: exec, with: {argv: [sh, -c, "sleep 0.02; echo 1"]}, save_as: a}
  - {id: s2, activity: echo, with: {text: "${vars.a.stdout}"}}
  - id: par
    parallel:
      left:
        - {id: l1, activity: exec, with: {argv: [sleep, "0.03"]}}
        - {id: l2, activity: echo, with: {text: left}}
      right:
        - {id: r1, activity: exec, with: {argv: [sleep, "0.02"]}}
        - {id: r2, activity: echo, with: {text: right}}
  - id: each
    for_each: "{1, 2, 3, 4}"
    concurrency: 2
    steps: [{id: e, activity: exec, with: {argv: [sh, -c, "sleep 0.02; echo ${item}"]}}]
    save_as: outs
  - {id: s3, activity: echo, with: {text: three}}
  - {id: s4, activity: exec, with: {argv: [sleep, "0.01"]}}
  - {id: s5, activity: echo, with: {text: five}}
  - {id: s6, activity: exec, with: {argv: [sleep, "0.01"]}}
  - {id: s7, activity: echo, with: {text: seven}}
  - {id: s8, activity: exec, with: {argv: [sleep, "0.01"]}}
  - {id: s9, activity: echo, with: {text: nine}}
  - {id: s10, activity: echo, with: {text: "${vars.a.stdout}"}, save_as: last}
outputs: {count: "#vars.outs", first: "vars.outs[1].stdout", left: "steps.l2.output", last: "vars.last"}
)";

// Starts argv with stdout/stderr discarded; returns its pid.
pid_t Spawn(const std::vector<std::string>& argv) {
  pid_t pid = fork();
  if (pid == 0) {
    freopen("/dev/null", "w", stdout);
    freopen("/dev/null", "w", stderr);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

TEST(CrashTest, KilledRunsResumeToCompletionWithOneCompletionPerTask) {
  testing::TempDir dir;
  std::string wf = dir / "crashy.yaml";
  testing::WriteFile(wf, kWorkflow);
  std::mt19937 rng(std::random_device{}());
  // Calibration: an uninterrupted run tells how long a run takes on this
  // machine now, so the kills below land across the whole run.
  auto t0 = std::chrono::steady_clock::now();
  auto reference = testing::Run({testing::KeelBinary(), "run", wf, "--data", dir / "reference"});
  ASSERT_EQ(reference.exit_code, 0) << reference.err;
  int run_ms = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count());
  constexpr int kRuns = 30;
  int killed_mid_run = 0;
  for (int run = 0; run < kRuns; ++run) {
    SCOPED_TRACE("run " + std::to_string(run));
    std::string data = dir / ("data" + std::to_string(run));
    std::string id = "p_crash" + std::to_string(run);
    pid_t pid = Spawn({testing::KeelBinary(), "run", wf, "--data", data, "--id", id});
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<>(1, std::max(2, run_ms))(rng)));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) ++killed_mid_run;

    auto waited = testing::Run({testing::KeelBinary(), "wait", id, "--data", data, "--json"});
    if (waited.exit_code == 2) {
      // Killed before the process was durably created: nothing to resume.
      waited =
          testing::Run({testing::KeelBinary(), "run", wf, "--data", data, "--id", id, "--json"});
    }
    ASSERT_EQ(waited.exit_code, 0) << waited.err << waited.out;
    Json s = Json::parse(waited.out);
    EXPECT_EQ(s["status"], "completed");
    EXPECT_EQ(s["outputs"],
              (Json{{"count", 4}, {"first", "1\n"}, {"left", "left"}, {"last", "1\n"}}));
    EXPECT_EQ(s["tasks"].size(), 20u);

    auto events = testing::Run({testing::KeelBinary(), "events", id, "--data", data, "--json"});
    ASSERT_EQ(events.exit_code, 0) << events.err;
    std::map<std::string, int> completions;
    std::istringstream lines(events.out);
    std::string line;
    while (std::getline(lines, line)) {
      Json e = Json::parse(line);
      if (e["type"] == "TaskCompleted") completions[e["entity"]]++;
    }
    EXPECT_EQ(completions.size(), 20u);
    for (const auto& [task, n] : completions) EXPECT_EQ(n, 1) << task;

    auto ro = store::EventStore::OpenReadOnly(data, dir / ("scratch" + std::to_string(run)));
    ASSERT_OK(ro);
    auto problems = (*ro)->Verify();
    ASSERT_OK(problems);
    for (const auto& p : *problems) ADD_FAILURE() << p.stream << " seq " << p.seq << ": " << p.what;
  }
  // The kills must really have interrupted runs, or this test proves nothing.
  EXPECT_GT(killed_mid_run, 0);
}

}  // namespace
}  // namespace keel
