#pragma once

// Test helper: seals Drafts into a stream the way the store's writer does
// (increasing seq, a real hash chain from an all-zero prev hash) and decodes
// them back into StoredEvents.

#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "events/codec.h"
#include "events/state.h"

namespace keel::events::testing {

// 2026-11-22T10:00:00Z.
inline constexpr int64_t kT0 = 1795341600LL * 1'000'000'000;

class EventChain {
 public:
  explicit EventChain(std::string stream = "p1")
      : stream_(std::move(stream)), prev_(kHashSize, '\0') {}

  const std::string& stream() const { return stream_; }
  Header H(std::string_view entity, std::string_view actor = "system") const {
    return {stream_, entity, actor};
  }
  Header P() const { return {stream_, stream_, "system"}; }  // a process event

  uint64_t next_seq() const { return seq_ + 1; }
  // Time of the event with `seq`: 1 ms apart, with a sub-ms part to catch truncation.
  static int64_t TimeOf(uint64_t seq) { return kT0 + static_cast<int64_t>(seq) * 1'000'123; }

  // Seals `draft` as event `seq` chained to the last committed one.
  StoredEvent At(Draft draft, uint64_t seq) const {
    std::string value = Seal(std::move(draft), seq, 100 + seq, TimeOf(seq), prev_);
    auto event = StoredEvent::Decode(std::move(value));
    EXPECT_TRUE(event.ok()) << event.status().ToString();
    return std::move(event).value();
  }
  StoredEvent Next(Draft draft) const { return At(std::move(draft), next_seq()); }

  // Makes `event` the chain's last event.
  void Commit(const StoredEvent& event) {
    seq_ = event.seq();
    prev_ = std::string(event.hash());
  }

 private:
  std::string stream_;
  std::string prev_;
  uint64_t seq_ = 0;
};

// Seals `draft` as the chain's next event and folds it into `state`; the chain
// moves on only when the fold accepts it.
inline Status FoldNext(EventChain& chain, ProcessState& state, Draft draft) {
  StoredEvent event = chain.Next(std::move(draft));
  Status s = Apply(state, event);
  if (s.ok()) chain.Commit(event);
  return s;
}

}  // namespace keel::events::testing
