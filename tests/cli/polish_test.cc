// The CLI as a person meets it (issue 14, CLI polish): --version, completion
// scripts, unknown commands, ls filters, a data dir that does not exist, JSON
// refusals, event lines that fit a terminal, what `show` tells of signals,
// and `run`'s live display. Each through the real binary.

#include <time.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "tests/cli/cli_fixture.h"

namespace keel {
namespace {

using Json = nlohmann::json;

class PolishTest : public testing::KeelCliTest {
 protected:
  // `keel args...` without the fixture's --data.
  testing::CommandResult Bare(std::vector<std::string> args) {
    args.insert(args.begin(), testing::KeelBinary());
    return testing::Run(args);
  }

  // The error object a --json refusal prints on stdout.
  Json JsonError(const testing::CommandResult& r) {
    Json out = Parse(r.out);
    EXPECT_TRUE(out.contains("error")) << r.out;
    return out.value("error", Json::object());
  }

  // Number of UTF-8 characters (terminal columns for this output).
  static size_t Columns(const std::string& line) {
    size_t n = 0;
    for (unsigned char ch : line) n += (ch & 0xC0) != 0x80;
    return n;
  }

  // RFC 3339 with nanoseconds, UTC.
  static std::string Rfc3339(int64_t ns) {
    time_t seconds = ns / 1000000000;
    struct tm t {};
    gmtime_r(&seconds, &t);
    char buf[64];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
    char fraction[16];
    std::snprintf(fraction, sizeof fraction, ".%09lld", static_cast<long long>(ns % 1000000000));
    return std::string(buf) + fraction + "Z";
  }

  std::vector<std::string> LsIds(std::vector<std::string> args) {
    args.insert(args.begin(), "ls");
    args.push_back("--json");
    auto r = Keel(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> ids;
    Json list = Parse(r.out);
    for (const auto& p : list["processes"]) ids.push_back(p["id"]);
    return ids;
  }
};

TEST_F(PolishTest, VersionFlagAndCommandPrintTheVersion) {
  auto flag = Bare({"--version"});
  EXPECT_EQ(flag.exit_code, 0) << flag.err;
  EXPECT_TRUE(std::regex_search(flag.out, std::regex(R"(^keel \d+\.\d+\.\d+)"))) << flag.out;
  auto command = Bare({"version"});
  EXPECT_EQ(command.exit_code, 0) << command.err;
  EXPECT_EQ(command.out.rfind(flag.out.substr(0, flag.out.find('\n')), 0), 0u) << command.out;
  EXPECT_NE(command.out.find("store format"), std::string::npos) << command.out;
  auto json = Bare({"version", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  Json v = Parse(json.out);
  EXPECT_TRUE(v["version"].is_string());
  EXPECT_TRUE(v["store_format"].is_number_integer());
}

TEST_F(PolishTest, CompletionScriptsNameEveryCommandAndCompleteInBash) {
  const std::vector<std::string> commands = {
      "run",  "wait",   "serve",  "show",    "events", "tail",   "ls",     "replay",   "verify",
      "export", "diff", "pause",  "resume",  "cancel", "retry",  "approve", "reject", "signal",
      "version", "completion"};
  auto bash = Bare({"completion", "bash"});
  ASSERT_EQ(bash.exit_code, 0) << bash.err;
  std::string script = dir_ / "keel.bash";
  testing::WriteFile(script, bash.out);
  auto syntax = testing::Run({"bash", "-n", script});
  EXPECT_EQ(syntax.exit_code, 0) << syntax.err;
  auto zsh = Bare({"completion", "zsh"});
  ASSERT_EQ(zsh.exit_code, 0) << zsh.err;
  EXPECT_EQ(zsh.out.rfind("#compdef keel", 0), 0u) << zsh.out;
  for (const auto& cmd : commands) {
    EXPECT_NE(bash.out.find(" " + cmd + ")"), std::string::npos) << cmd;
    EXPECT_NE(zsh.out.find("'" + cmd + ":"), std::string::npos) << cmd;
  }
  // The function completes commands, a command's options and status names.
  auto complete = [&](const std::string& words, int cword) {
    auto r = testing::Run({"bash", "-c",
                           "source '" + script + "'; COMP_WORDS=(" + words +
                               "); COMP_CWORD=" + std::to_string(cword) +
                               "; _keel; echo \"${COMPREPLY[*]}\""});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  };
  EXPECT_EQ(complete("keel l", 1), "ls\n");
  EXPECT_NE(complete("keel ls --sin", 2).find("--since"), std::string::npos);
  EXPECT_EQ(complete("keel ls --status compl", 3), "completed\n");
  EXPECT_EQ(Bare({"completion", "fish"}).exit_code, 2);
}

TEST_F(PolishTest, AnUnknownCommandIsNamedWithTheNearestOne) {
  auto list = Bare({"list"});
  EXPECT_EQ(list.exit_code, 2);
  EXPECT_NE(list.err.find("unknown command 'list'"), std::string::npos) << list.err;
  EXPECT_NE(list.err.find("did you mean `ls`?"), std::string::npos) << list.err;
  auto typo = Bare({"shwo", "p_1"});
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_NE(typo.err.find("did you mean `show`?"), std::string::npos) << typo.err;
  auto far = Bare({"xyzzy"});
  EXPECT_EQ(far.exit_code, 2);
  EXPECT_EQ(far.err.find("did you mean"), std::string::npos) << far.err;
  EXPECT_NE(far.err.find("keel --help"), std::string::npos) << far.err;
  auto json = Bare({"list", "--json"});
  EXPECT_EQ(json.exit_code, 2);
  EXPECT_EQ(JsonError(json)["code"], "invalid");
}

TEST_F(PolishTest, ReadCommandsOnAMissingDataDirExitTwoAndCreateNothing) {
  const std::vector<std::vector<std::string>> reads = {
      {"ls"},          {"show", "p_1"},   {"events", "p_1"}, {"tail"},      {"replay", "p_1"},
      {"verify"},      {"verify", "p_1"}, {"export", "p_1"}, {"diff", "a", "b"},
      {"wait", "p_1"}, {"cancel", "p_1"}};
  for (const auto& args : reads) {
    auto r = Keel(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << ": " << r.out << r.err;
    EXPECT_NE(r.err.find("data dir '" + data() + "' does not exist"), std::string::npos)
        << args[0] << ": " << r.err;
    EXPECT_EQ(r.out, "") << args[0];
    EXPECT_FALSE(std::filesystem::exists(data())) << args[0] << " created the data dir";
  }
  testing::WriteFile(data(), "a file");
  auto file = Keel({"ls"});
  EXPECT_EQ(file.exit_code, 2);
  EXPECT_NE(file.err.find("is not a directory"), std::string::npos) << file.err;
}

TEST_F(PolishTest, RefusalsWithJsonPrintAnErrorObjectOnStdout) {
  auto missing = Keel({"ls", "--json"});
  EXPECT_EQ(missing.exit_code, 2);
  Json error = JsonError(missing);
  EXPECT_EQ(error["code"], "invalid");
  EXPECT_NE(error["message"].get<std::string>().find("does not exist"), std::string::npos);
  EXPECT_NE(missing.err.find("keel: "), std::string::npos) << missing.err;

  std::string id = RunJson({Workflow("a.yaml", "name: a\nsteps:\n"
                                               "  - {id: review, approval: {prompt: 'ok?'}}\n")},
                           4)["id"];
  auto unknown = Keel({"show", "p_nope", "--json"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_EQ(JsonError(unknown)["code"], "not_found");
  EXPECT_NE(unknown.err.find("p_nope"), std::string::npos) << unknown.err;

  auto step = Keel({"approve", id, "nosuchstep", "--json"});
  EXPECT_EQ(step.exit_code, 2);
  Json refused = JsonError(step);
  EXPECT_TRUE(refused["code"].is_string());
  EXPECT_NE(refused["message"].get<std::string>().find("nosuchstep"), std::string::npos)
      << step.out;

  auto status = Keel({"ls", "--status", "sleepy", "--json"});
  EXPECT_EQ(status.exit_code, 2);
  EXPECT_EQ(JsonError(status)["code"], "invalid");
  auto usage = Keel({"show", "--json"});  // no ID
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_EQ(JsonError(usage)["code"], "invalid");
  EXPECT_NE(usage.err.find("ID"), std::string::npos) << usage.err;
  // Without --json, stdout stays empty.
  EXPECT_EQ(Keel({"show", "p_nope"}).out, "");
}

TEST_F(PolishTest, LsNamesTheValidStatusesAndFiltersByTimeAndIdempotencyKey) {
  auto bad = Keel({"ls", "--status", "sleepy"});
  EXPECT_EQ(bad.exit_code, 2);
  for (const char* status : {"pending", "running", "waiting", "completed", "failed", "cancelled"})
    EXPECT_NE(bad.err.find(status), std::string::npos) << bad.err;

  std::string wf = Workflow("e.yaml", "name: e\nsteps:\n  - {id: a, activity: echo}\n");
  Json first = RunJson({wf, "--idempotency-key", "k1"});
  Json second = RunJson({wf, "--idempotency-key", "k2"});
  std::string a = first["id"], b = second["id"];
  int64_t a_ns = first["created_ns"], b_ns = second["created_ns"];
  ASSERT_LT(a_ns, b_ns);

  EXPECT_EQ(LsIds({"--idempotency-key", "k1"}), std::vector<std::string>{a});
  EXPECT_EQ(LsIds({"--idempotency-key", "k2", "--status", "completed"}),
            std::vector<std::string>{b});
  EXPECT_TRUE(LsIds({"--idempotency-key", "k2", "--status", "failed"}).empty());
  EXPECT_TRUE(LsIds({"--idempotency-key", "nope"}).empty());
  EXPECT_EQ(LsIds({"--since", Rfc3339(b_ns)}), std::vector<std::string>{b});
  EXPECT_EQ(LsIds({"--until", Rfc3339(a_ns)}), std::vector<std::string>{a});
  EXPECT_EQ(LsIds({"--since", Rfc3339(a_ns), "--until", Rfc3339(b_ns - 1)}),
            std::vector<std::string>{a});
  EXPECT_EQ(LsIds({"--since", "1h"}), (std::vector<std::string>{b, a}));
  EXPECT_TRUE(LsIds({"--until", "1h"}).empty());
  auto page = Parse(Keel({"ls", "--since", "1d", "--limit", "1", "--json"}).out);
  EXPECT_EQ(page["total"], 2);
  EXPECT_EQ(page["has_more"], true);

  auto nonsense = Keel({"ls", "--since", "yesterday"});
  EXPECT_EQ(nonsense.exit_code, 2);
  EXPECT_NE(nonsense.err.find("--since"), std::string::npos) << nonsense.err;
}

TEST_F(PolishTest, EventLinesFitAHundredColumnsUnlessWide) {
  std::string long_text(300, 'x');
  std::string id = RunJson({Workflow("long.yaml", "name: long\nsteps:\n"
                                                  "  - {id: a, activity: echo, with: {text: " +
                                                      long_text + "}}\n")})["id"];
  auto narrow = Keel({"events", id});
  ASSERT_EQ(narrow.exit_code, 0) << narrow.err;
  std::istringstream lines(narrow.out);
  std::string line;
  bool cut = false;
  size_t count = 0;
  while (std::getline(lines, line)) {
    ++count;
    EXPECT_LE(Columns(line), 100u) << line;
    EXPECT_NE(line.rfind(id, 0), 0u) << "the stream id leads: " << line;
    if (line.find("\u2026") != std::string::npos) cut = true;
  }
  EXPECT_GE(count, 4u);
  EXPECT_TRUE(cut) << narrow.out;
  EXPECT_EQ(narrow.out.find(long_text), std::string::npos);
  // The first line: seq, time, type.
  EXPECT_TRUE(std::regex_search(narrow.out, std::regex(R"(^ +1  \d{4}-\d\d-\d\dT\S+  ProcessCreated)")))
      << narrow.out;

  auto wide = Keel({"events", id, "--wide"});
  ASSERT_EQ(wide.exit_code, 0) << wide.err;
  EXPECT_NE(wide.out.find(long_text), std::string::npos) << wide.out;
  auto tail = Keel({"tail"});
  ASSERT_EQ(tail.exit_code, 0) << tail.err;
  EXPECT_NE(tail.out.find(id), std::string::npos) << "tail names the stream: " << tail.out;
}

TEST_F(PolishTest, ShowListsSignalTimeoutsAndUnconsumedSignals) {
  std::string id = RunJson({Workflow("s.yaml", "name: s\nsteps:\n"
                                               "  - id: pay\n"
                                               "    wait_signal: {topic: paid, timeout: 1h}\n")},
                           4)["id"];
  auto signalled = Keel({"signal", id, "other", "--payload", R"({"n": 7})"});
  ASSERT_EQ(signalled.exit_code, 0) << signalled.err;
  auto show = Keel({"show", id});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("signal wait of pay times out at 20"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("signal other received"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find(R"({"n":7})"), std::string::npos) << show.out;
}

// Nested steps end in log order: a parallel step's children before it.
const char kNestedYaml[] = R"(name: nest
steps:
  - {id: reserve, activity: echo, with: {text: r}}
  - id: pack
    parallel:
      box: [{id: fold, activity: echo, with: {text: f}}]
  - {id: ship, activity: echo, with: {text: s}}
)";

TEST_F(PolishTest, RunShowsEventsInLogOrderWithDurationsAndNoColourInAPipe) {
  auto r = Keel({"run", Workflow("nest.yaml", kNestedYaml)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find('\033'), std::string::npos) << "colour in a pipe: " << r.err;
  std::vector<std::string> completed;  // entities in the order their completion shows
  std::istringstream lines(r.err);
  std::string line;
  std::regex done(R"(^  (\S+)  completed \(\d+(\.\d)? m?s\)$)");
  while (std::getline(lines, line)) {
    std::smatch m;
    if (std::regex_match(line, m, done)) completed.push_back(m[1]);
  }
  ASSERT_GE(completed.size(), 4u) << r.err;
  // The first completion of `name`, or of a task under it with a '/' ending `name`.
  auto at = [&](const std::string& name) {
    for (size_t i = 0; i < completed.size(); ++i) {
      if (name.back() == '/' ? completed[i].rfind(name, 0) == 0 : completed[i] == name) return i;
    }
    ADD_FAILURE() << name << " never completed: " << r.err;
    return completed.size();
  };
  EXPECT_LT(at("reserve"), at("pack/"));
  EXPECT_LT(at("pack/"), at("pack"))
      << "the parallel step completed before its child: " << r.err;
  EXPECT_EQ(completed.back(), "ship") << r.err;
  // The same through a terminal (script gives it a pty): coloured.
  auto tty = testing::Run({"script", "-qec",
                           testing::KeelBinary() + " run " + Workflow("n2.yaml", kNestedYaml) +
                               " --data " + data(),
                           "/dev/null"},
                          "", {"TERM=xterm", "NO_COLOR="});
  if (tty.exit_code == 0) {
    EXPECT_NE(tty.out.find("\033[32mcompleted"), std::string::npos) << tty.out;
  }
}

}  // namespace
}  // namespace keel
