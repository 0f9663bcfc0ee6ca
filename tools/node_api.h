#pragma once

// The node of a data dir as a CLI command sees it. A command asks; whether the
// answer comes from a live node over its HTTP API (RemoteNode) or from a node
// the command opened itself (EmbeddedNode) is chosen once, by Connect, as
// INTERFACE.md describes.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "keel/http.h"
#include "keel/node.h"

namespace keel::cli {

class EmbeddedNode;

// A control as the CLI names it: pause, resume, cancel, retry; approve and
// reject (of `target`, a step or task); cancel of `target`, a task's running
// attempt; signal (of `target`, a topic).
struct ControlRequest {
  std::string action;
  std::string id;
  std::string target;
  Json payload;            // signal
  ControlOptions options;  // reason, by
};

class NodeApi {
 public:
  virtual ~NodeApi() = default;

  // Where the node answers ("127.0.0.1:PORT"): one address, one node.
  virtual const std::string& address() const = 0;

  // Durably creates a process of `workflow` (the file's `text` is what a
  // live node is sent) and returns its first snapshot. options.defer: the
  // process only moves once a node next opens the dir (an embedded node
  // that is about to close).
  virtual Result<Json> Start(const Workflow& workflow, const std::string& text, const Json& inputs,
                             const StartOptions& options) = 0;

  // The snapshot once the control is accepted. Busy from a live node that
  // went away before it took the request (nothing was done).
  virtual Result<Json> Control(const ControlRequest& request) = 0;

  // The snapshot once `id` rests (keel::Settled with `until_done`), else
  // TimedOut; `on_change` sees each snapshot on the way. IOError when a live
  // node went away meanwhile: the wait may go on with the dir's next node.
  virtual Result<Json> WaitRest(const std::string& id, std::chrono::milliseconds timeout,
                                const std::function<void(const Json&)>& on_change,
                                bool until_done) = 0;

  // Records schedule `spec` starting `workflow` (the file's `text` is what a
  // live node is sent); the schedule's view.
  virtual Result<Json> CreateSchedule(const ScheduleSpec& spec, const Workflow& workflow,
                                      const std::string& text, const ControlOptions& options) = 0;
  // `action` (pause, resume, delete, trigger) of schedule `name`; its view.
  virtual Result<Json> ScheduleControl(const std::string& action, const std::string& name,
                                       const ControlOptions& options) = 0;

  // Forks process `source` (Node::Fork, docs/fork.md); the new process's
  // snapshot once its log is durable.
  virtual Result<Json> Fork(const std::string& source, const ForkOptions& options) = 0;

  // The node this command opened, which it must close; nullptr for a live
  // node it only talks to.
  virtual EmbeddedNode* embedded() { return nullptr; }
};

// The live node of options.data_dir (DIR/node.json), or a node opened there
// with `options` and served with `http` so that other commands find it. A
// node that is shutting down (stale node.json, lock still held) is retried
// for up to 10 s before Busy is reported, counted from the last change of
// node.json (other commands' nodes taking the dir in turn).
Result<std::unique_ptr<NodeApi>> Connect(const Options& options, const HttpOptions& http,
                                         const std::string& token);

// What the commands that act through a node share (control_commands.cc).
struct Common;
struct RunArgs;
// The options of a node a command opens itself: exec with the full policy.
Options EmbeddedOptions(const Common& c);
// The queues of a node the CLI opens on `data_dir`: DIR/queues.conf (one
// spec a line, '#' comments) if there is one, then `specs` (--queue), a
// later spec of a name replacing an earlier one. InvalidArgument naming the
// bad line or spec.
Result<std::vector<QueueSpec>> QueueConfig(const std::string& data_dir,
                                           const std::vector<std::string>& specs);
// Its HTTP endpoint: loopback, any port, a random token in node.json.
HttpOptions EmbeddedHttp();
// --inputs (JSON or @file) and --input k=v, merged.
Result<Json> ParseInputs(const RunArgs& a);
// Waits until `id` rests on the command's node, then closes the node if the
// command opened it; the resting snapshot.
Result<Json> RestAndClose(const Common& c, std::unique_ptr<NodeApi>& node, const std::string& id,
                          std::chrono::milliseconds timeout,
                          const std::function<void(const Json&)>& on_change = nullptr,
                          bool until_done = false);

// Forever, for waits without a timeout.
inline constexpr std::chrono::milliseconds kNoTimeout = std::chrono::hours(24 * 365);

}  // namespace keel::cli
