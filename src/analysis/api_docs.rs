//! The docs of what scripts are handed: the fields of `req`, the calls of `res` and the
//! batteries' calls, read from the tables of docs/reference.md ("req", "res") and
//! docs/batteries.md ("Reference"). The tables are the one list: readers see them, the
//! language server completes and explains from them, and unit tests hold them to the code
//! (`http::request` builds exactly these `req` fields; every `res` method and battery
//! function the engine has is in a table).

use std::sync::OnceLock;

const REFERENCE: &str = include_str!("../../docs/reference.md");
const BATTERIES: &str = include_str!("../../docs/batteries.md");

/// One documented name: the call (or field) as the table writes it, and what it gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The name alone: `method`, `status`, `db::query`.
    pub name: String,
    /// The first cell without its backticks: `db::query(sql, params)`; several calls of one
    /// row are kept together (`res.redirect(url)`, `res.redirect(status, url)`).
    pub call: String,
    /// The second cell: the value or the effect.
    pub doc: String,
}

/// The fields of `req`, in the order of the table.
pub fn req_fields() -> &'static [Entry] {
    static FIELDS: OnceLock<Vec<Entry>> = OnceLock::new();
    FIELDS.get_or_init(|| {
        table_after(REFERENCE, "## req")
            .into_iter()
            .filter_map(|row| {
                let name = row.first()?.trim_matches('`').to_string();
                Some(Entry {
                    call: format!("req.{name}"),
                    name,
                    doc: row.get(1)?.clone(),
                })
            })
            .collect()
    })
}

/// The calls of `res`, one entry per name (a row naming two calls gives two entries).
pub fn res_calls() -> &'static [Entry] {
    static CALLS: OnceLock<Vec<Entry>> = OnceLock::new();
    CALLS.get_or_init(|| entries(&table_after(REFERENCE, "## res"), "res."))
}

/// The batteries' calls (`db::query`, `crypto::uuid`, ...), one entry per name.
pub fn battery_calls() -> &'static [Entry] {
    static CALLS: OnceLock<Vec<Entry>> = OnceLock::new();
    CALLS.get_or_init(|| entries(&table_after(BATTERIES, "## Reference"), ""))
}

/// The entry of `name` in `entries`.
pub fn find<'a>(entries: &'a [Entry], name: &str) -> Option<&'a Entry> {
    entries.iter().find(|e| e.name == name)
}

/// An entry per call named in the first cell of each row: `prefix` then a name then `(`
/// (`res.status(`); without a prefix, a `module::name(`.
fn entries(rows: &[Vec<String>], prefix: &str) -> Vec<Entry> {
    let mut found: Vec<Entry> = Vec::new();
    for row in rows {
        let (Some(call), Some(doc)) = (row.first(), row.get(1)) else {
            continue;
        };
        let call_text = call.replace('`', "");
        for name in called_names(call, prefix) {
            if find(&found, &name).is_none() {
                found.push(Entry {
                    name,
                    call: call_text.clone(),
                    doc: doc.clone(),
                });
            }
        }
    }
    found
}

/// The names in `cell` written as `` `PREFIXname(`` (with `::` inside the name when there
/// is no prefix).
fn called_names(cell: &str, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    for part in cell.split('`').skip(1).step_by(2) {
        let Some(rest) = part.strip_prefix(prefix) else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let qualified = prefix.is_empty() == name.contains("::");
        if qualified && rest[name.len()..].starts_with('(') {
            names.push(name);
        }
    }
    names
}

/// The body rows of the first table after the line `heading` (header and separator
/// left out), as trimmed cells; `\|` inside a cell is a `|`.
fn table_after(text: &str, heading: &str) -> Vec<Vec<String>> {
    let mut lines = text.lines().skip_while(|line| line.trim_end() != heading);
    let table = lines
        .by_ref()
        .skip(1)
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'));
    table.skip(2).map(cells).collect()
}

/// The cells of one table line.
fn cells(line: &str) -> Vec<String> {
    let line = line.replace("\\|", "\u{0}");
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner
        .split('|')
        .map(|cell| cell.trim().replace('\u{0}', "|"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_read() {
        let method = find(req_fields(), "method").unwrap();
        assert_eq!(method.call, "req.method");
        assert!(method.doc.contains("\"GET\""));
        assert!(find(req_fields(), "raw_body").is_some());

        let redirect = find(res_calls(), "redirect").unwrap();
        assert!(redirect.call.contains("res.redirect(status, url)"));
        assert!(find(res_calls(), "setHeader").is_some());

        let query = find(battery_calls(), "db::query").unwrap();
        assert_eq!(query.call, "db::query(sql, params)");
        assert!(query.doc.contains("row maps"));
        // `\|\|` in a cell is a closure's bars, not a new cell.
        let transaction = find(battery_calls(), "db::transaction").unwrap();
        assert!(transaction.call.contains("||"), "{transaction:?}");
        assert!(find(battery_calls(), "http::post").is_some());
    }

    #[test]
    fn cells_and_names() {
        assert_eq!(cells("| `a` | b \\| c |"), ["`a`", "b | c"]);
        assert_eq!(
            called_names(
                "`res.set_header(name, value)`, alias `res.setHeader(...)`",
                "res."
            ),
            ["set_header", "setHeader"]
        );
        assert_eq!(called_names("`log::info(msg)`, `x(1)`", ""), ["log::info"]);
        assert!(table_after("no such heading", "## req").is_empty());
    }
}
