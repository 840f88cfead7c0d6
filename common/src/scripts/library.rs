//! Building the function library: the constants from Rust, the shared sources of
//! [`SHARED`] in order, then one function per script; named after a hash of the whole.

use std::fmt::Write as _;
use std::sync::OnceLock;

use super::{Script, EVENTS_MAXLEN};
use crate::keys::suffix;
use crate::record::{FORMAT_VERSION, HEADER_BARE, HEADER_EXT, HEADER_STAMP};
use crate::{WorkState, DEFAULT_BACKOFF, DEFAULT_MAX_ATTEMPTS};

/// The function library and the names of its functions.
#[derive(Debug)]
pub struct Scripts {
    pub(super) library: String,
    /// `workq_<hash>`; function `x` is `<name>_x`.
    pub(super) name: String,
    /// The function of each script, by its position in [`Script::ALL`].
    functions: Vec<String>,
}

/// The scripts, built once per process.
pub fn scripts() -> &'static Scripts {
    static LIBRARY: OnceLock<Scripts> = OnceLock::new();
    LIBRARY.get_or_init(Scripts::build)
}

/// FNV-1a, 64 bits: names the library after its text.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The Lua constants the library starts with, taken from this crate so that Lua never
/// repeats a value by hand: defaults, limits, the state codes, the record format version
/// ([`crate::record`]; its header markers are written into the sources as numbers, see
/// [`HEADER_MARKERS`]), and the key names ([`crate::keys::suffix`]) as the table `KEY`
/// (`KEY.jobs`, ..., `KEY.held` and `KEY.tag` ending in `:`).
pub(super) fn constants() -> String {
    use crate::limits::*;
    let b = DEFAULT_BACKOFF;
    let mut lua = format!(
        "local DEFAULT_MAX_ATTEMPTS = {}\nlocal DEFAULT_BACKOFF = {{{}, {}, {}}}\nlocal EVENTS_MAXLEN = {}\n\
         local MAX_ATTEMPTS_LIMIT = {}\nlocal MAX_RECORD_BYTES = {}\nlocal MAX_TAG_BYTES = {}\n\
         local MAX_KIND_BYTES = {}\nlocal MAX_AHEAD_MS = {}\nlocal MAX_BATCH = {}\n\
         local MAX_METADATA = {{ entries = {}, key = {}, value = {}, bytes = {} }}\n\
         local ERROR_HISTORY = {}\n",
        DEFAULT_MAX_ATTEMPTS,
        match b.policy {
            crate::BackoffPolicy::Linear => 0,
            crate::BackoffPolicy::Exponential => 1,
        },
        b.initial.as_millis(),
        b.max.as_millis(),
        EVENTS_MAXLEN,
        crate::MAX_ATTEMPTS_LIMIT,
        MAX_RECORD_BYTES,
        MAX_TAG_BYTES,
        MAX_KIND_BYTES,
        MAX_AHEAD_MS,
        MAX_BATCH,
        MAX_METADATA_ENTRIES,
        MAX_METADATA_KEY_BYTES,
        MAX_METADATA_VALUE_BYTES,
        MAX_METADATA_BYTES,
        ERROR_HISTORY,
    );
    // One statement, as the hand-written line had it, so that the library's local count is the same.
    let names: Vec<&str> = WorkState::ALL.iter().map(|s| s.as_str()).collect();
    let codes: Vec<String> = WorkState::ALL
        .iter()
        .map(|s| s.code().to_string())
        .collect();
    let _ = writeln!(
        lua,
        "local {} = {}\nlocal FORMAT_VERSION = {FORMAT_VERSION}",
        names.join(", "),
        codes.join(", ")
    );
    let keys: Vec<String> = suffix::ALL
        .iter()
        .map(|s| format!("{} = '{s}'", s.trim_end_matches(':')))
        .collect();
    let _ = writeln!(lua, "local KEY = {{ {} }}", keys.join(", "));
    lua
}

/// The record's header markers, which the Lua names and the library carries as numbers:
/// each name is replaced by its value when the library is built, not declared as a local.
/// The claim and ack loops test them per job, and reading a local of the library there
/// (an upvalue) costs measurably more than a constant operand (callgrind: the plain ack
/// about 3 % more instructions per job).
const HEADER_MARKERS: [(&str, u8); 3] = [
    ("HEADER_BARE", HEADER_BARE),
    ("HEADER_EXT", HEADER_EXT),
    ("HEADER_STAMP", HEADER_STAMP),
];

/// `lua` with each header marker's name written as its value.
pub(super) fn with_markers(lua: &str) -> String {
    HEADER_MARKERS
        .iter()
        .fold(lua.to_owned(), |text, (name, value)| {
            text.replace(name, &format!("{value:#04x}"))
        })
}

/// The library's shared sources, in the order they are concatenated (a source may use
/// what the ones before it define). The library's name hashes all of them.
pub const SHARED: [(&str, &str); 9] = [
    ("keys.lua", include_str!("keys.lua")),
    ("record.lua", include_str!("record.lua")),
    ("writes.lua", include_str!("writes.lua")),
    ("lifecycle.lua", include_str!("lifecycle.lua")),
    ("pruning.lua", include_str!("pruning.lua")),
    ("reaper.lua", include_str!("reaper.lua")),
    ("validate.lua", include_str!("validate.lua")),
    ("kinds.lua", include_str!("kinds.lua")),
    ("call.lua", include_str!("call.lua")),
];

impl Scripts {
    fn build() -> Scripts {
        let mut body = constants();
        for (_, source) in SHARED {
            body.push_str(&with_markers(source));
            body.push('\n');
        }
        // Each script becomes a function of (KEYS, ARGV), so its text reads as it would
        // under EVAL, registered under NAME_<script> with its flags. The name is a hash
        // of all of it, flags included: the same name always means the same library.
        for &script in Script::ALL {
            let flags = if script.allow_oom() {
                "'allow-oom'"
            } else {
                ""
            };
            let _ = write!(
                body,
                "\nredis.register_function{{function_name = 'NAME_{}', flags = {{{flags}}}, callback = function(KEYS, ARGV)\nbegin(KEYS, {})\n{}\nend}}\n",
                script.name(),
                script.clock(),
                with_markers(script.source()),
            );
        }
        let name = format!("workq_{:016x}", fnv1a(&body));
        let library = format!(
            "#!lua name={name}\n{}",
            body.replace(
                "function_name = 'NAME_",
                &format!("function_name = '{name}_")
            )
        );
        let functions = Script::ALL
            .iter()
            .map(|s| format!("{name}_{}", s.name()))
            .collect();
        Scripts {
            library,
            name,
            functions,
        }
    }

    /// The library's source, for `FUNCTION LOAD` (what [`Scripts::load`] sends).
    pub fn library(&self) -> &str {
        &self.library
    }

    /// The library's name; script `x` is the function `<name>_x`.
    pub fn library_name(&self) -> &str {
        &self.name
    }

    /// The name of `script`'s function, `<library name>_<script>`.
    pub fn function(&self, script: Script) -> &str {
        // `Script::ALL` lists the variants in declaration order (`script_list!`).
        self.functions
            .get(script as usize)
            .map_or("", String::as_str)
    }
}
