// Commands that act on processes: run, wait, serve and the controls (pause,
// resume, cancel, retry, approve, reject, signal). Each goes through the live
// node of the data dir when there is one (DIR/node.json), else opens the dir
// as an embedded node, does the work, lets the process rest and closes.

#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "base/data_dir.h"
#include "base/validate.h"
#include "events/schedule.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/embedded_node.h"
#include "tools/node_api.h"
#include "tools/live_display.h"
#include "tools/signals.h"

namespace keel::cli {
namespace {

// How often serve looks for a stop signal, and for processes still moving
// during its grace period.
constexpr auto kServePoll = std::chrono::milliseconds(100);

// How long a control keeps finding the dir's node again when the one it
// found went away before taking the request (INTERFACE.md: up to 10 s).
constexpr auto kRouteRetry = std::chrono::seconds(10);
constexpr auto kRoutePause = std::chrono::milliseconds(50);

// The statuses of a process that is still moving (not at rest).
constexpr const char* kMovingStatuses[] = {"pending", "running", "pauseRequested",
                                           "resumeRequested", "cancelRequested"};

// 128 random bits as hex.
std::string RandomToken() {
  std::random_device rd;
  std::string token;
  for (int i = 0; i < 4; ++i) {
    char part[9];
    std::snprintf(part, sizeof part, "%08x", static_cast<unsigned>(rd()));
    token += part;
  }
  return token;
}

// Whether the host of "host:port" is a loopback address.
bool IsLoopback(const std::string& listen) {
  std::string host = listen.substr(0, listen.rfind(':'));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// Every watcher and connection of the API holds a descriptor: serve may use
// as many as the hard limit allows.
void RaiseFileLimit() {
  struct rlimit limit {};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
}

}  // namespace

Options EmbeddedOptions(const Common& c) {
  Options options;
  options.data_dir = c.data;
  options.exec_policy = ExecPolicy::kFull;  // the CLI runs the user's own local files
  // Schedules fire on a serving node only, not in a node one command opens.
  options.fire_schedules = false;
  // Queues admit in any node, with the dir's own queue settings.
  auto queues = QueueConfig(c.data, {});
  if (queues.ok()) {
    options.queues = std::move(*queues);
  } else {
    std::cerr << "keel: queues not configured: " << queues.status().message() << "\n";
  }
  return options;
}

// Concurrent CLI commands on this dir find the node a command embeds through
// node.json, and route to it instead of waiting for the dir's lock.
HttpOptions EmbeddedHttp() {
  HttpOptions http;
  http.listen = "127.0.0.1:0";
  // The node runs exec with the full policy, so its endpoint must not take
  // work from other local users: a random token, found by this user's CLI
  // in DIR/node.json (readable by the owner only).
  http.token = RandomToken();
  return http;
}

namespace {

Result<std::string> ReadText(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::InvalidArgument("cannot read '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

Result<Json> ParseInputs(const RunArgs& a) {
  Json inputs = Json::object();
  if (!a.inputs.empty()) {
    std::string text = a.inputs;
    if (text[0] == '@') {
      auto file = ReadText(text.substr(1));
      if (!file.ok()) return file.status();
      text = *file;
    }
    KEEL_RETURN_IF_ERROR(CheckUtf8(text, "--inputs"));
    inputs = Json::parse(text, nullptr, false);
    if (inputs.is_discarded() || !inputs.is_object()) {
      return Status::InvalidArgument("--inputs must be a JSON object");
    }
  }
  for (const auto& kv : a.input) {
    KEEL_RETURN_IF_ERROR(CheckUtf8(kv, "--input " + Printable(kv)));
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      return Status::InvalidArgument("--input expects k=v, got '" + kv + "'");
    std::string value = kv.substr(eq + 1);
    Json parsed = Json::parse(value, nullptr, false);
    inputs[kv.substr(0, eq)] = parsed.is_discarded() ? Json(value) : parsed;
  }
  return inputs;
}

namespace {

void PrintSnapshot(const Common& c, const Json& snapshot) {
  if (c.json) {
    std::cout << snapshot.dump() << "\n";
  } else {
    PrintTree(snapshot);
  }
}

// Fails an unknown id before any node is opened (an embedded node would
// resume the dir's other processes for nothing).
Status CheckKnown(const Common& c, const std::string& id) {
  if (events::IsScheduleStream(id)) return UnknownId(id);
  auto ro = OpenForProcess(c.data, id);
  if (!ro.ok()) return ro.status();
  auto last = (*ro)->LastSeq(id);
  if (!last.ok()) return last.status();
  return *last == 0 ? UnknownId(id) : Status::OK();
}

}  // namespace

// When a live node goes away meanwhile (it closed), the wait goes on with
// whichever node holds the dir next, or an embedded one, which resumes the
// process. `until_done` passes rests on timers alone by (Node::WaitUntilDone).
Result<Json> RestAndClose(const Common& c, std::unique_ptr<NodeApi>& node, const std::string& id,
                          std::chrono::milliseconds timeout,
                          const std::function<void(const Json&)>& on_change, bool until_done) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    CloseOnStop stop(node->embedded());
    auto left = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(
                             deadline - std::chrono::steady_clock::now()),
                         std::chrono::milliseconds(0));
    auto rested = node->WaitRest(id, left, on_change, until_done);
    if (EmbeddedNode* own = node->embedded()) {
      YieldToStop();  // a stop signal ended the wait
      Status closed = own->Close();
      if (rested.ok() && !closed.ok()) return closed;
      return rested;
    }
    if (rested.ok() || rested.status().code() != Status::Code::kIOError) return rested;
    auto next = Connect(EmbeddedOptions(c), EmbeddedHttp(), c.token);
    if (!next.ok()) return next.status();
    node = std::move(*next);
  }
}

namespace {

// Closes the node the command opened, if it did, after a refusal that
// changed nothing.
void CloseAfterRefusal(NodeApi& node) {
  if (EmbeddedNode* own = node.embedded()) own->Close().IgnoreError();
}

// --timeout SECONDS; 0 or less: none.
std::chrono::milliseconds TimeoutOf(double timeout_s) {
  return timeout_s > 0 ? std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000))
                       : kNoTimeout;
}

// A wait that ran out leaves the process unfinished (exit 4); other
// failures exit as Fail says.
int TimedOutOrFail(const Status& s) {
  if (s.code() != Status::Code::kTimedOut) return Fail(s);
  std::cerr << "keel: " << s.message() << "\n";
  return kExitAtRest;
}

// A control's failure: 5 for a damaged store, else 2 (refused, unknown id or
// step, bad input, a control this node does not support).
int ControlFail(const Status& s) {
  ReportError(s);
  return s.IsCorruption() ? kExitCorrupt : kExitBadInput;
}

}  // namespace

int Run(const Common& c, const RunArgs& a) {
  ExitOnStopSignals();
  // Refused before the file is read and before any node opens the dir.
  Status names = a.id.empty() ? Status::OK() : CheckProcessId(a.id);
  if (names.ok() && !a.idempotency_key.empty()) names = CheckIdempotencyKey(a.idempotency_key);
  if (!names.ok()) return Fail(names);
  auto wf = LoadWorkflowFile(a.file);
  if (!wf.ok()) return Fail(wf.status());
  auto inputs = ParseInputs(a);
  if (!inputs.ok()) return Fail(inputs.status());
  // Refused before any node opens: bad input leaves no store behind.
  if (auto resolved = ResolveInputs(*wf, *inputs); !resolved.ok()) return Fail(resolved.status());
  Options options = EmbeddedOptions(c);
  // Detached with no live node: the node this command opens only records
  // the creation and closes; it runs nothing, of this process or others.
  if (a.detach) options.resume = false;
  auto text = ReadText(a.file);
  if (!text.ok()) return Fail(text.status());
  auto node = Connect(options, EmbeddedHttp(), c.token);
  if (!node.ok()) return Fail(node.status());
  CloseOnStop stop((*node)->embedded());
  StartOptions so;
  so.id = a.id;
  so.idempotency_key = a.idempotency_key;
  so.defer = a.detach;
  so.queue = a.queue;
  so.priority = a.priority;
  so.queue_key = a.queue_key;
  auto started = (*node)->Start(*wf, *text, *inputs, so);
  YieldToStop();
  if (!started.ok()) {
    CloseAfterRefusal(**node);  // the start failed; nothing to lose
    return Fail(started.status());
  }
  std::string id = (*started)["id"];
  if (a.detach) {
    // Printed as soon as it is durably created. A live node runs it; with
    // none, it moves when a node next opens the dir.
    PrintSnapshot(c, *started);
    std::cout.flush();
    EmbeddedNode* own = (*node)->embedded();
    if (!own) return kExitOk;
    Status closed = own->Close();
    if (!closed.ok()) return Fail(closed);
    std::cerr << "keel: no live node: " << id << " is created and moves when a node next opens "
              << c.data << " (keel serve, or keel wait " << id << ")" << std::endl;
    return kExitOk;
  }
  // Without --json, the process's events go to stderr as they become durable.
  std::unique_ptr<LiveDisplay> display;
  std::function<void(const Json&)> on_change;
  if (!c.json) {
    std::cerr << id << "  " << wf->name << std::endl;
    display = std::make_unique<LiveDisplay>(c.data, id, std::cerr, WantsColour(STDERR_FILENO));
    on_change = [shown = display.get()](const Json&) { shown->Changed(); };
  }
  auto done = RestAndClose(c, *node, id, TimeoutOf(a.timeout_s), on_change, a.until_done);
  if (display) display->Finish();
  if (!done.ok()) return TimedOutOrFail(done.status());
  PrintSnapshot(c, *done);
  return ExitFor(*done);
}

int Wait(const Common& c, const std::string& id, double timeout_s, bool until_done) {
  ExitOnStopSignals();
  if (Status known = CheckKnown(c, id); !known.ok()) return Fail(known);
  auto node = Connect(EmbeddedOptions(c), EmbeddedHttp(), c.token);
  if (!node.ok()) return Fail(node.status());
  auto done = RestAndClose(c, *node, id, TimeoutOf(timeout_s), nullptr, until_done);
  if (!done.ok()) return TimedOutOrFail(done.status());
  PrintSnapshot(c, *done);
  return ExitFor(*done);
}

int Control(const Common& c, const ControlArgs& a) {
  for (const auto& [text, what] : {std::pair{&a.id, "the process id"}, {&a.target, "the step or topic"},
                                   {&a.reason, "--reason"}, {&a.by, "--by"}}) {
    if (Status s = CheckUtf8(*text, what); !s.ok()) return ControlFail(s);
  }
  Json payload;
  if (!a.payload.empty()) {
    payload = Json::parse(a.payload, nullptr, false);
    if (payload.is_discarded())
      return ControlFail(Status::InvalidArgument("--payload must be JSON"));
  }
  ExitOnStopSignals();
  if (Status known = CheckKnown(c, a.id); !known.ok()) return Fail(known);  // 5: damaged or newer
  ControlRequest request{.action = a.action, .id = a.id, .target = a.target, .payload = payload};
  request.options.reason = a.reason;
  if (!a.by.empty()) request.options.by = a.by;
  // A live node that goes away before it takes the request (a CLI node that
  // closes; 503 while it stops) did nothing: find the dir's node again.
  // Each node met anew (many commands' nodes taking the dir in turn) is
  // progress: the 10 s count from the last one.
  auto deadline = std::chrono::steady_clock::now() + kRouteRetry;
  std::string last_address;
  std::unique_ptr<NodeApi> node;
  Result<Json> accepted = Status::Internal("no control");
  do {
    auto next = Connect(EmbeddedOptions(c), EmbeddedHttp(), c.token);
    if (!next.ok()) return ControlFail(next.status());
    node = std::move(*next);
    if (node->address() != last_address) {
      last_address = node->address();
      deadline = std::chrono::steady_clock::now() + kRouteRetry;
    }
    CloseOnStop stop(node->embedded());
    accepted = node->Control(request);
    YieldToStop();
    if (accepted.ok() || accepted.status().code() != Status::Code::kBusy || node->embedded()) break;
    std::this_thread::sleep_for(kRoutePause);
  } while (std::chrono::steady_clock::now() < deadline);
  if (!accepted.ok()) {
    CloseAfterRefusal(*node);  // refused: nothing changed
    return ControlFail(accepted.status());
  }
  auto rested = RestAndClose(c, node, a.id, kNoTimeout);
  if (!rested.ok()) return ControlFail(rested.status());
  PrintSnapshot(c, *rested);
  return kExitOk;
}

int Serve(const Common& c, const ServeArgs& a) {
  Options options;
  options.data_dir = c.data;
  auto queues = QueueConfig(c.data, a.queues);
  if (!queues.ok()) return Fail(queues.status());
  options.queues = std::move(*queues);
  HttpOptions http;
  http.listen = a.listen;
  http.token = a.token;
  http.max_body = a.max_body;
  options.exec_allow = a.exec_allow;
  if (a.exec_policy == "deny") {
    options.exec_policy = a.exec_allow.empty() ? ExecPolicy::kDeny : ExecPolicy::kAllowlist;
  } else if (a.exec_policy == "allowlist") {
    options.exec_policy = ExecPolicy::kAllowlist;
  } else if (a.exec_policy == "full") {
    options.exec_policy = ExecPolicy::kFull;
  } else {
    return Fail(Status::InvalidArgument("--exec-policy must be deny, allowlist or full"));
  }
  if (a.listen.empty()) return Fail(Status::InvalidArgument("--listen needs host:port"));
  if (a.token.empty()) {
    if (!IsLoopback(a.listen) && !a.insecure_no_token) {
      return Fail(Status::InvalidArgument(
          "--listen " + a.listen +
          " is reachable from other machines: give --token (or --insecure-no-token)"));
    }
    http.no_token = true;  // INTERFACE.md: only --token protects serve's API
  }
  RaiseFileLimit();
  InstallStopSignals();
  auto node = EmbeddedNode::Open(options, http);
  if (!node.ok()) return Fail(node.status());
  std::cerr << "keel: serving " << c.data << " on http://" << (*node)->address() << std::endl;
  while (!StopRequested()) std::this_thread::sleep_for(kServePoll);
  // Graceful: let what is moving come to rest for up to the grace period,
  // then persist and stop. Tasks still running after it re-run on the next
  // start (at-least-once).
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(static_cast<int64_t>(a.grace_s * 1000));
  std::cerr << "keel: stopping" << std::endl;
  (*node)->StopServing();  // accept no new work while the rest comes to rest
  while (std::chrono::steady_clock::now() < deadline) {
    uint64_t moving = 0;
    for (const char* status : kMovingStatuses) {
      ListFilter filter;
      filter.status = status;
      filter.limit = 0;
      auto list = (*node)->node().List(filter);
      if (list.ok()) moving += list->total;
    }
    // Processes waiting in a queue are pending but will not rest: not moving.
    if (auto queues = (*node)->node().ListQueues(); queues.ok()) {
      for (const auto& q : *queues) moving -= std::min<uint64_t>(moving, q.value("depth", 0));
    }
    if (moving == 0) break;
    std::this_thread::sleep_for(kServePoll);
  }
  Status closed = (*node)->Close();
  if (!closed.ok()) return Fail(closed);
  return StopExitCode();  // 130 or 143: stopped by SIGINT or SIGTERM
}

void AddProcessCommands(Commands& commands) {
  const Common& c = commands.common();
  auto run = std::make_shared<RunArgs>();
  auto* run_cmd = commands.Add("run", "run a workflow file until the process rests",
                               [&c, run] { return Run(c, *run); }, {.token = true});
  run_cmd->add_option("FILE", run->file, "workflow file (YAML or JSON)")->required();
  run_cmd->add_option("--input", run->input, "an input k=v (v parsed as JSON if it is)");
  run_cmd->add_option("--inputs", run->inputs, "inputs as a JSON object, or @file");
  run_cmd->add_option("--id", run->id, "process id");
  run_cmd->add_option("--idempotency-key", run->idempotency_key, "start at most once per key");
  auto* detach =
      run_cmd->add_flag("--detach", run->detach, "return once the process is durably created");
  run_cmd
      ->add_flag("--until-done", run->until_done,
                 "wait through timers and retries until the process ends or needs a person")
      ->excludes(detach);
  run_cmd->add_option("--timeout", run->timeout_s, "seconds");
  auto* queue = run_cmd->add_option("--queue", run->queue,
                                    "the node's queue to wait in until admitted");
  run_cmd->add_option("--priority", run->priority, "place in the queue: lower first")
      ->needs(queue);
  run_cmd->add_option("--queue-key", run->queue_key, "key for the queue's per_key limit")
      ->needs(queue);

  struct WaitArgs {
    std::string id;
    double timeout_s = 0;
    bool until_done = false;
  };
  auto wait = std::make_shared<WaitArgs>();
  auto* wait_cmd = commands.Add(
      "wait", "wait until a process rests; exit code by its status",
      [&c, wait] { return Wait(c, wait->id, wait->timeout_s, wait->until_done); }, {.token = true});
  wait_cmd->add_option("ID", wait->id)->required();
  wait_cmd->add_option("--timeout", wait->timeout_s, "seconds");
  wait_cmd->add_flag("--until-done", wait->until_done,
                     "wait through timers and retries until the process ends or needs a person");

  auto serve = std::make_shared<ServeArgs>();
  auto* serve_cmd = commands.Add("serve", "a node with the HTTP API, until SIGINT/SIGTERM",
                                 [&c, serve] { return Serve(c, *serve); }, {.json = false});
  serve_cmd->add_option("--listen", serve->listen, "host:port (port 0: any free port)")
      ->capture_default_str();
  serve_cmd->add_option("--token", serve->token,
                        "mutating requests need 'Authorization: Bearer T'");
  serve_cmd->add_flag("--insecure-no-token", serve->insecure_no_token,
                      "serve a non-loopback address without a token");
  serve_cmd->add_option("--exec-policy", serve->exec_policy,
                        "deny|allowlist|full (default deny; --exec-allow alone means allowlist)");
  serve_cmd->add_option("--exec-allow", serve->exec_allow, "a program exec may run (repeatable)");
  serve_cmd->add_option("--max-body", serve->max_body, "largest request body in bytes")
      ->capture_default_str();
  serve_cmd->add_option("--grace", serve->grace_s, "seconds to let running work rest on shutdown")
      ->capture_default_str();
  serve_cmd->add_option("--queue", serve->queues,
                        "a queue NAME[:concurrency=N,per_key=N,key=inputs.F,rate=N/PERIOD] "
                        "(repeatable; also DIR/queues.conf)");

  // One ControlArgs behind every control: only the chosen command fills it.
  auto control = std::make_shared<ControlArgs>();
  auto act = [&c, control](const std::string& action) {
    control->action = action;
    return Control(c, *control);
  };
  for (const char* action : {"pause", "resume", "cancel", "retry"}) {
    auto* cmd = commands.Add(action, std::string(action) + " a process", act, {.token = true});
    cmd->add_option("ID", control->id)->required();
    cmd->add_option("--reason", control->reason, "why (recorded)");
    cmd->add_option("--by", control->by, "who (recorded)");
    if (std::string(action) == "cancel") {
      cmd->add_option("--task", control->target,
                      "only this task's running attempt (its retry policy decides what follows)");
    }
  }
  for (const char* action : {"approve", "reject"}) {
    auto* cmd = commands.Add(action, std::string(action) + " the approval a step waits for", act,
                             {.token = true});
    cmd->add_option("ID", control->id)->required();
    cmd->add_option("STEP", control->target, "step id (or task id in a fan-out)")->required();
    cmd->add_option("--by", control->by, "who (recorded)");
    cmd->add_option("--reason", control->reason, "why (recorded)");
  }
  auto* signal_cmd = commands.Add("signal", "deliver a signal to a process", act, {.token = true});
  signal_cmd->add_option("ID", control->id)->required();
  signal_cmd->add_option("TOPIC", control->target)->required();
  signal_cmd->add_option("--payload", control->payload, "JSON");
}

}  // namespace keel::cli
