#include "store/internal/info_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <string_view>

namespace keel::store::internal {
namespace {

// Past this size at open, LOG becomes LOG.old (replacing the previous one).
constexpr off_t kRotateSize = 16 << 20;
constexpr size_t kMaxDamageLines = 4;

}  // namespace

InfoLog::InfoLog(const std::string& dir) : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL) {
  if (dir.empty()) return;
  const std::string path = dir + "/LOG";
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && st.st_size > kRotateSize) {
    ::rename(path.c_str(), (path + ".old").c_str());
  }
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

InfoLog::~InfoLog() { CloseImpl().PermitUncheckedError(); }

rocksdb::Status InfoLog::CloseImpl() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  return rocksdb::Status::OK();
}

void InfoLog::Logv(const char* format, va_list ap) {
  Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
}

void InfoLog::Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) {
  if (level < GetInfoLogLevel()) return;
  char line[2048];
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() %
      1000000;
  std::tm tm {};
  ::gmtime_r(&secs, &tm);
  int head = std::snprintf(line, sizeof line, "%04d/%02d/%02d-%02d:%02d:%02d.%06lld ",
                           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                           tm.tm_sec, static_cast<long long>(micros));
  if (head < 0) return;
  va_list copy;
  va_copy(copy, ap);
  int body = std::vsnprintf(line + head, sizeof line - head - 1, format, copy);
  va_end(copy);
  if (body < 0) return;
  size_t size = std::min(sizeof line - 2, static_cast<size_t>(head + body));
  std::string_view text(line + head, size - head);
  if (!text.empty() && text.front() == '[') {  // "[db/db_impl/...cc:982] "
    size_t end = text.find("] ");
    if (end != std::string_view::npos) text.remove_prefix(end + 2);
  }
  if (text.find("dropping") != std::string_view::npos &&
      text.find(".log") != std::string_view::npos) {
    std::lock_guard<std::mutex> lock(mu_);
    if (damage_.size() < kMaxDamageLines) damage_.emplace_back(text);
  }
  if (fd_ < 0) return;
  line[size] = '\n';
  // One append per line; a line that does not fit on the disk is lost.
  [[maybe_unused]] ssize_t written = ::write(fd_, line, size + 1);
}

std::string InfoLog::Damage() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& line : damage_) out += (out.empty() ? "" : "; ") + line;
  return out;
}

}  // namespace keel::store::internal
