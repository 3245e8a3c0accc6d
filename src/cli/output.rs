//! `--output json|table|csv` for every listing command: the API's own JSON, an aligned table
//! (the default on a terminal), or CSV with a header row (RFC 4180, through the `csv` crate).

use std::io::IsTerminal;

use serde_json::Value;

/// How a listing is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// The gateway's JSON answer, as it came (pretty-printed).
    Json,
    /// Aligned columns for reading (the default when standard output is a terminal).
    Table,
    /// Comma-separated values with a header row.
    Csv,
}

/// The `--output` option of a listing command.
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct OutputArg {
    /// json, table or csv [default: table on a terminal, json otherwise].
    #[arg(long, value_enum)]
    pub output: Option<Output>,
}

impl OutputArg {
    /// The chosen format: `--output`, else a table on a terminal and JSON in a pipe.
    pub fn format(&self) -> Output {
        self.output.unwrap_or(if std::io::stdout().is_terminal() {
            Output::Table
        } else {
            Output::Json
        })
    }
}

/// One column of a listing: its header and where its value is in a row (a JSON pointer
/// such as `/staff/actor`, or a plain key).
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub header: &'static str,
    pub path: &'static str,
}

/// A column whose header is its key.
pub const fn col(key: &'static str) -> Column {
    Column {
        header: key,
        path: key,
    }
}

/// A cell's text: strings as they are, null as empty, anything else as JSON.
pub fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn lookup<'a>(row: &'a Value, path: &str) -> Option<&'a Value> {
    if path.starts_with('/') {
        row.pointer(path)
    } else {
        row.get(path)
    }
}

/// The columns of rows without a fixed set: every key, each row's keys in order, new ones
/// appended as they are met.
pub fn columns_of(rows: &[Value]) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for r in rows {
        if let Some(o) = r.as_object() {
            for k in o.keys() {
                if !seen.iter().any(|s| s == k) {
                    seen.push(k.clone());
                }
            }
        }
    }
    seen
}

/// The table or CSV text of `rows` under `columns` (`(header, path)` pairs).
pub fn render(
    format: Output,
    rows: &[Value],
    columns: &[(String, String)],
) -> Result<String, String> {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|(_, p)| cell(lookup(r, p))).collect())
        .collect();
    match format {
        Output::Json => {
            serde_json::to_string_pretty(&Value::Array(rows.to_vec())).map_err(|e| e.to_string())
        }
        Output::Csv => {
            let mut w = csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .from_writer(Vec::new());
            let fail = |e: csv::Error| format!("cannot write CSV: {e}");
            w.write_record(columns.iter().map(|(h, _)| h))
                .map_err(fail)?;
            for row in &cells {
                w.write_record(row).map_err(fail)?;
            }
            let bytes = w
                .into_inner()
                .map_err(|e| format!("cannot write CSV: {e}"))?;
            String::from_utf8(bytes).map_err(|e| e.to_string())
        }
        Output::Table => {
            let width = |i: usize, h: &str| {
                cells
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain(std::iter::once(h.chars().count()))
                    .max()
                    .unwrap_or(0)
            };
            let widths: Vec<usize> = columns
                .iter()
                .enumerate()
                .map(|(i, (h, _))| width(i, h))
                .collect();
            let line = |vals: Vec<&str>| {
                let padded: Vec<String> = vals
                    .iter()
                    .zip(&widths)
                    .map(|(v, w)| format!("{v}{}", " ".repeat(w.saturating_sub(v.chars().count()))))
                    .collect();
                padded.join("  ").trim_end().to_string() + "\n"
            };
            let mut out = line(columns.iter().map(|(h, _)| h.as_str()).collect());
            for row in &cells {
                out.push_str(&line(row.iter().map(String::as_str).collect()));
            }
            Ok(out)
        }
    }
}

/// Prints a listing: `answer` itself for JSON; otherwise `rows` under `columns` (every key
/// when none are given).
pub fn print_listing(
    format: Output,
    answer: &Value,
    rows: &[Value],
    columns: &[Column],
) -> Result<(), String> {
    if format == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(answer).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    let columns: Vec<(String, String)> = if columns.is_empty() {
        columns_of(rows)
            .into_iter()
            .map(|k| (k.clone(), k))
            .collect()
    } else {
        columns
            .iter()
            .map(|c| (c.header.to_string(), c.path.to_string()))
            .collect()
    };
    print!("{}", render(format, rows, &columns)?);
    Ok(())
}

/// An answer's rows: the array itself, the array under `key`, or the object as one row.
pub fn rows_of(answer: &Value, key: Option<&str>) -> Vec<Value> {
    match (answer, key) {
        (Value::Array(a), _) => a.clone(),
        (v, Some(k)) if v[k].is_array() => v[k].as_array().cloned().unwrap_or_default(),
        (Value::Null, _) => Vec::new(),
        (v, _) => vec![v.clone()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cols(keys: &[&str]) -> Vec<(String, String)> {
        keys.iter()
            .map(|k| (k.to_string(), k.to_string()))
            .collect()
    }

    #[test]
    fn csv_quotes_what_needs_quoting_and_parses_back() {
        let rows = vec![
            json!({"a": "x,y", "b": 1, "c": null}),
            json!({"a": "say \"hi\"", "b": true, "c": "line\nbreak"}),
        ];
        let text = render(Output::Csv, &rows, &cols(&["a", "b", "c"])).unwrap();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(r.headers().unwrap(), vec!["a", "b", "c"]);
        let back: Vec<Vec<String>> = r
            .records()
            .map(|x| x.unwrap().iter().map(str::to_string).collect())
            .collect();
        assert_eq!(back[0], vec!["x,y", "1", ""]);
        assert_eq!(back[1], vec!["say \"hi\"", "true", "line\nbreak"]);
    }

    #[test]
    fn tables_align_columns_and_new_keys_are_appended() {
        let rows = vec![
            json!({"name": "a", "n": 10}),
            json!({"name": "long-name", "x": 1}),
        ];
        assert_eq!(columns_of(&rows), vec!["n", "name", "x"]);
        let text = render(Output::Table, &rows, &cols(&["name", "n"])).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "name       n");
        assert_eq!(lines[1], "a          10");
        assert_eq!(lines[2], "long-name");
    }
}
