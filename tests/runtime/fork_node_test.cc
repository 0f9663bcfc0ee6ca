// Fork through the embedding API (Node::Fork, docs/fork.md): a registered
// activity counts its calls per step, so the test sees which steps ran
// again; a deferred fork is resumed by the next node that opens the dir;
// each refusal has its Status code.

#include <gtest/gtest.h>

#include <map>
#include <mutex>

#include "keel/node.h"
#include "tests/support/test_util.h"

namespace keel {
namespace {

using testing::TempDir;

constexpr char kSteps[] = R"(name: steps
inputs: {k: {default: 1}}
steps:
  - {id: one, activity: count, with: {k: "${inputs.k}"}, save_as: first}
  - {id: two, activity: count, with: {k: "${inputs.k}"}}
  - {id: three, activity: count, with: {k: "${inputs.k}"}}
outputs: {first: "vars.first", k: "inputs.k"}
)";

class ForkNodeTest : public ::testing::Test {
 protected:
  std::unique_ptr<Node> Open(bool resume = true) {
    Options options;
    options.data_dir = dir_.path();
    options.resume = false;
    auto node = Node::Open(options);
    EXPECT_TRUE(node.ok()) << node.status().ToString();
    if (!node.ok()) return nullptr;
    // Its output: how many times its step has run, and the input.
    Status registered = (*node)->RegisterActivity("count", [this](const ActivityContext& ctx) {
      std::lock_guard lock(mu_);
      int n = ++calls_[ctx.step];
      return ActivityResult::Ok({{"call", n}, {"k", ctx.input["k"]}});
    });
    EXPECT_TRUE(registered.ok());
    if (resume) {
      EXPECT_TRUE((*node)->Resume().ok());
    }
    return std::move(*node);
  }
  int Calls(const std::string& step) {
    std::lock_guard lock(mu_);
    return calls_[step];
  }
  static Workflow Steps() {
    auto wf = ParseWorkflow(kSteps, "steps.yaml");
    EXPECT_TRUE(wf.ok()) << wf.status().ToString();
    return *wf;
  }
  static Json Done(Node& node, const std::string& id) {
    auto done = node.Wait(id, std::chrono::seconds(60));
    EXPECT_TRUE(done.ok()) << done.status().ToString();
    return done.ok() ? *done : Json();
  }

  TempDir dir_;
  std::mutex mu_;
  std::map<std::string, int> calls_;
};

TEST_F(ForkNodeTest, AForkRunsFromItsStepWithTheInputsGiven) {
  auto node = Open();
  StartOptions start;
  start.id = "src";
  ASSERT_TRUE(node->Start(Steps(), {{"k", 1}}, start).ok());
  ASSERT_EQ(Done(*node, "src")["status"], "completed");

  ForkOptions fork;
  fork.from = "two";
  fork.inputs = Json{{"k", 2}};
  fork.id = "f";
  fork.actor = "alice";
  auto forked = node->Fork("src", fork);
  ASSERT_TRUE(forked.ok()) << forked.status().ToString();
  EXPECT_EQ((*forked)["forked_from"]["process"], "src");
  Json done = Done(*node, "f");
  EXPECT_EQ(done["status"], "completed");
  EXPECT_EQ(Calls("one"), 1);
  EXPECT_EQ(Calls("two"), 2);
  EXPECT_EQ(Calls("three"), 2);
  // one's output is the source's (its first call, input 1); the new input
  // reaches the steps that ran again.
  EXPECT_EQ(done["outputs"]["first"], Json({{"call", 1}, {"k", 1}}));
  EXPECT_EQ(done["outputs"]["k"], 2);
  auto events = node->Events("f");
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->front()["actor"], "alice");
  auto problems = node->Verify("f");
  ASSERT_TRUE(problems.ok());
  EXPECT_TRUE(problems->empty());
}

TEST_F(ForkNodeTest, ADeferredForkMovesWhenTheNextNodeResumes) {
  {
    auto node = Open();
    StartOptions start;
    start.id = "src";
    ASSERT_TRUE(node->Start(Steps(), {}, start).ok());
    ASSERT_EQ(Done(*node, "src")["status"], "completed");
  }
  {
    auto node = Open(/*resume=*/false);
    ForkOptions fork;
    fork.from = "three";
    fork.id = "later";
    fork.defer = true;
    auto forked = node->Fork("src", fork);
    ASSERT_TRUE(forked.ok()) << forked.status().ToString();
    EXPECT_EQ((*forked)["status"], "running");
    ASSERT_TRUE(node->Close().ok());
    EXPECT_EQ(Calls("three"), 1);
  }
  auto node = Open();
  EXPECT_EQ(Done(*node, "later")["status"], "completed");
  EXPECT_EQ(Calls("one"), 1);
  EXPECT_EQ(Calls("two"), 1);
  EXPECT_EQ(Calls("three"), 2);
}

TEST_F(ForkNodeTest, RefusalsHaveTheirCodes) {
  auto node = Open();
  StartOptions start;
  start.id = "src";
  ASSERT_TRUE(node->Start(Steps(), {}, start).ok());
  Done(*node, "src");
  auto code = [&](const std::string& source, ForkOptions options) {
    return node->Fork(source, options).status().code();
  };
  EXPECT_EQ(code("nope", {.from = "one"}), Status::Code::kNotFound);
  EXPECT_EQ(code("src", {.from = "zz"}), Status::Code::kNotFound);
  EXPECT_EQ(code("src", {.from = ""}), Status::Code::kInvalidArgument);
  EXPECT_EQ(code("src", {.from = "one", .visit = 2}), Status::Code::kRefused);
  EXPECT_EQ(code("src", {.from = "one", .id = "src"}), Status::Code::kRefused);
  EXPECT_EQ(code("src", {.from = "one", .id = "../x"}), Status::Code::kInvalidArgument);
  EXPECT_EQ(code("src", {.from = "one", .inputs = Json{{"zz", 1}}}),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(code("src", {.from = "one", .inputs = Json::array()}), Status::Code::kInvalidArgument);
  auto list = node->List({});
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->total, 1u);
}

}  // namespace
}  // namespace keel
