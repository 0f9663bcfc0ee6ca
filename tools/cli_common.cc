// Shared pieces of the keel CLI: errors, the read-only store, human output.

#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "tools/cli.h"

namespace keel::cli {

std::string DefaultDataDir() {
  const char* env = std::getenv("KEEL_DATA");
  return env && *env ? env : ".keel";
}

std::string DefaultToken() {
  const char* env = std::getenv("KEEL_TOKEN");
  return env ? env : "";
}

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

int ExitFor(const Json& snapshot) {
  int code = StatusExitCode(snapshot);
  return code < 0 ? kExitAtRest : code;
}

Status UnknownId(const std::string& id) {
  return Status::NotFound("no process with id '" + id + "'");
}

// InstallStopSignals and StopRequested: tools/signals.cc.

// ---- ReadOnlyStore -------------------------------------------------------------

Result<ReadOnlyStore> ReadOnlyStore::Open(const std::string& data_dir) {
  if (!std::filesystem::exists(data_dir + "/db")) {
    return Status::NotFound("no keel data in '" + data_dir + "'");
  }
  std::string scratch = (std::filesystem::temp_directory_path() / "keel-ro-XXXXXX").string();
  if (mkdtemp(scratch.data()) == nullptr) return Status::IOError("cannot make a scratch dir");
  auto store = store::EventStore::OpenReadOnly(data_dir, scratch);
  if (!store.ok()) {
    std::filesystem::remove_all(scratch);
    return store.status();
  }
  return ReadOnlyStore(std::move(*store), scratch);
}

ReadOnlyStore::ReadOnlyStore(std::unique_ptr<store::EventStore> store, std::string scratch)
    : store_(std::move(store)), scratch_(std::move(scratch)) {}

ReadOnlyStore::~ReadOnlyStore() {
  if (!store_) return;
  store_->Close().IgnoreError();  // read-only: nothing to lose
  store_.reset();
  std::error_code ec;
  std::filesystem::remove_all(scratch_, ec);
}

Result<events::ProcessState> ReadOnlyStore::Load(const std::string& id, uint64_t to_seq) {
  events::ProcessState state;
  uint64_t from = 1;
  auto snap = store_->LatestSnapshot(id, to_seq);
  if (!snap.ok()) return snap.status();
  if (*snap) {
    Json parsed = Json::parse((*snap)->state_json, nullptr, false);
    auto restored = events::StateFromJson(parsed);
    if (restored.ok()) {
      state = std::move(*restored);
      from = (*snap)->seq + 1;
    }
  }
  auto tail = store_->ReadStream(id, from, to_seq);
  if (!tail.ok()) return tail.status();
  if (from == 1 && tail->empty()) return UnknownId(id);
  for (const auto& e : *tail) KEEL_RETURN_IF_ERROR(events::Apply(state, e));
  return state;
}

Result<events::ProcessState> ReadOnlyStore::Replay(const std::string& id, uint64_t to_seq) {
  auto log = store_->ReadStream(id, 1, to_seq);
  if (!log.ok()) return log.status();
  if (log->empty()) return UnknownId(id);
  events::ProcessState state;
  for (const auto& e : *log) KEEL_RETURN_IF_ERROR(events::Apply(state, e));
  return state;
}

Result<ReadOnlyStore> OpenForProcess(const std::string& data_dir, const std::string& id) {
  auto ro = ReadOnlyStore::Open(data_dir);
  if (!ro.ok() && ro.status().IsNotFound()) return UnknownId(id);
  return ro;
}

// ---- human output ----------------------------------------------------------------

namespace {

std::string Text(const Json& v) {
  if (v.is_null()) return "-";
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// Duration between two `*_ns` stamps, e.g. "12ms", "1.4s", "3m05s".
std::string Duration(const Json& from_ns, const Json& to_ns) {
  if (!from_ns.is_number_integer() || !to_ns.is_number_integer()) return "";
  int64_t from = from_ns.get<int64_t>(), to = to_ns.get<int64_t>();
  if (from <= 0 || to <= 0 || to < from) return "";
  double ms = static_cast<double>(to - from) / 1e6;
  std::ostringstream out;
  if (ms < 1000) {
    out << static_cast<int64_t>(ms) << "ms";
  } else if (ms < 60000) {
    out << std::fixed << std::setprecision(1) << ms / 1000 << "s";
  } else {
    auto s = static_cast<int64_t>(ms / 1000);
    out << s / 60 << "m" << std::setw(2) << std::setfill('0') << s % 60 << "s";
  }
  return out.str();
}

std::string WaitingOn(const Json& w) {
  std::string kind = Text(w.value("kind", Json()));
  std::string out = kind;
  if (w.contains("task") && !w["task"].is_null()) out += " at task " + Text(w["task"]);
  if (w.contains("topic") && !w["topic"].is_null()) out += ", topic " + Text(w["topic"]);
  if (w.contains("due") && !w["due"].is_null()) out += ", due " + Text(w["due"]);
  if (w.contains("prompt") && !w["prompt"].is_null()) out += ": " + Text(w["prompt"]);
  if (w.contains("reason") && !w["reason"].is_null()) out += ": " + Text(w["reason"]);
  return out;
}

void PrintTasks(const Json& s, const std::string& branch, const std::string& indent) {
  for (const auto& t : s["tasks"]) {
    if (t.value("branch", "") != branch) continue;
    std::cout << indent << Text(t["id"]) << "  " << Text(t["status"])
              << "  attempts=" << t.value("attempts", 0);
    std::string d = Duration(t.value("started_ns", Json()), t.value("ended_ns", Json()));
    if (!d.empty()) std::cout << "  " << d;
    if (t.contains("approval") && !t["approval"].is_null()) {
      const Json& a = t["approval"];
      std::cout << "  approval " << Text(a.value("status", Json()));
      if (a.contains("by") && !a["by"].is_null()) std::cout << " by " << Text(a["by"]);
      if (a.contains("reason") && !a["reason"].is_null())
        std::cout << " (" << Text(a["reason"]) << ")";
    }
    if (t.contains("error") && !t["error"].is_null()) std::cout << "  error: " << Text(t["error"]);
    std::cout << "\n";
  }
}

void PrintBranch(const Json& s, const Json& b, const std::string& indent) {
  std::string id = Text(b["id"]);
  std::cout << indent << "branch " << id << "  " << Text(b["status"]);
  if (b.contains("current_step") && !b["current_step"].is_null()) {
    std::cout << "  at " << Text(b["current_step"]);
  }
  std::cout << "\n";
  PrintTasks(s, id, indent + "  ");
  for (const auto& child : s["branches"]) {
    if (child.contains("parent") && child["parent"] == b["id"])
      PrintBranch(s, child, indent + "  ");
  }
}

}  // namespace

void PrintTree(const Json& s) {
  std::cout << Text(s["id"]) << "  " << Text(s["workflow"]) << "  " << Text(s["status"]);
  std::string total = Duration(s.value("created_ns", Json()), s.value("ended_ns", Json()));
  if (!total.empty()) std::cout << "  " << total;
  std::cout << "\n";
  std::cout << "  created " << Text(s["created_at"]) << ", updated " << Text(s["updated_at"])
            << ", last seq " << s.value("last_seq", 0) << "\n";
  if (s.contains("error") && !s["error"].is_null())
    std::cout << "  error: " << Text(s["error"]) << "\n";
  for (const auto& b : s["branches"]) {
    if (b.value("parent", Json()).is_null()) PrintBranch(s, b, "  ");
  }
  for (const auto& w : s["waiting_on"]) std::cout << "  waiting on " << WaitingOn(w) << "\n";
  if (s["status"] == "completed") std::cout << "  outputs: " << s["outputs"].dump() << "\n";
}

void PrintEventLine(const Json& e) {
  std::cout << Text(e["stream"]) << "  " << e["seq"] << "  " << Text(e["time"]) << "  "
            << Text(e["type"]) << "  " << Text(e["entity"]);
  if (e["actor"] != "system") std::cout << "  by " << Text(e["actor"]);
  if (!e["data"].empty()) std::cout << "  " << e["data"].dump();
  std::cout << "\n";
}

}  // namespace keel::cli
