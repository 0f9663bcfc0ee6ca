// Hostile input through the real binary and the HTTP API: YAML aliases that
// expand without bound, text that is not UTF-8, ids outside their alphabet and
// negative numbers are refused at the edge (exit 2, HTTP 400/422) before
// anything is stored, and no exception reaches a client.
#include <httplib.h>
#include <signal.h>

#include <string>

#include "tests/cli/cli_fixture.h"

namespace keel {
namespace {

using testing::WaitUntil;
using Json = nlohmann::json;

const char kToken[] = "s3cret";
const char kEchoYaml[] = "name: e\nsteps:\n  - {id: a, activity: echo, with: {text: hi}}\n";

// Anchors that refer to anchors: 9^9 values from some 500 bytes.
std::string Laughs() {
  std::string yaml = "name: lol\nvars:\n  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i <= 9; ++i) {
    std::string prev = "*l" + std::to_string(i - 1);
    yaml += "  l" + std::to_string(i) + ": &l" + std::to_string(i) + " [";
    for (int k = 0; k < 9; ++k) yaml += (k ? ", " : "") + prev;
    yaml += "]\n";
  }
  return yaml + "steps:\n  - {id: a, activity: echo}\n";
}

class HostileInputTest : public testing::KeelCliTest {
 protected:
  // The number of processes in the data dir (0 when there is none).
  int Processes() {
    auto ls = Keel({"ls", "--json"});
    if (ls.exit_code != 0) return 0;
    return Parse(ls.out)["total"].get<int>();
  }

  // Starts `keel serve` on a free port and waits for its node.json.
  void Serve() {
    server_ = Spawn("serve", {"serve", "--listen", "127.0.0.1:0", "--token", kToken});
    std::string address = AwaitNodeAddress();
    ASSERT_FALSE(address.empty()) << Err("serve");
    auto colon = address.rfind(':');
    client_ = std::make_unique<httplib::Client>(address.substr(0, colon),
                                                std::stoi(address.substr(colon + 1)));
    client_->set_read_timeout(std::chrono::seconds(60));
  }

  httplib::Result Post(const std::string& path, const std::string& body) {
    httplib::Headers headers = {{"Authorization", std::string("Bearer ") + kToken}};
    return client_->Post(path.c_str(), headers, body, "application/json");
  }

  // An error answer: its status, and its body is the JSON error of INTERFACE.md.
  void ExpectError(const httplib::Result& res, int status, const std::string& code) {
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, status) << res->body;
    Json body = Parse(res->body);
    EXPECT_EQ(body["error"]["code"], code) << res->body;
  }

  void StopServer() {
    server_->Signal(SIGTERM);
    EXPECT_EQ(server_->Wait(), 128 + SIGTERM) << Err("serve");  // a graceful stop
  }

  std::unique_ptr<testing::Child> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(HostileInputTest, AliasBombIsRefusedBeforeAnythingIsStored) {
  auto r = Keel({"run", Workflow("lol.yaml", Laughs())});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("lol.yaml:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("the workflow expands to more than"), std::string::npos) << r.err;
  EXPECT_EQ(Processes(), 0);

  Serve();
  auto posted = Post("/v1/processes", Json({{"workflow", Laughs()}}).dump());
  ExpectError(posted, 422, "invalid");
  EXPECT_NE(posted->body.find("expands to more than"), std::string::npos) << posted->body;
  auto list = client_->Get("/v1/processes");
  ASSERT_TRUE(list);
  EXPECT_EQ(Parse(list->body)["total"], 0);
  StopServer();
}

TEST_F(HostileInputTest, TextThatIsNotUtf8IsRefusedAtTheEdge) {
  // In the workflow file.
  auto r = Keel(
      {"run", Workflow("bad.yaml", "name: b\nsteps:\n  - {id: a, activity: echo, with: {t: \"p\xff\"}}\n")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("bad.yaml:3: the workflow is not valid UTF-8"), std::string::npos) << r.err;
  // In --input, --inputs and --id.
  std::string echo = Workflow("echo.yaml", "name: e\ninputs: {x: {}}\nsteps:\n  - {id: a, activity: echo}\n");
  r = Keel({"run", echo, "--input", "x=p\xff"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("is not valid UTF-8"), std::string::npos) << r.err;
  r = Keel({"run", echo, "--input", "x=\"p\xff\""});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = Keel({"run", echo, "--inputs", "{\"x\": \"p\xff\"}"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--inputs is not valid UTF-8"), std::string::npos) << r.err;
  r = Keel({"run", echo, "--id", "p\xff"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("process id 'p\\xFF' is not valid"), std::string::npos) << r.err;
  EXPECT_EQ(Processes(), 0);

  // A control's text is recorded: refused too (the process exists).
  ASSERT_EQ(Keel({"run", echo, "--id", "p1"}).exit_code, 0);
  r = Keel({"cancel", "p1", "--reason", "why\xff"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--reason is not valid UTF-8"), std::string::npos) << r.err;
  r = Keel({"signal", "p1", "t\xff"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  auto shown = Keel({"show", "p1", "--json"});
  EXPECT_EQ(shown.exit_code, 0) << shown.err;

  // Over HTTP: a path or query that is not UTF-8 is 400 with a JSON error,
  // never a 500 with an exception's text.
  Serve();
  ExpectError(client_->Get("/v1/processes/%FF"), 400, "invalid");
  ExpectError(client_->Get("/v1/processes/%FF/events"), 400, "invalid");
  ExpectError(client_->Get("/v1/processes?workflow=%FF"), 400, "invalid");
  ExpectError(Post("/v1/processes/p1/signals/%FF", "{}"), 400, "invalid");
  // A body that is not UTF-8 is not JSON.
  ExpectError(Post("/v1/processes", "{\"workflow\": \"name: \xff\"}"), 400, "invalid");
  auto unknown = client_->Get("/v1/processes/p%C3%A9");  // UTF-8, no such process
  ExpectError(unknown, 404, "not_found");
  StopServer();
  EXPECT_EQ(Processes(), 1);
}

TEST_F(HostileInputTest, ProcessIdsOutsideTheirAlphabetAreRefused) {
  std::string echo = Workflow("echo.yaml", kEchoYaml);
  for (const std::string& id :
       std::vector<std::string>{"a/b", "../../x", "a b\nc", ".x", "-x", std::string(129, 'i')}) {
    auto r = Keel({"run", echo, "--id", id});
    EXPECT_EQ(r.exit_code, 2) << id << ": " << r.err;
    EXPECT_NE(r.err.find("is not valid: 1 to 128 letters, digits"), std::string::npos) << r.err;
  }
  auto key = Keel({"run", echo, "--idempotency-key", std::string(257, 'k')});
  EXPECT_EQ(key.exit_code, 2) << key.err;
  EXPECT_NE(key.err.find("idempotency key"), std::string::npos) << key.err;
  EXPECT_EQ(Processes(), 0);
  // The ids scripts use, and keel's own, are fine.
  auto ok = RunJson({echo, "--id", "order-42:retry.1_x"});
  EXPECT_EQ(ok["id"], "order-42:retry.1_x");

  Serve();
  for (const std::string& id : std::vector<std::string>{"a/b", "../../x", "a b\nc", ""}) {
    Json body = {{"workflow", kEchoYaml}, {"id", id}};
    if (id.empty()) body["id"] = std::string(200, 'x');
    ExpectError(Post("/v1/processes", body.dump()), 400, "invalid");
  }
  ExpectError(Post("/v1/processes",
                   Json({{"workflow", kEchoYaml}, {"idempotency_key", "k\n"}}).dump()),
              400, "invalid");
  auto created = Post("/v1/processes", Json({{"workflow", kEchoYaml}, {"id", "web:1"}}).dump());
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 201) << created->body;
  auto got = client_->Get("/v1/processes/web:1");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 200) << got->body;
  StopServer();
  EXPECT_EQ(Processes(), 2);
}

TEST_F(HostileInputTest, NegativeNumbersAreRefused) {
  ASSERT_EQ(Keel({"run", Workflow("echo.yaml", kEchoYaml), "--id", "p1"}).exit_code, 0);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"ls", "--limit", "-1"},
        {"ls", "--offset", "-1"},
        {"ls", "--limit=-5"},
        {"events", "p1", "--from", "-1"},
        {"tail", "--from", "-1"},
        {"replay", "p1", "--to", "-1"},
        {"wait", "p1", "--timeout", "-1"}}) {
    auto r = Keel(args);
    std::string line;
    for (const auto& a : args) line += a + " ";
    EXPECT_EQ(r.exit_code, 2) << line << r.out << r.err;
    EXPECT_NE(r.err.find("must be a number, 0 or more"), std::string::npos) << line << r.err;
  }
  // Zero and plain numbers still work.
  EXPECT_EQ(Keel({"ls", "--limit", "0"}).exit_code, 0);
  EXPECT_EQ(Keel({"events", "p1", "--from", "2"}).exit_code, 0);

  Serve();
  ExpectError(client_->Get("/v1/processes?limit=-1"), 400, "invalid");
  ExpectError(client_->Get("/v1/processes?offset=-1"), 400, "invalid");
  ExpectError(client_->Get("/v1/processes/p1/events?from=-1"), 400, "invalid");
  StopServer();
}

}  // namespace
}  // namespace keel
