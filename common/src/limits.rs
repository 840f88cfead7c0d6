//! Limits on what a job may hold, enforced twice: by the Rust producer when a request is
//! built or sent, and by the enqueue scripts for every producer (the library takes these
//! constants from here, so both always agree). docs/wire-format.md lists them.

/// Largest input a producer may be configured to accept (the default is 512 KiB).
pub const MAX_INPUT_BYTES: usize = 1 << 20;

/// Largest record the enqueue scripts store: the largest input and room for its header
/// (tags, labels, options).
pub const MAX_RECORD_BYTES: usize = MAX_INPUT_BYTES + (64 << 10);

/// Longest tag, label or unique work name, in bytes.
pub const MAX_TAG_BYTES: usize = 256;

/// Longest kind name, in bytes.
pub const MAX_KIND_BYTES: usize = 128;

/// Furthest ahead a job may be due: 100 years (of 365.25 days), in ms. Anything further is
/// a mistake (a delay in the wrong unit), and the job would never run.
pub const MAX_AHEAD_MS: u64 = 3_155_760_000_000;

/// Most jobs one enqueue script call takes.
pub const MAX_BATCH: usize = 10_000;

/// Most entries of a request's metadata (its small string map, `ext.M`).
pub const MAX_METADATA_ENTRIES: usize = 16;

/// Longest metadata key, in bytes (printable ASCII, at least one byte).
pub const MAX_METADATA_KEY_BYTES: usize = 64;

/// Longest metadata value, in bytes (UTF-8).
pub const MAX_METADATA_VALUE_BYTES: usize = 512;

/// Most bytes of a request's metadata, keys and values added up.
pub const MAX_METADATA_BYTES: usize = 4096;

/// Checks a request's metadata: at most [`MAX_METADATA_ENTRIES`] entries, each key 1 to
/// [`MAX_METADATA_KEY_BYTES`] bytes of printable ASCII without spaces (`!` to `~`), each
/// value at most [`MAX_METADATA_VALUE_BYTES`] bytes, keys and values together at most
/// [`MAX_METADATA_BYTES`]. Returns what is wrong.
pub fn metadata_problem<'a>(
    entries: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<String> {
    let (mut count, mut bytes) = (0, 0);
    for (key, value) in entries {
        count += 1;
        bytes += key.len() + value.len();
        if key.is_empty()
            || key.len() > MAX_METADATA_KEY_BYTES
            || key.bytes().any(|b| !(0x21..=0x7e).contains(&b))
        {
            return Some(format!(
                "metadata key '{}' must be 1 to {MAX_METADATA_KEY_BYTES} bytes of printable ASCII without spaces",
                key.escape_debug()
            ));
        }
        if value.len() > MAX_METADATA_VALUE_BYTES {
            return Some(format!(
                "metadata value of '{key}' is {} bytes, over the limit of {MAX_METADATA_VALUE_BYTES}",
                value.len()
            ));
        }
    }
    if count > MAX_METADATA_ENTRIES {
        return Some(format!(
            "metadata has {count} entries, over the limit of {MAX_METADATA_ENTRIES}"
        ));
    }
    if bytes > MAX_METADATA_BYTES {
        return Some(format!(
            "metadata is {bytes} bytes (keys and values), over the limit of {MAX_METADATA_BYTES}"
        ));
    }
    None
}

/// Checks a kind name: 1 to [`MAX_KIND_BYTES`] bytes of printable ASCII without spaces,
/// `,` or `#` (workers list their kinds comma-separated, and a kind lane is named
/// `<lane>#<kind>`). Returns what is wrong.
pub fn kind_problem(kind: &str) -> Option<String> {
    if kind.is_empty() || kind.len() > MAX_KIND_BYTES {
        return Some(format!("kind '{kind}' must be 1 to {MAX_KIND_BYTES} bytes"));
    }
    if kind
        .bytes()
        .any(|b| !(0x21..=0x7e).contains(&b) || b == b',' || b == b'#')
    {
        return Some(format!(
            "kind '{kind}' must be printable ASCII without spaces, ',' or '#'"
        ));
    }
    None
}

/// Most failed attempts whose errors a job keeps (ext `E`, oldest dropped first), so a job
/// that fails often stays small.
pub const ERROR_HISTORY: usize = 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_scripts_rule() {
        assert_eq!(kind_problem("email.send"), None);
        assert_eq!(kind_problem("a/b:c-d_e"), None);
        for bad in ["", "a b", "a,b", "a#b", "caf\u{e9}", &"k".repeat(129)] {
            assert!(kind_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn metadata_follows_the_scripts_rule() {
        let ok = |m: &[(&str, &str)]| metadata_problem(m.iter().copied());
        assert_eq!(ok(&[]), None);
        assert_eq!(ok(&[("traceparent", "00-ab-cd-01"), ("k", "")]), None);
        let long_value = "v".repeat(MAX_METADATA_VALUE_BYTES);
        assert_eq!(ok(&[("k", &long_value)]), None);
        let too_long = "v".repeat(MAX_METADATA_VALUE_BYTES + 1);
        let long_key = "k".repeat(MAX_METADATA_KEY_BYTES + 1);
        for bad in [
            vec![("", "v")],
            vec![("a b", "v")],
            vec![("caf\u{e9}", "v")],
            vec![(long_key.as_str(), "v")],
            vec![("k", too_long.as_str())],
        ] {
            assert!(ok(&bad).is_some(), "{bad:?}");
        }
        let keys: Vec<String> = (0..=MAX_METADATA_ENTRIES)
            .map(|i| format!("k{i}"))
            .collect();
        let many: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "v")).collect();
        assert!(ok(&many).unwrap_or_default().contains("entries"));
        let big: Vec<(&str, &str)> = keys[..9]
            .iter()
            .map(|k| (k.as_str(), long_value.as_str()))
            .collect();
        assert!(ok(&big).unwrap_or_default().contains("4096"));
    }
}
