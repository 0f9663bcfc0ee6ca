// Data-driven scenarios, the way DuckDB keeps sqllogictest files: each
// scenarios/NAME.yaml is run on a fresh node and its final snapshot is compared
// with scenarios/NAME.expect.json:
//   {"inputs": {...}, "snapshot": {<subset of the snapshot>},
//    "tasks": {"<task id>": {<subset of that task>}}, "absent_tasks": ["id"]}
// A subset matches when every key it names has an equal value (recursively for
// objects). The same scenario is then replayed from the log alone (a fresh
// node on the same dir) and must give the same snapshot.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "events/state.h"
#include "keel/node.h"
#include "store/event_store.h"
#include "tests/support/test_util.h"

namespace keel {
namespace {

namespace fs = std::filesystem;

// Activities the scenarios use besides the built-ins.
void RegisterTestActivities(Node& node) {
  ASSERT_OK(node.RegisterActivity("inc", [](const ActivityContext& c) {
    return ActivityResult::Ok(c.input.value("x", 0) + 1);
  }));
  // Fails until attempt `succeed_on`.
  ASSERT_OK(node.RegisterActivity("flaky", [](const ActivityContext& c) {
    if (c.attempt < c.input.value("succeed_on", 2u)) {
      return ActivityResult::Fail("flaky failure on attempt " + std::to_string(c.attempt));
    }
    return ActivityResult::Ok({{"attempt", c.attempt}, {"key", c.idempotency_key}});
  }));
  // Sleeps `ms` unless cancelled first.
  ASSERT_OK(node.RegisterActivity("nap", [](const ActivityContext& c) {
    auto until =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(c.input.value("ms", 0));
    while (std::chrono::steady_clock::now() < until) {
      if (c.cancel.cancelled()) return ActivityResult::Fail("cancelled", false);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return ActivityResult::Ok(c.input.value("value", Json()));
  }));
  ASSERT_OK(node.RegisterAsyncActivity("async_double", [](const ActivityContext& c, auto done) {
    int64_t x = c.input.value("x", 0);
    std::thread([x, done] { done(ActivityResult::Ok(2 * x)); }).detach();
  }));
}

// Describes how `actual` differs from the subset `expected` ("" = matches).
std::string Mismatch(const Json& expected, const Json& actual, const std::string& path) {
  if (expected.is_object() && actual.is_object()) {
    for (const auto& [k, v] : expected.items()) {
      if (!actual.contains(k)) return path + "." + k + ": missing";
      std::string m = Mismatch(v, actual[k], path + "." + k);
      if (!m.empty()) return m;
    }
    return "";
  }
  if (expected != actual) return path + ": expected " + expected.dump() + ", got " + actual.dump();
  return "";
}

class ScenarioTest : public ::testing::TestWithParam<std::string> {
 protected:
  testing::TempDir dir_;
};

TEST_P(ScenarioTest, EndsInExpectedStateAndReplaysIdentically) {
  std::string base = std::string(KEEL_SCENARIO_DIR) + "/" + GetParam();
  Json expect = Json::parse(testing::ReadFile(base + ".expect.json"));
  auto wf = LoadWorkflowFile(base + ".yaml");
  ASSERT_OK(wf);

  Options options;
  options.data_dir = dir_.path();
  options.snapshot_every = 1;  // as often as the state's size allows
  options.exec_policy = ExecPolicy::kFull;  // scenarios run exec
  Json final_snapshot;
  {
    auto node = Node::Open(options);
    ASSERT_OK(node);
    RegisterTestActivities(**node);
    auto started = (*node)->Start(*wf, expect.value("inputs", Json::object()));
    ASSERT_OK(started);
    auto done = (*node)->Wait((*started)["id"], std::chrono::seconds(60));
    ASSERT_OK(done);
    final_snapshot = *done;
    ASSERT_OK((*node)->Close());
  }
  SCOPED_TRACE(final_snapshot.dump(2));
  EXPECT_EQ(Mismatch(expect.value("snapshot", Json::object()), final_snapshot, "snapshot"), "");
  std::map<std::string, Json> tasks;
  for (const auto& t : final_snapshot["tasks"]) tasks[t["id"]] = t;
  const Json expected_tasks = expect.value("tasks", Json::object());
  for (const auto& [id, subset] : expected_tasks.items()) {
    ASSERT_TRUE(tasks.count(id)) << "no task " << id;
    EXPECT_EQ(Mismatch(subset, tasks[id], "tasks." + id), "");
  }
  for (const auto& id : expect.value("absent_tasks", Json::array())) {
    EXPECT_FALSE(tasks.count(id.get<std::string>())) << "unexpected task " << id;
  }

  // The log alone rebuilds the same state (no file, no activities needed).
  options.resume = false;
  auto reopened = Node::Open(options);
  ASSERT_OK(reopened);
  auto replayed = (*reopened)->Get(final_snapshot["id"]);
  ASSERT_OK(replayed);
  EXPECT_EQ(*replayed, final_snapshot);
  ASSERT_OK((*reopened)->Close());

  // ... and so does every event from the first, past the snapshots.
  auto store = store::EventStore::Open({.path = dir_.path()});
  ASSERT_OK(store);
  auto log = (*store)->ReadStream(final_snapshot["id"].get<std::string>(), 1);
  ASSERT_OK(log);
  events::ProcessState folded;
  for (const auto& event : *log) ASSERT_OK(events::Apply(folded, event));
  EXPECT_EQ(events::ToJson(folded), final_snapshot);
}

std::vector<std::string> Scenarios() {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(KEEL_SCENARIO_DIR)) {
    if (entry.path().extension() == ".yaml") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

INSTANTIATE_TEST_SUITE_P(Scenarios, ScenarioTest, ::testing::ValuesIn(Scenarios()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace keel
