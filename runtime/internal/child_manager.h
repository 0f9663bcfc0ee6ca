#pragma once

// The node's `exec` children: started, fed and watched by one thread (an
// epoll loop over pidfds and non-blocking pipes), so that any number of them
// run at once without a thread each. Each child leads its own process group,
// dies with the node (PR_SET_PDEATHSIG, tied to this long-lived thread), and
// is recorded in a small file under DIR/children/ from before it runs until
// it is reaped, so that the next node kills what a killed one left behind.

#include <functional>
#include <memory>
#include <string>

#include "keel/status.h"
#include "keel/types.h"
#include "runtime/internal/builtin_activities.h"

namespace keel::runtime {

class ChildManager {
 public:
  // Kills the process groups that an earlier node recorded in `records_dir`
  // and that may still be alive (it was killed), then starts the loop.
  static Result<std::unique_ptr<ChildManager>> Open(const std::string& records_dir);

  // Stops every child still running (SIGTERM to its group, SIGKILL after a
  // grace period), reaps it, answers its `done`, and joins the loop.
  ~ChildManager();

  // Runs `command` unless `cancel` is set before it is forked. `done` is
  // called exactly once, on the manager's thread: the exec output, or the
  // failure (cancelled, timed out, could not start). A cancel or the
  // command's timeout stops the child's group: SIGTERM, then SIGKILL.
  // `owner` ("process/task/attempt") is written to the child's record.
  void Run(ExecCommand command, CancellationToken cancel, std::string owner,
           std::function<void(ActivityResult)> done);

  class Impl;

 private:
  explicit ChildManager(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel::runtime
