#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "keel/options.h"
#include "keel/status.h"
#include "keel/types.h"
#include "keel/workflow.h"

namespace keel {

// A page of process summaries, newest first.
struct ProcessList {
  std::vector<Json> processes;  // summaries (snapshot without branches, tasks, variables)
  uint64_t total = 0;
  size_t limit = 0;
  size_t offset = 0;
  bool has_more = false;
};

// How a process came to rest, without its branches and tasks: what Await
// returns, at a small part of a snapshot's cost for a wide process.
struct ProcessOutcome {
  std::string id;
  std::string status;  // as in the snapshot: completed, failed, waitForApproval, ...
  Json outputs;        // the workflow's outputs ({} until it completes)
  Json error;          // the failure's message, or null
};

// Live figures of a node (Node::Metrics), cheap to read.
struct NodeMetrics {
  // Task attempts executing now: activities started and not yet ended
  // (completed, failed, timed out or cancelled).
  int64_t tasks_running = 0;
  // Processes with a live actor now. A process at rest (ended, paused,
  // waiting) or waiting only for its timers (a retry's backoff) has none.
  int64_t processes_live = 0;
};

// A cumulative histogram: counts[i] observations were at most bounds[i];
// the last bound is infinity, so counts.back() is the number of them all.
struct Histogram {
  std::vector<double> bounds;
  std::vector<uint64_t> counts;
  double sum = 0;  // of every observation
};

// Figures of a node's log (Node::LogStats): they read the store.
struct LogStats {
  uint64_t events = 0;        // events in the log: its last global seq
  uint64_t timers_armed = 0;  // durable timers waiting to fire
  // Seconds from an append's submission to its durable commit.
  Histogram append_latency_seconds;
  // Appends committed together in one group commit.
  Histogram group_commit_appends;
};

// A schedule: when it fires and what each fire starts (docs/schedules.md).
struct ScheduleSpec {
  std::string name;  // 1 to 64 letters, digits, '_', '-', '.'; first a letter or digit
  // A 5-field cron ("*/5 * * * *", names, ranges, steps, lists; @daily and
  // the like) read in `time_zone`, or empty with `every`.
  std::string cron;
  std::string time_zone;               // IANA name ("Europe/Berlin"); empty = UTC
  std::chrono::milliseconds every{0};  // a fixed interval (whole seconds), or 0 with cron
  Json inputs = Json::object();        // of every process it starts
  // What a fire does while the schedule's previous process still runs:
  // skip, buffer_one, buffer_all, cancel_other or allow_all.
  std::string overlap = "skip";
  // A fire that came due while no node ran still runs if it is at most this
  // late when a node gets to it; older ones are recorded as missed.
  std::chrono::milliseconds catchup_window = std::chrono::hours(1);
  // Each fire starts up to this much after its time (the same delay for the
  // same fire on every node).
  std::chrono::milliseconds jitter{0};
};

// How to fork a process (Node::Fork, docs/fork.md).
struct ForkOptions {
  // Where the new process starts: a step id (its visit `visit`, in any
  // branch, whichever began first) or a task id (`fan/2/send`, `check#2`).
  std::string from;
  // Which visit of step `from` (goto loops): 0 means the first; not with a
  // task id.
  uint32_t visit = 0;
  // The new process's inputs, checked like Start's (defaults filled in);
  // absent: the source's.
  std::optional<Json> inputs;
  // As StartOptions::id: empty = generate "p_" + ULID.
  std::string id;
  std::string actor = "user";  // who forked it (recorded on its ProcessCreated)
  // Records the fork only: it moves when a node next resumes the dir's
  // unfinished processes (as StartOptions::defer).
  bool defer = false;
};

// A Node runs workflow processes whose state is an append-only event log in
// RocksDB. It holds its data dir exclusively. Safe for concurrent use from
// multiple threads.
class Node {
 public:
  // Opens options.data_dir, replays the log and resumes unfinished processes.
  // Busy if another node holds the dir; NotSupported for a newer store format;
  // Corruption if the store cannot be read.
  static Result<std::unique_ptr<Node>> Open(const Options& options);

  // Stops gracefully (Close()).
  ~Node();

  // Makes `fn` available as activity `name`. Register before starting
  // processes that use it; for the processes Open resumes, open with
  // options.resume = false, register, then call Resume().
  // A blocking `fn` runs on the node's activity pool, never on the actors'
  // threads; an AsyncActivityFn is called on its process actor's thread and
  // must not block (one that computes its result at once saves the pool's
  // two thread hand-offs per step).
  Status RegisterActivity(const std::string& name, ActivityFn fn);
  Status RegisterAsyncActivity(const std::string& name, AsyncActivityFn fn);

  // Resumes unfinished processes; called by Open unless options.resume is
  // false (then call it after registering activities).
  Status Resume();

  // Starts a process; returns its snapshot once ProcessCreated is durable
  // (appended together with its start and first steps).
  // InvalidArgument for bad inputs or an activity that is not registered.
  // With an idempotency key already used, returns that process (started=false).
  Result<Json> Start(const Workflow& workflow, const Json& inputs, const StartOptions& options = {},
                     bool* started = nullptr);

  // Starts a process like Start, but returns only its id once ProcessCreated
  // is durable: no snapshot is built. With an idempotency key already used,
  // returns that process's id (started=false).
  Result<std::string> Submit(const Workflow& workflow, const Json& inputs,
                             const StartOptions& options = {}, bool* started = nullptr);

  // The snapshot of a process (INTERFACE.md); NotFound for an unknown id.
  Result<Json> Get(const std::string& id);
  Result<ProcessList> List(const ListFilter& filter);

  // Blocks until the process rests (completed, failed, cancelled, waiting,
  // paused) or `timeout` passes (TimedOut), or Close() is called (Aborted).
  // A process resting on a timer that is already due is not at rest yet:
  // the node fires the timer first. Returns the snapshot.
  Result<Json> Wait(const std::string& id, std::chrono::milliseconds timeout);

  // Blocks until the process ends (completed, failed, cancelled) or rests
  // where only a person moves it on (an approval, a signal, a pause), or
  // `timeout` passes (TimedOut, or the snapshot if it rests then). Rests on
  // timers alone are passed by: the node fires them and runs retries
  // meanwhile. Returns the snapshot.
  Result<Json> WaitUntilDone(const std::string& id, std::chrono::milliseconds timeout);

  // Blocks like Wait; returns the process's outcome instead of its snapshot.
  // With Submit, the call of a program that runs many processes and needs
  // only their results.
  Result<ProcessOutcome> Await(const std::string& id, std::chrono::milliseconds timeout);

  // Calls `fn` with the snapshot after each durable change of process `id`
  // until it ends (terminal) or the returned cancel function is called.
  // `fn` runs on a keel thread and must not block.
  Result<std::function<void()>> Subscribe(const std::string& id,
                                          std::function<void(const Json&)> fn);

  // Controls. Each returns the snapshot once the request is durable and the
  // process has acted on it (it rests again, or waits for its running tasks:
  // call Wait() for the end); NotFound for an unknown id, Refused (with the
  // reason) when the process's state does not allow it: pausing a paused process, resuming a
  // running one, approving a task that does not wait for approval, cancelling a cancelled one,
  // any control but retry of a failed process on a finished one.
  Result<Json> Pause(const std::string& id, const ControlOptions& options = {});
  Result<Json> Resume(const std::string& id, const ControlOptions& options = {});
  Result<Json> Cancel(const std::string& id, const ControlOptions& options = {});
  // Stops the running attempt of activity task `task`; what follows is its
  // retry policy's, as after a timeout (another attempt after the backoff,
  // or the task fails). Refused when the task has no running attempt.
  Result<Json> CancelTask(const std::string& id, const std::string& task,
                          const ControlOptions& options = {});
  // Retries a failed process: its failed tasks run again as new attempts;
  // completed tasks are not run again.
  Result<Json> Retry(const std::string& id, const ControlOptions& options = {});
  // Decides the approval `step` waits for (a step id, or a task id inside a
  // fan-out).
  Result<Json> Approve(const std::string& id, const std::string& step,
                       const ControlOptions& options = {});
  Result<Json> Reject(const std::string& id, const std::string& step,
                      const ControlOptions& options = {});
  // Delivers a signal; kept in arrival order until a wait_signal consumes it.
  Result<Json> Signal(const std::string& id, const std::string& topic, const Json& payload,
                      const ControlOptions& options = {});

  // A new process that starts from process `source`'s state just before
  // `options.from` first began (docs/fork.md): the source's earlier events
  // are copied into its log (their outputs kept, not run again), then it
  // runs from there like a process resumed after a crash, with the inputs
  // given. Returns its snapshot once its log is durable (one append).
  // NotFound for an unknown process or a step the workflow does not have;
  // InvalidArgument for a bad id or inputs; Refused when the step never
  // began in the source, or the process could not go on from that point,
  // or the id is taken.
  Result<Json> Fork(const std::string& source, const ForkOptions& options);

  // Schedules (docs/schedules.md): durable in their own streams; a node
  // fires them while it runs (after Resume). Each returns the schedule's
  // view: name, status, spec, next_fire_at, last_process, counters.
  // Records a schedule that starts `workflow` (stored with it, so the file is
  // not needed again). InvalidArgument for a bad name, cron, zone, interval,
  // policy or inputs; Refused when a schedule of that name exists.
  Result<Json> CreateSchedule(const ScheduleSpec& spec, const Workflow& workflow,
                              const ControlOptions& options = {});
  // Every schedule that is not deleted, by name.
  Result<std::vector<Json>> ListSchedules();
  // NotFound for an unknown or deleted schedule (also for the controls).
  Result<Json> GetSchedule(const std::string& name);
  // Fires stop until resumed; fires that come due meanwhile are passed by.
  // Refused when paused already.
  Result<Json> PauseSchedule(const std::string& name, const ControlOptions& options = {});
  // Refused unless paused.
  Result<Json> ResumeSchedule(const std::string& name, const ControlOptions& options = {});
  // No more fires; its processes are not touched. The name may be used anew.
  Result<Json> DeleteSchedule(const std::string& name, const ControlOptions& options = {});
  // Starts a process of the schedule now (also while paused, whatever the
  // overlap policy); the view's last_process names it.
  Result<Json> TriggerSchedule(const std::string& name, const ControlOptions& options = {});

  // Queues (docs/queues.md): the view of each queue the node has or the log
  // uses: name, spec, depth (waiting), running (admitted, not ended), rate
  // use and the first waiting processes. NotFound for an unknown queue.
  Result<std::vector<Json>> ListQueues();
  Result<Json> GetQueue(const std::string& name);

  // The event lines (INTERFACE.md) of process `id` from seq `from_seq` on;
  // NotFound for an unknown id. The log is the audit trail: what happened.
  Result<std::vector<Json>> Events(const std::string& id, uint64_t from_seq = 1);
  // Event lines of the whole log in commit order, from global seq
  // `from_global_seq` on, at most `limit`.
  Result<std::vector<Json>> LogEvents(uint64_t from_global_seq, size_t limit);
  // The global seq of the newest event (0 for an empty log).
  Result<uint64_t> LastGlobalSeq();

  // Read-only views for people inspecting a run (the web console; the CLI's
  // `export`, `replay --to` and `verify ID` read the store the same way).
  // NotFound for an unknown id.
  //
  // The workflow definition process `id` runs, as stored (Workflow::ToJson).
  Result<Json> Definition(const std::string& id);
  // The snapshot of process `id` rebuilt from its log up to seq `to_seq`
  // (the state as of that event); InvalidArgument unless 1 <= to_seq <= its
  // last seq.
  Result<Json> Replay(const std::string& id, uint64_t to_seq);
  // The audit of process `id`'s stream (decoding, seq continuity, chain
  // hashes, legal transitions, snapshots == the fold), on a consistent view
  // of the store: one line per problem, none when it passes.
  Result<std::vector<std::string>> Verify(const std::string& id);

  // Live figures for monitoring (GET /v1/metrics); cheap, any thread.
  NodeMetrics Metrics() const;
  // Figures of the log for monitoring; they read the store (the armed
  // timers are counted), so are not for a hot path.
  Result<LogStats> GetLogStats();

  // The options the node was opened with.
  const Options& options() const;

  // Finishes in-flight appends, stops every actor, closes the store. Idempotent.
  Status Close();

  class Impl;

 private:
  explicit Node(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// True when a snapshot's process has ended or rests where only a person
// moves it on (an approval, a signal, a pause); false while it moves or
// waits only for its timers. What WaitUntilDone waits for.
bool Settled(const Json& snapshot);

// True when a snapshot's process has ended or rests until something from
// outside moves it (waiting, paused): what Wait waits for.
bool AtRest(const Json& snapshot);

// A page of a snapshot's tasks, for processes with very many: the `limit`
// newest (in scheduling order) after skipping the `offset` newest, with
// "tasks_total" and "tasks_offset" added. limit 0: the snapshot as it is.
Json TasksPage(Json snapshot, size_t limit, size_t offset = 0);

// Exit-style classification of a snapshot's status used by the CLI:
// 0 completed, 1 failed, 3 cancelled, 4 at rest unfinished, -1 still moving.
int StatusExitCode(const Json& snapshot);

}  // namespace keel
