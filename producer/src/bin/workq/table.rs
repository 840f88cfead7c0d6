//! Plain-text tables for the commands that list things: a header row, then one row per
//! item, columns padded to their widest cell (by characters), two spaces apart.

/// Renders `rows` under `headers`; a row with fewer cells leaves the rest empty.
pub(crate) fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(widths.len()) {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut out = String::new();
        for (i, w) in widths.iter().enumerate() {
            let c = cells.get(i).copied().unwrap_or("");
            if i + 1 == widths.len() {
                out.push_str(c);
            } else {
                out.push_str(c);
                out.extend(std::iter::repeat_n(' ', w - c.chars().count() + 2));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = vec![line(headers.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

/// A cell for an optional value: "-" for none.
pub(crate) fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn columns_are_padded_to_their_widest_cell() {
        let t = render(
            &["ID", "STATE"],
            &[
                vec!["a".into(), "ENQUEUED".into()],
                vec!["long-id".into(), "x".into()],
            ],
        );
        assert_eq!(t, "ID       STATE\na        ENQUEUED\nlong-id  x");
    }
}
