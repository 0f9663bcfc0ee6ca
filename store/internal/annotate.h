#pragma once

#include <string>
#include <string_view>

#include "keel/status.h"

namespace keel::store::internal {

// The same error with `context` ("stream p_1 seq 4") in front of its message.
inline Status Annotate(const Status& s, std::string_view context) {
  if (s.ok()) return s;
  std::string msg = std::string(context) + ": " + s.message();
  using C = Status::Code;
  switch (s.code()) {
    case C::kNotFound:
      return Status::NotFound(std::move(msg));
    case C::kInvalidArgument:
      return Status::InvalidArgument(std::move(msg));
    case C::kConflict:
      return Status::Conflict(std::move(msg));
    case C::kRefused:
      return Status::Refused(std::move(msg));
    case C::kCorruption:
      return Status::Corruption(std::move(msg));
    case C::kNotSupported:
      return Status::NotSupported(std::move(msg));
    case C::kIOError:
      return Status::IOError(std::move(msg));
    case C::kBusy:
      return Status::Busy(std::move(msg));
    case C::kTimedOut:
      return Status::TimedOut(std::move(msg));
    case C::kUnauthorized:
      return Status::Unauthorized(std::move(msg));
    case C::kAborted:
      return Status::Aborted(std::move(msg));
    case C::kOk:
    case C::kInternal:
      break;
  }
  return Status::Internal(std::move(msg));
}

}  // namespace keel::store::internal
