// Safe defaults and a hardened HTTP endpoint: an embedded node opens no
// socket unless asked and then needs a token, one port has one node, bodies
// are judged by their headers at once, the data dir is owner-only, logs never
// reach stdout, and watchers or idle sockets cannot starve the API.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "keel/http.h"
#include "keel/node.h"
#include "keel/workflow.h"
#include "store/format.h"
#include "tests/cli/cli_fixture.h"
#include "tests/store/store_fixture.h"

namespace keel {
namespace {

using testing::WaitUntil;
using Json = nlohmann::json;
namespace fs = std::filesystem;

const char kToken[] = "s3cret";
const char kEchoYaml[] = "name: e\nsteps:\n  - {id: a, activity: echo, with: {text: hi}}\n";

bool OwnerOnly(const std::string& path) {
  auto perms = fs::status(path).permissions();
  return (perms & (fs::perms::group_all | fs::perms::others_all)) == fs::perms::none;
}

// A raw TCP connection to "host:port", for requests httplib's client would
// not send (no Content-Length, a body that never comes) and for idle sockets.
class RawConnection {
 public:
  explicit RawConnection(const std::string& address) {
    auto colon = address.rfind(':');
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
    inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ >= 0 && connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~RawConnection() {
    if (fd_ >= 0) close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  bool ok() const { return fd_ >= 0; }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  bool Send(const std::string& text) {
    return ::send(fd_, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
  }

  // What arrives until the connection closes, `until` is seen, or `limit` passes.
  std::string Read(std::chrono::milliseconds limit, const std::string& until = "") {
    std::string got;
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      char buf[4096];
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
      if (!until.empty() && got.find(until) != std::string::npos) break;
    }
    return got;
  }

 private:
  int fd_ = -1;
};

class HttpHardeningTest : public testing::KeelCliTest {
 protected:
  // Starts `keel serve` with `args` and waits for its node.json.
  void Serve(std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--token", kToken}) {
    args.insert(args.begin(), "serve");
    server_ = Spawn("serve", args);
    address_ = AwaitNodeAddress(server_.get());
    ASSERT_FALSE(address_.empty()) << Err("serve");
  }

  httplib::Client Client() {
    auto colon = address_.rfind(':');
    httplib::Client http(address_.substr(0, colon), std::stoi(address_.substr(colon + 1)));
    http.set_read_timeout(std::chrono::seconds(60));
    return http;
  }

  void StopServer() {
    server_->Signal(SIGTERM);
    EXPECT_EQ(server_->Wait(), 128 + SIGTERM) << Err("serve");  // a graceful stop
  }

  // `keel serve` in the background with `args`: its exit code once it has
  // exited, or -1 (and it is killed) when it is still serving after a while.
  int ServeExitCode(const std::string& name, const std::vector<std::string>& args,
                    const std::string& data_dir) {
    std::vector<std::string> argv = {testing::KeelBinary(), "serve"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--data", data_dir});
    testing::Child child(argv, dir_ / (name + ".out"), dir_ / (name + ".err"));
    if (WaitUntil([&] { return child.Exited(); }, std::chrono::seconds(20))) return child.Wait();
    child.Signal(SIGKILL);
    child.Wait();
    return -1;
  }

  std::unique_ptr<testing::Child> server_;
  std::string address_;
};

// ---- Safe defaults -----------------------------------------------------------

TEST_F(HttpHardeningTest, APlainEmbeddedNodeOpensNoSocketAndRunsNoProgram) {
  Options options;
  options.data_dir = data();
  auto node = Node::Open(options);
  ASSERT_OK(node);
  EXPECT_FALSE(fs::exists(data() + "/node.json")) << "no API unless asked";
  EXPECT_TRUE(OwnerOnly(data())) << "a new data dir is 0700";
  auto wf = ParseWorkflow("name: x\nsteps:\n  - {id: run, activity: exec, with: {argv: [touch, " +
                              (dir_ / "ran") + "]}}\n",
                          "x.yaml");
  ASSERT_OK(wf);
  auto started = (*node)->Start(*wf, Json::object());
  ASSERT_OK(started);
  auto done = (*node)->Wait((*started)["id"], std::chrono::seconds(60));
  ASSERT_OK(done);
  EXPECT_EQ((*done)["tasks"][0]["blocked_rule"], "exec_policy") << done->dump();
  EXPECT_FALSE(fs::exists(dir_ / "ran")) << "exec is denied by default";
  ASSERT_OK((*node)->Close());
}

TEST_F(HttpHardeningTest, AnEmbeddedApiWhenAskedNeedsATokenOnlyItsOwnerCanRead) {
  Options options;
  options.data_dir = data();
  auto node = Node::Open(options);
  ASSERT_OK(node);
  EXPECT_FALSE(fs::exists(data() + "/node.json"));
  auto server = HttpServer::Start(**node, HttpOptions{});
  ASSERT_OK(server);
  ASSERT_TRUE(fs::exists(data() + "/node.json"));
  EXPECT_TRUE(OwnerOnly(data() + "/node.json"));
  Json info = Parse(testing::ReadFile(data() + "/node.json"));
  ASSERT_TRUE(info.value("token", Json()).is_string()) << info.dump();
  std::string token = info["token"];
  EXPECT_GE(token.size(), 32u);
  address_ = info["address"];
  auto http = Client();
  std::string body = Json({{"workflow", kEchoYaml}}).dump();
  auto anonymous = http.Post("/v1/processes", body, "application/json");
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 401);
  std::string wrong(token.size(), 'x');
  auto guessed =
      http.Post("/v1/processes", {{"Authorization", "Bearer " + wrong}}, body, "application/json");
  ASSERT_TRUE(guessed);
  EXPECT_EQ(guessed->status, 401);
  // The scheme in any case (RFC 9110).
  auto owner =
      http.Post("/v1/processes", {{"Authorization", "bEaReR " + token}}, body, "application/json");
  ASSERT_TRUE(owner);
  EXPECT_EQ(owner->status, 201) << owner->body;
  EXPECT_EQ((*server)->token(), token);
  (*server)->Stop();
  EXPECT_FALSE(fs::exists(data() + "/node.json"));
  ASSERT_OK((*node)->Close());
}

TEST_F(HttpHardeningTest, ServeRefusesANonLoopbackAddressWithoutAToken) {
  EXPECT_EQ(ServeExitCode("open", {"--listen", "0.0.0.0:0"}, data()), 2);
  EXPECT_NE(testing::ReadFile(dir_ / "open.err").find("--token"), std::string::npos)
      << testing::ReadFile(dir_ / "open.err");
  EXPECT_FALSE(fs::exists(data())) << "refused before anything is created";
  // Said explicitly, it serves.
  Serve({"--listen", "0.0.0.0:0", "--insecure-no-token"});
  StopServer();
}

TEST_F(HttpHardeningTest, TheDataDirAndNodeJsonOfServeAreOwnerOnly) {
  Serve();
  EXPECT_TRUE(OwnerOnly(data()));
  EXPECT_TRUE(OwnerOnly(data() + "/node.json"));
  StopServer();
}

TEST_F(HttpHardeningTest, LogsGoToStderrSoRunJsonStaysOneJsonObject) {
  // A process left running by a killed node, whose log then cannot be read:
  // the next node logs that it cannot resume it.
  std::string gate = dir_ / "gate";
  auto run = Spawn("run", {"run", Workflow("gated.yaml", testing::kGatedYaml), "--input",
                           "gate=" + gate, "--id", "p_a", "--json"});
  ASSERT_TRUE(WaitUntil([&] {
    Json shown = Json::parse(Keel({"show", "p_a", "--json"}).out, nullptr, false);
    return !shown.is_discarded() && shown.contains("tasks") && !shown["tasks"].empty() &&
           shown["tasks"][0]["status"] == "running";
  })) << Err("run");
  run->Signal(SIGKILL);
  run->Wait();
  {
    store::testing::RawDb raw(data());
    ASSERT_TRUE(raw.ok()) << raw.error();
    raw.Put(store::format::kEventsCf, store::format::StreamKey("p_a", 2), "not an event");
  }
  std::string hello = Workflow("hello.yaml", testing::kHelloYaml);
  auto r = Keel({"run", hello, "--input", "who=x", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  Json out = Json::parse(r.out, nullptr, false);
  EXPECT_FALSE(out.is_discarded()) << "stdout is exactly one JSON object: " << r.out;
  EXPECT_NE(r.err.find("p_a cannot be resumed"), std::string::npos) << r.err;
}

TEST_F(HttpHardeningTest, ARunRefusedForBadInputLeavesNoStoreBehind) {
  std::string hello = Workflow("hello.yaml", testing::kHelloYaml);
  auto missing = Keel({"run", hello, "--json"});  // `who` is required
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  EXPECT_NE(missing.err.find("who"), std::string::npos) << missing.err;
  EXPECT_FALSE(fs::exists(data()));
}

// ---- One port, one node; bodies judged at once ------------------------------

TEST_F(HttpHardeningTest, ASecondNodeOnTheSamePortFailsToStart) {
  Serve();
  std::string port = address_.substr(address_.rfind(':') + 1);
  EXPECT_EQ(ServeExitCode("second", {"--listen", "127.0.0.1:" + port, "--token", kToken},
                          (dir_ / "other")),
            2);
  EXPECT_NE(testing::ReadFile(dir_ / "second.err").find("address in use"), std::string::npos)
      << testing::ReadFile(dir_ / "second.err");
  StopServer();
}

// httplib waits for a body its headers do not announce (until its read
// timeout, 5 s): the node answers from the headers. The reads below wait
// less than that while the client still holds the body back.
constexpr auto kBeforeTheReadTimeout = std::chrono::milliseconds(4000);

TEST_F(HttpHardeningTest, APostWithoutContentLengthHasAnEmptyBodyAndIsAnsweredAtOnce) {
  Serve();
  RawConnection c(address_);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(
      c.Send(std::string("POST /v1/processes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ") +
             kToken + "\r\n\r\n"));
  std::string answer = c.Read(kBeforeTheReadTimeout, "}\n");
  EXPECT_EQ(answer.rfind("HTTP/1.1 400", 0), 0u) << answer;
  EXPECT_NE(answer.find("'workflow' must be"), std::string::npos) << answer;
  c.Close();
  StopServer();
}

TEST_F(HttpHardeningTest, AnOverLimitContentLengthIsRefusedBeforeTheBody) {
  Serve();
  RawConnection c(address_);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(
      c.Send(std::string("POST /v1/processes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ") +
             kToken + "\r\nContent-Length: 100000000\r\n\r\n{"));
  std::string answer = c.Read(kBeforeTheReadTimeout, "}\n");
  EXPECT_EQ(answer.rfind("HTTP/1.1 413", 0), 0u) << answer;
  c.Close();
  StopServer();
}

// ---- Watchers and idle sockets cannot starve the API --------------------------

// Raises this process's soft limit of open files to the hard one (the test
// holds over a thousand sockets); false when that is not enough.
bool RaiseFileLimit(rlim_t needed) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_cur >= needed;
}

TEST_F(HttpHardeningTest, HealthAndControlsAnswerBesideAThousandStreamsAndIdleSockets) {
  constexpr int kStreams = 1000, kIdle = 300, kMostStreams = 1100;
  if (!RaiseFileLimit(kMostStreams + kIdle + 100)) GTEST_FAIL() << "too few file descriptors";
  Serve();
  auto http = Client();
  http.set_read_timeout(std::chrono::seconds(30));  // a hang guard
  const httplib::Headers auth = {{"Authorization", std::string("Bearer ") + kToken}};
  auto start_waiting = [&] {
    std::string body =
        Json({{"workflow", "name: a\nsteps:\n  - {id: review, approval: {}}\n"}}).dump();
    auto created = http.Post("/v1/processes", auth, body, "application/json");
    EXPECT_TRUE(created && created->status == 201);
    return created ? Parse(created->body).value("id", "") : "";
  };
  std::string id = start_waiting(), other = start_waiting();
  const std::string watch = "GET /v1/processes/" + id + "/stream HTTP/1.1\r\nHost: x\r\n\r\n";
  // A new watcher: its answer's head ("" when the connection failed).
  auto open_watcher = [&](std::unique_ptr<RawConnection>& c) {
    c = std::make_unique<RawConnection>(address_);
    if (!c->ok() || !c->Send(watch)) return std::string();
    std::string head = c->Read(std::chrono::seconds(30), "\r\n\r\n");
    // Then the first event (it may have come with the head).
    for (int i = 0; i < 2 && head.rfind("HTTP/1.1 200", 0) == 0; ++i) {
      auto data = head.find("data: {");
      if (data != std::string::npos && head.find("\n\n", data) != std::string::npos) break;
      head += c->Read(std::chrono::seconds(30), "\n\n");
    }
    return head;
  };

  // Watchers, each with its first snapshot, until the node refuses one.
  std::vector<std::unique_ptr<RawConnection>> streams;
  std::string refused;
  for (int i = 0; i < kMostStreams; ++i) {
    std::unique_ptr<RawConnection> c;
    std::string head = open_watcher(c);
    if (head.rfind("HTTP/1.1 503", 0) == 0) {
      refused = head;
      if (refused.find("}\n") == std::string::npos)
        refused += c->Read(std::chrono::seconds(30), "}\n");
      break;
    }
    ASSERT_NE(head.find("data: {"), std::string::npos) << "watcher " << i << ": " << head;
    streams.push_back(std::move(c));
  }
  EXPECT_GE(streams.size(), static_cast<size_t>(kStreams));
  EXPECT_NE(refused.find("\"unavailable\""), std::string::npos)
      << "watchers beyond the limit are refused at once; " << streams.size() << " open";

  // Idle sockets beside them, and still the API answers.
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < kIdle; ++i) {
    idle.push_back(std::make_unique<RawConnection>(address_));
    ASSERT_TRUE(idle.back()->ok()) << i;
  }
  auto health = http.Get("/v1/health");
  ASSERT_TRUE(health) << httplib::to_string(health.error());
  EXPECT_EQ(health->status, 200);
  auto approved = http.Post(("/v1/processes/" + other + "/tasks/review/approve").c_str(), auth,
                            "{}", "application/json");
  ASSERT_TRUE(approved) << httplib::to_string(approved.error());
  EXPECT_EQ(approved->status, 200) << approved->body;

  // Closed watchers are noticed: their places are taken again.
  const size_t open = streams.size();
  streams.clear();
  for (size_t i = 0; i < open; ++i) {
    std::unique_ptr<RawConnection> c;
    std::string head;
    ASSERT_TRUE(WaitUntil([&] {
      head = open_watcher(c);
      return head.find("data: {") != std::string::npos;
    })) << "watcher "
        << i << ": " << head;
    streams.push_back(std::move(c));
  }
  // Each sees the process complete.
  approved = http.Post(("/v1/processes/" + id + "/tasks/review/approve").c_str(), auth, "{}",
                       "application/json");
  ASSERT_TRUE(approved) << httplib::to_string(approved.error());
  EXPECT_EQ(approved->status, 200) << approved->body;
  for (size_t i = 0; i < streams.size(); i += 97) {
    std::string rest = streams[i]->Read(std::chrono::seconds(30), "\"completed\"");
    EXPECT_NE(rest.find("\"completed\""), std::string::npos) << "watcher " << i << ": " << rest;
  }
  StopServer();
}

}  // namespace
}  // namespace keel
