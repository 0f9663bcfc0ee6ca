#pragma once

// Durations and points in time as workflow files, filters and the JSON of
// snapshots and events spell them.
//
// A duration is one or more <number><unit> parts, summed: "200ms", "5s",
// "10m", "24h", "2d", "1h30m", "1.5s". Units: ms, s, m, h, d (d = 24h).
// A number may have a fraction as long as the whole is a whole number of
// milliseconds ("1.5s" yes, "0.5ms" no). "0" alone is accepted; any other bare
// number is refused because it is ambiguous ("5" as 5 ms or 5 s?): write the
// unit. Negative durations are refused.

#include <cstdint>
#include <string>
#include <string_view>

#include "keel/status.h"

namespace keel {

// Milliseconds of `text`, or InvalidArgument naming the text.
Result<int64_t> ParseDurationMs(std::string_view text);

// The shortest spelling ParseDurationMs reads back to `ms`: "0s", "250ms",
// "1.5s", "1m30s", "24h", "1h0.25s".
std::string FormatDurationMs(int64_t ms);

// Nanoseconds since the Unix epoch of an RFC 3339 time, such as
// "2026-12-01T00:00:00Z" or "2026-12-01 01:00:00.5+01:00" (a 'T' or a space
// between date and time; a fraction of up to 9 digits; "Z" or an offset is
// required). InvalidArgument for anything else or outside 1678..2261.
Result<int64_t> ParseTimeNs(std::string_view text);

// A point in time as a filter spells it: an RFC 3339 time (ParseTimeNs), or
// a duration before `now_ns` ("90m": ninety minutes ago). InvalidArgument
// naming the text otherwise.
Result<int64_t> ParseTimeOrAgoNs(std::string_view text, int64_t now_ns);

// RFC 3339 in UTC with milliseconds, "2026-11-22T10:00:00.123Z": the times
// of snapshots (`*_at`).
std::string FormatTimeMs(int64_t ns);
// RFC 3339 in UTC with nanoseconds, "2026-11-22T10:00:00.123456789Z": the
// time of an event line.
std::string FormatTimeNs(int64_t ns);
// RFC 3339 in UTC with the fraction only as long as it needs to be:
// "2026-12-01T00:00:00Z", "...:00.5Z", "...:00.000000001Z".
std::string FormatTime(int64_t ns);

// Nanoseconds since the Unix epoch now (the system clock): the time of
// events, timers and due dates.
int64_t NowNs();

}  // namespace keel
