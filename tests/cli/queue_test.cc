// Queues through the real binary (docs/queues.md): `keel serve --queue`,
// `keel run --queue --priority --queue-key`, `keel queue ls|show`, the HTTP
// API and metrics; concurrency, per-key limits and rates; the dir's
// queues.conf for the nodes the CLI opens; and SIGKILL while a queue is
// full: after restarts every process is admitted exactly once, the queue
// never ran more than its concurrency, every process completes and verify is
// clean. Every wait is for a condition, with a generous limit; nothing
// asserts on timing.

#include <httplib.h>
#include <signal.h>

#include <map>
#include <set>

#include "tests/cli/cli_fixture.h"

namespace keel::testing {
namespace {

// Waits for signal `go` (so a test decides when it ends), then echoes.
inline const char kHeldYaml[] = R"(name: held
inputs: {customer: {default: nobody}}
steps:
  - {id: hold, wait_signal: go}
  - {id: done, activity: echo, with: {customer: "${inputs.customer}"}}
)";

inline const char kQuickYaml[] = R"(name: quick
steps:
  - {id: only, activity: echo, with: {n: 1}}
)";

class QueueCliTest : public KeelCliTest {
 protected:
  std::string held() { return Workflow("held.yaml", kHeldYaml); }
  std::string quick() { return Workflow("quick.yaml", kQuickYaml); }

  std::unique_ptr<Child> Serve(const std::string& name, std::vector<std::string> extra) {
    std::vector<std::string> args = {"serve", "--listen", "127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto child = Spawn(name, args);
    EXPECT_FALSE(AwaitNodeAddress(child.get()).empty()) << Err(name);
    return child;
  }
  void Stop(std::unique_ptr<Child>& serve, int sig) {
    serve->Signal(sig);
    serve->Wait();
    serve.reset();
  }

  // `keel run FILE --detach --json extra...`: the new process's snapshot.
  Json Start(const std::string& file, std::vector<std::string> extra) {
    std::vector<std::string> args = {"run", file, "--detach", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = Keel(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Parse(r.out);
  }
  Json Show(const std::string& id) {
    auto r = Keel({"show", id, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Parse(r.out);
  }
  std::string Status(const std::string& id) { return Show(id).value("status", ""); }
  // The queue's place in `waiting_on`, or 0 when it waits in none.
  int Position(const Json& snapshot) {
    for (const auto& w : snapshot["waiting_on"]) {
      if (w["kind"] == "queue") return w.value("position", -1);
    }
    return 0;
  }
  Json Queue(const std::string& name) {
    auto r = Keel({"queue", "show", name, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Parse(r.out);
  }
  void Signal(const std::string& id) {
    auto r = Keel({"signal", id, "go"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  bool WaitStatus(const std::string& id, const std::string& status) {
    return WaitUntil([&] { return Status(id) == status; });
  }
  std::vector<Json> Log() {
    auto r = Keel({"tail", "--from", "0", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Lines(r.out);
  }
  void ExpectVerified() {
    auto v = Keel({"verify", "--json"});
    EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
    EXPECT_EQ(Parse(v.out)["ok"], true) << v.out;
  }
  // Over the whole log: each of `ids` was admitted exactly once, before it
  // started, and at no point did more than `limit` admitted processes run.
  void ExpectAdmittedOnceWithin(const std::vector<std::string>& ids, size_t limit) {
    std::map<std::string, int> admitted, started_before;
    std::set<std::string> running;
    size_t most = 0;
    for (const auto& e : Log()) {
      std::string stream = e["stream"], type = e["type"];
      if (type == "ProcessAdmitted") {
        admitted[stream]++;
        running.insert(stream);
        most = std::max(most, running.size());
      } else if (type == "ProcessStarted" && admitted[stream] == 0) {
        started_before[stream]++;
      } else if (type == "ProcessCompleted" || type == "ProcessFailed" ||
                 type == "ProcessCancelled") {
        running.erase(stream);
      }
    }
    for (const auto& id : ids) {
      EXPECT_EQ(admitted[id], 1) << id;
      EXPECT_EQ(started_before[id], 0) << id << " started before its admission";
    }
    EXPECT_LE(most, limit);
  }
};

TEST_F(QueueCliTest, ConcurrencyOneKeepsOthersPendingInPriorityThenArrivalOrder) {
  auto serve = Serve("serve", {"--queue", "q:concurrency=1"});
  Json first = Start(held(), {"--queue", "q"});
  std::string a = first["id"];
  ASSERT_TRUE(WaitStatus(a, "waiting"));  // admitted; it holds the only slot
  std::string b = Start(held(), {"--queue", "q", "--priority", "5"})["id"];
  std::string c = Start(held(), {"--queue", "q", "--priority", "5"})["id"];
  Json urgent = Start(held(), {"--queue", "q", "--priority", "1"});
  std::string d = urgent["id"];
  // The snapshot of the start already says where it waits.
  EXPECT_EQ(urgent["status"], "pending");
  EXPECT_EQ(urgent["queue"]["name"], "q");
  EXPECT_EQ(urgent["queue"]["priority"], 1);
  EXPECT_TRUE(urgent["queue"]["admitted_at"].is_null());
  EXPECT_EQ(Position(urgent), 1);
  EXPECT_EQ(Position(Show(d)), 1);
  EXPECT_EQ(Position(Show(b)), 2);
  EXPECT_EQ(Position(Show(c)), 3);
  EXPECT_EQ(Show(a)["queue"]["admitted_at"].is_string(), true);
  Json q = Queue("q");
  EXPECT_EQ(q["depth"], 3);
  EXPECT_EQ(q["running"], 1);
  EXPECT_EQ(q["concurrency"], 1);
  ASSERT_EQ(q["waiting"].size(), 3u);
  EXPECT_EQ(q["waiting"][0]["id"], d);
  auto human = Keel({"queue", "ls"});
  EXPECT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("q"), std::string::npos) << human.out;

  // One ends: the next by priority, then by arrival, takes its slot.
  for (const auto& [ending, next] : std::vector<std::pair<std::string, std::string>>{
           {a, d}, {d, b}, {b, c}}) {
    Signal(ending);
    ASSERT_TRUE(WaitStatus(ending, "completed"));
    ASSERT_TRUE(WaitStatus(next, "waiting")) << next;
  }
  EXPECT_EQ(Status(c), "waiting");
  Signal(c);
  ASSERT_TRUE(WaitStatus(c, "completed"));
  EXPECT_EQ(Queue("q")["running"], 0);
  Stop(serve, SIGTERM);
  ExpectAdmittedOnceWithin({a, b, c, d}, 1);
  ExpectVerified();
}

TEST_F(QueueCliTest, PerKeyRunsOneProcessPerCustomer) {
  auto serve = Serve("serve", {"--queue", "pk:per_key=1,key=inputs.customer"});
  std::string alice1 = Start(held(), {"--queue", "pk", "--input", "customer=alice"})["id"];
  std::string alice2 = Start(held(), {"--queue", "pk", "--input", "customer=alice"})["id"];
  std::string bob = Start(held(), {"--queue", "pk", "--input", "customer=bob"})["id"];
  // A start may name its key: this one counts as bob's.
  std::string as_bob =
      Start(held(), {"--queue", "pk", "--input", "customer=carol", "--queue-key", "bob"})["id"];
  ASSERT_TRUE(WaitStatus(alice1, "waiting"));
  ASSERT_TRUE(WaitStatus(bob, "waiting"));
  EXPECT_EQ(Status(alice2), "pending");
  EXPECT_EQ(Status(as_bob), "pending");
  EXPECT_EQ(Show(as_bob)["queue"]["key"], "bob");
  EXPECT_EQ(Show(alice2)["queue"]["key"], "alice");
  Signal(alice1);
  ASSERT_TRUE(WaitStatus(alice2, "waiting"));
  EXPECT_EQ(Status(as_bob), "pending");  // bob's slot is still taken
  Signal(bob);
  ASSERT_TRUE(WaitStatus(as_bob, "waiting"));
  Signal(alice2);
  Signal(as_bob);
  ASSERT_TRUE(WaitStatus(alice2, "completed"));
  ASSERT_TRUE(WaitStatus(as_bob, "completed"));
  Stop(serve, SIGTERM);
  ExpectVerified();
}

TEST_F(QueueCliTest, RateAdmitsOnlyItsCountPerPeriodAndARestartRemembers) {
  auto serve = Serve("serve", {"--queue", "r:rate=2/1h"});
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(Start(quick(), {"--queue", "r"})["id"]);
  ASSERT_TRUE(WaitUntil([&] {
    Json q = Queue("r");
    return q["rate"]["used"] == 2 && q["running"] == 0;
  }));
  int completed = 0, pending = 0;
  for (const auto& id : ids) {
    std::string s = Status(id);
    completed += s == "completed";
    pending += s == "pending";
  }
  EXPECT_EQ(completed, 2);
  EXPECT_EQ(pending, 2);
  // The rate window is rebuilt from the log's admissions: a new node
  // admits no more within the hour.
  Stop(serve, SIGTERM);
  serve = Serve("serve2", {"--queue", "r:rate=2/1h"});
  Json q = Queue("r");
  EXPECT_EQ(q["rate"]["used"], 2);
  EXPECT_EQ(q["depth"], 2);
  EXPECT_EQ(q["running"], 0);
  // Metrics name each queue.
  std::string address = AwaitNodeAddress();
  auto colon = address.rfind(':');
  httplib::Client http(address.substr(0, colon), std::stoi(address.substr(colon + 1)));
  auto metrics = http.Get("/v1/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("keel_queue_depth{queue=\"r\"} 2"), std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("keel_queue_rate_used{queue=\"r\"} 2"), std::string::npos);
  Stop(serve, SIGTERM);
  ExpectVerified();
}

TEST_F(QueueCliTest, HttpApiStartsInAQueueAndShowsIt) {
  auto serve = Serve("serve", {"--queue", "api:concurrency=1"});
  std::string address = AwaitNodeAddress();
  auto colon = address.rfind(':');
  httplib::Client http(address.substr(0, colon), std::stoi(address.substr(colon + 1)));
  Json body = {{"workflow", kHeldYaml}, {"queue", "api"}, {"priority", 3}};
  auto first = http.Post("/v1/processes", body.dump(), "application/json");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 201) << first->body;
  std::string a = Parse(first->body)["id"];
  ASSERT_TRUE(WaitStatus(a, "waiting"));
  auto second = http.Post("/v1/processes", body.dump(), "application/json");
  ASSERT_TRUE(second);
  ASSERT_EQ(second->status, 201) << second->body;
  Json snapshot = Parse(second->body);
  EXPECT_EQ(snapshot["status"], "pending");
  EXPECT_EQ(Position(snapshot), 1);
  auto listed = http.Get("/v1/queues");
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->status, 200);
  Json queues = Parse(listed->body)["queues"];
  ASSERT_EQ(queues.size(), 1u);
  EXPECT_EQ(queues[0]["name"], "api");
  EXPECT_EQ(queues[0]["depth"], 1);
  auto one = http.Get("/v1/queues/api");
  ASSERT_TRUE(one);
  EXPECT_EQ(Parse(one->body)["running"], 1);
  auto missing = http.Get("/v1/queues/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  // A queue the node does not have, a priority that is no integer: 400.
  for (Json bad : {Json{{"workflow", kQuickYaml}, {"queue", "nope"}},
                   Json{{"workflow", kQuickYaml}, {"queue", "api"}, {"priority", "high"}},
                   Json{{"workflow", kQuickYaml}, {"priority", 2}}}) {
    auto refused = http.Post("/v1/processes", bad.dump(), "application/json");
    ASSERT_TRUE(refused);
    EXPECT_GE(refused->status, 400) << bad.dump();
    EXPECT_LT(refused->status, 500) << refused->body;
  }
  Stop(serve, SIGKILL);
}

TEST_F(QueueCliTest, UnknownQueueIsRefusedAndTheDirConfigServesEmbeddedNodes) {
  auto refused = Keel({"run", quick(), "--queue", "nope"});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("no queue named 'nope'"), std::string::npos) << refused.err;
  // The dir's queues.conf configures every node the CLI opens on it.
  ASSERT_EQ(Keel({"ls"}).exit_code, 0);
  WriteFile(data() + "/queues.conf", "# queues of this dir\nlocal: concurrency=1\n");
  Json done = RunJson({quick(), "--queue", "local"});
  EXPECT_EQ(done["status"], "completed");
  EXPECT_EQ(done["queue"]["name"], "local");
  EXPECT_TRUE(done["queue"]["admitted_at"].is_string());
  auto listed = Keel({"queue", "ls", "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  ASSERT_EQ(Parse(listed.out)["queues"].size(), 1u);
  EXPECT_EQ(Parse(listed.out)["queues"][0]["name"], "local");
  // A bad line is named.
  WriteFile(data() + "/queues.conf", "local: concurrency=lots\n");
  auto bad = Keel({"serve", "--listen", "127.0.0.1:0"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("queues.conf:1"), std::string::npos) << bad.err;
  auto bad_flag = Keel({"serve", "--listen", "127.0.0.1:0", "--queue", "x:rate=3"});
  EXPECT_EQ(bad_flag.exit_code, 2);
  ExpectVerified();
}

// SIGKILL while the queue is full and others wait, twice (once right after
// slots free up, while admissions are being made): every process ends up
// admitted exactly once, the queue never ran more than two at a time, every
// process completes and verify is clean.
TEST_F(QueueCliTest, SigkillWhileTheQueueIsFullAdmitsEachProcessExactlyOnce) {
  const std::vector<std::string> spec = {"--queue", "c:concurrency=2"};
  auto serve = Serve("serve1", spec);
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    ids.push_back(Start(held(), {"--queue", "c", "--priority", std::to_string(i % 2)})["id"]);
  }
  ASSERT_TRUE(WaitUntil([&] { return Queue("c")["running"] == 2; }));
  Stop(serve, SIGKILL);

  serve = Serve("serve2", spec);
  Json q = Queue("c");
  EXPECT_EQ(q["running"], 2);  // rebuilt: the two admitted still hold their slots
  EXPECT_EQ(q["depth"], 4);
  // Free both slots and kill at once, while the next two are being admitted.
  std::vector<std::string> waiting;
  for (const auto& id : ids) {
    if (Status(id) == "waiting") waiting.push_back(id);
  }
  ASSERT_EQ(waiting.size(), 2u);
  for (const auto& id : waiting) Signal(id);
  Stop(serve, SIGKILL);

  serve = Serve("serve3", spec);
  // Drive every process to its end: signal whoever waits for it.
  ASSERT_TRUE(WaitUntil(
      [&] {
        size_t completed = 0;
        for (const auto& id : ids) {
          std::string s = Status(id);
          if (s == "waiting") Signal(id);
          completed += s == "completed";
        }
        return completed == ids.size();
      },
      std::chrono::seconds(120)));
  Stop(serve, SIGTERM);
  ExpectAdmittedOnceWithin(ids, 2);
  ExpectVerified();
}

}  // namespace
}  // namespace keel::testing
