#pragma once

#include <string>
#include <string_view>

#include "keel/status.h"

namespace keel::store::internal {

// The same error with `context` ("stream p_1 seq 4") in front of its message.
inline Status Annotate(const Status& s, std::string_view context) {
  if (s.ok()) return s;
  return Status::FromCode(s.code(), std::string(context) + ": " + s.message());
}

}  // namespace keel::store::internal
