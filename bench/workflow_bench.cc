// The canonical workloads of shared/bench/WORKLOADS.md on an embedded node:
// chain10-throughput, chain10-latency and fanout100, with the step `inc` as a
// registered in-process C++ activity. Prints result lines
//   peer=<keel|keel-async> workload=<w> metric=<m> value=<v> unit=<u>
// Usage: workflow_bench [--async] [--sync]   (default: both)   SMOKE=1 for tiny counts.

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "keel/node.h"

namespace {

using Clock = std::chrono::steady_clock;
using keel::Json;

bool smoke = false;

void Line(const std::string& peer, const std::string& workload, const char* metric, double value,
          const char* unit) {
  std::printf("peer=%s workload=%s%s metric=%s value=%.3f unit=%s\n", peer.c_str(), workload.c_str(),
              smoke ? "-smoke" : "", metric, value, unit);
  std::fflush(stdout);
}

double CpuMs() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e3;
}

// Nearest-rank percentile of sorted values.
double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * v.size()));
  return v[std::max<size_t>(rank, 1) - 1];
}

keel::Workflow Chain10() {
  keel::WorkflowBuilder b("chain10");
  b.Input("x", {.required = true});
  b.Activity("s0", "inc", {{"x", "${inputs.x}"}}).SaveAs("v");
  for (int i = 1; i < 10; ++i) b.Activity("s" + std::to_string(i), "inc", {{"x", "${vars.v}"}}).SaveAs("v");
  b.Output("result", "vars.v");
  return *b.Build();
}

keel::Workflow Fanout100() {
  auto wf = keel::ParseWorkflow(R"(name: fanout100
inputs: {x: {required: true}}
steps:
  - id: fan
    for_each: "(function() local t = {} for i = 0, 99 do t[#t + 1] = i end return t end)()"
    steps: [{id: step, activity: inc, with: {x: "${inputs.x + item}"}}]
    save_as: outs
  - id: join
    set: {sum: "(function() local s = 0 for _, v in ipairs(vars.outs) do s = s + v end return s end)()"}
outputs: {result: "vars.sum"}
)", "fanout100");
  if (!wf.ok()) {
    std::fprintf(stderr, "fanout100: %s\n", wf.status().ToString().c_str());
    std::exit(1);
  }
  return *wf;
}

struct Outcome {
  std::vector<double> latencies_ms;
  int errors = 0;
  double wall_s = 0;
  double cpu_ms = 0;
};

// Runs `count` instances with `in_flight` closed-loop drivers; instance i gets
// input base + i and must return expect(base + i).
Outcome Drive(keel::Node& node, const keel::Workflow& wf, int count, int in_flight, int64_t base,
              const std::function<int64_t(int64_t)>& expect) {
  Outcome out;
  std::atomic<int> next{0};
  std::mutex mu;
  auto cpu0 = CpuMs();
  auto t0 = Clock::now();
  std::vector<std::thread> drivers;
  for (int d = 0; d < in_flight; ++d) {
    drivers.emplace_back([&] {
      for (int i = next++; i < count; i = next++) {
        int64_t x = base + i;
        auto start = Clock::now();
        auto started = node.Start(wf, {{"x", x}});
        bool ok = started.ok();
        if (ok) {
          auto done = node.Wait((*started)["id"], std::chrono::minutes(10));
          ok = done.ok() && (*done)["status"] == "completed" && (*done)["outputs"]["result"] == expect(x);
          if (!ok && done.ok()) std::fprintf(stderr, "wrong result: %s\n", done->dump().c_str());
        } else {
          std::fprintf(stderr, "start failed: %s\n", started.status().ToString().c_str());
        }
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
        std::lock_guard lock(mu);
        out.latencies_ms.push_back(ms);
        if (!ok) out.errors++;
      }
    });
  }
  for (auto& t : drivers) t.join();
  out.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  out.cpu_ms = CpuMs() - cpu0;
  return out;
}

uint64_t DirSize(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) total += e.file_size();
  }
  return total;
}

int RunPeer(bool sync) {
  std::string peer = sync ? "keel" : "keel-async";
  std::string dir = (std::filesystem::temp_directory_path() / ("keel-bench-" + peer)).string();
  std::filesystem::remove_all(dir);
  keel::Options options;
  options.data_dir = dir;
  options.sync = sync;
  auto node = keel::Node::Open(options);
  if (!node.ok()) {
    std::fprintf(stderr, "open: %s\n", node.status().ToString().c_str());
    return 1;
  }
  auto status = (*node)->RegisterActivity("inc", [](const keel::ActivityContext& c) {
    return keel::ActivityResult::Ok(c.input["x"].get<int64_t>() + 1);
  });
  if (!status.ok()) return 1;
  keel::Workflow chain = Chain10(), fan = Fanout100();
  int errors = 0;
  auto plus10 = [](int64_t x) { return x + 10; };

  // Readiness check: not measured.
  errors += Drive(**node, chain, 64, 64, 0, plus10).errors;

  int n = smoke ? 200 : 10000;
  Outcome t = Drive(**node, chain, n, 64, 1'000'000, plus10);
  std::string w = "chain10-throughput";
  Line(peer, w, "workflows_per_sec", n / t.wall_s, "wf/s");
  Line(peer, w, "steps_per_sec", 10 * n / t.wall_s, "steps/s");
  Line(peer, w, "wall_time", t.wall_s, "s");
  Line(peer, w, "p50_latency_under_load", Percentile(t.latencies_ms, 50), "ms");
  Line(peer, w, "p99_latency_under_load", Percentile(t.latencies_ms, 99), "ms");
  Line(peer, w, "cpu_total_ms_per_wf", t.cpu_ms / n, "ms");
  Line(peer, w, "errors", t.errors, "count");
  errors += t.errors;

  Drive(**node, chain, smoke ? 5 : 50, 1, 1'900'000, plus10);  // warm-up
  int m = smoke ? 50 : 500;
  Outcome l = Drive(**node, chain, m, 1, 2'000'000, plus10);
  w = "chain10-latency";
  Line(peer, w, "p50", Percentile(l.latencies_ms, 50), "ms");
  Line(peer, w, "p99", Percentile(l.latencies_ms, 99), "ms");
  Line(peer, w, "mean", std::accumulate(l.latencies_ms.begin(), l.latencies_ms.end(), 0.0) / m, "ms");
  Line(peer, w, "max", *std::max_element(l.latencies_ms.begin(), l.latencies_ms.end()), "ms");
  Line(peer, w, "wall_time", l.wall_s, "s");
  Line(peer, w, "cpu_total_ms_per_wf", l.cpu_ms / m, "ms");
  Line(peer, w, "errors", l.errors, "count");
  errors += l.errors;

  int f = smoke ? 10 : 100;
  Outcome o = Drive(**node, fan, f, 8, 3'000'000, [](int64_t x) { return 100 * x + 5050; });
  w = "fanout100";
  Line(peer, w, "workflows_per_sec", f / o.wall_s, "wf/s");
  Line(peer, w, "steps_per_sec", 100 * f / o.wall_s, "steps/s");
  Line(peer, w, "wall_time", o.wall_s, "s");
  Line(peer, w, "p50_latency_under_load", Percentile(o.latencies_ms, 50), "ms");
  Line(peer, w, "cpu_total_ms_per_wf", o.cpu_ms / f, "ms");
  Line(peer, w, "errors", o.errors, "count");
  errors += o.errors;

  status = (*node)->Close();
  Line(peer, "chain10-throughput", "data_dir_size", static_cast<double>(DirSize(dir)), "bytes");
  std::filesystem::remove_all(dir);
  return errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const char* s = std::getenv("SMOKE");
  smoke = s && *s && std::strcmp(s, "0") != 0;
  bool want_sync = true, want_async = true;
  if (argc > 1) {
    want_sync = want_async = false;
    for (int i = 1; i < argc; ++i) {
      if (std::strcmp(argv[i], "--sync") == 0) want_sync = true;
      if (std::strcmp(argv[i], "--async") == 0) want_async = true;
    }
  }
  int rc = 0;
  if (want_sync) rc |= RunPeer(true);
  if (want_async) rc |= RunPeer(false);
  return rc;
}
