#pragma once

// A live node of a data dir, found through DIR/node.json and spoken to over
// its HTTP API (INTERFACE.md).

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "keel/node.h"
#include "tools/node_api.h"

namespace keel::cli {

// A client of a live node's HTTP API (INTERFACE.md). Errors come back as the
// Status the node reported (404 NotFound, 400/413/422 InvalidArgument, 409
// Refused, 401 Unauthorized, 501 NotSupported, 503 Busy); Busy as well when
// a POST could not connect (nothing was sent), IOError when the node cannot
// be reached or the outcome of a request is unknown.
class NodeClient {
 public:
  // The node that DIR/node.json names, if its process lives and it answers
  // /v1/health as that process; nullopt otherwise (no file, stale file).
  static std::optional<NodeClient> Find(const std::string& data_dir, const std::string& token);

  const std::string& address() const { return address_; }

  // One request; the JSON body of a 2xx answer. `http_status` gets the code.
  Result<Json> Get(const std::string& path);
  Result<Json> Post(const std::string& path, const Json& body, int* http_status = nullptr);

  // Follows GET /v1/processes/{id}/stream, calling `fn` with each snapshot
  // until `fn` returns false or the node ends the stream.
  Status Follow(const std::string& id, const std::function<bool(const Json&)>& fn);

  // The snapshot once the process rests (completed, failed, cancelled,
  // waiting, paused), or TimedOut. `on_change` sees every snapshot on the way.
  // `until_done`: rests on timers alone are passed by (keel::Settled).
  Result<Json> WaitRest(const std::string& id, std::chrono::milliseconds timeout,
                        const std::function<void(const Json&)>& on_change = nullptr,
                        bool until_done = false);

 private:
  NodeClient(std::string host, int port, std::string token);
  std::string host_;
  int port_ = 0;
  std::string address_;
  std::string token_;
};

// A live node of the data dir, spoken to over its HTTP API.
class RemoteNode final : public NodeApi {
 public:
  explicit RemoteNode(NodeClient client) : client_(std::move(client)) {}

  const std::string& address() const override { return client_.address(); }
  Result<Json> Start(const Workflow& workflow, const std::string& text, const Json& inputs,
                     const StartOptions& options) override;
  Result<Json> Control(const ControlRequest& request) override;
  Result<Json> CreateSchedule(const ScheduleSpec& spec, const Workflow& workflow,
                              const std::string& text, const ControlOptions& options) override;
  Result<Json> ScheduleControl(const std::string& action, const std::string& name,
                               const ControlOptions& options) override;
  Result<Json> WaitRest(const std::string& id, std::chrono::milliseconds timeout,
                        const std::function<void(const Json&)>& on_change,
                        bool until_done) override {
    return client_.WaitRest(id, timeout, on_change, until_done);
  }
  Result<Json> Fork(const std::string& source, const ForkOptions& options) override;

 private:
  NodeClient client_;
};

}  // namespace keel::cli
