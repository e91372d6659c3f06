//! Validation errors with their position, and the collector that gathers them so one
//! run reports every mistake of every file.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::{Location, Spanned};

use super::lint::Lint;
use crate::domain::template::{Template, TemplateError};

/// One mistake in one file, printed as `path:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: PathBuf,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// Collects the diagnostics of one file: errors, and warnings measured against `lint`.
pub struct FileDiagnostics<'a> {
    pub path: &'a Path,
    source: &'a str,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    pub lint: Lint,
}

impl<'a> FileDiagnostics<'a> {
    pub fn new(path: &'a Path, source: &'a str) -> Self {
        Self::linted(path, source, Lint::default())
    }

    pub fn linted(path: &'a Path, source: &'a str, lint: Lint) -> Self {
        Self {
            path,
            source,
            errors: Vec::new(),
            warnings: Vec::new(),
            lint,
        }
    }

    /// A warning: printed as `path:line:col: warning: message`; the file still loads.
    pub fn warn(&mut self, location: &Location, message: impl Into<String>) {
        self.warnings.push(Diagnostic {
            path: self.path.to_path_buf(),
            line: location.line().max(1),
            column: location.column().max(1),
            message: format!("warning: {}", message.into()),
        });
    }

    pub fn at(&mut self, line: u64, column: u64, message: impl Into<String>) {
        self.errors.push(Diagnostic {
            path: self.path.to_path_buf(),
            line: line.max(1),
            column: column.max(1),
            message: message.into(),
        });
    }

    pub fn error(&mut self, location: &Location, message: impl Into<String>) {
        self.at(location.line(), location.column(), message);
    }

    /// Parses a template, pointing an error at the exact character of the scalar.
    pub fn template(
        &mut self,
        value: &Spanned<String>,
        is_known: impl Fn(&str) -> bool,
        field: &str,
    ) -> Option<Template> {
        match Template::parse(&value.value, is_known) {
            Ok(template) => Some(template),
            Err(TemplateError { offset, message }) => {
                let (line, column) = self.position_in_scalar(value, offset);
                self.at(line, column, format!("{field}: {message}"));
                None
            }
        }
    }

    /// Maps a byte offset inside a scalar's value to a line and column of the file.
    /// Exact for plain, quoted and literal block scalars without escapes.
    fn position_in_scalar(&self, value: &Spanned<String>, offset: usize) -> (u64, u64) {
        let start = value.referenced;
        let opens_with_quote = start
            .span()
            .byte_offset()
            .and_then(|at| self.source.as_bytes().get(usize::try_from(at).ok()?))
            .is_some_and(|b| *b == b'"' || *b == b'\'');
        let before = &value.value[..offset.min(value.value.len())];
        let newlines = before.matches('\n').count() as u64;
        let quote = u64::from(opens_with_quote);
        match before.rfind('\n') {
            None => (
                start.line(),
                start.column() + quote + before.chars().count() as u64,
            ),
            Some(at) => (
                start.line() + newlines,
                start.column() + before[at + 1..].chars().count() as u64,
            ),
        }
    }
}

/// Turns a YAML parse error into a diagnostic, without the source snippet (the
/// position is already in the prefix).
pub fn yaml_error(path: &Path, error: &serde_saphyr::Error) -> Diagnostic {
    let (line, column) = error
        .location()
        .map(|l| (l.line().max(1), l.column().max(1)))
        .unwrap_or((1, 1));
    let text = error.without_snippet().to_string();
    let suffix = format!(" at line {line}, column {column}");
    let message = plain_words(text.strip_suffix(&suffix).unwrap_or(&text));
    Diagnostic {
        path: path.to_path_buf(),
        line,
        column,
        message,
    }
}

/// The YAML parser names Rust types; people writing strategies think in YAML values.
fn plain_words(message: &str) -> String {
    match message {
        "invalid i64" | "invalid u64" | "invalid u32" | "invalid i32" => {
            "expected a whole number".into()
        }
        "invalid f64" => "expected a number".into(),
        "invalid bool" => "expected true or false".into(),
        other => other.to_string(),
    }
}
