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
#include "tools/cli.h"
#include "tools/client.h"
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

Options EmbeddedOptions(const Common& c) {
  Options options;
  options.data_dir = c.data;
  options.exec_policy = ExecPolicy::kFull;  // the CLI runs the user's own local files
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

Result<std::string> ReadText(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::InvalidArgument("cannot read '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

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
  auto ro = OpenForProcess(c.data, id);
  if (!ro.ok()) return ro.status();
  auto last = (*ro)->LastSeq(id);
  if (!last.ok()) return last.status();
  return *last == 0 ? UnknownId(id) : Status::OK();
}

// Waits until `id` rests on whichever node the target is, then closes an
// embedded node. Returns the resting snapshot. When a live node goes away
// meanwhile (it closed), the wait goes on with whichever node holds the dir
// next, or an embedded one, which resumes the process. `until_done` passes
// rests on timers alone by (Node::WaitUntilDone).
Result<Json> RestAndClose(const Common& c, Target& target, const std::string& id,
                          std::chrono::milliseconds timeout,
                          const std::function<void(const Json&)>& on_change = nullptr,
                          bool until_done = false) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (target.remote) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto rested = target.remote->WaitRest(id, std::max(left, std::chrono::milliseconds(0)),
                                          on_change, until_done);
    if (rested.ok() || rested.status().code() != Status::Code::kIOError) return rested;
    auto next = Connect(EmbeddedOptions(c), EmbeddedHttp(), c.token);
    if (!next.ok()) return next.status();
    target = std::move(*next);
  }
  CloseOnStop stop(target.local.get());
  std::function<void()> unsubscribe;
  if (on_change) {
    auto sub = target.local->node().Subscribe(id, on_change);
    if (sub.ok()) unsubscribe = *sub;
  }
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  left = std::max(left, std::chrono::milliseconds(0));
  auto rested = until_done ? target.local->node().WaitUntilDone(id, left) : target.local->node().Wait(id, left);
  YieldToStop();  // a stop signal ended the wait
  if (unsubscribe) unsubscribe();
  Status closed = target.local->Close();
  if (!rested.ok()) return rested;
  if (!closed.ok()) return closed;
  return rested;
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
  auto target = Connect(options, EmbeddedHttp(), c.token);
  if (!target.ok()) return Fail(target.status());
  CloseOnStop stop(target->local.get());
  Result<Json> started = Status::Internal("not started");
  if (target->remote) {
    auto text = ReadText(a.file);
    if (!text.ok()) return Fail(text.status());
    Json body = {{"workflow", *text}, {"inputs", *inputs}};
    if (!a.id.empty()) body["id"] = a.id;
    if (!a.idempotency_key.empty()) body["idempotency_key"] = a.idempotency_key;
    started = target->remote->Post("/v1/processes", body);
  } else {
    StartOptions so;
    so.id = a.id;
    so.idempotency_key = a.idempotency_key;
    so.defer = a.detach;
    started = target->local->node().Start(*wf, *inputs, so);
    YieldToStop();
  }
  if (!started.ok()) {
    if (target->local) target->local->Close().IgnoreError();  // the start failed; nothing to lose
    return Fail(started.status());
  }
  std::string id = (*started)["id"];
  if (a.detach) {
    // Printed as soon as it is durably created. A live node runs it; with
    // none, it moves when a node next opens the dir.
    PrintSnapshot(c, *started);
    std::cout.flush();
    if (target->remote) return kExitOk;
    Status closed = target->local->Close();
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
  auto done = RestAndClose(c, *target, id, TimeoutOf(a.timeout_s), on_change, a.until_done);
  if (display) display->Finish();
  if (!done.ok()) return TimedOutOrFail(done.status());
  PrintSnapshot(c, *done);
  return ExitFor(*done);
}

int Wait(const Common& c, const std::string& id, double timeout_s, bool until_done) {
  ExitOnStopSignals();
  if (Status known = CheckKnown(c, id); !known.ok()) return Fail(known);
  auto target = Connect(EmbeddedOptions(c), EmbeddedHttp(), c.token);
  if (!target.ok()) return Fail(target.status());
  CloseOnStop stop(target->local.get());
  auto done = RestAndClose(c, *target, id, TimeoutOf(timeout_s), nullptr, until_done);
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
  ControlOptions options;
  options.reason = a.reason;
  if (!a.by.empty()) options.by = a.by;
  // A live node that goes away before it takes the request (a CLI node that
  // closes; 503 while it stops) sent nothing: find the dir's node again.
  // Each node met anew (many commands' nodes taking the dir in turn) is
  // progress: the 10 s count from the last one.
  auto deadline = std::chrono::steady_clock::now() + kRouteRetry;
  std::string last_address;
  Result<Target> target = Status::Internal("not connected");
  Result<Json> accepted = Status::Internal("no control");
  do {
    target = Connect(EmbeddedOptions(c), EmbeddedHttp(), c.token);
    if (!target.ok()) return ControlFail(target.status());
    if (!target->remote) break;
    if (target->remote->address() != last_address) {
      last_address = target->remote->address();
      deadline = std::chrono::steady_clock::now() + kRouteRetry;
    }
    Json body = Json::object();
    if (!a.reason.empty()) body["reason"] = a.reason;
    if (!a.by.empty()) body["by"] = a.by;
    std::string path = "/v1/processes/" + a.id;
    if (a.action == "approve" || a.action == "reject") {
      path += "/tasks/" + a.target + "/" + a.action;
    } else if (a.action == "signal") {
      path += "/signals/" + a.target;
      body["payload"] = payload;
    } else {
      path += "/" + a.action;
    }
    accepted = target->remote->Post(path, body);
    if (accepted.ok() || accepted.status().code() != Status::Code::kBusy) break;
    std::this_thread::sleep_for(kRoutePause);
  } while (std::chrono::steady_clock::now() < deadline);
  CloseOnStop stop(target->local.get());
  if (target->local) {
    Node& node = target->local->node();
    accepted = a.action == "pause"     ? node.Pause(a.id, options)
               : a.action == "resume"  ? node.Resume(a.id, options)
               : a.action == "cancel"  ? node.Cancel(a.id, options)
               : a.action == "retry"   ? node.Retry(a.id, options)
               : a.action == "approve" ? node.Approve(a.id, a.target, options)
               : a.action == "reject"  ? node.Reject(a.id, a.target, options)
                                       : node.Signal(a.id, a.target, payload, options);
    YieldToStop();
  }
  if (!accepted.ok()) {
    if (target->local) target->local->Close().IgnoreError();  // refused: nothing changed
    return ControlFail(accepted.status());
  }
  auto rested = RestAndClose(c, *target, a.id, kNoTimeout);
  if (!rested.ok()) return ControlFail(rested.status());
  PrintSnapshot(c, *rested);
  return kExitOk;
}

int Serve(const Common& c, const ServeArgs& a) {
  Options options;
  options.data_dir = c.data;
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
    if (moving == 0) break;
    std::this_thread::sleep_for(kServePoll);
  }
  Status closed = (*node)->Close();
  if (!closed.ok()) return Fail(closed);
  return StopExitCode();  // 130 or 143: stopped by SIGINT or SIGTERM
}

}  // namespace keel::cli
