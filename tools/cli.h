#pragma once

// Shared pieces of the keel CLI (INTERFACE.md): exit codes, the read-only view
// of a data dir, the human renderings, and the command entry points that
// tools/keel.cc wires to CLI11.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "events/state.h"
#include "keel/node.h"
#include "store/event_store.h"

namespace keel::cli {

// Exit codes of INTERFACE.md.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitBadInput = 2;
inline constexpr int kExitAtRest = 4;
inline constexpr int kExitCorrupt = 5;

// Flags every command takes.
struct Common {
  std::string data;   // --data, default $KEEL_DATA, else ./.keel
  bool json = false;  // --json
  std::string token;  // --token for a live node's API, default $KEEL_TOKEN
  bool wide = false;  // --wide (events, tail): event lines in full
};

// $KEEL_DATA, else ".keel".
std::string DefaultDataDir();
// $KEEL_TOKEN, else "".
std::string DefaultToken();

// Prints "keel: <message>" to stderr and returns the exit code for `s`:
// 5 for Corruption / NotSupported, 2 otherwise. With --json (SetJsonErrors)
// it also prints {"error": {"code": ..., "message": ...}} on stdout, the
// shape of the HTTP API's errors.
int Fail(const Status& s);
// Prints a refusal as Fail does, without choosing the exit code.
void ReportError(const Status& s);
// Whether refusals also go to stdout as a JSON error object (--json).
void SetJsonErrors(bool on);
// The error code of the JSON error object for `s`: not_found, invalid,
// conflict, unauthorized, unsupported, unavailable, corrupt or internal.
std::string ErrorCode(const Status& s);

// Every process status as spelled in JSON, joined by `separator`.
std::string ProcessStatusNames(const std::string& separator);

// The exit code of a snapshot's status: 0 completed, 1 failed, 3 cancelled,
// 4 at rest unfinished (also for a process still moving).
int ExitFor(const Json& snapshot);

// InvalidArgument naming the dir when `data_dir` does not exist or is no
// directory: read commands refuse it rather than show an empty store.
Status CheckDataDir(const std::string& data_dir);

// A read-only view of a data dir: a RocksDB secondary instance with its own
// scratch dir (removed on destruction), so it never blocks or stops a live
// node. Not thread-safe.
class ReadOnlyStore {
 public:
  // NotFound when the dir holds no keel data; InvalidArgument when it does
  // not exist (CheckDataDir).
  static Result<ReadOnlyStore> Open(const std::string& data_dir);
  ReadOnlyStore(ReadOnlyStore&&) = default;
  ~ReadOnlyStore();

  store::EventStore* operator->() { return store_.get(); }

  // The state of process `id`: its newest snapshot with seq <= to_seq plus
  // the events after it, folded. NotFound for an unknown id.
  Result<events::ProcessState> Load(const std::string& id, uint64_t to_seq = UINT64_MAX);
  // The state folded from the log alone (no snapshot), events 1..to_seq:
  // what replay shows. NotFound for an unknown id.
  Result<events::ProcessState> Replay(const std::string& id, uint64_t to_seq);

 private:
  ReadOnlyStore(std::unique_ptr<store::EventStore> store, std::string scratch);
  std::unique_ptr<store::EventStore> store_;
  std::string scratch_;
};

// NotFound("no process with id 'ID'").
Status UnknownId(const std::string& id);

// Opens the read-only store for a command about process `id`: a dir without
// data means the id is unknown.
Result<ReadOnlyStore> OpenForProcess(const std::string& data_dir, const std::string& id);

// Makes SIGINT and SIGTERM set a flag that StopRequested() reports, so that
// long-running commands (tail --follow, serve) end cleanly.
void InstallStopSignals();
bool StopRequested();

// process → branches → tasks with states, attempts, durations, approvals and
// what the process waits on, for people.
void PrintTree(const Json& snapshot);
// Columns an event line fits in when stdout is no terminal (a terminal's
// own width otherwise); its data is cut with an ellipsis to fit.
inline constexpr size_t kEventLineWidth = 100;
// One event line (events::ToJson of an event) for people: [stream] seq,
// time, type, entity, actor unless system, data cut to fit unless `wide`.
void PrintEventLine(const Json& event_line, bool with_stream, bool wide);

// ---- commands: each returns the process exit code ----

struct LsArgs {
  std::string status, workflow;
  std::string since, until;  // RFC 3339, or a duration ago ("1h")
  std::string idempotency_key;
  size_t limit = 50, offset = 0;
};
int Ls(const Common& c, const LsArgs& a);
// tasks_limit > 0: a page of the tasks (keel::TasksPage).
int Show(const Common& c, const std::string& id, size_t tasks_limit = 0, size_t tasks_offset = 0);
// `snapshot` of `state` with its place in its queue when it waits in one:
// the live node's word, else the queues rebuilt from `store` (docs/queues.md).
Json WithQueuePosition(const Common& c, store::EventStore& store,
                       const events::ProcessState& state, Json snapshot);
// --follow: stream new events until the process is terminal and all is printed.
int Events(const Common& c, const std::string& id, uint64_t from, bool follow);
// Without `from`: the last 10 events (a given --from, even 0, is never the
// default). --follow: until SIGINT/SIGTERM.
int Tail(const Common& c, std::optional<uint64_t> from, bool follow);
// to == 0: up to the last event.
int Replay(const Common& c, const std::string& id, uint64_t to);
int Verify(const Common& c, const std::string& id);
int Export(const Common& c, const std::string& id);
int Diff(const Common& c, const std::string& a, const std::string& b);

struct RunArgs {
  std::string file;
  std::vector<std::string> input;
  std::string inputs;
  std::string id, idempotency_key;
  bool detach = false;
  bool until_done = false;  // pass rests on timers alone by (Node::WaitUntilDone)
  double timeout_s = 0;     // 0: none
  std::string queue;        // --queue NAME: wait there until admitted (docs/queues.md)
  int32_t priority = 0;     // --priority: lower first
  std::string queue_key;    // --queue-key: the key of per_key limits
};
int Run(const Common& c, const RunArgs& a);
int Wait(const Common& c, const std::string& id, double timeout_s, bool until_done);

struct ServeArgs {
  std::string listen = "127.0.0.1:7330";
  std::string token;
  bool insecure_no_token = false;  // allow no token on a non-loopback address
  std::string exec_policy = "deny";
  std::vector<std::string> exec_allow;
  size_t max_body = 1 << 20;
  double grace_s = 10;
  std::vector<std::string> queues;  // --queue SPEC (docs/queues.md)
};
int Serve(const Common& c, const ServeArgs& a);

// One control request: `action` is pause, resume, cancel, retry, approve,
// reject or signal; `target` the step (approve/reject) or topic (signal).
struct ControlArgs {
  std::string action;
  std::string id;
  std::string target;
  std::string reason, by;
  std::string payload;  // signal: JSON text
};
int Control(const Common& c, const ControlArgs& a);

// Looks at a store whose WAL is damaged and says what recovery would drop
// (exit 2); with accept_loss recovers it up to the damage (0, or 5 when the
// result fails verify).
int Repair(const Common& c, bool accept_loss);

}  // namespace keel::cli
