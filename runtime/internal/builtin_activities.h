#pragma once

// The built-in activities of WORKFLOW.md: echo, fail, exec, http.

#include <string>
#include <vector>

#include "keel/options.h"
#include "keel/types.h"

namespace keel::runtime {

ActivityResult Echo(const ActivityContext& ctx);
ActivityResult FailActivity(const ActivityContext& ctx);
// Runs argv under the node's exec policy; cancellation or timeout sends
// SIGTERM to the child's process group, then SIGKILL after a grace period.
ActivityResult Exec(const ActivityContext& ctx, ExecPolicy policy,
                    const std::vector<std::string>& allow);
// An HTTP request (cpp-httplib); 5xx and connection errors are retryable.
ActivityResult Http(const ActivityContext& ctx);

}  // namespace keel::runtime
