#include "tools/node_api.h"

#include <fstream>
#include <sstream>
#include <thread>

#include "base/data_dir.h"
#include "tools/client.h"
#include "tools/embedded_node.h"

namespace keel::cli {
namespace {

// A node shutting down may still hold the dir's lock: retry this long.
constexpr auto kBusyRetry = std::chrono::seconds(10);
constexpr auto kBusyPause = std::chrono::milliseconds(100);

// DIR/node.json as text; empty when there is none.
std::string ReadNodeJson(const std::string& data_dir) {
  std::ifstream in(data_dir::NodeJson(data_dir));
  std::stringstream text;
  if (in) text << in.rdbuf();
  return text.str();
}

}  // namespace

Result<std::unique_ptr<NodeApi>> Connect(const Options& options, const HttpOptions& http, const std::string& token) {
  auto deadline = std::chrono::steady_clock::now() + kBusyRetry;
  std::string last_seen;
  for (;;) {
    // Other commands' nodes taking the dir in turn (each publishes, then
    // removes, node.json) are progress, not a stuck node: the 10 s count
    // from the last change.
    std::string seen = ReadNodeJson(options.data_dir);
    if (seen != last_seen) {
      last_seen = seen;
      deadline = std::chrono::steady_clock::now() + kBusyRetry;
    }
    if (auto live = NodeClient::Find(options.data_dir, token))
      return std::unique_ptr<NodeApi>(new RemoteNode(std::move(*live)));
    auto node = EmbeddedNode::Open(options, http);
    if (node.ok()) return std::unique_ptr<NodeApi>(std::move(*node));
    if (node.status().code() != Status::Code::kBusy ||
        std::chrono::steady_clock::now() > deadline) {
      return node.status();
    }
    std::this_thread::sleep_for(kBusyPause);
  }
}

}  // namespace keel::cli
