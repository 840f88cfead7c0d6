//! Support for the checks of `deploy/prometheus/` and `deploy/grafana/`: running
//! `promtool`, and a small PromQL scanner that finds the metric names an expression reads
//! and the series that `rate()`, `irate()` and `increase()` are applied to.
//!
//! The scanner is not a PromQL parser: `promtool check rules` decides whether an
//! expression is valid. It only has to name the metrics of a valid expression.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What one `promtool` run printed (stdout then stderr) and whether it succeeded.
#[derive(Debug)]
pub struct PromtoolRun {
    pub success: bool,
    pub output: String,
}

/// Runs `promtool` with `args`. Panics, saying how to install it, if it is not on PATH:
/// the deploy checks never skip.
pub fn promtool<I, S>(args: I) -> PromtoolRun
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = match Command::new("promtool").args(args).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "promtool is not installed: run tests/run.sh, which installs it (Debian's \
             `prometheus` package)"
        ),
        Err(e) => panic!("cannot run promtool: {e}"),
    };
    let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    PromtoolRun {
        success: out.status.success(),
        output,
    }
}

/// A directory of its own under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        Self(crate::server::temp_dir(tag))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Ident(String),
    Punct(char),
    /// A string, a number, a duration, a label matcher block or a range: nothing that
    /// names a metric.
    Other,
}

/// Aggregation operators: `sum by (le) (...)` puts a label list, not `(`, after the name.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];
/// Keywords followed by a parenthesised list of label names.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
const KEYWORDS: &[&str] = &[
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
];

fn tokens(expr: &str) -> Vec<Token> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    // Skips from an opening delimiter to its closing one, over strings inside.
    let skip_block = |i: &mut usize, close: char| {
        while *i < chars.len() && chars[*i] != close {
            if matches!(chars[*i], '"' | '\'' | '`') {
                let quote = chars[*i];
                *i += 1;
                while *i < chars.len() && chars[*i] != quote {
                    if chars[*i] == '\\' {
                        *i += 1;
                    }
                    *i += 1;
                }
            }
            *i += 1;
        }
        *i += 1;
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            // A comment, to the end of the line.
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if matches!(c, '"' | '\'' | '`') {
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push(Token::Other);
        } else if c == '{' {
            skip_block(&mut i, '}');
            out.push(Token::Other);
        } else if c == '[' {
            skip_block(&mut i, ']');
            out.push(Token::Other);
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | ':'))
            {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() || c == '.' {
            // Numbers and durations (`offset 5m`, `1e3`).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            out.push(Token::Other);
        } else {
            out.push(Token::Punct(c));
            i += 1;
        }
    }
    out
}

/// The index just past the `)` that closes the `(` at `open`.
fn closing(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t {
            Token::Punct('(') => depth += 1,
            Token::Punct(')') => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

/// The metric names in `tokens`, with their token index.
fn metrics(tokens: &[Token]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if let Token::Ident(name) = &tokens[i] {
            let next_is_paren = tokens.get(i + 1) == Some(&Token::Punct('('));
            if LABEL_LISTS.contains(&name.as_str()) {
                if next_is_paren {
                    i = closing(tokens, i + 1);
                    continue;
                }
            } else if !next_is_paren
                && !AGGREGATIONS.contains(&name.as_str())
                && !KEYWORDS.contains(&name.as_str())
            {
                out.push((i, name.clone()));
            }
        }
        i += 1;
    }
    out
}

/// The metric names that `expr` reads, in order, repeats included.
pub fn metric_names(expr: &str) -> Vec<String> {
    metrics(&tokens(expr)).into_iter().map(|(_, m)| m).collect()
}

/// Each call of `rate`, `irate` or `increase` in `expr` with each metric name in its
/// argument: `("rate", "workq_attempts_total")`.
pub fn counter_function_arguments(expr: &str) -> Vec<(String, String)> {
    let tokens = tokens(expr);
    let metrics = metrics(&tokens);
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let Token::Ident(function) = t else { continue };
        if !matches!(function.as_str(), "rate" | "irate" | "increase")
            || tokens.get(i + 1) != Some(&Token::Punct('('))
        {
            continue;
        }
        let end = closing(&tokens, i + 1);
        for (_, metric) in metrics.iter().filter(|(at, _)| (i + 1..end).contains(at)) {
            out.push((function.clone(), metric.clone()));
        }
    }
    out
}

/// Runs `promtool check rules` over `exprs`, each written as a recording rule
/// `workq:<group>_<i>` of one rule file: promtool decides whether every one is valid
/// PromQL.
pub fn check_promql(group: &str, exprs: &[String]) -> PromtoolRun {
    let rules: Vec<serde_json::Value> = exprs
        .iter()
        .enumerate()
        .map(
            |(i, expr)| serde_json::json!({ "record": format!("workq:{group}_{i}"), "expr": expr }),
        )
        .collect();
    let file = serde_json::json!({ "groups": [{ "name": group, "rules": rules }] });
    let dir = TempDir::new(group);
    // JSON is YAML: promtool reads it as a rule file.
    let path = dir.path().join(format!("{group}.yml"));
    std::fs::write(&path, file.to_string()).expect("write");
    promtool(["check", "rules", path.to_str().expect("utf-8 path")])
}

/// Every query of deploy/grafana/workq.json, panels inside collapsed rows included, as
/// (panel title, expr), with Grafana's variables as written.
pub fn dashboard_queries() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/workq.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let dashboard: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut panels = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        panels.push(panel);
        panels.extend(panel["panels"].as_array().into_iter().flatten());
    }
    let mut out = Vec::new();
    for panel in panels {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("panel {}: a target without an expr", panel["title"]));
            out.push((
                panel["title"].as_str().unwrap_or("?").to_owned(),
                expr.to_owned(),
            ));
        }
    }
    out
}
