// keel schedule create|ls|show|pause|resume|delete|trigger (docs/schedules.md).
// The changes go through the data dir's live node, or a node the command
// opens only to record them (it fires nothing: schedules fire while a node
// runs the dir, `keel serve`); `trigger` with no live node runs its process
// until it rests, as `run` does. `ls` and `show` read the store, like the
// other read commands, and never need the node.

#include <fstream>
#include <iostream>
#include <sstream>

#include "base/cron.h"
#include "base/time.h"
#include "base/validate.h"
#include "events/schedule.h"
#include "store/load_state.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/embedded_node.h"
#include "tools/node_api.h"
#include "tools/signals.h"

namespace keel::cli {
namespace {

struct CreateArgs {
  std::string name;
  std::string cron, every, time_zone;
  std::string workflow;
  RunArgs inputs;  // only --input and --inputs
  std::string overlap = "skip";
  std::string catchup_window = "1h";
  std::string jitter = "0s";
  std::string by;
};

struct ScheduleActArgs {
  std::string name, reason, by;
};

int Refuse(const Status& s) {
  ReportError(s);
  return s.IsCorruption() || s.code() == Status::Code::kNotSupported ? kExitCorrupt : kExitBadInput;
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::InvalidArgument("cannot read '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Result<std::chrono::milliseconds> Duration(const std::string& text, const char* flag) {
  auto ms = ParseDurationMs(text);
  if (!ms.ok()) return Status::InvalidArgument(std::string(flag) + ": " + ms.status().message());
  return std::chrono::milliseconds(*ms);
}

std::string Rule(const Json& view) {
  if (view["cron"].is_string()) {
    return "cron '" + view["cron"].get<std::string>() + "' " + view.value("time_zone", "UTC");
  }
  return "every " + view.value("every", std::string("?"));
}

std::string OrDash(const Json& value) { return value.is_string() ? value.get<std::string>() : "-"; }

void PrintView(const Common& c, const Json& view) {
  if (c.json) {
    std::cout << view.dump() << "\n";
    return;
  }
  std::cout << view["name"].get<std::string>() << "  " << view["status"].get<std::string>() << "  "
            << Rule(view) << "  workflow " << view["workflow"].get<std::string>() << "\n"
            << "  next fire    " << OrDash(view["next_fire_at"]) << "\n"
            << "  last fire    " << OrDash(view["last_fire_at"]) << "  "
            << OrDash(view["last_process"]) << "\n"
            << "  overlap " << view["overlap"].get<std::string>() << " · catch-up window "
            << view["catchup_window"].get<std::string>() << " · jitter "
            << view["jitter"].get<std::string>() << "\n"
            << "  fires        " << view["fires"]["started"] << " started, "
            << view["fires"]["skipped"] << " skipped, " << view["fires"]["missed"] << " missed";
  if (!view["buffered"].empty()) std::cout << "; buffered " << view["buffered"].dump();
  std::cout << "\n  inputs       " << view["inputs"].dump() << "\n";
}

// Closes the node the command opened, if it did.
Status CloseOwn(NodeApi& node) {
  if (EmbeddedNode* own = node.embedded()) return own->Close();
  return Status::OK();
}

void SayNoLiveNode(const Common& c, NodeApi& node) {
  if (!node.embedded() || c.json) return;
  std::cerr << "keel: no live node: recorded; schedules fire while a node runs " << c.data
            << " (keel serve)" << std::endl;
}

int Create(const Common& c, const CreateArgs& a) {
  ScheduleSpec spec;
  spec.name = a.name;
  spec.cron = a.cron;
  spec.time_zone = a.time_zone;
  spec.overlap = a.overlap;
  if (Status s = events::CheckScheduleName(a.name); !s.ok()) return Refuse(s);
  if (a.cron.empty() == a.every.empty()) {
    return Refuse(Status::InvalidArgument("give --cron EXPR or --every DURATION (one of them)"));
  }
  for (auto [text, out, flag] :
       {std::tuple{&a.every, &spec.every, "--every"},
        std::tuple{&a.catchup_window, &spec.catchup_window, "--catchup-window"},
        std::tuple{&a.jitter, &spec.jitter, "--jitter"}}) {
    if (text->empty()) continue;
    auto d = Duration(*text, flag);
    if (!d.ok()) return Refuse(d.status());
    *out = *d;
  }
  // Refused before any node opens the dir: bad input leaves no store behind.
  auto rule =
      a.cron.empty() ? FireRule::Every(spec.every.count()) : FireRule::Cron(a.cron, a.time_zone);
  if (!rule.ok()) return Refuse(rule.status());
  if (!events::ParseOverlap(a.overlap)) {
    return Refuse(Status::InvalidArgument(
        "--overlap must be skip, buffer_one, buffer_all, cancel_other or allow_all"));
  }
  auto wf = LoadWorkflowFile(a.workflow);
  if (!wf.ok()) return Refuse(wf.status());
  auto text = ReadFile(a.workflow);
  if (!text.ok()) return Refuse(text.status());
  auto inputs = ParseInputs(a.inputs);
  if (!inputs.ok()) return Refuse(inputs.status());
  if (auto resolved = ResolveInputs(*wf, *inputs); !resolved.ok()) {
    return Refuse(resolved.status());
  }
  spec.inputs = *inputs;
  ExitOnStopSignals();
  Options options = EmbeddedOptions(c);
  options.resume = false;  // records the schedule; fires nothing
  auto node = Connect(options, EmbeddedHttp(), c.token);
  if (!node.ok()) return Refuse(node.status());
  ControlOptions by;
  if (!a.by.empty()) by.by = a.by;
  auto created = (*node)->CreateSchedule(spec, *wf, *text, by);
  Status closed = CloseOwn(**node);
  if (!created.ok()) return Refuse(created.status());
  if (!closed.ok()) return Refuse(closed);
  PrintView(c, *created);
  SayNoLiveNode(c, **node);
  return kExitOk;
}

int Act(const Common& c, const std::string& action, const ScheduleActArgs& a) {
  if (Status s = events::CheckScheduleName(a.name); !s.ok()) return Refuse(s);
  for (const auto& [text, what] : {std::pair{&a.reason, "--reason"}, {&a.by, "--by"}}) {
    if (Status s = CheckUtf8(*text, what); !s.ok()) return Refuse(s);
  }
  if (Status s = CheckDataDir(c.data); !s.ok()) return Refuse(s);
  ExitOnStopSignals();
  Options options = EmbeddedOptions(c);
  // A trigger with no live node runs its process, as `run` does; the other
  // changes are only recorded.
  if (action != "trigger") options.resume = false;
  auto node = Connect(options, EmbeddedHttp(), c.token);
  if (!node.ok()) return Refuse(node.status());
  ControlOptions control;
  control.reason = a.reason;
  if (!a.by.empty()) control.by = a.by;
  auto done = (*node)->ScheduleControl(action, a.name, control);
  if (!done.ok()) {
    CloseOwn(**node).IgnoreError();
    return Refuse(done.status());
  }
  if (action == "trigger" && (*node)->embedded()) {
    std::string id = (*done)["last_process"];
    auto rested = RestAndClose(c, *node, id, kNoTimeout);
    if (!rested.ok()) return Refuse(rested.status());
  } else if (Status closed = CloseOwn(**node); !closed.ok()) {
    return Refuse(closed);
  }
  if (action == "trigger" && !c.json) {
    std::cout << "triggered " << (*done)["last_process"].get<std::string>() << "\n";
    return kExitOk;
  }
  PrintView(c, *done);
  if (action != "trigger") SayNoLiveNode(c, **node);
  return kExitOk;
}

int ListSchedules(const Common& c) {
  auto ro = ReadOnlyStore::Open(c.data);
  Json views = Json::array();
  if (!ro.ok() && !ro.status().IsNotFound()) return Refuse(ro.status());
  if (ro.ok()) {
    auto streams = (*ro)->ListStreams(events::kScheduleStreamPrefix);
    if (!streams.ok()) return Refuse(streams.status());
    for (const auto& stream : *streams) {
      auto name = stream.substr(events::kScheduleStreamPrefix.size());
      auto state = store::LoadSchedule(*ro->operator->(), name);
      if (!state.ok()) return Refuse(state.status());
      if (state->status != events::ScheduleStatus::kDeleted) {
        views.push_back(events::ViewJson(*state));
      }
    }
  }
  if (c.json) {
    std::cout << Json{{"schedules", views}}.dump() << "\n";
    return kExitOk;
  }
  std::printf("%-24s %-7s %-36s %-25s %s\n", "NAME", "STATUS", "RULE", "NEXT FIRE", "LAST PROCESS");
  for (const auto& v : views) {
    std::printf("%-24s %-7s %-36s %-25s %s\n", v["name"].get<std::string>().c_str(),
                v["status"].get<std::string>().c_str(), Rule(v).c_str(),
                OrDash(v["next_fire_at"]).c_str(), OrDash(v["last_process"]).c_str());
  }
  return kExitOk;
}

int ShowSchedule(const Common& c, const std::string& name) {
  if (Status s = events::CheckScheduleName(name); !s.ok()) return Refuse(s);
  auto ro = ReadOnlyStore::Open(c.data);
  if (!ro.ok()) {
    if (ro.status().IsNotFound()) {
      return Refuse(Status::NotFound("no schedule named '" + name + "'"));
    }
    return Refuse(ro.status());
  }
  auto state = store::LoadSchedule(*ro->operator->(), name);
  if (!state.ok()) return Refuse(state.status());
  if (state->status == events::ScheduleStatus::kDeleted) {
    return Refuse(Status::NotFound("no schedule named '" + name + "' (deleted)"));
  }
  PrintView(c, events::ViewJson(*state));
  return kExitOk;
}

}  // namespace

void AddScheduleCommands(Commands& commands) {
  const Common& c = commands.common();
  CLI::App* group =
      commands.Group("schedule", "start processes on a clock: cron or interval schedules");

  auto create = std::make_shared<CreateArgs>();
  auto* create_cmd =
      commands.Add(group, "create", "record a schedule (fires while a node runs the dir)",
                   [&c, create] { return Create(c, *create); }, {.token = true});
  create_cmd->add_option("NAME", create->name, "schedule name")->required();
  auto* cron = create_cmd->add_option("--cron", create->cron,
                                      "5-field cron ('*/5 * * * *', names, @daily, ...)");
  auto* every = create_cmd->add_option("--every", create->every, "a fixed interval, e.g. 10m");
  cron->excludes(every);
  create_cmd->add_option("--tz", create->time_zone, "IANA time zone of the cron (default UTC)")
      ->needs(cron);
  create_cmd->add_option("--workflow", create->workflow, "workflow file (YAML or JSON)")
      ->required();
  create_cmd->add_option("--input", create->inputs.input,
                         "an input k=v (v parsed as JSON if it is)");
  create_cmd->add_option("--inputs", create->inputs.inputs, "inputs as a JSON object, or @file");
  create_cmd
      ->add_option("--overlap", create->overlap,
                   "skip|buffer_one|buffer_all|cancel_other|allow_all: a fire while the "
                   "previous process runs")
      ->capture_default_str();
  create_cmd
      ->add_option("--catchup-window", create->catchup_window,
                   "missed fires at most this late still run")
      ->capture_default_str();
  create_cmd->add_option("--jitter", create->jitter, "start each fire up to this much later")
      ->capture_default_str();
  create_cmd->add_option("--by", create->by, "who (recorded)");

  auto control = std::make_shared<ScheduleActArgs>();
  for (const char* action : {"pause", "resume", "delete", "trigger"}) {
    const char* help = std::string(action) == "pause"    ? "stop a schedule's fires"
                       : std::string(action) == "resume" ? "fire again from now on"
                       : std::string(action) == "delete" ? "remove a schedule (not its processes)"
                                                         : "start a process of a schedule now";
    auto* cmd =
        commands.Add(group, action, help,
                     [&c, control, action] { return Act(c, action, *control); }, {.token = true});
    cmd->add_option("NAME", control->name)->required();
    if (std::string(action) != "trigger")
      cmd->add_option("--reason", control->reason, "why (recorded)");
    cmd->add_option("--by", control->by, "who (recorded)");
  }

  commands.Add(group, "ls", "list schedules", [&c] { return ListSchedules(c); }, {});
  auto show_name = std::make_shared<std::string>();
  auto* show_cmd =
      commands.Add(group, "show", "a schedule: its rule, next fire, last process, counts",
                   [&c, show_name] { return ShowSchedule(c, *show_name); }, {});
  show_cmd->add_option("NAME", *show_name)->required();
}

}  // namespace keel::cli
