// The snapshot JSON of a ProcessState (INTERFACE.md) and its inverse. Every time is written twice: RFC 3339 for people (`*_at`, ms)
// and integer nanoseconds (`*_ns`, a keel extension) so StateFromJson is lossless.

#include <cstdio>
#include <exception>

#include "base/time.h"
#include "events/internal/json_util.h"
#include "events/state.h"

namespace keel::events {

using json = nlohmann::json;

// ---- helpers shared with state.cc and event_json.cc ------------------------

namespace internal {

json Text(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && static_cast<unsigned char>(s[i]) < 0x80) ++i;
  if (i == s.size()) return json(std::string(s));
  std::string out(s.substr(0, i));
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xE  ? 3
                 : (c >> 3) == 0x1E ? 4
                                    : 0;
    bool ok = len > 0 && i + len <= s.size();
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (size_t k = 1; ok && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      ok = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (ok) {  // no overlong forms, no surrogates, nothing past U+10FFFF
      ok = (len == 1) || (len == 2 && cp >= 0x80) ||
           (len == 3 && cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) ||
           (len == 4 && cp >= 0x10000 && cp <= 0x10FFFF);
    }
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out.append("\xEF\xBF\xBD");
      ++i;
    }
  }
  return json(std::move(out));
}

json ParseJsonField(std::string_view text, json if_empty) {
  if (text.empty()) return if_empty;
  if (text == "{}") return json::object();  // the common case, without the parser
  json value = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return Text(text);
  return value;
}

}  // namespace internal

// ---- ToJson ----------------------------------------------------------------

namespace {

using internal::Text;

// The objects below are built by Put, in ascending key order: a braced list
// would first build every pair as a temporary JSON array, and a plain insert
// searches the map for each key (ToJson runs at every rest of every process).

// Inserts at the end of `o`: no search when keys come in ascending order.
void Put(json::object_t& o, const char* key, json value) {
  o.emplace_hint(o.end(), key, std::move(value));
}

json TimeOrNull(int64_t ns) { return ns == 0 ? json(nullptr) : json(FormatTimeMs(ns)); }
json TextOrNull(std::string_view s) { return s.empty() ? json(nullptr) : Text(s); }
json ErrorJson(const std::optional<std::string>& e) { return e ? Text(*e) : json(nullptr); }

json ApprovalJson(const Approval& a) {
  json j = json::object();
  auto& o = j.get_ref<json::object_t&>();
  Put(o, "at", TimeOrNull(a.at_ns));
  Put(o, "at_ns", a.at_ns);
  Put(o, "by", TextOrNull(a.by));
  Put(o, "expires_at", TimeOrNull(a.expires_ns));
  Put(o, "expires_ns", a.expires_ns);
  Put(o, "prompt", Text(a.prompt));
  Put(o, "reason", TextOrNull(a.reason));
  Put(o, "rule", TextOrNull(a.rule));
  Put(o, "status", Text(a.status));
  return j;
}

json BranchJson(const BranchState& b) {
  json j = json::object();
  auto& o = j.get_ref<json::object_t&>();
  Put(o, "current_step", TextOrNull(b.current_step));
  Put(o, "current_task", TextOrNull(b.current_task));
  Put(o, "error", ErrorJson(b.error));
  Put(o, "fork_task", TextOrNull(b.fork_task));
  Put(o, "id", Text(b.id));
  Put(o, "index", b.index);
  Put(o, "item", b.item);
  Put(o, "name", TextOrNull(b.name));
  Put(o, "output", b.output);
  Put(o, "parent", TextOrNull(b.parent));
  Put(o, "parked_kind", TextOrNull(b.parked_kind));
  Put(o, "parked_on", TextOrNull(b.parked_on));
  Put(o, "status", Name(b.status));
  Put(o, "vars", b.vars);
  return j;
}

json TaskJson(const TaskState& t) {
  json j = json::object();
  auto& o = j.get_ref<json::object_t&>();
  Put(o, "approval", t.approval ? ApprovalJson(*t.approval) : json(nullptr));
  Put(o, "attempts", t.attempts);
  Put(o, "blocked_rule", TextOrNull(t.blocked_rule));
  Put(o, "branch", Text(t.branch));
  Put(o, "ended_at", TimeOrNull(t.ended_ns));
  Put(o, "ended_ns", t.ended_ns);
  Put(o, "error", ErrorJson(t.error));
  Put(o, "id", Text(t.id));
  Put(o, "idempotency_key", TextOrNull(t.idempotency_key));
  Put(o, "input", t.input);
  Put(o, "next", TextOrNull(t.next));
  Put(o, "output", t.output);
  Put(o, "policy_rule", TextOrNull(t.policy_rule));
  Put(o, "retry_at", TimeOrNull(t.retry_at_ns));
  Put(o, "retry_at_ns", t.retry_at_ns);
  Put(o, "scheduled_at", TimeOrNull(t.scheduled_ns));
  Put(o, "scheduled_ns", t.scheduled_ns);
  Put(o, "started_at", TimeOrNull(t.started_ns));
  Put(o, "started_ns", t.started_ns);
  Put(o, "status", Name(t.status));
  Put(o, "step", Text(t.step));
  Put(o, "visit", t.visit);
  return j;
}

// What the process waits for, derived from its parked branches and its pause.
// A parked branch's wait is listed only while its task still waits for it:
// a branch of a paused process stays parked after the approval was decided,
// the timer fired or the signal came, until the resume moves it on.
json WaitingOn(const ProcessState& s) {
  json out = json::array();
  // Its position in the queue is the node's to add (Node::Get).
  if (s.WaitsInQueue()) out.push_back({{"kind", "queue"}, {"queue", Text(s.queue)}});
  if (s.status == ProcessStatus::kPaused || s.status == ProcessStatus::kPauseRequested) {
    out.push_back({{"kind", "pause"}, {"reason", TextOrNull(s.pause_reason)}});
  }
  for (const BranchState& b : s.branches) {
    if (b.status != BranchStatus::kSuspended) continue;
    const TaskState* task = s.FindTask(b.parked_on);
    if (task != nullptr && IsTerminal(task->status)) continue;
    if (b.parked_kind == "signal") {
      json topic = nullptr;
      if (task != nullptr && task->input.is_object()) {
        if (auto it = task->input.find("topic"); it != task->input.end()) topic = *it;
      }
      bool arrived = false;
      for (const auto& signal : s.signals) arrived |= topic.is_string() && signal.topic == topic;
      if (arrived) continue;
      out.push_back({{"kind", "signal"}, {"topic", topic}, {"task", Text(b.parked_on)}});
    } else if (b.parked_kind == "timer") {
      json due = nullptr;
      for (const auto& [id, timer] : s.timers) {
        if (timer.task == b.parked_on) {
          due = FormatTimeMs(timer.due_ns);
          break;
        }
      }
      if (due.is_null()) continue;  // it fired
      out.push_back({{"kind", "timer"}, {"task", Text(b.parked_on)}, {"due", due}});
    } else if (b.parked_kind == "approval") {
      if (task == nullptr || task->status != TaskStatus::kWaitForApproval) continue;
      json prompt = nullptr;
      if (task != nullptr && task->approval) prompt = Text(task->approval->prompt);
      out.push_back({{"kind", "approval"},
                     {"task", Text(b.parked_on)},
                     {"step", task ? Text(task->step) : json(nullptr)},
                     {"prompt", prompt}});
    }
  }
  return out;
}

// The queue the process was started in (docs/queues.md), or null.
json QueueJson(const ProcessState& s) {
  if (s.queue.empty()) return nullptr;
  return {{"name", Text(s.queue)},
          {"priority", s.queue_priority},
          {"key", TextOrNull(s.queue_key)},
          {"admitted_at", TimeOrNull(s.admitted_ns)},
          {"admitted_ns", s.admitted_ns}};
}

// The keys of both the snapshot and the summary.
json CommonKeys(const ProcessState& s) {
  json j = json::object();
  auto& o = j.get_ref<json::object_t&>();
  Put(o, "created_at", TimeOrNull(s.created_ns));
  Put(o, "created_ns", s.created_ns);
  Put(o, "definition_hash", Text(s.definition_hash));
  Put(o, "ended_at", TimeOrNull(s.ended_ns));
  Put(o, "ended_ns", s.ended_ns);
  Put(o, "error", ErrorJson(s.error));
  Put(o, "id", Text(s.id));
  Put(o, "idempotency_key", TextOrNull(s.idempotency_key));
  Put(o, "inputs", s.inputs);
  Put(o, "last_hash", HexHash(s.last_hash));
  Put(o, "last_seq", s.last_seq);
  Put(o, "outputs", s.outputs);
  Put(o, "pause_reason", TextOrNull(s.pause_reason));
  Put(o, "queue", QueueJson(s));
  Put(o, "status", Name(s.status));
  Put(o, "updated_at", TimeOrNull(s.updated_ns));
  Put(o, "updated_ns", s.updated_ns);
  Put(o, "waiting_on", WaitingOn(s));
  Put(o, "workflow", Text(s.workflow));
  if (!s.forked_from.empty()) {
    Put(o, "forked_from", json{{"process", Text(s.forked_from)}, {"seq", s.forked_seq}});
  }
  return j;
}

}  // namespace

json ToJson(const ProcessState& s) {
  json j = CommonKeys(s);
  j["variables"] = s.variables();
  json& branches = j["branches"] = json::array();
  for (const BranchState& b : s.branches) branches.push_back(BranchJson(b));
  json& tasks = j["tasks"] = json::array();
  for (const TaskState& t : s.tasks) tasks.push_back(TaskJson(t));
  json& signals = j["signals"] = json::array();
  for (const PendingSignal& sig : s.signals) {
    signals.push_back({{"seq", sig.seq},
                       {"topic", Text(sig.topic)},
                       {"payload", sig.payload},
                       {"at", TimeOrNull(sig.at_ns)},
                       {"at_ns", sig.at_ns}});
  }
  json& timers = j["timers"] = json::array();
  for (const auto& [id, t] : s.timers) {
    timers.push_back({{"id", Text(t.id)},
                      {"due_ns", t.due_ns},
                      {"due", FormatTimeMs(t.due_ns)},
                      {"kind", Text(t.kind)},
                      {"task", Text(t.task)}});
  }
  return j;
}

json SummaryJson(const ProcessState& s) { return CommonKeys(s); }
json ProcessErrorJson(const ProcessState& s) { return ErrorJson(s.error); }

// ---- StateFromJson ---------------------------------------------------------

namespace {

// Thrown inside StateFromJson only, turned into a Corruption at its edge.
struct BadShape : std::exception {
  explicit BadShape(std::string m) : message(std::move(m)) {}
  const char* what() const noexcept override { return message.c_str(); }
  std::string message;
};

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  return it->get<std::string>();
}

std::optional<std::string> OptStr(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  return it->get<std::string>();
}

json Value(const json& j, const char* key, json if_absent = nullptr) {
  auto it = j.find(key);
  return it == j.end() ? if_absent : *it;
}

// A time from its `<base>_ns` integer, else from its RFC 3339 `<at_key>`.
int64_t Time(const json& j, const std::string& ns_key, const char* at_key) {
  if (auto it = j.find(ns_key); it != j.end() && !it->is_null()) return it->get<int64_t>();
  auto text = Str(j, at_key);
  if (text.empty()) return 0;
  auto ns = ParseTimeNs(text);
  if (!ns.ok()) throw BadShape(std::string("bad time in '") + at_key + "': " + text);
  return *ns;
}

template <typename T>
T Num(const json& j, const char* key, T if_absent) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return if_absent;
  return it->get<T>();
}

template <typename Enum>
Enum ParseStatus(std::optional<Enum> (*parse)(std::string_view), const json& j) {
  std::string name = Str(j, "status");
  auto status = parse(name);
  if (!status) throw BadShape("unknown status '" + name + "'");
  return *status;
}

std::string Unhex(const std::string& hex) {
  if (hex.size() % 2 != 0) throw BadShape("bad last_hash");
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw BadShape("bad last_hash");
  };
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<char>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
  }
  return out;
}

Approval ApprovalFromJson(const json& j) {
  Approval a;
  a.status = Str(j, "status");
  a.prompt = Str(j, "prompt");
  a.rule = Str(j, "rule");
  a.by = Str(j, "by");
  a.reason = Str(j, "reason");
  a.at_ns = Time(j, "at_ns", "at");
  a.expires_ns = Time(j, "expires_ns", "expires_at");
  return a;
}

const json& Array(const json& j, const char* key) {
  static const json* const kEmpty = new json(json::array());
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return *kEmpty;
  if (!it->is_array()) throw BadShape(std::string("'") + key + "' is not an array");
  return *it;
}

}  // namespace

Result<ProcessState> StateFromJson(const json& j) {
  if (!j.is_object()) return Status::Corruption("process state JSON is not an object");
  ProcessState s;
  try {
    s.id = Str(j, "id");
    s.workflow = Str(j, "workflow");
    s.definition_hash = Str(j, "definition_hash");
    s.idempotency_key = Str(j, "idempotency_key");
    s.status = ParseStatus(&ParseProcessStatus, j);
    s.inputs = Value(j, "inputs", json::object());
    s.outputs = Value(j, "outputs", json::object());
    s.error = OptStr(j, "error");
    s.created_ns = Time(j, "created_ns", "created_at");
    s.updated_ns = Time(j, "updated_ns", "updated_at");
    s.ended_ns = Time(j, "ended_ns", "ended_at");
    s.last_seq = Num<uint64_t>(j, "last_seq", 0);
    s.last_hash = Unhex(Str(j, "last_hash"));
    s.pause_reason = Str(j, "pause_reason");
    if (auto it = j.find("forked_from"); it != j.end() && it->is_object()) {
      s.forked_from = Str(*it, "process");
      s.forked_seq = Num<uint64_t>(*it, "seq", 0);
    }
    if (auto q = j.find("queue"); q != j.end() && q->is_object()) {
      s.queue = Str(*q, "name");
      s.queue_priority = Num<int32_t>(*q, "priority", 0);
      s.queue_key = Str(*q, "key");
      s.admitted_ns = Time(*q, "admitted_ns", "admitted_at");
    }

    for (const json& bj : Array(j, "branches")) {
      BranchState b;
      b.id = Str(bj, "id");
      b.parent = Str(bj, "parent");
      b.fork_task = Str(bj, "fork_task");
      b.name = Str(bj, "name");
      b.index = Num<int32_t>(bj, "index", -1);
      b.item = Value(bj, "item");
      b.status = ParseStatus(&ParseBranchStatus, bj);
      b.current_step = Str(bj, "current_step");
      b.current_task = Str(bj, "current_task");
      b.vars = Value(bj, "vars", json::object());
      b.output = Value(bj, "output");
      b.error = OptStr(bj, "error");
      b.parked_on = Str(bj, "parked_on");
      b.parked_kind = Str(bj, "parked_kind");
      if (s.FindBranch(b.id) != nullptr) throw BadShape("duplicate branch '" + b.id + "'");
      s.AddBranch(std::move(b));
    }

    for (const json& tj : Array(j, "tasks")) {
      std::string id = Str(tj, "id");
      if (s.FindTask(id) != nullptr) throw BadShape("duplicate task '" + id + "'");
      TaskState& t = s.AddTask(id);
      t.step = Str(tj, "step");
      t.branch = Str(tj, "branch");
      t.status = ParseStatus(&ParseTaskStatus, tj);
      t.attempts = Num<uint32_t>(tj, "attempts", 0);
      t.visit = Num<uint32_t>(tj, "visit", 1);
      t.input = Value(tj, "input", json::object());
      t.output = Value(tj, "output");
      t.error = OptStr(tj, "error");
      t.idempotency_key = Str(tj, "idempotency_key");
      t.scheduled_ns = Time(tj, "scheduled_ns", "scheduled_at");
      t.started_ns = Time(tj, "started_ns", "started_at");
      t.ended_ns = Time(tj, "ended_ns", "ended_at");
      t.retry_at_ns = Time(tj, "retry_at_ns", "retry_at");
      if (auto it = tj.find("approval"); it != tj.end() && !it->is_null()) {
        t.approval = ApprovalFromJson(*it);
      }
      t.blocked_rule = Str(tj, "blocked_rule");
      t.policy_rule = Str(tj, "policy_rule");
      t.next = Str(tj, "next");
    }

    for (const json& sj : Array(j, "signals")) {
      s.signals.push_back({Num<uint64_t>(sj, "seq", 0), Str(sj, "topic"), Value(sj, "payload"),
                           Time(sj, "at_ns", "at")});
    }
    for (const json& tj : Array(j, "timers")) {
      TimerState t;
      t.id = Str(tj, "id");
      t.due_ns = Time(tj, "due_ns", "due");
      t.kind = Str(tj, "kind");
      t.task = Str(tj, "task");
      s.timers[t.id] = std::move(t);
    }
  } catch (const std::exception& e) {
    // nlohmann's type errors and BadShape: a snapshot that keel did not write.
    return Status::Corruption(std::string("process state JSON: ") + e.what());
  }
  return s;
}

}  // namespace keel::events
