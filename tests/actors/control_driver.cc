// Test driver for control_crash_test: opens a Node on DIR, starts the
// workflow in FILE, waits until the process rests (paused, waiting), writes
// its id to READY (atomically), then blocks until it is killed.
//
//   control_driver DIR FILE READY
//
// Its `count` activity appends a line to DIR/count-<key>, so that the test
// can count invocations across processes.

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "keel/node.h"

namespace {

keel::ActivityResult Count(const std::string& dir, const keel::ActivityContext& c) {
  std::ofstream(dir + "/count-" + c.input.value("key", "count"), std::ios::app)
      << c.task_id << "\n";
  return keel::ActivityResult::Ok(1);
}

int Fail(const keel::Status& s) {
  std::cerr << "control_driver: " << s.ToString() << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: control_driver DIR FILE READY\n";
    return 2;
  }
  std::string dir = argv[1];
  keel::Options options;
  options.data_dir = dir;
  options.resume = false;
  auto node = keel::Node::Open(options);
  if (!node.ok()) return Fail(node.status());
  auto registered = (*node)->RegisterActivity(
      "count", [dir](const keel::ActivityContext& c) { return Count(dir, c); });
  if (!registered.ok()) return Fail(registered);
  if (auto resumed = (*node)->Resume(); !resumed.ok()) return Fail(resumed);
  auto wf = keel::LoadWorkflowFile(argv[2]);
  if (!wf.ok()) return Fail(wf.status());
  auto started = (*node)->Start(*wf, keel::Json::object());
  if (!started.ok()) return Fail(started.status());
  std::string id = (*started)["id"];
  auto rested = (*node)->Wait(id, std::chrono::minutes(1));
  if (!rested.ok()) return Fail(rested.status());
  std::string ready = argv[3];
  std::ofstream(ready + ".tmp") << id;
  std::rename((ready + ".tmp").c_str(), ready.c_str());
  for (;;) pause();
}
