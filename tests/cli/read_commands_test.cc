// The read commands of the keel CLI (INTERFACE.md): ls, show, events, tail,
// replay, verify, export, diff, with and without a live node.
#include <signal.h>

#include "store/format.h"
#include "tests/cli/cli_fixture.h"
#include "tests/store/store_fixture.h"

namespace keel {
namespace {

using testing::WaitUntil;

class ReadCommandsTest : public testing::KeelCliTest {
 protected:
  std::string RunHello(const std::string& who, const std::string& id = "") {
    std::vector<std::string> args = {Workflow("hello.yaml", testing::kHelloYaml), "--input",
                                     "who=" + who};
    if (!id.empty()) args.insert(args.end(), {"--id", id});
    return RunJson(args)["id"];
  }
};

TEST_F(ReadCommandsTest, LsPrintsAnAlignedTableAndFiltersAndPages) {
  RunHello("a", "p_a");
  RunHello("b", "p_b");
  ASSERT_EQ(
      Keel({"run", Workflow("f.yaml",
                            "name: f\nsteps:\n  - {id: x, activity: fail, with: {message: no}}\n")})
          .exit_code,
      1);
  auto table = Keel({"ls"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  std::istringstream lines(table.out);
  std::string header, first, second;
  std::getline(lines, header);
  std::getline(lines, first);
  std::getline(lines, second);
  // Columns line up: STATUS starts at the same offset in every row.
  size_t status_col = header.find("STATUS");
  ASSERT_NE(status_col, std::string::npos);
  EXPECT_EQ(first.substr(status_col, 6), "failed") << table.out;
  EXPECT_EQ(second.substr(status_col, 9), "completed") << table.out;
  EXPECT_NE(table.out.find("1-3 of 3"), std::string::npos) << table.out;

  Json failed = Parse(Keel({"ls", "--status", "failed", "--json"}).out);
  EXPECT_EQ(failed["total"], 1);
  EXPECT_EQ(failed["processes"][0]["workflow"], "f");
  Json hello =
      Parse(Keel({"ls", "--workflow", "hello", "--limit", "1", "--offset", "1", "--json"}).out);
  EXPECT_EQ(hello["total"], 2);
  EXPECT_EQ(hello["limit"], 1);
  EXPECT_EQ(hello["offset"], 1);
  EXPECT_EQ(hello["has_more"], false);
  ASSERT_EQ(hello["processes"].size(), 1u);
  EXPECT_EQ(hello["processes"][0]["id"], "p_a");
  EXPECT_EQ(Keel({"ls", "--status", "sleepy"}).exit_code, 2);
}

TEST_F(ReadCommandsTest, ShowPrintsTheTreeWithStatesAttemptsAndWhatItWaitsOn) {
  std::string id = RunJson({Workflow("w.yaml", R"(name: w
steps:
  - {id: first, activity: echo, with: {text: hi}}
  - id: pair
    parallel:
      left: [{id: l, activity: echo, with: {text: l}}]
      right: [{id: r, activity: echo, with: {text: r}}]
  - {id: review, approval: {prompt: "ship it?"}}
)")},
                           4)["id"];
  auto show = Keel({"show", id});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find(id + "  w  waiting"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("branch main"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("first  completed  attempts=1"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("    branch pair/left  completed"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("review  waitForApproval"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("waiting on approval at task review"), std::string::npos) << show.out;
  Json s = Parse(Keel({"show", id, "--json"}).out);
  EXPECT_EQ(s["status"], "waiting");
  EXPECT_EQ(s["waiting_on"][0]["kind"], "approval");
}

// A process with very many tasks is shown a page at a time: the newest first.
TEST_F(ReadCommandsTest, ShowPagesTheTasksOfALongProcessNewestFirst) {
  std::string id = RunJson({Workflow("loop.yaml", R"(name: loop
vars: {i: 0}
steps:
  - {id: work, activity: echo, with: {text: "${vars.i}"}}
  - id: count
    set: {i: "vars.i + 1"}
    goto: {step: work, when: "vars.i < 5"}
)")})["id"];
  Json all = Parse(Keel({"show", id, "--json"}).out);
  ASSERT_EQ(all["tasks"].size(), 10u);
  EXPECT_FALSE(all.contains("tasks_total"));
  Json page = Parse(Keel({"show", id, "--json", "--tasks-limit", "3"}).out);
  ASSERT_EQ(page["tasks"].size(), 3u);
  EXPECT_EQ(page["tasks_total"], 10);
  EXPECT_EQ(page["tasks"][2]["id"], all["tasks"][9]["id"]);  // the newest last, as in the whole
  EXPECT_EQ(page["tasks"][0]["id"], all["tasks"][7]["id"]);
  Json back = Parse(Keel({"show", id, "--json", "--tasks-limit", "3", "--tasks-offset", "8"}).out);
  ASSERT_EQ(back["tasks"].size(), 2u);  // only two are older than the newest eight
  EXPECT_EQ(back["tasks"][0]["id"], all["tasks"][0]["id"]);
  auto human = Keel({"show", id, "--tasks-limit", "2"});
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("2 of 10 tasks shown"), std::string::npos) << human.out;
  EXPECT_EQ(Keel({"show", id, "--tasks-limit", "-1"}).exit_code, 2);
}

TEST_F(ReadCommandsTest, TailPrintsTheLastTenEventsOrFromAGlobalSeq) {
  RunHello("a");
  RunHello("b");
  auto tail = Keel({"tail", "--json"});
  ASSERT_EQ(tail.exit_code, 0) << tail.err;
  auto lines = Lines(tail.out);
  ASSERT_EQ(lines.size(), 10u);
  EXPECT_EQ(lines.back()["type"], "ProcessCompleted");
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["global_seq"], lines[i - 1]["global_seq"].get<uint64_t>() + 1);
  }
  auto from = Lines(Keel({"tail", "--from", "1", "--json"}).out);
  ASSERT_GT(from.size(), 10u);
  EXPECT_EQ(from.front()["global_seq"], 1);
  EXPECT_EQ(from.size(), lines.back()["global_seq"].get<size_t>());
  auto human = Keel({"tail", "--from", "1"});
  EXPECT_NE(human.out.find("ProcessCreated"), std::string::npos) << human.out;
}

TEST_F(ReadCommandsTest, ReplayRebuildsTheStateUpToASeq) {
  std::string id = RunHello("a");
  auto early = Keel({"replay", id, "--to", "3", "--json"});
  ASSERT_EQ(early.exit_code, 0) << early.err;
  Json s = Parse(early.out);
  EXPECT_EQ(s["last_seq"], 3);
  EXPECT_EQ(s["status"], "running");
  EXPECT_TRUE(s["tasks"].empty());
  Json full = Parse(Keel({"replay", id, "--json"}).out);
  Json show = Parse(Keel({"show", id, "--json"}).out);
  EXPECT_EQ(full, show) << "replay of the whole log == the snapshot";
  auto human = Keel({"replay", id, "--to", "5"});
  EXPECT_NE(human.out.find("as of seq 5 of " + std::to_string(show["last_seq"].get<int>())),
            std::string::npos)
      << human.out;
  EXPECT_EQ(Keel({"replay", id, "--to", "999"}).exit_code, 2);
  EXPECT_EQ(Keel({"replay", "p_nope", "--to", "1"}).exit_code, 2);
}

TEST_F(ReadCommandsTest, VerifyPassesACleanStoreAndNamesStreamAndSeqOfATamperedEvent) {
  std::string a = RunHello("a", "p_a");
  RunHello("b", "p_b");
  auto clean = Keel({"verify"});
  EXPECT_EQ(clean.exit_code, 0) << clean.out << clean.err;
  EXPECT_NE(clean.out.find("verified 2 streams, "), std::string::npos) << clean.out;
  EXPECT_NE(clean.out.find(": ok"), std::string::npos) << clean.out;
  Json one = Parse(Keel({"verify", a, "--json"}).out);
  EXPECT_EQ(one["ok"], true);
  EXPECT_EQ(one["streams"], 1);
  EXPECT_TRUE(one["problems"].empty());

  {  // Flip one byte inside the Envelope of p_a's event 3 (the store is closed).
    store::testing::RawDb raw(data());
    ASSERT_TRUE(raw.ok()) << raw.error();
    std::string key = store::format::StreamKey("p_a", 3);
    std::string value = raw.Get(store::format::kEventsCf, key);
    ASSERT_GT(value.size(), 64u);
    value[value.size() - 40] ^= 0x01;
    raw.Put(store::format::kEventsCf, key, value);
  }
  auto tampered = Keel({"verify"});
  EXPECT_EQ(tampered.exit_code, 5) << tampered.out;
  EXPECT_NE(tampered.out.find("p_a seq 3: "), std::string::npos) << tampered.out;
  EXPECT_EQ(tampered.out.find("p_b seq"), std::string::npos) << "p_b is intact: " << tampered.out;
  Json report = Parse(Keel({"verify", "--json"}).out);
  EXPECT_EQ(report["ok"], false);
  ASSERT_FALSE(report["problems"].empty());
  EXPECT_EQ(report["problems"][0]["stream"], "p_a");
  EXPECT_EQ(report["problems"][0]["seq"], 3);
  EXPECT_EQ(Keel({"verify", "p_b"}).exit_code, 0);
  EXPECT_EQ(Keel({"verify", "p_a"}).exit_code, 5);
  EXPECT_EQ(Keel({"verify", "p_nope"}).exit_code, 2);
}

TEST_F(ReadCommandsTest, ExportPrintsTheDefinitionThenEveryEvent) {
  std::string id = RunHello("a");
  auto out = Keel({"export", id});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  auto lines = Lines(out.out);
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines[0]["stream"], id);
  EXPECT_EQ(lines[0]["definition"]["name"], "hello");
  EXPECT_EQ(lines[0]["definition_hash"], lines[1]["data"]["definition_hash"]);
  auto events = Lines(Keel({"events", id, "--json"}).out);
  EXPECT_EQ(std::vector<Json>(lines.begin() + 1, lines.end()), events);
  EXPECT_EQ(Keel({"export", "p_nope"}).exit_code, 2);
}

TEST_F(ReadCommandsTest, DiffFindsTheFirstDivergenceIgnoringIdsAndTimes) {
  std::string a = RunHello("a", "p_a");
  std::string same = RunHello("a", "p_same");
  std::string b = RunHello("b", "p_b");
  auto identical = Keel({"diff", a, same});
  EXPECT_EQ(identical.exit_code, 0) << identical.out << identical.err;
  EXPECT_NE(identical.out.find("identical"), std::string::npos);
  auto diverged = Keel({"diff", a, b});
  EXPECT_EQ(diverged.exit_code, 1);
  EXPECT_NE(diverged.out.find("first divergence at seq 1"), std::string::npos) << diverged.out;
  EXPECT_NE(diverged.out.find("p_a: ProcessCreated"), std::string::npos) << diverged.out;
  EXPECT_NE(diverged.out.find("p_b: ProcessCreated"), std::string::npos) << diverged.out;
  Json j = Parse(Keel({"diff", a, b, "--json"}).out);
  EXPECT_EQ(j["identical"], false);
  EXPECT_EQ(j["seq"], 1);
  EXPECT_EQ(j["a"]["data"]["inputs"]["who"], "a");
  EXPECT_EQ(j["b"]["data"]["inputs"]["who"], "b");
  EXPECT_EQ(Keel({"diff", a, "p_nope"}).exit_code, 2);
  EXPECT_NE(Keel({"diff", "--help"}).out.find("1 diverged"), std::string::npos);
}

TEST_F(ReadCommandsTest, EventsAndTailFollowEventsThatALiveNodeWrites) {
  std::string gate = dir_ / "gate";
  // --from 1: without it, a tail that opens the store late (a loaded machine)
  // would rightly start at the last ten events.
  auto tail = Spawn("tail", {"tail", "--from", "1", "--follow", "--json"});
  auto run = Spawn("run", {"run", Workflow("gated.yaml", testing::kGatedYaml), "--input",
                           "gate=" + gate, "--id", "p_live", "--json"});
  // The live node has started the gate task; a reader follows from seq 1.
  ASSERT_TRUE(WaitUntil([&] {
    return Keel({"show", "p_live", "--json"}).out.find("\"running\"") != std::string::npos;
  }));
  auto follow = Spawn("follow", {"events", "p_live", "--follow", "--json"});
  ASSERT_TRUE(WaitUntil([&] { return Out("follow").find("TaskStarted") != std::string::npos; }));
  EXPECT_FALSE(follow->Exited()) << "the process is not finished: follow keeps going";
  testing::WriteFile(gate, "");
  EXPECT_EQ(follow->Wait(), 0) << Err("follow");  // ends by itself once the process is terminal
  EXPECT_EQ(run->Wait(), 0) << Err("run");
  auto followed = Lines(Out("follow"));
  ASSERT_FALSE(followed.empty());
  for (size_t i = 0; i < followed.size(); ++i) EXPECT_EQ(followed[i]["seq"], i + 1);
  EXPECT_EQ(followed.back()["type"], "ProcessCompleted");
  EXPECT_EQ(followed.size(), Parse(Out("run"))["last_seq"].get<size_t>());

  ASSERT_TRUE(WaitUntil([&] { return Out("tail").find("ProcessCompleted") != std::string::npos; }))
      << Err("tail") << Out("tail");
  tail->Signal(SIGTERM);
  EXPECT_EQ(tail->Wait(), 0) << Err("tail");
  auto tailed = Lines(Out("tail"));
  ASSERT_EQ(tailed.size(), followed.size());
  EXPECT_EQ(tailed.front()["type"], "ProcessCreated");
}

}  // namespace
}  // namespace keel
