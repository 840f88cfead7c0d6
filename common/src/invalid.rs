//! The payloads of [`Error::InvalidRequest`](crate::Error::InvalidRequest) and
//! [`Error::Config`](crate::Error::Config): which setting was at fault, and what about it,
//! so a caller can act on the field without parsing the message.

use std::borrow::Cow;
use std::fmt;

use crate::cron::CronError;

/// What was wrong with a work request, a query, a queue name or an id. Its `Display` is
/// the message (which names the setting in words too).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidRequest(Box<Details>);

/// Boxed, so that [`Error`](crate::Error) stays small on the success path.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Details {
    field: Cow<'static, str>,
    message: String,
    job: Option<usize>,
    cron: Option<CronError>,
}

impl InvalidRequest {
    /// A problem with `field` (a setting's name as the builder method calls it: `kind`,
    /// `tag`, `queue`, `id`, `initial_delay`, `interval`, `cron`, `chain`, `query`, ...).
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        InvalidRequest(Box::new(Details {
            field: Cow::Borrowed(field),
            message: message.into(),
            job: None,
            cron: None,
        }))
    }

    /// A cron expression that does not parse.
    pub fn cron(e: CronError) -> Self {
        InvalidRequest(Box::new(Details {
            field: Cow::Borrowed("cron"),
            message: e.to_string(),
            job: None,
            cron: Some(e),
        }))
    }

    /// A refusal by the enqueue scripts: `detail` is what follows `workq: refused: `, in
    /// the form `job <i> (<id>): <field>: <problem>` (docs/wire-format.md), or any other
    /// text, whose field is then `record`.
    pub fn refused(detail: &str) -> Self {
        let parsed = detail.strip_prefix("job ").and_then(|rest| {
            let (index, rest) = rest.split_once(" (")?;
            let (_, rest) = rest.split_once("): ")?;
            let (field, _) = rest.split_once(": ")?;
            Some((index.parse::<usize>().ok()?, field))
        });
        InvalidRequest(Box::new(Details {
            field: Cow::Owned(parsed.map_or("record", |(_, f)| f).to_owned()),
            message: detail.to_owned(),
            job: parsed.map(|(i, _)| i),
            cron: None,
        }))
    }

    /// The setting at fault (for a refusal by the scripts, the field they named).
    pub fn field(&self) -> &str {
        &self.0.field
    }

    /// What is wrong, in words.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// For a refusal by the scripts, the index of the refused job in its script call (the
    /// batch it went in, counting from 1, as the message says).
    pub fn job(&self) -> Option<usize> {
        self.0.job
    }

    /// For a cron expression that does not parse, why.
    pub fn cron_error(&self) -> Option<&CronError> {
        self.0.cron.as_ref()
    }
}

impl fmt::Display for InvalidRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for InvalidRequest {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.cron.as_ref().map(|e| e as _)
    }
}

/// A setting, or the Redis server, that workq cannot work with; waiting does not help.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    setting: &'static str,
    message: String,
}

impl ConfigError {
    /// A problem with `setting`: `url` (the Redis URL), `pool`, `max_payload`, `workers`,
    /// `concurrency` and the other builder settings by their method's name, `server` (the
    /// Redis version), `function_library` (it is missing and may not be loaded), `signals`
    /// (the process cannot listen for them), `redis` (Redis refused workq at start).
    pub fn new(setting: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            setting,
            message: message.into(),
        }
    }

    /// The setting at fault.
    pub fn setting(&self) -> &'static str {
        self.setting
    }

    /// What is wrong, in words.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_by_the_scripts_names_the_job_and_the_field() {
        let r = InvalidRequest::refused("job 3 (01J0000000000000000000000X): due: must be finite");
        assert_eq!((r.job(), r.field()), (Some(3), "due"));
        assert_eq!(
            r.to_string(),
            "job 3 (01J0000000000000000000000X): due: must be finite"
        );
        let other = InvalidRequest::refused("something else");
        assert_eq!((other.job(), other.field()), (None, "record"));
    }

    #[test]
    fn a_cron_problem_keeps_the_typed_error_as_its_source() {
        let e = crate::cron::CronSchedule::parse("0 25 * * *").expect_err("hour 25");
        let r = InvalidRequest::cron(e.clone());
        assert_eq!(r.field(), "cron");
        assert_eq!(r.cron_error(), Some(&e));
        assert_eq!(r.to_string(), e.to_string());
        assert!(std::error::Error::source(&r).is_some());
    }
}
