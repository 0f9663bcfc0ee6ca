#pragma once

// The admission rules of one queue (docs/queues.md) as a plain class: who
// waits and in which order, who holds a slot, and the admissions inside the
// rate window. No I/O and no clock (callers pass the time), so the rules are
// tested alone; the queue service keeps one book per queue and records what
// it decides in the log before anyone acts on it.

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "keel/options.h"
#include "keel/types.h"

namespace keel::runtime {

// A process as its queue sees it.
struct QueueEntry {
  std::string id;
  int32_t priority = 0;  // lower first
  int64_t created_ns = 0;  // first come, first served within a priority
  std::string key;         // per_key limits count by it
};

class QueueBook {
 public:
  // `configured`: the node has the queue; a book of a queue only found in
  // the log (no node setting for it) admits nobody.
  QueueBook(QueueSpec spec, bool configured);

  const QueueSpec& spec() const { return spec_; }
  bool configured() const { return configured_; }

  // `e` waits to be admitted; nothing when the book knows its id already
  // (waiting or holding a slot).
  void Enqueue(const QueueEntry& e);
  // `e` was admitted and has not ended: it holds a slot (no-op if it does).
  // Its admission is not counted in the rate window (CountAdmission is).
  void Hold(const QueueEntry& e);
  // An admission at `at_ns` that counts against the rate (rebuilt from the
  // log's ProcessAdmitted times).
  void CountAdmission(int64_t at_ns);
  // `id` ended or left the queue: its slot or its place is free.
  void Release(const std::string& id);
  // An admission decided at `at_ns` that did not happen (it was refused):
  // `id` waits again, and the admission no longer counts.
  void Return(const std::string& id, int64_t at_ns);

  // Decides which waiting processes are admitted at `now_ns`, in order, and
  // marks them as holding a slot and counted in the rate window.
  std::vector<std::string> Admit(int64_t now_ns);
  // When the rate window next lets one more in, if that is what holds the
  // queue back now; 0 otherwise.
  int64_t NextRateOpening(int64_t now_ns);

  // 1-based place of waiting `id` in admission order; 0 if it does not wait.
  size_t Position(const std::string& id) const;
  size_t depth() const { return waiting_.size(); }
  size_t running() const { return holding_.size(); }
  // Admissions inside the rate window ending at `now_ns`.
  size_t RateUsed(int64_t now_ns);
  // {name, configured, spec, concurrency, per_key, key, rate, depth,
  //  running, rate_used, waiting: [first `list` ids in order]}
  Json View(int64_t now_ns, size_t list = 20);

 private:
  using Order = std::tuple<int32_t, int64_t, std::string>;  // priority, created, id
  static Order OrderOf(const QueueEntry& e) { return {e.priority, e.created_ns, e.id}; }
  void Prune(int64_t now_ns);

  QueueSpec spec_;
  bool configured_;
  std::map<Order, QueueEntry> waiting_;
  std::map<std::string, Order> waiting_ids_;
  std::map<std::string, QueueEntry> holding_;
  std::map<std::string, uint32_t> holding_per_key_;
  std::multiset<int64_t> window_;  // admission times, oldest first
};

}  // namespace keel::runtime
