// The canonical workloads of shared/bench/WORKLOADS.md on an embedded
// keel::Node, with the step `inc` (x + 1) as a registered in-process C++
// activity:
//   chain10-throughput, chain10-latency, fanout100 (after the readiness
//     check), as peer=keel (sync durability) and peer=keel-async;
//   rest-100k (rss_bytes with 100,000 processes at rest), resume-100k
//     (seconds from opening a node with 100,000 unfinished processes until
//     all run again) and signal-100k (signals_per_sec waking 100,000 processes
//     parked on a signal), as peer=keel;
//   loop-1k, loop-10k, loop-100k (keel's own): one process looping n times
//     over a step and a `set` with goto (async durability, so the step's own
//     cost shows, not the disk's), the first and the last 1,000 iterations
//     (n/2 for loop-1k) timed apart: a per-step cost that grows with the history shows as
//     last_over_first > 1. loop-100k only when named in --only.
// Result lines on stdout; diagnostics on stderr. Usage:
//   workflow_bench [--smoke] [--only=<substring>[,...]] [--sync] [--async]
// (--sync / --async: only that durability for the chain10/fanout100 runs.)

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "keel/node.h"

extern char** environ;

namespace keel::bench {
namespace {

constexpr auto kWaitTimeout = std::chrono::minutes(10);

// inc(x) = x + 1, the durable step of every workload.
ActivityResult Inc(const ActivityContext& c) {
  const Json& x = c.input.contains("x") ? c.input["x"] : Json();
  if (!x.is_number_integer()) return ActivityResult::Fail("inc: x is not an integer", false);
  return ActivityResult::Ok(x.get<int64_t>() + 1);
}

Workflow MustBuild(Result<Workflow> wf, const char* name) {
  if (!wf.ok()) {
    std::fprintf(stderr, "workflow %s: %s\n", name, wf.status().ToString().c_str());
    std::exit(2);
  }
  return std::move(wf).value();
}

// chain10(x): v = x; repeat 10: v = inc(v); returns v.
Workflow Chain10() {
  WorkflowBuilder b("chain10");
  b.Input("x", {.required = true});
  b.Activity("s0", "inc", {{"x", "${inputs.x}"}}).SaveAs("v");
  for (int i = 1; i < 10; ++i) {
    b.Activity("s" + std::to_string(i), "inc", {{"x", "${vars.v}"}}).SaveAs("v");
  }
  b.Output("result", "vars.v");
  return MustBuild(b.Build(), "chain10");
}

// fanout100(x): 100 steps at once, step i computes inc(x + i); returns the sum.
Workflow Fanout100() {
  return MustBuild(ParseWorkflow(R"yaml(name: fanout100
inputs: {x: {required: true}}
steps:
  - id: fan
    for_each: "(function() local t = {} for i = 0, 99 do t[#t + 1] = i end return t end)()"
    steps: [{id: step, activity: inc, with: {x: "${inputs.x + item}"}}]
    save_as: outs
  - id: join
    set: {sum: "(function() local s = 0 for _, v in ipairs(vars.outs) do s = s + v end return s end)()"}
outputs: {result: "vars.sum"}
)yaml",
                                 "fanout100"),
                   "fanout100");
}

// One step, then a step that parks: the async activity `park`, which keeps
// its task running until the node stops (the processes stay unfinished).
Workflow ParkOnActivity() {
  WorkflowBuilder b("park");
  b.Input("x", {.required = true});
  b.Activity("s0", "inc", {{"x", "${inputs.x}"}}).SaveAs("v");
  b.Activity("park", "park", {{"x", "${vars.v}"}});
  return MustBuild(b.Build(), "park");
}

// One step, then wait for signal `go`; returns the step's result.
Workflow ParkOnSignal() {
  WorkflowBuilder b("signal");
  b.Input("x", {.required = true});
  b.Activity("s0", "inc", {{"x", "${inputs.x}"}}).SaveAs("v");
  b.WaitSignal("wait", "go");
  b.Output("result", "vars.v");
  return MustBuild(b.Build(), "signal");
}

std::unique_ptr<Node> OpenNode(const std::string& dir, bool sync, bool resume = true) {
  Options options;
  options.data_dir = dir;
  options.sync = sync;
  options.resume = resume;
  auto node = Node::Open(options);
  if (!node.ok()) {
    std::fprintf(stderr, "open %s: %s\n", dir.c_str(), node.status().ToString().c_str());
    std::exit(2);
  }
  // `inc` neither blocks nor waits, so it is registered as a non-blocking
  // activity: called on the process actor's thread and done at once, as the
  // peers run a step's closure inline in the workflow handler (Restate's
  // ctx.run, DBOS's step). A blocking activity would go through the node's
  // activity pool: one thread hand-off there and one back per step.
  Status registered = (*node)->RegisterAsyncActivity(
      "inc", [](const ActivityContext& c, std::function<void(ActivityResult)> done) {
        done(Inc(c));
      });
  if (!registered.ok()) {
    std::fprintf(stderr, "register inc: %s\n", registered.ToString().c_str());
    std::exit(2);
  }
  return std::move(node).value();
}

// The async activity `park`: counts its calls and never completes them.
class Parking {
 public:
  void Register(Node& node) {
    Status s = node.RegisterAsyncActivity(
        "park", [this](const ActivityContext&, std::function<void(ActivityResult)> done) {
          std::lock_guard lock(mu_);
          parked_.push_back(std::move(done));
          cv_.notify_all();
        });
    if (!s.ok()) {
      std::fprintf(stderr, "register park: %s\n", s.ToString().c_str());
      std::exit(2);
    }
  }
  // Waits until `n` tasks have parked; false on timeout.
  bool WaitFor(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWaitTimeout, [&] { return parked_.size() >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::function<void(ActivityResult)>> parked_;
};

struct Outcome {
  std::vector<double> latencies_ms;
  int errors = 0;
  double wall_s = 0;
  double cpu_ms = 0;
  std::optional<uint64_t> fsyncs;
};

// What Drive does with instance `id` once submitted; returns whether it is right.
using Check = std::function<bool(Node&, const std::string& id, int64_t x)>;

// Awaits the instance and checks its result: completed with outputs.result
// == expect(x).
Check ResultIs(std::function<int64_t(int64_t)> expect) {
  return [expect](Node& node, const std::string& id, int64_t x) {
    auto done = node.Await(id, kWaitTimeout);
    if (!done.ok()) {
      std::fprintf(stderr, "await: %s\n", done.status().ToString().c_str());
      return false;
    }
    const Json& result = done->outputs["result"];
    if (done->status != "completed" || !result.is_number_integer() ||
        result.get<int64_t>() != expect(x)) {
      std::fprintf(stderr, "wrong result for x=%ld: %s %s %s\n", x, done->status.c_str(),
                   done->outputs.dump().c_str(), done->error.dump().c_str());
      return false;
    }
    return true;
  };
}

// Runs `count` instances of `wf`, `in_flight` at a time in a closed loop (a
// new one starts when one finishes); instance i gets input base + i. The
// window (wall, CPU, fsyncs) covers exactly these instances.
Outcome Drive(Node& node, const Workflow& wf, int count, int in_flight, int64_t base,
              const Check& check, bool count_fsyncs) {
  Outcome out;
  std::atomic<int> next{0};
  std::atomic<int> errors{0};
  std::mutex mu;
  out.latencies_ms.reserve(count);
  FsyncCounter fsyncs;
  if (count_fsyncs) fsyncs.Start();
  const double cpu0 = ProcessCpuMs();
  const auto t0 = Clock::now();
  std::vector<std::thread> drivers;
  for (int d = 0; d < std::min(in_flight, count); ++d) {
    drivers.emplace_back([&] {
      for (int i = next++; i < count; i = next++) {
        const int64_t x = base + i;
        const auto start = Clock::now();
        auto id = node.Submit(wf, {{"x", x}});
        bool ok = id.ok();
        if (!ok) std::fprintf(stderr, "submit: %s\n", id.status().ToString().c_str());
        if (ok) ok = check(node, *id, x);
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
        if (!ok) errors++;
        std::lock_guard lock(mu);
        out.latencies_ms.push_back(ms);
      }
    });
  }
  for (auto& t : drivers) t.join();
  out.wall_s = SecondsSince(t0);
  out.cpu_ms = ProcessCpuMs() - cpu0;
  if (count_fsyncs) out.fsyncs = fsyncs.Stop();
  out.errors = errors.load();
  return out;
}

// chain10-throughput, chain10-latency and fanout100 on one node.
int RunPeer(const Reporter& out, const Flags& flags, bool sync) {
  const std::string peer = sync ? "keel" : "keel-async";
  const bool smoke = out.smoke();
  const std::string dir = FreshDir(peer);
  auto node = OpenNode(dir, sync);
  const Workflow chain = Chain10();
  const Workflow fan = Fanout100();
  const Check plus10 = ResultIs([](int64_t x) { return x + 10; });
  int errors = 0;

  auto emit_load = [&](const std::string& w, const Outcome& o, int n, int steps_per_wf) {
    out.Line(peer, w, "workflows_per_sec", n / o.wall_s, "wf/s");
    out.Line(peer, w, "steps_per_sec", steps_per_wf * n / o.wall_s, "steps/s");
    out.Line(peer, w, "wall_time", o.wall_s, "s");
    out.Line(peer, w, "p50_latency_under_load", Percentile(o.latencies_ms, 50), "ms");
    if (steps_per_wf == 10) {
      out.Line(peer, w, "p99_latency_under_load", Percentile(o.latencies_ms, 99), "ms");
    }
  };
  auto emit_common = [&](const std::string& w, const Outcome& o, int n, int steps_per_wf) {
    out.Line(peer, w, "cpu_total_ms_per_wf", o.cpu_ms / n, "ms");
    out.Line(peer, w, "machine_cpu_busy",
             100.0 * o.cpu_ms / 1e3 / (o.wall_s * std::thread::hardware_concurrency()), "%");
    if (o.fsyncs) {
      out.Line(peer, w, "fsyncs_per_step", static_cast<double>(*o.fsyncs) / (steps_per_wf * n),
               "fsync/step");
      out.Line(peer, w, "fsyncs_per_sec", static_cast<double>(*o.fsyncs) / o.wall_s, "fsync/s");
    }
    out.Line(peer, w, "errors", o.errors, "count");
  };

  // Readiness check: not measured, same for every peer.
  Outcome ready = Drive(*node, chain, 64, 64, 0, plus10, false);
  if (ready.errors)
    std::fprintf(stderr, "%s: readiness check: %d errors\n", peer.c_str(), ready.errors);
  errors += ready.errors;

  if (flags.Wants("chain10-throughput")) {
    const int n = smoke ? 200 : 10'000;
    Outcome o = Drive(*node, chain, n, 64, 1'000'000, plus10, true);
    emit_load("chain10-throughput", o, n, 10);
    emit_common("chain10-throughput", o, n, 10);
    errors += o.errors;
  }
  if (flags.Wants("chain10-latency")) {
    const int warm = smoke ? 5 : 50, n = smoke ? 50 : 500;
    // Warm-up: the first `warm` inputs of the range, not measured.
    Outcome w = Drive(*node, chain, warm, 1, 2'000'000, plus10, false);
    Outcome o = Drive(*node, chain, n, 1, 2'000'000 + warm, plus10, true);
    const std::string name = "chain10-latency";
    out.Line(peer, name, "p50", Percentile(o.latencies_ms, 50), "ms");
    out.Line(peer, name, "p99", Percentile(o.latencies_ms, 99), "ms");
    out.Line(peer, name, "mean", Mean(o.latencies_ms), "ms");
    out.Line(peer, name, "max", *std::max_element(o.latencies_ms.begin(), o.latencies_ms.end()),
             "ms");
    out.Line(peer, name, "wall_time", o.wall_s, "s");
    o.errors += w.errors;
    emit_common(name, o, n, 10);
    errors += o.errors;
  }
  if (flags.Wants("fanout100")) {
    const int n = smoke ? 4 : 100;
    Outcome o = Drive(*node, fan, n, 8, 3'000'000,
                      ResultIs([](int64_t x) { return 100 * x + 5050; }), true);
    emit_load("fanout100", o, n, 100);
    emit_common("fanout100", o, n, 100);
    errors += o.errors;
  }

  Status closed = node->Close();
  if (!closed.ok()) {
    std::fprintf(stderr, "%s: close: %s\n", peer.c_str(), closed.ToString().c_str());
    ++errors;
  }
  out.Line(peer, "all", "data_dir_size", static_cast<double>(DirSize(dir)), "bytes");
  std::filesystem::remove_all(dir);
  return errors;
}

// Starts `n` instances (64 at a time), each awaited with `check`. The set up
// of the 100k workloads: not measured.
int Populate(Node& node, const Workflow& wf, int n, int64_t base, const Check& check) {
  auto start = Clock::now();
  Outcome o = Drive(node, wf, n, 64, base, check, false);
  std::fprintf(stderr, "%s: %d processes in %.1f s (%d errors)\n", wf.name.c_str(), n,
               SecondsSince(start), o.errors);
  return o.errors;
}

// Probes whether this build can park a process on wait_signal and wake it
// with Node::Signal; says on stderr what is missing.
struct SignalSupport {
  bool wait_signal = false;
  bool signal = false;
};
SignalSupport ProbeSignals(const Workflow& wf) {
  SignalSupport support;
  const std::string dir = FreshDir("probe");
  {
    auto node = OpenNode(dir, false);
    auto started = node->Start(wf, {{"x", 1}});
    if (started.ok()) {
      const std::string id = (*started)["id"];
      auto rest = node->Wait(id, std::chrono::seconds(30));
      support.wait_signal = rest.ok() && (*rest)["status"] == "waiting";
      if (!support.wait_signal) {
        std::fprintf(
            stderr, "wait_signal does not park here (status %s)\n",
            rest.ok() ? (*rest)["status"].dump().c_str() : rest.status().ToString().c_str());
      } else {
        auto signalled = node->Signal(id, "go", Json::object());
        // Wait returns at rest, and the signalled process rests (waiting)
        // until it takes the signal: poll until it moves on.
        Result<Json> done = Status::TimedOut("not signalled");
        for (int i = 0; signalled.ok() && i < 3000; ++i) {
          done = node->Wait(id, std::chrono::seconds(30));
          if (!done.ok() || (*done)["status"] != "waiting") break;
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        support.signal = signalled.ok() && done.ok() && (*done)["status"] == "completed";
        if (!support.signal) {
          std::fprintf(
              stderr, "Node::Signal does not wake a parked process here: %s\n",
              signalled.ok() ? done->dump().c_str() : signalled.status().ToString().c_str());
        }
      }
    }
    Status closed = node->Close();
    if (!closed.ok()) std::fprintf(stderr, "probe close: %s\n", closed.ToString().c_str());
  }
  std::filesystem::remove_all(dir);
  return support;
}

int HundredK(bool smoke) { return smoke ? 1'000 : 100'000; }

// Runs this program again with `args` (empty ones dropped), sharing stdout
// and stderr; returns the child's pid.
pid_t SpawnSelf(std::vector<std::string> args, bool smoke) {
  // /proc/self/exe, not its target: still runs when the file was rebuilt.
  std::string self = "/proc/self/exe";
  std::vector<std::string> argv = {self};
  if (smoke) argv.push_back("--smoke");
  for (auto& a : args) {
    if (!a.empty()) argv.push_back(std::move(a));
  }
  std::vector<char*> raw;
  for (auto& a : argv) raw.push_back(a.data());
  raw.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, raw[0], nullptr, nullptr, raw.data(), environ) != 0) {
    std::fprintf(stderr, "cannot run %s\n", self.c_str());
    std::exit(2);
  }
  return pid;
}

// Child of resume-100k: starts the parked set in `dir` (async durability:
// set up, not measured), optionally reports its memory (rest-100k-running),
// then marks the dir ready and waits to be killed.
int ParkChild(const Reporter& out, const std::string& dir, bool report_rest) {
  const int n = HundredK(out.smoke());
  auto node = OpenNode(dir, false);
  Parking parking;
  parking.Register(*node);
  const uint64_t rss0 = RssBytes();
  // The check does not wait: a parked process never rests.
  int errors = Populate(*node, ParkOnActivity(), n, 5'000'000,
                        [](Node&, const std::string&, int64_t) { return true; });
  if (errors || !parking.WaitFor(n)) {
    std::fprintf(stderr, "park: not every process reached its parking step\n");
    std::_Exit(1);  // Close would wait for the parked tasks
  }
  if (report_rest) {
    // Not the canonical rest-100k (processes parked on wait_signal): here
    // every process keeps a live actor and a running task.
    const uint64_t rss = RssBytes();
    out.Line("keel", "rest-100k-running", "rss_bytes", static_cast<double>(rss), "bytes");
    out.Line("keel", "rest-100k-running", "rss_bytes_per_process",
             static_cast<double>(rss - rss0) / n, "bytes");
  }
  std::ofstream(dir + "/ready") << "ready\n";
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

// Child of resume-100k: opens `dir` (sync durability) and times until every
// parked task runs again. Exits without Close, which would wait for the
// tasks that never end.
int ResumeChild(const Reporter& out, const std::string& dir) {
  const int n = HundredK(out.smoke());
  const auto t0 = Clock::now();
  auto node = OpenNode(dir, true, /*resume=*/false);
  const double opened = SecondsSince(t0);
  Parking parking;
  parking.Register(*node);
  Status resumed = node->Resume();
  if (!resumed.ok()) std::fprintf(stderr, "resume: %s\n", resumed.ToString().c_str());
  const double loaded = SecondsSince(t0);
  const bool all = resumed.ok() && parking.WaitFor(n);
  const double seconds = SecondsSince(t0);
  std::fprintf(stderr, "resume: store open %.2f s, loaded and spawned %.2f s, all running %.2f s\n",
               opened, loaded, seconds);
  const std::string w = "resume-100k";
  out.Line("keel", w, "seconds", seconds, "s");
  out.Line("keel", w, "processes_per_sec", n / seconds, "processes/s");
  out.Line("keel", w, "rss_bytes", static_cast<double>(RssBytes()), "bytes");
  out.Line("keel", w, "errors", all ? 0 : 1, "count");
  std::fflush(stdout);
  std::_Exit(all ? 0 : 1);
}

// resume-100k on processes parked in the async activity `park` (unfinished:
// their task is running), and, when wait_signal works, rest-100k and
// signal-100k on processes parked on a signal. The sets are written with
// async durability (set up, not measured); the measured resume and signals
// run on a node opened with sync durability.
int RunHundredK(const Reporter& out, const Flags& flags) {
  const std::string peer = "keel";
  const int n = HundredK(out.smoke());
  int errors = 0;
  const Workflow on_signal = ParkOnSignal();
  const SignalSupport support = ProbeSignals(on_signal);

  if (flags.Wants("rest-100k") || flags.Wants("resume-100k")) {
    // Two child processes: one writes the parked set and is killed (a crash:
    // the only way to leave running tasks behind, since Node::Close waits
    // for every task), one opens the dir and resumes it.
    const std::string dir = FreshDir("park");
    const bool rest = !support.wait_signal && flags.Wants("rest-100k");
    pid_t writer = SpawnSelf({"--child=park", "--dir=" + dir, rest ? "--rest" : ""}, out.smoke());
    const std::string ready = dir + "/ready";
    int status = 0;
    while (!std::filesystem::exists(ready) && waitpid(writer, &status, WNOHANG) == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (std::filesystem::exists(ready)) {
      kill(writer, SIGKILL);
      waitpid(writer, &status, 0);
      std::filesystem::remove(ready);
      if (flags.Wants("resume-100k")) {
        pid_t resumer = SpawnSelf({"--child=resume", "--dir=" + dir}, out.smoke());
        waitpid(resumer, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++errors;
      }
    } else {
      std::fprintf(stderr, "park: the writer child failed\n");
      ++errors;
    }
    std::filesystem::remove_all(dir);
  }

  if (support.wait_signal && (flags.Wants("rest-100k") || flags.Wants("signal-100k"))) {
    const std::string dir = FreshDir("signal");
    std::vector<std::string> ids(n);
    {
      auto node = OpenNode(dir, false);
      const uint64_t rss0 = RssBytes();
      errors +=
          Populate(*node, on_signal, n, 6'000'000, [&](Node& nd, const std::string& id, int64_t x) {
            ids[x - 6'000'000] = id;
            auto rest = nd.Await(id, kWaitTimeout);
            return rest.ok() && rest->status == "waiting";
          });
      if (flags.Wants("rest-100k")) {
        out.Line(peer, "rest-100k", "rss_bytes", static_cast<double>(RssBytes()), "bytes");
        out.Line(peer, "rest-100k", "rss_bytes_per_process",
                 static_cast<double>(RssBytes() - rss0) / n, "bytes");
      }
      if (!node->Close().ok()) ++errors;
    }
    if (support.signal && flags.Wants("signal-100k")) {
      auto node = OpenNode(dir, true);
      // Every process reports its end; the window closes when all have.
      std::mutex mu;
      std::condition_variable cv;
      int ended = 0, failed = 0;
      std::vector<std::function<void()>> unsubscribe;
      for (const auto& id : ids) {
        auto sub = node->Subscribe(id, [&](const Json& snapshot) {
          const std::string status = snapshot.value("status", "");
          if (status != "completed" && status != "failed" && status != "cancelled") return;
          std::lock_guard lock(mu);
          ++ended;
          if (status != "completed") ++failed;
          cv.notify_all();
        });
        if (sub.ok()) {
          unsubscribe.push_back(std::move(sub).value());
        } else {
          std::lock_guard lock(mu);
          ++ended;
          ++failed;
        }
      }
      std::atomic<size_t> next{0};
      const auto t0 = Clock::now();
      std::vector<std::thread> senders;
      for (int t = 0; t < 64; ++t) {
        senders.emplace_back([&] {
          for (size_t i = next++; i < ids.size(); i = next++) {
            auto sent = node->Signal(ids[i], "go", Json::object());
            if (sent.ok()) continue;
            std::lock_guard lock(mu);
            if (failed++ == 0)
              std::fprintf(stderr, "signal: %s\n", sent.status().ToString().c_str());
            ++ended;
            cv.notify_all();
          }
        });
      }
      for (auto& t : senders) t.join();
      bool all;
      {
        std::unique_lock lock(mu);
        all = cv.wait_for(lock, kWaitTimeout, [&] { return ended >= n; });
        if (!all) failed += n - ended;
      }
      const double seconds = SecondsSince(t0);
      out.Line(peer, "signal-100k", "signals_per_sec", n / seconds, "signals/s");
      out.Line(peer, "signal-100k", "wall_time", seconds, "s");
      out.Line(peer, "signal-100k", "errors", failed, "count");
      errors += failed;
      for (auto& cancel : unsubscribe) cancel();
      if (!node->Close().ok()) ++errors;
    }
    std::filesystem::remove_all(dir);
  }
  if (!support.signal && flags.Wants("signal-100k")) {
    std::fprintf(stderr, "signal-100k skipped: needs wait_signal and Node::Signal\n");
  }
  return errors;
}

// loop(n): `work` (the activity mark, which notes when each iteration ran)
// then `count` (i = i + 1; goto work while i < n).
int RunLoop(const Reporter& out, const std::string& name, int n) {
  const std::string peer = "keel-async";
  auto wf = MustBuild(ParseWorkflow(R"yaml(name: loop
inputs: {n: {required: true}}
vars: {i: 0}
steps:
  - {id: work, activity: mark, with: {i: "${vars.i}"}}
  - id: count
    set: {i: "vars.i + 1"}
    goto: {step: work, when: "vars.i < inputs.n"}
)yaml",
                                            "loop"),
                      "loop");
  std::string dir = FreshDir(name);
  auto node = OpenNode(dir, /*sync=*/false);
  std::vector<Clock::time_point> marks;
  marks.reserve(n);
  std::mutex mu;
  Status registered = node->RegisterAsyncActivity(
      "mark", [&](const ActivityContext&, std::function<void(ActivityResult)> done) {
        {
          std::lock_guard lock(mu);
          marks.push_back(Clock::now());
        }
        done(ActivityResult::Ok(Json()));
      });
  int errors = registered.ok() ? 0 : 1;
  const auto t0 = Clock::now();
  auto started = node->Submit(wf, {{"n", n}});
  Result<ProcessOutcome> outcome = started.status();
  if (started.ok()) outcome = node->Await(*started, kWaitTimeout);
  const double seconds = SecondsSince(t0);
  if (!outcome.ok() || outcome->status != "completed") {
    std::fprintf(stderr, "%s: %s\n", name.c_str(),
                 outcome.ok() ? outcome->status.c_str() : outcome.status().ToString().c_str());
    ++errors;
  }
  std::lock_guard lock(mu);
  if (marks.size() != static_cast<size_t>(n)) ++errors;
  const int k = std::min(n / 2, 1'000);
  if (marks.size() >= static_cast<size_t>(2 * k) && k > 1) {
    auto ms = [](Clock::time_point a, Clock::time_point b) {
      return std::chrono::duration<double, std::milli>(b - a).count();
    };
    const double first = ms(marks[0], marks[k - 1]);
    const double last = ms(marks[marks.size() - k], marks.back());
    out.Line(peer, name, "iterations_per_sec", n / seconds, "iterations/s");
    out.Line(peer, name, "first_iterations_ms", first, "ms");
    out.Line(peer, name, "last_iterations_ms", last, "ms");
    out.Line(peer, name, "last_over_first", last / first, "ratio");
  }
  out.Line(peer, name, "rss", static_cast<double>(RssBytes()), "bytes");
  if (started.ok()) {
    auto snapshot = node->Get(*started);
    if (snapshot.ok()) out.Line(peer, name, "snapshot_json", snapshot->dump().size(), "bytes");
  }
  if (!node->Close().ok()) ++errors;
  out.Line(peer, name, "data_dir_size", static_cast<double>(DirSize(dir)), "bytes");
  out.Line(peer, name, "errors", errors, "count");
  node.reset();
  std::filesystem::remove_all(dir);
  return errors;
}

}  // namespace
}  // namespace keel::bench

int main(int argc, char** argv) {
  using namespace keel::bench;
  Flags flags = ParseFlags(argc, argv);
  bool want_sync = false, want_async = false, rest = false;
  std::string child, dir;
  for (const auto& arg : flags.rest) {
    if (arg == "--sync") {
      want_sync = true;
    } else if (arg == "--async") {
      want_async = true;
    } else if (arg.rfind("--child=", 0) == 0) {  // internal: resume-100k's children
      child = arg.substr(8);
    } else if (arg.rfind("--dir=", 0) == 0) {
      dir = arg.substr(6);
    } else if (arg == "--rest") {
      rest = true;
    } else {
      std::fprintf(
          stderr,
          "usage: workflow_bench [--smoke] [--only=<substring>[,...]] [--sync] [--async]\n");
      return 2;
    }
  }
  if (!want_sync && !want_async) want_sync = want_async = true;
  Reporter out(flags.smoke);
  if (child == "park") return ParkChild(out, dir, rest);
  if (child == "resume") return ResumeChild(out, dir);
  int errors = 0;
  const bool peer_workloads = flags.Wants("chain10-throughput") || flags.Wants("chain10-latency") ||
                              flags.Wants("fanout100");
  if (peer_workloads && want_sync) errors += RunPeer(out, flags, true);
  if (peer_workloads && want_async) errors += RunPeer(out, flags, false);
  if (flags.Wants("rest-100k") || flags.Wants("resume-100k") || flags.Wants("signal-100k")) {
    errors += RunHundredK(out, flags);
  }
  for (int n : {1'000, 10'000, 100'000}) {
    const std::string name = "loop-" + std::to_string(n / 1000) + "k";
    const bool named = std::find(flags.only.begin(), flags.only.end(), name) != flags.only.end();
    if (!flags.Wants(name) || (n == 100'000 && !named) || (flags.smoke && n > 1'000)) continue;
    errors += RunLoop(out, name, n);
  }
  return errors == 0 ? 0 : 1;
}
