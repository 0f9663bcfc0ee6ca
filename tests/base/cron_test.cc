#include "base/cron.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/time.h"

namespace keel {
namespace {

// The next `count` fires of `rule` after `after` (RFC 3339), as RFC 3339.
std::vector<std::string> Fires(const FireRule& rule, const std::string& after, int count) {
  auto from = ParseTimeNs(after);
  EXPECT_TRUE(from.ok()) << after;
  std::vector<std::string> out;
  int64_t t = *from;
  for (int i = 0; i < count; ++i) {
    auto next = rule.NextAfter(t);
    if (!next) {
      out.push_back("never");
      break;
    }
    out.push_back(FormatTime(*next));
    t = *next;
  }
  return out;
}

FireRule Cron(const std::string& expr, const std::string& zone = "UTC") {
  auto rule = FireRule::Cron(expr, zone);
  EXPECT_TRUE(rule.ok()) << expr << ": " << rule.status().ToString();
  return rule.ok() ? *rule : *FireRule::Every(1000);
}

using Times = std::vector<std::string>;

TEST(CronTest, RangesStepsAndWeekdayNames) {
  // 2026-12-05 is a Saturday.
  EXPECT_EQ(Fires(Cron("0 9-17/2 * * mon-fri"), "2026-12-05T00:00:00Z", 6),
            (Times{"2026-12-07T09:00:00Z", "2026-12-07T11:00:00Z", "2026-12-07T13:00:00Z",
                   "2026-12-07T15:00:00Z", "2026-12-07T17:00:00Z", "2026-12-08T09:00:00Z"}));
}

TEST(CronTest, StepsFromAStartValueRunToTheEndOfTheField) {
  EXPECT_EQ(Fires(Cron("5/20 * * * *"), "2026-12-05T10:00:00Z", 4),
            (Times{"2026-12-05T10:05:00Z", "2026-12-05T10:25:00Z", "2026-12-05T10:45:00Z",
                   "2026-12-05T11:05:00Z"}));
  EXPECT_EQ(Fires(Cron("*/15 * * * *"), "2026-12-05T10:07:30Z", 2),
            (Times{"2026-12-05T10:15:00Z", "2026-12-05T10:30:00Z"}));
}

TEST(CronTest, ListsAndMonthNamesInAnyCase) {
  EXPECT_EQ(Fires(Cron("0 0 1 jan,JUL *"), "2026-02-01T00:00:00Z", 2),
            (Times{"2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z"}));
  EXPECT_EQ(Fires(Cron("15,45 6 * * *"), "2026-12-05T06:20:00Z", 3),
            (Times{"2026-12-05T06:45:00Z", "2026-12-06T06:15:00Z", "2026-12-06T06:45:00Z"}));
}

TEST(CronTest, SundayIsZeroOrSeven) {
  // 2026-12-06 is a Sunday.
  EXPECT_EQ(Fires(Cron("0 0 * * 7"), "2026-12-05T00:00:00Z", 1), (Times{"2026-12-06T00:00:00Z"}));
  EXPECT_EQ(Fires(Cron("0 0 * * sun"), "2026-12-05T00:00:00Z", 1), (Times{"2026-12-06T00:00:00Z"}));
  EXPECT_EQ(Fires(Cron("0 0 * * mon-7"), "2026-12-05T00:00:00Z", 2),
            (Times{"2026-12-06T00:00:00Z", "2026-12-07T00:00:00Z"}));
}

TEST(CronTest, BothDayFieldsRestrictedMatchEitherAsVixieCron) {
  // The 13th, or any Friday (Nov 2026: Fridays 6, 13, 20, 27; Dec 13 is a Sunday).
  EXPECT_EQ(Fires(Cron("0 0 13 * fri"), "2026-11-01T00:00:00Z", 8),
            (Times{"2026-11-06T00:00:00Z", "2026-11-13T00:00:00Z", "2026-11-20T00:00:00Z",
                   "2026-11-27T00:00:00Z", "2026-12-04T00:00:00Z", "2026-12-11T00:00:00Z",
                   "2026-12-13T00:00:00Z", "2026-12-18T00:00:00Z"}));
}

TEST(CronTest, ADayFieldStartingWithStarLetsTheOtherDecideAlone) {
  // Odd days that are Mondays (Nov 2026 Mondays: 2, 9, 16, 23, 30).
  EXPECT_EQ(Fires(Cron("0 0 */2 * mon"), "2026-11-01T00:00:00Z", 2),
            (Times{"2026-11-09T00:00:00Z", "2026-11-23T00:00:00Z"}));
  EXPECT_EQ(Fires(Cron("0 0 */10 * *"), "2026-12-01T00:00:00Z", 3),
            (Times{"2026-12-11T00:00:00Z", "2026-12-21T00:00:00Z", "2026-12-31T00:00:00Z"}));
}

TEST(CronTest, MacrosAndLeapDays) {
  EXPECT_EQ(Fires(Cron("@hourly"), "2026-12-05T10:00:00Z", 1), (Times{"2026-12-05T11:00:00Z"}));
  EXPECT_EQ(Fires(Cron("@yearly"), "2026-12-05T10:00:00Z", 1), (Times{"2027-01-01T00:00:00Z"}));
  EXPECT_EQ(Fires(Cron("0 12 29 feb *"), "2026-01-01T00:00:00Z", 1),
            (Times{"2028-02-29T12:00:00Z"}));
}

TEST(CronTest, RefusesWhatCannotBeRead) {
  for (const char* bad :
       {"60 * * * *", "* * * *", "* * * * * *", "0 24 * * *", "0 0 0 * *", "0 0 * 13 *",
        "0 0 * * 8", "5-1 * * * *", "*/0 * * * *", "1,,2 * * * *", "0 0 * foo *", "0 0 * * mon-sun",
        "@often", "0 0 30 feb *", "0 0 31 apr,jun *", "a * * * *", "0/ * * * *"}) {
    auto rule = FireRule::Cron(bad, "UTC");
    EXPECT_FALSE(rule.ok()) << bad;
    if (!rule.ok()) {
      EXPECT_EQ(rule.status().code(), Status::Code::kInvalidArgument) << bad;
    }
  }
  EXPECT_FALSE(FireRule::Cron("* * * * *", "Mars/Olympus").ok());
  EXPECT_FALSE(FireRule::Every(500).ok());
  EXPECT_FALSE(FireRule::Every(1500).ok());
  EXPECT_FALSE(FireRule::Every(0).ok());
}

TEST(CronTest, IntervalsFireAtWholeMultiplesSinceTheEpoch) {
  auto every = FireRule::Every(10 * 60 * 1000);
  ASSERT_TRUE(every.ok());
  EXPECT_EQ(Fires(*every, "2026-12-05T10:03:12.5Z", 2),
            (Times{"2026-12-05T10:10:00Z", "2026-12-05T10:20:00Z"}));
  EXPECT_EQ(Fires(*every, "2026-12-05T10:10:00Z", 1), (Times{"2026-12-05T10:20:00Z"}));
}

TEST(CronTest, ZoneShiftsWallTimesToUtc) {
  // 09:00 in Berlin is 08:00 UTC in winter, 07:00 in summer.
  EXPECT_EQ(Fires(Cron("0 9 * * *", "Europe/Berlin"), "2026-12-05T00:00:00Z", 1),
            (Times{"2026-12-05T08:00:00Z"}));
  EXPECT_EQ(Fires(Cron("0 9 * * *", "Europe/Berlin"), "2026-07-01T00:00:00Z", 1),
            (Times{"2026-07-01T07:00:00Z"}));
}

// Berlin springs forward on 2026-03-29 at 01:00 UTC: 02:00 CET becomes 03:00 CEST.
TEST(CronTest, BerlinSpringForwardFiresASkippedFixedTimeAtTheChange) {
  EXPECT_EQ(Fires(Cron("30 2 * * *", "Europe/Berlin"), "2026-03-27T12:00:00Z", 3),
            (Times{"2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"}));
  // Every skipped fixed time of the night fires once, at the change.
  EXPECT_EQ(Fires(Cron("0,30 2 * * *", "Europe/Berlin"), "2026-03-29T00:00:00Z", 2),
            (Times{"2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"}));
}

TEST(CronTest, BerlinSpringForwardSkipsWildcardTimesInTheGap) {
  EXPECT_EQ(Fires(Cron("*/30 * * * *", "Europe/Berlin"), "2026-03-29T00:00:00Z", 3),
            (Times{"2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"}));
  // 01:30 CET, then 03:00 and 03:30 CEST: 02:00 and 02:30 never happen.
}

// Berlin falls back on 2026-10-25 at 01:00 UTC: 03:00 CEST becomes 02:00 CET.
TEST(CronTest, BerlinFallBackFiresAFixedTimeOnceAtItsFirstPassing) {
  EXPECT_EQ(Fires(Cron("30 2 * * *", "Europe/Berlin"), "2026-10-24T12:00:00Z", 3),
            (Times{"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z", "2026-10-27T01:30:00Z"}));
}

TEST(CronTest, BerlinFallBackFiresWildcardTimesAtBothPassings) {
  EXPECT_EQ(Fires(Cron("*/30 * * * *", "Europe/Berlin"), "2026-10-25T00:00:00Z", 4),
            (Times{"2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:30:00Z",
                   "2026-10-25T02:00:00Z"}));
}

// New York springs forward on 2026-03-08 at 07:00 UTC (02:00 EST -> 03:00 EDT)
// and falls back on 2026-11-01 at 06:00 UTC (02:00 EDT -> 01:00 EST).
TEST(CronTest, NewYorkSpringForward) {
  EXPECT_EQ(Fires(Cron("30 2 * * *", "America/New_York"), "2026-03-07T12:00:00Z", 3),
            (Times{"2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"}));
  EXPECT_EQ(Fires(Cron("0 * * * *", "America/New_York"), "2026-03-08T06:30:00Z", 2),
            (Times{"2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"}));
}

TEST(CronTest, NewYorkFallBack) {
  EXPECT_EQ(Fires(Cron("30 1 * * *", "America/New_York"), "2026-10-31T12:00:00Z", 2),
            (Times{"2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"}));
  EXPECT_EQ(Fires(Cron("0 * * * *", "America/New_York"), "2026-11-01T04:30:00Z", 3),
            (Times{"2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z"}));
}

}  // namespace
}  // namespace keel
