#pragma once

// A node on a temp dir with test activities whose progress the test controls
// (no sleeps, no timing assertions): `hold` blocks until the test releases
// its key (or its attempt is cancelled), `count` counts its invocations per
// key, `toggle` fails until the test sets its key. Helpers wait on conditions
// of the snapshot and read the log once the node is closed.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "keel/node.h"
#include "store/event_store.h"
#include "tests/support/test_util.h"

namespace keel::testing {

// Shared by the node's activities and the test body.
class Switchboard {
 public:
  void Release(const std::string& key) {
    std::lock_guard lock(mu_);
    released_.insert(key);
    cv_.notify_all();
  }
  bool Released(const std::string& key) {
    std::lock_guard lock(mu_);
    return released_.count(key) > 0;
  }
  // Blocks until `key` is released or `cancel` is set; true when released.
  bool Hold(const std::string& key, const CancellationToken& cancel, bool heed_cancel) {
    std::unique_lock lock(mu_);
    ++holding_[key];
    cv_.notify_all();
    for (;;) {
      if (released_.count(key)) return true;
      if (heed_cancel && cancel.cancelled()) return false;
      cv_.wait_for(lock, std::chrono::milliseconds(5));
    }
  }
  // How many attempts entered Hold(key).
  int Holding(const std::string& key) {
    std::lock_guard lock(mu_);
    return holding_[key];
  }
  int Count(const std::string& key) {
    std::lock_guard lock(mu_);
    return counts_[key];
  }
  void Bump(const std::string& key) {
    std::lock_guard lock(mu_);
    ++counts_[key];
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> released_;
  std::map<std::string, int> holding_;
  std::map<std::string, int> counts_;
};

class ControlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.data_dir = dir_.path();
    options_.exec_policy = ExecPolicy::kFull;  // the tests run exec
  }

  // Opens the node (again) with options_ and the test activities.
  void Open() {
    options_.resume = false;
    auto node = Node::Open(options_);
    ASSERT_OK(node);
    node_ = std::move(*node);
    auto board = board_;
    // input: {key, heed_cancel (default true), value}
    ASSERT_OK(node_->RegisterActivity("hold", [board](const ActivityContext& c) {
      std::string key = c.input.value("key", "hold");
      board->Bump(key + "/started");
      if (!board->Hold(key, c.cancel, c.input.value("heed_cancel", true))) {
        board->Bump(key + "/cancelled");
        return ActivityResult::Fail("cancelled", false);
      }
      board->Bump(key + "/returned");
      return ActivityResult::Ok(c.input.value("value", Json("held")));
    }));
    ASSERT_OK(node_->RegisterActivity("count", [board](const ActivityContext& c) {
      board->Bump(c.input.value("key", "count"));
      return ActivityResult::Ok(c.input.value("value", Json(1)));
    }));
    ASSERT_OK(node_->RegisterActivity("toggle", [board](const ActivityContext& c) {
      std::string key = c.input.value("key", "toggle");
      board->Bump(key);
      if (!board->Released(key)) return ActivityResult::Fail(key + " is off", false);
      return ActivityResult::Ok("on");
    }));
    ASSERT_OK(node_->Resume());
  }

  void Close() {
    if (node_) ASSERT_OK(node_->Close());
    node_.reset();
  }

  void TearDown() override { Close(); }

  // Starts `yaml` with `inputs`; returns the process id.
  std::string Start(const std::string& yaml, const Json& inputs = Json::object()) {
    auto wf = ParseWorkflow(yaml, "test.yaml");
    EXPECT_OK(wf);
    if (!wf.ok()) return "";
    auto started = node_->Start(*wf, inputs);
    EXPECT_OK(started);
    return started.ok() ? (*started)["id"].get<std::string>() : "";
  }

  // Polls the snapshot until `done` holds; fails the test after a generous
  // guard (a hang, not a timing assertion).
  Json WaitUntil(const std::string& id, const std::function<bool(const Json&)>& done) {
    auto guard = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (;;) {
      auto snap = node_->Get(id);
      EXPECT_OK(snap);
      if (!snap.ok()) return Json();
      if (done(*snap)) return *snap;
      if (std::chrono::steady_clock::now() > guard) {
        ADD_FAILURE() << "condition never held; last snapshot: " << snap->dump(2);
        return *snap;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  Json WaitStatus(const std::string& id, const std::string& status) {
    return WaitUntil(id, [&](const Json& s) { return s["status"] == status; });
  }
  // Waits until an attempt of `hold` key `key` has entered the activity.
  void WaitHolding(const std::string& key, int attempts = 1) {
    WaitFor([&] { return board_->Holding(key) >= attempts; });
  }
  void WaitFor(const std::function<bool()>& cond) {
    auto guard = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!cond()) {
      ASSERT_LT(std::chrono::steady_clock::now(), guard) << "condition never held";
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  static Json Task(const Json& snapshot, const std::string& id) {
    for (const auto& t : snapshot["tasks"]) {
      if (t["id"] == id) return t;
    }
    return Json();
  }

  // The event types of process `id`, in order, read after the node closed;
  // also checks that the whole store verifies.
  std::vector<std::pair<std::string, std::string>> Events(const std::string& id) {
    Close();
    store::StoreOptions so;
    so.path = dir_.path();
    auto store = store::EventStore::Open(so);
    EXPECT_OK(store);
    if (!store.ok()) return {};
    auto problems = (*store)->Verify();
    EXPECT_OK(problems);
    if (problems.ok()) {
      for (const auto& p : *problems)
        ADD_FAILURE() << "verify: " << p.stream << " " << p.seq << " " << p.what;
    }
    auto events = (*store)->ReadStream(id);
    EXPECT_OK(events);
    std::vector<std::pair<std::string, std::string>> out;
    if (events.ok()) {
      for (const auto& e : *events)
        out.emplace_back(events::EventTypeName(e.type()), std::string(e.entity()));
    }
    EXPECT_OK((*store)->Close());
    return out;
  }
  static int CountOf(const std::vector<std::pair<std::string, std::string>>& events,
                     const std::string& type, const std::string& entity = "") {
    int n = 0;
    for (const auto& [t, e] : events) n += t == type && (entity.empty() || e == entity);
    return n;
  }

  TempDir dir_;
  Options options_;
  std::shared_ptr<Switchboard> board_ = std::make_shared<Switchboard>();
  std::unique_ptr<Node> node_;
};

}  // namespace keel::testing
