#pragma once

// The built-in activities of WORKFLOW.md: echo, fail, exec, http.

#include <string>
#include <vector>

#include "keel/options.h"
#include "keel/status.h"
#include "keel/types.h"

namespace keel::runtime {

ActivityResult Echo(const ActivityContext& ctx);
ActivityResult FailActivity(const ActivityContext& ctx);
// One `exec` call (WORKFLOW.md): run by the node's ChildManager.
struct ExecCommand {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "K=V" entries over the node's environment
  std::string cwd;               // "" = the node's
  std::string stdin_text;
  int64_t timeout_ms = 0;  // 0 = none
};
// The command an `exec` input describes, or why it may not run: bad input
// (InvalidArgument) or the node's exec policy (Refused).
Result<ExecCommand> ParseExec(const Json& input, ExecPolicy policy,
                              const std::vector<std::string>& allow);
// The outcome of a child that exited with wait status `wait_status`:
// {exit_code, stdout, stderr, json}; a non-zero exit fails (retryable).
ActivityResult ExecExited(const ExecCommand& command, int wait_status, std::string out,
                          std::string err);
// An HTTP request (cpp-httplib); 5xx and connection errors are retryable.
ActivityResult Http(const ActivityContext& ctx);

}  // namespace keel::runtime
