#pragma once

// SIGINT and SIGTERM in the CLI. Commands that follow a log or serve poll
// StopRequested() and end in their own time. Commands that embed a node for
// their work (run, wait, the controls) call ExitOnStopSignals(): the first
// signal closes the node a CloseOnStop names (it takes no more work, its exec
// children get SIGTERM and then SIGKILL, node.json goes) and the command
// exits 128 + the signal (130, 143). A second signal exits at once.

namespace keel::cli {

class EmbeddedNode;

// 128 + the first stop signal received, or 0.
int StopExitCode();

// Installs the stop signals (InstallStopSignals) and a thread that acts on
// the first: it closes the CloseOnStop node, if any, and exits.
void ExitOnStopSignals();

// Once a stop signal came, never returns when ExitOnStopSignals is in force
// (its thread is closing the node and will exit): the command prints nothing
// and returns nothing of its own.
void YieldToStop();

// While alive, a stop signal closes `node` (nullptr: nothing to close)
// before the command exits; restores the previous one when it ends.
class CloseOnStop {
 public:
  explicit CloseOnStop(EmbeddedNode* node);
  ~CloseOnStop();
  CloseOnStop(const CloseOnStop&) = delete;
  CloseOnStop& operator=(const CloseOnStop&) = delete;

 private:
  EmbeddedNode* previous_;
};

}  // namespace keel::cli
