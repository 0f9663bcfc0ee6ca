// libFuzzer target: arbitrary bytes as a stored event value. Decode must
// reject or accept without crashing; an accepted event must render as JSON
// and fold (or be refused) without crashing, into an empty state and into a
// live one whose last seq is set to just before the event's.

#include <cstddef>
#include <cstdint>
#include <string>

#include "events/codec.h"
#include "events/state.h"

namespace {

using namespace keel::events;  // NOLINT: a fuzz target is its own small world

// A process with a running branch `main`, a running task `t` and a waiting
// approval task `a` (the ids the seed corpus and most mutations use).
ProcessState LiveState() {
  ProcessState state;
  std::string prev(kHashSize, '\0');
  uint64_t seq = 0;
  auto fold = [&](Draft d) {
    ++seq;
    auto e = StoredEvent::Decode(Seal(std::move(d), seq, seq, 1, prev));
    if (!e.ok() || !Apply(state, *e).ok()) __builtin_trap();
    prev = std::string(e->hash());
  };
  const Header process{"p1", "p1"}, main{"p1", "main"}, t{"p1", "t"}, a{"p1", "a"};
  fold(ProcessCreated(process, "w", "h", "{}", "{}", ""));
  fold(ProcessStarted(process));
  fold(BranchStarted(main, {.vars_json = "{}", .first_step = "t"}));
  fold(TaskScheduled(t, "t", "main", "{}"));
  fold(TaskStarted(t, 1, "p1/t/1"));
  fold(TaskScheduled(a, "a", "main", "{}"));
  fold(TaskWaitingForApproval(a, "ok?", "", 0));
  fold(TimerScheduled(process, "timer", 5, "sleep", "t"));
  fold(SignalReceived(process, "topic", "{}"));
  return state;
}

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ProcessState kLive = LiveState();
  auto event = StoredEvent::Decode(std::string(reinterpret_cast<const char*>(data), size));
  if (!event.ok()) return 0;
  (void)event->HashMatches();
  Dump(ToJson(*event));  // strict: our JSON must always be valid UTF-8

  ProcessState empty;
  if (Apply(empty, *event).ok()) Dump(ToJson(empty));

  ProcessState live = kLive;
  live.id = std::string(event->stream());
  live.last_seq = event->seq() - 1;
  if (Apply(live, *event).ok()) {
    nlohmann::json snapshot = ToJson(live);
    Dump(snapshot);
    auto rebuilt = StateFromJson(snapshot);
    if (!rebuilt.ok() || ToJson(*rebuilt) != snapshot) __builtin_trap();
  }
  (void)CheckTransition(kLive, event->type(), event->entity());
  return 0;
}
