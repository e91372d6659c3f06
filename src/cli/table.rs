//! Aligned tables for people, with the status in colour only on a terminal (and not
//! under `NO_COLOR`): the text alone carries every fact.

use std::io::IsTerminal;

use serde_json::Value;

/// Whether stdout takes colour.
pub fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// A status word, coloured by what it means when `colour` is on.
pub fn status(text: &str, colour: bool) -> String {
    if !colour {
        return text.to_string();
    }
    let code = match text {
        "DEPLOYED" => "32",
        "ROLLED_BACK" | "FAILED" | "ROLLING_BACK" => "31",
        "CANCELLED" => "2",
        "PAUSED" | "PENDING" => "33",
        _ => "36",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// A JSON field as a cell: strings bare, nothing as `-`.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A JSON timestamp to the second, in UTC; anything else as `cell` shows it.
pub fn time(value: &Value) -> String {
    value
        .as_str()
        .and_then(|text| text.parse::<chrono::DateTime<chrono::Utc>>().ok())
        .map_or_else(
            || cell(value),
            |at| at.format("%Y-%m-%d %H:%M:%SZ").to_string(),
        )
}

/// `headers` and `rows` in columns two spaces apart; the column named `STATUS` is
/// coloured after padding, so colour never moves the columns.
pub fn render(headers: &[&str], rows: &[Vec<String>], colour: bool) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, text) in widths.iter_mut().zip(row) {
            *width = (*width).max(text.chars().count());
        }
    }
    let status_column = headers.iter().position(|h| *h == "STATUS");
    let line = |cells: Vec<String>, is_header: bool| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, (text, width)) in cells.into_iter().zip(&widths).enumerate() {
            let pad = " ".repeat(width - text.chars().count());
            let shown = if !is_header && Some(i) == status_column {
                status(&text, colour)
            } else {
                text
            };
            out.push_str(&shown);
            if i < last {
                out.push_str(&pad);
                out.push_str("  ");
            }
        }
        out
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect(), true);
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.clone(), false));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_to_the_second() {
        let at = serde_json::json!("2026-12-02T06:33:05.732399573Z");
        assert_eq!(time(&at), "2026-12-02 06:33:05Z");
        assert_eq!(time(&Value::Null), "-");
    }

    #[test]
    fn columns_line_up_and_colour_stays_off_the_padding() {
        let rows = vec![
            vec!["a1".to_string(), "DEPLOYED".to_string(), "x".to_string()],
            vec!["b22222".to_string(), "FAILED".to_string(), "yy".to_string()],
        ];
        let plain = render(&["ID", "STATUS", "IMAGE"], &rows, false);
        let lines: Vec<&str> = plain.lines().collect();
        assert_eq!(lines[0], "ID      STATUS    IMAGE");
        assert_eq!(lines[1], "a1      DEPLOYED  x");
        assert_eq!(lines[2], "b22222  FAILED    yy");
        let coloured = render(&["ID", "STATUS", "IMAGE"], &rows, true);
        assert!(
            coloured.contains("\x1b[32mDEPLOYED\x1b[0m  x"),
            "{coloured:?}"
        );
        assert!(
            coloured.contains("\x1b[31mFAILED\x1b[0m    yy"),
            "{coloured:?}"
        );
        assert!(!coloured.lines().next().unwrap().contains('\x1b'));
    }
}
