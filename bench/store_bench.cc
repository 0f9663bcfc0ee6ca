// The store's own benchmarks (shared/bench/WORKLOADS.md, "keel's side"):
//   store-append-{sync,async}-c{1,8,64}: appends/s of 3-event batches (one
//     step of a chain: TaskScheduled, TaskStarted, TaskCompleted) with 1, 8 or
//     64 concurrent appenders, each on its own stream, through the public
//     EventStore API (Append blocks until the batch is durable).
//   replay: events/s reading one 1,000,000-event stream back, verifying its
//     hash chain and folding it (events::Apply), as a node does on resume;
//     reading and folding on two threads.
// Result lines on stdout; diagnostics on stderr. Usage:
//   store_bench [--smoke] [--only=<substring>[,...]]

#include <algorithm>
#include <atomic>
#include <barrier>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench/bench_util.h"
#include "events/codec.h"
#include "events/state.h"
#include "store/event_store.h"

namespace keel::bench {
namespace {

constexpr char kPeer[] = "keel";

std::string TaskId(int64_t i) { return "s" + std::to_string(i); }

// The first append of a process: ProcessCreated, ProcessStarted and branch
// main started, as the runtime writes them.
std::vector<events::Draft> OpeningDrafts(const std::string& stream, int64_t x) {
  std::vector<events::Draft> drafts;
  std::string inputs = "{\"x\":" + std::to_string(x) + "}";
  drafts.push_back(
      events::ProcessCreated({stream, stream}, "chain10", std::string(64, 'a'), inputs, "{}", ""));
  drafts.push_back(events::ProcessStarted({stream, stream}));
  events::BranchStart main;
  main.first_step = "s0";
  drafts.push_back(events::BranchStarted({stream, "main"}, main));
  return drafts;
}

// One durable step of task `i`: scheduled, started and completed in one batch.
std::vector<events::Draft> StepDrafts(const std::string& stream, int64_t i, int64_t x) {
  std::vector<events::Draft> drafts;
  std::string task = TaskId(i);
  std::string key = stream + "/" + task + "/1";
  drafts.push_back(
      events::TaskScheduled({stream, task}, task, "main", "{\"x\":" + std::to_string(x + i) + "}"));
  drafts.push_back(events::TaskStarted({stream, task}, 1, key));
  drafts.push_back(events::TaskCompleted({stream, task}, std::to_string(x + i + 1), TaskId(i + 1)));
  return drafts;
}

std::unique_ptr<store::EventStore> OpenStore(const std::string& dir, store::Durability durability) {
  store::StoreOptions options;
  options.path = dir;
  options.durability = durability;
  auto opened = store::EventStore::Open(options);
  if (!opened.ok()) {
    std::fprintf(stderr, "open %s: %s\n", dir.c_str(), opened.status().ToString().c_str());
    std::exit(2);
  }
  return std::move(opened).value();
}

// store-append-<sync|async>-c<appenders>: each appender appends `per_appender`
// step batches to its own stream, one at a time (closed loop).
int StoreAppend(const Reporter& out, store::Durability durability, int appenders,
                int per_appender) {
  const bool sync = durability == store::Durability::kSync;
  const std::string workload =
      std::string("store-append-") + (sync ? "sync" : "async") + "-c" + std::to_string(appenders);
  const std::string dir = FreshDir(workload);
  auto store = OpenStore(dir, durability);

  std::atomic<int> errors{0};
  std::mutex mu;
  std::vector<double> latencies_us;
  latencies_us.reserve(static_cast<size_t>(appenders) * per_appender);
  Clock::time_point start;
  // Everyone opens its stream first; the window starts when all are ready.
  std::barrier ready(appenders + 1);
  std::vector<std::thread> threads;
  for (int a = 0; a < appenders; ++a) {
    threads.emplace_back([&, a] {
      const std::string stream = "p_bench_" + std::to_string(a);
      const int64_t x = 1'000'000 + a;
      auto opened = store->Append({stream, 0, OpeningDrafts(stream, x)});
      uint64_t last = opened.ok() ? opened->last_seq : 0;
      if (!opened.ok()) errors++;
      ready.arrive_and_wait();
      std::vector<double> mine;
      mine.reserve(per_appender);
      for (int i = 0; i < per_appender && last != 0; ++i) {
        auto t0 = Clock::now();
        auto appended = store->Append({stream, last, StepDrafts(stream, i, x)});
        mine.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        if (!appended.ok()) {
          std::fprintf(stderr, "%s: %s\n", workload.c_str(), appended.status().ToString().c_str());
          errors++;
          break;
        }
        last = appended->last_seq;
      }
      std::lock_guard lock(mu);
      latencies_us.insert(latencies_us.end(), mine.begin(), mine.end());
    });
  }
  FsyncCounter fsyncs;
  fsyncs.Start();
  start = Clock::now();
  ready.arrive_and_wait();
  for (auto& t : threads) t.join();
  const double wall = SecondsSince(start);
  std::optional<uint64_t> synced = fsyncs.Stop();
  Status closed = store->Close();
  if (!closed.ok()) {
    std::fprintf(stderr, "%s: close: %s\n", workload.c_str(), closed.ToString().c_str());
    errors++;
  }

  const double appends = static_cast<double>(appenders) * per_appender;
  out.Line(kPeer, workload, "appends_per_sec", appends / wall, "appends/s");
  out.Line(kPeer, workload, "events_per_sec", 3 * appends / wall, "events/s");
  out.Line(kPeer, workload, "wall_time", wall, "s");
  out.Line(kPeer, workload, "p50_latency", Percentile(latencies_us, 50), "us");
  out.Line(kPeer, workload, "p99_latency", Percentile(latencies_us, 99), "us");
  if (synced) out.Line(kPeer, workload, "fsyncs_per_append", *synced / appends, "fsync/append");
  out.Line(kPeer, workload, "errors", errors.load(), "count");
  std::filesystem::remove_all(dir);
  return errors.load();
}

// Writes one stream of exactly `total` events (a process that ran
// (total - 4) / 3 steps, then completed).
int WriteLongStream(store::EventStore& store, const std::string& stream, int64_t total) {
  constexpr int kStepsPerAppend = 300;
  const int64_t x = 4'000'000;
  auto appended = store.Append({stream, 0, OpeningDrafts(stream, x)});
  if (!appended.ok()) return 1;
  uint64_t last = appended->last_seq;
  const int64_t steps = (total - 4) / 3;
  for (int64_t i = 0; i < steps;) {
    store::AppendRequest request{stream, last, {}};
    for (int k = 0; k < kStepsPerAppend && i < steps; ++k, ++i) {
      for (auto& d : StepDrafts(stream, i, x)) request.events.push_back(std::move(d));
    }
    appended = store.Append(std::move(request));
    if (!appended.ok()) {
      std::fprintf(stderr, "replay setup: %s\n", appended.status().ToString().c_str());
      return 1;
    }
    last = appended->last_seq;
  }
  store::AppendRequest request{stream, last, {}};
  while (static_cast<int64_t>(request.expected_seq + request.events.size()) < total - 1) {
    request.events.push_back(events::VariablesSet({stream, "main"}, "{\"pad\":true}"));
  }
  request.events.push_back(events::ProcessCompleted({stream, stream}, "{\"result\":0}"));
  return store.Append(std::move(request)).ok() ? 0 : 1;
}

// A page of the replayed stream on its way from the reader to the folder.
struct ReplayPage {
  std::vector<events::StoredEvent> events;
  bool hashed = false;  // HashMatches already checked (by the reader)
};

// The hand-off between the replay's two threads: a bounded queue of pages to
// fold, and the folded pages on their way back to the reader, which frees them:
// its own allocations then go back to its own malloc arena (freeing them on
// the folder's thread contended for the reader's arena lock and slowed both).
class PageQueue {
 public:
  explicit PageQueue(size_t capacity) : capacity_(capacity) {}
  // Blocks while full.
  void Push(ReplayPage page) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return queue_.size() < capacity_; });
    queue_.push_back(std::move(page));
    not_empty_.notify_one();
  }
  // Blocks while empty; nullopt once closed and drained.
  std::optional<ReplayPage> Pop() {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return !queue_.empty() || closed_; });
    if (queue_.empty()) return std::nullopt;
    ReplayPage page = std::move(queue_.front());
    queue_.pop_front();
    not_full_.notify_one();
    return page;
  }
  // True when the folder has a page waiting: it is behind the reader.
  bool Backlog() {
    std::lock_guard lock(mu_);
    return !queue_.empty();
  }
  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
  }
  void Return(ReplayPage page) {
    std::lock_guard lock(mu_);
    folded_.push_back(std::move(page));
  }
  std::vector<ReplayPage> TakeFolded() {
    std::lock_guard lock(mu_);
    return std::exchange(folded_, {});
  }

 private:
  const size_t capacity_;
  std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<ReplayPage> queue_;
  std::vector<ReplayPage> folded_;
  bool closed_ = false;
};

// Checks HashMatches (chain hash = SHA-256(prev_hash || envelope)) of each
// event of the page; counts failures into `errors`.
void CheckHashes(const ReplayPage& page, int* errors) {
  for (const auto& event : page.events) {
    if (!event.HashMatches() && (*errors)++ == 0) {
      std::fprintf(stderr, "replay: hash of seq %lu does not match its content\n", event.seq());
    }
  }
}

double Seconds(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

struct ReplayRun {
  int64_t events = 0;
  int errors = 0;
  double wall_s = 0, read_s = 0, verify_s = 0, fold_s = 0;
  events::ProcessStatus status = events::ProcessStatus::kPending;
};

// Reads, verifies and folds `stream` on two threads, as a two-core node can:
// a reader reads pages (`ReadStream`) and checks that each event's prev_hash
// is the previous event's hash; this thread checks HashMatches and folds
// (`events::Apply`, which also checks seq continuity). The hash checks, the
// costliest checks, go to whichever thread has time: the reader does a page's
// when the folder is behind (a page waits in the queue), the folder those that
// the reader left.
ReplayRun ReadVerifyFold(store::EventStore& store, const std::string& stream) {
  constexpr size_t kPage = 4096;
  ReplayRun run;
  int reader_errors = 0;
  double reader_verify_s = 0;
  events::ProcessState state;
  PageQueue queue(4);
  auto start = Clock::now();
  std::thread reader([&] {
    std::string prev_hash(events::kHashSize, '\0');
    for (uint64_t from = 1;;) {
      queue.TakeFolded();  // frees them
      auto t0 = Clock::now();
      auto read = store.ReadStream(stream, from, UINT64_MAX, kPage);
      auto t1 = Clock::now();
      run.read_s += Seconds(t0, t1);
      if (!read.ok()) {
        std::fprintf(stderr, "replay: %s\n", read.status().ToString().c_str());
        ++reader_errors;
        break;
      }
      if (read->empty()) break;
      ReplayPage page{std::move(read).value()};
      for (const auto& event : page.events) {
        if (event.prev_hash() != prev_hash && reader_errors++ == 0) {
          std::fprintf(stderr, "replay: chain broken at seq %lu\n", event.seq());
        }
        prev_hash = event.hash();
      }
      if (queue.Backlog()) {
        CheckHashes(page, &reader_errors);
        page.hashed = true;
      }
      reader_verify_s += Seconds(t1, Clock::now());
      from = page.events.back().seq() + 1;
      queue.Push(std::move(page));
    }
    queue.Close();
  });
  while (std::optional<ReplayPage> page = queue.Pop()) {
    auto t0 = Clock::now();
    if (!page->hashed) CheckHashes(*page, &run.errors);
    auto t1 = Clock::now();
    for (const auto& event : page->events) {
      Status applied = events::Apply(state, event);
      if (!applied.ok() && run.errors++ == 0) {
        std::fprintf(stderr, "replay: %s\n", applied.ToString().c_str());
      }
    }
    auto t2 = Clock::now();
    run.verify_s += Seconds(t0, t1);
    run.fold_s += Seconds(t1, t2);
    run.events += static_cast<int64_t>(page->events.size());
    queue.Return(std::move(*page));
  }
  reader.join();
  queue.TakeFolded();  // the last pages, freed inside the window too
  run.wall_s = SecondsSince(start);
  run.errors += reader_errors;
  run.verify_s += reader_verify_s;
  run.status = state.status;
  return run;
}

int Replay(const Reporter& out, int64_t total) {
  const std::string workload = "replay";
  const std::string dir = FreshDir(workload);
  const std::string stream = "p_replay";
  {
    auto store = OpenStore(dir, store::Durability::kAsync);
    if (WriteLongStream(*store, stream, total) != 0) return 1;
    if (!store->Close().ok()) return 1;
  }
  // A freshly opened store, as a node sees it when it resumes.
  auto store = OpenStore(dir, store::Durability::kSync);
  ReplayRun run = ReadVerifyFold(*store, stream);
  int errors = run.errors;
  if (run.events != total || run.status != events::ProcessStatus::kCompleted) {
    std::fprintf(stderr, "replay: folded %ld of %ld events, status %s\n", run.events, total,
                 events::Name(run.status));
    ++errors;
  }
  if (!store->Close().ok()) ++errors;
  out.Line(kPeer, workload, "events_per_sec", static_cast<double>(run.events) / run.wall_s,
           "events/s");
  out.Line(kPeer, workload, "wall_time", run.wall_s, "s");
  // Time in each phase, summed over both threads (the sum exceeds the wall
  // time by what the threads did at once).
  out.Line(kPeer, workload, "read_time", run.read_s, "s");
  out.Line(kPeer, workload, "verify_time", run.verify_s, "s");
  out.Line(kPeer, workload, "fold_time", run.fold_s, "s");
  out.Line(kPeer, workload, "data_dir_size", static_cast<double>(DirSize(dir)), "bytes");
  out.Line(kPeer, workload, "errors", errors, "count");
  std::filesystem::remove_all(dir);
  return errors;
}

}  // namespace
}  // namespace keel::bench

int main(int argc, char** argv) {
  using namespace keel::bench;
  Flags flags = ParseFlags(argc, argv);
  if (!flags.rest.empty()) {
    std::fprintf(stderr, "usage: store_bench [--smoke] [--only=<substring>[,...]]\n");
    return 2;
  }
  Reporter out(flags.smoke);
  struct Case {
    keel::store::Durability durability;
    int appenders, per_appender, smoke_per_appender;
  };
  using keel::store::Durability;
  const Case cases[] = {
      {Durability::kSync, 1, 5000, 50},   {Durability::kSync, 8, 2000, 20},
      {Durability::kSync, 64, 400, 5},    {Durability::kAsync, 1, 50000, 50},
      {Durability::kAsync, 8, 20000, 20}, {Durability::kAsync, 64, 2000, 5},
  };
  int errors = 0;
  for (const Case& c : cases) {
    std::string name = std::string("store-append-") +
                       (c.durability == Durability::kSync ? "sync" : "async") + "-c" +
                       std::to_string(c.appenders);
    if (!flags.Wants(name)) continue;
    errors += StoreAppend(out, c.durability, c.appenders,
                          flags.smoke ? c.smoke_per_appender : c.per_appender);
  }
  if (flags.Wants("replay")) errors += Replay(out, flags.smoke ? 10'000 : 1'000'000);
  return errors == 0 ? 0 : 1;
}
