#pragma once

// The HTTP API of INTERFACE.md over one keel::Node (cpp-httplib), and the
// DIR/node.json through which CLI commands find a live node. A layer above
// the Node: it uses only the Node's public API, so a program that embeds a
// node serves it the way `keel serve` does.

#include <cstddef>
#include <memory>
#include <string>

#include "keel/node.h"
#include "keel/status.h"

namespace keel {

// Options of HttpServer::Start.
struct HttpOptions {
  // "host:port" (port 0 = any free port); loopback unless the caller says.
  std::string listen = "127.0.0.1:0";
  // Mutating requests need "Authorization: Bearer <token>". Empty: the
  // server makes a random one, kept in DIR/node.json (readable by its owner
  // only), unless no_token.
  std::string token;
  // With no token, mutating requests need none (`keel serve` without
  // --token on loopback). Anyone who can reach the address can then start
  // work on the node.
  bool no_token = false;
  // At most this many open SSE streams; more are refused (503).
  size_t max_streams = 1024;
  // Requests with a larger body are refused (413) before they are read.
  size_t max_body = 1 << 20;
};

class HttpServer {
 public:
  // Binds options.listen, starts serving on background threads and writes
  // the node's DIR/node.json ({pid, address, started_at, token?}, owner-only).
  // `node` must outlive the server. InvalidArgument for a malformed address,
  // IOError when the address cannot be bound or node.json not written.
  static Result<std::unique_ptr<HttpServer>> Start(Node& node, const HttpOptions& options);

  // Stop().
  ~HttpServer();

  // Stops accepting, ends open event streams, waits for in-flight requests and
  // removes node.json: the first step of a graceful shutdown, while the
  // node's processes go on. Idempotent.
  void Stop();

  // "127.0.0.1:PORT" as bound.
  const std::string& address() const;

  // The token mutating requests need (empty with no_token).
  const std::string& token() const;

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel
