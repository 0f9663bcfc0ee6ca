// keel fork ID --from STEP (docs/fork.md): a new process that starts from a
// process's state just before STEP began. Through the data dir's live node,
// or a node the command opens; like `run`, it waits until the new process
// rests and exits by its status (--detach: once its log is durable).

#include <unistd.h>

#include <iostream>

#include "base/validate.h"
#include "events/schedule.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/embedded_node.h"
#include "tools/live_display.h"
#include "tools/node_api.h"
#include "tools/signals.h"

namespace keel::cli {
namespace {

struct ForkArgs {
  std::string source;
  std::string from;
  uint32_t visit = 0;
  std::string inputs;              // --inputs JSON|@file: the new inputs, whole
  std::vector<std::string> input;  // --input k=v: changes over --inputs or the source's
  std::string id;
  std::string by;
  bool detach = false;
  bool until_done = false;
  double timeout_s = 0;
};

// The fork's inputs: none given keeps the source's (nullopt); --inputs
// replaces them; --input k=v sets keys over --inputs, or over the source's.
Result<std::optional<Json>> ForkInputs(const Common& c, const ForkArgs& a) {
  if (a.inputs.empty() && a.input.empty()) return std::optional<Json>();
  RunArgs parse;
  parse.inputs = a.inputs;
  parse.input = a.input;
  if (a.inputs.empty()) {
    auto ro = OpenForProcess(c.data, a.source);
    if (!ro.ok()) return ro.status();
    auto source = ro->Load(a.source);
    if (!source.ok()) return source.status();
    parse.inputs = source->inputs.dump();
  }
  auto inputs = ParseInputs(parse);
  if (!inputs.ok()) return inputs.status();
  return std::optional<Json>(std::move(*inputs));
}

// Fails an unknown source before any node is opened (an embedded node would
// resume the dir's other processes for nothing).
Status CheckSource(const Common& c, const std::string& id) {
  if (events::IsScheduleStream(id)) return UnknownId(id);
  auto ro = OpenForProcess(c.data, id);
  if (!ro.ok()) return ro.status();
  auto last = (*ro)->LastSeq(id);
  if (!last.ok()) return last.status();
  return *last == 0 ? UnknownId(id) : Status::OK();
}

void PrintSnapshot(const Common& c, const Json& snapshot) {
  if (c.json) {
    std::cout << snapshot.dump() << "\n";
  } else {
    PrintTree(snapshot);
  }
}

int Fork(const Common& c, const ForkArgs& a) {
  ExitOnStopSignals();
  for (const auto& [text, what] :
       {std::pair{&a.source, "the process id"}, {&a.from, "--from"}, {&a.by, "--by"}}) {
    if (Status s = CheckUtf8(*text, what); !s.ok()) return Fail(s);
  }
  if (!a.id.empty()) {
    if (Status s = CheckProcessId(a.id); !s.ok()) return Fail(s);
  }
  if (Status known = CheckSource(c, a.source); !known.ok()) return Fail(known);
  auto inputs = ForkInputs(c, a);
  if (!inputs.ok()) return Fail(inputs.status());
  ForkOptions options;
  options.from = a.from;
  options.visit = a.visit;
  options.inputs = std::move(*inputs);
  options.id = a.id;
  if (!a.by.empty()) options.actor = a.by;
  options.defer = a.detach;
  Options node_options = EmbeddedOptions(c);
  // Detached with no live node: the node this command opens records the
  // fork only; the new process moves when a node next opens the dir.
  if (a.detach) node_options.resume = false;
  auto node = Connect(node_options, EmbeddedHttp(), c.token);
  if (!node.ok()) return Fail(node.status());
  CloseOnStop stop((*node)->embedded());
  auto forked = (*node)->Fork(a.source, options);
  YieldToStop();
  if (!forked.ok()) {
    if (EmbeddedNode* own = (*node)->embedded()) own->Close().IgnoreError();
    return Fail(forked.status());
  }
  std::string id = (*forked)["id"];
  if (a.detach) {
    PrintSnapshot(c, *forked);
    std::cout.flush();
    EmbeddedNode* own = (*node)->embedded();
    if (!own) return kExitOk;
    Status closed = own->Close();
    if (!closed.ok()) return Fail(closed);
    std::cerr << "keel: no live node: " << id << " is forked and moves when a node next opens "
              << c.data << " (keel serve, or keel wait " << id << ")" << std::endl;
    return kExitOk;
  }
  std::unique_ptr<LiveDisplay> display;
  std::function<void(const Json&)> on_change;
  if (!c.json) {
    const Json& fork = (*forked)["forked_from"];
    const uint64_t copied = fork.value("seq", uint64_t{0});
    std::cerr << id << "  " << (*forked)["workflow"].get<std::string>() << "  forked from "
              << fork.value("process", "") << " at seq " << copied << " (its seqs 2.." << copied
              << " copied, not run again)" << std::endl;
    display =
        std::make_unique<LiveDisplay>(c.data, id, std::cerr, WantsColour(STDERR_FILENO), copied);
    on_change = [shown = display.get()](const Json&) { shown->Changed(); };
  }
  auto timeout = a.timeout_s > 0
                     ? std::chrono::milliseconds(static_cast<int64_t>(a.timeout_s * 1000))
                     : kNoTimeout;
  auto done = RestAndClose(c, *node, id, timeout, on_change, a.until_done);
  if (display) display->Finish();
  if (!done.ok()) {
    if (done.status().code() != Status::Code::kTimedOut) return Fail(done.status());
    std::cerr << "keel: " << done.status().message() << "\n";
    return kExitAtRest;
  }
  PrintSnapshot(c, *done);
  return ExitFor(*done);
}

}  // namespace

void AddForkCommand(Commands& commands) {
  const Common& c = commands.common();
  auto a = std::make_shared<ForkArgs>();
  auto* cmd = commands.Add(
      "fork",
      "a new process from a process's state just before a step began: the steps before it\n"
      "are not run again, their outputs are kept (docs/fork.md); exit code by its status",
      [&c, a] { return Fork(c, *a); }, {.token = true});
  cmd->add_option("ID", a->source, "the process to fork")->required();
  cmd->add_option("--from", a->from, "step id (or task id in a fan-out) to start from")->required();
  cmd->add_option("--visit", a->visit, "which visit of the step (goto loops); default the first");
  cmd->add_option("--inputs", a->inputs, "the new process's inputs as a JSON object, or @file");
  cmd->add_option("--input", a->input, "change one input k=v (over --inputs or the source's)");
  cmd->add_option("--id", a->id, "the new process's id");
  cmd->add_option("--by", a->by, "who forks it (recorded)");
  auto* detach =
      cmd->add_flag("--detach", a->detach, "return once the new process is durably created");
  cmd->add_flag("--until-done", a->until_done,
                "wait through timers and retries until the process ends or needs a person")
      ->excludes(detach);
  cmd->add_option("--timeout", a->timeout_s, "seconds");
}

}  // namespace keel::cli
