#pragma once

// The HTTP API of INTERFACE.md over one node (cpp-httplib), on loopback by
// default, and the node's DIR/node.json that lets CLI commands find it.
// CAF-free: it works through the public keel::Node API and reads events from
// the node's store.

#include <memory>
#include <string>

#include "keel/node.h"
#include "keel/options.h"
#include "keel/status.h"
#include "store/event_store.h"

namespace keel::runtime {

class HttpServer {
 public:
  // Binds options.http_listen ("host:port", port 0 = any free port), starts
  // serving on background threads and writes options.data_dir/node.json
  // ({pid, address, started_at, token?}, owner-only). With no http_token and
  // no http_no_token, a random token guards mutating requests. `node` and
  // `store` must outlive the server
  // (Node::Close stops it first). InvalidArgument for a malformed address,
  // IOError when the address cannot be bound or node.json not written.
  static Result<std::unique_ptr<HttpServer>> Start(Node& node, store::EventStore& store,
                                                   const Options& options);

  // Stop().
  ~HttpServer();

  // Stops accepting, ends open event streams, waits for in-flight requests and
  // removes node.json. Idempotent.
  void Stop();

  // "127.0.0.1:PORT" as bound.
  const std::string& address() const;

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel::runtime
