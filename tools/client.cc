#include "tools/client.h"

#include <httplib.h>
#include <signal.h>

#include <fstream>
#include <sstream>

#include "base/data_dir.h"
#include "base/time.h"

namespace keel::cli {
namespace {

// The Status a node's error answer stands for.
Status FromHttp(int code, const std::string& body) {
  Json parsed = Json::parse(body, nullptr, false);
  std::string message = "HTTP " + std::to_string(code);
  if (!parsed.is_discarded() && parsed.is_object() && parsed.contains("error") &&
      parsed["error"].is_object() && parsed["error"].value("message", Json()).is_string()) {
    message = parsed["error"]["message"].get<std::string>();
  }
  switch (code) {
    case 404:
      return Status::NotFound(message);
    case 400:
    case 413:
    case 422:
      return Status::InvalidArgument(message);
    case 409:
      return Status::Refused(message);
    case 401:
      return Status::Unauthorized(message);
    case 501:
      return Status::NotSupported(message);
    case 503:
      return Status::Busy(message);
    default:
      return Status::Internal(message);
  }
}

}  // namespace

NodeClient::NodeClient(std::string host, int port, std::string token)
    : host_(std::move(host)),
      port_(port),
      address_(host_ + ":" + std::to_string(port)),
      token_(std::move(token)) {}

std::optional<NodeClient> NodeClient::Find(const std::string& data_dir, const std::string& token) {
  std::ifstream in(data_dir::NodeJson(data_dir));
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  Json info = Json::parse(text.str(), nullptr, false);
  if (info.is_discarded() || !info.is_object() || !info.value("pid", Json()).is_number_integer() ||
      !info.value("address", Json()).is_string()) {
    return std::nullopt;
  }
  auto pid = info["pid"].get<int64_t>();
  if (pid <= 0 || kill(static_cast<pid_t>(pid), 0) != 0) return std::nullopt;
  std::string address = info["address"];
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  int port = std::atoi(address.c_str() + colon + 1);
  if (port <= 0) return std::nullopt;
  // Without a token of its own, the caller uses the one the node published
  // for its owner (a node embedded by another CLI command).
  std::string use = token.empty() ? info.value("token", std::string()) : token;
  NodeClient client(address.substr(0, colon), port, use);
  auto health = client.Get("/v1/health");
  if (!health.ok() || health->value("pid", Json()) != Json(pid)) return std::nullopt;
  return client;
}

Result<Json> NodeClient::Get(const std::string& path) {
  httplib::Client http(host_, port_);
  http.set_connection_timeout(std::chrono::seconds(2));
  auto res = http.Get(path.c_str());
  if (!res)
    return Status::IOError("cannot reach the node at " + address_ + ": " +
                           httplib::to_string(res.error()));
  if (res->status / 100 != 2) return FromHttp(res->status, res->body);
  Json body = Json::parse(res->body, nullptr, false);
  if (body.is_discarded()) return Status::Internal("the node answered " + path + " with no JSON");
  return body;
}

Result<Json> NodeClient::Post(const std::string& path, const Json& body, int* http_status) {
  httplib::Client http(host_, port_);
  http.set_connection_timeout(std::chrono::seconds(2));
  http.set_read_timeout(std::chrono::seconds(60));
  httplib::Headers headers;
  if (!token_.empty()) headers.emplace("Authorization", "Bearer " + token_);
  auto res = http.Post(path.c_str(), headers, body.dump(), "application/json");
  if (!res && (res.error() == httplib::Error::Connection || res.error() == httplib::Error::Read)) {
    // The node went away since Find (a CLI node closing). httplib answers
    // every request whose handler ran, also while it stops (stop closes only
    // the listening socket, and a connection's next request is read only while
    // the server runs): a connection refused, or reset unanswered, carried a
    // request that no handler saw.
    return Status::Busy("the node at " + address_ +
                        " went away: " + httplib::to_string(res.error()));
  }
  if (!res)
    return Status::IOError("cannot reach the node at " + address_ + ": " +
                           httplib::to_string(res.error()));
  if (http_status) *http_status = res->status;
  if (res->status / 100 != 2) return FromHttp(res->status, res->body);
  Json parsed = Json::parse(res->body, nullptr, false);
  if (parsed.is_discarded()) return Status::Internal("the node answered " + path + " with no JSON");
  return parsed;
}

Status NodeClient::Follow(const std::string& id, const std::function<bool(const Json&)>& fn) {
  httplib::Client http(host_, port_);
  http.set_connection_timeout(std::chrono::seconds(2));
  http.set_read_timeout(std::chrono::seconds(60));  // > the node's keep-alive interval
  int code = 0;
  std::string buffer, error_body;
  bool stopped = false;
  auto res = http.Get(("/v1/processes/" + id + "/stream").c_str(),
                      [&](const httplib::Response& r) {
                        code = r.status;
                        return true;
                      },
                      [&](const char* data, size_t size) {
                        if (code != 200) {
                          error_body.append(data, size);
                          return true;
                        }
                        buffer.append(data, size);
                        for (auto end = buffer.find("\n\n"); end != std::string::npos;
                             end = buffer.find("\n\n")) {
                          std::string event = buffer.substr(0, end);
                          buffer.erase(0, end + 2);
                          if (event.rfind("data: ", 0) != 0) continue;  // a keep-alive comment
                          Json snapshot = Json::parse(event.substr(6), nullptr, false);
                          if (snapshot.is_discarded()) continue;
                          if (!fn(snapshot)) {
                            stopped = true;
                            return false;
                          }
                        }
                        return true;
                      });
  if (stopped) return Status::OK();
  if (code != 0 && code != 200) return FromHttp(code, error_body);
  if (!res)
    return Status::IOError("lost the node at " + address_ + ": " + httplib::to_string(res.error()));
  return Status::OK();
}

Result<Json> NodeClient::WaitRest(const std::string& id, std::chrono::milliseconds timeout,
                                  const std::function<void(const Json&)>& on_change,
                                  bool until_done) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  Json last;
  Status followed = Follow(id, [&](const Json& snapshot) {
    last = snapshot;
    if (on_change) on_change(snapshot);
    bool rested = until_done ? Settled(snapshot) : AtRest(snapshot);
    return !rested && std::chrono::steady_clock::now() < deadline;
  });
  if (!followed.ok()) return followed;
  if (last.is_null())
    return Status::IOError("the node at " + address_ + " ended the stream of " + id);
  if (AtRest(last)) return last;
  return Status::TimedOut("process '" + id + "' did not rest within the timeout");
}

Result<Json> RemoteNode::Start(const Workflow& /*workflow*/, const std::string& text,
                               const Json& inputs, const StartOptions& options) {
  // A live node runs the process at once: options.defer has no say.
  Json body = {{"workflow", text}, {"inputs", inputs}};
  if (!options.id.empty()) body["id"] = options.id;
  if (!options.idempotency_key.empty()) body["idempotency_key"] = options.idempotency_key;
  if (!options.queue.empty()) {
    body["queue"] = options.queue;
    body["priority"] = options.priority;
    if (!options.queue_key.empty()) body["queue_key"] = options.queue_key;
  }
  return client_.Post("/v1/processes", body);
}

Result<Json> RemoteNode::Control(const ControlRequest& r) {
  Json body = Json::object();
  if (!r.options.reason.empty()) body["reason"] = r.options.reason;
  if (!r.options.by.empty()) body["by"] = r.options.by;
  std::string path = "/v1/processes/" + r.id;
  if (r.action == "approve" || r.action == "reject" ||
      (r.action == "cancel" && !r.target.empty())) {
    path += "/tasks/" + r.target + "/" + r.action;
  } else if (r.action == "signal") {
    path += "/signals/" + r.target;
    body["payload"] = r.payload;
  } else {
    path += "/" + r.action;
  }
  return client_.Post(path, body);
}

Result<Json> RemoteNode::CreateSchedule(const ScheduleSpec& spec, const Workflow& /*workflow*/,
                                        const std::string& text, const ControlOptions& options) {
  Json body = {{"name", spec.name},
               {"workflow", text},
               {"inputs", spec.inputs},
               {"overlap", spec.overlap},
               {"catchup_window", FormatDurationMs(spec.catchup_window.count())},
               {"jitter", FormatDurationMs(spec.jitter.count())}};
  if (!spec.cron.empty()) body["cron"] = spec.cron;
  if (!spec.time_zone.empty()) body["time_zone"] = spec.time_zone;
  if (spec.every.count() > 0) body["every"] = FormatDurationMs(spec.every.count());
  if (!options.by.empty()) body["by"] = options.by;
  return client_.Post("/v1/schedules", body);
}

Result<Json> RemoteNode::ScheduleControl(const std::string& action, const std::string& name,
                                         const ControlOptions& options) {
  Json body = Json::object();
  if (!options.reason.empty()) body["reason"] = options.reason;
  if (!options.by.empty()) body["by"] = options.by;
  return client_.Post("/v1/schedules/" + name + "/" + action, body);
}

Result<Json> RemoteNode::Fork(const std::string& source, const ForkOptions& options) {
  // A live node runs the fork at once: options.defer has no say.
  Json body = {{"from", options.from}};
  if (options.visit != 0) body["visit"] = options.visit;
  if (options.inputs) body["inputs"] = *options.inputs;
  if (!options.id.empty()) body["id"] = options.id;
  if (!options.actor.empty()) body["by"] = options.actor;
  return client_.Post("/v1/processes/" + source + "/fork", body);
}

}  // namespace keel::cli
