#include "bench/bench_util.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>
#include <thread>

extern char** environ;

namespace keel::bench {
namespace {

constexpr const char* kSyncEvents = "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync";

// Runs argv with stdout/stderr to `log`; returns the pid or -1.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Sum of the counts of the sync tracepoints in perf's CSV output; nullopt
// when a counter is missing or "<not counted>".
std::optional<uint64_t> ParsePerfCsv(const std::string& text) {
  uint64_t total = 0;
  int seen = 0;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("syscalls:sys_enter_f") == std::string::npos) continue;
    char* end = nullptr;
    unsigned long long n = std::strtoull(line.c_str(), &end, 10);
    if (end == line.c_str()) return std::nullopt;
    total += n;
    ++seen;
  }
  if (seen != 2) return std::nullopt;
  return total;
}

}  // namespace

void Reporter::Line(const std::string& peer, const std::string& workload, const std::string& metric,
                    double value, const std::string& unit) const {
  // Integers as integers (counts, bytes); otherwise 4 significant digits.
  char number[64];
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    std::snprintf(number, sizeof number, "%.0f", value);
  } else if (std::fabs(value) >= 1000) {
    std::snprintf(number, sizeof number, "%.1f", value);
  } else {
    std::snprintf(number, sizeof number, "%.4g", value);
  }
  std::printf("peer=%s workload=%s%s metric=%s value=%s unit=%s\n", peer.c_str(), workload.c_str(),
              smoke_ ? "-smoke" : "", metric.c_str(), number, unit.c_str());
  std::fflush(stdout);
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size())));
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

double Mean(const std::vector<double>& values) {
  if (values.empty()) return 0;
  return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

double ProcessCpuMs() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e3;
}

uint64_t RssBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

uint64_t DirSize(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) total += it->file_size(size_ec);
  }
  return total;
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string FreshDir(const std::string& tag) {
  const char* tmp = std::getenv("TMPDIR");
  std::filesystem::path base = tmp && *tmp ? tmp : "/tmp";
  std::filesystem::path dir = base / ("keel-bench-" + tag + "-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

FsyncCounter::~FsyncCounter() {
  if (pid_ > 0) Stop();
}

bool FsyncCounter::Available() {
  static const bool available = [] {
    const char* off = std::getenv("SYNC_COUNT");
    if (off && std::string(off) == "0") return false;
    std::string log = FreshDir("perf-probe") + "/out";
    pid_t pid = Spawn({"perf", "stat", "-a", "-x", ",", "-e", kSyncEvents, "--", "true"}, log);
    int status = 0;
    bool ok = pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
              WEXITSTATUS(status) == 0 && ParsePerfCsv(ReadAll(log)).has_value();
    std::filesystem::remove_all(std::filesystem::path(log).parent_path());
    if (!ok) std::fprintf(stderr, "fsync counting disabled: perf stat -a is not usable here\n");
    return ok;
  }();
  return available;
}

void FsyncCounter::Start() {
  if (!Available() || pid_ > 0) return;
  out_file_ = FreshDir("perf") + "/perf.csv";
  pid_ = Spawn({"perf", "stat", "-a", "-x", ",", "-e", kSyncEvents, "-o", out_file_},
               out_file_ + ".log");
  // Let perf open its counters before the timed window (as the peers do).
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
}

std::optional<uint64_t> FsyncCounter::Stop() {
  if (pid_ <= 0) return std::nullopt;
  kill(pid_, SIGINT);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  std::optional<uint64_t> n = ParsePerfCsv(ReadAll(out_file_));
  std::filesystem::remove_all(std::filesystem::path(out_file_).parent_path());
  return n;
}

bool Flags::Wants(const std::string& workload) const {
  if (only.empty()) return true;
  return std::any_of(only.begin(), only.end(),
                     [&](const std::string& o) { return workload.find(o) != std::string::npos; });
}

Flags ParseFlags(int argc, char** argv) {
  Flags flags;
  const char* smoke_env = std::getenv("SMOKE");
  flags.smoke = smoke_env && *smoke_env && std::string(smoke_env) != "0";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--smoke") {
      flags.smoke = true;
    } else if (arg.rfind("--only=", 0) == 0) {
      std::stringstream list(arg.substr(7));
      for (std::string item; std::getline(list, item, ',');) {
        if (!item.empty()) flags.only.push_back(item);
      }
    } else {
      flags.rest.push_back(arg);
    }
  }
  return flags;
}

}  // namespace keel::bench
