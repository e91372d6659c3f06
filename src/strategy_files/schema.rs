//! JSON Schemas of strategy and template files for editors (`# yaml-language-server:
//! $schema=…`). They are generated from the raw types the loader deserialises, so a
//! field the loader reads is a field the schema knows, and no other. A schema checks
//! shapes (fields, types, enums, ranges); what needs more than one field or the
//! template catalog (a judge's limits, known templates, PromQL) stays with `validate`.

use schemars::generate::SchemaSettings;
use serde_json::Value;

use super::raw::{RawStrategyFile, RawTemplateFile};

/// Which file a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaKind {
    /// A strategy file (`kind: Strategy`).
    Strategy,
    /// A metric template (`strategies/_templates/*.yaml`, `kind: MetricTemplate`).
    Template,
}

impl SchemaKind {
    /// The file name it is committed and served under.
    pub fn file_name(self) -> &'static str {
        match self {
            SchemaKind::Strategy => "strategy.json",
            SchemaKind::Template => "template.json",
        }
    }
}

/// The schema, draft-07 (what YAML editors read best).
pub fn schema(kind: SchemaKind) -> Value {
    let generator = SchemaSettings::draft07().into_generator();
    let (mut schema, title) = match kind {
        SchemaKind::Strategy => (
            generator.into_root_schema_for::<RawStrategyFile>(),
            "canaryd strategy",
        ),
        SchemaKind::Template => (
            generator.into_root_schema_for::<RawTemplateFile>(),
            "canaryd metric template",
        ),
    };
    schema.insert("title".into(), title.into());
    schema.to_value()
}

/// The schema as committed under `schemas/`: pretty JSON with a final newline.
pub fn text(kind: SchemaKind) -> String {
    let mut text = serde_json::to_string_pretty(&schema(kind)).expect("a schema is JSON");
    text.push('\n');
    text
}
