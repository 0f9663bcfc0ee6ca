// `keel serve` and the HTTP API of INTERFACE.md, node.json discovery, and the
// CLI controls against a live node and an embedded one.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "tests/cli/cli_fixture.h"

namespace keel {
namespace {

using testing::WaitUntil;
using Json = nlohmann::json;

const char kToken[] = "s3cret";
const char kEchoYaml[] = "name: e\nsteps:\n  - {id: a, activity: echo, with: {text: hi}}\n";

class HttpTest : public testing::KeelCliTest {
 protected:
  // Starts `keel serve` on a free port and waits for its node.json.
  void Serve(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"serve", "--listen",      "127.0.0.1:0", "--token",
                                     kToken,  "--exec-policy", "full"};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = Spawn("serve", args);
    address_ = AwaitNodeAddress();
    ASSERT_FALSE(address_.empty()) << Err("serve");
    auto colon = address_.rfind(':');
    client_ = std::make_unique<httplib::Client>(address_.substr(0, colon),
                                                std::stoi(address_.substr(colon + 1)));
    client_->set_read_timeout(std::chrono::seconds(60));
  }

  httplib::Result Post(const std::string& path, const std::string& body, bool with_token = true) {
    httplib::Headers headers;
    if (with_token) headers.emplace("Authorization", std::string("Bearer ") + kToken);
    return client_->Post(path.c_str(), headers, body, "application/json");
  }

  // The error code of an error answer.
  std::string ErrorCode(const httplib::Result& res) { return Parse(res->body)["error"]["code"]; }

  void StopServer() {
    server_->Signal(SIGTERM);
    EXPECT_EQ(server_->Wait(), 128 + SIGTERM) << Err("serve");
    EXPECT_FALSE(std::filesystem::exists(data() + "/node.json"));
  }

  std::unique_ptr<testing::Child> server_;
  std::unique_ptr<httplib::Client> client_;
  std::string address_;
};

TEST_F(HttpTest, ServeWritesNodeJsonAndAnswersHealthAndStopsCleanlyOnSigterm) {
  Serve();
  Json info = Parse(testing::ReadFile(data() + "/node.json"));
  EXPECT_EQ(info["pid"], server_->pid());
  EXPECT_TRUE(info["started_at"].is_string());
  auto health = client_->Get("/v1/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(Parse(health->body)["status"], "ok");
  StopServer();
}

TEST_F(HttpTest, CreateNeedsTheTokenAndHonoursIdempotencyKeys) {
  Serve();
  Json body = {{"workflow", kEchoYaml}, {"inputs", Json::object()}, {"idempotency_key", "k1"}};
  auto denied = Post("/v1/processes", body.dump(), /*with_token=*/false);
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->status, 401);
  EXPECT_EQ(ErrorCode(denied), "unauthorized");
  auto created = Post("/v1/processes", body.dump());
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 201) << created->body;
  std::string id = Parse(created->body)["id"];
  auto again = Post("/v1/processes", body.dump());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
  EXPECT_EQ(Parse(again->body)["id"], id);
  // A workflow given as a JSON object, with an explicit id.
  Json object = {{"workflow", {{"name", "o"}, {"steps", {{{"id", "a"}, {"activity", "echo"}}}}}},
                 {"id", "p_obj"}};
  auto from_object = Post("/v1/processes", object.dump());
  ASSERT_TRUE(from_object);
  EXPECT_EQ(from_object->status, 201) << from_object->body;
  EXPECT_EQ(Parse(from_object->body)["id"], "p_obj");
  // GETs need no token.
  auto one = client_->Get(("/v1/processes/" + id).c_str());
  ASSERT_TRUE(one);
  EXPECT_EQ(one->status, 200);
  EXPECT_EQ(Parse(one->body)["id"], id);
  StopServer();
}

// POST /v1/processes?wait=S (an extension): one call that starts the process
// and answers with its snapshot once it rests, or after S seconds.
TEST_F(HttpTest, CreateWithWaitAnswersOnceTheProcessRests) {
  Serve();
  Json body = {{"workflow", kEchoYaml}, {"inputs", Json::object()}, {"idempotency_key", "w1"}};
  auto done = Post("/v1/processes?wait=30", body.dump());
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, 201) << done->body;
  Json snapshot = Parse(done->body);
  EXPECT_EQ(snapshot["status"], "completed");
  EXPECT_EQ(snapshot["tasks"][0]["output"], "hi");
  auto again = Post("/v1/processes?wait=30", body.dump());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
  EXPECT_EQ(Parse(again->body)["id"], snapshot["id"]);
  EXPECT_EQ(Parse(again->body)["status"], "completed");

  // At rest but unfinished: answered as soon as it waits.
  Json waits = {{"workflow", "name: s\nsteps:\n  - {id: a, wait_signal: go}\n"}};
  auto parked = Post("/v1/processes?wait=30", waits.dump());
  ASSERT_TRUE(parked);
  EXPECT_EQ(parked->status, 201);
  EXPECT_EQ(Parse(parked->body)["status"], "waiting");

  // Still moving when the time is up: the snapshot then.
  Json slow = {{"workflow",
                "name: l\nsteps:\n  - {id: a, activity: exec, with: {argv: [sleep, "
                "\"30\"]}}\n"}};
  auto moving = Post("/v1/processes?wait=1", slow.dump());
  ASSERT_TRUE(moving);
  EXPECT_EQ(moving->status, 201);
  Json running = Parse(moving->body);
  EXPECT_EQ(running["status"], "running");
  auto cancelled = Post("/v1/processes/" + running["id"].get<std::string>() + "/cancel", "{}");
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->status, 200);

  auto bad = Post("/v1/processes?wait=soon", body.dump());
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(ErrorCode(bad), "invalid");
  StopServer();
}

TEST_F(HttpTest, MalformedInvalidOversizedAndUnknownRequestsAreRefusedWithTheirCodes) {
  Serve({"--max-body", "4096"});
  auto not_json = Post("/v1/processes", "{not json");
  ASSERT_TRUE(not_json);
  EXPECT_EQ(not_json->status, 400);
  EXPECT_EQ(ErrorCode(not_json), "invalid");
  auto no_workflow = Post("/v1/processes", R"({"inputs": {}})");
  ASSERT_TRUE(no_workflow);
  EXPECT_EQ(no_workflow->status, 400);
  auto bad_workflow =
      Post("/v1/processes", Json{{"workflow", "name: b\nsteps:\n  - {id: a, bogus: 1}\n"}}.dump());
  ASSERT_TRUE(bad_workflow);
  EXPECT_EQ(bad_workflow->status, 422);
  EXPECT_EQ(ErrorCode(bad_workflow), "invalid");
  auto oversized = Post("/v1/processes", Json{{"workflow", std::string(8192, 'x')}}.dump());
  ASSERT_TRUE(oversized);
  EXPECT_EQ(oversized->status, 413);
  EXPECT_EQ(ErrorCode(oversized), "invalid");
  auto unknown = client_->Get("/v1/processes/p_nope");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  EXPECT_EQ(ErrorCode(unknown), "not_found");
  auto unknown_events = client_->Get("/v1/processes/p_nope/events");
  ASSERT_TRUE(unknown_events);
  EXPECT_EQ(unknown_events->status, 404);
  auto unknown_control = Post("/v1/processes/p_nope/pause", "{}");
  ASSERT_TRUE(unknown_control);
  EXPECT_EQ(unknown_control->status, 404);
  auto bad_limit = client_->Get("/v1/processes?limit=many");
  ASSERT_TRUE(bad_limit);
  EXPECT_EQ(bad_limit->status, 400);
  auto no_route = client_->Get("/v1/nothing");
  ASSERT_TRUE(no_route);
  EXPECT_EQ(no_route->status, 404);
  // The node is still fine.
  auto health = client_->Get("/v1/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  StopServer();
}

TEST_F(HttpTest, ListEventsAndMetricsDescribeTheNode) {
  Serve();
  for (const char* id : {"p_1", "p_2", "p_3"}) {
    ASSERT_EQ(Post("/v1/processes", Json{{"workflow", kEchoYaml}, {"id", id}}.dump())->status, 201);
  }
  ASSERT_TRUE(WaitUntil([&] {
    auto list = client_->Get("/v1/processes?status=completed");
    return list && Parse(list->body)["total"] == 3;
  }));
  auto page = client_->Get("/v1/processes?limit=2&offset=0&workflow=e");
  ASSERT_TRUE(page);
  Json p = Parse(page->body);
  EXPECT_EQ(p["total"], 3);
  EXPECT_EQ(p["has_more"], true);
  ASSERT_EQ(p["processes"].size(), 2u);
  EXPECT_FALSE(p["processes"][0].contains("tasks"));
  auto events = client_->Get("/v1/processes/p_2/events?from=2");
  ASSERT_TRUE(events);
  EXPECT_EQ(events->status, 200);
  auto lines = Lines(events->body);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.front()["seq"], 2);
  EXPECT_EQ(lines.back()["type"], "ProcessCompleted");
  auto metrics = client_->Get("/v1/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->body.find("keel_processes{status=\"completed\"} 3"), std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("keel_events_appended_total "), std::string::npos) << metrics->body;
  const std::string& body = metrics->body;
  for (const char* series :
       {"# TYPE keel_append_latency_seconds histogram\n",
        "keel_append_latency_seconds_bucket{le=\"0.0001\"} ",
        "keel_append_latency_seconds_bucket{le=\"+Inf\"} ", "keel_append_latency_seconds_sum ",
        "# TYPE keel_group_commit_appends histogram\n",
        "keel_group_commit_appends_bucket{le=\"1\"} ",
        "keel_group_commit_appends_bucket{le=\"256\"} ",
        "keel_group_commit_appends_bucket{le=\"+Inf\"} ", "keel_group_commit_appends_sum ",
        "# TYPE keel_tasks_running gauge\n", "keel_tasks_running 0\n"}) {
    EXPECT_NE(body.find(series), std::string::npos) << series << " in\n" << body;
  }
  // The value of the sample that starts with `name ` (a full line).
  auto sample = [&](const std::string& name) -> uint64_t {
    size_t at = body.find("\n" + name + " ");
    if (at == std::string::npos) return 0;
    return std::stoull(body.substr(at + name.size() + 2));
  };
  // Three processes of several appends each have been committed.
  EXPECT_GE(sample("keel_append_latency_seconds_count"), 3u) << body;
  EXPECT_EQ(sample("keel_append_latency_seconds_bucket{le=\"+Inf\"}"),
            sample("keel_append_latency_seconds_count"));
  EXPECT_GT(sample("keel_group_commit_appends_count"), 0u) << body;
  EXPECT_GE(sample("keel_group_commit_appends_sum"), sample("keel_group_commit_appends_count"));
  // Read commands work against the live node's dir.
  Json ls = Parse(Keel({"ls", "--json"}).out);
  EXPECT_EQ(ls["total"], 3);
  EXPECT_EQ(Keel({"verify"}).exit_code, 0);
  StopServer();
}

TEST_F(HttpTest, MetricsCountTheTasksRunning) {
  Serve();
  std::string gate = dir_ / "gate";
  auto running = [&](int n) {
    auto metrics = client_->Get("/v1/metrics");
    return metrics && metrics->body.find("\nkeel_tasks_running " + std::to_string(n) + "\n") !=
                          std::string::npos;
  };
  ASSERT_TRUE(running(0));
  auto created =
      Post("/v1/processes",
           Json{{"workflow", testing::kGatedYaml}, {"inputs", {{"gate", gate}}}, {"id", "p_gate"}}
               .dump());
  ASSERT_EQ(created->status, 201) << created->body;
  EXPECT_TRUE(WaitUntil([&] { return running(1); })) << client_->Get("/v1/metrics")->body;
  testing::WriteFile(gate, "");
  ASSERT_TRUE(WaitUntil([&] {
    auto p = client_->Get("/v1/processes/p_gate");
    return p && Parse(p->body)["status"] == "completed";
  }));
  EXPECT_TRUE(WaitUntil([&] { return running(0); })) << client_->Get("/v1/metrics")->body;
  StopServer();
}

TEST_F(HttpTest, ProcessStreamSendsSnapshotsUntilTerminalAndGlobalStreamSendsEvents) {
  Serve();
  std::string gate = dir_ / "gate";
  auto created =
      Post("/v1/processes",
           Json{{"workflow", testing::kGatedYaml}, {"inputs", {{"gate", gate}}}, {"id", "p_sse"}}
               .dump());
  ASSERT_EQ(created->status, 201) << created->body;

  std::vector<Json> snapshots;
  std::string global;
  std::thread global_reader([&] {
    auto colon = address_.rfind(':');
    httplib::Client c(address_.substr(0, colon), std::stoi(address_.substr(colon + 1)));
    c.set_read_timeout(std::chrono::seconds(60));
    c.Get("/v1/events/stream?from=1", [&](const char* data, size_t n) {
      global.append(data, n);
      return global.find("\"ProcessCompleted\"") == std::string::npos;
    });
  });
  std::string buffer;
  auto res = client_->Get("/v1/processes/p_sse/stream", [&](const char* data, size_t n) {
    buffer.append(data, n);
    for (size_t end = buffer.find("\n\n"); end != std::string::npos; end = buffer.find("\n\n")) {
      std::string event = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      if (event.rfind("data: ", 0) != 0) continue;  // a keep-alive comment
      snapshots.push_back(Parse(event.substr(6)));
      // Once the stream has shown the process moving, let it finish.
      if (snapshots.size() == 1) testing::WriteFile(gate, "");
    }
    return true;
  });
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
  ASSERT_GE(snapshots.size(), 2u);
  EXPECT_NE(snapshots.front()["status"], "completed");
  EXPECT_EQ(snapshots.back()["status"], "completed") << "the stream ends after a terminal status";
  for (size_t i = 1; i < snapshots.size(); ++i) {
    EXPECT_GT(snapshots[i]["last_seq"], snapshots[i - 1]["last_seq"]);
  }
  global_reader.join();
  EXPECT_NE(global.find("id: 1\ndata: "), std::string::npos) << global;
  EXPECT_NE(global.find("\"ProcessCreated\""), std::string::npos);

  auto unknown = client_->Get("/v1/processes/p_nope/stream");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  StopServer();
}

TEST_F(HttpTest, CliCommandsGoThroughTheLiveNode) {
  Serve();
  // run: the served node runs it (the CLI could not open the locked dir).
  const std::vector<std::string> env = {std::string("KEEL_TOKEN=") + kToken};
  auto run = Keel({"run", Workflow("hello.yaml", testing::kHelloYaml), "--input", "who=x", "--json",
                   "--id", "p_run"},
                  env);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(Parse(run.out)["outputs"]["greeting"], "hello x");
  auto detached = Keel({"run", Workflow("e.yaml", kEchoYaml), "--detach", "--json"}, env);
  ASSERT_EQ(detached.exit_code, 0) << detached.err;
  auto waited = Keel({"wait", Parse(detached.out)["id"], "--json"});
  EXPECT_EQ(waited.exit_code, 0) << waited.err;
  EXPECT_EQ(Parse(waited.out)["status"], "completed");
  // A control the state does not allow is refused: exit 2, one-line reason.
  auto refused = Keel({"pause", "p_run"}, env);
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_EQ(std::count(refused.err.begin(), refused.err.end(), '\n'), 1) << refused.err;
  EXPECT_NE(refused.err.find("completed"), std::string::npos) << refused.err;
  auto http_refused = Post("/v1/processes/p_run/pause", "{}");
  ASSERT_TRUE(http_refused);
  EXPECT_EQ(http_refused->status, 409) << http_refused->body;
  EXPECT_EQ(ErrorCode(http_refused), "conflict");
  EXPECT_EQ(Keel({"approve", "p_nope", "x"}, env).exit_code, 2);
  // Without the token the node refuses the CLI too.
  auto no_token = Keel({"signal", "p_run", "t", "--token", "wrong"});
  EXPECT_EQ(no_token.exit_code, 2);
  EXPECT_NE(no_token.err.find("Bearer"), std::string::npos) << no_token.err;
  StopServer();
}

TEST_F(HttpTest, AWaitGoesOnWithAnEmbeddedNodeWhenTheLiveNodeStops) {
  Serve();
  const std::vector<std::string> env = {std::string("KEEL_TOKEN=") + kToken};
  // Running (not at rest) when the node stops, so the wait is following it.
  auto detached = Keel({"run",
                        Workflow("nap.yaml",
                                 "name: nap\nsteps:\n"
                                 "  - {id: a, activity: exec, with: {argv: [sleep, \"2\"]}}\n"),
                        "--detach", "--json"},
                       env);
  ASSERT_EQ(detached.exit_code, 0) << detached.err;
  std::string id = Parse(detached.out)["id"];
  // Requests the node has begun, less this test's own metrics requests.
  int polls = 0;
  auto others = [&]() -> long {
    auto res = client_->Get("/v1/metrics");
    ++polls;
    if (!res) return -1;
    auto at = res->body.find("\nkeel_http_requests_total ");
    return at == std::string::npos ? -1 : std::stol(res->body.substr(at + 26)) - polls;
  };
  const long before = others();
  auto waiter = Spawn("wait", {"wait", id, "--json", "--timeout", "120"});
  // Its health check and its stream of the process have reached the node.
  ASSERT_TRUE(WaitUntil([&] { return others() >= before + 2; })) << Err("wait");
  // Mid-wait: the node stops serving (the stream ends), lets the task finish
  // within its grace period while it still holds the dir, then closes. The
  // wait retries the held dir, opens it itself and finds the process done.
  StopServer();
  EXPECT_EQ(waiter->Wait(), 0) << Err("wait");
  EXPECT_EQ(Parse(Out("wait"))["status"], "completed") << Out("wait");
}

TEST_F(HttpTest, ControlsWithoutALiveNodeEmbedOneAndReportRefusals) {
  std::string id = RunJson({Workflow("hello.yaml", testing::kHelloYaml), "--input", "who=x"})["id"];
  EXPECT_FALSE(std::filesystem::exists(data() + "/node.json"))
      << "removed when the run's node closed";
  EXPECT_EQ(Keel({"pause", "p_nope"}).exit_code, 2);
  EXPECT_EQ(Keel({"signal", id, "topic", "--payload", "{not json"}).exit_code, 2);
  auto refused = Keel({"resume", id, "--reason", "why not"});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_EQ(std::count(refused.err.begin(), refused.err.end(), '\n'), 1) << refused.err;
}

TEST_F(HttpTest, ApproveThroughTheCliFinishesAWaitingProcess) {
  std::string id =
      RunJson({Workflow("a.yaml",
                        "name: a\nsteps:\n  - {id: review, approval: {prompt: 'ok?'}}\n"
                        "  - {id: after, activity: echo, with: {text: done}}\n")},
              4)["id"];
  auto approved = Keel({"approve", id, "review", "--by", "alice", "--reason", "fine", "--json"});
  ASSERT_EQ(approved.exit_code, 0) << approved.err;
  Json s = Parse(approved.out);
  EXPECT_EQ(s["status"], "completed");
  EXPECT_EQ(s["tasks"][0]["approval"]["by"], "alice");
  EXPECT_EQ(Keel({"approve", id, "review"}).exit_code, 2) << "already decided";
}

TEST_F(HttpTest, SigtermStopsAcceptingThenLetsRunningWorkFinish) {
  Serve({"--grace", "600"});
  std::string gate = dir_ / "gate";
  auto created =
      Post("/v1/processes",
           Json{{"workflow", testing::kGatedYaml}, {"inputs", {{"gate", gate}}}, {"id", "p_drain"}}
               .dump());
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 201) << created->body;
  ASSERT_TRUE(WaitUntil([&] {
    return Keel({"show", "p_drain", "--json"}).out.find("\"running\"") != std::string::npos;
  }));
  server_->Signal(SIGTERM);
  // First the endpoint goes: node.json is removed and nothing new is taken.
  ASSERT_TRUE(WaitUntil([&] { return !std::filesystem::exists(data() + "/node.json"); }));
  EXPECT_FALSE(Post("/v1/processes", Json{{"workflow", kEchoYaml}}.dump()));
  EXPECT_FALSE(server_->Exited()) << "the running task holds the shutdown";
  // Then the running task finishes inside the grace period, and serve exits
  // 143 (stopped by SIGTERM).
  testing::WriteFile(gate, "");
  EXPECT_EQ(server_->Wait(), 128 + SIGTERM) << Err("serve");
  EXPECT_EQ(Parse(Keel({"show", "p_drain", "--json"}).out)["status"], "completed");
}

TEST_F(HttpTest, ABurstOfNewClientsIsServedWithoutResets) {
  Serve();
  constexpr int kClients = 64;
  std::atomic<int> created{0};
  std::vector<std::string> failures(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      auto colon = address_.rfind(':');
      httplib::Client http(address_.substr(0, colon), std::stoi(address_.substr(colon + 1)));
      http.set_read_timeout(std::chrono::seconds(60));
      httplib::Headers headers = {{"Authorization", std::string("Bearer ") + kToken}};
      Json body = {{"workflow", kEchoYaml}, {"inputs", Json::object()}};
      auto res = http.Post("/v1/processes", headers, body.dump(), "application/json");
      if (res && res->status == 201) {
        ++created;
      } else {
        failures[i] = res ? std::to_string(res->status) : httplib::to_string(res.error());
      }
    });
  }
  for (auto& c : clients) c.join();
  for (const auto& f : failures) EXPECT_EQ(f, "");
  EXPECT_EQ(created.load(), kClients);
  StopServer();
}

TEST_F(HttpTest, ANodeEmbeddedByTheCliTakesWorkOnlyFromItsOwner) {
  std::string gate = dir_ / "gate";
  auto run = Spawn("run", {"run", Workflow("gated.yaml", testing::kGatedYaml), "--input",
                           "gate=" + gate, "--id", "p_owned", "--json"});
  Json info;
  ASSERT_TRUE(WaitUntil([&] {
    info = Json::parse(testing::ReadFile(data() + "/node.json"), nullptr, false);
    return !info.is_discarded() && info.contains("address");
  })) << Err("run");
  auto perms = std::filesystem::status(data() + "/node.json").permissions();
  EXPECT_EQ(perms & (std::filesystem::perms::group_all | std::filesystem::perms::others_all),
            std::filesystem::perms::none);
  ASSERT_TRUE(info.contains("token"));
  std::string address = info["address"];
  auto colon = address.rfind(':');
  httplib::Client other(address.substr(0, colon), std::stoi(address.substr(colon + 1)));
  auto refused = other.Post("/v1/processes/p_owned/cancel", "{}", "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  // The owner's CLI finds the token in node.json.
  auto cancelled = Keel({"cancel", "p_owned", "--reason", "test"});
  EXPECT_EQ(cancelled.exit_code, 0) << cancelled.err;
  EXPECT_EQ(run->Wait(), 3) << Err("run");
}


// One raw request (exactly these bytes, then "Connection: close"); the
// answer's status code and body. For requests httplib's client would mend.
std::pair<int, std::string> RawRequest(const std::string& address, const std::string& head,
                                       const std::string& body = "") {
  auto colon = address.rfind(':');
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &to.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    ::close(fd);
    return {-1, "connect failed"};
  }
  std::string request = head + "Connection: close\r\n\r\n" + body;
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string answer;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) answer.append(buf, n);
  ::close(fd);
  if (answer.rfind("HTTP/1.1 ", 0) != 0) return {-1, answer};
  auto body_at = answer.find("\r\n\r\n");
  return {std::stoi(answer.substr(9, 3)),
          body_at == std::string::npos ? "" : answer.substr(body_at + 4)};
}

TEST_F(HttpTest, HealthCarriesTheVersionAndTheStoreFormat) {
  Serve();
  auto health = client_->Get("/v1/health");
  ASSERT_TRUE(health);
  Json h = Parse(health->body);
  Json v = Parse(testing::Run({testing::KeelBinary(), "version", "--json"}).out);
  EXPECT_EQ(h["version"], v["version"]);
  EXPECT_EQ(h["store_format"], v["store_format"]);
  EXPECT_TRUE(h["store_format"].is_number_integer());
  StopServer();
}

TEST_F(HttpTest, EveryControlTakesAnEmptyBody) {
  Serve();
  const std::string auth = std::string("Authorization: Bearer ") + kToken + "\r\n";
  auto create = [&](const std::string& id, const std::string& yaml) {
    auto res = Post("/v1/processes", Json{{"workflow", yaml}, {"id", id}}.dump() + "");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 201) << res->body;
  };
  // No body and no Content-Length; Content-Length 0 and no Content-Type; a
  // form-typed "{}" as curl -d sends it.
  auto none = [&](const std::string& path) {
    return RawRequest(address_, "POST " + path + " HTTP/1.1\r\nHost: x\r\n" + auth);
  };
  auto zero = [&](const std::string& path) {
    return RawRequest(address_,
                      "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n" + auth);
  };
  auto braces = [&](const std::string& path) {
    return RawRequest(address_,
                      "POST " + path +
                          " HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                          "Content-Type: application/x-www-form-urlencoded\r\n" +
                          auth,
                      "{}");
  };
  create("p_steps", "name: steps\nsteps:\n  - {id: one, approval: {prompt: a}}\n"
                    "  - {id: two, wait_signal: go}\n  - {id: three, approval: {prompt: c}}\n"
                    "  - {id: four, approval: {prompt: d}}\n");
  using Send = std::function<std::pair<int, std::string>(const std::string&)>;
  for (auto [name, send] : {std::pair<const char*, Send>{"none", none},
                            std::pair<const char*, Send>{"zero", zero},
                            std::pair<const char*, Send>{"braces", braces}}) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(WaitUntil([&] {
      return Keel({"show", "p_steps", "--json"}).out.find("\"waiting\"") != std::string::npos;
    }));
    Json s = Parse(Keel({"show", "p_steps", "--json"}).out);
    std::string path = "/v1/processes/p_steps/tasks/" +
                       s["waiting_on"][0]["task"].get<std::string>() + "/approve";
    if (s["waiting_on"][0]["kind"] == "signal") path = "/v1/processes/p_steps/signals/go";
    auto [code, body] = send(path);
    EXPECT_EQ(code, 200) << path << ": " << body;
  }
  create("p_ctl", "name: ctl\nsteps:\n  - {id: one, approval: {prompt: a}}\n");
  EXPECT_EQ(none("/v1/processes/p_ctl/pause").first, 200);
  EXPECT_EQ(zero("/v1/processes/p_ctl/resume").first, 200);
  EXPECT_EQ(braces("/v1/processes/p_ctl/cancel").first, 200);
  create("p_fail", "name: f\nsteps:\n  - {id: x, activity: fail, with: {message: no}}\n");
  ASSERT_TRUE(WaitUntil([&] {
    return Keel({"show", "p_fail", "--json"}).out.find("\"failed\"") != std::string::npos;
  }));
  EXPECT_EQ(none("/v1/processes/p_fail/retry").first, 200);
  StopServer();
}

TEST_F(HttpTest, AnUnknownQueryParameterIsRefusedNamingIt) {
  Serve();
  auto list = client_->Get("/v1/processes?stauts=running");
  ASSERT_TRUE(list);
  EXPECT_EQ(list->status, 400);
  EXPECT_EQ(ErrorCode(list), "invalid");
  EXPECT_NE(list->body.find("stauts"), std::string::npos) << list->body;
  for (const char* path : {"/v1/health?verbose=1", "/v1/processes?%FF%00=1", "/v1/processes/p_x/events?form=1",
                           "/v1/metrics?x=", "/v1/events/stream?since=1"}) {
    auto res = client_->Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 400) << path << ": " << res->body;
  }
  auto create = Post("/v1/processes?wiat=5", Json{{"workflow", kEchoYaml}}.dump());
  ASSERT_TRUE(create);
  EXPECT_EQ(create->status, 400) << create->body;
  EXPECT_NE(create->body.find("wiat"), std::string::npos) << create->body;
  // Known ones still work.
  auto known = client_->Get("/v1/processes?status=completed&limit=5&offset=0");
  ASSERT_TRUE(known);
  EXPECT_EQ(known->status, 200) << known->body;
  StopServer();
}

TEST_F(HttpTest, ListFiltersByCreationTimeAndIdempotencyKey) {
  Serve();
  std::vector<Json> made;
  for (const char* key : {"k1", "k2"}) {
    auto res = Post("/v1/processes?wait=60",
                    Json{{"workflow", kEchoYaml}, {"idempotency_key", key}}.dump());
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 201) << res->body;
    made.push_back(Parse(res->body));
  }
  auto ids = [&](const std::string& query) {
    auto res = client_->Get(("/v1/processes?" + query).c_str());
    std::vector<std::string> out;
    EXPECT_TRUE(res);
    if (!res) return out;
    EXPECT_EQ(res->status, 200) << query << ": " << res->body;
    Json list = Parse(res->body);
    for (const auto& p : list["processes"]) out.push_back(p["id"]);
    return out;
  };
  std::string a = made[0]["id"], b = made[1]["id"];
  EXPECT_EQ(ids("idempotency_key=k2"), std::vector<std::string>{b});
  EXPECT_EQ(ids("since=1h"), (std::vector<std::string>{b, a}));
  EXPECT_TRUE(ids("until=1h").empty());
  EXPECT_TRUE(ids("since=2200-01-01T00:00:00Z").empty());
  EXPECT_EQ(ids("until=2200-01-01T00:00:00Z&idempotency_key=k1"), std::vector<std::string>{a});
  auto bytes = client_->Get("/v1/processes?until=%FF%FE");
  ASSERT_TRUE(bytes);
  EXPECT_EQ(bytes->status, 400) << bytes->body;
  auto bad = client_->Get("/v1/processes?since=yesterday");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("since"), std::string::npos) << bad->body;
  StopServer();
}

TEST_F(HttpTest, RunViewsForTheConsoleAndTaskIdsWithSlashes) {
  Serve();
  auto created = Post("/v1/processes?wait=30",
                      Json{{"id", "p_each"},
                           {"workflow",
                            "name: each\nsteps:\n  - id: fan\n    for_each: \"{'x', 'y'}\"\n"
                            "    steps: [{id: ok, approval: {prompt: ok}}]\n"}}
                          .dump());
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 201) << created->body;
  ASSERT_EQ(Parse(created->body)["status"], "waiting") << created->body;
  const uint64_t last_seq = Parse(created->body)["last_seq"];

  auto definition = client_->Get("/v1/processes/p_each/definition");
  ASSERT_TRUE(definition);
  ASSERT_EQ(definition->status, 200) << definition->body;
  Json steps = Parse(definition->body)["definition"]["steps"];
  EXPECT_EQ(steps[0]["id"], "fan");
  EXPECT_EQ(steps[0]["kind"], "for_each");

  auto first = client_->Get("/v1/processes/p_each/replay?to=1");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 200) << first->body;
  EXPECT_EQ(Parse(first->body)["last_seq"], 1);
  EXPECT_TRUE(Parse(first->body)["tasks"].empty());
  auto whole = client_->Get(("/v1/processes/p_each/replay?to=" + std::to_string(last_seq)).c_str());
  ASSERT_TRUE(whole);
  EXPECT_EQ(Parse(whole->body)["tasks"], Parse(created->body)["tasks"]);
  for (const char* bad :
       {"/v1/processes/p_each/replay", "/v1/processes/p_each/replay?to=0",
        "/v1/processes/p_each/replay?to=99999", "/v1/processes/p_each/replay?to=x"}) {
    auto res = client_->Get(bad);
    ASSERT_TRUE(res) << bad;
    EXPECT_EQ(res->status, 400) << bad << ": " << res->body;
  }
  auto verify = client_->Get("/v1/processes/p_each/verify");
  ASSERT_TRUE(verify);
  EXPECT_EQ(Parse(verify->body), (Json{{"ok", true}, {"problems", Json::array()}})) << verify->body;
  for (const char* path : {"/v1/processes/p_nope/definition", "/v1/processes/p_nope/replay?to=1",
                           "/v1/processes/p_nope/verify"}) {
    auto res = client_->Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 404) << path << ": " << res->body;
  }

  // A task inside a branch has '/' in its id: as is, or encoded as %2F.
  auto encoded = Post("/v1/processes/p_each/tasks/fan%2F0%2Fok/approve", "{}");
  ASSERT_TRUE(encoded);
  EXPECT_EQ(encoded->status, 200) << encoded->body;
  auto approved = Post("/v1/processes/p_each/tasks/fan/1/ok/approve", R"({"by": "ann"})");
  ASSERT_TRUE(approved);
  EXPECT_EQ(approved->status, 200) << approved->body;
  ASSERT_TRUE(WaitUntil(
      [&] { return Parse(client_->Get("/v1/processes/p_each")->body)["status"] == "completed"; }));
  auto again = Post("/v1/processes/p_each/tasks/fan/1/ok/approve", "{}");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 409) << again->body;
  StopServer();
}

TEST_F(HttpTest, TheConsoleIsServedAtTheRootWithoutBrotli) {
  Serve();
  auto page = client_->Get("/", {{"Accept-Encoding", "br"}});
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_FALSE(page->has_header("Content-Encoding"));
  EXPECT_NE(page->body.find("/console/console.js"), std::string::npos);
  const std::string etag = page->get_header_value("ETag");
  ASSERT_FALSE(etag.empty());
  auto cached = client_->Get("/", {{"If-None-Match", etag}});
  ASSERT_TRUE(cached);
  EXPECT_EQ(cached->status, 304);
  for (const char* asset : {"/console/console.js", "/console/console.css"}) {
    auto res = client_->Get(asset);
    ASSERT_TRUE(res) << asset;
    EXPECT_EQ(res->status, 200) << asset;
    EXPECT_GT(res->body.size(), 1000u) << asset;
  }
  auto missing = client_->Get("/console/nothing.js");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  StopServer();
}

TEST_F(HttpTest, GetPagesTheTasksOfAProcess) {
  Serve();
  const char* yaml = R"(name: three
steps:
  - {id: a, activity: echo, with: {text: a}}
  - {id: b, activity: echo, with: {text: b}}
  - {id: c, activity: echo, with: {text: c}}
)";
  auto created = Post("/v1/processes", Json({{"workflow", yaml}}).dump());
  ASSERT_TRUE(created) << httplib::to_string(created.error());
  std::string id = Parse(created->body)["id"];
  auto waited = Keel({"wait", id, "--token", kToken});
  ASSERT_EQ(waited.exit_code, 0) << waited.err;
  auto page = client_->Get(("/v1/processes/" + id + "?tasks_limit=1&tasks_offset=1").c_str());
  ASSERT_TRUE(page);
  ASSERT_EQ(page->status, 200) << page->body;
  Json s = Parse(page->body);
  ASSERT_EQ(s["tasks"].size(), 1u);
  EXPECT_EQ(s["tasks"][0]["id"], "b");
  EXPECT_EQ(s["tasks_total"], 3);
  auto bad = client_->Get(("/v1/processes/" + id + "?tasks_limit=x").c_str());
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  StopServer();
}

TEST_F(HttpTest, CancelOfATaskStopsItsRunningAttemptThroughTheCli) {
  Serve();
  const char* yaml = R"(name: slow
steps:
  - {id: nap, activity: exec, with: {argv: [sleep, "300"]}}
)";
  auto created = Post("/v1/processes", Json({{"workflow", yaml}}).dump());
  ASSERT_TRUE(created) << httplib::to_string(created.error());
  std::string id = Parse(created->body)["id"];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {  // until the attempt runs
    auto got = client_->Get(("/v1/processes/" + id).c_str());
    ASSERT_TRUE(got);
    Json s = Parse(got->body);
    if (!s["tasks"].empty() && s["tasks"][0]["status"] == "running") break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << got->body;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto unknown = Keel({"cancel", id, "--task", "nope", "--token", kToken});
  EXPECT_EQ(unknown.exit_code, 2) << unknown.err;
  auto cancelled =
      Keel({"cancel", id, "--task", "nap", "--by", "ops", "--token", kToken, "--json"});
  ASSERT_EQ(cancelled.exit_code, 0) << cancelled.err;
  Json s = Parse(cancelled.out);
  EXPECT_EQ(s["status"], "failed");
  EXPECT_NE(s["tasks"][0]["error"].get<std::string>().find("cancelled by ops"), std::string::npos)
      << s["tasks"][0];
  auto again = Post("/v1/processes/" + id + "/tasks/nap/cancel", "{}");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 409) << again->body;
  StopServer();
}

}  // namespace
}  // namespace keel
