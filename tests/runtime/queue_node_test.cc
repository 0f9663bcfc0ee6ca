// Queues through keel::Node (the embedding API): Options::queues,
// StartOptions::queue/priority/queue_key, positions in snapshots, admission
// as processes end, a reopened node rebuilding its queue from the log; and
// the fold refusing what a queue forbids (a second admission, a start
// without one).

#include <gtest/gtest.h>

#include "events/state.h"
#include "keel/node.h"
#include "tests/support/test_util.h"

namespace keel {
namespace {

using testing::TempDir;
using testing::WaitUntil;

constexpr char kHeld[] = R"(name: held
inputs: {customer: {default: nobody}}
steps:
  - {id: hold, wait_signal: go}
)";

class QueueNodeTest : public ::testing::Test {
 protected:
  std::unique_ptr<Node> Open(const std::string& spec) {
    Options options;
    options.data_dir = dir_.path();
    auto parsed = ParseQueueSpec(spec);
    EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
    if (parsed.ok()) options.queues.push_back(*parsed);
    auto node = Node::Open(options);
    EXPECT_TRUE(node.ok()) << node.status().ToString();
    return node.ok() ? std::move(*node) : nullptr;
  }
  static Workflow Held() {
    auto wf = ParseWorkflow(kHeld, "held.yaml");
    EXPECT_TRUE(wf.ok()) << wf.status().ToString();
    return *wf;
  }
  static std::string StatusOf(Node& node, const std::string& id) {
    auto s = node.Get(id);
    return s.ok() ? (*s)["status"].get<std::string>() : "?";
  }
  static int PositionOf(Node& node, const std::string& id) {
    auto s = node.Get(id);
    if (!s.ok()) return -1;
    for (const auto& w : (*s)["waiting_on"]) {
      if (w["kind"] == "queue") return w.value("position", -1);
    }
    return 0;
  }

  TempDir dir_;
};

TEST_F(QueueNodeTest, AdmitsAsSlotsFreeAndAReopenedNodeRebuildsTheQueue) {
  std::vector<std::string> ids;
  {
    auto node = Open("q:concurrency=1");
    ASSERT_TRUE(node);
    StartOptions in_queue;
    in_queue.queue = "q";
    for (int priority : {0, 2, 1}) {
      in_queue.priority = priority;
      auto started = node->Submit(Held(), Json::object(), in_queue);
      ASSERT_TRUE(started.ok()) << started.status().ToString();
      ids.push_back(*started);
    }
    ASSERT_TRUE(WaitUntil([&] { return StatusOf(*node, ids[0]) == "waiting"; }));
    EXPECT_EQ(PositionOf(*node, ids[2]), 1);  // priority 1 before priority 2
    EXPECT_EQ(PositionOf(*node, ids[1]), 2);
    auto view = node->GetQueue("q");
    ASSERT_TRUE(view.ok());
    EXPECT_EQ((*view)["depth"], 2);
    EXPECT_EQ((*view)["running"], 1);
    ASSERT_TRUE(node->Close().ok());
  }
  auto node = Open("q:concurrency=1");
  ASSERT_TRUE(node);
  auto list = node->ListQueues();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0]["depth"], 2);
  EXPECT_EQ((*list)[0]["running"], 1);  // the waiting one keeps its slot
  ASSERT_TRUE(node->Signal(ids[0], "go", nullptr).ok());
  ASSERT_TRUE(WaitUntil([&] { return StatusOf(*node, ids[2]) == "waiting"; }));
  EXPECT_EQ(StatusOf(*node, ids[0]), "completed");
  EXPECT_EQ(StatusOf(*node, ids[1]), "pending");
  // Cancelled while it waits: it leaves the queue and never starts.
  ASSERT_TRUE(node->Cancel(ids[1]).ok());
  ASSERT_TRUE(WaitUntil([&] { return StatusOf(*node, ids[1]) == "cancelled"; }));
  EXPECT_EQ((*node->GetQueue("q"))["depth"], 0);
  for (const auto& id : ids) EXPECT_TRUE(node->Verify(id)->empty()) << id;
}

TEST_F(QueueNodeTest, RefusesAQueueTheNodeDoesNotHaveAndBadSpecs) {
  auto node = Open("q");
  ASSERT_TRUE(node);
  StartOptions elsewhere;
  elsewhere.queue = "other";
  EXPECT_EQ(node->Start(Held(), Json::object(), elsewhere).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(node->GetQueue("other").status().code(), Status::Code::kNotFound);
  ASSERT_TRUE(node->Close().ok());
  Options twice;
  twice.data_dir = dir_.path();
  twice.queues = {*ParseQueueSpec("a"), *ParseQueueSpec("a:concurrency=2")};
  EXPECT_EQ(Node::Open(twice).status().code(), Status::Code::kInvalidArgument);
}

TEST(QueueFoldTest, RefusesASecondAdmissionAndAStartWithoutOne) {
  using namespace events;
  ProcessState s;
  int64_t t = 1'000;
  auto apply = [&](Draft d) {
    Stamp(d, s.last_seq + 1, ++t);
    return Apply(s, StoredEvent::Unsealed(d));
  };
  ASSERT_TRUE(apply(ProcessCreated({"p", "p"}, "w", "h", "{}", "{}", "", {"q", 3, "k"})).ok());
  EXPECT_TRUE(s.WaitsInQueue());
  EXPECT_EQ(s.queue_priority, 3);
  EXPECT_EQ(s.queue_key, "k");
  EXPECT_FALSE(apply(ProcessStarted({"p", "p"})).ok());  // not admitted
  ASSERT_TRUE(apply(ProcessAdmitted({"p", "p"}, "q")).ok());
  EXPECT_FALSE(s.WaitsInQueue());
  EXPECT_FALSE(apply(ProcessAdmitted({"p", "p"}, "q")).ok());  // twice
  EXPECT_TRUE(apply(ProcessStarted({"p", "p"})).ok());
  // The snapshot JSON keeps the queue through a round trip.
  auto back = StateFromJson(ToJson(s));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->queue, "q");
  EXPECT_EQ(back->admitted_ns, s.admitted_ns);

  ProcessState plain;
  Draft created = ProcessCreated({"x", "x"}, "w", "h", "{}", "{}", "");
  Stamp(created, 1, 5);
  ASSERT_TRUE(Apply(plain, StoredEvent::Unsealed(created)).ok());
  Draft admitted = ProcessAdmitted({"x", "x"}, "q");
  Stamp(admitted, 2, 6);
  EXPECT_FALSE(Apply(plain, StoredEvent::Unsealed(admitted)).ok());  // in no queue
  EXPECT_TRUE(ToJson(plain)["queue"].is_null());
}

}  // namespace
}  // namespace keel
