// keel queue ls|show (docs/queues.md), and the queue settings of the nodes
// the CLI opens. The live node of the dir answers with its queues as they
// are; with none, the store is read (read-only) and the queues rebuilt as a
// node with DIR/queues.conf would rebuild them on open.

#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "base/data_dir.h"
#include "runtime/internal/queue_service.h"
#include "tools/cli.h"
#include "tools/client.h"
#include "tools/commands.h"
#include "tools/node_api.h"

namespace keel::cli {

Result<std::vector<QueueSpec>> QueueConfig(const std::string& data_dir,
                                           const std::vector<std::string>& specs) {
  std::vector<std::pair<std::string, std::string>> lines;  // where, spec
  const std::string conf = data_dir::QueuesConf(data_dir);
  if (std::ifstream in(conf); in) {
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      lines.emplace_back(conf + ":" + std::to_string(n), line);
    }
  }
  for (const auto& spec : specs) lines.emplace_back("--queue", spec);
  std::vector<QueueSpec> out;
  std::map<std::string, size_t> at;  // name -> index in out
  for (const auto& [where, text] : lines) {
    auto spec = ParseQueueSpec(text);
    if (!spec.ok()) return Status::InvalidArgument(where + ": " + spec.status().message());
    if (auto it = at.find(spec->name); it != at.end()) {
      out[it->second] = std::move(*spec);
    } else {
      at.emplace(spec->name, out.size());
      out.push_back(std::move(*spec));
    }
  }
  return out;
}

Json WithQueuePosition(const Common& c, store::EventStore& store,
                       const events::ProcessState& state, Json snapshot) {
  if (!state.WaitsInQueue()) return snapshot;
  size_t position = 0;
  if (auto live = NodeClient::Find(c.data, c.token)) {
    auto fresh = live->Get("/v1/processes/" + state.id);
    if (fresh.ok()) {
      for (const auto& w : (*fresh)["waiting_on"]) {
        if (w.value("kind", "") == "queue") position = w.value("position", size_t{0});
      }
    }
  } else if (auto specs = QueueConfig(c.data, {}); specs.ok()) {
    auto rebuilt = runtime::QueueService::Rebuild(store, *specs);
    if (rebuilt.ok()) position = (*rebuilt)->Position(state.queue, state.id);
  }
  for (auto& w : snapshot["waiting_on"]) {
    if (w.value("kind", "") == "queue" && position > 0) w["position"] = position;
  }
  return snapshot;
}

namespace {

int Refuse(const Status& s) {
  ReportError(s);
  return s.IsCorruption() || s.code() == Status::Code::kNotSupported ? kExitCorrupt : kExitBadInput;
}

// Every queue's view: the live node's, else rebuilt from the store.
Result<std::vector<Json>> QueueViews(const Common& c) {
  if (auto live = NodeClient::Find(c.data, c.token)) {
    auto listed = live->Get("/v1/queues");
    if (!listed.ok()) return listed.status();
    return (*listed)["queues"].get<std::vector<Json>>();
  }
  auto specs = QueueConfig(c.data, {});
  if (!specs.ok()) return specs.status();
  auto ro = ReadOnlyStore::Open(c.data);
  if (!ro.ok()) {
    if (!ro.status().IsNotFound()) return ro.status();
    // No data yet: the configured queues, empty.
    auto service = runtime::QueueService::Create(*specs, nullptr);
    if (!service.ok()) return service.status();
    return (*service)->Views();
  }
  auto rebuilt = runtime::QueueService::Rebuild(*ro->operator->(), *specs);
  if (!rebuilt.ok()) return rebuilt.status();
  return (*rebuilt)->Views();
}

std::string Limit(const Json& value) {
  return value.is_number() ? std::to_string(value.get<uint64_t>()) : "-";
}

std::string RateOf(const Json& view) {
  const Json& rate = view["rate"];
  if (!rate.is_object()) return "-";
  return std::to_string(rate.value("used", 0)) + "/" + std::to_string(rate.value("limit", 0)) +
         " per " + rate.value("period", "");
}

int ListQueues(const Common& c) {
  auto views = QueueViews(c);
  if (!views.ok()) return Refuse(views.status());
  if (c.json) {
    std::cout << Json{{"queues", *views}}.dump() << "\n";
    return kExitOk;
  }
  std::printf("%-24s %7s %7s %11s %7s %s\n", "NAME", "DEPTH", "RUNNING", "CONCURRENCY", "PER_KEY",
              "RATE");
  for (const auto& v : *views) {
    std::string name = v.value("name", "");
    if (!v.value("configured", true)) name += " (not configured)";
    std::printf("%-24s %7zu %7zu %11s %7s %s\n", name.c_str(), v.value("depth", size_t{0}),
                v.value("running", size_t{0}), Limit(v["concurrency"]).c_str(),
                Limit(v["per_key"]).c_str(), RateOf(v).c_str());
  }
  return kExitOk;
}

int ShowQueue(const Common& c, const std::string& name) {
  if (Status s = CheckQueueName(name); !s.ok()) return Refuse(s);
  auto views = QueueViews(c);
  if (!views.ok()) return Refuse(views.status());
  for (const auto& v : *views) {
    if (v.value("name", "") != name) continue;
    if (c.json) {
      std::cout << v.dump() << "\n";
      return kExitOk;
    }
    std::cout << "queue " << name << (v.value("configured", true) ? "" : " (not configured here)")
              << "\n"
              << "  spec         " << v.value("spec", "") << "\n"
              << "  depth        " << v.value("depth", 0) << " waiting\n"
              << "  running      " << v.value("running", 0) << " (concurrency "
              << Limit(v["concurrency"]) << ", per key " << Limit(v["per_key"]) << ")\n"
              << "  rate         " << RateOf(v) << "\n";
    size_t position = 0;
    for (const auto& w : v["waiting"]) {
      std::cout << "  " << ++position << ". " << w.value("id", "") << "  priority "
                << w.value("priority", 0);
      if (!w.value("key", "").empty()) std::cout << "  key " << w.value("key", "");
      std::cout << "\n";
    }
    return kExitOk;
  }
  return Refuse(Status::NotFound("no queue named '" + name + "'"));
}

}  // namespace

void AddQueueCommands(Commands& commands) {
  const Common& c = commands.common();
  CLI::App* group = commands.Group("queue", "named queues: what waits, what runs, rate use");
  commands.Add(group, "ls", "list queues: depth, running, limits, rate use",
               [&c] { return ListQueues(c); }, {.token = true});
  auto name = std::make_shared<std::string>();
  auto* show = commands.Add(group, "show", "a queue: its spec, counts and who waits in order",
                            [&c, name] { return ShowQueue(c, *name); }, {.token = true});
  show->add_option("NAME", *name)->required();
}

}  // namespace keel::cli
