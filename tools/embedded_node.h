#pragma once

// A node a CLI command opens on the data dir itself (no live node had it),
// serving the HTTP API so that its DIR/node.json sends other commands to it
// meanwhile, instead of letting them wait for the dir's lock.

#include <memory>
#include <string>

#include "keel/http.h"
#include "keel/node.h"
#include "tools/node_api.h"

namespace keel::cli {

class EmbeddedNode final : public NodeApi {
 public:
  // Opens the node (resuming its processes as options say), then serves it.
  static Result<std::unique_ptr<EmbeddedNode>> Open(const Options& options,
                                                    const HttpOptions& http);
  // Close().
  ~EmbeddedNode() override;

  // The node itself (serve's own queries).
  Node& node() { return *node_; }

  const std::string& address() const override { return http_->address(); }
  Result<Json> Start(const Workflow& workflow, const std::string& text, const Json& inputs,
                     const StartOptions& options) override;
  Result<Json> Control(const ControlRequest& request) override;
  Result<Json> CreateSchedule(const ScheduleSpec& spec, const Workflow& workflow,
                              const std::string& text, const ControlOptions& options) override;
  Result<Json> ScheduleControl(const std::string& action, const std::string& name,
                               const ControlOptions& options) override;
  Result<Json> WaitRest(const std::string& id, std::chrono::milliseconds timeout,
                        const std::function<void(const Json&)>& on_change,
                        bool until_done) override;
  Result<Json> Fork(const std::string& source, const ForkOptions& options) override {
    return node_->Fork(source, options);
  }
  EmbeddedNode* embedded() override { return this; }

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
