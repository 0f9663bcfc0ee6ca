#pragma once

// Legal event sequences for one process, for store tests and the crash child:
// Start() = ProcessCreated, ProcessStarted, BranchStarted(main); Task() = one
// TaskScheduled/Started/Completed with a fresh task id; Finish() =
// BranchCompleted(main), ProcessCompleted.

#include <string>
#include <utility>
#include <vector>

#include "events/codec.h"

namespace keel::store::testing {

class ProcessScript {
 public:
  explicit ProcessScript(std::string pid, std::string workflow = "wf",
                         std::string idempotency_key = "")
      : pid_(std::move(pid)), workflow_(std::move(workflow)), key_(std::move(idempotency_key)) {}

  const std::string& pid() const { return pid_; }

  events::Header H(std::string_view entity) const { return {pid_, entity, "system"}; }
  events::Header P() const { return H(pid_); }

  events::Draft Created() const {
    return events::ProcessCreated(P(), workflow_, "deadbeef", R"({"n":1})", "{}", key_);
  }
  std::vector<events::Draft> Start() const {
    std::vector<events::Draft> out;
    out.push_back(Created());
    out.push_back(events::ProcessStarted(P()));
    events::BranchStart main;
    main.name = "main";
    main.first_step = "t1";
    out.push_back(events::BranchStarted(H("main"), main));
    return out;
  }
  std::vector<events::Draft> Task() {
    std::string id = "t" + std::to_string(next_task_++);
    std::vector<events::Draft> out;
    out.push_back(events::TaskScheduled(H(id), id, "main", "{}"));
    out.push_back(events::TaskStarted(H(id), 1, pid_ + "/" + id + "/1"));
    out.push_back(events::TaskCompleted(H(id), R"({"x":1})", ""));
    return out;
  }
  std::vector<events::Draft> Finish() const {
    std::vector<events::Draft> out;
    out.push_back(events::BranchCompleted(H("main"), "null"));
    out.push_back(events::ProcessCompleted(P(), "{}"));
    return out;
  }

 private:
  std::string pid_, workflow_, key_;
  int next_task_ = 1;
};

inline std::vector<events::Draft> Concat(std::vector<events::Draft> a,
                                         std::vector<events::Draft> b) {
  for (auto& d : b) a.push_back(std::move(d));
  return a;
}

}  // namespace keel::store::testing
