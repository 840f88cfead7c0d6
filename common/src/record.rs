//! The stored form of a job (format version 1), specified in `docs/wire-format.md`.
//!
//! A record is the value of one field of the queue's `jobs` hash:
//!
//! ```text
//! header (MessagePack array) ++ input (MessagePack) ++ output (MessagePack, once finished)
//! header = [version, state, attempts, enqueued_ms, kind, ext?]
//! ```
//!
//! While RUNNING, a record also ends with a trailer written by the claim: MessagePack
//! `[started_ms, worker]` followed by one byte giving the trailer's length.
//!
//! Scripts rewrite only the header; the input and output bytes pass through untouched, so
//! Lua never re-encodes user data. New records are written with `enqueued_ms` as a uint64
//! placeholder at a fixed offset, which the enqueue script stamps with Redis time.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::{Backoff, BackoffPolicy, Error, Millis, Result, WorkState};

/// The record format this code reads and writes.
pub const FORMAT_VERSION: u8 = 1;

/// The first byte of a record without ext: a MessagePack array of 5 (fixarray). The
/// scripts test it (as `HEADER_BARE`) to skip decoding such records.
pub const HEADER_BARE: u8 = 0x95;
/// The first byte of a record with ext: a MessagePack array of 6 (`HEADER_EXT` in Lua).
pub const HEADER_EXT: u8 = 0x96;
/// The MessagePack uint64 marker that starts the `enqueued_ms` placeholder
/// (`HEADER_STAMP` in Lua).
pub const HEADER_STAMP: u8 = 0xcf;

/// Byte offset of the `enqueued_ms` uint64 placeholder (after the array marker, version,
/// state and attempts bytes) and its length including the 0xcf marker.
pub const STAMP_OFFSET: usize = 4;
/// See [`STAMP_OFFSET`].
pub const STAMP_LEN: usize = 9;

/// Optional and mutable header fields, a MessagePack map with one-letter keys so that a
/// scheduled job stays small. Absent keys take defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ext {
    /// Tags, for queries and cancel-by-tag.
    #[serde(rename = "t", default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Attempts allowed; default [`crate::DEFAULT_MAX_ATTEMPTS`].
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Backoff as `[policy (0 linear, 1 exponential), initial_ms, max_ms]`.
    #[serde(rename = "b", default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<(u8, u64, u64)>,
    /// Execution timeout of one attempt, enforced by the worker.
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// When the latest attempt started (Redis time; copied from its lease when it ended).
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<Millis>,
    /// When the job finished (Redis time).
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<Millis>,
    /// The last error, or the stop reason of a cancelled job.
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Length of the output bytes at the end of the record.
    #[serde(rename = "o", default, skip_serializing_if = "Option::is_none")]
    pub output_len: Option<u64>,
    /// The worker of the latest attempt (copied from its lease when the attempt ended).
    #[serde(rename = "w", default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// Unique work name.
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub unique_name: Option<String>,
    /// Parents in a chain (ids).
    #[serde(rename = "P", default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<String>,
    /// Parents that have not succeeded yet (while BLOCKED).
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub pending_parents: Option<u32>,
    /// Children in a chain (ids).
    #[serde(rename = "k", default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<String>,
    /// Outputs of the parents that succeeded, by parent id (input for the merger).
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    pub parent_outputs: Option<std::collections::HashMap<String, RawBytes>>,
    /// Input merger: 0 overwriting (default), 1 array-creating.
    #[serde(rename = "g", default, skip_serializing_if = "Option::is_none")]
    pub merger: Option<u8>,
    /// Labels a worker must have to run the job (sorted, no duplicates).
    #[serde(rename = "l", default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Expedited: claimed ahead of normal work.
    #[serde(rename = "X", default, skip_serializing_if = "Option::is_none")]
    pub expedited: Option<bool>,
    /// Periodic work: the interval, ms.
    #[serde(rename = "ri", default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
    /// Periodic work: the flex window at the end of each interval, ms.
    #[serde(rename = "rf", default, skip_serializing_if = "Option::is_none")]
    pub flex_ms: Option<u64>,
    /// Periodic work: a cron expression (UTC).
    #[serde(rename = "rc", default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// Periodic work: the due time of the period after the current one.
    #[serde(rename = "rn", default, skip_serializing_if = "Option::is_none")]
    pub next_period_ms: Option<Millis>,
    /// Periodic work: the attempt count when the current period began.
    #[serde(rename = "rb", default, skip_serializing_if = "Option::is_none")]
    pub period_base: Option<u32>,
    /// The job has reported progress (so finishing it clears the progress).
    #[serde(rename = "G", default, skip_serializing_if = "Option::is_none")]
    pub has_progress: Option<bool>,
    /// A worker that does not run the job's kind passed it on: it waits in its kind lane
    /// (`<lane>#<kind>`), which only workers of its kind serve. Set by the claim script.
    #[serde(rename = "K", default, skip_serializing_if = "Option::is_none")]
    pub kind_lane: Option<bool>,
    /// While BLOCKED: the due given at enqueue, applied when the parents release the job
    /// (> 0 an absolute time, < 0 that many ms, negated, after the release). Set by
    /// `enqueue_graph`.
    #[serde(rename = "D", default, skip_serializing_if = "Option::is_none")]
    pub release_due: Option<i64>,
    /// The errors of its latest failed attempts, oldest first, at most
    /// [`crate::limits::ERROR_HISTORY`]: `[attempt, at (Redis ms), message]`. Set by the
    /// scripts as an attempt fails.
    #[serde(rename = "E", default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<(u32, Millis, String)>,
    /// Periodic work: how its latest period's run ended, `[state code (SUCCEEDED or
    /// FAILED), at (Redis ms)]`. Set by the scripts.
    #[serde(rename = "L", default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<(u8, Millis)>,
    /// The request's metadata: a small map of strings (bounds in [`crate::limits`]), for
    /// the worker (`WorkContext::metadata`) and `WorkInfo`; trace context travels in it.
    #[serde(
        rename = "M",
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "string_map"
    )]
    pub metadata: BTreeMap<String, String>,
}

/// A map of strings; an empty array too, which is how Lua's `cmsgpack` packs an empty map
/// (a script rewriting a header another producer wrote with `M = {}`).
fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    struct V;
    impl<'v> Visitor<'v> for V {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of strings")
        }
        fn visit_map<A: de::MapAccess<'v>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, v)) = map.next_entry::<String, String>()? {
                out.insert(k, v);
            }
            Ok(out)
        }
        fn visit_seq<A: SeqAccess<'v>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            if seq.next_element::<IgnoredAny>()?.is_some() {
                return Err(de::Error::custom("metadata is an array, not a map"));
            }
            Ok(BTreeMap::new())
        }
    }
    d.deserialize_any(V)
}

/// Bytes a script stored as a MessagePack string (Redis' Lua has no binary type).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RawBytes(pub Vec<u8>);

impl<'de> Deserialize<'de> for RawBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'v> Visitor<'v> for V {
            type Value = RawBytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<RawBytes, E> {
                Ok(RawBytes(v.to_vec()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawBytes, E> {
                Ok(RawBytes(v.as_bytes().to_vec()))
            }
            fn visit_seq<A: SeqAccess<'v>>(self, _: A) -> Result<RawBytes, A::Error> {
                // An empty Lua table packs as an empty array.
                Ok(RawBytes(Vec::new()))
            }
        }
        d.deserialize_any(V)
    }
}

impl Ext {
    fn is_empty(&self) -> bool {
        *self == Ext::default()
    }

    /// How a request's backoff is stored in `backoff`: (policy 0 linear / 1 exponential,
    /// initial ms, cap ms); [`Ext::backoff`] reads it back.
    pub fn stored_backoff(b: Backoff) -> (u8, u64, u64) {
        let policy = match b.policy {
            BackoffPolicy::Linear => 0,
            BackoffPolicy::Exponential => 1,
        };
        (policy, crate::time::ms(b.initial), crate::time::ms(b.max))
    }

    /// The backoff this job retries with.
    pub fn backoff(&self) -> Backoff {
        match self.backoff {
            None => crate::DEFAULT_BACKOFF,
            Some((policy, initial, max)) => Backoff::new(
                if policy == 0 {
                    BackoffPolicy::Linear
                } else {
                    BackoffPolicy::Exponential
                },
                crate::time::duration(initial),
                crate::time::duration(max),
            ),
        }
    }

    /// Attempts allowed (per run, for periodic work).
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts.unwrap_or(crate::DEFAULT_MAX_ATTEMPTS)
    }

    /// True for periodic work.
    pub fn is_periodic(&self) -> bool {
        self.interval_ms.is_some() || self.cron.is_some()
    }

    /// The lane the job waits in: "" plain, "x" expedited, "@a,b" needs labels a and b,
    /// "x@a,b" both (the scripts compute the same).
    pub fn lane(&self) -> String {
        lane(self.expedited.unwrap_or(false), &self.labels)
    }
}

impl Header {
    /// The lane the job waits in while ENQUEUED: its options' lane ([`Ext::lane`]), and
    /// `#<kind>` after it once it was passed on to the workers of its kind.
    pub fn lane(&self) -> String {
        let mut lane = self.ext.lane();
        if self.ext.kind_lane == Some(true) {
            lane.push('#');
            lane.push_str(&self.kind);
        }
        lane
    }
}

/// The decoded header of a record.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// Current state.
    pub state: WorkState,
    /// Attempts started so far; the current attempt's number is its fencing token.
    pub attempts: u32,
    /// When the job was enqueued (Redis time).
    pub enqueued_ms: Millis,
    /// The job's kind ([`crate::Job::KIND`]).
    pub kind: String,
    /// Optional fields.
    pub ext: Ext,
}

impl<'de> Deserialize<'de> for Header {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct HeaderVisitor;
        impl<'de> Visitor<'de> for HeaderVisitor {
            type Value = Header;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a workq record header array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Header, A::Error> {
                let missing = |what| de::Error::custom(format!("header has no {what}"));
                let version: u8 = seq.next_element()?.ok_or_else(|| missing("version"))?;
                if version != FORMAT_VERSION {
                    return Err(de::Error::custom(format!(
                        "record format version {version} (this build reads {FORMAT_VERSION})"
                    )));
                }
                let code: u8 = seq.next_element()?.ok_or_else(|| missing("state"))?;
                let state = WorkState::from_code(code)
                    .ok_or_else(|| de::Error::custom(format!("unknown state code {code}")))?;
                let attempts = seq.next_element()?.ok_or_else(|| missing("attempts"))?;
                let enqueued_ms = seq.next_element()?.ok_or_else(|| missing("enqueued_ms"))?;
                let kind = seq.next_element()?.ok_or_else(|| missing("kind"))?;
                let ext = seq.next_element::<Ext>()?.unwrap_or_default();
                // Fields a later format version may add are skipped, not rejected.
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Header {
                    state,
                    attempts,
                    enqueued_ms,
                    kind,
                    ext,
                })
            }
        }
        d.deserialize_seq(HeaderVisitor)
    }
}

/// The lane of expedited work needing `labels` (sorted, no duplicates).
pub fn lane(expedited: bool, labels: &[String]) -> String {
    let mut lane = String::new();
    if expedited {
        lane.push('x');
    }
    if !labels.is_empty() {
        lane.push('@');
        lane.push_str(&labels.join(","));
    }
    lane
}

/// Builds the record a producer stores for a new job: a header with the enqueued time
/// left as a placeholder for the script to stamp, then the input bytes.
pub fn encode_new(state: WorkState, kind: &str, ext: &Ext, input: &[u8]) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(24 + kind.len() + input.len());
    let has_ext = !ext.is_empty();
    buf.push(if has_ext { HEADER_EXT } else { HEADER_BARE });
    buf.push(FORMAT_VERSION);
    buf.push(state.code());
    buf.push(0); // attempts
    buf.push(HEADER_STAMP); // uint64: fixed width so the script can stamp it in place
    buf.extend_from_slice(&[0; 8]);
    rmp::encode::write_str(&mut buf, kind).map_err(|e| Error::Record(e.to_string()))?;
    if has_ext {
        let mut ser = rmp_serde::Serializer::new(&mut buf).with_struct_map();
        ext.serialize(&mut ser).map_err(|source| Error::Encode {
            what: "record header",
            source,
        })?;
    }
    buf.extend_from_slice(input);
    Ok(buf)
}

/// Reads only the attempt count (the fencing token) of a record, for a record whose full
/// header cannot be decoded but which must still be failed under its current claim.
pub fn peek_attempts(bytes: &[u8]) -> Option<u32> {
    let mut rd = bytes;
    if rmp::decode::read_array_len(&mut rd).ok()? < 5 {
        return None;
    }
    let _version: u8 = rmp::decode::read_int(&mut rd).ok()?;
    let _state: u8 = rmp::decode::read_int(&mut rd).ok()?;
    rmp::decode::read_int(&mut rd).ok()
}

/// The attempt in progress, from a RUNNING record's trailer.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Attempt {
    /// When it started (Redis time).
    pub started_ms: Millis,
    /// The worker running it.
    pub worker: String,
}

/// A decoded record: its header and where input and output sit in the bytes.
#[derive(Clone, PartialEq)]
pub struct Record {
    /// The header.
    pub header: Header,
    /// The attempt in progress, for a RUNNING record.
    pub attempt: Option<Attempt>,
    bytes: Vec<u8>,
    input: Range<usize>,
    output: Range<usize>,
}

impl Record {
    /// Decodes stored bytes.
    pub fn decode(bytes: Vec<u8>) -> Result<Self> {
        let mut rest: &[u8] = &bytes;
        let header = Header::deserialize(&mut rmp_serde::Deserializer::new(&mut rest))
            .map_err(|e| Error::Record(format!("header: {e}")))?;
        let start = bytes.len() - rest.len();
        let mut end = bytes.len();
        let mut attempt = None;
        if header.state == WorkState::Running {
            let len =
                usize::from(*rest.last().ok_or_else(|| {
                    Error::Record("a RUNNING record has no attempt trailer".into())
                })?);
            if len + 1 > rest.len() {
                return Err(Error::Record(format!(
                    "attempt trailer of {len} bytes exceeds the record"
                )));
            }
            end -= len + 1;
            attempt = Some(
                rmp_serde::from_slice::<Attempt>(&bytes[end..bytes.len() - 1])
                    .map_err(|e| Error::Record(format!("attempt trailer: {e}")))?,
            );
        }
        let out_len = header.ext.output_len.unwrap_or(0) as usize;
        if out_len > end - start {
            return Err(Error::Record(format!(
                "output length {out_len} exceeds the {} bytes after the header",
                end - start
            )));
        }
        let split = end - out_len;
        Ok(Record {
            header,
            attempt,
            input: start..split,
            output: split..end,
            bytes,
        })
    }

    /// The input bytes (MessagePack of the job's input type).
    pub fn input(&self) -> &[u8] {
        &self.bytes[self.input.clone()]
    }

    /// The output bytes, if the job finished with output.
    pub fn output(&self) -> Option<&[u8]> {
        (!self.output.is_empty()).then(|| &self.bytes[self.output.clone()])
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("header", &self.header)
            .field("input_len", &self.input.len())
            .field("output_len", &self.output.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_record_has_fixed_stamp_slot_and_round_trips() -> Result<()> {
        let ext = Ext {
            tags: vec!["a".into()],
            max_attempts: Some(3),
            ..Ext::default()
        };
        let input = rmp_serde::to_vec_named(&("x", 1)).map_err(|source| Error::Encode {
            what: "test",
            source,
        })?;
        let rec = encode_new(WorkState::Enqueued, "noop", &ext, &input)?;
        assert_eq!(rec[STAMP_OFFSET], 0xcf);
        let decoded = Record::decode(rec)?;
        assert_eq!(decoded.header.kind, "noop");
        assert_eq!(decoded.header.ext, ext);
        assert_eq!(decoded.header.state, WorkState::Enqueued);
        assert_eq!(decoded.input(), &input[..]);
        assert_eq!(decoded.output(), None);
        Ok(())
    }

    #[test]
    fn metadata_round_trips_and_an_empty_lua_table_reads_as_none() -> Result<()> {
        let ext = Ext {
            metadata: [("traceparent".to_owned(), "00-x-y-01".to_owned())].into(),
            ..Ext::default()
        };
        let rec = encode_new(WorkState::Enqueued, "noop", &ext, b"\x80")?;
        assert_eq!(Record::decode(rec)?.header.ext, ext);
        // {"M": []}: an empty map as cmsgpack writes it back.
        let ext: Ext =
            rmp_serde::from_slice(b"\x81\xa1M\x90").map_err(|e| Error::Record(e.to_string()))?;
        assert!(ext.metadata.is_empty());
        Ok(())
    }

    #[test]
    fn default_options_keep_the_header_to_five_fields() -> Result<()> {
        let rec = encode_new(WorkState::Enqueued, "mem", &Ext::default(), b"\x80")?;
        assert_eq!(rec[0], 0x95);
        assert_eq!(rec.len(), 1 + 1 + 1 + 1 + 9 + 4 + 1);
        Ok(())
    }

    #[test]
    fn other_versions_are_refused_with_the_number() {
        let mut rec =
            encode_new(WorkState::Enqueued, "k", &Ext::default(), b"\x80").unwrap_or_default();
        rec[1] = 7;
        let err = Record::decode(rec).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("version 7"), "{err}");
    }
}
