//! Why a cron expression does not parse.

/// A cron expression that does not parse, saying where. Its `Display` is the message a
/// user sees, e.g. "cron field 2 (hour) '25' is out of range 0-23".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CronError {
    /// Nothing but white space.
    #[error("cron expression is empty")]
    Empty,
    /// An `@name` that is not one of the aliases.
    #[error(
        "unknown cron alias '{0}' (expected @yearly, @annually, @monthly, @weekly, @daily, \
         @midnight or @hourly)"
    )]
    UnknownAlias(String),
    /// Not five fields.
    #[error(
        "cron expression '{expr}' has {found} fields; expected 5 \
         (minute hour day-of-month month day-of-week)"
    )]
    FieldCount {
        /// The expression (trimmed).
        expr: String,
        /// How many fields it has.
        found: usize,
    },
    /// One field is wrong.
    #[error("cron field {position} ({name}) '{value}' {problem}")]
    Field {
        /// 1 (minute) to 5 (day-of-week).
        position: usize,
        /// The field's name: minute, hour, day-of-month, month, day-of-week.
        name: &'static str,
        /// The offending part of the field.
        value: String,
        /// What is wrong with it.
        problem: String,
    },
}
