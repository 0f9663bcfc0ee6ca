#pragma once

// Helpers shared by keel's benchmark programs: the result line of
// shared/bench/WORKLOADS.md, nearest-rank percentiles, process CPU time, data
// dir size, and the system-wide fsync counter (perf tracepoints).

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace keel::bench {

using Clock = std::chrono::steady_clock;

// Writes the results of one program run: one line per measure on stdout,
//   peer=<peer> workload=<workload>[-smoke] metric=<metric> value=<v> unit=<unit>
// Diagnostics go to stderr, never here.
class Reporter {
 public:
  explicit Reporter(bool smoke) : smoke_(smoke) {}
  void Line(const std::string& peer, const std::string& workload, const std::string& metric,
            double value, const std::string& unit) const;
  bool smoke() const { return smoke_; }

 private:
  bool smoke_;
};

// Nearest-rank percentile (p in (0, 100]) of `values`; 0 when empty.
double Percentile(std::vector<double> values, double p);
// Arithmetic mean; 0 when empty.
double Mean(const std::vector<double>& values);

// User + system CPU time of this process so far (all threads), in ms.
double ProcessCpuMs();
// Resident set size of this process now, in bytes (from /proc/self/statm).
uint64_t RssBytes();
// Total size of the regular files under `dir`, in bytes.
uint64_t DirSize(const std::string& dir);

// Seconds since `start`.
double SecondsSince(Clock::time_point start);

// A fresh, empty directory under $TMPDIR (or /tmp) named after `tag`.
std::string FreshDir(const std::string& tag);

// Counts fsync() + fdatasync() syscalls system-wide (all processes, like the
// peers' `perf stat -a` counter) between Start and Stop. Unavailable when perf
// or the syscall tracepoints cannot be used, or SYNC_COUNT=0.
class FsyncCounter {
 public:
  FsyncCounter() = default;
  ~FsyncCounter();
  FsyncCounter(const FsyncCounter&) = delete;
  FsyncCounter& operator=(const FsyncCounter&) = delete;

  // True when perf can count the tracepoints here (probed once per process).
  static bool Available();
  // Starts `perf stat` and waits until its counters are open. No-op when
  // unavailable.
  void Start();
  // Stops perf and returns the count; nullopt when unavailable or failed.
  std::optional<uint64_t> Stop();

 private:
  pid_t pid_ = -1;
  std::string out_file_;
};

// Common flags: --smoke (tiny counts) and --only=<substring> (run only the
// workloads whose names contain it). Unknown flags are an error.
struct Flags {
  bool smoke = false;
  std::vector<std::string> only;
  std::vector<std::string> rest;  // program-specific flags, passed through
  // True when `workload` passes the --only filters.
  bool Wants(const std::string& workload) const;
};
Flags ParseFlags(int argc, char** argv);

}  // namespace keel::bench
