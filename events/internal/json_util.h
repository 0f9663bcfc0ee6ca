#pragma once

// Helpers shared by the fold and the JSON writers of events/.

#include <flatbuffers/flatbuffers.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace keel::events::internal {

inline std::string_view View(const flatbuffers::String* s) {
  return s ? std::string_view(s->data(), s->size()) : std::string_view();
}

// A JSON string that dump() never throws on: invalid UTF-8 (a log may hold
// any bytes) becomes U+FFFD.
nlohmann::json Text(std::string_view s);

// The JSON value of a `*_json` field: `if_empty` for "", the raw text as a JSON
// string when it does not parse (logs replay forever, even a bad payload).
nlohmann::json ParseJsonField(std::string_view text, nlohmann::json if_empty = nullptr);

}  // namespace keel::events::internal
