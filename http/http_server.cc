#include <fcntl.h>
#include <httplib.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <list>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "base/data_dir.h"
#include "base/time.h"
#include "base/validate.h"
#include "events/transitions.h"
#include "http/connection_threads.h"
#include "http/console/console.h"
#include "keel/http.h"
#include "keel/version.h"
#include "store/format.h"

namespace keel {
namespace {

// An SSE stream writes a comment this often when nothing happens, so that
// proxies and clients see the connection alive.
constexpr auto kKeepAlive = std::chrono::seconds(10);
// An SSE stream with nothing to send returns to httplib this often, which
// then checks that the client is still there: a closed one ends its stream.
constexpr auto kLiveCheck = std::chrono::milliseconds(250);
// `POST /v1/processes?wait=S`: S is capped at a day; the wait is done in
// slices of this many milliseconds so that a stopping server is not held up.
constexpr uint64_t kMaxWaitS = 86400;
constexpr int64_t kWaitSliceMs = 1000;
// How often the global event stream looks for new events in the store.
constexpr auto kLogPoll = std::chrono::milliseconds(100);
constexpr size_t kLogChunk = 256;
constexpr size_t kMaxListLimit = 1000;
constexpr size_t kParsedEntries = 256;  // workflow texts whose parse is kept

const char kJson[] = "application/json";

void SendJson(httplib::Response& res, int code, const Json& body) {
  res.status = code;
  // Never throws: text that is not UTF-8 (a message quoting a request) is replaced.
  res.set_content(body.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n", kJson);
}

// A request whose path or query is not UTF-8 names nothing keel can hold.
Status CheckRequestText(const httplib::Request& req) {
  KEEL_RETURN_IF_ERROR(CheckUtf8(req.path, "the request path"));
  for (const auto& [key, value] : req.params) {
    KEEL_RETURN_IF_ERROR(CheckUtf8(key, "a query parameter"));
    KEEL_RETURN_IF_ERROR(CheckUtf8(value, "query parameter '" + key + "'"));
  }
  return Status::OK();
}

void SendError(httplib::Response& res, int code, const std::string& error,
               const std::string& message) {
  SendJson(res, code, {{"error", {{"code", error}, {"message", message}}}});
}

// The HTTP status and error code of INTERFACE.md for a failed call.
// `invalid_status` is 400 for a malformed request, 422 for a well-formed
// request that the node refuses (a workflow that does not validate).
void SendStatus(httplib::Response& res, const Status& s, int invalid_status = 400) {
  switch (s.code()) {
    case Status::Code::kNotFound:
      return SendError(res, 404, "not_found", s.message());
    case Status::Code::kInvalidArgument:
      return SendError(res, invalid_status, "invalid", s.message());
    case Status::Code::kRefused:
    case Status::Code::kConflict:
      return SendError(res, 409, "conflict", s.message());
    case Status::Code::kUnauthorized:
      return SendError(res, 401, "unauthorized", s.message());
    case Status::Code::kNotSupported:
      return SendError(res, 501, "unsupported", s.message());
    case Status::Code::kBusy:
    case Status::Code::kAborted:
    case Status::Code::kTimedOut:
      return SendError(res, 503, "unavailable", s.message());
    default:
      return SendError(res, 500, "internal", s.ToString());
  }
}

// The request body as a JSON object ({} when empty).
Result<Json> BodyObject(const httplib::Request& req) {
  if (req.body.empty()) return Json::object();
  Json body = Json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return Status::InvalidArgument("the request body is not JSON");
  if (!body.is_object()) return Status::InvalidArgument("the request body must be a JSON object");
  return body;
}

// body[key] as a string; "" when absent or null; InvalidArgument otherwise.
Result<std::string> StringField(const Json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::string();
  if (!it->is_string())
    return Status::InvalidArgument(std::string("'") + key + "' must be a string");
  return it->get<std::string>();
}

// A query parameter as an unsigned number; `fallback` when absent.
Result<uint64_t> NumberParam(const httplib::Request& req, const char* key, uint64_t fallback) {
  if (!req.has_param(key)) return fallback;
  std::string text = req.get_param_value(key);
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos ||
      text.size() > 18) {
    return Status::InvalidArgument(std::string("query parameter '") + key + "' must be a number");
  }
  return std::stoull(text);
}

// The query parameters an endpoint reads (by method and path): any other is
// refused, so that a misspelt filter is not silently ignored.
std::vector<std::string> KnownParams(const std::string& method, const std::string& path) {
  if (path == "/v1/processes") {
    if (method == "POST") return {"wait"};
    return {"status", "workflow", "limit", "offset", "since", "until", "idempotency_key"};
  }
  if (path == "/v1/events/stream") return {"from"};
  if (path.size() > 7 && path.compare(path.size() - 7, 7, "/events") == 0) return {"from"};
  if (path.size() > 7 && path.compare(path.size() - 7, 7, "/replay") == 0) return {"to"};
  if (method == "POST" && path.size() > 5 && path.compare(path.size() - 5, 5, "/fork") == 0)
    return {"wait"};
  // GET /v1/processes/{id}: a page of its tasks.
  if (method == "GET" && path.rfind("/v1/processes/", 0) == 0 &&
      path.find('/', sizeof("/v1/processes/") - 1) == std::string::npos) {
    return {"tasks_limit", "tasks_offset"};
  }
  return {};
}

// `text` with every byte outside printable ASCII as '?': a client's bytes
// echoed in a JSON error must not break its encoding.
std::string Printable(std::string text) {
  for (char& ch : text) ch = (ch >= 0x20 && ch < 0x7f) ? ch : '?';
  return text;
}

// InvalidArgument naming the first query parameter the endpoint does not
// read. Only the URL's query counts, not a form body.
Status CheckParams(const httplib::Request& req) {
  auto q = req.target.find('?');
  if (q == std::string::npos) return Status::OK();
  httplib::Params params;
  httplib::detail::parse_query_text(req.target.substr(q + 1), params);
  std::vector<std::string> known = KnownParams(req.method, req.path);
  for (const auto& [key, value] : params) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string message = "unknown query parameter '" + Printable(key.substr(0, 64)) + "'";
    if (known.empty()) return Status::InvalidArgument(message + "; this endpoint takes none");
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    return Status::InvalidArgument(message + "; this endpoint takes " + list);
  }
  return Status::OK();
}

// A request without Content-Length or Transfer-Encoding has no body (RFC 9112
// 6.3): httplib would wait for the client to close instead. Marks it empty.
void NoLengthMeansNoBody(const httplib::Request& req) {
  if (req.method != "POST" || req.has_header("Content-Length") ||
      req.has_header("Transfer-Encoding")) {
    return;
  }
  // The request is the server's own (non-const) object; the handler type
  // only hands it out as const.
  const_cast<httplib::Request&>(req).set_header("Content-Length", "0");
}

// A control request's body: who and why (`by`, `reason`); `body` gets the
// whole object for a handler that reads more of it (a signal's payload).
Result<ControlOptions> ControlFrom(const httplib::Request& req, Json* body = nullptr) {
  auto object = BodyObject(req);
  if (!object.ok()) return object.status();
  auto reason = StringField(*object, "reason");
  if (!reason.ok()) return reason.status();
  auto by = StringField(*object, "by");
  if (!by.ok()) return by.status();
  ControlOptions options;
  options.reason = *reason;
  if (!by->empty()) options.by = *by;
  if (body != nullptr) *body = std::move(*object);
  return options;
}

// Splits "host:port"; InvalidArgument when malformed.
Status ParseListen(const std::string& listen, std::string* host, int* port) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::InvalidArgument("listen address '" + listen + "' is not host:port");
  }
  std::string digits = listen.substr(colon + 1);
  if (digits.empty() || digits.size() > 5 ||
      digits.find_first_not_of("0123456789") != std::string::npos || std::stoi(digits) > 65535) {
    return Status::InvalidArgument("listen address '" + listen + "' has a bad port");
  }
  *host = listen.substr(0, colon);
  *port = std::stoi(digits);
  return Status::OK();
}

// 128 random bits as hex, for a node that must protect its API and was given
// no token.
Result<std::string> RandomToken() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return Status::IOError("no random bytes for a token");
  std::string hex;
  for (unsigned char b : bytes) {
    static const char kDigits[] = "0123456789abcdef";
    hex += kDigits[b >> 4];
    hex += kDigits[b & 15];
  }
  return hex;
}

// Whether `header` is "Bearer <token>" (the scheme in any case, RFC 9110),
// compared in constant time so that timing does not leak the token.
bool BearerMatches(const std::string& header, const std::string& token) {
  static const char kScheme[] = "bearer ";
  const size_t n = sizeof(kScheme) - 1;
  if (header.size() != n + token.size()) return false;
  if (strncasecmp(header.c_str(), kScheme, n) != 0) return false;
  return CRYPTO_memcmp(header.data() + n, token.data(), token.size()) == 0;
}

// Writes `text` to `path` created with mode 0600 (no moment when another
// user may read it), then renames it over `final_path`.
Status WriteOwnerOnly(const std::string& path, const std::string& final_path,
                      const std::string& text) {
  ::unlink(path.c_str());  // a stale one from a killed node
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IOError("cannot write " + path + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      ::unlink(path.c_str());
      return Status::IOError("cannot write " + path + ": " + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  if (::rename(path.c_str(), final_path.c_str()) != 0) {
    ::unlink(path.c_str());
    return Status::IOError("cannot write " + final_path + ": " + std::strerror(errno));
  }
  return Status::OK();
}

// What one SSE connection waits on: snapshots pushed by Node::Subscribe, or
// the server stopping.
// A snapshot as sent: serialized once, where it is published.
struct SseSnapshot {
  uint64_t seq = 0;
  bool terminal = false;
  std::string text;

  explicit SseSnapshot(const Json& snapshot)
      : seq(snapshot.value("last_seq", uint64_t{0})), text(snapshot.dump()) {
    auto status = events::ParseProcessStatus(snapshot.value("status", ""));
    terminal = status && events::IsTerminal(*status);
  }
};

struct SseQueue {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<SseSnapshot> snapshots;  // guarded by mu
  bool stopping = false;              // guarded by mu
};

}  // namespace

class HttpServer::Impl {
 public:
  // Connections other than event streams that are served at once; more wait
  // for a thread.
  static constexpr size_t kRequestThreads = 1024;
  static constexpr size_t kIdleThreads = 16;  // kept for the next connections
  static constexpr int kListenBacklog = 1024;

  Impl(Node& node, const HttpOptions& options) : node_(node), options_(options) {}

  Status Start() {
    std::string host;
    int port = 0;
    KEEL_RETURN_IF_ERROR(ParseListen(options_.listen, &host, &port));
    if (options_.token.empty() && !options_.no_token) {
      auto token = RandomToken();
      if (!token.ok()) return token.status();
      options_.token = *token;
    }
    server_.set_payload_max_length(options_.max_body);
    server_.set_keep_alive_max_count(100);
    // httplib waits this long for every request on a connection, the first
    // one included: 1 s reset clients of a loaded machine (64 starts at once
    // on 2 cores). Stop() may wait as long for an idle keep-alive connection.
    server_.set_keep_alive_timeout(5);
    // Small responses and SSE frames go out at once (no Nagle delay).
    server_.set_tcp_nodelay(true);
    // A connection holds its thread while it is open (an event stream, an
    // idle socket until the keep-alive timeout): each has its own, so none
    // waits behind another (see ConnectionThreads).
    server_.new_task_queue = [max = options_.max_streams + kRequestThreads] {
      return new http::ConnectionThreads(max, kIdleThreads);
    };
    server_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      http::NoBrotli(req);
      if (Status text = CheckRequestText(req); !text.ok()) {
        SendStatus(res, text);
        return httplib::Server::HandlerResponse::Handled;
      }
      auto authorized = Authorize(req, res);
      if (authorized == httplib::Server::HandlerResponse::Handled) return authorized;
      NoLengthMeansNoBody(req);
      if (Status params = CheckParams(req); !params.ok()) {
        SendStatus(res, params);
        return httplib::Server::HandlerResponse::Handled;
      }
      return authorized;
    });
    server_.set_error_handler(
        httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
          if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
          if (res.status == 413) {
            SendError(res, 413, "invalid", "the request body is larger than the node accepts");
          } else if (res.status == 404) {
            SendError(res, 404, "not_found", "no such endpoint");
          } else if (res.status >= 500) {
            SendError(res, res.status, "internal", "the node failed to answer");
          } else {
            SendError(res, res.status, "invalid", "malformed request");
          }
          return httplib::Server::HandlerResponse::Handled;
        }));
    // A bug's exception goes to the log, never to the client.
    server_.set_exception_handler(
        [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
          std::string what = "unknown exception";
          try {
            if (ep) std::rethrow_exception(ep);
          } catch (const std::exception& e) {
            what = e.what();
          } catch (...) {
          }
          spdlog::error("http {} {}: {}", req.method, Printable(req.path), what);
          SendError(res, 500, "internal", "the node failed to answer; its log says why");
        });
    Routes();
    int listen_fd = -1;
    // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, with which a
    // second node could bind the same port and take half of the requests.
    server_.set_socket_options([&listen_fd](socket_t sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
      listen_fd = sock;
    });
    errno = 0;
    int bound =
        port == 0 ? server_.bind_to_any_port(host) : (server_.bind_to_port(host, port) ? port : -1);
    if (bound <= 0) {
      std::string why = errno == EADDRINUSE ? "address in use"
                        : errno != 0        ? std::strerror(errno)
                                            : "cannot bind";
      return Status::IOError("cannot listen on " + options_.listen + ": " + why);
    }
    // Debian's compiled httplib listens with a backlog of 5: a burst of new
    // clients would be dropped and reset. listen() again raises it.
    if (listen_fd >= 0) ::listen(listen_fd, kListenBacklog);
    address_ = host + ":" + std::to_string(bound);
    thread_ = std::thread([this] {
      server_.listen_after_bind();
      listen_returned_ = true;
    });
    // httplib's stop() is a no-op until the listen loop runs: wait for it, so
    // that a quick Stop() cannot leave the loop blocked in accept().
    while (!server_.is_running() && !listen_returned_)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (!server_.is_running()) {
      thread_.join();
      return Status::IOError("cannot serve on " + address_);
    }
    Status written = WriteNodeJson();
    if (!written.ok()) Stop();
    return written;
  }

  void Stop() {
    {
      std::lock_guard lock(streams_mu_);
      if (stopped_) return;
      stopped_ = true;
      for (auto& weak : streams_) {
        if (auto q = weak.lock()) {
          std::lock_guard qlock(q->mu);
          q->stopping = true;
          q->cv.notify_all();
        }
      }
    }
    server_.stop();
    if (thread_.joinable()) thread_.join();
    std::error_code ec;
    std::filesystem::remove(NodeJsonPath(), ec);
  }

  const std::string& address() const { return address_; }
  const std::string& token() const { return options_.token; }

 private:
  std::string NodeJsonPath() const { return data_dir::NodeJson(node_.options().data_dir); }

  Status WriteNodeJson() {
    Json info = {{"pid", static_cast<int64_t>(getpid())},
                 {"address", address_},
                 {"started_at", FormatTimeMs(NowNs())}};
    // The token lets this user's CLI reach a protected node; the file is
    // readable by its owner only.
    if (!options_.token.empty()) info["token"] = options_.token;
    return WriteOwnerOnly(NodeJsonPath() + ".tmp", NodeJsonPath(), info.dump() + "\n");
  }

  httplib::Server::HandlerResponse Authorize(const httplib::Request& req, httplib::Response& res) {
    ++requests_;
    if (BodyRefused(req, res)) return httplib::Server::HandlerResponse::Handled;
    if (options_.token.empty() || req.method == "GET" || req.method == "HEAD") {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    if (BearerMatches(req.get_header_value("Authorization"), options_.token)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    SendError(res, 401, "unauthorized", "this node needs 'Authorization: Bearer <token>'");
    return httplib::Server::HandlerResponse::Handled;
  }

  // Judges a request's body by its headers before httplib reads it, which
  // would otherwise wait for the client: for a body without a length until
  // the read timeout, and for an over-limit one until it is all skipped.
  // True when `res` holds the answer (the connection is then closed).
  bool BodyRefused(const httplib::Request& req, httplib::Response& res) {
    if (req.has_header("Transfer-Encoding")) return false;  // chunked: read with the limit
    if (!req.has_header("Content-Length")) {
      if (req.method == "GET" || req.method == "HEAD") return false;
      // RFC 9112 6.3: a request with neither header has no body; httplib
      // 0.11 would read one until the client closes. Say it is empty.
      const_cast<httplib::Request&>(req).headers.emplace("Content-Length", "0");
      return false;
    }
    std::string length = req.get_header_value("Content-Length");
    if (length.empty() || length.size() > 19 ||
        length.find_first_not_of("0123456789") != std::string::npos) {
      SendError(res, 400, "invalid", "Content-Length must be a number");
    } else if (std::stoull(length) > options_.max_body) {
      SendError(res, 413, "invalid",
                "the request body is larger than the node accepts (" +
                    std::to_string(options_.max_body) + " bytes)");
    } else {
      return false;
    }
    res.set_header("Connection", "close");
    return true;
  }

  void Routes() {
    server_.Post("/v1/processes", [this](const auto& req, auto& res) { Create(req, res); });
    server_.Get("/v1/processes", [this](const auto& req, auto& res) { List(req, res); });
    server_.Get(R"(/v1/processes/([^/]+))", [this](const auto& req, auto& res) { Get(req, res); });
    server_.Get(R"(/v1/processes/([^/]+)/events)",
                [this](const auto& req, auto& res) { Events(req, res); });
    server_.Get(R"(/v1/processes/([^/]+)/stream)",
                [this](const auto& req, auto& res) { Stream(req, res); });
    // Read-only views of one run for the console (docs/interface-extensions.md).
    server_.Get(R"(/v1/processes/([^/]+)/definition)", [this](const auto& req, auto& res) {
      auto definition = node_.Definition(req.matches[1]);
      if (!definition.ok()) return SendStatus(res, definition.status());
      SendJson(res, 200, {{"definition", *definition}});
    });
    server_.Get(R"(/v1/processes/([^/]+)/replay)", [this](const auto& req, auto& res) {
      if (!req.has_param("to")) {
        return SendStatus(res, Status::InvalidArgument("query parameter 'to' (a seq) is required"));
      }
      auto to = NumberParam(req, "to", 0);
      if (!to.ok()) return SendStatus(res, to.status());
      auto snapshot = node_.Replay(req.matches[1], *to);
      snapshot.ok() ? SendJson(res, 200, *snapshot) : SendStatus(res, snapshot.status());
    });
    server_.Get(R"(/v1/processes/([^/]+)/verify)", [this](const auto& req, auto& res) {
      auto problems = node_.Verify(req.matches[1]);
      if (!problems.ok()) return SendStatus(res, problems.status());
      SendJson(res, 200, {{"ok", problems->empty()}, {"problems", *problems}});
    });
    server_.Post(R"(/v1/processes/([^/]+)/(pause|resume|cancel|retry))",
                 [this](const auto& req, auto& res) { Control(req, res); });
    // A task inside a branch has a path-like id ("fan/0/work"): the step
    // part may hold '/' (a client's "%2F" is decoded before matching).
    server_.Post(R"(/v1/processes/([^/]+)/tasks/(.+)/(approve|reject|cancel))",
                 [this](const auto& req, auto& res) { Decide(req, res); });
    server_.Post(R"(/v1/processes/([^/]+)/signals/(.+))",
                 [this](const auto& req, auto& res) { Signal(req, res); });
    server_.Post(R"(/v1/processes/([^/]+)/fork)",
                 [this](const auto& req, auto& res) { Fork(req, res); });
    server_.Post("/v1/schedules", [this](const auto& req, auto& res) { CreateSchedule(req, res); });
    server_.Get("/v1/schedules", [this](const auto&, auto& res) { ListSchedules(res); });
    server_.Get(R"(/v1/schedules/([^/]+))", [this](const auto& req, auto& res) {
      auto out = node_.GetSchedule(req.matches[1]);
      out.ok() ? SendJson(res, 200, *out) : SendStatus(res, out.status());
    });
    server_.Post(R"(/v1/schedules/([^/]+)/(pause|resume|delete|trigger))",
                 [this](const auto& req, auto& res) { ScheduleControl(req, res); });
    server_.Get("/v1/queues", [this](const auto&, auto& res) {
      auto list = node_.ListQueues();
      list.ok() ? SendJson(res, 200, {{"queues", *list}}) : SendStatus(res, list.status());
    });
    server_.Get(R"(/v1/queues/([^/]+))", [this](const auto& req, auto& res) {
      auto view = node_.GetQueue(req.matches[1]);
      view.ok() ? SendJson(res, 200, *view) : SendStatus(res, view.status());
    });
    server_.Get("/v1/events/stream", [this](const auto& req, auto& res) { LogStream(req, res); });
    server_.Get("/v1/health", [this](const auto&, auto& res) {
      SendJson(res, 200,
               {{"status", "ok"},
                {"pid", static_cast<int64_t>(getpid())},
                {"address", address_},
                {"version", kVersion},
                {"store_format", store::format::kFormatVersion}});
    });
    server_.Get("/v1/metrics", [this](const auto&, auto& res) { Metrics(res); });
    http::MountConsole(server_);
  }

  // A client usually starts the same workflow text again and again: parsing
  // and validating it (YAML, expressions) cost more than the start itself.
  Result<std::shared_ptr<const Workflow>> Parsed(const std::string& text) {
    {
      std::lock_guard lock(parsed_mu_);
      if (auto it = parsed_.find(text); it != parsed_.end()) return it->second;
    }
    auto wf = ParseWorkflow(text, "<request>");
    if (!wf.ok()) return wf.status();
    auto shared = std::make_shared<const Workflow>(std::move(*wf));
    std::lock_guard lock(parsed_mu_);
    if (parsed_.size() >= kParsedEntries) parsed_.clear();
    parsed_.emplace(text, shared);
    return std::shared_ptr<const Workflow>(shared);
  }

  // The body's `workflow` (YAML/JSON text or an object), parsed. Answers the
  // request itself (400 missing, 422 invalid) and returns null on failure.
  std::shared_ptr<const Workflow> WorkflowFrom(const Json& body, httplib::Response& res) {
    auto it = body.find("workflow");
    if (it == body.end() || !(it->is_string() || it->is_object())) {
      SendStatus(res, Status::InvalidArgument("'workflow' must be YAML/JSON text or an object"));
      return nullptr;
    }
    auto wf = Parsed(it->is_string() ? it->get<std::string>() : it->dump());
    if (!wf.ok()) {
      SendStatus(res, wf.status(), 422);
      return nullptr;
    }
    return *wf;
  }

  void Create(const httplib::Request& req, httplib::Response& res) {
    auto body = BodyObject(req);
    if (!body.ok()) return SendStatus(res, body.status());
    auto wf = WorkflowFrom(*body, res);
    if (!wf) return;
    Json inputs = body->value("inputs", Json::object());
    if (!inputs.is_object() && !inputs.is_null()) {
      return SendStatus(res, Status::InvalidArgument("'inputs' must be an object"));
    }
    auto id = StringField(*body, "id");
    auto key = StringField(*body, "idempotency_key");
    auto by = StringField(*body, "by");
    for (const auto* field : {&id, &key, &by}) {
      if (!field->ok()) return SendStatus(res, field->status());
    }
    auto wait_s = NumberParam(req, "wait", 0);
    if (!wait_s.ok()) return SendStatus(res, wait_s.status());
    Status names = !id->empty() ? CheckProcessId(*id) : Status::OK();
    if (names.ok() && !key->empty()) names = CheckIdempotencyKey(*key);
    if (!names.ok()) return SendStatus(res, names);
    StartOptions start;
    start.id = *id;
    start.idempotency_key = *key;
    if (!by->empty()) start.actor = *by;
    if (Status queued = QueueFields(*body, start); !queued.ok()) return SendStatus(res, queued);
    bool started = false;
    if (!req.has_param("wait")) {
      auto snapshot = node_.Start(*wf, inputs, start, &started);
      if (!snapshot.ok()) return SendStatus(res, snapshot.status(), 422);
      return SendJson(res, started ? 201 : 200, *snapshot);
    }
    // ?wait=S: one call that starts the process and answers once it rests
    // (or after S seconds) with its snapshot then.
    auto submitted = node_.Submit(*wf, inputs, start, &started);
    if (!submitted.ok()) return SendStatus(res, submitted.status(), 422);
    auto rested =
        WaitForRest(*submitted, std::chrono::seconds(std::min<uint64_t>(*wait_s, kMaxWaitS)));
    if (!rested.ok()) return SendStatus(res, rested.status());
    SendJson(res, started ? 201 : 200, *rested);
  }

  // A start's queue, priority and queue_key (docs/queues.md).
  static Status QueueFields(const Json& body, StartOptions& start) {
    auto queue = StringField(body, "queue");
    if (!queue.ok()) return queue.status();
    auto key = StringField(body, "queue_key");
    if (!key.ok()) return key.status();
    start.queue = *queue;
    start.queue_key = *key;
    if (auto p = body.find("priority"); p != body.end() && !p->is_null()) {
      if (!p->is_number_integer() || *p < INT32_MIN || *p > INT32_MAX) {
        return Status::InvalidArgument("'priority' must be a 32-bit integer");
      }
      start.priority = p->get<int32_t>();
    }
    if (start.queue.empty() && (!start.queue_key.empty() || start.priority != 0)) {
      return Status::InvalidArgument("'priority' and 'queue_key' need a 'queue'");
    }
    return Status::OK();
  }

  // The snapshot of `id` once it rests, or when `timeout` has passed or the
  // server stops (a moving snapshot then). Waits in short slices, so that a
  // stopping server is not held up.
  Result<Json> WaitForRest(const std::string& id, std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      auto rested = node_.Wait(id, std::clamp(left, std::chrono::milliseconds(0),
                                              std::chrono::milliseconds(kWaitSliceMs)));
      if (rested.ok() || rested.status().code() != Status::Code::kTimedOut) return rested;
      if (left.count() <= kWaitSliceMs || Stopping()) return node_.Get(id);
    }
  }

  bool Stopping() {
    std::lock_guard lock(streams_mu_);
    return stopped_;
  }

  // GET /v1/processes/{id}[?tasks_limit=N&tasks_offset=M]: the snapshot, or
  // a page of its tasks (TasksPage) for a process with very many.
  void Get(const httplib::Request& req, httplib::Response& res) {
    auto limit = NumberParam(req, "tasks_limit", 0);
    auto offset = NumberParam(req, "tasks_offset", 0);
    if (!limit.ok()) return SendStatus(res, limit.status());
    if (!offset.ok()) return SendStatus(res, offset.status());
    auto snapshot = node_.Get(req.matches[1]);
    if (!snapshot.ok()) return SendStatus(res, snapshot.status());
    SendJson(res, 200, TasksPage(std::move(*snapshot), *limit, *offset));
  }

  void List(const httplib::Request& req, httplib::Response& res) {
    ListFilter filter;
    filter.status = req.get_param_value("status");
    filter.workflow = req.get_param_value("workflow");
    filter.idempotency_key = req.get_param_value("idempotency_key");
    for (auto [key, bound] : {std::pair{"since", &filter.created_since_ns},
                              std::pair{"until", &filter.created_until_ns}}) {
      if (!req.has_param(key)) continue;
      auto at = ParseTimeOrAgoNs(req.get_param_value(key), NowNs());
      if (!at.ok()) {
        return SendStatus(res, Status::InvalidArgument(std::string("query parameter '") + key +
                                                       "': " + Printable(at.status().message())));
      }
      *bound = std::max<int64_t>(*at, 1);  // 0 means "any"
    }
    auto limit = NumberParam(req, "limit", 50);
    auto offset = NumberParam(req, "offset", 0);
    if (!limit.ok()) return SendStatus(res, limit.status());
    if (!offset.ok()) return SendStatus(res, offset.status());
    filter.limit = std::min<uint64_t>(*limit, kMaxListLimit);
    filter.offset = *offset;
    auto list = node_.List(filter);
    if (!list.ok()) return SendStatus(res, list.status());
    SendJson(res, 200,
             {{"processes", list->processes},
              {"total", list->total},
              {"limit", list->limit},
              {"offset", list->offset},
              {"has_more", list->has_more}});
  }

  // The process's event lines as JSON lines (application/x-ndjson).
  void Events(const httplib::Request& req, httplib::Response& res) {
    std::string id = req.matches[1];
    auto from = NumberParam(req, "from", 1);
    if (!from.ok()) return SendStatus(res, from.status());
    auto lines = node_.Events(id, *from);
    if (!lines.ok()) return SendStatus(res, lines.status());
    std::string out;
    for (const auto& line : *lines) out += line.dump() + "\n";
    res.status = 200;
    res.set_content(out, "application/x-ndjson");
  }

  // The queue of a new SSE stream; null when options_.max_streams are
  // open (the caller answers 503). A stream counts until its provider, which
  // holds the queue, is gone.
  std::shared_ptr<SseQueue> NewQueue() {
    auto q = std::make_shared<SseQueue>();
    std::lock_guard lock(streams_mu_);
    streams_.remove_if([](const std::weak_ptr<SseQueue>& w) { return w.expired(); });
    if (streams_.size() >= options_.max_streams) return nullptr;
    if (stopped_) q->stopping = true;
    streams_.push_back(q);
    return q;
  }

  void SendTooManyStreams(httplib::Response& res) {
    SendError(
        res, 503, "unavailable",
        "the node has " + std::to_string(options_.max_streams) + " open event streams, its limit");
  }

  // SSE: the current snapshot, then one `data: <snapshot>` per durable change,
  // keep-alive comments meanwhile; ends after a terminal status.
  void Stream(const httplib::Request& req, httplib::Response& res) {
    std::string id = req.matches[1];
    auto q = NewQueue();
    if (!q) return SendTooManyStreams(res);
    auto unsubscribe = node_.Subscribe(id, [q](const Json& snapshot) {
      SseSnapshot sent(snapshot);
      std::lock_guard lock(q->mu);
      q->snapshots.push_back(std::move(sent));
      q->cv.notify_all();
    });
    if (!unsubscribe.ok()) return SendStatus(res, unsubscribe.status());
    auto current = node_.Get(id);
    if (!current.ok()) {
      (*unsubscribe)();
      return SendStatus(res, current.status());
    }
    {
      SseSnapshot sent(*current);
      std::lock_guard lock(q->mu);
      q->snapshots.push_front(std::move(sent));
    }
    res.set_header("Cache-Control", "no-cache");
    auto last_seq = std::make_shared<uint64_t>(0);
    auto quiet_since =
        std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
    res.set_chunked_content_provider(
        "text/event-stream",
        [q, last_seq, quiet_since](size_t, httplib::DataSink& sink) {
          std::unique_lock lock(q->mu);
          if (!q->cv.wait_for(lock, kLiveCheck,
                              [&] { return q->stopping || !q->snapshots.empty(); })) {
            lock.unlock();
            // Back to httplib, which looks whether the client is still there.
            if (std::chrono::steady_clock::now() - *quiet_since < kKeepAlive) return true;
            *quiet_since = std::chrono::steady_clock::now();
            return sink.write(": keep-alive\n\n", 14);
          }
          if (q->stopping) return false;
          std::deque<SseSnapshot> batch;
          batch.swap(q->snapshots);
          lock.unlock();
          for (const SseSnapshot& s : batch) {
            if (s.seq <= *last_seq) continue;  // the first snapshot may repeat a change
            *last_seq = s.seq;
            *quiet_since = std::chrono::steady_clock::now();
            std::string event = "data: " + s.text + "\n\n";
            if (!sink.write(event.data(), event.size())) return false;
            if (s.terminal) {
              sink.done();
              return true;
            }
          }
          return true;
        },
        [cancel = *unsubscribe](bool) { cancel(); });
  }

  // SSE of the global log: `id: <global_seq>` and `data: <event line>` per
  // event with global_seq >= from (default: only new events).
  void LogStream(const httplib::Request& req, httplib::Response& res) {
    auto last = node_.LastGlobalSeq();
    if (!last.ok()) return SendStatus(res, last.status());
    auto from = NumberParam(req, "from", *last + 1);
    if (!from.ok()) return SendStatus(res, from.status());
    auto q = NewQueue();
    if (!q) return SendTooManyStreams(res);
    auto next = std::make_shared<uint64_t>(std::max<uint64_t>(*from, 1));
    auto idle_since =
        std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream", [this, q, next, idle_since](size_t, httplib::DataSink& sink) {
          {
            std::unique_lock lock(q->mu);
            if (q->stopping) return false;
          }
          auto evs = node_.LogEvents(*next, kLogChunk);
          if (!evs.ok()) return false;
          if (evs->empty()) {
            std::unique_lock lock(q->mu);
            q->cv.wait_for(lock, kLogPoll, [&] { return q->stopping; });
            if (q->stopping) return false;
            lock.unlock();
            if (std::chrono::steady_clock::now() - *idle_since < kKeepAlive) return true;
            *idle_since = std::chrono::steady_clock::now();
            return sink.write(": keep-alive\n\n", 14);
          }
          std::string out;
          for (const auto& line : *evs) {
            const uint64_t global_seq = line.value("global_seq", uint64_t{0});
            out += "id: " + std::to_string(global_seq) + "\ndata: " + line.dump() + "\n\n";
            *next = global_seq + 1;
          }
          *idle_since = std::chrono::steady_clock::now();
          return sink.write(out.data(), out.size());
        });
  }

  void Control(const httplib::Request& req, httplib::Response& res) {
    auto parsed = ControlFrom(req);
    if (!parsed.ok()) return SendStatus(res, parsed.status());
    const ControlOptions& options = *parsed;
    std::string id = req.matches[1], action = req.matches[2];
    Result<Json> out = action == "pause"    ? node_.Pause(id, options)
                       : action == "resume" ? node_.Resume(id, options)
                       : action == "cancel" ? node_.Cancel(id, options)
                                            : node_.Retry(id, options);
    out.ok() ? SendJson(res, 200, *out) : SendStatus(res, out.status());
  }

  void Decide(const httplib::Request& req, httplib::Response& res) {
    auto parsed = ControlFrom(req);
    if (!parsed.ok()) return SendStatus(res, parsed.status());
    const ControlOptions& options = *parsed;
    std::string id = req.matches[1], step = req.matches[2];
    auto out = req.matches[3] == "approve"  ? node_.Approve(id, step, options)
               : req.matches[3] == "reject" ? node_.Reject(id, step, options)
                                            : node_.CancelTask(id, step, options);
    out.ok() ? SendJson(res, 200, *out) : SendStatus(res, out.status());
  }

  void Signal(const httplib::Request& req, httplib::Response& res) {
    Json body;
    auto options = ControlFrom(req, &body);
    if (!options.ok()) return SendStatus(res, options.status());
    auto out =
        node_.Signal(req.matches[1], req.matches[2], body.value("payload", Json()), *options);
    out.ok() ? SendJson(res, 200, *out) : SendStatus(res, out.status());
  }

  // POST /v1/processes/{id}/fork {from, visit?, inputs?, id?, by?}[?wait=S]
  // (docs/fork.md): 201 with the new process's snapshot once its log is
  // durable, or once it rests (or after S seconds) with ?wait.
  void Fork(const httplib::Request& req, httplib::Response& res) {
    auto body = BodyObject(req);
    if (!body.ok()) return SendStatus(res, body.status());
    ForkOptions options;
    auto from = StringField(*body, "from");
    auto id = StringField(*body, "id");
    auto by = StringField(*body, "by");
    for (const auto* field : {&from, &id, &by}) {
      if (!field->ok()) return SendStatus(res, field->status());
    }
    if (from->empty())
      return SendStatus(res, Status::InvalidArgument("'from' (a step) is required"));
    options.from = *from;
    options.id = *id;
    if (!by->empty()) options.actor = *by;
    if (auto it = body->find("visit"); it != body->end() && !it->is_null()) {
      if (!it->is_number_unsigned() || it->get<uint64_t>() > UINT32_MAX)
        return SendStatus(res, Status::InvalidArgument("'visit' must be a number, 1 or more"));
      options.visit = it->get<uint32_t>();
    }
    if (auto it = body->find("inputs"); it != body->end() && !it->is_null()) {
      if (!it->is_object())
        return SendStatus(res, Status::InvalidArgument("'inputs' must be an object"));
      options.inputs = *it;
    }
    if (!options.id.empty()) {
      if (Status s = CheckProcessId(options.id); !s.ok()) return SendStatus(res, s);
    }
    auto wait_s = NumberParam(req, "wait", 0);
    if (!wait_s.ok()) return SendStatus(res, wait_s.status());
    auto forked = node_.Fork(req.matches[1], options);
    if (!forked.ok()) return SendStatus(res, forked.status());
    if (!req.has_param("wait")) return SendJson(res, 201, *forked);
    auto rested = WaitForRest((*forked)["id"].get<std::string>(),
                              std::chrono::seconds(std::min<uint64_t>(*wait_s, kMaxWaitS)));
    if (!rested.ok()) return SendStatus(res, rested.status());
    SendJson(res, 201, *rested);
  }

  // POST /v1/schedules {name, workflow, cron | every, time_zone?, inputs?,
  // overlap?, catchup_window?, jitter?, by?}: durations as "10m", "30s".
  void CreateSchedule(const httplib::Request& req, httplib::Response& res) {
    auto body = BodyObject(req);
    if (!body.ok()) return SendStatus(res, body.status());
    auto wf = WorkflowFrom(*body, res);
    if (!wf) return;
    ScheduleSpec spec;
    std::string overlap, every, catchup, jitter, by;
    for (auto [key, out] : {std::pair{"name", &spec.name},
                            {"cron", &spec.cron},
                            {"time_zone", &spec.time_zone},
                            {"overlap", &overlap},
                            {"every", &every},
                            {"catchup_window", &catchup},
                            {"jitter", &jitter},
                            {"by", &by}}) {
      auto field = StringField(*body, key);
      if (!field.ok()) return SendStatus(res, field.status());
      *out = *field;
    }
    if (!overlap.empty()) spec.overlap = overlap;
    for (auto [text, out] : {std::pair{&every, &spec.every},
                             {&catchup, &spec.catchup_window},
                             {&jitter, &spec.jitter}}) {
      if (text->empty()) continue;
      auto ms = ParseDurationMs(*text);
      if (!ms.ok()) return SendStatus(res, ms.status());
      *out = std::chrono::milliseconds(*ms);
    }
    spec.inputs = body->value("inputs", Json::object());
    if (spec.inputs.is_null()) spec.inputs = Json::object();
    ControlOptions options;
    if (!by.empty()) options.by = by;
    auto created = node_.CreateSchedule(spec, *wf, options);
    if (!created.ok()) return SendStatus(res, created.status(), 422);
    SendJson(res, 201, *created);
  }

  void ListSchedules(httplib::Response& res) {
    auto list = node_.ListSchedules();
    if (!list.ok()) return SendStatus(res, list.status());
    SendJson(res, 200, {{"schedules", *list}});
  }

  void ScheduleControl(const httplib::Request& req, httplib::Response& res) {
    auto parsed = ControlFrom(req);
    if (!parsed.ok()) return SendStatus(res, parsed.status());
    const ControlOptions& options = *parsed;
    std::string name = req.matches[1], action = req.matches[2];
    Result<Json> out = action == "pause"    ? node_.PauseSchedule(name, options)
                       : action == "resume" ? node_.ResumeSchedule(name, options)
                       : action == "delete" ? node_.DeleteSchedule(name, options)
                                            : node_.TriggerSchedule(name, options);
    out.ok() ? SendJson(res, 200, *out) : SendStatus(res, out.status());
  }

  // A number as Prometheus text ("+Inf" for infinity).
  static std::string FormatNumber(double value) {
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.9g", value);
    return buf;
  }

  // Appends a histogram (# HELP, # TYPE, _bucket per bound, _sum, _count) of
  // cumulative `buckets`, the last of which is +Inf and so the count.
  static void AppendHistogram(std::string& out, const std::string& name, const std::string& help,
                              const Histogram& histogram, const std::string& sum) {
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
    for (size_t i = 0; i < histogram.bounds.size() && i < histogram.counts.size(); ++i) {
      out += name + "_bucket{le=\"" + FormatNumber(histogram.bounds[i]) + "\"} " +
             std::to_string(histogram.counts[i]) + "\n";
    }
    out += name + "_sum " + sum + "\n";
    out += name + "_count " +
           std::to_string(histogram.counts.empty() ? 0 : histogram.counts.back()) + "\n";
  }

  // Prometheus text format: what the node and its store can report.
  void Metrics(httplib::Response& res) {
    std::string out = "# HELP keel_processes Processes by status.\n# TYPE keel_processes gauge\n";
    for (auto s = static_cast<int>(events::ProcessStatus::kPending);
         s <= static_cast<int>(events::ProcessStatus::kFailed); ++s) {
      ListFilter filter;
      filter.status = events::Name(static_cast<events::ProcessStatus>(s));
      filter.limit = 0;
      auto list = node_.List(filter);
      if (!list.ok()) return SendStatus(res, list.status());
      out +=
          "keel_processes{status=\"" + filter.status + "\"} " + std::to_string(list->total) + "\n";
    }
    auto log = node_.GetLogStats();
    if (!log.ok()) return SendStatus(res, log.status());
    out +=
        "# HELP keel_events_appended_total Events in the log.\n# TYPE keel_events_appended_total "
        "counter\n";
    out += "keel_events_appended_total " + std::to_string(log->events) + "\n";
    out += "# HELP keel_timers_pending Armed durable timers.\n# TYPE keel_timers_pending gauge\n";
    out += "keel_timers_pending " + std::to_string(log->timers_armed) + "\n";
    out +=
        "# HELP keel_http_requests_total HTTP requests served.\n# TYPE keel_http_requests_total "
        "counter\n";
    out += "keel_http_requests_total " + std::to_string(requests_.load()) + "\n";
    AppendHistogram(out, "keel_append_latency_seconds",
                    "Append latency from submission to durable commit.",
                    log->append_latency_seconds, FormatNumber(log->append_latency_seconds.sum));
    AppendHistogram(out, "keel_group_commit_appends", "Appends committed per group commit.",
                    log->group_commit_appends,
                    std::to_string(static_cast<uint64_t>(log->group_commit_appends.sum)));
    out +=
        "# HELP keel_tasks_running Task attempts executing now.\n"
        "# TYPE keel_tasks_running gauge\n";
    const NodeMetrics metrics = node_.Metrics();
    out += "keel_tasks_running " + std::to_string(metrics.tasks_running) + "\n";
    out +=
        "# HELP keel_processes_live Processes with a live actor (not at rest).\n"
        "# TYPE keel_processes_live gauge\n";
    out += "keel_processes_live " + std::to_string(metrics.processes_live) + "\n";
    if (auto queues = node_.ListQueues(); queues.ok() && !queues->empty()) {
      // Per queue (docs/queues.md); queue names need no escaping.
      std::string depth, running, admitted;
      for (const auto& q : *queues) {
        std::string label = "{queue=\"" + q.value("name", "") + "\"} ";
        depth += "keel_queue_depth" + label + std::to_string(q.value("depth", 0)) + "\n";
        running += "keel_queue_running" + label + std::to_string(q.value("running", 0)) + "\n";
        if (q["rate"].is_object()) {
          admitted += "keel_queue_rate_used" + label +
                      std::to_string(q["rate"].value("used", 0)) + "\n";
        }
      }
      out += "# HELP keel_queue_depth Processes waiting in the queue.\n"
             "# TYPE keel_queue_depth gauge\n" + depth;
      out += "# HELP keel_queue_running Processes the queue admitted that have not ended.\n"
             "# TYPE keel_queue_running gauge\n" + running;
      if (!admitted.empty()) {
        out += "# HELP keel_queue_rate_used Admissions inside the queue's rate window.\n"
               "# TYPE keel_queue_rate_used gauge\n" + admitted;
      }
    }
    res.status = 200;
    res.set_content(out, "text/plain; version=0.0.4");
  }

  Node& node_;
  std::mutex parsed_mu_;
  std::unordered_map<std::string, std::shared_ptr<const Workflow>> parsed_;  // by text
  HttpOptions options_;
  httplib::Server server_;
  std::thread thread_;
  std::string address_;
  std::atomic<uint64_t> requests_{0};
  std::atomic<bool> listen_returned_{false};

  std::mutex streams_mu_;
  std::list<std::weak_ptr<SseQueue>> streams_;  // guarded by streams_mu_
  bool stopped_ = false;                        // guarded by streams_mu_
};

Result<std::unique_ptr<HttpServer>> HttpServer::Start(Node& node, const HttpOptions& options) {
  auto impl = std::make_unique<Impl>(node, options);
  KEEL_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() { Stop(); }
void HttpServer::Stop() { impl_->Stop(); }
const std::string& HttpServer::address() const { return impl_->address(); }
const std::string& HttpServer::token() const { return impl_->token(); }

}  // namespace keel
