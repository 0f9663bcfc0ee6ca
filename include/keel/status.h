#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace keel {

// The outcome of an operation at a module boundary: ok, or a code and a
// message that names what failed and where (file, line, step, process id).
// Errors are values in keel; exceptions never cross a public function.
class [[nodiscard]] Status {
 public:
  enum class Code : unsigned char {
    kOk = 0,
    kNotFound,         // unknown process, step, stream or key
    kInvalidArgument,  // malformed input: workflow file, JSON, flag
    kConflict,         // optimistic append lost the race (stale expected seq)
    kRefused,          // a control the current state does not allow
    kCorruption,       // stored data fails decoding, its chain or its format
    kNotSupported,     // a store of a newer format, an unknown event type
    kIOError,          // the file system or RocksDB failed
    kBusy,             // the data dir is held by another node
    kTimedOut,         // a wait ran out
    kUnauthorized,     // missing or wrong API token
    kAborted,          // shut down while the request was under way
    kInternal,         // a broken invariant: a bug in keel
  };

  Status() = default;
  static Status OK() { return Status(); }
  static Status NotFound(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  static Status InvalidArgument(std::string msg) {
    return {Code::kInvalidArgument, std::move(msg)};
  }
  static Status Conflict(std::string msg) { return {Code::kConflict, std::move(msg)}; }
  static Status Refused(std::string msg) { return {Code::kRefused, std::move(msg)}; }
  static Status Corruption(std::string msg) { return {Code::kCorruption, std::move(msg)}; }
  static Status NotSupported(std::string msg) { return {Code::kNotSupported, std::move(msg)}; }
  static Status IOError(std::string msg) { return {Code::kIOError, std::move(msg)}; }
  static Status Busy(std::string msg) { return {Code::kBusy, std::move(msg)}; }
  static Status TimedOut(std::string msg) { return {Code::kTimedOut, std::move(msg)}; }
  static Status Unauthorized(std::string msg) { return {Code::kUnauthorized, std::move(msg)}; }
  static Status Aborted(std::string msg) { return {Code::kAborted, std::move(msg)}; }
  static Status Internal(std::string msg) { return {Code::kInternal, std::move(msg)}; }
  // The Status of `code` (one sent as a number between threads or actors);
  // OK drops the message, and a number that is no Code is Internal.
  static Status FromCode(Code code, std::string msg) {
    if (code == Code::kOk) return OK();
    if (code > Code::kInternal) code = Code::kInternal;
    return {code, std::move(msg)};
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsConflict() const { return code_ == Code::kConflict; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }

  // "Conflict: stream p_1 expected seq 3, is at 5" style text for logs and stderr.
  std::string ToString() const {
    return ok() ? std::string("OK") : std::string(CodeName(code_)) + ": " + message_;
  }
  static const char* CodeName(Code code) {
    switch (code) {
      case Code::kOk:
        return "OK";
      case Code::kNotFound:
        return "NotFound";
      case Code::kInvalidArgument:
        return "InvalidArgument";
      case Code::kConflict:
        return "Conflict";
      case Code::kRefused:
        return "Refused";
      case Code::kCorruption:
        return "Corruption";
      case Code::kNotSupported:
        return "NotSupported";
      case Code::kIOError:
        return "IOError";
      case Code::kBusy:
        return "Busy";
      case Code::kTimedOut:
        return "TimedOut";
      case Code::kUnauthorized:
        return "Unauthorized";
      case Code::kAborted:
        return "Aborted";
      case Code::kInternal:
        return "Internal";
    }
    return "Unknown";
  }

  // Marks an error as deliberately ignored; greppable, unlike a silent drop.
  void IgnoreError() const {}

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// A value or the Status that explains why there is none (Abseil's StatusOr).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    assert(!status_.ok() && "a Result holding no value needs an error");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace keel

// Returns from the enclosing function when `expr` yields a non-ok Status.
#define KEEL_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::keel::Status keel_status_ = (expr);        \
    if (!keel_status_.ok()) return keel_status_; \
  } while (0)
