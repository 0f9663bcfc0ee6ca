// Read commands: ls, show, events, tail, replay, verify, export, diff. Each
// opens the data dir as a RocksDB secondary instance (ReadOnlyStore), so it
// works while a node runs and when none does, and never blocks the node.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>
#include <tuple>

#include "base/time.h"
#include "events/schedule.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace keel::cli {
namespace {

// How often --follow looks for the writer's newest commits.
constexpr auto kFollowPoll = std::chrono::milliseconds(100);
// Events read per ReadLog call while tailing.
constexpr size_t kLogChunk = 1024;

void PrintEvent(const Common& c, const events::StoredEvent& e, bool with_stream) {
  Json line = events::ToJson(e);
  if (c.json) {
    std::cout << line.dump() << "\n";
  } else {
    PrintEventLine(line, with_stream, c.wide);
  }
}

// Prints rows as columns padded to their widest cell.
void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

std::string Cell(const Json& v) { return v.is_string() ? v.get<std::string>() : "-"; }

// An event for diff: what happened, without where and when it was stored.
// Drops the stream ids of both processes compared (also inside strings such
// as idempotency keys: a fork's copied events keep its source's), the time,
// hashes, global seqs and time-valued data fields (`*_ns`). `streams` is
// longest first, so that an id inside another is not replaced first.
Json Comparable(const Json& v, const std::vector<std::string>& streams) {
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    for (const std::string& stream : streams) {
      for (size_t at = s.find(stream); !stream.empty() && at != std::string::npos;
           at = s.find(stream, at + 4)) {
        s.replace(at, stream.size(), "<id>");
      }
    }
    return s;
  }
  if (v.is_object()) {
    Json out = Json::object();
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string& key = it.key();
      if (key.size() > 3 && key.compare(key.size() - 3, 3, "_ns") == 0) continue;
      out[key] = Comparable(*it, streams);
    }
    return out;
  }
  if (v.is_array()) {
    Json out = Json::array();
    for (const auto& x : v) out.push_back(Comparable(x, streams));
    return out;
  }
  return v;
}

Json DiffKey(const Json& line, const std::vector<std::string>& streams) {
  return {{"type", line["type"]},
          {"entity", Comparable(line["entity"], streams)},
          {"actor", line["actor"]},
          {"data", Comparable(line["data"], streams)}};
}

// When one of two logs is a fork of the other (docs/fork.md): which, and
// where it was cut.
struct ForkPair {
  std::string source, fork;  // ids
  uint64_t seq = 0;          // the source's last seq the fork copies
  std::string task;          // the task whose start the cut precedes
  bool inputs_changed = false;
};

std::optional<ForkPair> FindForkPair(const std::string& a,
                                     const std::vector<events::StoredEvent>& left,
                                     const std::string& b,
                                     const std::vector<events::StoredEvent>& right) {
  auto created = [](const std::vector<events::StoredEvent>& log) -> Json {
    if (log.empty() || log.front().type() != events::EventType::ProcessCreated) return Json();
    return events::ToJson(log.front())["data"];
  };
  Json ca = created(left), cb = created(right);
  if (ca.is_null() || cb.is_null()) return std::nullopt;
  const bool b_of_a = cb.value("forked_from", "") == a;
  const bool a_of_b = ca.value("forked_from", "") == b;
  if (!b_of_a && !a_of_b) return std::nullopt;
  ForkPair pair;
  pair.source = b_of_a ? a : b;
  pair.fork = b_of_a ? b : a;
  const Json& fork_created = b_of_a ? cb : ca;
  const auto& source_log = b_of_a ? left : right;
  pair.seq = fork_created.value("forked_seq", uint64_t{0});
  if (pair.seq < source_log.size()) {
    const events::StoredEvent& next = source_log[pair.seq];
    if (next.type() == events::EventType::TaskScheduled) pair.task = std::string(next.entity());
  }
  pair.inputs_changed = ca.value("inputs", Json()) != cb.value("inputs", Json());
  return pair;
}

// The time and key filters of `ls`.
Result<store::ListNarrowing> LsNarrowing(const LsArgs& a) {
  store::ListNarrowing narrow;
  narrow.idempotency_key = a.idempotency_key;
  const int64_t now = NowNs();
  for (auto [flag, text, bound] : {std::tuple{"--since", &a.since, &narrow.since_ns},
                                   std::tuple{"--until", &a.until, &narrow.until_ns}}) {
    if (text->empty()) continue;
    auto at = ParseTimeOrAgoNs(*text, now);
    if (!at.ok()) return Status::InvalidArgument(std::string(flag) + " " + at.status().message());
    *bound = *at;
  }
  return narrow;
}

}  // namespace

int Ls(const Common& c, const LsArgs& a) {
  Json out = {{"processes", Json::array()},
              {"total", 0},
              {"limit", a.limit},
              {"offset", a.offset},
              {"has_more", false}};
  std::optional<events::ProcessStatus> st;
  if (!a.status.empty()) {
    st = events::ParseProcessStatus(a.status);
    if (!st) {
      return Fail(Status::InvalidArgument("unknown status '" + a.status + "'; one of " +
                                          ProcessStatusNames(", ")));
    }
  }
  auto narrow = LsNarrowing(a);
  if (!narrow.ok()) return Fail(narrow.status());
  auto ro = ReadOnlyStore::Open(c.data);
  if (ro.ok()) {
    auto ids = (*ro)->ListProcesses(st, a.workflow, {a.limit, a.offset}, *narrow);
    if (!ids.ok()) return Fail(ids.status());
    for (const auto& id : ids->ids) {
      auto s = ro->Load(id);
      if (!s.ok()) return Fail(s.status());
      out["processes"].push_back(events::SummaryJson(*s));
    }
    out["total"] = ids->total;
    out["has_more"] = a.offset + ids->ids.size() < ids->total;
  } else if (!ro.status().IsNotFound()) {
    return Fail(ro.status());
  }
  if (c.json) {
    std::cout << out.dump() << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {{"ID", "WORKFLOW", "STATUS", "CREATED", "UPDATED"}};
  for (const auto& p : out["processes"]) {
    rows.push_back({Cell(p["id"]), Cell(p["workflow"]), Cell(p["status"]), Cell(p["created_at"]),
                    Cell(p["updated_at"])});
  }
  PrintTable(rows);
  size_t shown = out["processes"].size();
  std::cout << (shown ? a.offset + 1 : 0) << "-" << a.offset + shown << " of "
            << out["total"].get<uint64_t>()
            << (out["has_more"].get<bool>()
                    ? " (more: --offset " + std::to_string(a.offset + shown) + ")"
                    : "")
            << "\n";
  return kExitOk;
}

int Show(const Common& c, const std::string& id, size_t tasks_limit, size_t tasks_offset) {
  auto ro = OpenForProcess(c.data, id);
  if (!ro.ok()) return Fail(ro.status());
  auto st = ro->Load(id);
  if (!st.ok()) return Fail(st.status());
  Json s = TasksPage(events::ToJson(*st), tasks_limit, tasks_offset);
  s = WithQueuePosition(c, *ro->operator->(), *st, std::move(s));
  if (c.json) {
    std::cout << s.dump() << "\n";
  } else {
    PrintTree(s);
    if (s.contains("tasks_total")) {
      std::cout << "  (" << s["tasks"].size() << " of " << s["tasks_total"].get<size_t>()
                << " tasks shown, the newest after skipping " << tasks_offset
                << "; --tasks-offset pages back)\n";
    }
  }
  return kExitOk;
}

int Events(const Common& c, const std::string& id, uint64_t from, bool follow) {
  auto ro = OpenForProcess(c.data, id);
  if (!ro.ok()) return Fail(ro.status());
  auto last = (*ro)->LastSeq(id);
  if (!last.ok()) return Fail(last.status());
  if (*last == 0) return Fail(UnknownId(id));
  if (follow) InstallStopSignals();
  uint64_t next = std::max<uint64_t>(from, 1);
  for (;;) {
    auto evs = (*ro)->ReadStream(id, next);
    if (!evs.ok()) return Fail(evs.status());
    for (const auto& e : *evs) {
      PrintEvent(c, e, /*with_stream=*/false);
      next = e.seq() + 1;
    }
    std::cout.flush();
    if (!follow || StopRequested()) return kExitOk;
    // Everything up to the stream's end is printed: done once it is terminal.
    auto status = (*ro)->StatusOf(id);
    if (!status.ok()) return Fail(status.status());
    auto end = (*ro)->LastSeq(id);
    if (!end.ok()) return Fail(end.status());
    if (events::IsTerminal(*status) && *end < next) return kExitOk;
    std::this_thread::sleep_for(kFollowPoll);
    if (Status s = (*ro)->TryCatchUp(); !s.ok()) return Fail(s);
  }
}

int Tail(const Common& c, std::optional<uint64_t> from, bool follow) {
  if (follow) InstallStopSignals();
  // Following a dir that a node has yet to create: wait for its store. A
  // store caught half-made (column families not all there yet) is not an
  // error for the first seconds either.
  const auto settle = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (follow) {
    auto probe = ReadOnlyStore::Open(c.data);
    if (probe.ok()) break;
    bool absent = probe.status().IsNotFound() || probe.status().code() == Status::Code::kIOError ||
                  probe.status().code() == Status::Code::kInvalidArgument;
    if (!absent && std::chrono::steady_clock::now() > settle) return Fail(probe.status());
    if (StopRequested()) return kExitOk;
    std::this_thread::sleep_for(kFollowPoll);
  }
  auto ro = ReadOnlyStore::Open(c.data);
  if (!ro.ok() && ro.status().IsNotFound()) return kExitOk;  // no data yet: nothing to print
  if (!ro.ok()) return Fail(ro.status());
  if (!from) {
    auto last = (*ro)->LastGlobalSeq();
    if (!last.ok()) return Fail(last.status());
    from = *last > 10 ? *last - 9 : 1;
  }
  uint64_t next = *from;
  for (;;) {
    auto evs = (*ro)->ReadLog(next, kLogChunk);
    if (!evs.ok()) return Fail(evs.status());
    for (const auto& e : *evs) {
      PrintEvent(c, e, /*with_stream=*/true);
      next = e.global_seq() + 1;
    }
    std::cout.flush();
    if (evs->size() == kLogChunk) continue;
    if (!follow || StopRequested()) return kExitOk;
    std::this_thread::sleep_for(kFollowPoll);
    if (StopRequested()) return kExitOk;
    if (Status s = (*ro)->TryCatchUp(); !s.ok()) return Fail(s);
  }
}

int Replay(const Common& c, const std::string& id, uint64_t to) {
  auto ro = OpenForProcess(c.data, id);
  if (!ro.ok()) return Fail(ro.status());
  auto last = (*ro)->LastSeq(id);
  if (!last.ok()) return Fail(last.status());
  if (*last == 0) return Fail(UnknownId(id));
  if (to == 0) to = *last;
  if (to > *last) {
    return Fail(Status::InvalidArgument("--to " + std::to_string(to) + " is past the end of " + id +
                                        "'s log (last seq " + std::to_string(*last) + ")"));
  }
  auto state = ro->Replay(id, to);
  if (!state.ok()) return Fail(state.status());
  Json s = events::ToJson(*state);
  if (c.json) {
    std::cout << s.dump() << "\n";
  } else {
    std::cout << "as of seq " << to << " of " << *last << "\n";
    PrintTree(s);
  }
  return kExitOk;
}

int Verify(const Common& c, const std::string& id) {
  auto ro = id.empty() ? ReadOnlyStore::Open(c.data) : OpenForProcess(c.data, id);
  if (!ro.ok()) return Fail(ro.status());
  uint64_t streams = 1, events = 0;
  if (id.empty()) {
    auto all = (*ro)->ListProcesses(std::nullopt, "", {0, 0});
    if (!all.ok()) return Fail(all.status());
    auto last = (*ro)->LastGlobalSeq();
    if (!last.ok()) return Fail(last.status());
    auto schedules = (*ro)->ListStreams(events::kScheduleStreamPrefix);
    if (!schedules.ok()) return Fail(schedules.status());
    streams = all->total + schedules->size();  // processes' and schedules' streams
    events = *last;
  } else {
    auto last = (*ro)->LastSeq(id);
    if (!last.ok()) return Fail(last.status());
    if (*last == 0) return Fail(UnknownId(id));
    events = *last;
  }
  auto problems = (*ro)->Verify(id);
  if (!problems.ok()) return Fail(problems.status());
  if (c.json) {
    Json out = {{"ok", problems->empty()},
                {"streams", streams},
                {"events", events},
                {"problems", Json::array()}};
    for (const auto& p : *problems) {
      out["problems"].push_back({{"stream", p.stream.empty() ? Json() : Json(p.stream)},
                                 {"seq", p.seq == 0 ? Json() : Json(p.seq)},
                                 {"problem", p.what}});
    }
    std::cout << out.dump() << "\n";
  } else {
    for (const auto& p : *problems) {
      std::cout << (p.stream.empty() ? "store" : p.stream);
      if (p.seq) std::cout << " seq " << p.seq;
      std::cout << ": " << p.what << "\n";
    }
    std::cout << "verified " << streams << (streams == 1 ? " stream, " : " streams, ") << events
              << (events == 1 ? " event: " : " events: ");
    if (problems->empty()) {
      std::cout << "ok\n";
    } else {
      std::cout << problems->size() << (problems->size() == 1 ? " problem\n" : " problems\n");
    }
  }
  return problems->empty() ? kExitOk : kExitCorrupt;
}

int Export(const Common& c, const std::string& id) {
  auto ro = OpenForProcess(c.data, id);
  if (!ro.ok()) return Fail(ro.status());
  auto log = (*ro)->ReadStream(id);
  if (!log.ok()) return Fail(log.status());
  if (log->empty()) return Fail(UnknownId(id));
  const events::StoredEvent& first = log->front();
  if (first.type() != events::EventType::ProcessCreated) {
    return Fail(Status::Corruption(id + " seq 1 is not ProcessCreated"));
  }
  const auto* created = first.envelope().body_as_ProcessCreated();
  std::string hash = created->definition_hash() ? created->definition_hash()->str() : "";
  auto definition = (*ro)->GetDefinition(hash);
  if (!definition.ok()) return Fail(definition.status());
  if (!*definition)
    return Fail(Status::Corruption("definition " + hash + " of " + id + " is missing"));
  Json def = Json::parse(**definition, nullptr, false);
  if (def.is_discarded()) return Fail(Status::Corruption("definition " + hash + " is not JSON"));
  std::cout << Json{{"stream", id}, {"definition_hash", hash}, {"definition", def}}.dump() << "\n";
  for (const auto& e : *log) std::cout << events::ToJson(e).dump() << "\n";
  return kExitOk;
}

int Diff(const Common& c, const std::string& a, const std::string& b) {
  auto ro = OpenForProcess(c.data, a);
  if (!ro.ok()) return Fail(ro.status());
  auto left = (*ro)->ReadStream(a);
  if (!left.ok()) return Fail(left.status());
  if (left->empty()) return Fail(UnknownId(a));
  auto right = (*ro)->ReadStream(b);
  if (!right.ok()) return Fail(right.status());
  if (right->empty()) return Fail(UnknownId(b));
  std::vector<std::string> streams = {a, b};
  if (streams[0].size() < streams[1].size()) std::swap(streams[0], streams[1]);
  // A fork and its source: seq 1 differs by construction (the fork names
  // its source), so the logs are compared from seq 2, the inputs apart.
  const std::optional<ForkPair> fork = FindForkPair(a, *left, b, *right);
  Json fork_json;
  if (fork) {
    fork_json = {{"source", fork->source},
                 {"fork", fork->fork},
                 {"seq", fork->seq},
                 {"task", fork->task.empty() ? Json() : Json(fork->task)},
                 {"inputs_changed", fork->inputs_changed}};
    if (!c.json) {
      std::cout << fork->fork << " is a fork of " << fork->source << ": seqs 2.." << fork->seq
                << " are " << fork->source << "'s";
      if (!fork->task.empty()) std::cout << ", cut before task " << fork->task << " began";
      std::cout << "\n";
      if (fork->inputs_changed) {
        std::cout << "inputs changed:\n  " << a << ": "
                  << events::ToJson(left->front())["data"]["inputs"].dump() << "\n  " << b << ": "
                  << events::ToJson(right->front())["data"]["inputs"].dump() << "\n";
      }
    }
  }
  size_t n = std::max(left->size(), right->size());
  for (size_t i = fork ? 1 : 0; i < n; ++i) {
    Json l = i < left->size() ? events::ToJson((*left)[i]) : Json();
    Json r = i < right->size() ? events::ToJson((*right)[i]) : Json();
    if (!l.is_null() && !r.is_null() && DiffKey(l, streams) == DiffKey(r, streams)) continue;
    if (c.json) {
      Json out = {{"identical", false}, {"seq", i + 1}, {"a", l}, {"b", r}};
      if (fork) out["fork"] = fork_json;
      std::cout << out.dump() << "\n";
    } else {
      std::cout << "first divergence at seq " << i + 1 << ":\n";
      for (const auto& [name, line] : {std::pair{a, l}, std::pair{b, r}}) {
        std::cout << "  " << name << ": ";
        if (line.is_null()) {
          std::cout << "(end of log)\n";
        } else {
          std::cout << line["type"].get<std::string>() << "  " << line["entity"].get<std::string>();
          if (line["actor"] != "system") std::cout << "  by " << line["actor"].get<std::string>();
          std::cout << "  " << line["data"].dump() << "\n";
        }
      }
    }
    return kExitFailed;
  }
  if (fork && fork->inputs_changed) {
    // The same events from other inputs: they part in the inputs alone.
    if (c.json) {
      std::cout << Json{{"identical", false},
                        {"seq", 1},
                        {"a", events::ToJson(left->front())},
                        {"b", events::ToJson(right->front())},
                        {"fork", fork_json}}
                       .dump()
                << "\n";
    } else {
      std::cout << "the same " << n << " events after seq 1\n";
    }
    return kExitFailed;
  }
  if (c.json) {
    Json out = {{"identical", true}, {"events", n}};
    if (fork) out["fork"] = fork_json;
    std::cout << out.dump() << "\n";
  } else {
    std::cout << "identical: " << n << " events" << (fork ? " (after seq 1)" : "") << "\n";
  }
  return kExitOk;
}

void AddReadCommands(Commands& commands) {
  Common& c = commands.common();
  // Only the chosen command's options are filled in.
  struct ReadArgs {
    std::string id, other;
    uint64_t from = 0, to = 0;
    bool follow = false;
    LsArgs ls;
    CLI::Option* tail_from = nullptr;  // given: even --from 0 is no default
    size_t tasks_limit = 0, tasks_offset = 0;
  };
  auto r = std::make_shared<ReadArgs>();

  auto* show = commands.Add("show", "a process: branches, tasks, states, attempts, times",
                            [&c, r] { return Show(c, r->id, r->tasks_limit, r->tasks_offset); },
                            {});
  show->add_option("ID", r->id)->required();
  show->add_option("--tasks-limit", r->tasks_limit,
                   "only the newest N tasks (a process with very many)");
  show->add_option("--tasks-offset", r->tasks_offset, "skip the newest M tasks first");

  auto* events = commands.Add("events", "the log of a process (JSON lines with --json)",
                              [&c, r] { return Events(c, r->id, r->from, r->follow); }, {});
  events->add_option("ID", r->id)->required();
  events->add_option("--from", r->from, "first seq (inclusive)");
  events->add_flag("--follow,-f", r->follow, "stream new events until the process ends");
  events->add_flag("--wide", c.wide, "event lines in full (default: cut to fit)");

  auto* tail = commands.Add(
      "tail", "the global log: the last 10 events unless --from",
      [&c, r] {
        return Tail(c, r->tail_from->count() ? std::optional(r->from) : std::nullopt, r->follow);
      },
      {});
  r->tail_from = tail->add_option("--from", r->from, "first global seq (inclusive)");
  tail->add_flag("--follow,-f", r->follow, "stream new events until SIGINT/SIGTERM");
  tail->add_flag("--wide", c.wide, "event lines in full (default: cut to fit)");

  auto* ls = commands.Add("ls", "list processes, newest first", [&c, r] { return Ls(c, r->ls); },
                          {});
  ls->add_option("--status", r->ls.status, "only this status (completed, waiting, ...)");
  ls->add_option("--workflow", r->ls.workflow, "only this workflow");
  ls->add_option("--since", r->ls.since, "created at or after: RFC 3339, or ago (90m, 2h, 1d)");
  ls->add_option("--until", r->ls.until, "created at or before: RFC 3339, or ago (90m, 2h, 1d)");
  ls->add_option("--idempotency-key", r->ls.idempotency_key, "the process started with this key");
  ls->add_option("--limit", r->ls.limit, "page size")->capture_default_str();
  ls->add_option("--offset", r->ls.offset, "processes to skip")->capture_default_str();

  auto* replay = commands.Add("replay", "the state rebuilt from the log up to a seq",
                              [&c, r] { return Replay(c, r->id, r->to); }, {});
  replay->add_option("ID", r->id)->required();
  replay->add_option("--to", r->to, "last seq to apply (default: the whole log)");

  auto* verify = commands.Add(
      "verify",
      "audit chains, seq continuity, decoding, transitions, snapshots, log and index;\n"
      "exit 0 when clean, 5 on any problem",
      [&c, r] { return Verify(c, r->id); }, {});
  verify->add_option("ID", r->id, "one process (default: the whole store)");

  auto* exported = commands.Add(
      "export",
      "a process's whole log as JSON lines: first its workflow definition, then each event",
      [&c, r] { return Export(c, r->id); }, {.json = false});
  exported->add_option("ID", r->id)->required();

  auto* diff = commands.Add(
      "diff",
      "first divergence of two processes' logs (type, entity, actor, data; ignoring\n"
      "stream ids, times, hashes, global seqs); for a fork and its source, where it was\n"
      "cut and where they part. Exit 0 identical, 1 diverged, 2 unknown id",
      [&c, r] { return Diff(c, r->id, r->other); }, {});
  diff->add_option("A", r->id)->required();
  diff->add_option("B", r->other)->required();
}

}  // namespace keel::cli
