#pragma once

// RocksDB's info log (DB/LOG), written by keel rather than by RocksDB's own
// EnvLogger: on a full disk that one fails a write and then aborts the
// process on an assertion at its next line (Debian's RocksDB 7.8 keeps
// assertions). This one drops a line it cannot write. It also keeps the lines
// that say where a write-ahead log is damaged, for the error of an open.

#include <rocksdb/env.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace keel::store::internal {

class InfoLog : public rocksdb::Logger {
 public:
  // Appends to dir/LOG (moved to LOG.old first once it is large); with an
  // empty `dir`, or when the file cannot be opened, writes nothing.
  explicit InfoLog(const std::string& dir);
  ~InfoLog() override;

  using rocksdb::Logger::Logv;
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override;
  void Logv(const char* format, va_list ap) override;

  // The lines that named a damaged WAL ("<file>: dropping N bytes; ..."),
  // joined by "; "; empty when there were none.
  std::string Damage() const;

 protected:
  rocksdb::Status CloseImpl() override;

 private:
  int fd_ = -1;
  mutable std::mutex mu_;
  std::vector<std::string> damage_;  // GUARDED_BY(mu_)
};

}  // namespace keel::store::internal
