#pragma once

// What `keel run` shows while a process moves: its events as they become
// durable, in log order (a parent step ends after its children), with the
// duration of every task attempt. Colour only when asked (a terminal).

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>

#include "tools/cli.h"

namespace keel::cli {

// Reads process `id`'s log from a read-only view of `data_dir` on its own
// thread, woken by Changed(), so that it never slows the node; prints one
// line per task event to `out`. Not copyable.
class LiveDisplay {
 public:
  // Shows the events after seq `after` (a fork's copied events are not news).
  LiveDisplay(std::string data_dir, std::string id, std::ostream& out, bool colour,
              uint64_t after = 0);
  ~LiveDisplay();
  LiveDisplay(const LiveDisplay&) = delete;
  LiveDisplay& operator=(const LiveDisplay&) = delete;

  // The process changed: look for new events soon. Any thread; never blocks
  // on the store.
  void Changed();
  // Prints every event up to the end of the log, then stops the thread.
  void Finish();

  // The line for one event (events::ToJson), "" for an event not shown.
  // `started_ns` holds the start of each task's running attempt.
  static std::string Line(const Json& event, std::map<std::string, int64_t>& started_ns,
                          bool colour);

 private:
  void Loop();
  // Prints the events after the last printed; false when the store failed.
  bool PrintNew();

  const std::string data_dir_, id_;
  std::ostream& out_;
  const bool colour_;
  std::unique_ptr<ReadOnlyStore> store_;  // display thread only
  uint64_t next_seq_ = 1;                 // display thread only
  std::map<std::string, int64_t> started_ns_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool changed_ = false;    // guarded by mu_
  bool finishing_ = false;  // guarded by mu_
  std::thread thread_;
};

// Whether `fd` should get colour: a terminal, $NO_COLOR unset, $TERM not dumb.
bool WantsColour(int fd);

}  // namespace keel::cli
