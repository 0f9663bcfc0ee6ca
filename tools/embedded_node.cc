#include "tools/embedded_node.h"

namespace keel::cli {

Result<std::unique_ptr<EmbeddedNode>> EmbeddedNode::Open(const Options& options,
                                                         const HttpOptions& http) {
  auto node = Node::Open(options);
  if (!node.ok()) return node.status();
  auto server = HttpServer::Start(**node, http);
  if (!server.ok()) return server.status();
  return std::unique_ptr<EmbeddedNode>(new EmbeddedNode(std::move(*node), std::move(*server)));
}

EmbeddedNode::~EmbeddedNode() { Close().IgnoreError(); }

Status EmbeddedNode::Close() {
  http_->Stop();  // node.json goes before the node stops taking requests
  return node_->Close();
}

}  // namespace keel::cli
