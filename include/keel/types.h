#pragma once

// Value types of the embedding API: JSON values, activities and their
// context, start options and list filters.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace keel {

using Json = nlohmann::json;

// Set when the task is cancelled (process cancel, a lost join, a timeout).
// Activities that run long should poll it and return early.
class CancellationToken {
 public:
  bool cancelled() const { return flag_->load(std::memory_order_acquire); }
  void Cancel() const { flag_->store(true, std::memory_order_release); }

 private:
  std::shared_ptr<std::atomic<bool>> flag_ = std::make_shared<std::atomic<bool>>(false);
};

// What an activity is given for one attempt.
struct ActivityContext {
  std::string process_id;
  std::string task_id;
  std::string step;
  uint32_t attempt = 1;
  // "process/task/attempt": stable across replays of the same attempt, so an
  // activity can make its side effect idempotent (delivery is at-least-once).
  std::string idempotency_key;
  Json input;
  CancellationToken cancel;
  int64_t timeout_ms = 0;  // 0 = none
};

// The outcome of one attempt.
struct ActivityResult {
  bool ok = true;
  Json output;
  std::string error;
  bool retryable = true;  // a failure the retry policy may try again

  static ActivityResult Ok(Json output) { return {true, std::move(output), {}, false}; }
  static ActivityResult Fail(std::string error, bool retryable = true, Json output = nullptr) {
    return {false, std::move(output), std::move(error), retryable};
  }
};

// A blocking activity: runs on keel's bounded activity pool, never on the
// actor scheduler's threads.
using ActivityFn = std::function<ActivityResult(const ActivityContext&)>;
// A non-blocking activity: must return at once and call `done` exactly once,
// from any thread, when the work ends.
using AsyncActivityFn =
    std::function<void(const ActivityContext&, std::function<void(ActivityResult)> done)>;

// How to start a process.
struct StartOptions {
  // Empty = generate "p_" + ULID. Else 1 to 128 letters, digits, '_', '-',
  // '.' and ':', starting with a letter, a digit or '_' (InvalidArgument if not).
  std::string id;
  // A second start with the same key returns the first process. 1 to 256
  // bytes of UTF-8 without control characters.
  std::string idempotency_key;
  std::string actor = "system";  // who started it (recorded)
  // Records the creation only: the process starts when a node next resumes
  // the dir's unfinished processes (Node::Resume, the next Open). For a
  // command that opens a node just to create a process and then closes it.
  bool defer = false;
  // The queue (Options::queues) the process waits in, `pending`, until the
  // queue admits it (docs/queues.md); empty = it starts at once.
  // InvalidArgument for a queue the node does not have.
  std::string queue;
  int32_t priority = 0;   // its place in the queue: lower first, then first come
  std::string queue_key;  // its key for per_key limits; empty = the queue's key path
};

// Who asks for a control and why (both recorded in the log).
struct ControlOptions {
  std::string reason;
  std::string by = "user";
  bool now = false;  // pause: interrupt running tasks (they re-run on resume)
};

// Filter and page for Node::List.
struct ListFilter {
  std::string status;    // "" = any; otherwise a process status as spelled in JSON
  std::string workflow;  // "" = any
  std::string idempotency_key;   // "" = any; else only the process started with it
  int64_t created_since_ns = 0;  // 0 = any; else created at or after (ns since the epoch)
  int64_t created_until_ns = 0;  // 0 = any; else created at or before
  size_t limit = 50;
  size_t offset = 0;
};

}  // namespace keel
