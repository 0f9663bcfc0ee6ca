// keel repair: recovers a store whose write-ahead log is damaged, which every
// other command refuses (exit 5). Without --accept-loss it only looks and says
// what recovery would drop (exit 2); with it, it drops the damaged record and
// every later one, and reports what was lost and the audit of what is left.

#include <iostream>

#include "store/repair.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace keel::cli {
namespace {

Json CensusJson(const store::Census& c) {
  return {{"events", c.events}, {"processes", c.processes}};
}

void PrintCensus(const char* what, const store::Census& c) {
  std::cout << "  " << what << c.events << " events (last global seq " << c.events << "), "
            << c.processes << " processes\n";
}

}  // namespace

int Repair(const Common& c, bool accept_loss) {
  auto report = accept_loss ? store::RepairStore(c.data) : store::InspectDamage(c.data);
  if (!report.ok()) {
    if (report.status().IsNotFound()) {
      return Fail(Status::InvalidArgument("no keel data in '" + c.data + "'"));
    }
    return Fail(report.status());
  }
  const bool repaired = accept_loss && report->damaged;
  if (c.json) {
    Json problems = Json::array();
    for (const auto& p : report->problems) {
      problems.push_back({{"stream", p.stream.empty() ? Json() : Json(p.stream)},
                          {"seq", p.seq == 0 ? Json() : Json(p.seq)},
                          {"problem", p.what}});
    }
    std::cout << Json{{"damaged", report->damaged},
                      {"repaired", repaired},
                      {"damage", report->damaged ? Json(report->damage) : Json()},
                      {"before", CensusJson(report->readable)},
                      {"after", CensusJson(report->kept)},
                      {"lost_events", report->readable.events - report->kept.events},
                      {"problems", problems}}
                     .dump()
              << "\n";
  }
  if (!report->damaged) {
    if (!c.json) std::cout << "the store at " << c.data << " is not damaged: nothing to repair\n";
    return kExitOk;
  }
  const uint64_t lost = report->readable.events - report->kept.events;
  if (!c.json) {
    std::cout << (repaired ? "repaired " : "damaged: ") << c.data << "\n  " << report->damage
              << "\n";
    PrintCensus("the log holds    ", report->readable);
    PrintCensus(repaired ? "kept             " : "recovery keeps   ", report->kept);
    std::cout << "  " << (repaired ? "lost " : "would lose ") << lost
              << (lost == 1 ? " event" : " events") << " and everything they did\n";
  }
  if (!accept_loss) {
    std::cerr << "keel: the store is damaged; nothing was changed. `keel repair --accept-loss"
              << " --data " << c.data << "` drops the damaged record and everything after it\n";
    return kExitBadInput;
  }
  if (!report->problems.empty()) {
    if (!c.json) {
      for (const auto& p : report->problems) {
        std::cout << (p.stream.empty() ? "store" : p.stream);
        if (p.seq) std::cout << " seq " << p.seq;
        std::cout << ": " << p.what << "\n";
      }
    }
    std::cerr << "keel: the repaired store still fails verify\n";
    return kExitCorrupt;
  }
  if (!c.json) std::cout << "  verify: ok\n";
  return kExitOk;
}

void AddRepairCommand(Commands& commands) {
  const Common& c = commands.common();
  auto accept_loss = std::make_shared<bool>(false);
  auto* repair = commands.Add(
      "repair",
      "recover a store whose write-ahead log is damaged (every other command refuses\n"
      "it); shows what would be lost, drops it only with --accept-loss",
      [&c, accept_loss] { return Repair(c, *accept_loss); }, {});
  repair->add_flag("--accept-loss", *accept_loss, "drop the damaged record and every later one");
}

}  // namespace keel::cli
