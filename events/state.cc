#include "events/state.h"

#include <algorithm>
#include <utility>

#include "events/internal/json_util.h"

namespace keel::events {
namespace {

using internal::ParseJsonField;
using internal::View;
using E = EventType;
using json = nlohmann::json;

// What an event is about, found while checking it, so that Apply looks each
// entity up once.
struct Target {
  const BranchState* branch = nullptr;
  const TaskState* task = nullptr;
};

std::string Quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

// A JSON text of the shapes that a replay meets most, parsed without
// nlohmann's parser (whose set-up per call costs more than these small values):
// integers of up to 18 digits, strings of printable ASCII without escapes,
// true, false, null, and arrays and objects of those, without white space.
// Builds exactly the value that json::parse would; Parse is false for
// anything else, which then goes to the real parser.
class SimpleJson {
 public:
  explicit SimpleJson(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  bool Parse(json* out) { return Value(out, 0) && p_ == end_; }

 private:
  static constexpr int kMaxDepth = 16;

  bool Value(json* out, int depth) {
    if (p_ == end_) return false;
    switch (*p_) {
      case '{':
        return Object(out, depth);
      case '[':
        return Array(out, depth);
      case '"': {
        std::string_view text;
        if (!String(&text)) return false;
        *out = std::string(text);
        return true;
      }
      case 't':
        return Literal("true", json(true), out);
      case 'f':
        return Literal("false", json(false), out);
      case 'n':
        return Literal("null", json(nullptr), out);
      default:
        return Number(out);
    }
  }

  bool Literal(std::string_view word, json value, json* out) {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) {
      return false;
    }
    p_ += word.size();
    *out = std::move(value);
    return true;
  }

  // -?(0|[1-9][0-9]*), at most 18 digits, followed by no fraction or
  // exponent: number_unsigned when not negative, as json::parse makes it.
  // "-0" is left to the parser.
  bool Number(json* out) {
    const bool negative = *p_ == '-';
    const char* digits = p_ + (negative ? 1 : 0);
    const char* q = digits;
    uint64_t value = 0;
    while (q != end_ && *q >= '0' && *q <= '9' && q - digits <= 18)
      value = value * 10 + (*q++ - '0');
    const ptrdiff_t n = q - digits;
    if (n == 0 || n > 18 || (n > 1 && *digits == '0') || (negative && value == 0)) return false;
    if (q != end_ && (*q == '.' || *q == 'e' || *q == 'E')) return false;
    p_ = q;
    if (negative) {
      *out = -static_cast<int64_t>(value);
    } else {
      *out = value;
    }
    return true;
  }

  bool String(std::string_view* text) {
    const char* start = ++p_;  // past the opening quote
    while (p_ != end_ && *p_ != '"') {
      const auto c = static_cast<unsigned char>(*p_);
      if (c < 0x20 || c > 0x7E || c == '\\') return false;
      ++p_;
    }
    if (p_ == end_) return false;
    *text = std::string_view(start, static_cast<size_t>(p_ - start));
    ++p_;  // the closing quote
    return true;
  }

  bool Object(json* out, int depth) {
    if (depth == kMaxDepth) return false;
    ++p_;
    *out = json::object();
    if (p_ != end_ && *p_ == '}') {
      ++p_;
      return true;
    }
    for (;;) {
      std::string_view key;
      if (p_ == end_ || *p_ != '"' || !String(&key)) return false;
      if (p_ == end_ || *p_++ != ':') return false;
      json value;
      if (!Value(&value, depth + 1)) return false;
      (*out)[std::string(key)] = std::move(value);  // a repeated key: the last wins, as in parse
      if (p_ == end_) return false;
      const char c = *p_++;
      if (c == '}') return true;
      if (c != ',') return false;
    }
  }

  bool Array(json* out, int depth) {
    if (depth == kMaxDepth) return false;
    ++p_;
    *out = json::array();
    if (p_ != end_ && *p_ == ']') {
      ++p_;
      return true;
    }
    for (;;) {
      json value;
      if (!Value(&value, depth + 1)) return false;
      out->push_back(std::move(value));
      if (p_ == end_) return false;
      const char c = *p_++;
      if (c == ']') return true;
      if (c != ',') return false;
    }
  }

  const char* p_;
  const char* const end_;
};

// ParseJsonField, with SimpleJson first.
json JsonField(std::string_view text, json if_empty = nullptr) {
  if (text.empty()) return if_empty;
  json value;
  if (SimpleJson(text).Parse(&value)) return value;
  return ParseJsonField(text, std::move(if_empty));
}

// Why `type` on `entity` is not allowed in `s`; empty when it is. Strings are
// built only on refusal, so the allowed path does not allocate.
std::string WhyNot(const ProcessState& s, EventType type, std::string_view entity, Target* target) {
  const bool created = s.last_seq > 0;
  if (type == E::ProcessCreated) {
    return created ? "process " + Quoted(s.id) + " already exists" : std::string();
  }
  if (!created) return "process is not created yet";
  switch (EntityOf(type)) {
    case EntityKind::kProcess:
      if (entity != s.id) return "entity " + Quoted(entity) + " is not the process";
      if (!Next(s.status, type)) return "process " + Quoted(s.id) + " is " + Name(s.status);
      if (type == E::ProcessAdmitted && !s.WaitsInQueue())
        return "process " + Quoted(s.id) + " waits in no queue";
      if (type == E::ProcessStarted && s.WaitsInQueue())
        return "process " + Quoted(s.id) + " is not admitted by queue " + Quoted(s.queue);
      return {};
    case EntityKind::kBranch: {
      const BranchState* b = s.FindBranch(entity);
      if (type == E::BranchStarted) {
        return b ? "branch " + Quoted(entity) + " already exists" : std::string();
      }
      if (b == nullptr) return "branch " + Quoted(entity) + " does not exist";
      if (!Next(b->status, type)) return "branch " + Quoted(entity) + " is " + Name(b->status);
      target->branch = b;
      return {};
    }
    case EntityKind::kTask: {
      const TaskState* t = s.FindTask(entity);
      if (t == nullptr) {
        if (type == E::TaskScheduled) return {};
        return "task " + Quoted(entity) + " does not exist";
      }
      if (!Next(t->status, type)) return "task " + Quoted(entity) + " is " + Name(t->status);
      target->task = t;
      return {};
    }
    case EntityKind::kSchedule:
      return "a schedule's event in a process's stream";
    case EntityKind::kNone:
      break;
  }
  return "unknown event type " + std::to_string(static_cast<int>(type));
}

Status Refuse(const StoredEvent& ev, std::string why) {
  return Status::Corruption("stream " + Quoted(ev.stream()) + " seq " + std::to_string(ev.seq()) +
                            ": " + EventTypeName(ev.type()) + " on " + Quoted(ev.entity()) +
                            " refused: " + why);
}

void MoveBranchOn(BranchState* b, std::string_view next) {
  if (b == nullptr) return;
  b->current_step.assign(next);
  b->current_task.clear();
}

std::string WithReason(std::string head, std::string_view reason) {
  if (!reason.empty()) head.append(": ").append(reason);
  return head;
}

void ApplyProcess(ProcessState& s, const StoredEvent& ev, const fb::Envelope& env) {
  const E type = env.body_type();
  s.status = *Next(s.status, type);
  const int64_t now = env.time_ns();
  switch (type) {
    case E::ProcessAdmitted:
      s.admitted_ns = now;
      break;
    case E::ProcessPauseRequested:
      s.pause_reason.assign(View(env.body_as_ProcessPauseRequested()->reason()));
      break;
    case E::ProcessPaused: {
      // Keeps the requested reason when the pause itself carries none.
      auto reason = View(env.body_as_ProcessPaused()->reason());
      if (!reason.empty()) s.pause_reason.assign(reason);
      break;
    }
    case E::ProcessResumed:
      s.pause_reason.clear();
      break;
    case E::ProcessCompleted: {
      auto outputs = View(env.body_as_ProcessCompleted()->outputs_json());
      if (!outputs.empty()) s.outputs = JsonField(outputs);
      s.ended_ns = now;
      break;
    }
    case E::ProcessFailed:
      s.error.emplace(View(env.body_as_ProcessFailed()->error()));
      s.ended_ns = now;
      break;
    case E::ProcessCancelled:
      s.ended_ns = now;
      break;
    case E::ProcessRetried:
      s.error.reset();
      s.ended_ns = 0;
      break;
    case E::SignalReceived: {
      const auto* b = env.body_as_SignalReceived();
      s.signals.push_back(
          {ev.seq(), std::string(View(b->topic())), JsonField(View(b->payload_json())), now});
      break;
    }
    case E::TimerScheduled: {
      const auto* b = env.body_as_TimerScheduled();
      std::string id(View(b->timer()));
      TimerState& t = s.timers[id];
      t.id = std::move(id);
      t.due_ns = b->due_ns();
      t.kind.assign(View(b->kind()));
      t.task.assign(View(b->task()));
      break;
    }
    case E::TimerFired:
      s.timers.erase(std::string(View(env.body_as_TimerFired()->timer())));
      break;
    case E::TimerCancelled:
      s.timers.erase(std::string(View(env.body_as_TimerCancelled()->timer())));
      break;
    default:
      break;
  }
}

void ApplyBranch(BranchState& b, const fb::Envelope& env) {
  const E type = env.body_type();
  b.status = *Next(b.status, type);
  switch (type) {
    case E::BranchWaiting:
      b.parked_on.assign(View(env.body_as_BranchWaiting()->task()));
      b.parked_kind = "join";
      break;
    case E::BranchSuspended: {
      const auto* body = env.body_as_BranchSuspended();
      b.parked_on.assign(View(body->task()));
      b.parked_kind.assign(View(body->kind()));
      break;
    }
    case E::BranchResumed:
      b.parked_on.clear();
      b.parked_kind.clear();
      break;
    case E::BranchCompleted: {
      auto output = View(env.body_as_BranchCompleted()->output_json());
      if (!output.empty()) b.output = JsonField(output);
      b.current_step.clear();
      b.current_task.clear();
      break;
    }
    case E::BranchFailed:
      b.error.emplace(View(env.body_as_BranchFailed()->error()));
      break;
    case E::VariablesSet: {
      json patch = JsonField(View(env.body_as_VariablesSet()->patch_json()));
      if (!patch.is_object()) break;  // nothing to merge; not worth failing a replay
      if (!b.vars.is_object()) b.vars = json::object();
      for (auto& [key, value] : patch.items()) b.vars[key] = std::move(value);
      break;
    }
    default:
      break;
  }
}

}  // namespace

// ---- ProcessState ----------------------------------------------------------

uint32_t ProcessState::Index::Hash(std::string_view id) {
  const uint64_t h = std::hash<std::string_view>{}(id);
  return static_cast<uint32_t>(h ^ (h >> 32));
}

template <class Is>
size_t ProcessState::Index::Find(std::string_view id, Is is) const {
  if (size_ == 0) return kNone;
  const uint32_t hash = Hash(id);
  const size_t mask = slots_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& slot = slots_[i];
    if (slot.position == 0) return kNone;
    if (slot.hash == hash && is(slot.position - 1)) return slot.position - 1;
  }
}

void ProcessState::Index::Insert(std::string_view id, size_t position) {
  if (position >= UINT32_MAX) return;  // left unindexed: lookups scan
  if (2 * (size_ + 1) > slots_.size()) Grow();
  const uint32_t hash = Hash(id);
  const size_t mask = slots_.size() - 1;
  size_t i = hash & mask;
  while (slots_[i].position != 0) i = (i + 1) & mask;
  slots_[i] = {hash, static_cast<uint32_t>(position + 1)};
  ++size_;
}

void ProcessState::Index::Grow() {
  std::vector<Slot> old =
      std::exchange(slots_, std::vector<Slot>(std::max<size_t>(16, 2 * slots_.size())));
  const size_t mask = slots_.size() - 1;
  for (const Slot& slot : old) {
    if (slot.position == 0) continue;
    size_t i = slot.hash & mask;
    while (slots_[i].position != 0) i = (i + 1) & mask;
    slots_[i] = slot;
  }
}

BranchState& ProcessState::AddBranch(BranchState branch) {
  branch_index_.Insert(branch.id, branches.size());
  return branches.emplace_back(std::move(branch));
}

const std::map<std::string, size_t, std::less<>>& ProcessState::NewestVisits() const {
  if (newest_scanned_ > tasks.size()) {  // tasks were replaced wholesale
    newest_visits_.clear();
    newest_scanned_ = 0;
  }
  for (; newest_scanned_ < tasks.size(); ++newest_scanned_) {
    const std::string& step = tasks[newest_scanned_].step;
    auto it = newest_visits_.find(step);
    if (it == newest_visits_.end())
      newest_visits_.emplace(step, newest_scanned_);
    else
      it->second = newest_scanned_;
  }
  return newest_visits_;
}

TaskState& ProcessState::AddTask(std::string_view id) {
  task_index_.Insert(id, tasks.size());
  TaskState& t = tasks.emplace_back();
  t.id.assign(id);
  return t;
}

const BranchState* ProcessState::FindBranch(std::string_view id) const {
  const size_t n = branches.size();
  auto is = [&](size_t i) { return i < n && branches[i].id == id; };
  if (size_t i = branch_index_.Find(id, is); i != Index::kNone) return &branches[i];
  if (branch_index_.size() == n) return nullptr;
  for (const BranchState& b : branches) {
    if (b.id == id) return &b;
  }
  return nullptr;
}

BranchState* ProcessState::FindBranch(std::string_view id) {
  return const_cast<BranchState*>(std::as_const(*this).FindBranch(id));
}

const TaskState* ProcessState::FindTask(std::string_view id) const {
  const size_t n = tasks.size();
  if (task_index_.size() == n) {
    // Ids are unique while the index is complete. A task's events mostly
    // follow its scheduling, so try the newest task before hashing.
    if (n > 0 && tasks.back().id == id) return &tasks.back();
  }
  auto is = [&](size_t i) { return i < n && tasks[i].id == id; };
  if (size_t i = task_index_.Find(id, is); i != Index::kNone) return &tasks[i];
  if (task_index_.size() == n) return nullptr;
  for (const TaskState& t : tasks) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

TaskState* ProcessState::FindTask(std::string_view id) {
  return const_cast<TaskState*>(std::as_const(*this).FindTask(id));
}

const nlohmann::json& ProcessState::variables() const {
  static const json* const kEmpty = new json(json::object());
  const BranchState* main = FindBranch("main");
  return main ? main->vars : *kEmpty;
}

// ---- the fold --------------------------------------------------------------

Status CheckTransition(const ProcessState& state, EventType type, std::string_view entity) {
  Target target;
  std::string why = WhyNot(state, type, entity, &target);
  if (why.empty()) return Status::OK();
  return Status::Refused(std::string(EventTypeName(type)) + ": " + why);
}

namespace {

// ProcessCreated: the process's identity, inputs and its start.
void ApplyCreated(ProcessState& s, std::string_view stream, const fb::Envelope& env, int64_t now) {
  const auto* b = env.body_as_ProcessCreated();
  s.id.assign(stream);
  s.workflow.assign(View(b->workflow()));
  s.definition_hash.assign(View(b->definition_hash()));
  s.inputs = JsonField(View(b->inputs_json()), json::object());
  s.idempotency_key.assign(View(b->idempotency_key()));
  s.forked_from.assign(View(b->forked_from()));
  s.forked_seq = b->forked_seq();
  s.queue.assign(View(b->queue()));
  s.queue_priority = b->queue_priority();
  s.queue_key.assign(View(b->queue_key()));
  s.created_ns = now;
  s.status = ProcessStatus::kPending;
}

// BranchStarted: the new branch, main or a fork's child.
BranchState StartedBranch(std::string_view entity, const fb::Envelope& env) {
  const E type = env.body_type();
  const auto* b = env.body_as_BranchStarted();
  BranchState branch;
  branch.id.assign(entity);
  branch.parent.assign(View(b->parent()));
  branch.fork_task.assign(View(b->fork_task()));
  branch.name.assign(View(b->name()));
  branch.index = b->index();
  branch.item = JsonField(View(b->item_json()));
  branch.vars = JsonField(View(b->vars_json()), json::object());
  branch.current_step.assign(View(b->first_step()));
  branch.status = *Next(BranchStatus::kPending, type);
  return branch;
}

// A task event: `t` (already moved to its new status) and the branch it
// moves on.
void ApplyTask(ProcessState& s, TaskState* t, BranchState* branch, const fb::Envelope& env,
               int64_t now) {
  const E type = env.body_type();
  switch (type) {
    case E::TaskScheduled: {
      const auto* b = env.body_as_TaskScheduled();
      t->step.assign(View(b->step()));
      t->branch.assign(View(b->branch()));
      t->input = JsonField(View(b->input_json()), json::object());
      t->visit = b->visit();
      t->policy_rule.assign(View(b->rule()));
      t->scheduled_ns = now;
      t->error.reset();
      t->ended_ns = 0;
      branch->current_step = t->step;
      branch->current_task = t->id;
      break;
    }
    case E::TaskStarted: {
      const auto* b = env.body_as_TaskStarted();
      t->attempts = b->attempt();
      t->idempotency_key.assign(View(b->idempotency_key()));
      t->retry_at_ns = 0;
      if (t->started_ns == 0) t->started_ns = now;
      break;
    }
    case E::TaskWaitingForApproval: {
      const auto* b = env.body_as_TaskWaitingForApproval();
      Approval& a = t->approval.emplace();
      a.status = "pending";
      a.prompt.assign(View(b->prompt()));
      a.rule.assign(View(b->rule()));
      a.expires_ns = b->expires_ns();
      break;
    }
    case E::TaskApproved:
    case E::TaskRejected: {
      const bool approved = type == E::TaskApproved;
      auto by = approved ? View(env.body_as_TaskApproved()->by())
                         : View(env.body_as_TaskRejected()->by());
      auto reason = approved ? View(env.body_as_TaskApproved()->reason())
                             : View(env.body_as_TaskRejected()->reason());
      Approval& a = t->approval ? *t->approval : t->approval.emplace();
      a.status = approved ? "approved" : "rejected";
      a.by.assign(by);
      a.reason.assign(reason);
      a.at_ns = now;
      if (!approved) {
        t->error = WithReason("rejected by " + std::string(by), reason);
        t->ended_ns = now;
        t->next.assign(View(env.body_as_TaskRejected()->next()));
        if (!t->next.empty()) MoveBranchOn(branch, t->next);
      }
      break;
    }
    case E::TaskBlocked: {
      const auto* b = env.body_as_TaskBlocked();
      t->blocked_rule.assign(View(b->rule()));
      t->error.emplace(View(b->reason()));
      t->ended_ns = now;
      break;
    }
    case E::TaskRetryScheduled: {
      const auto* b = env.body_as_TaskRetryScheduled();
      t->retry_at_ns = b->run_after_ns();
      t->error.emplace(View(b->error()));
      break;
    }
    case E::TaskCompleted: {
      const auto* b = env.body_as_TaskCompleted();
      t->output = JsonField(View(b->output_json()));
      t->error.reset();
      t->ended_ns = now;
      t->next.assign(View(b->next()));
      if (branch != nullptr) {
        branch->output = t->output;
        MoveBranchOn(branch, t->next);
      }
      if (uint64_t consumed = b->signal_seq(); consumed != 0) {
        for (auto it = s.signals.begin(); it != s.signals.end(); ++it) {
          if (it->seq == consumed) {
            s.signals.erase(it);
            break;
          }
        }
      }
      break;
    }
    case E::TaskFailed: {
      const auto* b = env.body_as_TaskFailed();
      t->error.emplace(View(b->error()));
      if (auto output = View(b->output_json()); !output.empty()) t->output = JsonField(output);
      t->ended_ns = now;
      t->next.assign(View(b->next()));
      if (!t->next.empty()) MoveBranchOn(branch, t->next);
      break;
    }
    case E::TaskSkipped: {
      t->next.assign(View(env.body_as_TaskSkipped()->next()));
      t->ended_ns = now;
      MoveBranchOn(branch, t->next);
      break;
    }
    case E::TaskCancelled:
      t->ended_ns = now;
      t->error = WithReason("cancelled", View(env.body_as_TaskCancelled()->reason()));
      break;
    default:
      break;
  }
}

}  // namespace

Status Apply(ProcessState& s, const StoredEvent& ev) {
  const fb::Envelope& env = ev.envelope();
  const E type = env.body_type();
  const uint64_t seq = env.seq();
  const std::string_view stream = ev.stream();
  const std::string_view entity = ev.entity();

  // Checks: nothing below may fail once the state is touched.
  if (seq != s.last_seq + 1) {
    return Refuse(ev, "expected seq " + std::to_string(s.last_seq + 1));
  }
  if (s.last_seq > 0 && stream != s.id) return Refuse(ev, "the state is of stream " + Quoted(s.id));
  if (s.last_seq == 0 && stream.empty()) return Refuse(ev, "empty stream id");
  Target target;
  if (std::string why = WhyNot(s, type, entity, &target); !why.empty()) return Refuse(ev, why);
  BranchState* task_branch = nullptr;  // the branch a TaskScheduled moves
  if (type == E::TaskScheduled) {
    auto branch = View(env.body_as_TaskScheduled()->branch());
    task_branch = s.FindBranch(branch);
    if (task_branch == nullptr) return Refuse(ev, "branch " + Quoted(branch) + " does not exist");
  }

  s.last_seq = seq;
  s.last_hash.assign(ev.hash());
  const int64_t now = env.time_ns();
  s.updated_ns = now;

  switch (EntityOf(type)) {
    case EntityKind::kProcess:
      if (type == E::ProcessCreated)
        ApplyCreated(s, stream, env, now);
      else
        ApplyProcess(s, ev, env);
      return Status::OK();
    case EntityKind::kBranch:
      if (type == E::BranchStarted)
        s.AddBranch(StartedBranch(entity, env));
      else
        ApplyBranch(*const_cast<BranchState*>(target.branch), env);
      return Status::OK();
    case EntityKind::kTask: {
      TaskState* t = const_cast<TaskState*>(target.task);
      if (t == nullptr) t = &s.AddTask(entity);  // first TaskScheduled
      t->status = *Next(t->status, type);
      BranchState* branch = type == E::TaskScheduled ? task_branch : s.FindBranch(t->branch);
      ApplyTask(s, t, branch, env, now);
      return Status::OK();
    }
    case EntityKind::kSchedule:
    case EntityKind::kNone:
      return Status::OK();  // unreachable: WhyNot refused it
  }
  return Status::OK();
}

}  // namespace keel::events
