// Kills a process that appends (tests/store/append_child.cc) at random points
// and checks what a restart finds: contiguous streams, intact chains, an index
// in step with the log, and every acknowledged append.

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <random>
#include <sstream>
#include <tuple>

#include "tests/store/store_fixture.h"

namespace keel::store::testing {
namespace {

struct ChildRun {
  std::map<std::string, uint64_t> acked;  // stream -> highest acknowledged seq
  size_t lines = 0;
  std::string err;
};

// Runs append_child, SIGKILLs it `kill_after` after its first acknowledgement,
// and collects every complete line it printed.
ChildRun RunAndKill(const std::string& backend, const std::string& dir, const char* mode,
                    const std::string& prefix, std::chrono::milliseconds kill_after) {
  ChildRun run;
  int out[2], err[2];
  if (pipe(out) != 0 || pipe(err) != 0) return run;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    for (int fd : {out[0], out[1], err[0], err[1]}) close(fd);
    execl(KEEL_APPEND_CHILD, KEEL_APPEND_CHILD, dir.c_str(), mode, prefix.c_str(), backend.c_str(),
          nullptr);
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  std::string buffer;
  bool killed = false;
  auto deadline = std::chrono::steady_clock::time_point::max();
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    auto now = std::chrono::steady_clock::now();
    if (!killed && (now >= deadline || now >= give_up)) {
      kill(pid, SIGKILL);
      killed = true;
    }
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    if (poll(fds, 2, 2) < 0) break;
    char chunk[65536];
    if (fds[1].revents & POLLIN) {
      ssize_t n = read(err[0], chunk, sizeof chunk);
      if (n > 0) run.err.append(chunk, n);
    }
    if (fds[0].revents & (POLLIN | POLLHUP)) {
      ssize_t n = read(out[0], chunk, sizeof chunk);
      if (n <= 0) break;  // EOF: the child is gone
      buffer.append(chunk, n);
      if (deadline == std::chrono::steady_clock::time_point::max()) deadline = now + kill_after;
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  close(out[0]);
  close(err[0]);
  std::istringstream lines(buffer);
  std::string line;
  while (std::getline(lines, line)) {
    if (lines.eof()) break;  // a partial last line, cut by the kill
    std::istringstream fields(line);
    std::string stream;
    uint64_t seq = 0;
    if (fields >> stream >> seq) {
      run.acked[stream] = std::max(run.acked[stream], seq);
      ++run.lines;
    }
  }
  return run;
}

// Per backend, per durability.
class CrashTest : public ::testing::TestWithParam<std::tuple<Backend, Durability>> {};

TEST_P(CrashTest, KilledAppenderLeavesAConsistentStoreWithEveryAcknowledgedAppend) {
  constexpr int kRuns = 20;
  const Backend& backend = std::get<0>(GetParam());
  const Durability durability = std::get<1>(GetParam());
  const char* mode = durability == Durability::kSync ? "sync" : "async";
  TempDir dir;
  unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::map<std::string, uint64_t> acked;  // over all runs
  size_t total_lines = 0;
  for (int run = 0; run < kRuns; ++run) {
    SCOPED_TRACE("run " + std::to_string(run));
    auto kill_after = std::chrono::milliseconds(rng() % 120);
    ChildRun child =
        RunAndKill(backend.name, dir.path(), mode, "r" + std::to_string(run), kill_after);
    ASSERT_GT(child.lines, 0u) << "the child acknowledged nothing: " << child.err;
    total_lines += child.lines;
    for (const auto& [stream, seq] : child.acked) acked[stream] = seq;

    StoreOptions options;
    options.path = dir.path();
    options.durability = durability;
    auto store = backend.open(options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    for (const auto& [stream, seq] : acked) {
      auto last = (*store)->LastSeq(stream);
      ASSERT_OK(last);
      // A process crash loses nothing the WAL got, synced or not.
      EXPECT_GE(*last, seq) << stream << " lost acknowledged events";
    }
    auto problems = (*store)->Verify();
    ASSERT_OK(problems);
    for (const auto& p : *problems) ADD_FAILURE() << p.stream << "/" << p.seq << ": " << p.what;
    ASSERT_TRUE(problems->empty());
    auto unfinished = (*store)->UnfinishedProcesses();
    ASSERT_OK(unfinished);
    for (const auto& id : *unfinished) {
      auto status = (*store)->StatusOf(id);
      ASSERT_OK(status);
      EXPECT_FALSE(events::IsTerminal(*status));
    }
  }
  RecordProperty("acknowledged_appends", static_cast<int>(total_lines));
}

INSTANTIATE_TEST_SUITE_P(Backends, CrashTest,
                         ::testing::Combine(::testing::ValuesIn(Backends()),
                                            ::testing::Values(Durability::kSync,
                                                              Durability::kAsync)),
                         [](const auto& info) {
                           return std::get<0>(info.param).name + "_" +
                                  (std::get<1>(info.param) == Durability::kSync ? "sync" : "async");
                         });

}  // namespace
}  // namespace keel::store::testing
