// Shared pieces of the keel CLI: errors, the read-only store, human output.

#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "base/data_dir.h"
#include "store/load_state.h"
#include "events/schedule.h"
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

namespace {
bool json_errors = false;
}  // namespace

void SetJsonErrors(bool on) { json_errors = on; }

std::string ErrorCode(const Status& s) {
  switch (s.code()) {
    case Status::Code::kNotFound:
      return "not_found";
    case Status::Code::kInvalidArgument:
      return "invalid";
    case Status::Code::kRefused:
    case Status::Code::kConflict:
      return "conflict";
    case Status::Code::kUnauthorized:
      return "unauthorized";
    case Status::Code::kNotSupported:
      return "unsupported";
    case Status::Code::kBusy:
    case Status::Code::kAborted:
    case Status::Code::kTimedOut:
      return "unavailable";
    case Status::Code::kCorruption:
      return "corrupt";
    default:
      return "internal";
  }
}

void ReportError(const Status& s) {
  std::cerr << "keel: " << s.message() << "\n";
  if (json_errors) {
    Json error = {{"error", {{"code", ErrorCode(s)}, {"message", s.message()}}}};
    std::cout << error.dump(-1, ' ', false, Json::error_handler_t::replace) << std::endl;
  }
}

int Fail(const Status& s) {
  ReportError(s);
  switch (s.code()) {
    case Status::Code::kCorruption:
    case Status::Code::kNotSupported:
      return kExitCorrupt;
    default:
      return kExitBadInput;
  }
}

std::string ProcessStatusNames(const std::string& separator) {
  std::string out;
  for (auto s = static_cast<int>(events::ProcessStatus::kPending);
       s <= static_cast<int>(events::ProcessStatus::kFailed); ++s) {
    out += (out.empty() ? "" : separator) + events::Name(static_cast<events::ProcessStatus>(s));
  }
  return out;
}

int ExitFor(const Json& snapshot) {
  int code = StatusExitCode(snapshot);
  return code < 0 ? kExitAtRest : code;
}

Status UnknownId(const std::string& id) {
  return Status::NotFound("no process with id '" + id + "'");
}

// InstallStopSignals and StopRequested: tools/signals.cc.

Status CheckDataDir(const std::string& data_dir) {
  std::error_code ec;
  if (std::filesystem::is_directory(data_dir, ec)) return Status::OK();
  if (std::filesystem::exists(data_dir, ec)) {
    return Status::InvalidArgument("data dir '" + data_dir + "' is not a directory");
  }
  return Status::InvalidArgument("data dir '" + data_dir +
                                 "' does not exist (--data, else $KEEL_DATA, else ./.keel)");
}

// ---- ReadOnlyStore -------------------------------------------------------------

Result<ReadOnlyStore> ReadOnlyStore::Open(const std::string& data_dir) {
  KEEL_RETURN_IF_ERROR(CheckDataDir(data_dir));
  if (!std::filesystem::exists(data_dir::Db(data_dir))) {
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

namespace {

// A schedule's stream is no process: say where to look instead.
Status NotAProcess(const std::string& id) {
  return Status::NotFound("'" + id + "' is a schedule's stream, not a process (keel schedule show " +
                          id.substr(events::kScheduleStreamPrefix.size()) + ")");
}

}  // namespace

Result<events::ProcessState> ReadOnlyStore::Load(const std::string& id, uint64_t to_seq) {
  if (events::IsScheduleStream(id)) return NotAProcess(id);
  return store::LoadState(*store_, id, to_seq);
}

Result<events::ProcessState> ReadOnlyStore::Replay(const std::string& id, uint64_t to_seq) {
  if (events::IsScheduleStream(id)) return NotAProcess(id);
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

// Columns of stdout: its width on a terminal, else kEventLineWidth.
size_t OutputColumns() {
  struct winsize ws {};
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40) {
    return ws.ws_col;
  }
  return kEventLineWidth;
}

// `text` cut to at most `bytes` bytes on a UTF-8 character boundary, with "…".
std::string Ellipsize(const std::string& text, size_t bytes) {
  if (text.size() <= bytes) return text;
  size_t cut = bytes > 0 ? bytes - 1 : 0;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "\u2026";
}

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
  if (w.contains("queue") && !w["queue"].is_null()) out += " " + Text(w["queue"]);
  if (w.contains("position") && w["position"].is_number())
    out += ", position " + std::to_string(w["position"].get<uint64_t>());
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
  if (auto fork = s.find("forked_from"); fork != s.end() && fork->is_object()) {
    std::cout << "  forked from " << Text(fork->value("process", Json())) << " at seq "
              << fork->value("seq", 0) << "\n";
  }
  for (const auto& b : s["branches"]) {
    if (b.value("parent", Json()).is_null()) PrintBranch(s, b, "  ");
  }
  for (const auto& w : s["waiting_on"]) std::cout << "  waiting on " << WaitingOn(w) << "\n";
  for (const auto& t : s.value("timers", Json::array())) {
    std::string kind = Text(t.value("kind", Json())), task = Text(t.value("task", Json()));
    std::string due = Text(t.value("due", Json()));
    if (kind == "timeout") {
      std::cout << "  signal wait of " << task << " times out at " << due << "\n";
    } else if (kind == "expiry") {
      std::cout << "  approval of " << task << " expires at " << due << "\n";
    } else if (kind == "retry") {
      std::cout << "  " << task << " retries at " << due << "\n";
    } else if (kind != "sleep") {  // a sleep is in "waiting on"
      std::cout << "  timer " << Text(t.value("id", Json())) << " due " << due << "\n";
    }
  }
  for (const auto& sig : s.value("signals", Json::array())) {
    std::cout << "  signal " << Text(sig.value("topic", Json())) << " received "
              << Text(sig.value("at", Json())) << ", not yet consumed";
    Json payload = sig.value("payload", Json());
    if (!payload.is_null()) {
      std::cout << ": "
                << Ellipsize(payload.dump(-1, ' ', false, Json::error_handler_t::replace),
                             kEventLineWidth / 2);
    }
    std::cout << "\n";
  }
  if (s["status"] == "completed") std::cout << "  outputs: " << s["outputs"].dump() << "\n";
}

namespace {

// An RFC 3339 time to milliseconds: "...T17:47:37.934450974Z" -> "...T17:47:37.934Z".
std::string Milliseconds(std::string time) {
  auto dot = time.find('.');
  if (dot != std::string::npos && time.size() > dot + 4 && time.back() == 'Z') {
    time = time.substr(0, dot + 4) + "Z";
  }
  return time;
}

}  // namespace

void PrintEventLine(const Json& e, bool with_stream, bool wide) {
  std::ostringstream head;
  if (with_stream) head << Text(e["stream"]) << "  ";
  head << std::setw(4) << e.value("seq", uint64_t{0}) << "  "
       << (wide ? Text(e["time"]) : Milliseconds(Text(e["time"]))) << "  "
       << std::left << std::setw(22) << Text(e["type"]) << "  " << Text(e["entity"]);
  if (e["actor"] != "system") head << "  by " << Text(e["actor"]);
  std::string line = head.str();
  if (!e["data"].empty()) {
    std::string data = e["data"].dump(-1, ' ', false, Json::error_handler_t::replace);
    size_t room = OutputColumns();
    room = room > line.size() + 3 ? room - line.size() - 2 : 1;  // at least the ellipsis
    line += "  " + (wide ? data : Ellipsize(data, room));
  }
  std::cout << line << "\n";
}

}  // namespace keel::cli
