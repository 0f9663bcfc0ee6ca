// Checks of text from outside: UTF-8, process ids, idempotency keys.

#include "base/validate.h"

#include <cstdint>
#include <cstdio>

namespace keel {
namespace {

// The length of the well-formed UTF-8 sequence at text[i], or 0 (RFC 3629:
// no overlong forms, no surrogates, nothing past U+10FFFF).
size_t SequenceAt(std::string_view text, size_t i) {
  auto byte = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  auto cont = [&](size_t k) { return k < text.size() && (byte(k) & 0xC0) == 0x80; };
  uint8_t b = byte(i);
  if (b < 0x80) return 1;
  if (b < 0xC2) return 0;  // a continuation byte, or an overlong 2-byte form
  if (b < 0xE0) return cont(i + 1) ? 2 : 0;
  if (b < 0xF0) {
    if (!cont(i + 1) || !cont(i + 2)) return 0;
    uint8_t b1 = byte(i + 1);
    if (b == 0xE0 && b1 < 0xA0) return 0;   // overlong
    if (b == 0xED && b1 >= 0xA0) return 0;  // a surrogate
    return 3;
  }
  if (b < 0xF5) {
    if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    uint8_t b1 = byte(i + 1);
    if (b == 0xF0 && b1 < 0x90) return 0;   // overlong
    if (b == 0xF4 && b1 >= 0x90) return 0;  // past U+10FFFF
    return 4;
  }
  return 0;
}

bool IdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.' || c == ':';
}

Status CheckUtf8In(const Json& value, std::string& path) {
  if (value.is_string()) return CheckUtf8(value.get_ref<const std::string&>(), path);
  if (value.is_array()) {
    for (size_t i = 0; i < value.size(); ++i) {
      size_t mark = path.size();
      path += "[" + std::to_string(i) + "]";
      KEEL_RETURN_IF_ERROR(CheckUtf8In(value[i], path));
      path.resize(mark);
    }
  } else if (value.is_object()) {
    for (auto it = value.begin(); it != value.end(); ++it) {
      KEEL_RETURN_IF_ERROR(CheckUtf8(it.key(), "a key of " + path));
      size_t mark = path.size();
      path += "." + it.key();
      KEEL_RETURN_IF_ERROR(CheckUtf8In(*it, path));
      path.resize(mark);
    }
  }
  return Status::OK();
}

}  // namespace

size_t InvalidUtf8At(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    size_t n = SequenceAt(text, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

Status CheckUtf8(std::string_view text, std::string_view what) {
  size_t at = InvalidUtf8At(text);
  if (at == std::string_view::npos) return Status::OK();
  return Status::InvalidArgument(std::string(what) + " is not valid UTF-8 (byte " +
                                 std::to_string(at + 1) + ")");
}

Status CheckJsonUtf8(const Json& value, std::string_view what) {
  std::string path(what);
  return CheckUtf8In(value, path);
}

Status CheckProcessId(std::string_view id) {
  bool ok = !id.empty() && id.size() <= kMaxProcessIdLength && IdChar(id[0]) && id[0] != '-' &&
            id[0] != '.' && id[0] != ':';
  for (char c : id) ok = ok && IdChar(c);
  if (ok) return Status::OK();
  return Status::InvalidArgument(
      "process id " + Printable(id) + " is not valid: 1 to " +
      std::to_string(kMaxProcessIdLength) +
      " letters, digits, '_', '-', '.' and ':', starting with a letter, a digit or '_'");
}

Status CheckIdempotencyKey(std::string_view key) {
  bool ok = !key.empty() && key.size() <= kMaxIdempotencyKeyLength && IsUtf8(key);
  for (char c : key) ok = ok && !(static_cast<uint8_t>(c) < 0x20 || c == 0x7F);
  if (ok) return Status::OK();
  return Status::InvalidArgument("idempotency key " + Printable(key) + " is not valid: 1 to " +
                                 std::to_string(kMaxIdempotencyKeyLength) +
                                 " bytes of UTF-8 without control characters");
}

std::string Printable(std::string_view text) {
  constexpr size_t kShown = 64;
  std::string out = "'";
  size_t i = 0;
  while (i < text.size() && i < kShown) {
    size_t n = SequenceAt(text, i);
    auto b = static_cast<uint8_t>(text[i]);
    if (n > 1 || (n == 1 && b >= 0x20 && b != 0x7F)) {
      out.append(text.substr(i, n));
      i += n;
      continue;
    }
    char hex[8];
    std::snprintf(hex, sizeof hex, "\\x%02X", b);
    out += hex;
    ++i;
  }
  if (i < text.size()) out += "...";
  return out + "'";
}

}  // namespace keel
