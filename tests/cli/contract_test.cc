// Contract mends of issue 14 through the real binary: `tail --from 0`, waits
// that fire due timers, controls refused on finished processes, idempotency
// keys of another workflow, `waiting_on` after a decision while paused,
// `--until-done` and `run --detach`.
#include <httplib.h>
#include <signal.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <thread>

#include "tests/cli/cli_fixture.h"

namespace keel {
namespace {

using testing::WaitUntil;
using Json = nlohmann::json;

const char kSleepYaml[] = R"(name: nap
steps:
  - {id: cool, sleep: 1s}
  - {id: after, activity: echo, with: {text: rested}}
outputs: {said: "steps.after.output"}
)";

const char kApprovalYaml[] = R"(name: ship
steps:
  - {id: ok, approval: {prompt: "ship?"}}
  - {id: after, activity: echo, with: {text: shipped}}
)";

const char kFailYaml[] = R"(name: broken
steps:
  - {id: a, activity: fail, with: {message: boom}}
)";

class ContractTest : public testing::KeelCliTest {
 protected:
  // `keel serve` on a free port (no token); its address once node.json names it.
  void Serve() {
    server_ = Spawn("serve", {"serve", "--listen", "127.0.0.1:0", "--exec-policy", "full"});
    address_ = AwaitNodeAddress();
    ASSERT_FALSE(address_.empty()) << Err("serve");
    auto colon = address_.rfind(':');
    client_ = std::make_unique<httplib::Client>(address_.substr(0, colon),
                                                std::stoi(address_.substr(colon + 1)));
    client_->set_read_timeout(std::chrono::seconds(60));
  }

  void StopServer() {
    server_->Signal(SIGTERM);
    EXPECT_EQ(server_->Wait(), 128 + SIGTERM) << Err("serve");  // a graceful stop
  }

  httplib::Result Post(const std::string& path, const Json& body) {
    return client_->Post(path.c_str(), body.dump(), "application/json");
  }

  Json Show(const std::string& id) {
    auto r = Keel({"show", id, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Parse(r.out);
  }

  std::unique_ptr<testing::Child> server_;
  std::unique_ptr<httplib::Client> client_;
  std::string address_;
};

// ---- tail --from ---------------------------------------------------------------

TEST_F(ContractTest, TailFromZeroPrintsTheWholeLog) {
  std::string wf = Workflow("hello.yaml", testing::kHelloYaml);
  RunJson({wf, "--input", "who=a"});
  RunJson({wf, "--input", "who=b"});
  auto last10 = Keel({"tail", "--json"});
  ASSERT_EQ(last10.exit_code, 0) << last10.err;
  auto tail = Lines(last10.out);
  ASSERT_EQ(tail.size(), 10u);
  uint64_t last = tail.back()["global_seq"];
  ASSERT_GT(last, 10u);

  auto all = Keel({"tail", "--from", "0", "--json"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  auto lines = Lines(all.out);
  ASSERT_EQ(lines.size(), last);
  EXPECT_EQ(lines.front()["global_seq"], 1);
  EXPECT_EQ(lines.front()["type"], "ProcessCreated");
  auto from1 = Keel({"tail", "--from", "1", "--json"});
  EXPECT_EQ(Lines(from1.out).size(), last);
}

// ---- wait and due timers -------------------------------------------------------

// A process rests on timers that are all due by the time `wait` opens its
// node; the node fires them one after the other, and the process rests
// again after each while the others are still due. `wait` must let them
// fire before it judges the process.
TEST_F(ContractTest, WaitFiresTimersThatAreAlreadyDueBeforeItJudges) {
  // Every branch sleeps until the same moment, a few seconds from now.
  auto due = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now()) +
             std::chrono::seconds(4);
  std::time_t t = std::chrono::system_clock::to_time_t(due);
  char until[32];
  std::strftime(until, sizeof until, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  std::string yaml = "name: naps\nsteps:\n  - id: all\n    parallel:\n";
  for (int i = 0; i < 8; ++i) {
    std::string n = std::to_string(i);
    yaml += "      b" + n + ": [{id: nap" + n + ", sleep: {until: \"" + until + "\"}}]\n";
  }
  yaml += "  - {id: after, activity: echo, with: {text: rested}}\n";
  std::string wf = Workflow("naps.yaml", yaml);
  Json resting = RunJson({wf}, 4);
  ASSERT_EQ(resting["status"], "waiting");
  ASSERT_EQ(resting["waiting_on"].size(), 8u);
  std::string id = resting["id"];
  ASSERT_TRUE(WaitUntil(
      [&] { return std::chrono::system_clock::now() > due + std::chrono::milliseconds(100); }));
  auto waited = Keel({"wait", id, "--json"});
  EXPECT_EQ(waited.exit_code, 0) << waited.err << waited.out;
  Json done = Parse(waited.out);
  EXPECT_EQ(done["status"], "completed");
  EXPECT_TRUE(done["waiting_on"].empty());
}

// ---- controls on finished processes ----------------------------------------------

TEST_F(ContractTest, ControlsOnAFinishedProcessAreRefusedButRetryOfAFailedOne) {
  std::string hello = Workflow("hello.yaml", testing::kHelloYaml);
  Json done = RunJson({hello, "--input", "who=a"});
  std::string id = done["id"];
  uint64_t last_seq = done["last_seq"];
  for (std::string action : {"cancel", "pause", "resume", "retry"}) {
    auto r = Keel({action, id});
    EXPECT_EQ(r.exit_code, 2) << action << ": " << r.out;
    EXPECT_NE(r.err.find("completed"), std::string::npos) << action << ": " << r.err;
  }
  auto approve = Keel({"approve", id, "greet"});
  EXPECT_EQ(approve.exit_code, 2);
  auto signal = Keel({"signal", id, "go"});
  EXPECT_EQ(signal.exit_code, 2);
  EXPECT_EQ(Show(id)["last_seq"], last_seq);  // nothing was recorded

  std::string broken = Workflow("broken.yaml", kFailYaml);
  Json failed = RunJson({broken}, 1);
  std::string fid = failed["id"];
  auto cancel = Keel({"cancel", fid});
  EXPECT_EQ(cancel.exit_code, 2);
  EXPECT_NE(cancel.err.find("failed"), std::string::npos) << cancel.err;
  auto retry = Keel({"retry", fid, "--json"});
  EXPECT_EQ(retry.exit_code, 0) << retry.err;
}

TEST_F(ContractTest, CancellingACompletedProcessOverHttpIsAConflict) {
  Serve();
  Json body = {{"workflow", "name: e\nsteps:\n  - {id: a, activity: echo}\n"}};
  auto created = client_->Post("/v1/processes?wait=30", body.dump(), "application/json");
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 201) << created->body;
  Json snapshot = Parse(created->body);
  ASSERT_EQ(snapshot["status"], "completed");
  std::string id = snapshot["id"];
  auto cancelled = Post("/v1/processes/" + id + "/cancel", Json::object());
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->status, 409) << cancelled->body;
  Json error = Parse(cancelled->body)["error"];
  EXPECT_EQ(error["code"], "conflict");
  EXPECT_NE(error["message"].get<std::string>().find("completed"), std::string::npos);
  // Through the CLI and the live node: exit 2 with the reason.
  auto cli = Keel({"cancel", id});
  EXPECT_EQ(cli.exit_code, 2);
  EXPECT_NE(cli.err.find("completed"), std::string::npos) << cli.err;
  StopServer();
}

// ---- idempotency keys ------------------------------------------------------------

TEST_F(ContractTest, AnIdempotencyKeyOfAnotherWorkflowIsAConflict) {
  std::string hello = Workflow("hello.yaml", testing::kHelloYaml);
  std::string other = Workflow("other.yaml", "name: other\nsteps:\n  - {id: x, activity: echo}\n");
  Json first = RunJson({hello, "--input", "who=a", "--idempotency-key", "k1"});
  std::string id = first["id"];
  auto clash = Keel({"run", other, "--idempotency-key", "k1", "--json"});
  EXPECT_EQ(clash.exit_code, 2) << clash.out;
  EXPECT_NE(clash.err.find(id), std::string::npos) << clash.err;
  EXPECT_NE(clash.err.find("'hello'"), std::string::npos) << clash.err;
  // With --json the refusal is also an error object on stdout; no snapshot.
  EXPECT_EQ(Json::parse(clash.out)["error"]["code"], "conflict") << clash.out;
  // The same workflow (other inputs or not) gets the existing process.
  Json same = RunJson({hello, "--input", "who=b", "--idempotency-key", "k1"});
  EXPECT_EQ(same["id"], id);
  auto ls = Keel({"ls", "--json"});
  EXPECT_EQ(Parse(ls.out)["total"], 1);

  Serve();
  Json body = {{"workflow", "name: other\nsteps:\n  - {id: x, activity: echo}\n"},
               {"idempotency_key", "k1"}};
  auto refused = Post("/v1/processes", body);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 409) << refused->body;
  EXPECT_EQ(Parse(refused->body)["error"]["code"], "conflict");
  auto remote = Keel({"run", other, "--idempotency-key", "k1"});
  EXPECT_EQ(remote.exit_code, 2);
  EXPECT_NE(remote.err.find(id), std::string::npos) << remote.err;
  StopServer();
}

// ---- waiting_on ------------------------------------------------------------------

TEST_F(ContractTest, AnApprovalDecidedWhilePausedLeavesWaitingOn) {
  std::string wf = Workflow("ship.yaml", kApprovalYaml);
  Json waiting = RunJson({wf}, 4);
  std::string id = waiting["id"];
  ASSERT_EQ(waiting["waiting_on"][0]["kind"], "approval");
  auto paused = Keel({"pause", id, "--json"});
  ASSERT_EQ(paused.exit_code, 0) << paused.err;
  auto approved = Keel({"approve", id, "ok", "--by", "alice", "--json"});
  ASSERT_EQ(approved.exit_code, 0) << approved.err;
  for (const Json& s : {Parse(approved.out), Show(id)}) {
    EXPECT_EQ(s["status"], "paused");
    ASSERT_EQ(s["waiting_on"].size(), 1u) << s["waiting_on"].dump();
    EXPECT_EQ(s["waiting_on"][0]["kind"], "pause");
    EXPECT_EQ(s["tasks"][0]["approval"]["status"], "approved");
  }
  auto resumed = Keel({"resume", id});
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
  auto done = Keel({"wait", id, "--json"});
  EXPECT_EQ(done.exit_code, 0) << done.err;
  EXPECT_TRUE(Parse(done.out)["waiting_on"].empty());
}

// ---- --until-done ----------------------------------------------------------------

TEST_F(ContractTest, RunAndWaitUntilDoneWaitThroughTimers) {
  std::string wf = Workflow("nap.yaml", kSleepYaml);
  Json done = RunJson({wf, "--until-done"}, 0);
  EXPECT_EQ(done["status"], "completed");
  EXPECT_EQ(done["outputs"]["said"], "rested");

  Json resting = RunJson({wf}, 4);
  auto waited = Keel({"wait", resting["id"], "--until-done", "--json"});
  EXPECT_EQ(waited.exit_code, 0) << waited.err;
  EXPECT_EQ(Parse(waited.out)["status"], "completed");
}

TEST_F(ContractTest, UntilDoneStillReturnsWhereOnlyAPersonMovesTheProcess) {
  std::string wf = Workflow("later.yaml", R"(name: later
steps:
  - {id: cool, sleep: 1s}
  - {id: ok, approval: {prompt: "go?"}}
)");
  Json waiting = RunJson({wf, "--until-done"}, 4);
  EXPECT_EQ(waiting["status"], "waiting");
  ASSERT_EQ(waiting["waiting_on"].size(), 1u);
  EXPECT_EQ(waiting["waiting_on"][0]["kind"], "approval");
  // A timeout ends the wait on a long timer: unfinished, exit 4.
  std::string slow = Workflow("slow.yaml", "name: slow\nsteps:\n  - {id: cool, sleep: 1h}\n");
  auto timed = Keel({"run", slow, "--until-done", "--timeout", "1", "--json"});
  EXPECT_EQ(timed.exit_code, 4) << timed.err;
  EXPECT_EQ(Parse(timed.out)["status"], "waiting");
}

TEST_F(ContractTest, UntilDoneWaitsOnALiveNodeToo) {
  Serve();
  std::string wf = Workflow("nap.yaml", kSleepYaml);
  Json done = RunJson({wf, "--until-done"}, 0);
  EXPECT_EQ(done["status"], "completed");
  auto detached = Keel({"run", wf, "--detach", "--json"});
  ASSERT_EQ(detached.exit_code, 0) << detached.err;
  auto waited = Keel({"wait", Parse(detached.out)["id"], "--until-done", "--json"});
  EXPECT_EQ(waited.exit_code, 0) << waited.err;
  EXPECT_EQ(Parse(waited.out)["status"], "completed");
  StopServer();
}

// ---- references no run can satisfy -----------------------------------------------

TEST_F(ContractTest, ReadingAnUndeclaredInputIsRefusedWhenTheFileIsLoaded) {
  std::string wf = Workflow("q.yaml", R"(name: q
inputs: {who: {default: x}}
steps:
  - {id: a, activity: echo, with: {text: "${inputs.who}"}}
  - {id: b, activity: echo, with: {text: "${inputs.q}"}}
)");
  auto r = Keel({"run", wf, "--json"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(wf + ":5: step 'b': with.text: reads 'inputs.q'"), std::string::npos)
      << r.err;
  EXPECT_EQ(Json::parse(r.out)["error"]["code"], "invalid") << r.out;
  std::string vars = Workflow("v.yaml", R"(name: v
steps:
  - {id: a, activity: echo, save_as: got}
  - {id: b, when: "vars.nope != null", activity: echo}
)");
  auto v = Keel({"run", vars});
  EXPECT_EQ(v.exit_code, 2);
  EXPECT_NE(v.err.find(vars + ":4: step 'b': when: reads 'vars.nope'"), std::string::npos) << v.err;
  EXPECT_EQ(Keel({"ls", "--json"}).out.find("\"total\":1"), std::string::npos);  // nothing stored
}

// ---- run --detach ----------------------------------------------------------------

TEST_F(ContractTest, DetachWithNoLiveNodePrintsTheSnapshotAndLeavesTheRunToTheNextNode) {
  std::string hello = Workflow("hello.yaml", testing::kHelloYaml);
  auto detached = Keel({"run", hello, "--input", "who=a", "--detach", "--json"});
  ASSERT_EQ(detached.exit_code, 0) << detached.err;
  Json snapshot = Parse(detached.out);
  std::string id = snapshot["id"];
  EXPECT_EQ(snapshot["workflow"], "hello");
  EXPECT_EQ(snapshot["inputs"]["who"], "a");
  EXPECT_NE(detached.err.find("no live node"), std::string::npos) << detached.err;
  // Created, not run: it moves when a node next opens the dir.
  EXPECT_EQ(Show(id)["status"], "pending");
  auto waited = Keel({"wait", id, "--json"});
  EXPECT_EQ(waited.exit_code, 0) << waited.err;
  EXPECT_EQ(Parse(waited.out)["status"], "completed");

  // Without --json: the human form, not just the id.
  auto human = Keel({"run", hello, "--input", "who=b", "--detach"});
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("hello"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("pending"), std::string::npos) << human.out;
}

TEST_F(ContractTest, DetachOnALiveNodePrintsTheSnapshotAndTheNodeRunsIt) {
  Serve();
  std::string hello = Workflow("hello.yaml", testing::kHelloYaml);
  auto detached = Keel({"run", hello, "--input", "who=a", "--detach", "--json"});
  ASSERT_EQ(detached.exit_code, 0) << detached.err;
  Json snapshot = Parse(detached.out);
  EXPECT_EQ(snapshot["workflow"], "hello");
  EXPECT_EQ(detached.err.find("no live node"), std::string::npos) << detached.err;
  auto waited = Keel({"wait", snapshot["id"], "--json"});
  EXPECT_EQ(waited.exit_code, 0) << waited.err;
  StopServer();
}

}  // namespace
}  // namespace keel
