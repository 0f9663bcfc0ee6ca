// Helper of crash_test: appends legal process histories in a loop from a few
// threads until killed, printing "<stream> <seq>" (flushed) for each append
// the store acknowledged.
//
// usage: append_child DIR sync|async PREFIX BACKEND

#include <cstdio>
#include <mutex>
#include <random>
#include <thread>

#include "store/event_store.h"
#include "tests/store/backends.h"
#include "tests/store/process_script.h"

using keel::store::AppendRequest;
using keel::store::testing::ProcessScript;

int main(int argc, char** argv) {
  const keel::store::testing::Backend* backend =
      argc == 5 ? keel::store::testing::FindBackend(argv[4]) : nullptr;
  if (backend == nullptr) {
    std::fprintf(stderr, "usage: append_child DIR sync|async PREFIX BACKEND\n");
    return 2;
  }
  keel::store::StoreOptions options;
  options.path = argv[1];
  options.durability = std::string(argv[2]) == "sync" ? keel::store::Durability::kSync
                                                      : keel::store::Durability::kAsync;
  const std::string prefix = argv[3];
  auto opened = backend->open(options);
  if (!opened.ok()) {
    std::fprintf(stderr, "open: %s\n", opened.status().ToString().c_str());
    return 1;
  }
  auto& store = *opened;
  std::mutex out_mu;
  auto append = [&](const std::string& stream, uint64_t* seq,
                    std::vector<keel::events::Draft> drafts) {
    size_t n = drafts.size();
    auto r = store->Append(AppendRequest{stream, *seq, std::move(drafts)});
    if (!r.ok()) {
      std::fprintf(stderr, "append %s: %s\n", stream.c_str(), r.status().ToString().c_str());
      std::_Exit(1);
    }
    *seq += n;
    std::lock_guard<std::mutex> lock(out_mu);
    std::printf("%s %llu\n", stream.c_str(), static_cast<unsigned long long>(r->last_seq));
    std::fflush(stdout);
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(std::random_device{}());
      for (int k = 0;; ++k) {
        std::string id = prefix + "-" + std::to_string(t) + "-" + std::to_string(k);
        ProcessScript script(id, "crash", id + "-key");
        uint64_t seq = 0;
        append(id, &seq, script.Start());
        bool timer = rng() % 3 == 0;
        if (timer)
          append(id, &seq, {keel::events::TimerScheduled(script.P(), "tm", 42, "sleep", "")});
        int tasks = 1 + static_cast<int>(rng() % 5);
        for (int i = 0; i < tasks; ++i) append(id, &seq, script.Task());
        if (rng() % 4 == 0) continue;  // leave it running
        if (timer) append(id, &seq, {keel::events::TimerFired(script.P(), "tm", 42)});
        append(id, &seq, script.Finish());
      }
    });
  }
  for (auto& t : threads) t.join();
}
