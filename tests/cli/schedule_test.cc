// Schedules through the real binary (docs/schedules.md): create, list and
// show without a node; `keel serve` firing them with deterministic process
// ids; pause, resume, trigger, delete; overlap policies; the HTTP API; and
// SIGKILL while fires are due, with exactly one process per fire time and a
// clean verify after. Every wait is for a condition, with a generous limit.

#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <thread>

#include "base/cron.h"
#include "base/time.h"
#include "tests/cli/cli_fixture.h"

namespace keel::testing {
namespace {

constexpr int64_t kSecondNs = 1'000'000'000;

inline const char kTickYaml[] = R"(name: tick
inputs: {n: {default: 1}}
steps:
  - {id: hello, activity: echo, with: {n: "${inputs.n}"}}
)";

class ScheduleCliTest : public KeelCliTest {
 protected:
  std::string tick() { return Workflow("tick.yaml", kTickYaml); }

  Json ShowJson(const std::string& name) {
    auto r = Keel({"schedule", "show", name, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Parse(r.out);
  }
  // The schedule's events (stream schedule/<name>) in the global log.
  std::vector<Json> ScheduleEvents(const std::string& name) {
    auto r = Keel({"tail", "--from", "0", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<Json> out;
    for (auto& line : Lines(r.out)) {
      if (line["stream"] == "schedule/" + name) out.push_back(line);
    }
    return out;
  }
  // Ids of the processes whose id starts with `prefix`.
  std::vector<std::string> ProcessIds(const std::string& prefix) {
    auto r = Keel({"ls", "--json", "--limit", "100000"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> ids;
    Json list = Parse(r.out);
    for (const auto& p : list["processes"]) {
      std::string id = p["id"];
      if (id.rfind(prefix, 0) == 0) ids.push_back(id);
    }
    return ids;
  }
  uint64_t Started(const std::string& name) { return ShowJson(name)["fires"]["started"]; }

  std::unique_ptr<Child> Serve(const std::string& name, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"serve", "--listen", "127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto child = Spawn(name, args);
    EXPECT_FALSE(AwaitNodeAddress(child.get()).empty()) << Err(name);
    return child;
  }
  void StopServe(std::unique_ptr<Child>& serve) {
    serve->Signal(SIGTERM);
    serve->Wait();
    serve.reset();
  }
  void KillServe(std::unique_ptr<Child>& serve) {
    serve->Signal(SIGKILL);
    serve->Wait();
    serve.reset();
  }
  void ExpectVerified() {
    auto v = Keel({"verify", "--json"});
    EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
    EXPECT_EQ(Parse(v.out)["ok"], true) << v.out;
  }
};

// sched-<name>-YYYYMMDDTHHMMSSZ -> ns since the epoch.
int64_t FireTimeOf(const std::string& id, const std::string& name) {
  std::smatch m;
  std::string s = id;
  std::regex re("^sched-" + name + R"(-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$)");
  if (!std::regex_match(s, m, re)) return -1;
  auto t = ParseTimeNs(m[1].str() + "-" + m[2].str() + "-" + m[3].str() + "T" + m[4].str() + ":" +
                       m[5].str() + ":" + m[6].str() + "Z");
  return t.ok() ? *t : -1;
}

TEST_F(ScheduleCliTest, CreateListShowWithoutANodeAndRefusals) {
  auto created =
      Keel({"schedule", "create", "nightly", "--cron", "30 2 * * *", "--tz", "Europe/Berlin",
            "--workflow", tick(), "--inputs", R"({"n": 7})", "--overlap", "buffer_one",
            "--catchup-window", "2h", "--jitter", "30s", "--json"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  Json view = Parse(created.out);
  EXPECT_EQ(view["name"], "nightly");
  EXPECT_EQ(view["status"], "active");
  EXPECT_EQ(view["cron"], "30 2 * * *");
  EXPECT_EQ(view["time_zone"], "Europe/Berlin");
  EXPECT_EQ(view["workflow"], "tick");
  EXPECT_EQ(view["inputs"], Json({{"n", 7}}));
  EXPECT_EQ(view["overlap"], "buffer_one");
  EXPECT_EQ(view["catchup_window"], "2h");
  EXPECT_EQ(view["jitter"], "30s");
  // The next fire is the cron's first after the creation, in Berlin time.
  auto rule = FireRule::Cron("30 2 * * *", "Europe/Berlin");
  ASSERT_TRUE(rule.ok());
  auto created_ns = ParseTimeNs(view["created_at"].get<std::string>());
  ASSERT_TRUE(created_ns.ok());
  EXPECT_EQ(view["next_fire_at"], FormatTimeMs(*rule->NextAfter(*created_ns)));

  auto listed = Keel({"schedule", "ls", "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  ASSERT_EQ(Parse(listed.out)["schedules"].size(), 1u);
  EXPECT_EQ(ShowJson("nightly")["next_fire_at"], view["next_fire_at"]);
  auto human = Keel({"schedule", "ls"});
  EXPECT_NE(human.out.find("nightly"), std::string::npos) << human.out;

  // Refusals: exit 2, one line on stderr, nothing recorded.
  auto again = Keel({"schedule", "create", "nightly", "--every", "1m", "--workflow", tick()});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("exists"), std::string::npos) << again.err;
  for (std::vector<std::string> bad : {std::vector<std::string>{"--cron", "61 * * * *"},
                                       {"--cron", "0 0 30 feb *"},
                                       {"--cron", "* * * * *", "--tz", "Mars/Olympus"},
                                       {"--every", "1.5s"},
                                       {"--every", "1m", "--overlap", "sometimes"}}) {
    std::vector<std::string> args = {"schedule", "create", "other", "--workflow", tick()};
    args.insert(args.end(), bad.begin(), bad.end());
    auto r = Keel(args);
    EXPECT_EQ(r.exit_code, 2) << bad[1] << ": " << r.err;
  }
  EXPECT_EQ(
      Keel({"schedule", "create", "bad/name", "--every", "1m", "--workflow", tick()}).exit_code, 2);
  EXPECT_EQ(Keel({"schedule", "show", "other"}).exit_code, 2);
  EXPECT_EQ(Parse(Keel({"schedule", "ls", "--json"}).out)["schedules"].size(), 1u);
  ExpectVerified();
}

TEST_F(ScheduleCliTest, ABadScheduleCreatesNoDataDir) {
  auto r = Keel({"schedule", "create", "x", "--cron", "nope", "--workflow", tick()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_FALSE(std::filesystem::exists(data()));
}

TEST_F(ScheduleCliTest, ServeFiresWithDeterministicIdsAndPauseResumeTriggerDelete) {
  ASSERT_EQ(Keel({"schedule", "create", "tick", "--every", "1s", "--workflow", tick()}).exit_code,
            0);
  auto serve = Serve("serve");
  ASSERT_TRUE(WaitUntil([&] { return ProcessIds("sched-tick-").size() >= 3; }))
      << Err("serve") << Keel({"schedule", "show", "tick"}).out << Keel({"ls"}).out;

  // Each process is named by its fire time, a whole second after the creation.
  Json view = ShowJson("tick");
  auto created_ns = ParseTimeNs(view["created_at"].get<std::string>());
  ASSERT_TRUE(created_ns.ok());
  for (const auto& id : ProcessIds("sched-tick-")) {
    int64_t fire = FireTimeOf(id, "tick");
    ASSERT_GT(fire, 0) << id;
    EXPECT_EQ(fire % kSecondNs, 0) << id;
    EXPECT_GT(fire, *created_ns) << id;
    auto shown = Parse(Keel({"show", id, "--json"}).out);
    EXPECT_EQ(shown["workflow"], "tick");
    EXPECT_GE(*ParseTimeNs(shown["created_at"].get<std::string>()), fire) << id;
  }

  auto paused = Keel({"schedule", "pause", "tick", "--reason", "maintenance", "--json"});
  ASSERT_EQ(paused.exit_code, 0) << paused.err;
  EXPECT_EQ(Parse(paused.out)["status"], "paused");
  EXPECT_EQ(Parse(paused.out)["next_fire_at"], nullptr);
  EXPECT_EQ(Keel({"schedule", "pause", "tick"}).exit_code, 2);  // paused already
  uint64_t before = Started("tick");

  // A trigger starts one process now, also while paused.
  auto triggered = Keel({"schedule", "trigger", "tick", "--json"});
  ASSERT_EQ(triggered.exit_code, 0) << triggered.err;
  std::string manual = Parse(triggered.out)["last_process"];
  EXPECT_EQ(manual.rfind("sched-tick-manual-", 0), 0u) << manual;
  EXPECT_EQ(Started("tick"), before + 1);  // nothing fired while paused
  ASSERT_TRUE(WaitUntil([&] {
    return Parse(Keel({"show", manual, "--json"}).out)["status"] == "completed";
  }));

  ASSERT_EQ(Keel({"schedule", "resume", "tick"}).exit_code, 0);
  EXPECT_EQ(Keel({"schedule", "resume", "tick"}).exit_code, 2);  // not paused
  ASSERT_TRUE(WaitUntil([&] { return Started("tick") >= before + 3; }));

  ASSERT_EQ(Keel({"schedule", "delete", "tick"}).exit_code, 0);
  EXPECT_EQ(Keel({"schedule", "show", "tick"}).exit_code, 2);
  EXPECT_EQ(Parse(Keel({"schedule", "ls", "--json"}).out)["schedules"].size(), 0u);
  EXPECT_EQ(Keel({"schedule", "trigger", "tick"}).exit_code, 2);
  StopServe(serve);

  // The log holds one started fire per process, and each process once.
  std::map<std::string, int> recorded;
  for (const auto& e : ScheduleEvents("tick")) {
    if (e["type"] == "ScheduleFired" && e["data"]["action"] == "started") {
      ++recorded[e["data"]["process"]];
    }
  }
  auto ids = ProcessIds("sched-tick-");
  EXPECT_EQ(recorded.size(), ids.size());
  for (const auto& id : ids) EXPECT_EQ(recorded[id], 1) << id;
  ExpectVerified();
}

// SIGKILL while fires are due, several times, with downtime in between: the
// restarted node catches the missed fires up (window 1h; buffer_all, so that
// each runs in turn, its buffer durable across the kills), and every fire
// time from the first to the last has exactly one process.
TEST_F(ScheduleCliTest, SigkillWhileDueLeavesExactlyOneProcessPerFireTime) {
  ASSERT_EQ(Keel({"schedule", "create", "tick", "--every", "1s", "--overlap", "buffer_all",
                  "--workflow", tick()})
                .exit_code,
            0);
  size_t seen = 0;
  for (int round = 0; round < 3; ++round) {
    auto serve = Serve("serve" + std::to_string(round));
    ASSERT_TRUE(WaitUntil([&] { return ProcessIds("sched-tick-").size() >= seen + 2; }))
        << Err("serve" + std::to_string(round));
    KillServe(serve);
    seen = ProcessIds("sched-tick-").size();
    // Down for a while, so that fires come due with no node.
    int64_t down_until = NowNs() + 2 * kSecondNs;
    WaitUntil([&] { return NowNs() >= down_until; });
  }
  auto serve = Serve("final");
  // The fires missed while down run now.
  int64_t now = NowNs();
  ASSERT_TRUE(WaitUntil([&] {
    if (!ShowJson("tick")["buffered"].empty()) return false;
    for (const auto& id : ProcessIds("sched-tick-")) {
      if (FireTimeOf(id, "tick") >= now) return true;
    }
    return false;
  }));
  StopServe(serve);

  std::set<int64_t> fires;
  for (const auto& id : ProcessIds("sched-tick-")) {
    int64_t fire = FireTimeOf(id, "tick");
    ASSERT_GT(fire, 0) << id;
    EXPECT_TRUE(fires.insert(fire).second) << "two processes for " << id;
  }
  ASSERT_GE(fires.size(), 8u);
  for (int64_t t = *fires.begin(); t <= *fires.rbegin(); t += kSecondNs) {
    EXPECT_TRUE(fires.count(t)) << "no process for the fire at " << FormatTime(t);
  }
  // Every process's fire is recorded as started exactly once.
  std::map<int64_t, int> started;
  for (const auto& e : ScheduleEvents("tick")) {
    if (e["type"] == "ScheduleFired" && e["data"]["action"] == "started") {
      ++started[e["data"]["fire_ns"].get<int64_t>()];
    }
    EXPECT_NE(e["type"], "ScheduleMissed");
    EXPECT_NE(e["data"].value("action", ""), "skipped") << e.dump();
  }
  EXPECT_EQ(started.size(), fires.size());
  for (int64_t t : fires) EXPECT_EQ(started[t], 1) << FormatTime(t);
  ExpectVerified();
}

TEST_F(ScheduleCliTest, FiresOlderThanTheCatchupWindowAreRecordedAsMissed) {
  ASSERT_EQ(Keel({"schedule", "create", "tick", "--every", "1s", "--catchup-window", "1s",
                  "--workflow", tick()})
                .exit_code,
            0);
  auto serve = Serve("serve");
  ASSERT_TRUE(WaitUntil([&] { return !ProcessIds("sched-tick-").empty(); }));
  KillServe(serve);
  int64_t down_until = NowNs() + 4 * kSecondNs;
  WaitUntil([&] { return NowNs() >= down_until; });
  serve = Serve("again");
  ASSERT_TRUE(WaitUntil([&] { return ShowJson("tick")["fires"]["missed"].get<uint64_t>() >= 1; }));
  StopServe(serve);
  bool missed = false;
  for (const auto& e : ScheduleEvents("tick")) missed = missed || e["type"] == "ScheduleMissed";
  EXPECT_TRUE(missed);
  ExpectVerified();
}

// A process that runs until a file exists, so the test decides when it ends.
inline const char kHoldYaml[] = R"(name: hold
inputs: {gate: {required: true}}
steps:
  - id: gate
    activity: exec
    with: {argv: [sh, -c, "while [ ! -f '${inputs.gate}' ]; do sleep 0.02; done"]}
)";

TEST_F(ScheduleCliTest, OverlapSkipPassesFiresByWhileItsProcessRuns) {
  std::string gate = dir_ / "gate";
  ASSERT_EQ(Keel({"schedule", "create", "hold", "--every", "1s", "--workflow",
                  Workflow("hold.yaml", kHoldYaml), "--input", "gate=" + gate})
                .exit_code,
            0);
  auto serve = Serve("serve", {"--exec-policy", "full"});
  ASSERT_TRUE(WaitUntil([&] { return ShowJson("hold")["fires"]["skipped"].get<uint64_t>() >= 2; }));
  EXPECT_EQ(ProcessIds("sched-hold-").size(), 1u);  // the first still runs
  WriteFile(gate, "");
  ASSERT_TRUE(WaitUntil([&] { return ProcessIds("sched-hold-").size() >= 2; }));
  StopServe(serve);
  ExpectVerified();
}

TEST_F(ScheduleCliTest, OverlapBufferOneStartsOneWaitingFireWhenTheRunningOneEnds) {
  std::string gate = dir_ / "gate";
  ASSERT_EQ(Keel({"schedule", "create", "hold", "--every", "1s", "--overlap", "buffer_one",
                  "--workflow", Workflow("hold.yaml", kHoldYaml), "--input", "gate=" + gate})
                .exit_code,
            0);
  auto serve = Serve("serve", {"--exec-policy", "full"});
  ASSERT_TRUE(WaitUntil([&] {
    Json v = ShowJson("hold");
    return v["buffered"].size() == 1 && v["fires"]["skipped"].get<uint64_t>() >= 1;
  }));
  EXPECT_EQ(ProcessIds("sched-hold-").size(), 1u);
  std::string waiting = ShowJson("hold")["buffered"][0];
  WriteFile(gate, "");
  // The buffered fire starts under its own fire time's id.
  ASSERT_TRUE(WaitUntil([&] {
    for (const auto& id : ProcessIds("sched-hold-")) {
      if (FormatTimeMs(FireTimeOf(id, "hold")) == waiting) return true;
    }
    return false;
  }));
  StopServe(serve);
  ExpectVerified();
}

TEST_F(ScheduleCliTest, OverlapCancelOtherCancelsTheRunningProcessAndStartsTheFire) {
  std::string gate = dir_ / "gate";  // never written: every process runs until cancelled
  ASSERT_EQ(Keel({"schedule", "create", "hold", "--every", "1s", "--overlap", "cancel_other",
                  "--workflow", Workflow("hold.yaml", kHoldYaml), "--input", "gate=" + gate})
                .exit_code,
            0);
  auto serve = Serve("serve", {"--exec-policy", "full"});
  std::string first;
  ASSERT_TRUE(WaitUntil([&] {
    auto ids = ProcessIds("sched-hold-");
    if (ids.size() < 2) return false;
    first = ids.back();  // oldest
    return Parse(Keel({"show", first, "--json"}).out)["status"] == "cancelled";
  }));
  StopServe(serve);
  // Never two running at once: every process but the newest was cancelled.
  auto ids = ProcessIds("sched-hold-");
  for (size_t i = 1; i < ids.size(); ++i) {
    EXPECT_EQ(Parse(Keel({"show", ids[i], "--json"}).out)["status"], "cancelled") << ids[i];
  }
  ExpectVerified();
}

TEST_F(ScheduleCliTest, HttpApiCreatesListsControlsAndRefuses) {
  auto serve = Serve("serve");
  std::string address = AwaitNodeAddress();
  auto colon = address.rfind(':');
  httplib::Client http(address.substr(0, colon), std::stoi(address.substr(colon + 1)));
  Json body = {{"name", "api"}, {"workflow", kTickYaml}, {"every", "1h"}, {"inputs", {{"n", 2}}}};
  auto created = http.Post("/v1/schedules", body.dump(), "application/json");
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 201) << created->body;
  EXPECT_EQ(Parse(created->body)["every"], "1h");
  auto dup = http.Post("/v1/schedules", body.dump(), "application/json");
  EXPECT_EQ(dup->status, 409) << dup->body;
  Json bad = {{"name", "bad"}, {"workflow", kTickYaml}, {"cron", "* *"}};
  auto refused = http.Post("/v1/schedules", bad.dump(), "application/json");
  EXPECT_EQ(refused->status, 422) << refused->body;
  EXPECT_EQ(Parse(refused->body)["error"]["code"], "invalid");

  auto list = http.Get("/v1/schedules");
  ASSERT_EQ(list->status, 200);
  EXPECT_EQ(Parse(list->body)["schedules"].size(), 1u);
  EXPECT_EQ(http.Get("/v1/schedules/nope")->status, 404);

  auto triggered = http.Post("/v1/schedules/api/trigger", "", "application/json");
  ASSERT_EQ(triggered->status, 200) << triggered->body;
  std::string process = Parse(triggered->body)["last_process"];
  ASSERT_TRUE(WaitUntil([&] {
    auto got = http.Get(("/v1/processes/" + process).c_str());
    return got && got->status == 200 && Parse(got->body)["status"] == "completed";
  }));
  EXPECT_EQ(Parse(http.Get(("/v1/processes/" + process).c_str())->body)["inputs"],
            Json({{"n", 2}}));
  EXPECT_EQ(http.Post("/v1/schedules/api/pause", "", "application/json")->status, 200);
  EXPECT_EQ(http.Post("/v1/schedules/api/pause", "", "application/json")->status, 409);
  EXPECT_EQ(http.Post("/v1/schedules/api/delete", "", "application/json")->status, 200);
  EXPECT_EQ(http.Get("/v1/schedules/api")->status, 404);
  StopServe(serve);
  ExpectVerified();
}

}  // namespace
}  // namespace keel::testing
