#include "runtime/internal/rest_waiters.h"

#include <type_traits>

#include "base/time.h"

namespace keel::runtime {
namespace {

// How long a wait lets a due timer fire before it judges the process.
constexpr auto kDueTimerPatience = std::chrono::seconds(10);

ProcessOutcome OutcomeOf(const events::ProcessState& s) {
  return {s.id, events::Name(s.status), s.outputs, events::ProcessErrorJson(s)};
}

// An armed timer of `s` is due: the timer service is about to move it.
bool HasDueTimer(const events::ProcessState& s) {
  const int64_t now = NowNs();
  for (const auto& [_, timer] : s.timers) {
    if (timer.due_ns <= now) return true;
  }
  return false;
}

template <typename T>
T Answer(const events::ProcessState& state) {
  if constexpr (std::is_same_v<T, Json>)
    return events::ToJson(state);
  else
    return OutcomeOf(state);
}

}  // namespace

template <typename T>
int& RestWaiters::Waiters(Watch& w) {
  if constexpr (std::is_same_v<T, Json>)
    return w.snapshot_waiters;
  else
    return w.outcome_waiters;
}

template <typename T>
std::shared_ptr<T>& RestWaiters::Rest(Watch& w) {
  if constexpr (std::is_same_v<T, Json>)
    return w.snapshot;
  else
    return w.outcome;
}

void RestWaiters::Published(const events::ProcessState& state) {
  std::vector<std::function<void(const Json&)>> fns;
  {
    std::lock_guard lock(mu_);
    // Only a rest wakes a waiter, and only the waiters of this process.
    auto w = watched_.find(state.id);
    if (w != watched_.end() && events::AtRest(state.status)) {
      // The waiters take the state from here, in the forms they wait for:
      // no read of the store.
      Watch& watch = w->second;
      if (watch.snapshot_waiters) watch.snapshot = std::make_shared<Json>(events::ToJson(state));
      if (watch.outcome_waiters) watch.outcome = std::make_shared<ProcessOutcome>(OutcomeOf(state));
      watch.rests++;
      watch.cv.notify_all();
    }
    auto s = subscribers_.find(state.id);
    if (s != subscribers_.end()) {
      for (const auto& [_, fn] : s->second) fns.push_back(fn);
    }
  }
  if (!fns.empty()) {
    Json snapshot = events::ToJson(state);
    for (const auto& fn : fns) fn(snapshot);
  }
}

void RestWaiters::Stopped(const std::string& id) {
  std::lock_guard lock(mu_);
  if (auto w = watched_.find(id); w != watched_.end()) {
    w->second.stops++;
    w->second.cv.notify_all();
  }
}

Result<Json> RestWaiters::WaitForSnapshot(const std::string& id, std::chrono::milliseconds timeout,
                                          bool until_done) {
  return WaitForRest<Json>(id, timeout, until_done);
}

Result<ProcessOutcome> RestWaiters::WaitForOutcome(const std::string& id,
                                                   std::chrono::milliseconds timeout) {
  return WaitForRest<ProcessOutcome>(id, timeout, /*until_done=*/false);
}

// Wait (T = Json, the snapshot) and Await (T = ProcessOutcome); with
// `until_done` (T = Json only), WaitUntilDone: rests on timers alone are
// passed by.
template <typename T>
Result<T> RestWaiters::WaitForRest(const std::string& id, std::chrono::milliseconds timeout,
                                   bool until_done) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  // A process resting on a timer that is already due is about to move: the
  // timer service fires it. Waited for this long at most, in case it cannot
  // fire.
  const auto due_patience = std::chrono::steady_clock::now() + kDueTimerPatience;
  {
    std::lock_guard lock(mu_);
    if (closed_) return Status::Aborted("the node is closing");
    Waiters<T>(watched_[id])++;
  }
  struct Unwatch {
    RestWaiters* self;
    std::string id;
    ~Unwatch() {
      std::lock_guard lock(self->mu_);
      Watch& watch = self->watched_[id];
      --Waiters<T>(watch);
      if (watch.snapshot_waiters + watch.outcome_waiters == 0) self->watched_.erase(id);
    }
  } unwatch{this, id};
  // A live actor publishes its rests and says when it stops; a process with
  // no actor is read from the store. Counts are taken before the check of
  // liveness, so that a rest or stop in between is not missed.
  uint64_t rests, stops;
  {
    std::lock_guard lock(mu_);
    rests = watched_[id].rests;
    stops = watched_[id].stops;
  }
  bool read = !sources_.is_live(id);
  bool due = false;  // it rests on a timer that is already due
  auto waits_for_timer = [&](bool has_due) {
    return has_due && sources_.timers_running() && std::chrono::steady_clock::now() < due_patience;
  };
  for (;;) {
    if (read) {
      auto state = sources_.load(id);
      if (!state.ok()) return IsClosed() ? Status::Aborted("the node is closing") : state.status();
      due = false;
      if (events::AtRest(state->status)) {
        due = waits_for_timer(HasDueTimer(*state));
        if (!due && (!until_done || Settled(events::ToJson(*state)))) return Answer<T>(*state);
      }
    }
    std::shared_ptr<T> rest;
    bool last_waiter = false;
    {
      std::unique_lock lock(mu_);
      Watch& watch = watched_[id];
      auto until = due ? std::min(deadline, due_patience) : deadline;
      if (!watch.cv.wait_until(lock, until, [&] {
            return watch.rests != rests || watch.stops != stops || closed_;
          })) {
        if (until != deadline) {  // the due timer did not fire: judge the process as it is
          read = true;
          continue;
        }
        lock.unlock();
        auto last = sources_.load(id);
        if (!last.ok()) return last.status();
        if (events::AtRest(last->status)) return Answer<T>(*last);
        return Status::TimedOut("process '" + id + "' did not rest within the timeout");
      }
      if (watch.rests == rests && closed_) return Status::Aborted("the node is closing");
      if (watch.rests == rests) {
        // Stopped without a rest seen here (it rested before this wait
        // began, or it failed): the store has its state.
        stops = watch.stops;
        read = true;
        continue;
      }
      rests = watch.rests;
      rest = Rest<T>(watch);
      last_waiter = Waiters<T>(watch) == 1;
    }
    // A rest that a due timer ends at once, or (until_done) a rest on timers
    // alone: wait for the next.
    due = waits_for_timer(RestHasDueTimer(id, *rest));
    bool settled = true;
    if constexpr (std::is_same_v<T, Json>) settled = !until_done || Settled(*rest);
    if (due || !settled) {
      read = false;
      continue;
    }
    if (last_waiter) return std::move(*rest);  // the last waiter takes it
    return *rest;
  }
}

bool RestWaiters::IsClosed() {
  std::lock_guard lock(mu_);
  return closed_;
}

// Whether a published rest has an armed timer that is already due: read
// from the snapshot's timers, or for an outcome (no timers) from the store
// when the process is unfinished.
bool RestWaiters::RestHasDueTimer(const std::string&, const Json& snapshot) {
  const int64_t now = NowNs();
  auto timers = snapshot.find("timers");
  if (timers == snapshot.end() || !timers->is_array()) return false;
  for (const auto& t : *timers) {
    if (t.value("due_ns", INT64_MAX) <= now) return true;
  }
  return false;
}

bool RestWaiters::RestHasDueTimer(const std::string& id, const ProcessOutcome& outcome) {
  if (outcome.status != "waiting" && outcome.status != "paused") return false;
  auto state = sources_.load(id);
  return state.ok() && HasDueTimer(*state);
}

std::function<void()> RestWaiters::Subscribe(const std::string& id,
                                             std::function<void(const Json&)> fn) {
  std::lock_guard lock(mu_);
  int token = ++next_token_;
  subscribers_[id].emplace(token, std::move(fn));
  return [this, id, token] {
    std::lock_guard l(mu_);
    auto it = subscribers_.find(id);
    if (it == subscribers_.end()) return;
    it->second.erase(token);
    if (it->second.empty()) subscribers_.erase(it);
  };
}

void RestWaiters::Close() {
  // A process stopped by the close may never rest: no wait outlasts it.
  std::lock_guard lock(mu_);
  closed_ = true;
  for (auto& [_, watch] : watched_) watch.cv.notify_all();
}

}  // namespace keel::runtime
