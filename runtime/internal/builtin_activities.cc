#include "runtime/internal/builtin_activities.h"

#include <httplib.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstring>

namespace keel::runtime {

ActivityResult Echo(const ActivityContext& ctx) {
  if (ctx.input.is_object() && ctx.input.contains("text"))
    return ActivityResult::Ok(ctx.input["text"]);
  return ActivityResult::Ok(ctx.input);
}

ActivityResult FailActivity(const ActivityContext& ctx) {
  std::string message = "failed";
  bool retryable = false;
  if (ctx.input.is_object()) {
    if (ctx.input.contains("message")) {
      const Json& m = ctx.input["message"];
      message = m.is_string() ? m.get<std::string>() : m.dump();
    }
    if (ctx.input.contains("retryable") && ctx.input["retryable"].is_boolean()) {
      retryable = ctx.input["retryable"].get<bool>();
    }
  }
  return ActivityResult::Fail(message, retryable);
}

namespace {

std::string AsText(const Json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

}  // namespace

Result<ExecCommand> ParseExec(const Json& in, ExecPolicy policy,
                              const std::vector<std::string>& allow) {
  if (!in.is_object() || !in.contains("argv") || !in["argv"].is_array() || in["argv"].empty()) {
    return Status::InvalidArgument("exec: `argv` must be a non-empty list");
  }
  ExecCommand command;
  for (const auto& a : in["argv"]) command.argv.push_back(AsText(a));
  const std::string& program = command.argv[0];
  if (policy == ExecPolicy::kDeny) {
    return Status::Refused("exec: denied by the node's exec policy (deny)");
  }
  if (policy == ExecPolicy::kAllowlist &&
      std::find(allow.begin(), allow.end(), program) == allow.end()) {
    return Status::Refused("exec: '" + program + "' is not in the node's exec allowlist");
  }
  if (in.contains("env") && in["env"].is_object()) {
    for (const auto& [k, v] : in["env"].items()) command.env.push_back(k + "=" + AsText(v));
  }
  if (in.contains("cwd")) command.cwd = AsText(in["cwd"]);
  if (in.contains("stdin")) command.stdin_text = AsText(in["stdin"]);
  if (in.contains("timeout") && in["timeout"].is_number())
    command.timeout_ms = in["timeout"].get<int64_t>();
  return command;
}

ActivityResult ExecExited(const ExecCommand& command, int status, std::string out,
                          std::string err) {
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  Json output = {{"exit_code", code}, {"stdout", out}, {"stderr", err}};
  Json parsed = Json::parse(out, nullptr, false);
  if (!parsed.is_discarded()) output["json"] = parsed;
  if (code != 0) {
    std::string first = err.substr(0, err.find('\n'));
    return ActivityResult::Fail("exec: " + command.argv[0] + " exited with " +
                                    std::to_string(code) + (first.empty() ? "" : ": " + first),
                                true, output);
  }
  return ActivityResult::Ok(output);
}

ActivityResult Http(const ActivityContext& ctx) {
  const Json& in = ctx.input;
  if (!in.is_object() || !in.contains("url") || !in["url"].is_string()) {
    return ActivityResult::Fail("http: `url` is required", false);
  }
  std::string url = in["url"].get<std::string>();
  std::string method = in.contains("method") ? AsText(in["method"]) : "GET";
  std::transform(method.begin(), method.end(), method.begin(), ::toupper);
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos)
    return ActivityResult::Fail("http: bad url '" + url + "'", false);
  size_t path_start = url.find('/', scheme_end + 3);
  std::string origin = url.substr(0, path_start);
  std::string path = path_start == std::string::npos ? "/" : url.substr(path_start);
  httplib::Client client(origin);
  int64_t timeout_ms = ctx.timeout_ms > 0 ? ctx.timeout_ms : 30000;
  client.set_connection_timeout(std::chrono::milliseconds(timeout_ms));
  client.set_read_timeout(std::chrono::milliseconds(timeout_ms));
  httplib::Headers headers;
  std::string content_type = "application/json";
  if (in.contains("headers") && in["headers"].is_object()) {
    for (const auto& [k, v] : in["headers"].items()) {
      if (strcasecmp(k.c_str(), "content-type") == 0)
        content_type = AsText(v);
      else
        headers.emplace(k, AsText(v));
    }
  }
  std::string body = in.contains("body") ? AsText(in["body"]) : "";
  httplib::Result res =
      method == "GET"      ? client.Get(path.c_str(), headers)
      : method == "DELETE" ? client.Delete(path.c_str(), headers, body, content_type.c_str())
      : method == "PUT"    ? client.Put(path.c_str(), headers, body, content_type.c_str())
      : method == "PATCH"  ? client.Patch(path.c_str(), headers, body, content_type.c_str())
                           : client.Post(path.c_str(), headers, body, content_type.c_str());
  if (!res)
    return ActivityResult::Fail(
        "http: " + method + " " + url + ": " + httplib::to_string(res.error()), true);
  Json hdrs = Json::object();
  for (const auto& [k, v] : res->headers) hdrs[k] = v;
  Json output = {{"status", res->status}, {"headers", hdrs}, {"body", res->body}};
  Json parsed = Json::parse(res->body, nullptr, false);
  if (!parsed.is_discarded()) output["json"] = parsed;
  if (res->status >= 400) {
    return ActivityResult::Fail(
        "http: " + method + " " + url + " returned " + std::to_string(res->status),
        res->status >= 500, output);
  }
  return ActivityResult::Ok(output);
}

}  // namespace keel::runtime
