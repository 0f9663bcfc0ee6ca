#pragma once

// Helpers for keel's tests: a temporary directory removed at scope exit, Status
// assertions, and running a subprocess (the real `keel` binary) for end-to-end tests.

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
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
  int exit_code = -1;  // -1 when killed by a signal
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

// A command running in the background (a server, a --follow reader), its
// stdout and stderr going to files. Killed (SIGKILL) and reaped on
// destruction if still running.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& out_path,
        const std::string& err_path);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  pid_t pid() const { return pid_; }
  void Signal(int sig);
  // Blocks until it exits; its exit code, or -1 when a signal ended it.
  int Wait();
  // True once it has exited (reaps it).
  bool Exited();

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int exit_code_ = -1;
};

// Polls `condition` until it holds (true) or `limit` passes (false): tests
// wait for conditions, never for fixed times.
bool WaitUntil(const std::function<bool()>& condition,
               std::chrono::milliseconds limit = std::chrono::seconds(60));

// True while `pid` runs (a zombie, or a pid that is gone, is not running).
bool ProcessRunning(pid_t pid);

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
