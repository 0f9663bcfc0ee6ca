// peer=keel-http: the canonical workloads of shared/bench/WORKLOADS.md through
// `keel serve`, as the peers are measured through their HTTP ingress. A client
// on loopback submits each instance and awaits its result in one call (POST
// /v1/processes?wait=S, like a call of a Restate workflow through its ingress).
//
// `keel serve` has no C++ activity `inc`, so the durable step is the built-in
// activity `echo` given x + 1 (computed by the step's `with`): an activity task
// run on the node's pool, whose result is durable before the next step starts,
// like the peers' steps. (A `set` step would not do: it has no outside effect,
// so the process actor plans a chain of them into one append.)
// The server runs with sync durability (the canonical class).

#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"

namespace keel::bench {
namespace {

using Json = nlohmann::json;
constexpr char kPeer[] = "keel-http";

const char kChain10[] = R"yaml(name: chain10
inputs: {x: {required: true}}
steps:
  - {id: s1, activity: echo, with: {text: "${inputs.x + 1}"}, save_as: v}
  - {id: s2, activity: echo, with: {text: "${vars.v + 1}"}, save_as: v}
  - {id: s3, activity: echo, with: {text: "${vars.v + 1}"}, save_as: v}
  - {id: s4, activity: echo, with: {text: "${vars.v + 1}"}, save_as: v}
  - {id: s5, activity: echo, with: {text: "${vars.v + 1}"}, save_as: v}
  - {id: s6, activity: echo, with: {text: "${vars.v + 1}"}, save_as: v}
  - {id: s7, activity: echo, with: {text: "${vars.v + 1}"}, save_as: v}
  - {id: s8, activity: echo, with: {text: "${vars.v + 1}"}, save_as: v}
  - {id: s9, activity: echo, with: {text: "${vars.v + 1}"}, save_as: v}
  - {id: s10, activity: echo, with: {text: "${vars.v + 1}"}, save_as: v}
outputs: {result: "vars.v"}
)yaml";

const char kFanout100[] = R"yaml(name: fanout100
inputs: {x: {required: true}}
steps:
  - id: fan
    for_each: "(function() local t = {} for i = 0, 99 do t[#t + 1] = i end return t end)()"
    steps: [{id: inc, activity: echo, with: {text: "${inputs.x + item + 1}"}}]
    save_as: outs
outputs:
  result: "(function() local s = 0 for _, o in ipairs(vars.outs) do s = s + o end return s end)()"
)yaml";

// A `keel serve` child on a fresh data dir.
class Server {
 public:
  bool Start(const std::string& keel, const std::string& dir) {
    dir_ = dir;
    pid_ = fork();
    if (pid_ == 0) {
      std::freopen((dir + "/serve.log").c_str(), "w", stderr);
      std::freopen("/dev/null", "w", stdout);
      execl(keel.c_str(), keel.c_str(), "serve", "--listen", "127.0.0.1:0", "--data",
            (dir + "/data").c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 600; ++i) {  // up to a minute for node.json
      std::ifstream in(dir + "/data/node.json");
      std::stringstream text;
      text << in.rdbuf();
      Json info = Json::parse(text.str(), nullptr, false);
      if (!info.is_discarded() && info.contains("address")) {
        std::string address = info["address"];
        auto colon = address.rfind(':');
        host_ = address.substr(0, colon);
        port_ = std::stoi(address.substr(colon + 1));
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  ~Server() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  const std::string& host() const { return host_; }
  int port() const { return port_; }

 private:
  std::string dir_, host_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// Submits one instance and awaits its end in the same call (POST
// /v1/processes?wait=S answers once the process rests, as the peers' ingress
// answers a workflow's call with its result); the result output, or nullopt
// on any error.
std::optional<int64_t> RunOne(httplib::Client& http, const std::string& workflow, int64_t x) {
  // The idempotency key makes a retried submission start nothing twice: a
  // burst of connects can be reset (Debian's httplib listens with a backlog
  // of 5), and a robust client retries them.
  Json body = {{"workflow", workflow},
               {"inputs", {{"x", x}}},
               {"idempotency_key", "bench-" + std::to_string(x)}};
  const char* path = "/v1/processes?wait=120";
  auto done = http.Post(path, body.dump(), "application/json");
  for (int attempt = 1; !done && attempt < 5; ++attempt) {
    std::fprintf(stderr, "http_bench: retrying POST: %s\n",
                 httplib::to_string(done.error()).c_str());
    done = http.Post(path, body.dump(), "application/json");
  }
  if (!done || (done->status != 201 && done->status != 200)) {
    std::fprintf(stderr, "http_bench: POST %s: %s\n", path,
                 done ? (std::to_string(done->status) + " " + done->body).c_str()
                      : httplib::to_string(done.error()).c_str());
    return std::nullopt;
  }
  Json snapshot = Json::parse(done->body, nullptr, false);
  if (snapshot.is_discarded() || snapshot.value("status", "") != "completed") {
    std::fprintf(stderr, "http_bench: x=%ld ended with %s\n", x, done->body.substr(0, 300).c_str());
    return std::nullopt;
  }
  const Json& result = snapshot["outputs"]["result"];
  if (!result.is_number_integer()) return std::nullopt;
  return result.get<int64_t>();
}

struct Outcome {
  std::vector<double> latencies_ms;
  int errors = 0;
  double seconds = 0;
  double cpu_ms = 0;
};

// `count` instances, `in_flight` at a time (closed loop), inputs base + i.
Outcome RunClosedLoop(const Server& server, const std::string& workflow, int count, int in_flight,
                      int64_t base, int64_t (*expected)(int64_t)) {
  Outcome out;
  std::mutex mu;
  std::atomic<int> next{0};
  auto start = Clock::now();
  double cpu0 = ProcessCpuMs();
  std::vector<std::thread> threads;
  for (int t = 0; t < in_flight; ++t) {
    threads.emplace_back([&] {
      // One keep-alive connection per driver thread, like the peers' HTTP
      // agents: Debian's httplib listens with a backlog of 5, so a burst of
      // fresh connections would be reset.
      httplib::Client http(server.host(), server.port());
      http.set_keep_alive(true);
      http.set_tcp_nodelay(true);
      http.set_read_timeout(std::chrono::seconds(120));
      for (int i; (i = next++) < count;) {
        int64_t x = base + i;
        auto t0 = Clock::now();
        auto result = RunOne(http, workflow, x);
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        std::lock_guard lock(mu);
        out.latencies_ms.push_back(ms);
        if (!result || *result != expected(x)) ++out.errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  out.seconds = SecondsSince(start);
  out.cpu_ms = ProcessCpuMs() - cpu0;
  return out;
}

int64_t Chain10Result(int64_t x) { return x + 10; }
int64_t Fanout100Result(int64_t x) { return 100 * x + 5050; }

}  // namespace
}  // namespace keel::bench

int main(int argc, char** argv) {
  using namespace keel::bench;
  Flags flags = ParseFlags(argc, argv);
  std::string keel = (std::filesystem::path(argv[0]).parent_path() / "keel").string();
  for (const auto& f : flags.rest) {
    if (f.rfind("--keel=", 0) == 0) {
      keel = f.substr(7);
    } else {
      std::fprintf(stderr, "usage: http_bench [--smoke] [--only=<substring>] [--keel=PATH]\n");
      return 2;
    }
  }
  Reporter out(flags.smoke);
  std::string dir = FreshDir("http-bench");
  Server server;
  if (!server.Start(keel, dir)) {
    std::fprintf(stderr, "http_bench: keel serve did not start (see %s/serve.log)\n", dir.c_str());
    return 1;
  }
  const bool smoke = flags.smoke;
  int errors = 0;
  // Readiness check, not measured: 64 chain10 at 64 in flight.
  errors +=
      RunClosedLoop(server, kChain10, smoke ? 8 : 64, smoke ? 8 : 64, 0, Chain10Result).errors;

  if (flags.Wants("chain10-throughput")) {
    int n = smoke ? 64 : 10000;
    Outcome o = RunClosedLoop(server, kChain10, n, 64, 1'000'000, Chain10Result);
    const std::string w = "chain10-throughput";
    out.Line(kPeer, w, "workflows_per_sec", n / o.seconds, "wf/s");
    out.Line(kPeer, w, "steps_per_sec", 10 * n / o.seconds, "steps/s");
    out.Line(kPeer, w, "wall_time", o.seconds, "s");
    out.Line(kPeer, w, "p50_latency_under_load", Percentile(o.latencies_ms, 50), "ms");
    out.Line(kPeer, w, "p99_latency_under_load", Percentile(o.latencies_ms, 99), "ms");
    out.Line(kPeer, w, "cpu_driver_ms_per_wf", o.cpu_ms / n, "ms");
    out.Line(kPeer, w, "errors", o.errors, "count");
    errors += o.errors;
  }
  if (flags.Wants("chain10-latency")) {
    int warm = smoke ? 5 : 50, n = smoke ? 20 : 500;
    errors += RunClosedLoop(server, kChain10, warm, 1, 1'900'000, Chain10Result).errors;
    Outcome o = RunClosedLoop(server, kChain10, n, 1, 2'000'000, Chain10Result);
    const std::string w = "chain10-latency";
    out.Line(kPeer, w, "p50", Percentile(o.latencies_ms, 50), "ms");
    out.Line(kPeer, w, "p99", Percentile(o.latencies_ms, 99), "ms");
    out.Line(kPeer, w, "mean", Mean(o.latencies_ms), "ms");
    out.Line(kPeer, w, "max", Percentile(o.latencies_ms, 100), "ms");
    out.Line(kPeer, w, "errors", o.errors, "count");
    errors += o.errors;
  }
  if (flags.Wants("fanout100")) {
    int n = smoke ? 4 : 100;
    Outcome o = RunClosedLoop(server, kFanout100, n, 8, 3'000'000, Fanout100Result);
    const std::string w = "fanout100";
    out.Line(kPeer, w, "workflows_per_sec", n / o.seconds, "wf/s");
    out.Line(kPeer, w, "steps_per_sec", 100 * n / o.seconds, "steps/s");
    out.Line(kPeer, w, "wall_time", o.seconds, "s");
    out.Line(kPeer, w, "p50_latency_under_load", Percentile(o.latencies_ms, 50), "ms");
    out.Line(kPeer, w, "errors", o.errors, "count");
    errors += o.errors;
  }
  // Bytes on disk at the end of the run, as the peers report it.
  out.Line(kPeer, "fanout100", "data_dir_size", static_cast<double>(DirSize(dir + "/data")),
           "bytes");
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return errors == 0 ? 0 : 1;
}
