// keel: the command-line tool (INTERFACE.md). Run and control commands embed a
// node on the data dir; read commands open the store as a read-only secondary
// instance, so they never stop or block a live node.

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "events/state.h"
#include "keel/node.h"
#include "store/event_store.h"

namespace {

using keel::Json;
using keel::Status;

// Exit codes of INTERFACE.md.
constexpr int kExitOk = 0;
constexpr int kExitBadInput = 2;
constexpr int kExitCorrupt = 5;

int Fail(const Status& s) {
  std::cerr << "keel: " << s.message() << "\n";
  switch (s.code()) {
    case Status::Code::kCorruption:
    case Status::Code::kNotSupported:
      return kExitCorrupt;
    default:
      return kExitBadInput;
  }
}

std::string DefaultDataDir() {
  const char* env = std::getenv("KEEL_DATA");
  return env && *env ? env : ".keel";
}

// A read-only view of a data dir: a RocksDB secondary with its own scratch dir.
class ReadOnlyStore {
 public:
  static keel::Result<ReadOnlyStore> Open(const std::string& data_dir) {
    if (!std::filesystem::exists(data_dir + "/db")) {
      return Status::NotFound("no keel data in '" + data_dir + "'");
    }
    std::string scratch = (std::filesystem::temp_directory_path() / "keel-ro-XXXXXX").string();
    if (mkdtemp(scratch.data()) == nullptr) return Status::IOError("cannot make a scratch dir");
    auto store = keel::store::EventStore::OpenReadOnly(data_dir, scratch);
    if (!store.ok()) {
      std::filesystem::remove_all(scratch);
      return store.status();
    }
    return ReadOnlyStore(std::move(*store), scratch);
  }
  ReadOnlyStore(ReadOnlyStore&&) = default;
  ~ReadOnlyStore() {
    if (store_) {
      store_->Close().IgnoreError();
      store_.reset();
      std::error_code ec;
      std::filesystem::remove_all(scratch_, ec);
    }
  }
  keel::store::EventStore* operator->() { return store_.get(); }

  // Snapshot + tail, folded.
  keel::Result<keel::events::ProcessState> Load(const std::string& id, uint64_t to_seq = UINT64_MAX) {
    keel::events::ProcessState state;
    uint64_t from = 1;
    auto snap = store_->LatestSnapshot(id, to_seq);
    if (!snap.ok()) return snap.status();
    if (*snap) {
      Json parsed = Json::parse((*snap)->state_json, nullptr, false);
      auto restored = keel::events::StateFromJson(parsed);
      if (restored.ok()) {
        state = std::move(*restored);
        from = (*snap)->seq + 1;
      }
    }
    auto tail = store_->ReadStream(id, from, to_seq);
    if (!tail.ok()) return tail.status();
    if (from == 1 && tail->empty()) return Status::NotFound("no process with id '" + id + "'");
    for (const auto& e : *tail) KEEL_RETURN_IF_ERROR(keel::events::Apply(state, e));
    return state;
  }

 private:
  ReadOnlyStore(std::unique_ptr<keel::store::EventStore> s, std::string scratch)
      : store_(std::move(s)), scratch_(std::move(scratch)) {}
  std::unique_ptr<keel::store::EventStore> store_;
  std::string scratch_;
};

std::string Ago(const Json& t) { return t.is_string() ? t.get<std::string>() : "-"; }

std::string Text(const Json& v) {
  if (v.is_null()) return "-";
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// Duration between two RFC 3339 ms stamps of a snapshot, e.g. "12ms", "1.4s".
std::string Duration(const Json& from, const Json& to) {
  if (!from.is_string() || !to.is_string()) return "";
  auto parse = [](const std::string& s) -> double {
    std::tm tm{};
    int ms = 0;
    if (sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &ms) < 6)
      return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return static_cast<double>(timegm(&tm)) * 1000.0 + ms;
  };
  double d = parse(to.get<std::string>()) - parse(from.get<std::string>());
  std::ostringstream out;
  if (d < 1000) out << static_cast<int64_t>(d) << "ms";
  else out << std::fixed << std::setprecision(1) << d / 1000 << "s";
  return out.str();
}

// process → branches → tasks, for people.
void PrintTree(const Json& s) {
  std::cout << s["id"].get<std::string>() << "  " << s["workflow"].get<std::string>() << "  "
            << s["status"].get<std::string>();
  std::string total = Duration(s["created_at"], s["ended_at"]);
  if (!total.empty()) std::cout << "  " << total;
  std::cout << "\n";
  if (!s["error"].is_null()) std::cout << "  error: " << Text(s["error"]) << "\n";
  for (const auto& b : s["branches"]) {
    std::cout << "  branch " << b["id"].get<std::string>() << "  " << b["status"].get<std::string>();
    if (!b["current_step"].is_null()) std::cout << "  at " << Text(b["current_step"]);
    std::cout << "\n";
    for (const auto& t : s["tasks"]) {
      if (t["branch"] != b["id"]) continue;
      std::cout << "    " << t["id"].get<std::string>() << "  " << t["status"].get<std::string>()
                << "  attempts=" << t["attempts"];
      std::string d = Duration(t["started_at"], t["ended_at"]);
      if (!d.empty()) std::cout << "  " << d;
      if (!t["approval"].is_null()) {
        std::cout << "  approval=" << Text(t["approval"]["status"]);
        if (!t["approval"]["by"].is_null()) std::cout << " by " << Text(t["approval"]["by"]);
      }
      if (!t["error"].is_null()) std::cout << "  error: " << Text(t["error"]);
      std::cout << "\n";
    }
  }
  for (const auto& w : s["waiting_on"]) std::cout << "  waiting on " << w.dump() << "\n";
  if (s["status"] == "completed") std::cout << "  outputs: " << s["outputs"].dump() << "\n";
}

void PrintEventLine(const Json& e) {
  std::cout << e["seq"] << "  " << e["time"].get<std::string>() << "  " << e["type"].get<std::string>()
            << "  " << e["entity"].get<std::string>();
  if (e["actor"] != "system") std::cout << "  by " << e["actor"].get<std::string>();
  if (!e["data"].empty()) std::cout << "  " << e["data"].dump();
  std::cout << "\n";
}

int ExitFor(const Json& snapshot) {
  int code = keel::StatusExitCode(snapshot);
  return code < 0 ? 4 : code;
}

struct Common {
  std::string data = DefaultDataDir();
  bool json = false;
};

// ---- run -----------------------------------------------------------------

struct RunArgs {
  std::string file;
  std::vector<std::string> input;
  std::string inputs;
  std::string id, idempotency_key;
  bool detach = false;
};

keel::Result<Json> ParseInputs(const RunArgs& a) {
  Json inputs = Json::object();
  if (!a.inputs.empty()) {
    std::string text = a.inputs;
    if (text[0] == '@') {
      std::ifstream f(text.substr(1));
      if (!f) return Status::InvalidArgument("cannot read inputs file '" + text.substr(1) + "'");
      std::stringstream ss;
      ss << f.rdbuf();
      text = ss.str();
    }
    inputs = Json::parse(text, nullptr, false);
    if (inputs.is_discarded() || !inputs.is_object()) {
      return Status::InvalidArgument("--inputs must be a JSON object");
    }
  }
  for (const auto& kv : a.input) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return Status::InvalidArgument("--input expects k=v, got '" + kv + "'");
    std::string value = kv.substr(eq + 1);
    Json parsed = Json::parse(value, nullptr, false);
    inputs[kv.substr(0, eq)] = parsed.is_discarded() ? Json(value) : parsed;
  }
  return inputs;
}

keel::Result<std::unique_ptr<keel::Node>> OpenNode(const Common& c) {
  keel::Options options;
  options.data_dir = c.data;
  options.exec_policy = keel::ExecPolicy::kFull;
  // A node shutting down may still hold the lock: retry for up to 10 s.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    auto node = keel::Node::Open(options);
    if (node.ok() || node.status().code() != Status::Code::kBusy ||
        std::chrono::steady_clock::now() > deadline) {
      return node;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
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
      if (!t["error"].is_null()) std::cerr << "  " << Text(t["error"]);
      std::cerr << "\n";
    }
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> seen_;
};

int Run(const Common& c, const RunArgs& a) {
  auto wf = keel::LoadWorkflowFile(a.file);
  if (!wf.ok()) return Fail(wf.status());
  auto inputs = ParseInputs(a);
  if (!inputs.ok()) return Fail(inputs.status());
  auto node = OpenNode(c);
  if (!node.ok()) return Fail(node.status());
  keel::StartOptions so;
  so.id = a.id;
  so.idempotency_key = a.idempotency_key;
  auto started = (*node)->Start(*wf, *inputs, so);
  if (!started.ok()) return Fail(started.status());
  std::string id = (*started)["id"];
  if (a.detach) {
    // Printed as soon as it is durably created; this embedded node then lets
    // the process run until it rests before it stops.
    std::cout << (c.json ? started->dump() : id) << std::endl;
    auto rested = (*node)->Wait(id, std::chrono::hours(24 * 365));
    Status closed = (*node)->Close();
    if (!rested.ok()) return Fail(rested.status());
    return closed.ok() ? kExitOk : Fail(closed);
  }
  Progress progress;
  std::function<void()> unsubscribe;
  if (!c.json && isatty(STDERR_FILENO)) {
    std::cerr << id << "  " << wf->name << "\n";
    auto sub = (*node)->Subscribe(id, [&progress](const Json& s) { progress.Update(s); });
    if (sub.ok()) unsubscribe = *sub;
  }
  auto done = (*node)->Wait(id, std::chrono::hours(24 * 365));
  if (unsubscribe) unsubscribe();
  Status closed = (*node)->Close();
  if (!done.ok()) return Fail(done.status());
  if (!closed.ok()) return Fail(closed);
  if (c.json) std::cout << done->dump() << "\n";
  else PrintTree(*done);
  return ExitFor(*done);
}

int Wait(const Common& c, const std::string& id, double timeout_s) {
  {
    auto ro = ReadOnlyStore::Open(c.data);
    if (!ro.ok()) return Fail(ro.status().IsNotFound() ? Status::NotFound("no process with id '" + id + "'") : ro.status());
    auto st = ro->Load(id);
    if (!st.ok()) return Fail(st.status());
  }
  auto node = OpenNode(c);
  if (!node.ok()) return Fail(node.status());
  auto timeout = timeout_s > 0 ? std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000))
                               : std::chrono::milliseconds(std::chrono::hours(24 * 365));
  auto done = (*node)->Wait(id, timeout);
  Status closed = (*node)->Close();
  if (!done.ok()) {
    if (done.status().code() == Status::Code::kTimedOut) {
      std::cerr << "keel: " << done.status().message() << "\n";
      return 4;
    }
    return Fail(done.status());
  }
  if (!closed.ok()) return Fail(closed);
  if (c.json) std::cout << done->dump() << "\n";
  else PrintTree(*done);
  return ExitFor(*done);
}

// ---- read commands ---------------------------------------------------------

int Show(const Common& c, const std::string& id) {
  auto ro = ReadOnlyStore::Open(c.data);
  if (!ro.ok()) return Fail(ro.status().IsNotFound() ? Status::NotFound("no process with id '" + id + "'") : ro.status());
  auto st = ro->Load(id);
  if (!st.ok()) return Fail(st.status());
  Json s = keel::events::ToJson(*st);
  if (c.json) std::cout << s.dump() << "\n";
  else PrintTree(s);
  return kExitOk;
}

int Events(const Common& c, const std::string& id, uint64_t from) {
  auto ro = ReadOnlyStore::Open(c.data);
  if (!ro.ok()) return Fail(ro.status().IsNotFound() ? Status::NotFound("no process with id '" + id + "'") : ro.status());
  auto last = (*ro)->LastSeq(id);
  if (!last.ok()) return Fail(last.status());
  if (*last == 0) return Fail(Status::NotFound("no process with id '" + id + "'"));
  auto evs = (*ro)->ReadStream(id, std::max<uint64_t>(from, 1));
  if (!evs.ok()) return Fail(evs.status());
  for (const auto& e : *evs) {
    Json line = keel::events::ToJson(e);
    if (c.json) std::cout << line.dump() << "\n";
    else PrintEventLine(line);
  }
  return kExitOk;
}

int Ls(const Common& c, const std::string& status, const std::string& workflow, size_t limit, size_t offset) {
  Json out = {{"processes", Json::array()}, {"total", 0}, {"limit", limit}, {"offset", offset}, {"has_more", false}};
  std::optional<keel::events::ProcessStatus> st;
  if (!status.empty()) {
    st = keel::events::ParseProcessStatus(status);
    if (!st) return Fail(Status::InvalidArgument("unknown status '" + status + "'"));
  }
  auto ro = ReadOnlyStore::Open(c.data);
  if (ro.ok()) {
    auto ids = (*ro)->ListProcesses(st, workflow, {limit, offset});
    if (!ids.ok()) return Fail(ids.status());
    for (const auto& id : ids->ids) {
      auto s = ro->Load(id);
      if (s.ok()) out["processes"].push_back(keel::events::SummaryJson(*s));
    }
    out["total"] = ids->total;
    out["has_more"] = offset + ids->ids.size() < ids->total;
  } else if (!ro.status().IsNotFound()) {
    return Fail(ro.status());
  }
  if (c.json) {
    std::cout << out.dump() << "\n";
    return kExitOk;
  }
  std::printf("%-30s %-16s %-16s %-24s %s\n", "ID", "WORKFLOW", "STATUS", "CREATED", "UPDATED");
  for (const auto& p : out["processes"]) {
    std::printf("%-30s %-16s %-16s %-24s %s\n", p["id"].get<std::string>().c_str(),
                p["workflow"].get<std::string>().c_str(), p["status"].get<std::string>().c_str(),
                Ago(p["created_at"]).c_str(), Ago(p["updated_at"]).c_str());
  }
  std::printf("%zu of %llu\n", out["processes"].size(),
              static_cast<unsigned long long>(out["total"].get<uint64_t>()));
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"keel: a durable workflow runtime"};
  app.require_subcommand(1);
  Common common;
  auto add_common = [&](CLI::App* cmd) {
    cmd->add_option("--data", common.data, "data dir (default $KEEL_DATA, else ./.keel)");
    cmd->add_flag("--json", common.json, "JSON output");
  };

  RunArgs run;
  auto* run_cmd = app.add_subcommand("run", "run a workflow file until the process rests");
  run_cmd->add_option("FILE", run.file, "workflow file (YAML or JSON)")->required();
  run_cmd->add_option("--input", run.input, "an input k=v (v parsed as JSON if it is)");
  run_cmd->add_option("--inputs", run.inputs, "inputs as a JSON object, or @file");
  run_cmd->add_option("--id", run.id, "process id");
  run_cmd->add_option("--idempotency-key", run.idempotency_key, "start at most once per key");
  run_cmd->add_flag("--detach", run.detach, "return once the process is durably created");
  add_common(run_cmd);

  std::string id;
  double timeout = 0;
  auto* wait_cmd = app.add_subcommand("wait", "wait until a process rests");
  wait_cmd->add_option("ID", id)->required();
  wait_cmd->add_option("--timeout", timeout, "seconds");
  add_common(wait_cmd);

  auto* show_cmd = app.add_subcommand("show", "a process: branches, tasks, states");
  show_cmd->add_option("ID", id)->required();
  add_common(show_cmd);

  uint64_t from = 1;
  auto* events_cmd = app.add_subcommand("events", "the log of a process");
  events_cmd->add_option("ID", id)->required();
  events_cmd->add_option("--from", from, "first seq (inclusive)");
  add_common(events_cmd);

  std::string status, workflow;
  size_t limit = 50, offset = 0;
  auto* ls_cmd = app.add_subcommand("ls", "list processes, newest first");
  ls_cmd->add_option("--status", status);
  ls_cmd->add_option("--workflow", workflow);
  ls_cmd->add_option("--limit", limit);
  ls_cmd->add_option("--offset", offset);
  add_common(ls_cmd);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : kExitBadInput;
  }
  if (*run_cmd) return Run(common, run);
  if (*wait_cmd) return Wait(common, id, timeout);
  if (*show_cmd) return Show(common, id);
  if (*events_cmd) return Events(common, id, from);
  if (*ls_cmd) return Ls(common, status, workflow, limit, offset);
  return kExitBadInput;
}
