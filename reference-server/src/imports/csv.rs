//! Reading and writing CSV (RFC 4180): fields separated by commas, optionally quoted
//! with `"` (a quote inside a quoted field is doubled), records ended by LF or CRLF.
//!
//! Reading is lenient where spreadsheets are sloppy (a leading byte-order mark is
//! dropped, a quote inside an unquoted field is kept as it is, the last record needs no
//! line end) and strict where data would be lost: a quoted field that never ends is an
//! error naming the row it starts on.

/// A file that cannot be read as CSV.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("row {row}: a quoted field is never closed")]
pub struct UnclosedQuote {
    /// The row (1-based, the header is row 1) where the field starts.
    pub row: u64,
}

/// Parses `text` into records, each with its 1-based row number (the first record,
/// the header, is row 1). Every record counts for the numbering, blank ones included.
pub fn parse(text: &str) -> Result<Vec<(u64, Vec<String>)>, UnclosedQuote> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut row = 1u64;
    let mut chars = text.chars().peekable();
    // Whether the current field started with a quote and the quote is still open.
    let mut quoted = false;
    // Whether anything of the current record was read (so a final record without a line
    // end is kept, and an empty file has no records).
    let mut started = false;
    while let Some(c) = chars.next() {
        started = true;
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            ',' => record.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push((row, std::mem::take(&mut record)));
                row += 1;
                started = false;
            }
            other => field.push(other),
        }
    }
    if quoted {
        return Err(UnclosedQuote { row });
    }
    if started {
        record.push(field);
        records.push((row, record));
    }
    Ok(records)
}

/// Whether a record has nothing in it (a blank line, or only separators).
pub fn is_blank(record: &[String]) -> bool {
    record.iter().all(|cell| cell.trim().is_empty())
}

/// Appends one record to `out`, quoting the fields that need it, ended by CRLF.
pub fn write_record<'a>(out: &mut String, fields: impl IntoIterator<Item = &'a str>) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if field.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(field);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(records: &[(u64, Vec<String>)]) -> Vec<Vec<&str>> {
        records
            .iter()
            .map(|(_, r)| r.iter().map(String::as_str).collect())
            .collect()
    }

    #[test]
    fn quoted_fields_keep_commas_quotes_and_line_breaks() {
        let text = "\u{feff}name,notes\r\n\"Otieno, Ann\",\"said \"\"hi\"\"\nthen left\"\r\nBob,\n";
        let records = parse(text).unwrap();
        assert_eq!(
            cells(&records),
            [
                vec!["name", "notes"],
                vec!["Otieno, Ann", "said \"hi\"\nthen left"],
                vec!["Bob", ""],
            ]
        );
        assert_eq!(
            records.iter().map(|(row, _)| *row).collect::<Vec<_>>(),
            [1, 2, 3]
        );
    }

    #[test]
    fn the_last_line_needs_no_end_and_blank_lines_count_as_rows() {
        let records = parse("a,b\n\n1,2").unwrap();
        assert_eq!(records.len(), 3);
        assert!(is_blank(&records[1].1));
        assert_eq!(records[2], (3, vec!["1".to_owned(), "2".to_owned()]));
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn an_unclosed_quote_names_its_row() {
        assert_eq!(parse("a\n\"open\n"), Err(UnclosedQuote { row: 2 }));
    }

    #[test]
    fn written_records_read_back() {
        let mut out = String::new();
        write_record(
            &mut out,
            ["plain", "with, comma", "with \"quote\"", "two\nlines"],
        );
        let records = parse(&out).unwrap();
        assert_eq!(
            cells(&records),
            [vec!["plain", "with, comma", "with \"quote\"", "two\nlines"]]
        );
    }
}
