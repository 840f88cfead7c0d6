//! Parsing and next-time tests of cron schedules.

use super::*;

/// Epoch milliseconds of a UTC date and time.
fn at(year: i64, month: u32, day: u32, hour: u32, minute: u32) -> u64 {
    let days = u64::try_from(days_from_civil(year, month, day)).expect("after 1970");
    days * MS_PER_DAY + u64::from(hour * 60 + minute) * MS_PER_MINUTE
}

fn schedule(expr: &str) -> CronSchedule {
    CronSchedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

fn next(expr: &str, after: u64) -> u64 {
    schedule(expr)
        .next_after(after)
        .unwrap_or_else(|| panic!("{expr}: no next time"))
}

/// The successive fire times after `after`.
fn series(expr: &str, after: u64, count: usize) -> Vec<u64> {
    let schedule = schedule(expr);
    let mut out = Vec::new();
    let mut t = after;
    for _ in 0..count {
        t = schedule.next_after(t).expect("a next time");
        out.push(t);
    }
    out
}

fn parse_error(expr: &str) -> String {
    match CronSchedule::parse(expr) {
        Ok(s) => panic!("{expr} parsed as {s:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn civil_helpers_match_known_timestamps() {
    assert_eq!(at(1970, 1, 1, 0, 0), 0);
    assert_eq!(at(2000, 2, 29, 0, 0), 951_782_400_000);
    assert_eq!(at(2026, 11, 25, 21, 20), 1_795_641_600_000);
    assert_eq!(at(2028, 2, 29, 0, 0), 1_835_395_200_000);
    assert_eq!(at(2104, 2, 29, 0, 0), 4_233_686_400_000);
    assert_eq!(days_from_civil(1969, 12, 31), -1);
    assert_eq!(civil_from_days(-1), (1969, 12, 31));
    assert_eq!(weekday(0), 4);
    // 2026-11-25 is a Wednesday.
    assert_eq!(weekday(days_from_civil(2026, 11, 25)), 3);
}

#[test]
fn civil_helpers_round_trip() {
    let mut expected = (1600_i64, 1_u32, 1_u32);
    for days in days_from_civil(1600, 1, 1)..days_from_civil(2500, 1, 1) {
        assert_eq!(civil_from_days(days), expected);
        assert_eq!(days_from_civil(expected.0, expected.1, expected.2), days);
        let (y, m, d) = expected;
        expected = if d < days_in_month(y, m) {
            (y, m, d + 1)
        } else if m < 12 {
            (y, m + 1, 1)
        } else {
            (y + 1, 1, 1)
        };
    }
}

#[test]
fn every_minute() {
    let t = at(2026, 11, 25, 21, 20);
    assert_eq!(next("* * * * *", t), t + MS_PER_MINUTE);
    assert_eq!(next("* * * * *", t + 1), t + MS_PER_MINUTE);
    assert_eq!(next("* * * * *", t - 1), t);
    assert_eq!(
        series("* * * * *", at(2026, 12, 31, 23, 58), 3),
        vec![
            at(2026, 12, 31, 23, 59),
            at(2027, 1, 1, 0, 0),
            at(2027, 1, 1, 0, 1)
        ]
    );
}

#[test]
fn every_fifteen_minutes() {
    assert_eq!(
        series("*/15 * * * *", at(2026, 3, 1, 10, 7), 5),
        vec![
            at(2026, 3, 1, 10, 15),
            at(2026, 3, 1, 10, 30),
            at(2026, 3, 1, 10, 45),
            at(2026, 3, 1, 11, 0),
            at(2026, 3, 1, 11, 15),
        ]
    );
}

#[test]
fn specific_daily_time() {
    assert_eq!(
        next("30 9 * * *", at(2026, 3, 1, 8, 0)),
        at(2026, 3, 1, 9, 30)
    );
    assert_eq!(
        next("30 9 * * *", at(2026, 3, 1, 9, 31)),
        at(2026, 3, 2, 9, 30)
    );
    assert_eq!(
        next("30 9 * * *", at(2026, 3, 1, 23, 59)),
        at(2026, 3, 2, 9, 30)
    );
}

#[test]
fn ranges_and_lists() {
    assert_eq!(
        series("0,30 9-10 * * *", at(2026, 3, 1, 0, 0), 5),
        vec![
            at(2026, 3, 1, 9, 0),
            at(2026, 3, 1, 9, 30),
            at(2026, 3, 1, 10, 0),
            at(2026, 3, 1, 10, 30),
            at(2026, 3, 2, 9, 0),
        ]
    );
    assert_eq!(
        series("5 1-3,22 * * *", at(2026, 3, 1, 2, 6), 3),
        vec![
            at(2026, 3, 1, 3, 5),
            at(2026, 3, 1, 22, 5),
            at(2026, 3, 2, 1, 5)
        ]
    );
}

#[test]
fn steps_with_start_and_range() {
    // a/n means a-max/n.
    assert_eq!(
        series("50/4 * * * *", at(2026, 3, 1, 0, 0), 4),
        vec![
            at(2026, 3, 1, 0, 50),
            at(2026, 3, 1, 0, 54),
            at(2026, 3, 1, 0, 58),
            at(2026, 3, 1, 1, 50),
        ]
    );
    assert_eq!(
        series("0 8-17/4 * * *", at(2026, 3, 1, 0, 0), 4),
        vec![
            at(2026, 3, 1, 8, 0),
            at(2026, 3, 1, 12, 0),
            at(2026, 3, 1, 16, 0),
            at(2026, 3, 2, 8, 0),
        ]
    );
    // A step larger than the range keeps only the start.
    assert_eq!(schedule("*/100 * * * *").minutes, 1);
    assert_eq!(
        schedule("0 */7 * * *").hours,
        1 | 1 << 7 | 1 << 14 | 1 << 21
    );
}

#[test]
fn month_names() {
    assert_eq!(
        next("0 0 1 MAR *", at(2026, 3, 1, 0, 0)),
        at(2027, 3, 1, 0, 0)
    );
    assert_eq!(schedule("0 0 1 jan-Mar,DEC *"), {
        let mut s = schedule("0 0 1 1-3,12 *");
        s.expr = "0 0 1 jan-Mar,DEC *".to_owned();
        s
    });
    assert_eq!(
        series("0 0 1 JUN/3 *", at(2026, 1, 1, 0, 0), 3),
        vec![
            at(2026, 6, 1, 0, 0),
            at(2026, 9, 1, 0, 0),
            at(2026, 12, 1, 0, 0)
        ]
    );
}

#[test]
fn weekday_names() {
    // 2026-11-25 is a Wednesday.
    let wed = at(2026, 11, 25, 12, 0);
    assert_eq!(next("0 9 * * fri", wed), at(2026, 11, 27, 9, 0));
    assert_eq!(next("0 9 * * Mon-Fri", wed), at(2026, 11, 26, 9, 0));
    assert_eq!(next("0 9 * * SAT,SUN", wed), at(2026, 11, 28, 9, 0));
    assert_eq!(next("0 9 * * 1", wed), at(2026, 11, 30, 9, 0));
}

#[test]
fn sunday_is_zero_and_seven() {
    let wed = at(2026, 11, 25, 12, 0);
    let sunday = at(2026, 11, 29, 0, 0);
    assert_eq!(next("0 0 * * 0", wed), sunday);
    assert_eq!(next("0 0 * * 7", wed), sunday);
    assert_eq!(next("0 0 * * SUN", wed), sunday);
    assert_eq!(next("0 0 * * 5-7", wed), at(2026, 11, 27, 0, 0));
    assert_eq!(schedule("* * * * 0-7").days_of_week, 0x7f);
}

#[test]
fn vixie_day_rule_either_when_both_restricted() {
    // The 13th OR any Friday.
    assert_eq!(
        series("0 0 13 * FRI", at(2026, 11, 1, 0, 0), 5),
        vec![
            at(2026, 11, 6, 0, 0),
            at(2026, 11, 13, 0, 0),
            at(2026, 11, 20, 0, 0),
            at(2026, 11, 27, 0, 0),
            at(2026, 12, 4, 0, 0),
        ]
    );
    // 2026-12-13 is a Sunday: the 13th alone matches.
    assert_eq!(
        next("0 0 13 * FRI", at(2026, 12, 11, 0, 0)),
        at(2026, 12, 13, 0, 0)
    );
}

#[test]
fn vixie_day_rule_only_one_restricts() {
    // Day-of-week is *: only the 13th.
    assert_eq!(
        series("0 0 13 * *", at(2026, 11, 1, 0, 0), 2),
        vec![at(2026, 11, 13, 0, 0), at(2026, 12, 13, 0, 0)]
    );
    // Day-of-month is *: only Fridays.
    assert_eq!(
        series("0 0 * * FRI", at(2026, 11, 1, 0, 0), 2),
        vec![at(2026, 11, 6, 0, 0), at(2026, 11, 13, 0, 0)]
    );
    // A day field starting with '*' counts as unrestricted, as in Vixie cron, so the
    // two combine by AND: odd days that are Mondays.
    assert_eq!(
        series("0 0 */2 * MON", at(2026, 11, 1, 0, 0), 3),
        vec![
            at(2026, 11, 9, 0, 0),
            at(2026, 11, 23, 0, 0),
            at(2026, 12, 7, 0, 0)
        ]
    );
}

#[test]
fn aliases() {
    let t = at(2026, 11, 25, 21, 20);
    assert_eq!(next("@hourly", t), at(2026, 11, 25, 22, 0));
    assert_eq!(next("@daily", t), at(2026, 11, 26, 0, 0));
    assert_eq!(next("@midnight", t), at(2026, 11, 26, 0, 0));
    assert_eq!(next("@weekly", t), at(2026, 11, 29, 0, 0));
    assert_eq!(next("@monthly", t), at(2026, 12, 1, 0, 0));
    assert_eq!(next("@yearly", t), at(2027, 1, 1, 0, 0));
    assert_eq!(next("@annually", t), at(2027, 1, 1, 0, 0));
    assert_eq!(next("@DAILY", t), at(2026, 11, 26, 0, 0));
    assert_eq!(schedule(" @daily ").as_str(), "@daily");
}

#[test]
fn end_of_month_rollover() {
    assert_eq!(
        next("0 12 * * *", at(2026, 4, 30, 13, 0)),
        at(2026, 5, 1, 12, 0)
    );
    assert_eq!(
        next("0 0 31 * *", at(2026, 3, 31, 0, 0)),
        at(2026, 5, 31, 0, 0)
    );
    assert_eq!(
        next("0 0 30 * *", at(2026, 1, 30, 0, 0)),
        at(2026, 3, 30, 0, 0)
    );
    assert_eq!(
        next("0 0 28-31 * *", at(2026, 2, 28, 0, 0)),
        at(2026, 3, 28, 0, 0)
    );
}

#[test]
fn end_of_year_rollover() {
    assert_eq!(
        next("59 23 31 12 *", at(2026, 12, 31, 23, 59)),
        at(2027, 12, 31, 23, 59)
    );
    assert_eq!(
        next("0 0 * * *", at(2026, 12, 31, 0, 0)),
        at(2027, 1, 1, 0, 0)
    );
    assert_eq!(
        next("0 0 1 JAN *", at(2026, 1, 1, 0, 0)),
        at(2027, 1, 1, 0, 0)
    );
}

#[test]
fn leap_day() {
    assert_eq!(
        next("0 0 29 2 *", at(2025, 3, 1, 0, 0)),
        at(2028, 2, 29, 0, 0)
    );
    assert_eq!(next("0 0 29 2 *", at(2025, 3, 1, 0, 0)), 1_835_395_200_000);
    // 2100 is not a leap year, so the gap is eight years.
    assert_eq!(
        next("0 0 29 2 *", at(2096, 3, 1, 0, 0)),
        at(2104, 2, 29, 0, 0)
    );
    assert_eq!(
        next("0 0 * 2 *", at(2028, 2, 28, 23, 59)),
        at(2028, 2, 29, 0, 0)
    );
    assert_eq!(
        next("0 0 * 2 *", at(2027, 2, 28, 0, 0)),
        at(2028, 2, 1, 0, 0)
    );
}

#[test]
fn impossible_dates_return_none() {
    let t = at(2026, 11, 25, 21, 20);
    for expr in [
        "0 0 31 2 *",
        "0 0 30 2 *",
        "0 0 31 4,6,9,11 *",
        "0 0 30,31 FEB *",
    ] {
        assert_eq!(schedule(expr).next_after(t), None, "{expr}");
    }
    // A weekday alternative makes an impossible day possible again.
    assert_eq!(next("0 0 31 2 MON", t), at(2027, 2, 1, 0, 0));
}

#[test]
fn next_after_is_strictly_after() {
    let s = schedule("0 12 * * *");
    let noon = at(2026, 11, 25, 12, 0);
    assert_eq!(s.next_after(noon), Some(at(2026, 11, 26, 12, 0)));
    assert_eq!(s.next_after(noon - 1), Some(noon));
    assert_eq!(s.next_after(noon + 1), Some(at(2026, 11, 26, 12, 0)));
    assert_eq!(s.next_after(0), Some(at(1970, 1, 1, 12, 0)));
    for after in [noon - 1, noon + 59_999, 1_795_641_600_123] {
        let fire = s.next_after(after).expect("a next time");
        assert!(fire > after);
        assert_eq!(fire % MS_PER_MINUTE, 0);
    }
}

/// Whether `schedule` fires on day `day` (since the epoch), judged from the calendar
/// date directly rather than through the month masks `next_after` builds.
fn fires_on_day(schedule: &CronSchedule, day: u64) -> bool {
    let day = i64::try_from(day).expect("small");
    let (_, month, day_of_month) = civil_from_days(day);
    let bit = |mask: u64, n: u32| mask & (1 << n) != 0;
    let by_month_day = bit(schedule.days_of_month, day_of_month);
    let by_weekday = bit(schedule.days_of_week, weekday(day));
    let day_ok = if schedule.days_either {
        by_month_day || by_weekday
    } else {
        by_month_day && by_weekday
    };
    bit(schedule.months, month) && day_ok
}

fn fires_at_minute_of_day(schedule: &CronSchedule, minute_of_day: u64) -> bool {
    schedule.hours & (1 << (minute_of_day / 60)) != 0
        && schedule.minutes & (1 << (minute_of_day % 60)) != 0
}

#[test]
fn matches_brute_force_search() {
    let pieces: [&[&str]; 5] = [
        &["*", "0", "*/7", "5-10", "59", "1,31,45", "10/20"],
        &["*", "0", "23", "*/5", "9-17/4", "3,12"],
        &["*", "1", "31", "29", "*/10", "13", "15-20", "2,30", "28-31"],
        &["*", "2", "FEB", "1-6", "*/3", "DEC", "4,6,9,11"],
        &["*", "0", "7", "MON-FRI", "*/2", "SAT", "2/3", "TUE,THU"],
    ];
    // A fixed linear congruential generator keeps the test reproducible.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut random = |n: usize| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as usize % n
    };
    const WINDOW_DAYS: u64 = 800;
    for _ in 0..2_000 {
        let expr = pieces
            .iter()
            .map(|options| options[random(options.len())])
            .collect::<Vec<_>>()
            .join(" ");
        let s = schedule(&expr);
        let after = at(2024, 1, 1, 0, 0)
            + (random(3 * 365 * 1440) as u64) * MS_PER_MINUTE
            + random(MS_PER_MINUTE as usize) as u64;
        let first = after / MS_PER_MINUTE + 1;
        let mut expected = None;
        let mut minute = first;
        while minute < first + WINDOW_DAYS * MINUTES_PER_DAY {
            if !fires_on_day(&s, minute / MINUTES_PER_DAY) {
                minute = (minute / MINUTES_PER_DAY + 1) * MINUTES_PER_DAY;
            } else if fires_at_minute_of_day(&s, minute % MINUTES_PER_DAY) {
                expected = Some(minute * MS_PER_MINUTE);
                break;
            } else {
                minute += 1;
            }
        }
        let actual = s.next_after(after);
        match expected {
            Some(_) => assert_eq!(actual, expected, "{expr} after {after}"),
            None => assert!(
                actual.is_none_or(|t| t >= (first + WINDOW_DAYS * MINUTES_PER_DAY) * MS_PER_MINUTE),
                "{expr} after {after}: {actual:?}"
            ),
        }
    }
}

#[test]
fn far_future_does_not_overflow() {
    assert_eq!(schedule("* * * * *").next_after(u64::MAX), None);
    let near_end = u64::MAX - 10 * MS_PER_DAY;
    let fire = next("0 0 * * *", near_end);
    assert!(fire > near_end);
}

#[test]
fn as_str_is_trimmed_input() {
    assert_eq!(schedule("  */5  *\t* * *\n").as_str(), "*/5  *\t* * *");
}

#[test]
fn rejects_wrong_field_count() {
    assert!(parse_error("").contains("empty"));
    assert!(parse_error("   ").contains("empty"));
    assert_eq!(
        parse_error("* * * *"),
        "cron expression '* * * *' has 4 fields; expected 5 \
         (minute hour day-of-month month day-of-week)"
    );
    assert!(parse_error("0 * * * * *").contains("has 6 fields"));
    assert!(parse_error("@reboot").contains("unknown cron alias '@reboot'"));
    assert!(parse_error("@daily *").contains("unknown cron alias"));
}

#[test]
fn rejects_empty_list_items() {
    assert_eq!(
        parse_error("1,,2 * * * *"),
        "cron field 1 (minute) '1,,2' has an empty list item"
    );
    assert!(parse_error("* ,1 * * *").contains("cron field 2 (hour) ',1'"));
    assert!(parse_error("* * * * 1,").contains("cron field 5 (day-of-week) '1,'"));
}

#[test]
fn rejects_out_of_range_values() {
    assert_eq!(
        parse_error("0 25 * * *"),
        "cron field 2 (hour) '25' is out of range 0-23"
    );
    assert_eq!(
        parse_error("60 * * * *"),
        "cron field 1 (minute) '60' is out of range 0-59"
    );
    assert_eq!(
        parse_error("* * 0 * *"),
        "cron field 3 (day-of-month) '0' is out of range 1-31"
    );
    assert!(parse_error("* * 32 * *").contains("'32' is out of range 1-31"));
    assert!(parse_error("* * * 13 *").contains("cron field 4 (month) '13' is out of range 1-12"));
    assert!(parse_error("* * * 0 *").contains("'0' is out of range 1-12"));
    assert!(parse_error("* * * * 8").contains("cron field 5 (day-of-week) '8' is out of range 0-7"));
    assert!(parse_error("1-60 * * * *").contains("'60' is out of range"));
    assert!(parse_error("99999999999 * * * *").contains("'99999999999' is out of range"));
}

#[test]
fn rejects_backward_ranges() {
    assert_eq!(
        parse_error("* 5-3 * * *"),
        "cron field 2 (hour) '5-3' is a range whose start is after its end"
    );
    assert!(parse_error("* * * * FRI-MON").contains("start is after its end"));
    assert!(parse_error("* * * DEC-JAN *").contains("start is after its end"));
}

#[test]
fn rejects_step_zero() {
    assert_eq!(
        parse_error("*/0 * * * *"),
        "cron field 1 (minute) '*/0' has step 0; a step must be at least 1"
    );
    assert!(parse_error("* 1-5/0 * * *").contains("step 0"));
    assert!(parse_error("* * 3/0 * *").contains("step 0"));
}

#[test]
fn rejects_garbage() {
    for (expr, needle) in [
        (
            "x * * * *",
            "cron field 1 (minute) 'x' is not a valid value (expected 0-59)",
        ),
        (
            "* * * * MONDAY",
            "'MONDAY' is not a valid value (expected 0-7 or SUN-SAT)",
        ),
        (
            "* * * MON *",
            "'MON' is not a valid value (expected 1-12 or JAN-DEC)",
        ),
        (
            "JAN * * * *",
            "cron field 1 (minute) 'JAN' is not a valid value",
        ),
        ("1-2-3 * * * *", "'2-3' is not a valid value"),
        ("*/x * * * *", "'*/x' has an invalid step 'x'"),
        ("*/ * * * *", "'*/' has an invalid step ''"),
        ("1/2/3 * * * *", "has an invalid step '2/3'"),
        ("*/99999999999 * * * *", "too large"),
        ("+5 * * * *", "'+5' is not a valid value"),
        ("-5 * * * *", "'-5' has an empty value"),
        ("5- * * * *", "'5-' has an empty value"),
        ("/5 * * * *", "'/5' has an empty value"),
        ("** * * * *", "'**' is not a valid value"),
        ("*-5 * * * *", "'*' is not a valid value"),
        ("1.5 * * * *", "'1.5' is not a valid value"),
    ] {
        let error = parse_error(expr);
        assert!(error.contains(needle), "{expr}: {error}");
    }
}

#[test]
fn errors_say_which_field_and_value_in_their_fields_too() {
    match CronSchedule::parse("0 25 * * *") {
        Err(CronError::Field {
            position,
            name,
            value,
            ..
        }) => assert_eq!((position, name, value.as_str()), (2, "hour", "25")),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        CronSchedule::parse("* * *"),
        Err(CronError::FieldCount {
            expr: "* * *".to_owned(),
            found: 3
        })
    );
    assert_eq!(CronSchedule::parse("  "), Err(CronError::Empty));
    assert_eq!(
        CronSchedule::parse("@sometimes"),
        Err(CronError::UnknownAlias("@sometimes".to_owned()))
    );
}
