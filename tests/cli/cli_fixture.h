#pragma once

// A fixture for tests of the real `keel` binary: a temp dir holding the data
// dir and workflow files, and helpers to run keel, start it in the
// background and read its JSON.

#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/test_util.h"

namespace keel::testing {

class KeelCliTest : public ::testing::Test {
 protected:
  using Json = nlohmann::json;

  std::string data() const { return dir_ / "data"; }

  // Runs `keel args... --data DIR` to completion.
  CommandResult Keel(std::vector<std::string> args, const std::vector<std::string>& env = {}) {
    args.insert(args.begin(), KeelBinary());
    args.push_back("--data");
    args.push_back(data());
    return ::keel::testing::Run(args, "", env);
  }

  // Starts `keel args... --data DIR` in the background; its output goes to
  // DIR/<name>.out and DIR/<name>.err.
  std::unique_ptr<Child> Spawn(const std::string& name, std::vector<std::string> args) {
    args.insert(args.begin(), KeelBinary());
    args.push_back("--data");
    args.push_back(data());
    return std::make_unique<Child>(args, dir_ / (name + ".out"), dir_ / (name + ".err"));
  }
  // The address ("host:port") that DIR/node.json names once a node wrote it;
  // empty if none did in time, or once `server` (if given) exited first.
  std::string AwaitNodeAddress(Child* server = nullptr) {
    std::string address;
    WaitUntil([&] {
      Json info = Json::parse(ReadFile(data() + "/node.json"), nullptr, false);
      if (!info.is_discarded() && info.contains("address")) {
        address = info["address"];
        return true;
      }
      return server != nullptr && server->Exited();
    });
    return address;
  }
  std::string Out(const std::string& name) { return ReadFile(dir_ / (name + ".out")); }
  std::string Err(const std::string& name) { return ReadFile(dir_ / (name + ".err")); }

  std::string Workflow(const std::string& name, const std::string& yaml) {
    std::string path = dir_ / name;
    WriteFile(path, yaml);
    return path;
  }

  Json Parse(const std::string& text) {
    Json j = Json::parse(text, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << text;
    return j;
  }

  // Each non-empty line of `text` as JSON.
  std::vector<Json> Lines(const std::string& text) {
    std::vector<Json> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) out.push_back(Parse(line));
    }
    return out;
  }

  // Runs a workflow to rest and returns its snapshot.
  Json RunJson(const std::vector<std::string>& args, int expected_exit = 0) {
    std::vector<std::string> full = {"run"};
    full.insert(full.end(), args.begin(), args.end());
    full.push_back("--json");
    auto r = Keel(full);
    EXPECT_EQ(r.exit_code, expected_exit) << r.err;
    return Parse(r.out);
  }

  TempDir dir_;
};

// Two echo steps, an output.
inline const char kHelloYaml[] = R"(name: hello
inputs: {who: {required: true}}
steps:
  - {id: greet, activity: echo, with: {text: "hello ${inputs.who}"}, save_as: g}
  - {id: twice, activity: echo, with: {n: 2}}
outputs: {greeting: "vars.g"}
)";

// A workflow whose `gate` step waits until the file given as input `gate`
// exists, so a test decides when it moves on without sleeping.
inline const char kGatedYaml[] = R"(name: gated
inputs: {gate: {required: true}}
steps:
  - id: gate
    activity: exec
    with: {argv: [sh, -c, "while [ ! -f '${inputs.gate}' ]; do sleep 0.02; done"]}
  - {id: after, activity: echo, with: {text: done}}
)";

}  // namespace keel::testing
