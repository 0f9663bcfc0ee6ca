#include "store/load_state.h"

namespace keel::store {

Result<events::ProcessState> LoadState(EventStore& store, const std::string& id, uint64_t to_seq,
                                       uint64_t* tail) {
  events::ProcessState state;
  uint64_t from = 1;
  auto snap = store.LatestSnapshot(id, to_seq);
  if (!snap.ok()) return snap.status();
  if (*snap) {
    // Text that is not JSON parses to a discarded value, which is no object.
    auto restored =
        events::StateFromJson(nlohmann::json::parse((*snap)->state_json, nullptr, false));
    if (restored.ok()) {
      state = std::move(*restored);
      from = (*snap)->seq + 1;
    }
  }
  auto events = store.ReadStream(id, from, to_seq);
  if (!events.ok()) return events.status();
  if (from == 1 && events->empty()) return Status::NotFound("no process with id '" + id + "'");
  for (const auto& event : *events) KEEL_RETURN_IF_ERROR(events::Apply(state, event));
  if (tail) *tail = events->size();
  return state;
}

Result<events::ScheduleState> LoadSchedule(EventStore& store, std::string_view name) {
  auto events = store.ReadStream(events::ScheduleStream(name));
  if (!events.ok()) return events.status();
  if (events->empty()) return Status::NotFound("no schedule named '" + std::string(name) + "'");
  events::ScheduleState state;
  for (const auto& event : *events) KEEL_RETURN_IF_ERROR(events::ApplySchedule(state, event));
  return state;
}

}  // namespace keel::store
