#include "runtime/internal/builtin_activities.h"

#include <fcntl.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
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

// Stops the child's whole process group: SIGTERM, then SIGKILL after `grace`.
void StopGroup(pid_t pid, std::chrono::milliseconds grace) {
  kill(-pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  int status;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      kill(-pid, SIGKILL);  // stragglers of the group
      return;
    }
    usleep(10000);
  }
  kill(-pid, SIGKILL);
  waitpid(pid, &status, 0);
}

}  // namespace

ActivityResult Exec(const ActivityContext& ctx, ExecPolicy policy,
                    const std::vector<std::string>& allow) {
  const Json& in = ctx.input;
  if (!in.is_object() || !in.contains("argv") || !in["argv"].is_array() || in["argv"].empty()) {
    return ActivityResult::Fail("exec: `argv` must be a non-empty list", false);
  }
  std::vector<std::string> argv;
  for (const auto& a : in["argv"]) argv.push_back(AsText(a));
  if (policy == ExecPolicy::kDeny) {
    return ActivityResult::Fail("exec: denied by the node's exec policy (deny)", false);
  }
  if (policy == ExecPolicy::kAllowlist &&
      std::find(allow.begin(), allow.end(), argv[0]) == allow.end()) {
    return ActivityResult::Fail("exec: '" + argv[0] + "' is not in the node's exec allowlist",
                                false);
  }
  std::vector<std::string> env;
  if (in.contains("env") && in["env"].is_object()) {
    for (const auto& [k, v] : in["env"].items()) env.push_back(k + "=" + AsText(v));
  }
  std::string cwd = in.contains("cwd") ? AsText(in["cwd"]) : "";
  std::string stdin_text = in.contains("stdin") ? AsText(in["stdin"]) : "";
  int64_t timeout_ms = 0;
  if (in.contains("timeout") && in["timeout"].is_number())
    timeout_ms = in["timeout"].get<int64_t>();

  int pin[2], pout[2], perr[2];
  if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC)) {
    return ActivityResult::Fail(std::string("exec: pipe: ") + strerror(errno));
  }
  pid_t pid = fork();
  if (pid < 0) return ActivityResult::Fail(std::string("exec: fork: ") + strerror(errno));
  if (pid == 0) {
    setpgid(0, 0);  // its own group, so cancellation reaches its children too
    dup2(pin[0], 0);
    dup2(pout[1], 1);
    dup2(perr[1], 2);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) {
      dprintf(2, "exec: cannot chdir to %s: %s\n", cwd.c_str(), strerror(errno));
      _exit(127);
    }
    for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());
    dprintf(2, "exec: %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  setpgid(pid, pid);
  close(pin[0]);
  close(pout[1]);
  close(perr[1]);
  fcntl(pin[1], F_SETFL, O_NONBLOCK);
  size_t written = 0;
  bool in_open = true;
  if (stdin_text.empty()) {
    close(pin[1]);
    in_open = false;
  }
  std::string out, err;
  bool out_open = true, err_open = true;
  auto start = std::chrono::steady_clock::now();
  std::string stopped;
  char buf[65536];
  while (out_open || err_open) {
    if (ctx.cancel.cancelled()) stopped = "cancelled";
    if (timeout_ms > 0 &&
        std::chrono::steady_clock::now() - start > std::chrono::milliseconds(timeout_ms)) {
      stopped = "timed out after " + std::to_string(timeout_ms) + "ms";
    }
    if (!stopped.empty()) break;
    std::vector<pollfd> fds;
    if (out_open) fds.push_back({pout[0], POLLIN, 0});
    if (err_open) fds.push_back({perr[0], POLLIN, 0});
    if (in_open) fds.push_back({pin[1], POLLOUT, 0});
    int n = poll(fds.data(), fds.size(), 50);
    if (n <= 0) continue;
    for (const auto& p : fds) {
      if (!p.revents) continue;
      if (p.fd == pin[1]) {
        ssize_t w = write(pin[1], stdin_text.data() + written, stdin_text.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 || written == stdin_text.size()) {
          close(pin[1]);
          in_open = false;
        }
        continue;
      }
      ssize_t r = read(p.fd, buf, sizeof buf);
      if (r <= 0) {
        close(p.fd);
        (p.fd == pout[0] ? out_open : err_open) = false;
      } else {
        (p.fd == pout[0] ? out : err).append(buf, static_cast<size_t>(r));
      }
    }
  }
  if (in_open) close(pin[1]);
  if (!stopped.empty()) {
    StopGroup(pid, std::chrono::milliseconds(2000));
    if (out_open) close(pout[0]);
    if (err_open) close(perr[0]);
    return ActivityResult::Fail("exec: " + argv[0] + ": " + stopped, stopped != "cancelled");
  }
  int status = 0;
  waitpid(pid, &status, 0);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  Json output = {{"exit_code", code}, {"stdout", out}, {"stderr", err}};
  Json parsed = Json::parse(out, nullptr, false);
  if (!parsed.is_discarded()) output["json"] = parsed;
  if (code != 0) {
    std::string first = err.substr(0, err.find('\n'));
    return ActivityResult::Fail("exec: " + argv[0] + " exited with " + std::to_string(code) +
                                    (first.empty() ? "" : ": " + first),
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
