// Queue specs as the CLI and config files spell them (docs/queues.md).

#include <charconv>

#include "base/time.h"
#include "keel/options.h"

namespace keel {
namespace {

Result<uint32_t> Count(std::string_view setting, std::string_view text) {
  uint32_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return Status::InvalidArgument("queue setting '" + std::string(setting) +
                                   "' needs a whole number, got '" + std::string(text) + "'");
  }
  return n;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

Status CheckQueueName(std::string_view name) {
  auto bad = [&] {
    return Status::InvalidArgument("bad queue name '" + std::string(name) +
                                   "': 1 to 64 letters, digits, '_', '-', '.', first a letter "
                                   "or digit");
  };
  if (name.empty() || name.size() > 64) return bad();
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '_' && c != '-' && c != '.'))) return bad();
  }
  return Status::OK();
}

Result<QueueSpec> ParseQueueSpec(std::string_view text) {
  text = Trim(text);
  QueueSpec spec;
  auto colon = text.find(':');
  spec.name = std::string(Trim(text.substr(0, colon)));
  KEEL_RETURN_IF_ERROR(CheckQueueName(spec.name));
  if (colon == std::string_view::npos) return spec;
  std::string_view rest = text.substr(colon + 1);
  while (!rest.empty()) {
    auto comma = rest.find(',');
    std::string_view item = Trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (item.empty()) continue;
    auto eq = item.find('=');
    if (eq == std::string_view::npos) {
      return Status::InvalidArgument("queue '" + spec.name + "': expected SETTING=VALUE, got '" +
                                     std::string(item) + "'");
    }
    std::string_view name = Trim(item.substr(0, eq)), value = Trim(item.substr(eq + 1));
    if (name == "concurrency") {
      auto n = Count(name, value);
      if (!n.ok()) return n.status();
      spec.concurrency = *n;
    } else if (name == "per_key") {
      auto n = Count(name, value);
      if (!n.ok()) return n.status();
      spec.per_key = *n;
    } else if (name == "key") {
      if (value.substr(0, 7) != "inputs." || value.size() == 7) {
        return Status::InvalidArgument("queue '" + spec.name +
                                       "': key must be a path into the inputs (inputs.NAME), got '" +
                                       std::string(value) + "'");
      }
      spec.key = std::string(value);
    } else if (name == "rate") {
      auto slash = value.find('/');
      if (slash == std::string_view::npos) {
        return Status::InvalidArgument("queue '" + spec.name +
                                       "': rate is COUNT/PERIOD (100/1m), got '" +
                                       std::string(value) + "'");
      }
      auto n = Count(name, value.substr(0, slash));
      if (!n.ok()) return n.status();
      auto period = ParseDurationMs(value.substr(slash + 1));
      if (!period.ok() || *period <= 0) {
        return Status::InvalidArgument("queue '" + spec.name + "': bad rate period '" +
                                       std::string(value.substr(slash + 1)) + "'");
      }
      spec.rate_limit = *n;
      spec.rate_period = std::chrono::milliseconds(*period);
    } else {
      return Status::InvalidArgument("queue '" + spec.name + "': unknown setting '" +
                                     std::string(name) +
                                     "' (concurrency, per_key, key, rate)");
    }
  }
  return spec;
}

std::string FormatQueueSpec(const QueueSpec& spec) {
  std::string out = spec.name, sep = ":";
  auto add = [&](const std::string& setting) {
    out += sep + setting;
    sep = ",";
  };
  if (spec.concurrency) add("concurrency=" + std::to_string(spec.concurrency));
  if (spec.per_key) add("per_key=" + std::to_string(spec.per_key));
  if (!spec.key.empty()) add("key=" + spec.key);
  if (spec.rate_limit) {
    add("rate=" + std::to_string(spec.rate_limit) + "/" +
        FormatDurationMs(spec.rate_period.count()));
  }
  return out;
}

}  // namespace keel
