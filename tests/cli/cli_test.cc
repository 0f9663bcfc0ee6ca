// The keel CLI against INTERFACE.md: output shapes, exit codes, bad input.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/test_util.h"

namespace keel {
namespace {

using Json = nlohmann::json;
using testing::CommandResult;

class CliTest : public ::testing::Test {
 protected:
  CommandResult Keel(std::vector<std::string> args, const std::string& stdin_text = "") {
    args.insert(args.begin(), testing::KeelBinary());
    args.push_back("--data");
    args.push_back(dir_ / "data");
    return testing::Run(args, stdin_text);
  }
  std::string Workflow(const std::string& name, const std::string& yaml) {
    std::string path = dir_ / name;
    testing::WriteFile(path, yaml);
    return path;
  }
  Json Parse(const std::string& text) {
    Json j = Json::parse(text, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << text;
    return j;
  }
  // Asserts that the data dir holds no process: it is empty, or was never made.
  void ExpectNoProcess() {
    auto ls = Keel({"ls", "--json"});
    if (ls.exit_code == 2) {
      EXPECT_NE(ls.err.find("does not exist"), std::string::npos) << ls.err;
    } else {
      ASSERT_EQ(ls.exit_code, 0) << ls.err;
      EXPECT_EQ(Parse(ls.out)["total"], 0);
    }
  }
  testing::TempDir dir_;
};

const char kHello[] = R"(name: hello
inputs: {who: {required: true}, n: {default: 2}}
steps:
  - {id: greet, activity: echo, with: {text: "hello ${inputs.who}"}, save_as: g}
  - {id: twice, activity: echo, with: {n: "${inputs.n}"}}
outputs: {greeting: "vars.g"}
)";

TEST_F(CliTest, RunJsonPrintsCompletedSnapshotAndExitsZero) {
  auto r = Keel({"run", Workflow("hello.yaml", kHello), "--input", "who=world", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json s = Parse(r.out);
  EXPECT_EQ(s["status"], "completed");
  EXPECT_EQ(s["workflow"], "hello");
  EXPECT_EQ(s["outputs"]["greeting"], "hello world");
  EXPECT_EQ(s["inputs"], (Json{{"who", "world"}, {"n", 2}}));
  EXPECT_TRUE(s["id"].get<std::string>().rfind("p_", 0) == 0);
  for (const char* key : {"variables", "error", "created_at", "updated_at", "ended_at", "last_seq",
                          "idempotency_key", "branches", "tasks", "waiting_on"}) {
    EXPECT_TRUE(s.contains(key)) << key;
  }
  ASSERT_EQ(s["tasks"].size(), 2u);
  EXPECT_EQ(s["tasks"][0]["id"], "greet");
  EXPECT_EQ(s["tasks"][1]["input"], (Json{{"n", 2}}));
  EXPECT_EQ(s["branches"][0]["id"], "main");
  EXPECT_TRUE(s["branches"][0]["parent"].is_null());
}

TEST_F(CliTest, RunOfFailingProcessExitsOne) {
  auto r = Keel(
      {"run",
       Workflow("f.yaml", "name: f\nsteps:\n  - {id: x, activity: fail, with: {message: bad}}\n"),
       "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(Parse(r.out)["status"], "failed");
}

TEST_F(CliTest, InvalidWorkflowExitsTwoNamingFileLineAndStepAndWritesNothing) {
  std::string path =
      Workflow("bad.yaml", "name: bad\nsteps:\n  - id: a\n    activity: echo\n    bogus: 1\n");
  auto r = Keel({"run", path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bad.yaml"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(":3"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("'a'"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one-line reason: " << r.err;
  ExpectNoProcess();
}

TEST_F(CliTest, MalformedYamlAndBadDurationAndGotoToMissingStepExitTwo) {
  EXPECT_EQ(Keel({"run", Workflow("m.yaml", "name: m\nsteps: [\n")}).exit_code, 2);
  EXPECT_EQ(
      Keel({"run", Workflow("d.yaml",
                            "name: d\nsteps:\n  - {id: a, activity: echo, timeout: 5 parsecs}\n")})
          .exit_code,
      2);
  EXPECT_EQ(Keel({"run", Workflow("g.yaml",
                                  "name: g\nsteps:\n  - {id: a, activity: echo, goto: nowhere}\n")})
                .exit_code,
            2);
  EXPECT_EQ(Keel({"run", Workflow("e.yaml",
                                  "name: e\nsteps:\n  - {id: a, when: \"1 +\", activity: echo}\n")})
                .exit_code,
            2);
}

TEST_F(CliTest, MissingRequiredOrUndeclaredInputOrUnknownActivityExitsTwo) {
  auto missing = Keel({"run", Workflow("hello.yaml", kHello)});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("who"), std::string::npos) << missing.err;
  EXPECT_EQ(Keel({"run", Workflow("hello.yaml", kHello), "--input", "who=x", "--input", "extra=1"})
                .exit_code,
            2);
  auto unknown =
      Keel({"run", Workflow("u.yaml", "name: u\nsteps:\n  - {id: a, activity: teleport}\n")});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("teleport"), std::string::npos) << unknown.err;
  ExpectNoProcess();
}

TEST_F(CliTest, ShowEventsAndLsReadTheLog) {
  auto run =
      Keel({"run", Workflow("hello.yaml", kHello), "--inputs", R"({"who": "ann"})", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::string id = Parse(run.out)["id"];

  auto show = Keel({"show", id, "--json"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_EQ(Parse(show.out), Parse(run.out));
  auto human = Keel({"show", id});
  EXPECT_NE(human.out.find("greet"), std::string::npos);

  auto events = Keel({"events", id, "--json"});
  ASSERT_EQ(events.exit_code, 0) << events.err;
  std::istringstream lines(events.out);
  std::string line;
  uint64_t seq = 0;
  std::vector<std::string> types;
  while (std::getline(lines, line)) {
    Json e = Parse(line);
    EXPECT_EQ(e["seq"], ++seq);
    EXPECT_EQ(e["stream"], id);
    for (const char* key : {"global_seq", "time", "type", "entity", "actor", "data", "hash"}) {
      EXPECT_TRUE(e.contains(key)) << key;
    }
    EXPECT_EQ(e["hash"].get<std::string>().size(), 64u);
    types.push_back(e["type"]);
  }
  ASSERT_GE(types.size(), 4u);
  EXPECT_EQ(types.front(), "ProcessCreated");
  EXPECT_EQ(types.back(), "ProcessCompleted");
  EXPECT_EQ(Parse(run.out)["last_seq"], seq);

  auto from = Keel({"events", id, "--from", "3", "--json"});
  EXPECT_EQ(Parse(from.out.substr(0, from.out.find('\n')))["seq"], 3);

  auto ls = Keel({"ls", "--json"});
  ASSERT_EQ(ls.exit_code, 0);
  Json list = Parse(ls.out);
  EXPECT_EQ(list["total"], 1);
  EXPECT_EQ(list["limit"], 50);
  EXPECT_EQ(list["offset"], 0);
  EXPECT_EQ(list["has_more"], false);
  ASSERT_EQ(list["processes"].size(), 1u);
  EXPECT_EQ(list["processes"][0]["id"], id);
  EXPECT_FALSE(list["processes"][0].contains("tasks"));
  EXPECT_FALSE(list["processes"][0].contains("branches"));
  EXPECT_FALSE(list["processes"][0].contains("variables"));
  EXPECT_EQ(Parse(Keel({"ls", "--status", "failed", "--json"}).out)["total"], 0);
  EXPECT_EQ(Parse(Keel({"ls", "--workflow", "hello", "--json"}).out)["total"], 1);
}

TEST_F(CliTest, LsPagesNewestFirst) {
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto r = Keel(
        {"run", Workflow("hello.yaml", kHello), "--input", "who=" + std::to_string(i), "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ids.push_back(Parse(r.out)["id"]);
  }
  Json page = Parse(Keel({"ls", "--limit", "2", "--json"}).out);
  EXPECT_EQ(page["total"], 3);
  EXPECT_EQ(page["has_more"], true);
  ASSERT_EQ(page["processes"].size(), 2u);
  EXPECT_EQ(page["processes"][0]["id"], ids[2]);
  Json rest = Parse(Keel({"ls", "--limit", "2", "--offset", "2", "--json"}).out);
  EXPECT_EQ(rest["has_more"], false);
  ASSERT_EQ(rest["processes"].size(), 1u);
  EXPECT_EQ(rest["processes"][0]["id"], ids[0]);
}

TEST_F(CliTest, UnknownIdExitsTwo) {
  ASSERT_EQ(Keel({"run", Workflow("hello.yaml", kHello), "--input", "who=x"}).exit_code, 0);
  auto show = Keel({"show", "p_nope"});
  EXPECT_EQ(show.exit_code, 2);
  EXPECT_NE(show.err.find("p_nope"), std::string::npos);
  EXPECT_EQ(Keel({"events", "p_nope"}).exit_code, 2);
  EXPECT_EQ(Keel({"wait", "p_nope"}).exit_code, 2);
}

TEST_F(CliTest, RunWithAnIdInUseIsRefusedAndLeavesThatProcessAlone) {
  std::string wf = Workflow("hello.yaml", kHello);
  auto first = Keel({"run", wf, "--input", "who=x", "--id", "p_taken", "--json"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto again = Keel({"run", wf, "--input", "who=y", "--id", "p_taken"});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("already exists"), std::string::npos) << again.err;
  auto show = Keel({"show", "p_taken", "--json"});
  ASSERT_EQ(show.exit_code, 0);
  EXPECT_EQ(Parse(show.out), Parse(first.out));
}

TEST_F(CliTest, IdempotencyKeyReturnsTheFirstProcess) {
  auto a = Keel({"run", Workflow("hello.yaml", kHello), "--input", "who=x", "--idempotency-key",
                 "k1", "--json"});
  auto b = Keel({"run", Workflow("hello.yaml", kHello), "--input", "who=y", "--idempotency-key",
                 "k1", "--json"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(Parse(a.out)["id"], Parse(b.out)["id"]);
  EXPECT_EQ(Parse(b.out)["idempotency_key"], "k1");
  EXPECT_EQ(Parse(Keel({"ls", "--json"}).out)["total"], 1);
}

TEST_F(CliTest, ExplicitIdIsUsedAndWaitOnFinishedProcessExitsByStatus) {
  auto r =
      Keel({"run", Workflow("hello.yaml", kHello), "--input", "who=x", "--id", "p_mine", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Parse(r.out)["id"], "p_mine");
  auto w = Keel({"wait", "p_mine", "--json"});
  EXPECT_EQ(w.exit_code, 0) << w.err;
  EXPECT_EQ(Parse(w.out)["status"], "completed");
  EXPECT_EQ(
      Keel({"run", Workflow("hello.yaml", kHello), "--input", "who=x", "--id", "p_mine"}).exit_code,
      2);
}

TEST_F(CliTest, DetachPrintsSnapshotOnceCreatedAndWaitFinishesIt) {
  std::string path =
      Workflow("slow.yaml",
               "name: slow\nsteps:\n  - {id: s, activity: exec, with: {argv: [sleep, '0.3']}}\n");
  auto d = Keel({"run", path, "--detach", "--json"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  Json created = Parse(d.out);
  EXPECT_TRUE(created["status"] == "pending" || created["status"] == "running") << created;
  auto w = Keel({"wait", created["id"], "--json"});
  EXPECT_EQ(w.exit_code, 0) << w.err;
  EXPECT_EQ(Parse(w.out)["status"], "completed");
}

}  // namespace
}  // namespace keel
