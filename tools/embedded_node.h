#pragma once

// A node a CLI command opens on the data dir itself (no live node had it),
// serving the HTTP API so that its DIR/node.json sends other commands to it
// meanwhile, instead of letting them wait for the dir's lock.

#include <memory>
#include <string>

#include "keel/http.h"
#include "keel/node.h"

namespace keel::cli {

class EmbeddedNode {
 public:
  // Opens the node (resuming its processes as options say), then serves it.
  static Result<std::unique_ptr<EmbeddedNode>> Open(const Options& options,
                                                    const HttpOptions& http);
  // Close().
  ~EmbeddedNode();

  // The node itself, for the commands' requests.
  Node& node() { return *node_; }
  // "127.0.0.1:PORT" as bound.
  const std::string& address() const { return http_->address(); }

  // Stops serving and removes node.json while the processes go on: the
  // first step of a graceful stop (no new work is taken). Idempotent.
  void StopServing() { http_->Stop(); }
  // Stops serving, then closes the node. Idempotent; any thread (a stop
  // signal's).
  Status Close();

 private:
  EmbeddedNode(std::unique_ptr<Node> node, std::unique_ptr<HttpServer> http)
      : node_(std::move(node)), http_(std::move(http)) {}
  std::unique_ptr<Node> node_;
  std::unique_ptr<HttpServer> http_;
};

}  // namespace keel::cli
