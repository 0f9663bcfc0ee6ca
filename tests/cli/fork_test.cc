// `keel fork ID --from STEP` through the real binary (docs/fork.md): the
// steps before STEP are not run again (each exec step counts its runs in a
// file) and keep their outputs, STEP and what follows run; a failed process
// forked with changed inputs completes; steps inside parallel and for_each
// branches; a loop's nth visit; the refusals; the HTTP API; `diff` of a fork
// and its source; and SIGKILL during a fork and while the fork runs, with a
// whole fork or none, and a clean `verify`. Every wait is for a condition.

#include <httplib.h>
#include <signal.h>

#include <filesystem>
#include <thread>

#include "tests/cli/cli_fixture.h"

namespace keel::testing {
namespace {

// a, b, c, d in a row. Each appends a line to DIR/<step> when it runs; a
// outputs how many times it has run, b passes it on. c waits until the file
// `gate` exists, then fails unless input ok is true.
inline const char kChainYaml[] = R"(name: chain
inputs:
  dir: {required: true}
  ok: {default: true}
  gate: {default: /}
steps:
  - id: a
    activity: exec
    with: {argv: [sh, -c, 'echo run >> ${inputs.dir}/a; printf "{\"run\": %d}" $(wc -l < ${inputs.dir}/a)']}
    save_as: ra
  - id: b
    activity: exec
    with: {argv: [sh, -c, 'echo run >> ${inputs.dir}/b; printf "{\"from_a\": ${vars.ra.json.run}}"']}
    save_as: rb
  - id: c
    activity: exec
    with: {argv: [sh, -c, 'echo run >> ${inputs.dir}/c; while [ ! -e ${inputs.gate} ]; do sleep 0.02; done; test ${inputs.ok} = true']}
  - id: d
    activity: exec
    with: {argv: [sh, -c, 'echo run >> ${inputs.dir}/d']}
outputs: {a_run: "vars.ra.json.run", b_saw: "vars.rb.json.from_a"}
)";

// A parallel step (left: l1 then l2; right: r1), then a for_each over three
// items, then `last`.
inline const char kBranchesYaml[] = R"(name: branches
inputs: {dir: {required: true}}
steps:
  - {id: first, activity: exec, with: {argv: [sh, -c, 'echo run >> ${inputs.dir}/first']}}
  - id: both
    parallel:
      left:
        - {id: l1, activity: exec, with: {argv: [sh, -c, 'echo run >> ${inputs.dir}/l1']}}
        - {id: l2, activity: exec, with: {argv: [sh, -c, 'echo run >> ${inputs.dir}/l2']}}
      right:
        - {id: r1, activity: exec, with: {argv: [sh, -c, 'echo run >> ${inputs.dir}/r1']}}
  - id: each
    for_each: "{1, 2, 3}"
    steps:
      - {id: item, activity: exec, with: {argv: [sh, -c, 'echo run >> ${inputs.dir}/item${item}']}}
  - {id: last, activity: exec, with: {argv: [sh, -c, 'echo run >> ${inputs.dir}/last']}}
)";

// `work` three times through a goto loop that counts in vars.n.
inline const char kLoopYaml[] = R"(name: loop
inputs: {dir: {required: true}}
vars: {n: 0}
steps:
  - {id: work, activity: exec, with: {argv: [sh, -c, 'echo ${vars.n} >> ${inputs.dir}/work']}}
  - id: count
    set: {n: "vars.n + 1"}
    goto: {step: work, when: "vars.n < 3"}
outputs: {n: "vars.n"}
)";

// A parallel step whose branch `flaky` fails on its first run only.
inline const char kFlakyYaml[] = R"(name: flaky
inputs: {dir: {required: true}}
steps:
  - id: both
    parallel:
      steady: [{id: s, activity: exec, with: {argv: [sh, -c, 'echo run >> ${inputs.dir}/s']}}]
      flaky: [{id: f, activity: exec, with: {argv: [sh, -c, 'echo run >> ${inputs.dir}/f; test $(wc -l < ${inputs.dir}/f) -gt 1']}}]
  - {id: after, activity: echo, with: {text: done}}
)";

class ForkCliTest : public KeelCliTest {
 protected:
  void SetUp() override {
    runs_ = dir_ / "runs";
    std::filesystem::create_directories(runs_);
  }

  // How many times step file `name` says it ran.
  int Runs(const std::string& name) {
    std::string text = ReadFile(runs_ + "/" + name);
    return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
  }
  std::string DirInput() { return "dir=" + runs_; }

  Json Show(const std::string& id) {
    auto r = Keel({"show", id, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Parse(r.out);
  }
  std::vector<Json> Events(const std::string& id) {
    auto r = Keel({"events", id, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Lines(r.out);
  }
  const Json* Task(const Json& snapshot, const std::string& id) {
    for (const auto& t : snapshot["tasks"]) {
      if (t["id"] == id) return &t;
    }
    return nullptr;
  }
  void ExpectVerified() {
    auto v = Keel({"verify", "--json"});
    EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
    EXPECT_EQ(Parse(v.out)["ok"], true) << v.out;
  }
  uint64_t ProcessCount() {
    auto r = Keel({"ls", "--json", "--limit", "1000"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Parse(r.out)["total"];
  }
  // The seq of the first event of `type` on `entity` in `id`'s log; 0 if none.
  uint64_t SeqOf(const std::string& id, const std::string& type, const std::string& entity) {
    for (const auto& e : Events(id)) {
      if (e["type"] == type && e["entity"] == entity) return e["seq"];
    }
    return 0;
  }
  // The fork's events 2..forked_seq are the source's, body for body.
  void ExpectCopiedPrefix(const std::string& source, const std::string& fork) {
    auto src = Events(source), copy = Events(fork);
    ASSERT_FALSE(copy.empty());
    ASSERT_EQ(copy[0]["type"], "ProcessCreated");
    EXPECT_EQ(copy[0]["data"]["forked_from"], source);
    const uint64_t cut = copy[0]["data"]["forked_seq"];
    ASSERT_GE(copy.size(), cut);
    ASSERT_GE(src.size(), cut);
    for (uint64_t i = 1; i < cut; ++i) {
      EXPECT_EQ(copy[i]["seq"], src[i]["seq"]);
      EXPECT_EQ(copy[i]["type"], src[i]["type"]) << "seq " << i + 1;
      EXPECT_EQ(copy[i]["data"], src[i]["data"]) << "seq " << i + 1;
      EXPECT_EQ(copy[i]["time"], src[i]["time"]) << "seq " << i + 1;
      EXPECT_EQ(copy[i]["entity"], src[i]["entity"] == source ? Json(fork) : src[i]["entity"]);
    }
  }

  std::string runs_;
};

TEST_F(ForkCliTest, AForkFromAMiddleStepRunsThatStepAndWhatFollowsOnly) {
  std::string wf = Workflow("chain.yaml", kChainYaml);
  Json src = RunJson({wf, "--input", DirInput(), "--id", "src"});
  ASSERT_EQ(src["status"], "completed");
  EXPECT_EQ(src["outputs"]["a_run"], 1);

  auto r = Keel({"fork", "src", "--from", "c", "--id", "again", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json fork = Parse(r.out);
  EXPECT_EQ(fork["id"], "again");
  EXPECT_EQ(fork["status"], "completed");
  // a and b ran once (in the source), c and d twice.
  EXPECT_EQ(Runs("a"), 1);
  EXPECT_EQ(Runs("b"), 1);
  EXPECT_EQ(Runs("c"), 2);
  EXPECT_EQ(Runs("d"), 2);
  // The earlier outputs are the source's: a's first run, seen by b.
  EXPECT_EQ(fork["outputs"], src["outputs"]);
  EXPECT_EQ((*Task(fork, "a"))["output"], (*Task(src, "a"))["output"]);
  EXPECT_EQ((*Task(fork, "b"))["attempts"], 1);
  EXPECT_EQ((*Task(fork, "c"))["attempts"], 1);
  // Its first event names the source and the cut: just before c began.
  const uint64_t cut = SeqOf("src", "TaskScheduled", "c") - 1;
  EXPECT_EQ(fork["forked_from"], Json({{"process", "src"}, {"seq", cut}}));
  EXPECT_EQ(fork["inputs"], src["inputs"]);
  ExpectCopiedPrefix("src", "again");

  // Replay folds the new stream from seq 1; up to the cut it is the source's.
  auto at_cut = Keel({"replay", "again", "--to", std::to_string(cut), "--json"});
  ASSERT_EQ(at_cut.exit_code, 0) << at_cut.err;
  auto src_at_cut = Keel({"replay", "src", "--to", std::to_string(cut), "--json"});
  EXPECT_EQ(Parse(at_cut.out)["tasks"], Parse(src_at_cut.out)["tasks"]);
  auto whole = Keel({"replay", "again", "--json"});
  Json replayed = Parse(whole.out);
  EXPECT_EQ(replayed["status"], "completed");
  EXPECT_EQ(replayed["forked_from"], fork["forked_from"]);
  auto verify = Keel({"verify", "again"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out;
  ExpectVerified();

  // Ran the same way: diff names the fork and finds no parting after seq 1.
  auto diff = Keel({"diff", "src", "again"});
  EXPECT_EQ(diff.exit_code, 0) << diff.out;
  EXPECT_NE(diff.out.find("again is a fork of src: seqs 2.." + std::to_string(cut)),
            std::string::npos)
      << diff.out;
  EXPECT_NE(diff.out.find("cut before task c began"), std::string::npos) << diff.out;
}

TEST_F(ForkCliTest, AFailedProcessForkedWithChangedInputsCompletes) {
  std::string wf = Workflow("chain.yaml", kChainYaml);
  Json src = RunJson({wf, "--input", DirInput(), "--input", "ok=false", "--id", "bad"}, 1);
  ASSERT_EQ(src["status"], "failed");
  EXPECT_EQ(Runs("d"), 0);

  // --input changes one input over the source's.
  auto r = Keel({"fork", "bad", "--from", "c", "--input", "ok=true", "--id", "good", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json fork = Parse(r.out);
  EXPECT_EQ(fork["status"], "completed");
  EXPECT_EQ(fork["inputs"]["ok"], true);
  EXPECT_EQ(fork["inputs"]["dir"], runs_);
  EXPECT_EQ(Runs("a"), 1);
  EXPECT_EQ(Runs("b"), 1);
  EXPECT_EQ(Runs("c"), 2);
  EXPECT_EQ(Runs("d"), 1);
  // The source is as it was.
  EXPECT_EQ(Show("bad")["status"], "failed");

  // diff: where they part, after the copied prefix, and the inputs.
  auto diff = Keel({"diff", "bad", "good", "--json"});
  EXPECT_EQ(diff.exit_code, 1) << diff.err;
  Json d = Parse(diff.out);
  const uint64_t cut = fork["forked_from"]["seq"];
  EXPECT_EQ(d["identical"], false);
  EXPECT_EQ(d["fork"]["source"], "bad");
  EXPECT_EQ(d["fork"]["fork"], "good");
  EXPECT_EQ(d["fork"]["seq"], cut);
  EXPECT_EQ(d["fork"]["task"], "c");
  EXPECT_EQ(d["fork"]["inputs_changed"], true);
  EXPECT_GT(d["seq"].get<uint64_t>(), cut);
  auto human = Keel({"diff", "bad", "good"});
  EXPECT_NE(human.out.find("inputs changed:"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("first divergence at seq"), std::string::npos) << human.out;

  // --inputs replaces them whole (checked like run's: defaults filled in).
  auto whole = Keel({"fork", "bad", "--from", "c", "--inputs", Json({{"dir", runs_}}).dump(),
                     "--id", "whole", "--json"});
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  EXPECT_EQ(Parse(whole.out)["inputs"], Json({{"dir", runs_}, {"ok", true}, {"gate", "/"}}));
  ExpectVerified();
}

TEST_F(ForkCliTest, AForkFromAStepInsideBranchesKeepsWhatEndedBeforeTheCut) {
  std::string wf = Workflow("branches.yaml", kBranchesYaml);
  Json src = RunJson({wf, "--input", DirInput(), "--id", "src"});
  ASSERT_EQ(src["status"], "completed");

  // l2, the second step of branch left.
  auto r = Keel({"fork", "src", "--from", "l2", "--id", "from-l2", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json fork = Parse(r.out);
  EXPECT_EQ(fork["status"], "completed");
  const uint64_t cut = fork["forked_from"]["seq"];
  EXPECT_EQ(cut, SeqOf("src", "TaskScheduled", "both/left/l2") - 1);
  EXPECT_EQ(Runs("first"), 1);
  EXPECT_EQ(Runs("l1"), 1);
  EXPECT_EQ(Runs("l2"), 2);
  // r1, in the other branch, ran again only if it had not ended by the cut.
  const uint64_t r1_done = SeqOf("src", "TaskCompleted", "both/right/r1");
  EXPECT_EQ(Runs("r1"), r1_done <= cut ? 1 : 2);
  EXPECT_EQ((*Task(fork, "both/right/r1"))["attempts"], r1_done <= cut ? 1 : 2);
  EXPECT_EQ(Runs("item1"), 2);
  EXPECT_EQ(Runs("last"), 2);
  ExpectCopiedPrefix("src", "from-l2");

  // A task id names one item of the for_each.
  auto item = Keel({"fork", "src", "--from", "each/1/item", "--id", "from-item", "--json"});
  ASSERT_EQ(item.exit_code, 0) << item.err;
  Json forked_item = Parse(item.out);
  EXPECT_EQ(forked_item["status"], "completed");
  const uint64_t item_cut = forked_item["forked_from"]["seq"];
  EXPECT_EQ(item_cut, SeqOf("src", "TaskScheduled", "each/1/item") - 1);
  EXPECT_EQ(Runs("l2"), 2);  // before the cut: not again
  EXPECT_EQ(Runs("item2"), 3);
  // item 1 (index 0) began before the cut: it runs again unless it had ended.
  const uint64_t item0_done = SeqOf("src", "TaskCompleted", "each/0/item");
  EXPECT_EQ(Runs("item1"), item0_done <= item_cut ? 2 : 3);
  EXPECT_EQ(Runs("last"), 3);
  EXPECT_EQ(forked_item["tasks"].size(), src["tasks"].size());
  ExpectVerified();
}

TEST_F(ForkCliTest, VisitPicksTheNthVisitOfALoop) {
  std::string wf = Workflow("loop.yaml", kLoopYaml);
  Json src = RunJson({wf, "--input", DirInput(), "--id", "src"});
  ASSERT_EQ(src["outputs"]["n"], 3);
  ASSERT_EQ(Runs("work"), 3);

  auto r = Keel({"fork", "src", "--from", "work", "--visit", "2", "--id", "second", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json fork = Parse(r.out);
  EXPECT_EQ(fork["status"], "completed");
  EXPECT_EQ(fork["outputs"]["n"], 3);
  // Visits 2 and 3 ran again, from the variables as they were (n = 1).
  EXPECT_EQ(ReadFile(runs_ + "/work"), "0\n1\n2\n1\n2\n");
  EXPECT_EQ(fork["forked_from"]["seq"], SeqOf("src", "TaskScheduled", "work#2") - 1);
  // The task id says the same.
  auto same = Keel({"fork", "src", "--from", "work#2", "--id", "second-by-task", "--json"});
  ASSERT_EQ(same.exit_code, 0) << same.err;
  EXPECT_EQ(Parse(same.out)["forked_from"], fork["forked_from"]);
  ExpectVerified();
}

TEST_F(ForkCliTest, RefusalsExitTwoAndCreateNothing) {
  std::string wf = Workflow("chain.yaml", kChainYaml);
  RunJson({wf, "--input", DirInput(), "--input", "ok=false", "--id", "src"}, 1);
  ASSERT_EQ(ProcessCount(), 1u);
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"fork", "nope", "--from", "a"}, "no process with id 'nope'"},
      {{"fork", "src", "--from", "zz"}, "has no step 'zz'"},
      {{"fork", "src", "--from", "d"}, "never began"},
      {{"fork", "src", "--from", "a", "--id", "src"}, "already exists"},
      {{"fork", "src", "--from", "a", "--inputs", "{not json"}, "--inputs"},
      {{"fork", "src", "--from", "a", "--inputs", "[1]"}, "JSON object"},
      {{"fork", "src", "--from", "a", "--input", "zz=1"}, "not declared"},
      {{"fork", "src", "--from", "a", "--inputs", "{}"}, "dir"},
      {{"fork", "src", "--from", "a", "--visit", "2"}, "no visit 2"},
      {{"fork", "src", "--from", "a", "--id", "a/b"}, "not valid"},
  };
  for (const auto& c : cases) {
    auto r = Keel(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args[3] << ": " << r.out << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
  }
  // --json: the refusal as the HTTP API's error object.
  auto json = Keel({"fork", "nope", "--from", "a", "--json"});
  EXPECT_EQ(json.exit_code, 2);
  EXPECT_EQ(Parse(json.out)["error"]["code"], "not_found");
  EXPECT_EQ(ProcessCount(), 1u);
  EXPECT_EQ(Runs("a"), 1);
  ExpectVerified();
}

TEST_F(ForkCliTest, AVisitThatARetryBeganIsRefusedWithTheReason) {
  std::string wf = Workflow("flaky.yaml", kFlakyYaml);
  RunJson({wf, "--input", DirInput(), "--id", "src"}, 1);
  auto retried = Keel({"retry", "src", "--json"});
  ASSERT_EQ(retried.exit_code, 0) << retried.err;
  auto done = Keel({"wait", "src", "--json"});
  ASSERT_EQ(done.exit_code, 0) << done.err;
  ASSERT_EQ(Parse(done.out)["status"], "completed");

  // Visit 2 of `both` began inside the retry (with the failed task it
  // starts again): from just before it nothing would begin it.
  auto refused = Keel({"fork", "src", "--from", "both", "--visit", "2"});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("retry"), std::string::npos) << refused.err;
  EXPECT_EQ(ProcessCount(), 1u);
  // Its first visit is a well-defined cut: the fork runs the fan-out anew.
  auto r = Keel({"fork", "src", "--from", "both", "--id", "anew", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Parse(r.out)["status"], "completed");
  EXPECT_EQ(Runs("s"), 2);
  EXPECT_EQ(Runs("f"), 3);
  ExpectVerified();
}

TEST_F(ForkCliTest, TheHttpApiForksAndRefuses) {
  std::string wf = Workflow("chain.yaml", kChainYaml);
  RunJson({wf, "--input", DirInput(), "--input", "ok=false", "--id", "src"}, 1);
  auto serve = Spawn("serve", {"serve", "--listen", "127.0.0.1:0", "--exec-policy", "full"});
  std::string address = AwaitNodeAddress(serve.get());
  ASSERT_FALSE(address.empty()) << Err("serve");
  auto colon = address.rfind(':');
  httplib::Client http(address.substr(0, colon), std::stoi(address.substr(colon + 1)));
  http.set_read_timeout(120, 0);

  Json body = {
      {"from", "c"}, {"inputs", {{"dir", runs_}, {"ok", true}}}, {"id", "api"}, {"by", "alice"}};
  auto forked = http.Post("/v1/processes/src/fork?wait=60", body.dump(), "application/json");
  ASSERT_TRUE(forked);
  EXPECT_EQ(forked->status, 201) << forked->body;
  Json snapshot = Parse(forked->body);
  EXPECT_EQ(snapshot["status"], "completed");
  EXPECT_EQ(snapshot["forked_from"]["process"], "src");
  EXPECT_EQ(Runs("a"), 1);
  EXPECT_EQ(Runs("d"), 1);
  auto events = http.Get("/v1/processes/api/events");
  ASSERT_TRUE(events);
  EXPECT_EQ(Lines(events->body).front()["actor"], "alice");

  struct Case {
    std::string path;
    Json body;
    int status;
    std::string code;
  };
  const std::vector<Case> cases = {
      {"/v1/processes/nope/fork", {{"from", "c"}}, 404, "not_found"},
      {"/v1/processes/src/fork", {{"from", "zz"}}, 404, "not_found"},
      {"/v1/processes/src/fork", {{"from", "d"}}, 409, "conflict"},
      {"/v1/processes/src/fork", {{"from", "c"}, {"id", "api"}}, 409, "conflict"},
      {"/v1/processes/src/fork", Json::object(), 400, "invalid"},
      {"/v1/processes/src/fork", {{"from", "c"}, {"inputs", {{"zz", 1}}}}, 400, "invalid"},
      {"/v1/processes/src/fork", {{"from", "c"}, {"visit", -1}}, 400, "invalid"},
      {"/v1/processes/src/fork?bogus=1", {{"from", "c"}}, 400, "invalid"},
  };
  for (const auto& c : cases) {
    auto res = http.Post(c.path, c.body.dump(), "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, c.status) << c.path << " " << c.body.dump() << ": " << res->body;
    EXPECT_EQ(Parse(res->body)["error"]["code"], c.code) << res->body;
  }
  // The CLI goes through the live node.
  auto cli = Keel({"fork", "src", "--from", "c", "--input", "ok=true", "--id", "cli", "--json"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(Parse(cli.out)["status"], "completed");
  serve->Signal(SIGTERM);
  serve->Wait();
  ExpectVerified();
}

// SIGKILL the fork command at ever later moments (while it opens the node,
// plans, appends, resumes, runs): afterwards each fork is whole (its copied
// prefix complete) or absent, never half there; each that exists finishes
// on the next node and never runs a step before the cut again.
TEST_F(ForkCliTest, SigkillDuringAForkLeavesAWholeForkOrNone) {
  std::string wf = Workflow("chain.yaml", kChainYaml);
  RunJson({wf, "--input", DirInput(), "--id", "src"});
  constexpr int kForks = 16;
  int created = 0;
  for (int i = 0; i < kForks; ++i) {
    const std::string id = "k" + std::to_string(i);
    auto fork = Spawn(id, {"fork", "src", "--from", "c", "--id", id, "--json"});
    std::this_thread::sleep_for(std::chrono::milliseconds(60 * i));
    fork->Signal(SIGKILL);
    fork->Wait();
    auto shown = Keel({"show", id, "--json"});
    if (shown.exit_code == 2) continue;  // none: nothing of it was written
    ASSERT_EQ(shown.exit_code, 0) << shown.err;
    ++created;
    ExpectCopiedPrefix("src", id);
    auto finished = Keel({"wait", id, "--json"});
    ASSERT_EQ(finished.exit_code, 0) << finished.err;
    EXPECT_EQ(Parse(finished.out)["status"], "completed");
  }
  // Every process is the source or one of the forks that exist.
  RecordProperty("forks_created", created);
  EXPECT_EQ(ProcessCount(), static_cast<uint64_t>(1 + created));
  EXPECT_EQ(Runs("a"), 1);
  EXPECT_EQ(Runs("b"), 1);
  ExpectVerified();
}

// SIGKILL while the fork's step runs: the next node runs that step again
// (a new attempt), not the ones before the cut.
TEST_F(ForkCliTest, SigkillWhileTheForkRunsResumesFromItsStep) {
  std::string wf = Workflow("chain.yaml", kChainYaml);
  RunJson({wf, "--input", DirInput(), "--id", "src"});
  const std::string gate = dir_ / "gate";
  auto fork = Spawn(
      "fork", {"fork", "src", "--from", "c", "--input", "gate=" + gate, "--id", "held", "--json"});
  // c has started in the fork (its second run overall) and waits at the gate.
  ASSERT_TRUE(WaitUntil([&] { return Runs("c") == 2; })) << Err("fork");
  fork->Signal(SIGKILL);
  fork->Wait();
  WriteFile(gate, "");
  auto done = Keel({"wait", "held", "--json"});
  ASSERT_EQ(done.exit_code, 0) << done.err;
  Json snapshot = Parse(done.out);
  EXPECT_EQ(snapshot["status"], "completed");
  EXPECT_EQ((*Task(snapshot, "c"))["attempts"], 2);
  EXPECT_EQ((*Task(snapshot, "a"))["attempts"], 1);
  EXPECT_EQ(Runs("a"), 1);
  EXPECT_EQ(Runs("b"), 1);
  EXPECT_EQ(Runs("c"), 3);
  EXPECT_EQ(Runs("d"), 2);
  ExpectCopiedPrefix("src", "held");
  ExpectVerified();
}

}  // namespace
}  // namespace keel::testing
