#include "runtime/internal/fork_planner.h"

#include <set>

#include "actors/interpreter.h"
#include "events/state.h"

namespace keel::runtime {
namespace {

std::string Quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string_view View(const flatbuffers::String* s) {
  return s ? std::string_view(s->data(), s->size()) : std::string_view();
}

void CollectActivities(const std::vector<Step>& steps, std::vector<const Step*>& out) {
  for (const auto& s : steps) {
    if (s.kind == StepKind::kActivity) out.push_back(&s);
    for (const auto& [_, branch] : s.branches) CollectActivities(branch, out);
    CollectActivities(s.steps, out);
  }
}

// How many plans the check may look ahead before the chosen task begins: the
// first plan begins it unless something else comes first (a branch waking,
// a running attempt started again).
constexpr int kLookAhead = 16;

// Whether a node that loads `state` goes on by beginning `task` again: the
// interpreter's plans from that state, folded one after the other as the
// process actor folds them, schedule `task` before they run out.
Status CheckResumable(const ForkContext& context, std::shared_ptr<const Workflow> workflow,
                      events::ProcessState state, const events::ForkCut& cut) {
  actors::Interpreter interpreter(std::move(workflow), context.has_activity, context.gates);
  std::set<std::string> executing;
  const int64_t now = std::max(context.now_ns, state.updated_ns);
  for (int i = 0; i < kLookAhead; ++i) {
    actors::Plan plan = interpreter.Next(state, executing, now);
    if (plan.empty()) break;
    for (auto& draft : plan.events) {
      events::Stamp(draft, state.last_seq + 1, now);
      auto event = events::StoredEvent::Unsealed(draft);
      if (event.type() == events::EventType::TaskScheduled && event.entity() == cut.task)
        return Status::OK();
      KEEL_RETURN_IF_ERROR(events::Apply(state, event));
    }
    for (const auto& t : plan.cancel) executing.erase(t);
    for (const auto& t : plan.launch) executing.insert(t);
  }
  return Status::Refused("");
}

// The source's log is cut right after a retry of the process recorded
// itself: the task it started again is not new, so from there nothing would
// begin it.
bool CutInsideRetry(const std::vector<events::StoredEvent>& log, uint64_t cut_seq) {
  for (uint64_t seq = cut_seq; seq >= 2 && seq + 3 > cut_seq; --seq) {
    if (log[seq - 1].type() == events::EventType::ProcessRetried) return true;
  }
  return false;
}

}  // namespace

Result<ForkPlan> PlanFork(const ForkContext& context, const std::string& source,
                          const std::string& id, const ForkOptions& options) {
  if (options.from.empty()) return Status::InvalidArgument("a fork needs the step to start from");
  auto log = context.store->ReadStream(source);
  if (!log.ok()) return log.status();
  if (log->empty()) return Status::NotFound("no process with id " + Quoted(source));
  const events::StoredEvent& first = log->front();
  if (first.type() != events::EventType::ProcessCreated) {
    return Status::Corruption("process " + Quoted(source) + ": seq 1 is not ProcessCreated");
  }
  const auto* created = first.envelope().body_as_ProcessCreated();
  auto workflow = context.definition(std::string(View(created->definition_hash())));
  if (!workflow.ok()) return workflow.status();
  const Workflow& wf = **workflow;

  // `from`: a step of the workflow, or a task id the source had.
  const bool is_step = wf.FindStep(options.from) != nullptr;
  bool is_task = false;
  for (const auto& e : *log) {
    if (e.type() == events::EventType::TaskScheduled && e.entity() == options.from) {
      is_task = true;
      break;
    }
  }
  if (!is_step && !is_task) {
    return Status::NotFound("workflow " + Quoted(wf.name) + " has no step " + Quoted(options.from) +
                            ", nor process " + Quoted(source) + " a task of that id");
  }
  if (!is_step && options.visit != 0) {
    return Status::InvalidArgument(Quoted(options.from) +
                                   " is a task id: it names one visit already (no --visit)");
  }

  std::string inputs_json(View(created->inputs_json()));
  if (options.inputs) {
    if (!options.inputs->is_object())
      return Status::InvalidArgument("the fork's inputs must be a JSON object");
    auto resolved = ResolveInputs(wf, *options.inputs);
    if (!resolved.ok()) return resolved.status();
    inputs_json = resolved->dump();
  }
  std::vector<const Step*> activities;
  CollectActivities(wf.steps, activities);
  for (const Step* s : activities) {
    if (!context.has_activity(s->activity)) {
      return Status::InvalidArgument(wf.source + ":" + std::to_string(s->line) + ": step '" +
                                     s->id + "': activity '" + s->activity + "' is not registered");
    }
  }

  auto cut = events::FindForkCut(*log, options.from, options.visit);
  if (!cut.ok()) return cut.status();
  auto stream = events::ForkedStream(
      *log, cut->seq,
      {.id = id, .actor = options.actor, .inputs_json = inputs_json, .time_ns = context.now_ns});
  if (!stream.ok()) return stream.status();

  // The state a node loads from the new stream, folded as verify will fold it.
  events::ProcessState state;
  for (const auto& draft : *stream) {
    Status folded = events::Apply(state, events::StoredEvent::Unsealed(draft));
    if (!folded.ok()) {
      return Status::Internal("the fork of " + Quoted(source) +
                              " does not fold: " + folded.message());
    }
  }
  if (!CheckResumable(context, *workflow, std::move(state), *cut).ok()) {
    std::string why = "process " + Quoted(source) + " cannot go on from seq " +
                      std::to_string(cut->seq) + " (before task " + Quoted(cut->task) +
                      " began): resumed there, it would not begin " + Quoted(cut->task) + " again";
    if (CutInsideRetry(*log, cut->seq)) {
      why +=
          "; that visit began in a retry of the process, which starts the failed task "
          "again in the same step: fork from the visit before it";
    }
    return Status::Refused(why);
  }
  return ForkPlan{id, std::move(*cut), std::move(*stream)};
}

}  // namespace keel::runtime
