#include "base/time.h"

#include <cctype>
#include <chrono>
#include <cstdio>
#include <limits>

namespace keel {
namespace {

constexpr int64_t kMaxInt64 = std::numeric_limits<int64_t>::max();

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

Status BadDuration(std::string_view text, const std::string& why) {
  return Status::InvalidArgument("duration '" + std::string(text) + "' " + why);
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned DaysInMonth(int64_t y, unsigned m) {
  static const unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// Reads exactly `n` digits at `pos` into `out`.
bool Digits(std::string_view s, size_t& pos, size_t n, int64_t& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!IsDigit(s[pos + i])) return false;
    out = out * 10 + (s[pos + i] - '0');
  }
  pos += n;
  return true;
}

bool Expect(std::string_view s, size_t& pos, char c) {
  if (pos >= s.size() || s[pos] != c) return false;
  ++pos;
  return true;
}

}  // namespace

Result<int64_t> ParseDurationMs(std::string_view raw) {
  std::string_view text = Trim(raw);
  if (text.empty()) return BadDuration(raw, "is empty");
  if (text == "0") return int64_t{0};
  if (text.front() == '-') return BadDuration(raw, "is negative");
  __int128 total = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    // <digits>[.<digits>]
    __int128 whole = 0, frac = 0, scale = 1;
    size_t whole_digits = 0, frac_digits = 0;
    while (pos < text.size() && IsDigit(text[pos])) {
      if (++whole_digits > 18) return BadDuration(raw, "is too long");
      whole = whole * 10 + (text[pos++] - '0');
    }
    if (pos < text.size() && text[pos] == '.') {
      ++pos;
      while (pos < text.size() && IsDigit(text[pos])) {
        if (++frac_digits > 9) return BadDuration(raw, "is finer than a millisecond");
        frac = frac * 10 + (text[pos++] - '0');
        scale *= 10;
      }
    }
    if (whole_digits + frac_digits == 0) {
      return BadDuration(raw,
                         "is not valid: write a number and a unit (ms, s, m, h, d), "
                         "e.g. 200ms, 5s or 1h30m");
    }
    // <unit>
    size_t unit_start = pos;
    while (pos < text.size() && std::isalpha(static_cast<unsigned char>(text[pos]))) ++pos;
    std::string_view unit = text.substr(unit_start, pos - unit_start);
    int64_t unit_ms = 0;
    if (unit == "ms")
      unit_ms = 1;
    else if (unit == "s")
      unit_ms = 1000;
    else if (unit == "m")
      unit_ms = 60'000;
    else if (unit == "h")
      unit_ms = 3'600'000;
    else if (unit == "d")
      unit_ms = 86'400'000;
    else if (unit.empty() && pos == text.size() && unit_start == text.size() && total == 0) {
      return BadDuration(raw, "has no unit: a bare number is ambiguous, write e.g. " +
                                  std::string(text) + "ms or " + std::string(text) + "s");
    } else if (unit == "us" || unit == "ns") {
      return BadDuration(raw, "is finer than a millisecond");
    } else {
      return BadDuration(raw,
                         "is not valid: write a number and a unit (ms, s, m, h, d), "
                         "e.g. 200ms, 5s or 1h30m");
    }
    __int128 scaled = (whole * scale + frac) * unit_ms;
    if (scaled % scale != 0) return BadDuration(raw, "is finer than a millisecond");
    total += scaled / scale;
    if (total > kMaxInt64) return BadDuration(raw, "is too long");
  }
  return static_cast<int64_t>(total);
}

std::string FormatDurationMs(int64_t ms) {
  if (ms == 0) return "0s";
  std::string out;
  uint64_t v = static_cast<uint64_t>(ms);
  if (ms < 0) {
    out = "-";
    v = ~v + 1;  // magnitude, also for INT64_MIN
  }
  uint64_t h = v / 3'600'000, m = v / 60'000 % 60, rest = v % 60'000;
  if (h == 0 && m == 0 && rest < 1000) return out + std::to_string(rest) + "ms";
  if (h > 0) out += std::to_string(h) + "h";
  if (m > 0) out += std::to_string(m) + "m";
  if (rest > 0) {
    out += std::to_string(rest / 1000);
    if (rest % 1000 != 0) {
      char frac[8];
      std::snprintf(frac, sizeof frac, ".%03u", static_cast<unsigned>(rest % 1000));
      std::string f = frac;
      while (f.back() == '0') f.pop_back();
      out += f;
    }
    out += "s";
  }
  return out;
}

Result<int64_t> ParseTimeNs(std::string_view raw) {
  std::string_view s = Trim(raw);
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("time '" + std::string(raw) + "' " + why);
  };
  const std::string kShape = "is not an RFC 3339 time such as 2026-12-01T00:00:00Z";
  size_t pos = 0;
  int64_t year, month, day, hour, minute, second;
  if (!Digits(s, pos, 4, year) || !Expect(s, pos, '-') || !Digits(s, pos, 2, month) ||
      !Expect(s, pos, '-') || !Digits(s, pos, 2, day)) {
    return bad(kShape);
  }
  if (pos >= s.size() || (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ')) return bad(kShape);
  ++pos;
  if (!Digits(s, pos, 2, hour) || !Expect(s, pos, ':') || !Digits(s, pos, 2, minute) ||
      !Expect(s, pos, ':') || !Digits(s, pos, 2, second)) {
    return bad(kShape);
  }
  int64_t frac_ns = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < s.size() && IsDigit(s[pos])) {
      if (++digits > 9) return bad("has a fraction finer than a nanosecond");
      frac_ns = frac_ns * 10 + (s[pos++] - '0');
    }
    if (digits == 0) return bad(kShape);
    for (int i = digits; i < 9; ++i) frac_ns *= 10;
  }
  int64_t offset_s = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int sign = s[pos++] == '-' ? -1 : 1;
    int64_t oh, om;
    if (!Digits(s, pos, 2, oh) || !Expect(s, pos, ':') || !Digits(s, pos, 2, om) || oh > 23 ||
        om > 59) {
      return bad(kShape);
    }
    offset_s = sign * (oh * 3600 + om * 60);
  } else {
    return bad("needs a time zone: 'Z' or an offset such as +01:00");
  }
  if (pos != s.size()) return bad(kShape);
  if (month < 1 || month > 12 || day < 1 ||
      day > static_cast<int64_t>(DaysInMonth(year, static_cast<unsigned>(month))) || hour > 23 ||
      minute > 59 || second > 60) {
    return bad("is not a valid date and time");
  }
  __int128 secs = static_cast<__int128>(DaysFromCivil(year, static_cast<unsigned>(month),
                                                      static_cast<unsigned>(day))) *
                      86400 +
                  hour * 3600 + minute * 60 + second - offset_s;
  __int128 ns = secs * 1'000'000'000 + frac_ns;
  if (ns > kMaxInt64 || ns < std::numeric_limits<int64_t>::min()) {
    return bad("is out of range (1678..2261)");
  }
  return static_cast<int64_t>(ns);
}

Result<int64_t> ParseTimeOrAgoNs(std::string_view text, int64_t now_ns) {
  if (auto ago = ParseDurationMs(text); ago.ok()) {
    return *ago >= now_ns / 1000000 ? int64_t{0} : now_ns - *ago * 1000000;  // before 1970: all
  }
  auto at = ParseTimeNs(text);
  if (at.ok() || text.find(':') != std::string_view::npos) return at;  // a time, maybe bad
  return Status::InvalidArgument("'" + std::string(text) +
                                 "' is neither an RFC 3339 time (2026-12-01T09:00:00Z) nor a "
                                 "duration ago (90m, 2h, 1d)");
}

namespace {

// RFC 3339 in UTC with `digits` of fraction (0 to 9), or with as few as the
// value needs (none for a whole second) when `trim`. By hand: snprintf was
// most of a snapshot's time formatting.
std::string Format(int64_t ns, int digits, bool trim) {
  constexpr int64_t kNsPerSec = 1'000'000'000;
  int64_t secs = ns / kNsPerSec;
  int64_t frac = ns % kNsPerSec;
  if (frac < 0) {  // floor, without overflowing at INT64_MIN
    frac += kNsPerSec;
    --secs;
  }
  int64_t days = secs / 86400;
  int64_t sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    --days;
  }
  int64_t y;
  unsigned m, d;
  CivilFromDays(days, y, m, d);
  for (int i = digits; i < 9; ++i) frac /= 10;
  if (trim) {
    while (digits > 0 && frac % 10 == 0) {
      frac /= 10;
      --digits;
    }
  }
  char buf[64];
  char* p = buf;
  auto put = [&p](int64_t v, int width) {
    for (int i = width - 1; i >= 0; --i, v /= 10) p[i] = static_cast<char>('0' + v % 10);
    p += width;
  };
  if (y < 0 || y > 9999) {  // outside RFC 3339's four digits: as many as it takes
    p += std::snprintf(p, 24, "%04lld", static_cast<long long>(y));
  } else {
    put(y, 4);
  }
  *p++ = '-';
  put(m, 2);
  *p++ = '-';
  put(d, 2);
  *p++ = 'T';
  put(sod / 3600, 2);
  *p++ = ':';
  put(sod / 60 % 60, 2);
  *p++ = ':';
  put(sod % 60, 2);
  if (digits > 0) {
    *p++ = '.';
    put(frac, digits);
  }
  *p++ = 'Z';
  return std::string(buf, p);
}

}  // namespace

std::string FormatTimeMs(int64_t ns) { return Format(ns, 3, false); }
std::string FormatTimeNs(int64_t ns) { return Format(ns, 9, false); }
std::string FormatTime(int64_t ns) { return Format(ns, 9, true); }

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace keel
