#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace keel {

// Which programs the built-in `exec` activity may run.
enum class ExecPolicy : uint8_t {
  kDeny,       // none (a server's default)
  kAllowlist,  // argv[0] must be in Options::exec_allow
  kFull,       // anything (the CLI's default for local files)
};

// Options of Node::Open.
struct Options {
  std::string data_dir = ".keel";
  // true: every transition is fsynced (group commit) before anyone acts on it.
  // false: written to the WAL without fsync; a machine crash may lose the newest.
  bool sync = true;
  ExecPolicy exec_policy = ExecPolicy::kFull;
  std::vector<std::string> exec_allow;
  // A snapshot is stored every this many events of a process, and at rest.
  uint32_t snapshot_every = 64;
  // Threads of the actor scheduler and of the blocking activity pool (0 = auto).
  unsigned scheduler_threads = 0;
  unsigned activity_threads = 0;
  // Resume unfinished processes on Open (read-only tools turn it off).
  bool resume = true;
};

}  // namespace keel
