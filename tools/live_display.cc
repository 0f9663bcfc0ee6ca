// `keel run`'s live display: the process's log in order, for people.

#include "tools/live_display.h"

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>

namespace keel::cli {
namespace {

// How often the display looks for events when no change was announced.
constexpr auto kPoll = std::chrono::milliseconds(250);

const char kGreen[] = "\033[32m", kRed[] = "\033[31m", kYellow[] = "\033[33m",
           kDim[] = "\033[2m", kReset[] = "\033[0m";

std::string Paint(const std::string& text, const char* colour, bool on) {
  return on ? colour + text + kReset : text;
}

// "12 ms", "1.4 s", "3m05s".
std::string Took(int64_t ns) {
  char buf[32];
  int64_t ms = ns / 1000000;
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%lld ms", static_cast<long long>(ms));
  } else if (ms < 60000) {
    std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000);
  } else {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(ms / 60000),
                  static_cast<long long>(ms / 1000 % 60));
  }
  return buf;
}

std::string Str(const Json& data, const char* key) {
  auto it = data.find(key);
  return it != data.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

bool WantsColour(int fd) {
  const char* no_colour = std::getenv("NO_COLOR");
  const char* term = std::getenv("TERM");
  return isatty(fd) && (no_colour == nullptr || *no_colour == '\0') &&
         (term == nullptr || std::strcmp(term, "dumb") != 0);
}

std::string LiveDisplay::Line(const Json& e, std::map<std::string, int64_t>& started_ns,
                              bool colour) {
  const std::string type = e.value("type", ""), entity = e.value("entity", "");
  const Json data = e.value("data", Json::object());
  const int64_t at = e.value("time_ns", int64_t{0});
  // The duration of the attempt that ends with this event, " (12 ms)".
  auto took = [&]() -> std::string {
    auto it = started_ns.find(entity);
    if (it == started_ns.end() || at < it->second) return "";
    std::string out = " (" + Took(at - it->second) + ")";
    started_ns.erase(it);
    return out;
  };
  std::string what;
  if (type == "TaskStarted") {
    started_ns[entity] = at;
    uint64_t attempt = data.value("attempt", uint64_t{1});
    what = "started" + (attempt > 1 ? " (attempt " + std::to_string(attempt) + ")" : "");
  } else if (type == "TaskCompleted") {
    what = Paint("completed", kGreen, colour) + took();
  } else if (type == "TaskFailed") {
    what = Paint("failed", kRed, colour) + took() + ": " + Str(data, "error");
  } else if (type == "TaskRetryScheduled") {
    what = Paint("will retry", kYellow, colour) + took() + ": " + Str(data, "error");
  } else if (type == "TaskCancelled") {
    what = Paint("cancelled", kDim, colour) + took();
  } else if (type == "TaskSkipped") {
    what = Paint("skipped", kDim, colour);
  } else if (type == "TaskBlocked") {
    what = Paint("blocked", kRed, colour) + ": " + Str(data, "reason");
  } else if (type == "TaskWaitingForApproval") {
    what = Paint("waiting for approval", kYellow, colour);
    if (!Str(data, "prompt").empty()) what += ": " + Str(data, "prompt");
  } else if (type == "TaskApproved" || type == "TaskRejected") {
    what = Paint(type == "TaskApproved" ? "approved" : "rejected",
                 type == "TaskApproved" ? kGreen : kRed, colour);
    if (!Str(data, "by").empty()) what += " by " + Str(data, "by");
  } else if (type == "BranchSuspended") {
    std::string kind = Str(data, "kind");
    if (kind == "approval") return "";  // TaskWaitingForApproval said it
    return "  " + Str(data, "task") + "  " +
           Paint(kind == "signal" ? "waiting for a signal" : "sleeping", kYellow, colour);
  } else {
    return "";
  }
  return "  " + entity + "  " + what;
}

LiveDisplay::LiveDisplay(std::string data_dir, std::string id, std::ostream& out, bool colour,
                         uint64_t after)
    : data_dir_(std::move(data_dir)),
      id_(std::move(id)),
      out_(out),
      colour_(colour),
      next_seq_(after + 1) {
  thread_ = std::thread([this] { Loop(); });
}

LiveDisplay::~LiveDisplay() { Finish(); }

void LiveDisplay::Changed() {
  std::lock_guard lock(mu_);
  changed_ = true;
  cv_.notify_one();
}

void LiveDisplay::Finish() {
  {
    std::lock_guard lock(mu_);
    finishing_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

void LiveDisplay::Loop() {
  for (;;) {
    bool finishing;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, kPoll, [&] { return changed_ || finishing_; });
      changed_ = false;
      finishing = finishing_;
    }
    // The node may have closed under the view: a fresh view reads the end.
    if (!PrintNew() && finishing) {
      store_.reset();
      PrintNew();
    }
    if (finishing) return;
  }
}

bool LiveDisplay::PrintNew() {
  if (!store_) {
    auto opened = ReadOnlyStore::Open(data_dir_);
    if (!opened.ok()) return false;
    store_ = std::make_unique<ReadOnlyStore>(std::move(*opened));
  } else if (!(*store_)->TryCatchUp().ok()) {
    store_.reset();
    return false;
  }
  auto events = (*store_)->ReadStream(id_, next_seq_);
  if (!events.ok()) {
    store_.reset();
    return false;
  }
  for (const auto& e : *events) {
    next_seq_ = e.seq() + 1;
    Json line = events::ToJson(e);
    line["time_ns"] = e.time_ns();
    std::string text = Line(line, started_ns_, colour_);
    if (!text.empty()) out_ << text << "\n";
  }
  out_.flush();
  return true;
}

}  // namespace keel::cli
