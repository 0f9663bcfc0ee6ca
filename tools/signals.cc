#include "tools/signals.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <mutex>
#include <thread>

#include "tools/cli.h"
#include "tools/embedded_node.h"

namespace keel::cli {
namespace {

std::atomic<int> stop_signal{0};
int stop_pipe[2] = {-1, -1};  // the handler's byte wakes the stop thread
std::atomic<bool> exiting_on_stop{false};

std::mutex node_mu;
EmbeddedNode* stop_node = nullptr;  // guarded by node_mu

void OnStopSignal(int sig) {
  int first = 0;
  if (!stop_signal.compare_exchange_strong(first, sig)) _exit(128 + first);  // again: at once
  if (stop_pipe[1] >= 0) {
    char byte = 1;
    (void)!write(stop_pipe[1], &byte, 1);
  }
}

// The stop thread: waits for the first signal, closes the node, exits.
void AwaitStop() {
  char byte;
  while (read(stop_pipe[0], &byte, 1) < 0 && errno == EINTR) {
  }
  {
    std::lock_guard lock(node_mu);  // held to the end: the node stays alive
    if (stop_node != nullptr) {
      std::fprintf(stderr, "keel: stopping (again to exit at once)\n");
      stop_node->Close().IgnoreError();
    }
    std::fflush(stdout);
    std::fflush(stderr);
    _exit(StopExitCode());
  }
}

}  // namespace

void InstallStopSignals() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (pipe2(stop_pipe, O_CLOEXEC) != 0) stop_pipe[0] = stop_pipe[1] = -1;
    struct sigaction sa {};
    sa.sa_handler = OnStopSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
  });
}

bool StopRequested() { return stop_signal.load() != 0; }

int StopExitCode() {
  int sig = stop_signal.load();
  return sig == 0 ? 0 : 128 + sig;
}

void ExitOnStopSignals() {
  InstallStopSignals();
  if (stop_pipe[0] < 0 || exiting_on_stop.exchange(true)) return;
  std::thread(AwaitStop).detach();
}

void YieldToStop() {
  if (!StopRequested() || !exiting_on_stop.load()) return;
  for (;;) pause();
}

CloseOnStop::CloseOnStop(EmbeddedNode* node) {
  std::lock_guard lock(node_mu);
  previous_ = stop_node;
  stop_node = node;
}

CloseOnStop::~CloseOnStop() {
  std::lock_guard lock(node_mu);
  stop_node = previous_;
}

}  // namespace keel::cli
