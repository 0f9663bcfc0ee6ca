#pragma once

// Checks of text that enters keel from outside (files, flags, HTTP requests,
// the embedding API) before anything is stored: UTF-8, process ids and
// idempotency keys. Every error is InvalidArgument and names what it checked;
// the offending text is quoted printably (see Printable).

#include <cstddef>
#include <string>
#include <string_view>

#include "keel/status.h"
#include "keel/types.h"

namespace keel {

// Process ids given by a caller: 1 to kMaxProcessIdLength characters of
// letters, digits, '_', '-', '.' and ':', the first a letter, digit or '_'.
// Every id keel generates ("p_" + a ULID) is one; none holds a '/', a space
// or a '..' path, so each is one segment of an HTTP path and a file name.
inline constexpr size_t kMaxProcessIdLength = 128;
// Idempotency keys: 1 to this many bytes of UTF-8 without control characters.
inline constexpr size_t kMaxIdempotencyKeyLength = 256;

// The offset of the first byte of `text` that is not well-formed UTF-8
// (overlong forms, surrogates and code points past U+10FFFF included), or
// std::string_view::npos when it all is.
size_t InvalidUtf8At(std::string_view text);
inline bool IsUtf8(std::string_view text) { return InvalidUtf8At(text) == std::string_view::npos; }

// OK, or "<what> is not valid UTF-8 (byte N)".
Status CheckUtf8(std::string_view text, std::string_view what);
// Every string and object key of `value`: "<what>.a[2] is not valid UTF-8".
Status CheckJsonUtf8(const Json& value, std::string_view what);

Status CheckProcessId(std::string_view id);
Status CheckIdempotencyKey(std::string_view key);

// `text` in single quotes for a message: bytes that are not printable ASCII
// written \xNN, and cut after 64 bytes ("...").
std::string Printable(std::string_view text);

}  // namespace keel
