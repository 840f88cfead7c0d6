//! Tests that fail when the Lua and the schema drift apart: every record ext key the Lua
//! reads or writes is a field of [`Ext`] and a row of the ext table in
//! `docs/wire-format.md`; every key the Lua touches is a [`suffix`] of `keys.rs` and a
//! row of that document's key table; the Lua names keys and header markers only through
//! what Rust prepends (`KEY`, `HEADER_*`).

use std::collections::BTreeSet;

use super::{Script, SHARED};
use crate::keys::suffix;
use crate::record::{Ext, RawBytes};

const WIRE_FORMAT: &str = include_str!("../../../docs/wire-format.md");

/// Every Lua source of the library: the shared ones and each script.
fn lua_sources() -> Vec<(&'static str, &'static str)> {
    let mut all: Vec<(&str, &str)> = SHARED.to_vec();
    all.extend(Script::ALL.iter().map(|s| (s.name(), s.source())));
    all
}

/// `lua` with its comments and string literals blanked out (each replaced by spaces, so
/// that positions and line structure are kept): what is left is code.
fn code_only(lua: &str) -> String {
    lex(lua).0
}

/// The string literals of `lua`'s code (not of its comments).
fn string_literals(lua: &str) -> Vec<String> {
    lex(lua).1
}

/// `lua` as code with comments and strings blanked out, and its string literals.
fn lex(lua: &str) -> (String, Vec<String>) {
    let b = lua.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut literals = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    out.push(b' ');
                    i += 1;
                }
            }
            q @ (b'\'' | b'"') => {
                out.push(b' ');
                i += 1;
                let start = i;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' {
                        out.push(b' ');
                        i += 1;
                    }
                    out.push(b' ');
                    i += 1;
                }
                literals.push(String::from_utf8_lossy(&b[start..i.min(b.len())]).into_owned());
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), literals)
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The identifier that ends just before byte `end` of `code` (empty if none).
fn ident_before(code: &[u8], end: usize) -> &[u8] {
    let mut start = end;
    while start > 0 && is_ident(code[start - 1]) {
        start -= 1;
    }
    // Part of a longer expression (`a.x`): not a bare name.
    if start > 0 && code[start - 1] == b'.' {
        return &[];
    }
    &code[start..end]
}

/// Every `<receiver>.<key>` in `code` whose receiver holds a record's ext: the locals
/// `x`, `cx` and `nx`, a call `ext(...)`, or a header's sixth element `...[6]`.
fn ext_accesses(code: &str) -> Vec<String> {
    let b = code.as_bytes();
    let mut keys = Vec::new();
    for dot in 1..b.len() {
        if b[dot] != b'.' || b.get(dot + 1).is_none_or(|c| !c.is_ascii_alphabetic()) {
            continue;
        }
        let is_ext = match b[dot - 1] {
            b']' => dot >= 3 && &b[dot - 3..dot] == b"[6]",
            b')' => {
                let mut depth = 0;
                let mut open = dot - 1;
                loop {
                    match b[open] {
                        b')' => depth += 1,
                        b'(' => depth -= 1,
                        _ => {}
                    }
                    if depth == 0 || open == 0 {
                        break;
                    }
                    open -= 1;
                }
                ident_before(b, open) == b"ext"
            }
            _ => matches!(ident_before(b, dot), b"x" | b"cx" | b"nx"),
        };
        if is_ext {
            let end = (dot + 1..b.len())
                .find(|&i| !is_ident(b[i]))
                .unwrap_or(b.len());
            keys.push(code[dot + 1..end].to_owned());
        }
    }
    keys
}

/// The text of the table constructor `local <name> = { ... }` in `lua` (inside the braces).
fn table_body<'a>(lua: &'a str, name: &str) -> Option<&'a str> {
    let start = lua.find(&format!("local {name} = {{"))? + name.len() + 10;
    let mut depth = 1;
    for (i, c) in lua[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&lua[start..start + i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// The keys `k = ...` of a table constructor's body: names followed by `=` that start an
/// entry (after `{`, `,` or nothing), not the assignments inside a function value.
fn table_keys(body: &str) -> Vec<String> {
    let b = body.as_bytes();
    let mut depth = 0;
    let mut keys = Vec::new();
    for i in 0..b.len() {
        match b[i] {
            b'{' | b'(' => depth += 1,
            b'}' | b')' => depth -= 1,
            b'=' if depth == 0
                && b.get(i + 1) != Some(&b'=')
                && !matches!(b.get(i.wrapping_sub(1)), Some(b'=' | b'~' | b'<' | b'>')) =>
            {
                let end = body[..i].trim_end().len();
                let name = ident_before(b, end);
                let before = body[..end - name.len()].trim_end();
                if !name.is_empty() && (before.is_empty() || before.ends_with([',', '{'])) {
                    keys.push(String::from_utf8_lossy(name).into_owned());
                }
            }
            _ => {}
        }
    }
    keys
}

/// The quoted strings of a table constructor's body (a list of ext keys).
fn quoted(body: &str) -> Vec<String> {
    body.split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Every ext key the Lua reads or writes, with where.
fn lua_ext_keys() -> Vec<(String, &'static str)> {
    let mut found = Vec::new();
    for (file, lua) in lua_sources() {
        for key in ext_accesses(&code_only(lua)) {
            found.push((key, file));
        }
        // The tables of ext keys: checks of new records by key, the keys scripts own,
        // the keys an UPDATE keeps.
        for name in ["ext_checks", "graph_checks", "script_owned"] {
            if let Some(body) = table_body(lua, name) {
                found.extend(table_keys(&code_only(body)).into_iter().map(|k| (k, file)));
            }
        }
        if let Some(body) = table_body(lua, "UPDATE_KEEPS") {
            found.extend(quoted(body).into_iter().map(|k| (k, file)));
        }
    }
    found
}

/// The MessagePack keys of [`Ext`]'s fields: an `Ext` with every field set, encoded.
fn ext_fields() -> BTreeSet<String> {
    // Every field named: a new field of Ext must be added here, so it is compared too.
    let full = Ext {
        tags: vec!["t".into()],
        max_attempts: Some(1),
        backoff: Some((0, 1, 1)),
        timeout_ms: Some(1),
        started_ms: Some(1),
        finished_ms: Some(1),
        error: Some("e".into()),
        output_len: Some(1),
        worker: Some("w".into()),
        unique_name: Some("u".into()),
        parents: vec!["p".into()],
        pending_parents: Some(1),
        children: vec!["k".into()],
        parent_outputs: Some([("p".to_owned(), RawBytes(vec![1]))].into()),
        merger: Some(1),
        labels: vec!["l".into()],
        expedited: Some(true),
        interval_ms: Some(1),
        flex_ms: Some(1),
        cron: Some("* * * * *".into()),
        next_period_ms: Some(1),
        period_base: Some(1),
        has_progress: Some(true),
        kind_lane: Some(true),
        release_due: Some(-1),
        errors: vec![(1, 1, "e".into())],
        last_run: Some((3, 1)),
        metadata: [("k".to_owned(), "v".to_owned())].into(),
    };
    let bytes = rmp_serde::to_vec_named(&full).expect("an Ext encodes");
    let map: std::collections::BTreeMap<String, serde::de::IgnoredAny> =
        rmp_serde::from_slice(&bytes).expect("an Ext is a map");
    map.into_keys().collect()
}

/// The first column (between backticks) of the table that follows `heading` in
/// docs/wire-format.md.
fn doc_table(heading: &str) -> BTreeSet<String> {
    let at = WIRE_FORMAT
        .find(heading)
        .unwrap_or_else(|| panic!("docs/wire-format.md has no {heading:?}"));
    WIRE_FORMAT[at..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cell = l.split('|').nth(1)?.trim();
            cell.strip_prefix('`')?.split('`').next().map(str::to_owned)
        })
        .collect()
}

#[test]
fn every_ext_key_the_lua_uses_is_a_field_of_ext_and_documented() {
    let fields = ext_fields();
    let documented = doc_table("`ext` keys");
    assert_eq!(
        fields, documented,
        "Ext's fields and the ext table of docs/wire-format.md"
    );
    let used = lua_ext_keys();
    // The scanner sees the usual accesses (a sanity check of the scanner itself).
    for key in ["t", "e", "K", "rb", "D", "s", "G", "u"] {
        assert!(used.iter().any(|(k, _)| k == key), "no ext.{key} found");
    }
    for (key, file) in &used {
        assert!(
            fields.contains(key),
            "{file} uses ext key {key:?}, which is not a field of record::Ext"
        );
    }
}

#[test]
fn every_key_the_lua_touches_is_a_suffix_of_keys_rs_and_documented() {
    // The document's rows, as suffixes: `held:<worker>` is held:, `due:<lane>` is due's.
    let documented: BTreeSet<String> = doc_table("## Keys")
        .into_iter()
        .map(|k| match k.split_once('<') {
            Some((head, _)) => head.to_owned(),
            None => k,
        })
        .collect();
    let mut expected: BTreeSet<String> = suffix::ALL.iter().map(|s| (*s).to_owned()).collect();
    expected.insert(format!("{}:", suffix::DUE));
    assert_eq!(
        documented, expected,
        "keys.rs and the key table of docs/wire-format.md"
    );
    for outside in [crate::keys::QUEUES, crate::keys::WATCHING] {
        assert!(
            WIRE_FORMAT.contains(&format!("`{outside}`")),
            "{outside} undocumented"
        );
    }

    let names: BTreeSet<&str> = suffix::ALL
        .iter()
        .map(|s| s.trim_end_matches(':'))
        .collect();
    let mut seen = 0;
    for (file, lua) in lua_sources() {
        let code = code_only(lua);
        for (at, _) in code.match_indices("KEY.") {
            if at > 0 && is_ident(code.as_bytes()[at - 1]) {
                continue;
            }
            let rest = &code[at + 4..];
            let name = &rest[..rest
                .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .unwrap_or(rest.len())];
            assert!(
                names.contains(name),
                "{file} uses KEY.{name}, which keys.rs does not name"
            );
            seen += 1;
        }
        // A key is never written out by hand: not after the prefix or another key (but
        // for the lanes, `due:<lane>`, which k_due() makes), and not as a string that
        // starts like one.
        for (at, _) in code.match_indices(" .. ") {
            let before = &code[..at];
            let name = before
                .rsplit(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .next();
            let after = lua[at + 4..].chars().next();
            if matches!(after, Some('\'' | '"')) {
                let by_hand = name == Some("prefix")
                    || (name.is_some_and(|n| n.starts_with("K_"))
                        && !lua[at..].starts_with(" .. ':' .. lane"));
                assert!(
                    !by_hand,
                    "{file} builds a key name by hand: {}",
                    &lua[at.saturating_sub(12)..at + 12]
                );
            }
        }
        for literal in string_literals(lua) {
            assert!(
                ![suffix::HELD, suffix::TAG, "due:", "workq:"]
                    .iter()
                    .any(|s| literal.starts_with(s)),
                "{file} writes the key name '{literal}' by hand (use KEY)"
            );
        }
    }
    assert!(
        seen >= suffix::ALL.len(),
        "the scanner found only {seen} KEY uses"
    );
}

#[test]
fn header_markers_come_from_rust() {
    for (file, lua) in lua_sources() {
        let code = code_only(lua).to_ascii_lowercase();
        for marker in ["0x95", "0x96", "0xcf"] {
            assert!(
                !code.contains(marker),
                "{file} writes the header marker {marker} by hand"
            );
        }
    }
}
