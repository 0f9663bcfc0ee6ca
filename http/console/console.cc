#include "http/console/console.h"

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "http/console/console_assets.h"

namespace keel::http {
namespace {

// The content type of an asset, by its file name's ending.
const char* ContentType(std::string_view path) {
  auto ends_with = [&](std::string_view tail) {
    return path.size() >= tail.size() && path.substr(path.size() - tail.size()) == tail;
  };
  if (ends_with(".html")) return "text/html; charset=utf-8";
  if (ends_with(".css")) return "text/css; charset=utf-8";
  if (ends_with(".js")) return "text/javascript; charset=utf-8";
  return "application/octet-stream";
}

// A strong ETag of the bytes (64-bit FNV-1a): the same binary serves the same
// tag, a rebuilt console a new one.
std::string ETagOf(const ConsoleAsset& asset) {
  uint64_t hash = 14695981039346656037ull;
  for (size_t i = 0; i < asset.size; ++i) {
    hash ^= asset.data[i];
    hash *= 1099511628211ull;
  }
  char text[24];
  std::snprintf(text, sizeof text, "\"%016llx\"", static_cast<unsigned long long>(hash));
  return text;
}

void Serve(const ConsoleAsset& asset, const std::string& etag, const httplib::Request& req,
           httplib::Response& res) {
  res.set_header("ETag", etag);
  // Revalidated on each load (a 304 costs nothing), so a new binary's console
  // is seen at once.
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Content-Type-Options", "nosniff");
  if (req.get_header_value("If-None-Match") == etag) {
    res.status = 304;
    return;
  }
  res.status = 200;
  res.set_content(reinterpret_cast<const char*>(asset.data), asset.size, ContentType(asset.path));
}

}  // namespace

void MountConsole(httplib::Server& server) {
  for (size_t i = 0; i < kConsoleAssetCount; ++i) {
    const ConsoleAsset& asset = kConsoleAssets[i];
    const std::string etag = ETagOf(asset);
    auto handler = [&asset, etag](const httplib::Request& req, httplib::Response& res) {
      Serve(asset, etag, req, res);
    };
    server.Get(asset.path, handler);
    if (std::string_view(asset.path) == "/console/index.html") {
      server.Get("/", handler);
      server.Get("/console", handler);
      server.Get("/console/", handler);
    }
  }
}

void NoBrotli(const httplib::Request& req) {
  auto it = req.headers.find("Accept-Encoding");
  if (it == req.headers.end() || it->second.find("br") == std::string::npos) return;
  std::string kept;
  size_t start = 0;
  while (start <= it->second.size()) {
    size_t comma = it->second.find(',', start);
    if (comma == std::string::npos) comma = it->second.size();
    std::string item = it->second.substr(start, comma - start);
    size_t first = item.find_first_not_of(' ');
    std::string name = first == std::string::npos ? "" : item.substr(first);
    name = name.substr(0, name.find(';'));
    while (!name.empty() && name.back() == ' ') name.pop_back();
    if (!name.empty() && name != "br") kept += (kept.empty() ? "" : ", ") + item.substr(first);
    start = comma + 1;
  }
  // The request is the server's own (non-const) object; the handler type
  // only hands it out as const.
  const_cast<std::string&>(it->second) = kept;
}

}  // namespace keel::http
