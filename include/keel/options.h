#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keel/status.h"

namespace keel {

// Which programs the built-in `exec` activity may run.
enum class ExecPolicy : uint8_t {
  kDeny,       // none (a server's default)
  kAllowlist,  // argv[0] must be in Options::exec_allow
  kFull,       // anything (the CLI's default for local files)
};

// A policy gate (WORKFLOW.md "Policy gates"): before an activity task runs,
// the node's rules are tried in order and the first whose `match` entries all
// match decides. Keys: "activity", "step", "workflow", or "with.<path>" (a
// field of the rendered input, dotted for nested maps); values are globs where
// `*` matches any run of characters. No matching rule = allow.
struct PolicyRule {
  enum class Decision : uint8_t {
    kAllow,
    kBlock,            // the task is `blocked` and its branch fails
    kRequireApproval,  // the task waits for approval as if it had `approval:`
  };
  std::string name;  // recorded with the decision
  std::vector<std::pair<std::string, std::string>> match;
  Decision decision = Decision::kAllow;
};

// A named queue of a node (docs/queues.md): processes started in it wait
// (`pending`) until it admits them, in priority order (lower first), first
// come first served within a priority. Zero means no limit.
struct QueueSpec {
  std::string name;  // 1 to 64 letters, digits, '_', '-', '.'; first a letter or digit
  // Admitted processes that have not ended (a waiting or paused one keeps
  // its place until it ends).
  uint32_t concurrency = 0;
  // As concurrency, per queue key: a start's key, else `key` over its inputs.
  uint32_t per_key = 0;
  // "inputs.customer" (a dotted path into the inputs): the key of a start
  // that names none. Empty: such starts share the key "".
  std::string key;
  // At most `rate_limit` admissions in any `rate_period`.
  uint32_t rate_limit = 0;
  std::chrono::milliseconds rate_period{0};
};

// Reads "NAME:concurrency=8,per_key=1,key=inputs.customer,rate=100/1m"
// (every setting optional; "NAME" alone is a queue without limits).
// InvalidArgument naming what is wrong.
Result<QueueSpec> ParseQueueSpec(std::string_view text);
// The spelling ParseQueueSpec reads back to `spec`.
std::string FormatQueueSpec(const QueueSpec& spec);
// InvalidArgument unless `name` is a queue name (see QueueSpec::name).
Status CheckQueueName(std::string_view name);

// Options of Node::Open.
struct Options {
  std::string data_dir = ".keel";
  // true: every transition is fsynced (group commit) before anyone acts on it.
  // false: written to the WAL without fsync; a machine crash may lose the newest.
  bool sync = true;
  // Deny by default: a node runs no program unless its owner says so (the
  // CLI's `run` of a local file asks for kFull).
  ExecPolicy exec_policy = ExecPolicy::kDeny;
  std::vector<std::string> exec_allow;
  // Policy gates for activity tasks, first match wins (see PolicyRule).
  std::vector<PolicyRule> policy;
  // A snapshot is stored every this many events of a process, and at rest
  // when a quarter of that came since the last; for a process with many tasks
  // and branches, only after four times their number (a snapshot's cost grows
  // with them). Loading a process replays at most that many events.
  uint32_t snapshot_every = 256;
  // The newest this many snapshots of a process are kept; older ones are
  // deleted with the write of a new one (0 keeps every one). The log keeps
  // every event, so verify and replay --to still reach every seq.
  uint32_t snapshots_kept = 2;
  // Threads of the actor scheduler and of the blocking activity pool (0 = auto).
  unsigned scheduler_threads = 0;
  unsigned activity_threads = 0;
  // Resume unfinished processes on Open (read-only tools turn it off).
  bool resume = true;
  // Fire the data dir's schedules (docs/schedules.md) from Resume until
  // Close. The nodes the CLI opens for one command turn it off, so that only
  // a serving node starts processes on a clock.
  bool fire_schedules = true;
  // The queues processes may be started in (StartOptions::queue). A process
  // of the log waiting in a queue this node does not have stays pending
  // until a node that has it runs.
  std::vector<QueueSpec> queues;
};

}  // namespace keel
