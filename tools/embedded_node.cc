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

Result<Json> EmbeddedNode::Start(const Workflow& workflow, const std::string& /*text*/,
                                 const Json& inputs, const StartOptions& options) {
  return node_->Start(workflow, inputs, options);
}

Result<Json> EmbeddedNode::Control(const ControlRequest& r) {
  const ControlOptions& o = r.options;
  if (r.action == "pause") return node_->Pause(r.id, o);
  if (r.action == "resume") return node_->Resume(r.id, o);
  if (r.action == "cancel")
    return r.target.empty() ? node_->Cancel(r.id, o) : node_->CancelTask(r.id, r.target, o);
  if (r.action == "retry") return node_->Retry(r.id, o);
  if (r.action == "approve") return node_->Approve(r.id, r.target, o);
  if (r.action == "reject") return node_->Reject(r.id, r.target, o);
  if (r.action == "signal") return node_->Signal(r.id, r.target, r.payload, o);
  return Status::InvalidArgument("unknown control '" + r.action + "'");
}

Result<Json> EmbeddedNode::CreateSchedule(const ScheduleSpec& spec, const Workflow& workflow,
                                          const std::string& /*text*/,
                                          const ControlOptions& options) {
  return node_->CreateSchedule(spec, workflow, options);
}

Result<Json> EmbeddedNode::ScheduleControl(const std::string& action, const std::string& name,
                                           const ControlOptions& options) {
  if (action == "pause") return node_->PauseSchedule(name, options);
  if (action == "resume") return node_->ResumeSchedule(name, options);
  if (action == "delete") return node_->DeleteSchedule(name, options);
  if (action == "trigger") return node_->TriggerSchedule(name, options);
  return Status::InvalidArgument("unknown schedule action '" + action + "'");
}

Result<Json> EmbeddedNode::WaitRest(const std::string& id, std::chrono::milliseconds timeout,
                                    const std::function<void(const Json&)>& on_change,
                                    bool until_done) {
  std::function<void()> unsubscribe;
  if (on_change) {
    auto sub = node_->Subscribe(id, on_change);
    if (sub.ok()) unsubscribe = *sub;
  }
  auto rested = until_done ? node_->WaitUntilDone(id, timeout) : node_->Wait(id, timeout);
  if (unsubscribe) unsubscribe();
  return rested;
}

Status EmbeddedNode::Close() {
  http_->Stop();  // node.json goes before the node stops taking requests
  return node_->Close();
}

}  // namespace keel::cli
