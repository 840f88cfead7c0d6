//! Cron schedules: parsing standard five-field cron expressions and finding the next fire
//! time in UTC on a millisecond clock.
//!
//! The calendar arithmetic is done here (Howard Hinnant's `days_from_civil` /
//! `civil_from_days`) rather than with a date/time crate, because UTC-only scheduling
//! needs nothing more than the proleptic Gregorian calendar.

mod calendar;
mod error;

use calendar::{civil_from_days, days_from_civil, days_in_month, weekday};
pub use error::CronError;

const MS_PER_MINUTE: u64 = 60_000;
const MINUTES_PER_DAY: u64 = 1_440;
const MS_PER_DAY: u64 = MS_PER_MINUTE * MINUTES_PER_DAY;

/// How many calendar months `next_after` examines before concluding that nothing matches.
/// The Gregorian calendar repeats exactly every 400 years (146,097 days, a whole number
/// of weeks), so a schedule with no match in that span never matches. A shorter horizon
/// would wrongly give up on rare but real schedules, e.g. Feb 29 seen from 2096-03-01
/// next fires on 2104-02-29 because 2100 is not a leap year. Each month costs O(1) (at
/// most 31 weekday checks), so even an impossible schedule is settled in under a millisecond.
const SEARCH_MONTHS: u32 = 400 * 12 + 1;

const MONTH_NAMES: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAY_NAMES: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// The shortcuts accepted in place of five fields.
const ALIASES: &[(&str, &str)] = &[
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// What one of the five fields accepts; its position and name appear in error messages
/// so that a user can find the mistake in a long expression.
struct Field {
    position: usize,
    name: &'static str,
    min: u32,
    max: u32,
    /// Symbolic names for consecutive values starting at `names_start`.
    names: &'static [&'static str],
    names_start: u32,
}

impl Field {
    fn error(&self, value: &str, problem: impl std::fmt::Display) -> CronError {
        CronError::Field {
            position: self.position,
            name: self.name,
            value: value.to_owned(),
            problem: problem.to_string(),
        }
    }

    fn expected(&self) -> String {
        match (self.names.first(), self.names.last()) {
            (Some(first), Some(last)) => {
                format!("{}-{} or {}-{}", self.min, self.max, first, last)
            }
            _ => format!("{}-{}", self.min, self.max),
        }
    }
}

const MINUTE: Field = Field {
    position: 1,
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    names_start: 0,
};
const HOUR: Field = Field {
    position: 2,
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    names_start: 0,
};
const DAY_OF_MONTH: Field = Field {
    position: 3,
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    names_start: 0,
};
const MONTH: Field = Field {
    position: 4,
    name: "month",
    min: 1,
    max: 12,
    names: MONTH_NAMES,
    names_start: 1,
};
/// 7 is accepted as a second Sunday because both conventions are common in crontabs.
const DAY_OF_WEEK: Field = Field {
    position: 5,
    name: "day-of-week",
    min: 0,
    max: 7,
    names: WEEKDAY_NAMES,
    names_start: 0,
};

/// A cron schedule: five fields (minute hour day-of-month month day-of-week), in UTC.
///
/// Each field accepts `*`, a value, a range `a-b`, a step `*/n`, `a-b/n` or `a/n`
/// (meaning `a-max/n`), and comma lists of these. Months accept `JAN`-`DEC` and weekdays
/// `SUN`-`SAT` (case-insensitive); weekday 0 and 7 are both Sunday. The aliases
/// `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight` and `@hourly` are
/// accepted in place of the five fields.
///
/// Days follow the Vixie cron rule: when both day-of-month and day-of-week are
/// restricted, a day matches if either matches; otherwise both must match. As in Vixie
/// cron, a day field that starts with `*` (such as `*` or `*/2`) counts as unrestricted,
/// so `0 0 */2 * MON` fires on odd-numbered days that are Mondays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronSchedule {
    expr: String,
    /// Bit n set when minute n matches; likewise for the other masks.
    minutes: u64,
    hours: u64,
    /// Bits 1-31.
    days_of_month: u64,
    /// Bits 1-12.
    months: u64,
    /// Bits 0-6, Sunday = 0 (a 7 in the expression is folded into bit 0).
    days_of_week: u64,
    /// Whether a day matches on day-of-month OR day-of-week (both restricted) rather
    /// than AND.
    days_either: bool,
}

impl CronSchedule {
    /// Parses `expr`. Errors name the offending field and value, e.g.
    /// "cron field 2 (hour) '25' is out of range 0-23".
    pub fn parse(expr: &str) -> Result<Self, CronError> {
        let trimmed = expr.trim();
        if trimmed.is_empty() {
            return Err(CronError::Empty);
        }
        let body = if trimmed.starts_with('@') {
            ALIASES
                .iter()
                .find(|(alias, _)| alias.eq_ignore_ascii_case(trimmed))
                .map(|(_, fields)| *fields)
                .ok_or_else(|| CronError::UnknownAlias(trimmed.to_owned()))?
        } else {
            trimmed
        };
        let parts: Vec<&str> = body.split_whitespace().collect();
        let &[minute, hour, day_of_month, month, day_of_week] = parts.as_slice() else {
            return Err(CronError::FieldCount {
                expr: trimmed.to_owned(),
                found: parts.len(),
            });
        };

        let mut days_of_week = parse_field(day_of_week, &DAY_OF_WEEK)?;
        if days_of_week & (1 << 7) != 0 {
            days_of_week = (days_of_week & !(1 << 7)) | 1;
        }
        Ok(CronSchedule {
            expr: trimmed.to_owned(),
            minutes: parse_field(minute, &MINUTE)?,
            hours: parse_field(hour, &HOUR)?,
            days_of_month: parse_field(day_of_month, &DAY_OF_MONTH)?,
            months: parse_field(month, &MONTH)?,
            days_of_week,
            days_either: !day_of_month.starts_with('*') && !day_of_week.starts_with('*'),
        })
    }

    /// The first fire time strictly after `after_ms` (milliseconds since the Unix epoch,
    /// UTC), as milliseconds since the epoch (always a whole minute). None only if no time
    /// ever matches (e.g. "0 0 31 2 *"), or if the next match would not fit in a `u64`.
    pub fn next_after(&self, after_ms: u64) -> Option<u64> {
        // Fire times are whole minutes, so the first candidate is the next minute
        // boundary; this also makes an exact match at `after_ms` move on to the next one.
        let start = after_ms / MS_PER_MINUTE + 1;
        let start_day = i64::try_from(start / MINUTES_PER_DAY).ok()?;
        let mut from_minute = u32::try_from(start % MINUTES_PER_DAY).ok()?;
        let (mut year, mut month, mut from_day) = civil_from_days(start_day);

        for _ in 0..SEARCH_MONTHS {
            if self.months & (1 << month) != 0 {
                let days = self.matching_days(year, month);
                let mut candidate = next_bit(days, from_day);
                while let Some(day) = candidate {
                    let from = if day == from_day { from_minute } else { 0 };
                    if let Some(minute_of_day) = self.first_time_from(from) {
                        let day_number = u64::try_from(days_from_civil(year, month, day)).ok()?;
                        return day_number
                            .checked_mul(MS_PER_DAY)?
                            .checked_add(u64::from(minute_of_day) * MS_PER_MINUTE);
                    }
                    // Only the starting day can run out of times; any later day starts
                    // at midnight and so always has one.
                    candidate = next_bit(days, day + 1);
                }
            }
            (year, month) = if month == 12 {
                (year + 1, 1)
            } else {
                (year, month + 1)
            };
            from_day = 1;
            from_minute = 0;
        }
        None
    }

    /// The expression as given (trimmed).
    pub fn as_str(&self) -> &str {
        &self.expr
    }

    /// The days of a month (bits 1-31) on which the schedule fires, computed as a mask so
    /// that a month is settled without visiting its days one by one.
    fn matching_days(&self, year: i64, month: u32) -> u64 {
        let len = days_in_month(year, month);
        let valid = ((1u64 << (len + 1)) - 1) & !1;
        let first_weekday = weekday(days_from_civil(year, month, 1));
        let mut by_weekday = 0u64;
        for day in 1..=len {
            if self.days_of_week & (1 << ((first_weekday + day - 1) % 7)) != 0 {
                by_weekday |= 1 << day;
            }
        }
        let days = if self.days_either {
            self.days_of_month | by_weekday
        } else {
            self.days_of_month & by_weekday
        };
        days & valid
    }

    /// The first matching minute of the day (0-1439) at or after `from`, if any.
    fn first_time_from(&self, from: u32) -> Option<u32> {
        let hour = from / 60;
        if self.hours & (1 << hour) != 0 {
            if let Some(minute) = next_bit(self.minutes, from % 60) {
                return Some(hour * 60 + minute);
            }
        }
        let hour = next_bit(self.hours, hour + 1)?;
        // Parsing guarantees at least one minute, so this is below 60.
        Some(hour * 60 + self.minutes.trailing_zeros())
    }
}

/// The lowest set bit of `mask` at position `from` or above.
fn next_bit(mask: u64, from: u32) -> Option<u32> {
    let rest = mask & u64::MAX.checked_shl(from)?;
    (rest != 0).then(|| rest.trailing_zeros())
}

/// Parses one field into a bit mask. Every list item sets at least one bit, so the mask
/// is never empty.
fn parse_field(text: &str, field: &Field) -> Result<u64, CronError> {
    let mut mask = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(field.error(text, "has an empty list item"));
        }
        mask |= parse_item(item, field)?;
    }
    Ok(mask)
}

fn parse_item(item: &str, field: &Field) -> Result<u64, CronError> {
    let (base, step) = match item.split_once('/') {
        Some((base, step)) => (base, Some(parse_step(step, item, field)?)),
        None => (item, None),
    };
    let (start, end) = if base == "*" {
        (field.min, field.max)
    } else if let Some((start, end)) = base.split_once('-') {
        let start = parse_value(start, item, field)?;
        let end = parse_value(end, item, field)?;
        if start > end {
            return Err(field.error(item, "is a range whose start is after its end"));
        }
        (start, end)
    } else {
        let start = parse_value(base, item, field)?;
        match step {
            Some(_) => (start, field.max),
            None => (start, start),
        }
    };
    let step = step.unwrap_or(1);
    let mut mask = 0u64;
    let mut value = start;
    while value <= end {
        mask |= 1 << value;
        match value.checked_add(step) {
            Some(next) => value = next,
            None => break,
        }
    }
    Ok(mask)
}

fn parse_step(step: &str, item: &str, field: &Field) -> Result<u32, CronError> {
    if step.is_empty() || !step.bytes().all(|b| b.is_ascii_digit()) {
        return Err(field.error(item, format_args!("has an invalid step '{step}'")));
    }
    match step.parse::<u32>() {
        Ok(0) => Err(field.error(item, "has step 0; a step must be at least 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(field.error(item, format_args!("has a step '{step}' that is too large"))),
    }
}

fn parse_value(token: &str, item: &str, field: &Field) -> Result<u32, CronError> {
    if token.is_empty() {
        return Err(field.error(item, "has an empty value"));
    }
    // Checking the digits ourselves rejects the '+5' that `str::parse` would accept.
    if token.bytes().all(|b| b.is_ascii_digit()) {
        let out_of_range = || {
            field.error(
                token,
                format_args!("is out of range {}-{}", field.min, field.max),
            )
        };
        let value = token.parse::<u32>().map_err(|_| out_of_range())?;
        if value < field.min || value > field.max {
            return Err(out_of_range());
        }
        return Ok(value);
    }
    let named = field
        .names
        .iter()
        .zip(field.names_start..)
        .find(|(name, _)| name.eq_ignore_ascii_case(token))
        .map(|(_, value)| value);
    named.ok_or_else(|| {
        field.error(
            token,
            format_args!("is not a valid value (expected {})", field.expected()),
        )
    })
}

#[cfg(test)]
mod tests;
