#pragma once

// Helpers for keel's tests: a temporary directory removed at scope exit, Status
// assertions, and running a subprocess (the real `keel` binary) for end-to-end tests.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "keel/status.h"

namespace keel::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Result of running a command to completion.
struct CommandResult {
  int exit_code = -1;       // -1 when killed by a signal
  int signal = 0;
  std::string out;
  std::string err;
};

// Runs argv (argv[0] looked up on PATH if not absolute), with `stdin_text`,
// and waits. Extra environment entries are "NAME=value".
CommandResult Run(const std::vector<std::string>& argv, const std::string& stdin_text = "",
                  const std::vector<std::string>& env = {});

// Path of the keel CLI under test: $KEEL_BIN, else build/bin/keel.
std::string KeelBinary();

// Writes `text` to `path` (creating parents is the caller's job).
void WriteFile(const std::string& path, const std::string& text);
std::string ReadFile(const std::string& path);

}  // namespace keel::testing

#define ASSERT_OK(expr)                                   \
  do {                                                    \
    const auto& keel_s_ = (expr);                         \
    ASSERT_TRUE(::keel::testing::StatusOf(keel_s_).ok())  \
        << ::keel::testing::StatusOf(keel_s_).ToString(); \
  } while (0)
#define EXPECT_OK(expr)                                   \
  do {                                                    \
    const auto& keel_s_ = (expr);                         \
    EXPECT_TRUE(::keel::testing::StatusOf(keel_s_).ok())  \
        << ::keel::testing::StatusOf(keel_s_).ToString(); \
  } while (0)

namespace keel::testing {
inline const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  static const Status kOk;
  return r.ok() ? kOk : r.status();
}
}  // namespace keel::testing
