#pragma once

// When a schedule fires: a 5-field cron expression read in an IANA time zone,
// or a fixed interval. Pure computation over Howard Hinnant's date/tz, which
// reads the system's zoneinfo (Debian: tzdata, /usr/share/zoneinfo).
//
// Cron fields, as Vixie cron reads them:
//   minute 0-59 · hour 0-23 · day of month 1-31 · month 1-12 or jan-dec ·
//   day of week 0-7 or sun-sat (0 and 7 are Sunday)
// Each field is a list of items separated by ',': '*', N, N-M, each with an
// optional '/STEP' ('N/STEP' means N-max/STEP). Names are case-insensitive.
// When both day fields are restricted a day matches if EITHER does; when one
// of them starts with '*' the other alone decides (Vixie's rule). The macros
// @yearly @annually @monthly @weekly @daily @midnight @hourly stand for their
// usual five fields. An expression that can never fire (Feb 30) is refused.
//
// Daylight-saving changes, as Vixie cron treats them: a wall time the clocks
// skip (spring forward) fires at the moment of the change if the minute and
// hour fields are both fixed, and not at all otherwise (`*/15 * * * *` goes
// on from the new time); a wall time the clocks pass twice (fall back) fires
// once, at its first passing, if the minute and hour fields are fixed, and at
// both passings otherwise (so an every-15-minutes cron keeps its pace).

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "keel/status.h"

namespace date {
class time_zone;
}

namespace keel {

// A parsed 5-field cron expression.
struct CronFields {
  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> days_of_month;  // 1..31
  std::bitset<13> months;         // 1..12
  std::bitset<7> days_of_week;    // 0..6, Sunday = 0
  bool dom_star = false;          // day-of-month field starts with '*'
  bool dow_star = false;          // day-of-week field starts with '*'
  // Minute or hour field starts with '*': the job is not at a fixed time of
  // day, which changes how daylight-saving changes treat it (above).
  bool wildcard_time = false;

  // Reads `text` (five fields or a macro); InvalidArgument naming the field
  // and the item otherwise, or when no date can ever match.
  static Result<CronFields> Parse(std::string_view text);
};

// When a schedule fires. Copyable; the time zone is the tz database's own
// object, which lives as long as the program.
class FireRule {
 public:
  // A cron expression read in `time_zone` (an IANA name such as
  // "Europe/Berlin"; empty means "UTC"). InvalidArgument for a bad
  // expression or a zone the system's database does not know.
  static Result<FireRule> Cron(std::string_view expression, std::string_view time_zone);
  // Every `every_ms` milliseconds, at whole multiples since the Unix epoch
  // (so `10m` fires at :00, :10, ...). At least one second, in whole seconds.
  static Result<FireRule> Every(int64_t every_ms);

  // The first fire time strictly after `after_ns` (ns since the epoch, UTC);
  // nullopt when there is none within the next eight years.
  std::optional<int64_t> NextAfter(int64_t after_ns) const;

  bool is_cron() const { return every_ms_ == 0; }

 private:
  FireRule() = default;
  std::optional<int64_t> NextCron(int64_t after_ns) const;

  CronFields fields_;
  const date::time_zone* zone_ = nullptr;
  int64_t every_ms_ = 0;
};

}  // namespace keel
