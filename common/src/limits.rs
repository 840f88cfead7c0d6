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
}
