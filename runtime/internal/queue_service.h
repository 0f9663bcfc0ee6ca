#pragma once

// The node's queue service (docs/queues.md): one QueueBook per queue and one
// thread that admits. A queued process is created `pending` with its queue,
// priority and key in its ProcessCreated; the service decides which may
// start, and each admission is a ProcessAdmitted appended by the process's
// own actor (in the same append as its ProcessStarted) before anything of it
// runs. The fold refuses a second ProcessAdmitted and a ProcessStarted
// without one, so nothing is admitted twice and nothing queued starts
// unadmitted, crash or not. The books are rebuilt from the log on open: the
// unfinished processes (waiting ones and those holding a slot) and the
// ProcessAdmitted events inside the rate windows.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "events/state.h"
#include "keel/options.h"
#include "keel/status.h"
#include "keel/types.h"
#include "runtime/internal/queue_book.h"
#include "store/event_store.h"

namespace keel::runtime {

class QueueService {
 public:
  // Admits process `id`: Refused when it no longer waits in its queue.
  using AdmitFn = std::function<Status(const std::string& id)>;

  // InvalidArgument for a bad or twice-named queue.
  static Result<std::unique_ptr<QueueService>> Create(const std::vector<QueueSpec>& specs,
                                                      AdmitFn admit);
  // Stop().
  ~QueueService();

  // The queues of `store` (a read-only one: no node runs) as a node with
  // `specs` would rebuild them on open; it admits nobody (never started).
  static Result<std::unique_ptr<QueueService>> Rebuild(store::EventStore& store,
                                                       const std::vector<QueueSpec>& specs);

  // Whether the node has queue `name`.
  bool Has(const std::string& name) const { return specs_.count(name) > 0; }
  // The key a start in queue `name` waits under: `given`, else the queue's
  // key path over `inputs` (a string as it is, other values as JSON; a path
  // that names nothing is the key "").
  std::string KeyFor(const std::string& name, const Json& inputs, const std::string& given) const;

  // Learns what a queued process's state means for its queue: it waits, it
  // holds a slot (admitted, not ended), or it ended (its slot is free).
  // Called on open for every unfinished process and after each durable
  // change of a queued one. Cheap; any thread.
  void Track(const events::ProcessState& state);
  // Counts the log's ProcessAdmitted events of the last rate period of each
  // queue (on open, before Start).
  Status CountRecentAdmissions(store::EventStore& store, int64_t now_ns);

  // Starts the admitting thread (once; not after Stop). Until then the
  // service tracks but admits nobody (a node opened with resume = false).
  void Start();
  // Stops and joins the thread; an admission under way is finished first.
  void Stop();

  // 1-based place of process `id` in queue `queue`; 0 if it does not wait.
  size_t Position(const std::string& queue, const std::string& id) const;
  // Every queue's view (QueueBook::View), configured ones and those only
  // found in the log, by name.
  std::vector<Json> Views() const;
  // NotFound for a queue neither configured nor in use.
  Result<Json> View(const std::string& name) const;

 private:
  QueueService(std::map<std::string, QueueSpec> specs, AdmitFn admit);
  QueueBook& BookOf(const std::string& name);  // mu_ held
  void Loop();

  const std::map<std::string, QueueSpec> specs_;
  AdmitFn admit_;
  bool counted_ = false;  // CountRecentAdmissions ran (guarded by mu_)
  mutable std::mutex mu_;
  std::condition_variable wake_;
  mutable std::map<std::string, QueueBook> books_;  // guarded by mu_
  bool changed_ = false;                            // guarded by mu_
  bool started_ = false, stopping_ = false;         // guarded by mu_
  std::thread thread_;
};

}  // namespace keel::runtime
