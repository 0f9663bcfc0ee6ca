// Commands that act on processes: run, wait, serve and the controls (pause,
// resume, cancel, retry, approve, reject, signal). Each goes through the live
// node of the data dir when there is one (DIR/node.json), else opens the dir
// as an embedded node, does the work, lets the process rest and closes.

#include <unistd.h>

#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "runtime/validate.h"
#include "tools/cli.h"
#include "tools/client.h"

namespace keel::cli {
namespace {

// How often serve looks for a stop signal, and for processes still moving
// during its grace period.
constexpr auto kServePoll = std::chrono::milliseconds(100);

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

Options EmbeddedOptions(const Common& c) {
  Options options;
  options.data_dir = c.data;
  options.exec_policy = ExecPolicy::kFull;  // the CLI runs the user's own local files
  // The node this command embeds runs exec with the full policy, so its HTTP
  // endpoint must not take work from other local users: a random token, found
  // by this user's CLI in DIR/node.json (readable by the owner only).
  options.http_token = RandomToken();
  return options;
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

// Prints task state changes as they become durable (on a terminal).
class Progress {
 public:
  void Update(const Json& s) {
    std::lock_guard lock(mu_);
    for (const auto& t : s["tasks"]) {
      std::string id = t["id"], status = t["status"];
      if (seen_[id] == status) continue;
      seen_[id] = status;
      std::cerr << "  " << id << "  " << status;
      if (t["attempts"].get<int>() > 1) std::cerr << " (attempt " << t["attempts"] << ")";
      if (!t["error"].is_null()) std::cerr << "  " << t["error"].dump();
      std::cerr << "\n";
    }
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> seen_;
};

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
// next, or an embedded one, which resumes the process.
Result<Json> RestAndClose(const Common& c, Target& target, const std::string& id,
                          std::chrono::milliseconds timeout,
                          const std::function<void(const Json&)>& on_change = nullptr) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (target.remote) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto rested =
        target.remote->WaitRest(id, std::max(left, std::chrono::milliseconds(0)), on_change);
    if (rested.ok() || rested.status().code() != Status::Code::kIOError) return rested;
    auto next = Connect(EmbeddedOptions(c), c.token);
    if (!next.ok()) return next.status();
    target = std::move(*next);
  }
  std::function<void()> unsubscribe;
  if (on_change) {
    auto sub = target.local->Subscribe(id, on_change);
    if (sub.ok()) unsubscribe = *sub;
  }
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  auto rested = target.local->Wait(id, std::max(left, std::chrono::milliseconds(0)));
  if (unsubscribe) unsubscribe();
  Status closed = target.local->Close();
  if (!rested.ok()) return rested;
  if (!closed.ok()) return closed;
  return rested;
}

// A control's failure: 5 for a damaged store, else 2 (refused, unknown id or
// step, bad input, a control this node does not support).
int ControlFail(const Status& s) {
  std::cerr << "keel: " << s.message() << "\n";
  return s.IsCorruption() ? kExitCorrupt : kExitBadInput;
}

}  // namespace

int Run(const Common& c, const RunArgs& a) {
  // Refused before the file is read and before any node opens the dir.
  Status names = a.id.empty() ? Status::OK() : CheckProcessId(a.id);
  if (names.ok() && !a.idempotency_key.empty()) names = CheckIdempotencyKey(a.idempotency_key);
  if (!names.ok()) return Fail(names);
  auto wf = LoadWorkflowFile(a.file);
  if (!wf.ok()) return Fail(wf.status());
  auto inputs = ParseInputs(a);
  if (!inputs.ok()) return Fail(inputs.status());
  auto target = Connect(EmbeddedOptions(c), c.token);
  if (!target.ok()) return Fail(target.status());
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
    started = target->local->Start(*wf, *inputs, so);
  }
  if (!started.ok()) {
    if (target->local) target->local->Close().IgnoreError();  // the start failed; nothing to lose
    return Fail(started.status());
  }
  std::string id = (*started)["id"];
  if (a.detach) {
    // Printed as soon as it is durably created. An embedded node then lets
    // the process run until it rests before it stops.
    std::cout << (c.json ? started->dump() : id) << std::endl;
    if (target->remote) return kExitOk;
    auto rested = RestAndClose(c, *target, id, kNoTimeout);
    return rested.ok() ? kExitOk : Fail(rested.status());
  }
  Progress progress;
  std::function<void(const Json&)> on_change;
  if (!c.json && isatty(STDERR_FILENO)) {
    std::cerr << id << "  " << wf->name << "\n";
    on_change = [&progress](const Json& s) { progress.Update(s); };
  }
  auto done = RestAndClose(c, *target, id, kNoTimeout, on_change);
  if (!done.ok()) return Fail(done.status());
  PrintSnapshot(c, *done);
  return ExitFor(*done);
}

int Wait(const Common& c, const std::string& id, double timeout_s) {
  if (Status known = CheckKnown(c, id); !known.ok()) return Fail(known);
  auto target = Connect(EmbeddedOptions(c), c.token);
  if (!target.ok()) return Fail(target.status());
  auto timeout = timeout_s > 0 ? std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000))
                               : kNoTimeout;
  auto done = RestAndClose(c, *target, id, timeout);
  if (!done.ok()) {
    if (done.status().code() == Status::Code::kTimedOut) {
      std::cerr << "keel: " << done.status().message() << "\n";
      return kExitAtRest;
    }
    return Fail(done.status());
  }
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
  if (Status known = CheckKnown(c, a.id); !known.ok()) return ControlFail(known);
  auto target = Connect(EmbeddedOptions(c), c.token);
  if (!target.ok()) return ControlFail(target.status());
  ControlOptions options;
  options.reason = a.reason;
  if (!a.by.empty()) options.by = a.by;
  Result<Json> accepted = Status::Internal("no control");
  if (target->remote) {
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
  } else {
    Node& node = *target->local;
    accepted = a.action == "pause"     ? node.Pause(a.id, options)
               : a.action == "resume"  ? node.Resume(a.id, options)
               : a.action == "cancel"  ? node.Cancel(a.id, options)
               : a.action == "retry"   ? node.Retry(a.id, options)
               : a.action == "approve" ? node.Approve(a.id, a.target, options)
               : a.action == "reject"  ? node.Reject(a.id, a.target, options)
                                       : node.Signal(a.id, a.target, payload, options);
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
  options.http_listen = a.listen;
  options.http_token = a.token;
  options.http_max_body = a.max_body;
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
  InstallStopSignals();
  auto node = Node::Open(options);
  if (!node.ok()) return Fail(node.status());
  std::string address;
  {
    std::ifstream info(c.data + "/node.json");
    std::stringstream text;
    text << info.rdbuf();
    Json parsed = Json::parse(text.str(), nullptr, false);
    if (!parsed.is_discarded()) address = parsed.value("address", "");
  }
  std::cerr << "keel: serving " << c.data << " on http://" << address << std::endl;
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
      auto list = (*node)->List(filter);
      if (list.ok()) moving += list->total;
    }
    if (moving == 0) break;
    std::this_thread::sleep_for(kServePoll);
  }
  Status closed = (*node)->Close();
  return closed.ok() ? kExitOk : Fail(closed);
}

}  // namespace keel::cli
