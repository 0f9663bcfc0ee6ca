#include "base/cron.h"

#include <date/date.h>
#include <date/tz.h>

#include <array>
#include <cctype>
#include <chrono>
#include <exception>
#include <vector>

namespace keel {
namespace {

namespace chr = std::chrono;
using Minutes = chr::minutes;
using LocalMinutes = date::local_time<Minutes>;
using SysMinutes = date::sys_time<Minutes>;

// How far ahead a search looks before it says "never": a Feb 29 that is also
// a Monday comes back within 28 years, but Vixie's OR of the day fields makes
// such a cron fire on every Monday; a spec Parse admits fires within 8 years.
constexpr int kSearchYears = 8;

struct FieldRange {
  const char* name;
  int low, high;
  const char* const* names;  // names[i] spells low + i; nullptr: none
};

constexpr const char* kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr const char* kDayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

constexpr FieldRange kFields[] = {
    {"minute", 0, 59, nullptr},       {"hour", 0, 23, nullptr},
    {"day of month", 1, 31, nullptr}, {"month", 1, 12, kMonthNames},
    {"day of week", 0, 7, kDayNames},
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Status Bad(const FieldRange& f, std::string_view item, const std::string& why) {
  return Status::InvalidArgument("cron " + std::string(f.name) + " field: '" + std::string(item) +
                                 "' " + why);
}

// A number or (where the field has them) a name, in the field's range.
Result<int> Value(const FieldRange& f, std::string_view text, std::string_view item) {
  if (text.empty()) return Bad(f, item, "is missing a value");
  if (std::isdigit(static_cast<unsigned char>(text[0]))) {
    int v = 0;
    for (char c : text) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return Bad(f, item, "is not a number");
      v = v * 10 + (c - '0');
      if (v > 1000) break;
    }
    if (v < f.low || v > f.high) {
      return Bad(f, item,
                 "is out of range " + std::to_string(f.low) + "-" + std::to_string(f.high));
    }
    return v;
  }
  if (f.names) {
    std::string name = Lower(text);
    int count = f.high - f.low + 1 - (f.names == kDayNames ? 1 : 0);  // 7 is a number only
    for (int i = 0; i < count; ++i) {
      if (name == f.names[i]) return f.low + i;
    }
  }
  return Bad(f, item, "is not a value of the field");
}

// One field's items into `out` (bit i = value i). `star`: the field starts
// with '*'.
Status ParseField(const FieldRange& f, std::string_view text, std::vector<bool>& out, bool* star) {
  out.assign(f.high + 1, false);
  *star = !text.empty() && text[0] == '*';
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string_view item = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    start = comma == std::string_view::npos ? text.size() + 1 : comma + 1;
    if (item.empty()) return Bad(f, text, "has an empty list item");
    std::string_view range = item;
    int step = 1;
    if (size_t slash = item.find('/'); slash != std::string_view::npos) {
      range = item.substr(0, slash);
      std::string_view step_text = item.substr(slash + 1);
      if (step_text.empty()) return Bad(f, item, "has no step after '/'");
      step = 0;
      for (char c : step_text) {
        if (!std::isdigit(static_cast<unsigned char>(c))) return Bad(f, item, "has a bad step");
        step = step * 10 + (c - '0');
        if (step > 1000) break;
      }
      if (step < 1 || step > f.high) return Bad(f, item, "has a step out of range");
    }
    int low = f.low, high = f.high;
    if (range == "*") {
      // every value
    } else if (size_t dash = range.find('-'); dash != std::string_view::npos) {
      auto a = Value(f, range.substr(0, dash), item);
      if (!a.ok()) return a.status();
      auto b = Value(f, range.substr(dash + 1), item);
      if (!b.ok()) return b.status();
      low = *a;
      high = *b;
      if (low > high) return Bad(f, item, "is a range that runs backwards");
    } else {
      auto v = Value(f, range, item);
      if (!v.ok()) return v.status();
      low = *v;
      // "N/STEP" runs from N to the end of the field; "N" alone is just N.
      high = item.find('/') == std::string_view::npos ? *v : f.high;
    }
    for (int v = low; v <= high; v += step) out[v] = true;
  }
  return Status::OK();
}

std::string_view Macro(std::string_view text) {
  static constexpr std::pair<const char*, const char*> kMacros[] = {
      {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"},
  };
  std::string lower = Lower(text);
  for (const auto& [name, fields] : kMacros) {
    if (lower == name) return fields;
  }
  return {};
}

// The days each month can have at most (February: 29).
constexpr std::array<int, 13> kMaxDays = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

bool DayMatches(const CronFields& f, const date::year_month_day& ymd) {
  bool dom = f.days_of_month[static_cast<unsigned>(ymd.day())];
  bool dow = f.days_of_week[date::weekday(date::sys_days(ymd)).c_encoding()];
  return (f.dom_star || f.dow_star) ? (dom && dow) : (dom || dow);
}

// The first wall time at or after `from` whose fields match; nullopt past
// `limit`.
std::optional<LocalMinutes> FirstMatch(const CronFields& f, LocalMinutes from, LocalMinutes limit) {
  LocalMinutes t = from;
  while (t <= limit) {
    auto day = date::floor<date::days>(t);
    date::year_month_day ymd{day};
    auto time = date::make_time(t - day);
    unsigned month = static_cast<unsigned>(ymd.month());
    if (!f.months[month]) {
      auto next = ymd.year() / ymd.month() / date::day(1) + date::months(1);
      t = LocalMinutes(date::local_days(next));
      continue;
    }
    if (!DayMatches(f, ymd)) {
      t = LocalMinutes(day + date::days(1));
      continue;
    }
    int hour = static_cast<int>(time.hours().count());
    if (!f.hours[hour]) {
      t = LocalMinutes(day) + chr::hours(hour + 1);
      continue;
    }
    int minute = static_cast<int>(time.minutes().count());
    if (!f.minutes[minute]) {
      t += Minutes(1);
      continue;
    }
    return t;
  }
  return std::nullopt;
}

}  // namespace

Result<CronFields> CronFields::Parse(std::string_view text) {
  std::string_view expanded = text;
  if (!text.empty() && text[0] == '@') {
    expanded = Macro(text);
    if (expanded.empty()) {
      return Status::InvalidArgument("cron: unknown macro '" + std::string(text) +
                                     "' (@yearly @annually @monthly @weekly @daily @midnight "
                                     "@hourly)");
    }
  }
  std::vector<std::string_view> parts;
  size_t pos = 0;
  while (pos < expanded.size()) {
    while (pos < expanded.size() && std::isspace(static_cast<unsigned char>(expanded[pos]))) ++pos;
    size_t end = pos;
    while (end < expanded.size() && !std::isspace(static_cast<unsigned char>(expanded[end]))) ++end;
    if (end > pos) parts.push_back(expanded.substr(pos, end - pos));
    pos = end;
  }
  if (parts.size() != 5) {
    return Status::InvalidArgument("cron '" + std::string(text) + "' needs 5 fields (minute hour " +
                                   "day-of-month month day-of-week), has " +
                                   std::to_string(parts.size()));
  }
  CronFields f;
  std::vector<bool> bits;
  bool star = false;
  for (int i = 0; i < 5; ++i) {
    KEEL_RETURN_IF_ERROR(ParseField(kFields[i], parts[i], bits, &star));
    for (size_t v = 0; v < bits.size(); ++v) {
      if (!bits[v]) continue;
      switch (i) {
        case 0:
          f.minutes.set(v);
          break;
        case 1:
          f.hours.set(v);
          break;
        case 2:
          f.days_of_month.set(v);
          break;
        case 3:
          f.months.set(v);
          break;
        case 4:
          f.days_of_week.set(v % 7);
          break;
      }
    }
    if (i == 0 || i == 1) f.wildcard_time = f.wildcard_time || star;
    if (i == 2) f.dom_star = star;
    if (i == 4) f.dow_star = star;
  }
  // Can a day ever match? With both day fields restricted a chosen day of
  // the week does (some day of every month is one); else some chosen month
  // must have a chosen day of the month.
  if (f.dom_star || f.dow_star) {
    bool possible = false;
    for (int m = 1; m <= 12 && !possible; ++m) {
      if (!f.months[m]) continue;
      for (int d = 1; d <= kMaxDays[m]; ++d) possible = possible || f.days_of_month[d];
    }
    if (!possible) {
      return Status::InvalidArgument("cron '" + std::string(text) +
                                     "' can never fire: no chosen month has the chosen day");
    }
  }
  return f;
}

Result<FireRule> FireRule::Cron(std::string_view expression, std::string_view time_zone) {
  auto fields = CronFields::Parse(expression);
  if (!fields.ok()) return fields.status();
  FireRule rule;
  rule.fields_ = *fields;
  std::string zone = time_zone.empty() ? "UTC" : std::string(time_zone);
  try {
    rule.zone_ = date::locate_zone(zone);
  } catch (const std::exception& e) {
    return Status::InvalidArgument("unknown time zone '" + zone +
                                   "' (an IANA name such as Europe/Berlin)");
  }
  return rule;
}

Result<FireRule> FireRule::Every(int64_t every_ms) {
  if (every_ms < 1000 || every_ms % 1000 != 0) {
    return Status::InvalidArgument("an interval must be a whole number of seconds, at least 1s");
  }
  FireRule rule;
  rule.every_ms_ = every_ms;
  return rule;
}

std::optional<int64_t> FireRule::NextAfter(int64_t after_ns) const {
  if (every_ms_ > 0) {
    const int64_t every_ns = every_ms_ * 1'000'000;
    int64_t k = after_ns >= 0 ? after_ns / every_ns : -((-after_ns + every_ns - 1) / every_ns);
    return (k + 1) * every_ns;
  }
  return NextCron(after_ns);
}

// Walks the zone's offset periods forward from `after_ns`. Within one period
// wall time is UTC plus a constant offset, so the first matching wall time
// there is the first fire there; a period without one hands over to the next.
std::optional<int64_t> FireRule::NextCron(int64_t after_ns) const {
  using chr::nanoseconds;
  auto after = date::sys_time<nanoseconds>(nanoseconds(after_ns));
  SysMinutes t = date::floor<Minutes>(after) + Minutes(1);  // candidates >= t
  const SysMinutes end_of_search = t + Minutes(int64_t{kSearchYears} * 366 * 24 * 60);
  while (t < end_of_search) {
    date::sys_info period = zone_->get_info(t);
    auto offset = date::floor<Minutes>(period.offset);
    LocalMinutes wall{(t + offset).time_since_epoch()};
    LocalMinutes wall_limit{(end_of_search + offset).time_since_epoch()};
    auto match = FirstMatch(fields_, wall, wall_limit);
    if (!match) return std::nullopt;
    SysMinutes fire{match->time_since_epoch() - offset};
    if (fire < period.end) {
      // The second passing of a wall time the clocks repeat: only a job that
      // is not at a fixed time of day fires again.
      date::local_info local = zone_->get_info(*match);
      bool second_passing =
          local.result == date::local_info::ambiguous &&
          fire == SysMinutes{match->time_since_epoch() - date::floor<Minutes>(local.second.offset)};
      if (second_passing && !fields_.wildcard_time) {
        t = fire + Minutes(1);
        continue;
      }
      return chr::duration_cast<nanoseconds>(fire.time_since_epoch()).count();
    }
    // No match before the period ends. A fixed-time job whose wall time the
    // change skips fires at the change.
    auto next_offset = date::floor<Minutes>(zone_->get_info(period.end).offset);
    if (!fields_.wildcard_time && next_offset > offset) {
      LocalMinutes gap_end{(date::floor<Minutes>(period.end) + next_offset).time_since_epoch()};
      if (*match < gap_end) {
        return chr::duration_cast<nanoseconds>(period.end.time_since_epoch()).count();
      }
    }
    t = date::ceil<Minutes>(period.end);
  }
  return std::nullopt;
}

}  // namespace keel
